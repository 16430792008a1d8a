"""A folder of exported graphs (:mod:`colorlib.onnx.export`) run by ONNX Runtime on the CPU.

:class:`OnnxColorizer` opens a folder that ``colorlib export-onnx`` wrote and stands in for a
:class:`colorlib.Colorizer` wherever the public API takes one::

    from colorlib.onnx import OnnxColorizer
    graphs = OnnxColorizer("onnx/miniplaces-full")       # colorlib export-onnx ... -o onnx/miniplaces-full
    colorlib.colorize(graphs, "photo.jpg")               # the same pre- and post-processing
    colorlib.classify(graphs, "photo.jpg")

Nothing is exported or cached here: the folder is what runs, checked against its manifest's
hashes when it is opened. That the graphs still match the network's code is the job of whoever
built them (``colorlib export-onnx`` again after a change; the project's tests compare every
folder it builds against PyTorch).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

# ONNX Runtime records usage events in ~/.cache/Microsoft/ unless told not to before it loads
# (disable_telemetry_events alone leaves a database there); colorlib writes only what it is asked
# to. Set here, in the wing a user opts into, never by `import colorlib`.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
try:
    import onnxruntime as ort
except ImportError as e:
    raise ImportError(f'running ONNX graphs needs the onnx extra: pip install "colorlib[onnx]" '
                      f'(import onnxruntime: {" ".join(str(e).split())[:200]})') from None
if hasattr(ort, "disable_telemetry_events"):
    ort.disable_telemetry_events()

from ..lab import denormalize_ab, normalize_L
from ..model import ModelConfig, resize_for_global, upsample_ab
from .manifest import COLORIZER_FILE, GLOBAL_FILE, read_manifest


def _session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: its warnings about unused initializers are noise here
    # No busy-waiting between runs: each session has its own pool, and a pool that spins after
    # its run takes cores from the next one (the global graph, then the colorizer) and from
    # torch's; with two cores that made predict_ab about twice as slow at 224x224.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxColorizer:
    """The graphs in ``folder`` (``global.onnx`` for a full model, ``colorizer.onnx``,
    ``manifest.json``) on ONNX Runtime's CPU provider, float32.

    ``threads``: ONNX Runtime's intra-op threads (default: torch's, ``torch.get_num_threads()``).
    Attributes, as a :class:`colorlib.Colorizer` has them: ``cfg`` (the
    :class:`colorlib.ModelConfig` of the manifest) and ``meta`` (``name``, ``classes``,
    ``saturation``); and ``manifest``, ``folder``. Raises ``ValueError`` (one line naming the
    file) for a folder that is not a complete export whose files match the manifest, or whose
    graphs are not the ones its model needs.
    """

    def __init__(self, folder: str | os.PathLike, threads: int | None = None):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        try:
            self.cfg = ModelConfig(**self.manifest["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{self.folder / 'manifest.json'}: its config is not a colorlib model config "
                             f"({' '.join(str(e).split())[:200]})") from None
        self.meta = {k: self.manifest[k] for k in ("name", "classes", "saturation") if self.manifest.get(k) is not None}
        files = {g["file"] for g in self.manifest["graphs"].values()}
        need = {COLORIZER_FILE} | ({GLOBAL_FILE} if self.cfg.variant == "full" else set())
        if not need <= files:
            raise ValueError(f"{self.folder}: a {self.cfg.variant} model needs {', '.join(sorted(need))}; "
                             f"the manifest lists {', '.join(sorted(files))}")
        threads = int(threads or torch.get_num_threads())
        self._colorizer = _session(self.folder / COLORIZER_FILE, threads)
        self._global = _session(self.folder / GLOBAL_FILE, threads) if self.cfg.variant == "full" else None

    def __repr__(self) -> str:
        return f"OnnxColorizer({str(self.folder)!r})"

    def global_branch(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The global features ``(N, 256*width)`` and scene-class probabilities ``(N,
        num_classes)`` (softmax of section 3.3's logits) of L* ``(N, 1, H, W)`` in [0, 100],
        any size. Raises ``ValueError`` for a baseline (no global branch)."""
        if self._global is None:
            raise ValueError("the baseline variant has no global features")
        x = resize_for_global(_network_input(L), self.cfg.global_size)
        g, probs = _run(self._global, {"L": x.numpy()})
        return torch.from_numpy(g), torch.from_numpy(probs)

    def encode_global(self, L: torch.Tensor) -> torch.Tensor:
        """The global feature vector ``(N, 256*width)`` of L* ``(N, 1, H, W)`` in [0, 100]
        (style transfer, section 4.5)."""
        return self.global_branch(L)[0]

    def predict_ab(self, L: torch.Tensor, global_L: torch.Tensor | None = None,
                   global_features: torch.Tensor | None = None) -> torch.Tensor:
        """a*b* (float32, about [-128, 127]) for L* ``(N, 1, H, W)`` in [0, 100], at full size
        H x W: :func:`colorlib.infer.predict_ab` on ONNX Runtime. ``global_L``: L* of the photo
        to take the global features from (style transfer, section 4.5); ``global_features``: a
        given ``(N or 1, 256*width)`` vector (a mix of two). Both are ignored by a baseline.
        Raises ``ValueError`` for an L* that is not ``(N, 1, H, W)``; ``MemoryError`` (one line)
        when ONNX Runtime cannot allocate."""
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"expected L shaped (N, 1, H, W), got {tuple(L.shape)}")
        feeds = {"L": _network_input(L).numpy()}
        if self._global is not None:
            if global_features is None:
                global_features = self.encode_global(L if global_L is None else global_L)
            g = global_features.detach().to("cpu", torch.float32)
            feeds["global_features"] = np.ascontiguousarray(g.expand(L.shape[0], -1).numpy())
        (ab01,) = _run(self._colorizer, feeds)
        return denormalize_ab(upsample_ab(torch.from_numpy(ab01), L.shape[-2:])).to(L.device)


def _run(session: ort.InferenceSession, feeds: dict) -> list[np.ndarray]:
    """``session.run``, with ONNX Runtime's failure to allocate a buffer raised as the
    ``MemoryError`` it is (its own errors derive from ``Exception`` only), in one line."""
    try:
        return session.run(None, feeds)
    except Exception as e:
        if "allocate" in str(e).lower():
            raise MemoryError(" ".join(str(e).split())) from None
        raise


def _network_input(L: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] (any device, dtype) -> contiguous float32 L*/100 on the CPU."""
    return normalize_L(L.detach().to("cpu", torch.float32)).contiguous()

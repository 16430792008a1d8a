"""ONNX Runtime as a second CPU engine for the network: the same a*b* as PyTorch, other kernels.

:class:`OnnxColorizer` runs a model's exported graphs (:mod:`colorlib.export`: batch norm
folded, float32) with ONNX Runtime and mirrors the torch calls it stands in for:

* :meth:`OnnxColorizer.predict_ab` is :func:`colorlib.infer.predict_ab`: L* in [0, 100] in,
  a*b* at full size out (the network's half-resolution output upsampled as
  :func:`colorlib.model.upsample_ab` does), with the same ``global_L`` / ``global_features``
  options (style transfer and mixing, section 4.5);
* :meth:`OnnxColorizer.encode_global` and :meth:`OnnxColorizer.global_branch` are
  :meth:`colorlib.model.Colorizer.encode_global` / ``global_branch`` (probabilities instead of
  logits), but take L* in [0, 100] like ``predict_ab``.

A model's graphs are exported once and kept in a cache folder named by the weights' sha256
(:func:`cache_dir`), so a second process starts in well under a second. :func:`onnx_engine`
keeps one engine per model object, made again when its weights change::

    from colorlib.engine import onnx_engine
    ab = onnx_engine(model).predict_ab(L)          # as colorlib.infer.predict_ab(model, L)

ONNX Runtime is an optional extra: importing this module without it raises an ``ImportError``
whose message is one line, ``pip install "colorlib[onnx]"``.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path

import numpy as np
import torch

# ONNX Runtime may record usage events in a local database (~/.cache/Microsoft/...) unless told
# not to before it loads; colorlib writes nothing outside its cache and the user's outputs.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
try:
    import onnxruntime as ort
except ImportError as e:
    raise ImportError(f'the ONNX Runtime engine needs the onnx extra: pip install "colorlib[onnx]" '
                      f'(import onnxruntime: {" ".join(str(e).split())[:200]})') from None
if hasattr(ort, "disable_telemetry_events"):
    ort.disable_telemetry_events()

from .export import COLORIZER_FILE, GLOBAL_FILE, export_onnx, read_manifest, weights_hash
from .io import WriteError
from .lab import denormalize_ab, normalize_L
from .model import Colorizer, fold_batchnorm, resize_for_global, upsample_ab, weights_key


def cache_dir() -> Path:
    """Where exported graphs are cached: ``$COLORLIB_CACHE/onnx``, else
    ``$XDG_CACHE_HOME/colorlib/onnx``, else ``~/.cache/colorlib/onnx``; one folder per model,
    named by :func:`cache_key`."""
    if os.environ.get("COLORLIB_CACHE"):
        return Path(os.environ["COLORLIB_CACHE"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "colorlib" / "onnx"


def cache_key(model: Colorizer) -> str:
    """The name of ``model``'s folder in the cache: :func:`colorlib.export.weights_hash` of its
    batch-norm-folded copy, so that a model and its :func:`fold_batchnorm` copy, whose exports
    are the same graphs, share one export."""
    return weights_hash(model if model.is_folded else fold_batchnorm(model))


def is_cached(model: Colorizer, cache: str | os.PathLike | None = None) -> bool:
    """Whether ``model``'s graphs are already exported in ``cache`` (default :func:`cache_dir`),
    so that making its engine exports nothing."""
    try:
        _cached_manifest(Path(cache if cache is not None else cache_dir()) / cache_key(model), model.cfg)
    except ValueError:
        return False
    return True


def can_cache(cache: str | os.PathLike | None = None) -> bool:
    """Whether exports can be kept in ``cache`` (default :func:`cache_dir`): it is, or can be
    made, a folder this process may write."""
    folder = Path(cache if cache is not None else cache_dir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _cached_manifest(folder: Path, cfg) -> dict:
    """The manifest of a complete export in ``folder`` (:func:`colorlib.export.read_manifest`,
    files checked against their hashes) that lists the graphs ``cfg``'s variant needs; else
    ``ValueError``."""
    manifest = read_manifest(folder)
    files = {g.get("file") for g in manifest["graphs"].values()}
    needed = {COLORIZER_FILE} | ({GLOBAL_FILE} if cfg.variant == "full" else set())
    if not needed <= files:
        raise ValueError(f"{folder}: the manifest lists {sorted(files)}, not {sorted(needed)}")
    return manifest


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
    """A model's network on ONNX Runtime (CPU, float32, batch norm folded).

    ``model``: any :class:`Colorizer` (its weights are read once, here: make a new engine, or
    use :func:`onnx_engine`, after changing them). ``cache``: the folder for exported graphs
    (default :func:`cache_dir`); when it cannot be written the graphs are exported to a
    temporary folder, loaded, and removed. ``threads``: ONNX Runtime's intra-op threads
    (default: torch's, ``torch.get_num_threads()``, so both engines use the same cores).

    Attributes: ``cfg`` and ``meta`` (the model's), ``manifest`` (the export's), ``folder``
    (the cache folder, None when a temporary one was used).
    """

    def __init__(self, model: Colorizer, cache: str | os.PathLike | None = None, threads: int | None = None):
        self.cfg = model.cfg
        self.meta = dict(getattr(model, "meta", {}) or {})
        self.threads = int(threads or torch.get_num_threads())
        folder = Path(cache) if cache is not None else cache_dir()
        folder = folder / cache_key(model)
        try:
            self.manifest = _cached_manifest(folder, model.cfg)
        except ValueError:  # not exported yet (or a damaged copy): export again
            try:
                self.manifest = export_onnx(model, folder)
            except WriteError:
                folder = None
        if folder is None:
            with tempfile.TemporaryDirectory(prefix="colorlib-onnx-") as tmp:
                self.manifest = export_onnx(model, tmp)
                self._load(Path(tmp))
        else:
            self._load(folder)
        self.folder = folder

    def _load(self, folder: Path) -> None:
        full = self.cfg.variant == "full"
        self.load_graphs(folder / COLORIZER_FILE, folder / GLOBAL_FILE if full else None)

    def load_graphs(self, colorizer: str | os.PathLike, global_: str | os.PathLike | None = None) -> None:
        """Run these graph files from now on instead of the exported ones: graphs with the
        same inputs and outputs (:mod:`colorlib.export`), e.g. a quantised copy. ``global_``
        is required for the full variant and must be None for the baseline (``ValueError``)."""
        if (global_ is None) != (self.cfg.variant != "full"):
            raise ValueError(f"the {self.cfg.variant} variant needs "
                             f"{'a global graph' if self.cfg.variant == 'full' else 'no global graph'}")
        self._colorizer = _session(Path(colorizer), self.threads)
        self._global = None if global_ is None else _session(Path(global_), self.threads)

    # -- the global branch ---------------------------------------------------------------
    def global_branch(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The global features ``(N, 256*width)`` and scene-class probabilities ``(N,
        num_classes)`` (softmax of section 3.3's logits) of L* ``(N, 1, H, W)`` in [0, 100],
        any size. Raises ``ValueError`` for the baseline variant (no global branch)."""
        if self._global is None:
            raise ValueError("the baseline variant has no global features")
        x = resize_for_global(_network_input(L), self.cfg.global_size)
        g, probs = _run(self._global, {"L": x.numpy()})
        return torch.from_numpy(g), torch.from_numpy(probs)

    def encode_global(self, L: torch.Tensor) -> torch.Tensor:
        """The global feature vector ``(N, 256*width)`` of L* ``(N, 1, H, W)`` in [0, 100]
        (style transfer, section 4.5)."""
        return self.global_branch(L)[0]

    # -- the whole network ---------------------------------------------------------------
    def predict_ab(
        self,
        L: torch.Tensor,
        global_L: torch.Tensor | None = None,
        global_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """a*b* (float32, about [-128, 127]) for L* ``(N, 1, H, W)`` in [0, 100], at full size
        H x W, on the CPU: :func:`colorlib.infer.predict_ab` on ONNX Runtime.

        ``global_L``: L* in [0, 100] of the photos to take the global features from (style
        transfer, section 4.5); ``global_features``: a given ``(N or 1, 256*width)`` vector
        (e.g. a mix of two). Both are ignored by the baseline, as in PyTorch. Raises
        ``ValueError`` for an L* that is not ``(N, 1, H, W)``.
        """
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"expected L shaped (N, 1, H, W), got {tuple(L.shape)}")
        x = _network_input(L)
        feeds = {"L": x.numpy()}
        if self._global is not None:
            if global_features is None:
                global_features = self.encode_global(L if global_L is None else global_L)
            g = global_features.detach().to("cpu", torch.float32)
            feeds["global_features"] = np.ascontiguousarray(g.expand(L.shape[0], -1).numpy())
        (ab01,) = _run(self._colorizer, feeds)
        return denormalize_ab(upsample_ab(torch.from_numpy(ab01), L.shape[-2:]))


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


_ENGINES: weakref.WeakKeyDictionary[Colorizer, tuple[tuple, OnnxColorizer]] = weakref.WeakKeyDictionary()


def onnx_engine(model: Colorizer, export: bool = True, key: tuple | None = None) -> OnnxColorizer | None:
    """The :class:`OnnxColorizer` of ``model``, kept on it until its weights change (the
    graphs themselves are cached on disk, :func:`cache_dir`). ``export=False``: None where
    making it would need an export (the graphs are not in the cache). ``key``: the model's
    :func:`colorlib.model.weights_key` when the caller has just computed it."""
    key = key if key is not None else weights_key(model)
    cached = _ENGINES.get(model)
    if cached is None or cached[0] != key:
        if not export and not is_cached(model):
            return None
        cached = _ENGINES[model] = (key, OnnxColorizer(model))
    return cached[1]

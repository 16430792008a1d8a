"""The network as ONNX graphs: a file any ONNX runtime (Python, C++, a web page) can run.

:func:`export_onnx` writes two graphs and a manifest, batch norm folded into the weights
(section 3.4, :func:`colorlib.model.fold_batchnorm`), float32, with dynamic batch, height
and width. The network is split where the paper's Figure 2 joins its two branches, at the
global feature vector, so that a caller can take that vector from another photo or mix two
(style transfer, section 4.5):

* ``global.onnx`` (full variant only): ``L`` ``(N, 1, S, S)``, L*/100 in [0, 1] at
  ``S = global_size`` (the caller rescales, as :meth:`colorlib.model.Colorizer.resize_for_global`
  does) -> ``global_features`` ``(N, 256*width)`` and ``probabilities`` ``(N, num_classes)``,
  the softmax of the scene logits (section 3.3).
* ``colorizer.onnx``: ``L`` ``(N, 1, H, W)``, L*/100 in [0, 1], any H and W, and (full
  variant) ``global_features`` ``(N, 256*width)`` -> ``ab`` ``(N, 2, ceil(H/2), ceil(W/2))``,
  normalised a*b* in [0, 1] (:func:`colorlib.lab.denormalize_ab` gives a*b*); upsampling to
  full size is left to the caller (:func:`colorlib.model.upsample_ab`). The baseline
  variant has no global branch: its colorizer takes ``L`` only.
* ``manifest.json``: the model's config, class names, saturation, the opset, each graph's
  inputs and outputs (shapes, ranges) and the sha256 of each graph file.

Needs the ``onnx`` extra (``pip install "colorlib[onnx]"``: onnx, onnxscript for torch's
exporter, onnxruntime to run the graphs); importing this module without it raises an
``ImportError`` whose message is one line naming the extra.

    from colorlib.checkpoint import load_model
    from colorlib.onnx.export import export_onnx
    export_onnx(load_model("miniplaces-full"), "onnx/miniplaces-full")

Running such a folder: :class:`colorlib.onnx.OnnxColorizer`; ``colorlib export-onnx`` is the
command.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..colorspace import DEFAULT_SPACE
from ..io import atomic_write, write_json
from ..lab import AB_SCALE, AB_SHIFT
from ..model import Colorizer, ConvBlock, fold_batchnorm
from .manifest import COLORIZER_FILE, FORMAT_VERSION, GLOBAL_FILE, MANIFEST_FILE, read_manifest

try:
    import onnx
    import onnxscript  # noqa: F401 - torch.onnx.export(dynamo=True) translates through it
    from onnx import numpy_helper
except ImportError:
    raise ImportError('exporting to ONNX needs the onnx extra: pip install "colorlib[onnx]"') from None

#: ONNX operator set of the graphs (ONNX Runtime 1.14+ and onnxruntime-web run it).
OPSET = 18


class ExportError(RuntimeError):
    """A model that could not be exported; the message is one line."""


# -- the two graphs as modules ------------------------------------------------------------
class GlobalGraph(nn.Module):
    """Figure 2's lower path: L*/100 at ``global_size`` -> (global features, class probabilities)."""

    def __init__(self, net: Colorizer):
        super().__init__()
        self.net = net

    def forward(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g, logits = self.net.global_branch(L)
        return g, logits.softmax(1)


class ColorizerGraph(nn.Module):
    """Figure 2's upper path and the fusion layer (Eq. 5): L*/100 (+ global features) -> a*b*."""

    def __init__(self, net: Colorizer):
        super().__init__()
        self.net = net

    def forward(self, L: torch.Tensor, global_features: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(L, global_features=global_features).ab


def folded_for_export(model: Colorizer) -> Colorizer:
    """:func:`fold_batchnorm` of ``model``, float32 on the CPU, in the default memory layout,
    with plain convolution + ReLU (oneDNN's fused call has no ONNX form)."""
    net = fold_batchnorm(copy.deepcopy(model).float().cpu())
    for m in net.modules():
        if isinstance(m, ConvBlock):
            m.fused = False
    return net.to(memory_format=torch.contiguous_format).eval()


def _graph_modules(net: Colorizer) -> dict[str, tuple[nn.Module, tuple, dict, list, list]]:
    """Each graph: (module, example inputs, dynamic shapes, input names, output names). The
    examples are batch 2 and H, W not multiples of 8 so that no size is specialised."""
    cfg, D = net.cfg, torch.export.Dim.DYNAMIC
    s, c = cfg.global_size, cfg.channels(256)
    graphs = {}
    if net.global_network is not None:
        graphs["global"] = (GlobalGraph(net).eval(), (torch.rand(2, 1, s, s),), {"L": {0: D}},
                            ["L"], ["global_features", "probabilities"])
        graphs["colorizer"] = (ColorizerGraph(net).eval(), (torch.rand(2, 1, 45, 67), torch.rand(2, c)),
                               {"L": {0: D, 2: D, 3: D}, "global_features": {0: D}},
                               ["L", "global_features"], ["ab"])
    else:
        graphs["colorizer"] = (ColorizerGraph(net).eval(), (torch.rand(2, 1, 45, 67),),
                               {"L": {0: D, 2: D, 3: D}}, ["L"], ["ab"])
    return graphs


def _rename_dims(proto: onnx.ModelProto, names: list[str | None]) -> None:
    """Give the exporter's symbols (``s0``, ``s17``) for the first input's dimensions the
    readable ``names`` (``N``, None, ``H``, ``W``) everywhere they appear in the graph's shapes."""
    first = proto.graph.input[0].type.tensor_type.shape.dim
    mapping = {d.dim_param: n for d, n in zip(first, names) if d.dim_param and n}
    if not mapping:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, mapping)) + r")\b")
    for v in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for d in v.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_param = pattern.sub(lambda m: mapping[m.group(1)], d.dim_param)


def _export_one(module: nn.Module, args: tuple, dynamic: dict, inputs: list,
                outputs: list) -> onnx.ModelProto:
    """torch.onnx's exporter (torch.export + onnxscript), quietly: it prints progress on stdout
    and logs about optional packages, none of which a user asked for."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, args, dynamo=True, input_names=inputs, output_names=outputs,
                                        opset_version=OPSET, dynamic_shapes=dynamic, verbose=False,
                                        optimize=True, external_data=False)
    except Exception as e:  # noqa: BLE001 - the exporter raises many kinds; one line for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch could not export the {type(module).__name__}: {first}") from e
    finally:
        log.setLevel(level)
    proto = program.model_proto
    _rename_dims(proto, ["N", None, "H", "W"])
    return proto


# -- templates: one export per architecture, the weights filled in per model ----------------
# torch's exporter takes seconds per graph while the weights only fill its initializers, so a
# graph is exported once per config and reused for every model of that config (the shipped
# models share one). A template keeps its weights' names, shapes and types, not their values.
_TEMPLATES: dict[tuple[str, str], onnx.ModelProto] = {}
#: The parts of :class:`Colorizer` (Figure 2) each graph runs, hence whose weights it holds.
GRAPH_PARTS = {"global": ("low_level", "global_network", "classifier"),
               "colorizer": ("low_level", "mid_level", "fusion", "colorization")}


def _param_inits(proto: onnx.ModelProto, params: dict[str, torch.Tensor]) -> bool:
    """True when filling in another model's parameters gives exactly that model's graph: every
    parameter is an initializer of its own name (``net.<parameter>``) and shape, and the only
    other floating-point initializers are a few numbers (such as the x2 upsampling's scales),
    not a weight the exporter folded into a derived constant. Otherwise each model's graph is
    exported from the model itself."""
    float_types = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                   onnx.TensorProto.BFLOAT16}
    shapes = {t.name: tuple(t.dims) for t in proto.graph.initializer}
    if any(shapes.get(n) != tuple(p.shape) for n, p in params.items()):
        return False
    return all(t.name in params or t.data_type not in float_types or math.prod(t.dims) <= 16
               for t in proto.graph.initializer)


def _fill(template: onnx.ModelProto, params: dict[str, torch.Tensor]) -> onnx.ModelProto:
    proto = copy.deepcopy(template)
    for i, t in enumerate(proto.graph.initializer):
        if t.name in params:
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(params[t.name].numpy(), t.name))
    return proto


def _strip(proto: onnx.ModelProto, params: dict[str, torch.Tensor]) -> onnx.ModelProto:
    template = copy.deepcopy(proto)
    for t in template.graph.initializer:
        if t.name in params:
            t.ClearField("raw_data")
            t.ClearField("float_data")
    return template


def export_graphs(model: Colorizer) -> dict[str, onnx.ModelProto]:
    """The ONNX graphs of ``model`` (``"global"`` for the full variant, ``"colorizer"``), batch
    norm folded, float32, checked with :func:`onnx.checker.check_model`. Raises
    :class:`ExportError` (one line) when torch cannot export it, or for a model that predicts
    YUV or RGB (section 4.8; the graphs' consumers expect a*b*)."""
    if model.cfg.color_space != DEFAULT_SPACE:
        raise ExportError(f"only L*a*b* models export to ONNX; this one predicts {model.cfg.color_space.upper()} "
                          "(the colour-space comparison, section 4.8) and runs on PyTorch only")
    net = folded_for_export(model)
    key_cfg = json.dumps(net.cfg.to_dict(), sort_keys=True)
    protos = {}
    for kind, (module, args, dynamic, inputs, outputs) in _graph_modules(net).items():
        params = {n: p.detach() for n, p in module.named_parameters()
                  if n.split(".")[1] in GRAPH_PARTS[kind]}
        template = _TEMPLATES.get((key_cfg, kind))
        if template is None:
            proto = _export_one(module, args, dynamic, inputs, outputs)
            if _param_inits(proto, params):
                _TEMPLATES[(key_cfg, kind)] = _strip(proto, params)
        else:
            proto = _fill(template, params)
        onnx.checker.check_model(proto)
        protos[kind] = proto
    return protos


# -- files ----------------------------------------------------------------------------------
def weights_hash(model: Colorizer) -> str:
    """sha256 (hex) of the model's config, its weights as float32, :data:`FORMAT_VERSION` and the
    opset: the export's provenance, recorded in its manifest (``weights_sha256``)."""
    h = hashlib.sha256(json.dumps({"config": model.cfg.to_dict(), "format": FORMAT_VERSION,
                                   "opset": OPSET}, sort_keys=True).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def _io_doc(cfg, kind: str) -> dict:
    """What each graph takes and gives, for the manifest (a reader in another language)."""
    c, s = cfg.channels(256), cfg.global_size
    g = {"shape": ["N", c], "range": "any (ReLU output, >= 0)",
         "meaning": "the global feature vector (Figure 2), from global.onnx or a mix of two (section 4.5)"}
    if kind == "global":
        return {
            "inputs": {"L": {"shape": ["N", 1, s, s], "range": [0, 1],
                             "meaning": "L*/100, rescaled to global_size "
                                        "(bilinear, antialiased when shrinking)"}},
            "outputs": {"global_features": g,
                        "probabilities": {"shape": ["N", cfg.num_classes], "range": [0, 1],
                                          "meaning": "softmax of the scene-class logits (section 3.3)"}},
        }
    inputs = {"L": {"shape": ["N", 1, "H", "W"], "range": [0, 1], "meaning": "L*/100, any H and W"}}
    if cfg.variant == "full":
        inputs["global_features"] = g
    return {"inputs": inputs,
            "outputs": {"ab": {"shape": ["N", 2, "ceil(H/2)", "ceil(W/2)"], "range": [0, 1],
                               "meaning": f"normalised a*b*: a*b* = ab * {AB_SCALE:g} - {AB_SHIFT:g} "
                                          "(colorlib.lab.denormalize_ab); upsample bilinearly x2 and crop "
                                          "to H x W (colorlib.model.upsample_ab)"}}}


def export_onnx(model: Colorizer, out_dir: str | os.PathLike, name: str | None = None) -> dict:
    """Write ``model``'s ONNX graphs and ``manifest.json`` into ``out_dir`` (created if missing);
    returns the manifest. See the module docstring for the graphs' inputs and outputs.

    Every file is written atomically (:func:`colorlib.io.atomic_write`), the manifest last, so
    a folder with a manifest holds a complete export whose files match its hashes. ``name``
    (default: the model's own, ``model.meta["name"]``) is recorded in the manifest. Raises
    :class:`ExportError` if torch cannot export the model and :class:`colorlib.io.WriteError`
    (one line) if a file cannot be written.
    """
    out = Path(out_dir)
    meta = getattr(model, "meta", {}) or {}
    protos = export_graphs(model)
    graphs = {}
    for kind, proto in protos.items():
        file = GLOBAL_FILE if kind == "global" else COLORIZER_FILE
        data = without_node_metadata(proto).SerializeToString()  # no exporter stack traces (paths)
        atomic_write(out / file, lambda p, data=data: p.write_bytes(data))
        graphs[kind] = {"file": file, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                        **_io_doc(model.cfg, kind)}
    cfg = model.cfg
    classes = None  # the baseline has no classifier
    if cfg.variant == "full":
        classes = meta.get("classes") or [str(i) for i in range(cfg.num_classes)]
    manifest = {
        "format": "colorlib-onnx",
        "format_version": FORMAT_VERSION,
        "name": name if name is not None else meta.get("name"),
        "paper": "Iizuka, Simo-Serra, Ishikawa. Let there be Color! SIGGRAPH 2016",
        "config": cfg.to_dict(),
        "classes": classes,
        "saturation": float(meta.get("saturation", 1.0)),
        "opset": OPSET,
        "dtype": "float32",
        "batchnorm": "folded into the weights (section 3.4)",
        "weights_sha256": weights_hash(model),
        "exporter": {"colorlib": __version__, "torch": torch.__version__, "onnx": onnx.__version__},
        "graphs": graphs,
        "pipeline": [
            "L* in [0, 100] of the photo (as seen over white); x = L*/100",
            "global features: global.onnx on x rescaled to global_size x global_size (or a given vector)",
            "colorizer.onnx(x, global features) -> ab at half size; upsample x2 bilinear, crop to H x W",
            f"a*b* = (ab * {AB_SCALE:g} - {AB_SHIFT:g}) * saturation; join with the photo's own L*; "
            "L*a*b* -> sRGB",
        ],
    }
    write_json(out / MANIFEST_FILE, manifest)
    return manifest


# -- float16 storage (the book's pages download the graphs) -----------------------------------
#: The largest finite float16; a weight beyond it keeps float32 storage.
FLOAT16_MAX = 65504.0


def float16_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``proto`` that stores its float32 weights as float16, in half the bytes, and
    still computes in float32: each float32 initializer of more than 16 values becomes a
    float16 initializer ``<name>.float16``, and a ``Cast`` to float32 at the head of the graph
    gives back ``<name>``, so every operator, input and output keeps its type. The results
    change only by float16's rounding of each weight (relative error at most 2^-11). Few-value
    constants (the x2 upsampling's scales), graph inputs and weights beyond
    :data:`FLOAT16_MAX` keep float32. Checked with :func:`onnx.checker.check_model`."""
    out = copy.deepcopy(proto)
    graph = out.graph
    inputs = {i.name for i in graph.input}
    casts, kept = [], []
    for t in graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT or math.prod(t.dims) <= 16 or t.name in inputs:
            kept.append(t)
            continue
        w = numpy_helper.to_array(t)
        if not np.isfinite(w).all() or np.abs(w).max() > FLOAT16_MAX:
            kept.append(t)
            continue
        half = numpy_helper.from_array(w.astype(np.float16), f"{t.name}.float16")
        kept.append(half)
        casts.append(onnx.helper.make_node("Cast", [half.name], [t.name], name=f"{t.name}.to_float32",
                                           to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)  # the casts first: the graph stays in topological order
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(out)
    return out


def without_node_metadata(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` (changed in place, and returned) without the metadata torch's exporter attaches
    to every node (its Python stack trace, with the folders of the machine that exported it, and
    the module names): nothing a runtime reads, and nothing to publish."""
    for node in proto.graph.node:
        node.ClearField("metadata_props")
        node.ClearField("doc_string")
    return proto


def export_float16(src: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Copy the export in ``src`` (:func:`export_onnx`, checked with :func:`read_manifest`)
    into ``out_dir`` with :func:`float16_weights` graphs, :func:`without_node_metadata`, for
    publishing (the book's pages download them); returns the new manifest, whose
    ``weights_storage`` says so and whose hashes and sizes are the new files'. Its inputs,
    outputs and arithmetic stay float32 (``dtype``)."""
    src, out = Path(src), Path(out_dir)
    manifest = read_manifest(src)
    for g in manifest["graphs"].values():
        data = without_node_metadata(float16_weights(onnx.load(src / g["file"]))).SerializeToString()
        atomic_write(out / g["file"], lambda p, data=data: p.write_bytes(data))
        g.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest["weights_storage"] = "float16, cast to float32 at the head of each graph (colorlib.onnx.export.float16_weights)"
    write_json(out / MANIFEST_FILE, manifest)
    return manifest

"""``colorlib export-onnx``: the network as ONNX graphs and a manifest, over :mod:`colorlib.onnx.export`.

    colorlib export-onnx --model miniplaces-full -o onnx/miniplaces-full
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import model_name
from ..model import Colorizer
from .common import DEFAULT_MODEL, CommandFailed, UserError, check_outputs, open_model

EXTRA = 'pip install "colorlib[onnx]"'

DESCRIPTION = """\
Write the network as two ONNX graphs and a manifest into DIR, for any ONNX
runtime (ONNX Runtime in Python or C++, onnxruntime-web in a page). Batch norm
is folded into the weights (section 3.4); float32; batch, height and width are
dynamic.

  global.onnx     the global branch (Figure 2, lower path): L*/100 at
                  global_size x global_size -> the global feature vector and
                  the scene-class probabilities (section 3.3). A baseline
                  model has no global branch, so it gets no global.onnx.
  colorizer.onnx  the colorizer: L*/100 of any size (and, for a full model, a
                  global feature vector) -> normalised a*b* at half size;
                  upsample x2 and join with the photo's own L*.
  manifest.json   config, class names, saturation, each graph's inputs and
                  outputs (shapes, ranges) and sha256; written last, so a
                  folder with a manifest holds a complete export.

The graphs are split at the global feature vector, where Figure 2 fuses its
two branches, so that a caller can take that vector from another photo, or mix
two: style transfer (section 4.5).
"""

EPILOG = f"""\
examples:
  colorlib export-onnx --model miniplaces-full -o onnx/miniplaces-full
  colorlib export-onnx --model runs/smoke -o onnx/smoke --force
  colorlib colorize photo.jpg --onnx onnx/miniplaces-full   # run the graphs

needs the onnx extra: {EXTRA}
"""


def _export_module():
    """:mod:`colorlib.onnx.export`, or a :class:`UserError` naming the extra it needs."""
    try:  # onnx and onnxscript are heavy and optional (the onnx extra): imported only for this command
        from ..onnx import export
    except ImportError as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "colorlib[onnx]" not in why:
            why = f"exporting to ONNX needs the onnx extra ({why}): {EXTRA}"
        raise UserError(why) from None
    return export


def _name(spec: str, model: Colorizer) -> str:
    """The name the manifest records: the model's own, else its run folder's or file's (never a path)."""
    path = Path(spec)
    return model.meta.get("name") or (path.resolve().name if path.is_dir() else model_name(path))


def _shapes(ports: dict) -> str:
    return ", ".join(f"{k} ({', '.join(map(str, v['shape']))})" for k, v in ports.items())


def cmd_export(a: argparse.Namespace) -> None:
    """Export ``a.model`` into the folder ``a.output`` and print each file written; exit status 2
    for a usage mistake (the extra missing, a place that cannot be written, an export already
    there without ``--force``), 1 for a model torch cannot export or a file that cannot be written."""
    export = _export_module()
    out = Path(a.output)
    files = [out / f for f in (export.GLOBAL_FILE, export.COLORIZER_FILE, export.MANIFEST_FILE)]
    check_outputs(*files)
    there = [f.name for f in files if f.exists()]
    if there and not a.force:
        raise UserError(f"{out} already holds an export ({', '.join(there)}); pass --force to replace it")
    model = open_model(a.model)
    try:
        manifest = export.export_onnx(model, out, name=_name(a.model, model))
    except export.ExportError as e:
        raise CommandFailed(str(e)) from None
    for kind, graph in manifest["graphs"].items():
        print(f"wrote {out / graph['file']} ({graph['bytes'] / 1e6:.1f} MB), the {kind} graph: "
              f"{_shapes(graph['inputs'])} -> {_shapes(graph['outputs'])}")
    listed = {g["file"] for g in manifest["graphs"].values()}
    for stale in (f for f in files[:2] if f.name not in listed and f.exists()):
        stale.unlink()  # a previous export's graph that this model does not have (--force)
        print(f"removed {stale} (from the export this one replaces; a {manifest['config']['variant']} "
              "model has no such graph)")
    print(f"wrote {out / export.MANIFEST_FILE} (model {manifest['name']}, opset {manifest['opset']}, "
          f"saturation {manifest['saturation']})")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib export-onnx`` and its options."""
    e = sub.add_parser("export-onnx", help="write the network as ONNX graphs (global branch, colorizer)",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH",
                   help=f"shipped model name, .safetensors/.pt file, or run folder (default {DEFAULT_MODEL})")
    e.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for the graphs and manifest.json (created if missing)")
    e.add_argument("--force", action="store_true", help="replace an export already in DIR")
    e.set_defaults(func=cmd_export)

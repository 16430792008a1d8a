"""``colorlib info``: a model's config, training figures and validation results.

    colorlib info --list
    colorlib info --model miniplaces-full
    colorlib info --model runs/smoke --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..checkpoint import CheckpointError, available_models, model_name, models_dir
from ..colorspace import DEFAULT_SPACE, SPACES
from ..model import weight_count
from ..report import finite
from ..run import run_summary
from ..train import Loss
from .common import DEFAULT_MODEL, UserError, open_model, printable


def model_info(spec: str) -> dict:
    """The figures ``info`` shows for the model ``spec`` (a shipped name, weights file or run
    folder): ``model``, ``file``, ``config``, ``weights``, ``parameters``, ``training`` (a run
    folder's own figures when it is one) and ``results`` (the shipped models' validation row of
    ``results.json``, or of ``results-colorspace.json`` for the colour-space comparison), plus
    ``saturation``, ``device`` and ``card`` (the model card's path or None)."""
    model = open_model(spec)
    meta = model.meta
    path = Path(model.source)
    try:  # a run folder of ours: its figures from config.json, log.csv, val.csv and the checkpoint
        training = meta.get("training") or run_summary(path.parent, meta)
    except CheckpointError as e:
        raise UserError(str(e)) from None
    info = {"model": spec, "file": str(path), "config": meta.get("model"), "weights": weight_count(model),
            "parameters": sum(p.numel() for p in model.parameters()), "training": training,
            "results": meta.get("results")}
    for name in ("results.json", "results-colorspace.json"):  # the colour-space comparison's own run
        results = models_dir() / name
        if results.exists() and path.parent == models_dir():
            info["results"] = info["results"] or json.loads(results.read_text()).get("models", {}).get(model_name(path))
    card = models_dir() / f"{model_name(path)}.md"
    return {**info, "saturation": meta.get("saturation", 1.0), "device": meta.get("device"),
            "card": str(card) if card.exists() else None}


def cmd_info(a: argparse.Namespace) -> None:
    """Print the shipped models' names (``--list``), or one model's figures as text or strict JSON."""
    if a.list:
        for name in available_models():
            print(name)
        return
    info = model_info(a.model)
    if a.json:
        shown = {k: v for k, v in info.items() if k not in ("saturation", "device", "card")}
        print(json.dumps(finite(shown), indent=1, allow_nan=False))
        return
    cfg = info["config"]
    _say(f"{info['model']}  ({info['file']})")
    predicts = SPACES[cfg.get("color_space", DEFAULT_SPACE)].label
    _say(f"  network: {cfg['variant']}, width {cfg['width']}, global size {cfg['global_size']}, "
         f"{cfg['num_classes']} classes, predicts {predicts}; {info['parameters']:,} parameters; "
         f"saturation {info['saturation']}")
    for line in _training_lines(info.get("training") or {}, info["device"]):
        _say(line)
    r = info.get("results") or {}
    if r:
        top = (f", top-1 {r['top1']:.1f}%, top-5 {r['top5']:.1f}%" if r.get("top1") is not None else "")
        _say(f"  validation ({r['images']:,} colour images of MiniPlaces val): PSNR {r['psnr']:.2f} dB, "
             f"SSIM {r['ssim']:.3f}, CIEDE2000 {r['ciede2000']:.2f}, AuC {r['auc']:.2f}%, colourfulness "
             f"{r['cf_pred']:.1f} (truth {r['cf_true']:.1f}, gap {r['cf_gap']:.1f}){top}")
    if info["card"]:
        _say(f"  model card: {info['card']}")


def _say(line: str) -> None:
    """Print a line of a model's figures: its metadata's text through :func:`printable`, never raw."""
    print(printable(line))


def _training_lines(t: dict, device: str | None) -> list[str]:
    """The text lines of a model's training figures (none without them)."""
    if not t:
        return []
    of = f" of {t['total_steps']:,}" if t.get("total_steps") else ""
    lines = [f"  training: {t.get('steps', 0):,}{of} steps, {t.get('images_seen', 0):,} images seen "
             f"({t.get('epochs') or 0:.1f} epochs of {t.get('train_images') or 0:,} images) in "
             f"{t.get('wall_s') or 0:.0f} s on {device or t.get('device') or '?'}"]
    final = t.get("final") or {}
    if final.get("loss") is not None:  # Eq. 6 and its terms, as log.csv names them
        terms = ", ".join(f"{name.removesuffix('_loss')} {final[name]:.5f}" for name in Loss._fields[1:]
                          if final.get(name) is not None)
        lines.append(f"  final training loss: {final['loss']:.5f} ({terms})")
    v = t.get("val") or {}
    if v:
        top = (f", top-1 {v['val_top1']:.3f}, top-5 {v['val_top5']:.3f}"
               if v.get("val_top1") is not None else "")
        lines.append(f"  last validation (step {v['step']:,}, {v['images']:,} images): colour loss "
                     f"{v['val_colour_loss']:.5f}{top}")
    return lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib info`` and its options."""
    i = sub.add_parser("info", help="show a model's config, training and validation figures")
    i.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name, weights file or run folder (default {DEFAULT_MODEL})")
    i.add_argument("--list", action="store_true", help="list the shipped models")
    i.add_argument("--json", action="store_true",
                   help="print the same figures (config, training, validation results) as JSON")
    i.set_defaults(func=cmd_info)

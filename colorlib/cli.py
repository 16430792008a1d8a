"""The ``colorlib`` command: colorize photos, train, inspect, evaluate and time models.

    colorlib colorize photo.jpg -o photo-color.png
    colorlib train --smoke --out runs/smoke
    colorlib info --model miniplaces-full

Run ``colorlib COMMAND --help`` for each command's options.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .cli_eval import register as _register_eval  # imports nothing of this module at load time

DEFAULT_MODEL = "miniplaces-full"


class UserError(Exception):
    """A mistake in the command line or its inputs: printed as one line, exit status 2."""


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda: this PyTorch sees no CUDA GPU")
    return torch.device(name)


def _load(spec: str, device="cpu"):
    from .checkpoint import CheckpointError, load_model

    try:
        return load_model(spec, device)
    except CheckpointError as e:
        raise UserError(str(e)) from None


# -- colorize -------------------------------------------------------------------------------
def cmd_colorize(a: argparse.Namespace) -> None:
    import torch

    from .infer import colorize, global_features_of
    from .model import mix_global

    if a.output and len(a.images) > 1:
        raise UserError("-o names one output file; with several images use --out-dir")
    missing = [p for p in [*a.images, a.global_image] if p and not Path(p).is_file()]
    if missing:
        raise UserError(f"no such image file: {missing[0]}")
    if a.mix is not None and not a.global_image:
        raise UserError("--mix needs --global-image (the photo to mix global features with)")
    out_dir = Path(a.out_dir) if a.out_dir else None
    targets = _colorize_targets(a.images, a.global_image, a.output, out_dir)
    model = _load(a.model, _device(a.device))
    if a.global_image and model.global_features is None:
        raise UserError(f"{a.model} is a baseline model: it has no global features to transfer")
    from tqdm.auto import tqdm

    for path, target in tqdm(list(zip(a.images, targets)), desc="colorizing", unit="image",
                             disable=len(a.images) < 3 or a.quiet):
        g = None
        global_image = a.global_image
        try:
            with torch.inference_mode():
                if a.mix is not None:
                    g = mix_global(global_features_of(model, path), global_features_of(model, a.global_image),
                                   a.mix)
                    global_image = None
                result = colorize(model, path, global_image=global_image, global_features=g,
                                  saturation=a.saturation)
        except ValueError as e:
            raise UserError(str(e)) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        _save_image(result, target)
        if not a.quiet:
            print(f"{path} -> {target}")


def _save_image(image, target: Path) -> None:
    """Save in the format of ``target``'s suffix. RGBA stays RGBA in formats that hold alpha
    (PNG, WebP, TIFF); other formats get it composited over white, as a viewer shows it."""
    import io

    import numpy as np
    from PIL import Image

    from .infer import over_white

    fmt = Image.registered_extensions()[target.suffix.lower()]
    if image.mode == "RGBA" and fmt not in ("PNG", "WEBP", "TIFF"):
        rgba = np.asarray(image)
        image = Image.fromarray(over_white(rgba[..., :3], rgba[..., 3]))
    buf = io.BytesIO()  # encoded first: a format that fails leaves no file behind
    image.save(buf, format=fmt)
    target.write_bytes(buf.getvalue())


def _colorize_targets(images: list[str], global_image: str | None, output: str | None,
                      out_dir: Path | None) -> list[Path]:
    """Where each colorized image goes; refuses, before any work, a name PIL cannot write, an
    output that is one of the input photos, and two inputs that would share an output."""
    from PIL import Image

    targets = [Path(output) if output else (out_dir or Path(p).parent) / f"{Path(p).stem}-color.png"
               for p in images]
    Image.init()
    for t in targets:
        if Image.registered_extensions().get(t.suffix.lower()) not in Image.SAVE:
            raise UserError(f"cannot tell the image format of {t}: give a name ending in .png or .jpg")
    inputs = {Path(p).resolve() for p in [*images, global_image] if p}
    seen: dict[Path, str] = {}
    for path, t in zip(images, targets):
        r = t.resolve()
        if r in inputs:
            raise UserError(f"refusing to overwrite the input photo {t} (use -o or --out-dir)")
        if r in seen:
            raise UserError(f"{seen[r]} and {path} would both be written to {t}; use --out-dir")
        seen[r] = path
    return targets


# -- train ------------------------------------------------------------------------------------
SMOKE = dict(config="tiny", steps=80, batch_size=32, train_limit=2000, val_limit=200, log_every=5,
             checkpoint_every=40, optimizer="adamw", lr=3e-3)


def cmd_train(a: argparse.Namespace) -> None:
    from .checkpoint import CheckpointError, save_model
    from .data import DataError
    from .io import WriteError
    from .train import TrainConfig, train

    if a.steps is not None and a.epochs is not None:
        raise UserError("give --steps or --epochs, not both")
    kw = dict(SMOKE) if a.smoke else {}
    for name in ("config", "variant", "width", "dropout", "alpha", "optimizer", "lr", "weight_decay",
                 "schedule", "warmup_steps", "batch_size", "steps", "epochs", "min_scale", "seed", "data",
                 "shards", "val_limit", "checkpoint_every", "log_every", "precision", "device", "workers"):
        v = getattr(a, name)
        if v is not None:
            kw[name] = v
    if a.epochs is not None:
        kw.pop("steps", None)  # --smoke --epochs 2: the user's length, not the smoke run's
    if a.limit is not None:
        kw["train_limit"] = a.limit
    if a.compile:
        kw["compile"] = True
    if kw.get("steps") is None and kw.get("epochs") is None:
        kw["epochs"] = 1.0
    try:
        tc = TrainConfig(**kw)  # checks every option (the device too) before the run folder exists
        result = train(tc, a.out, resume=a.resume, progress=not a.quiet)
    except (DataError, CheckpointError, FileExistsError, ValueError, WriteError, FloatingPointError) as e:
        raise UserError(str(e)) from None
    if int(os.environ.get("RANK", 0)) != 0:
        return
    if result.already_finished:  # nothing trained, no file touched
        where = (f"already finished at step {result.steps} of {result.total_steps}"
                 if result.steps == result.total_steps else
                 f"is already at step {result.steps}, past the {result.total_steps} steps asked for")
        print(f"{a.out} {where}; nothing to train")
        return
    if not result.interrupted:
        from .checkpoint import load_model

        try:
            model = load_model(Path(a.out) / "checkpoint.pt")
            meta = {k: v for k, v in model.meta.items() if k != "model"}
            save_model(model, Path(a.out) / "model.safetensors", meta, half=False)
        except CheckpointError as e:
            raise UserError(str(e)) from None
    first = result.log[0]["loss"] if result.log else float("nan")
    last = result.log[-1]["loss"] if result.log else float("nan")
    print(f"{result.steps} steps, {result.images_seen} images seen in {result.wall_s:.1f} s "
          f"({result.train_images} training images; {result.removed_gray} gray/low-colour and "
          f"{result.removed_corrupt} unreadable removed). loss {first:.4f} -> {last:.4f}")
    if result.val:
        v = result.val[-1]
        print(f"validation: colour loss {v['val_colour_loss']:.5f}, top-1 {v['val_top1']:.3f}, "
              f"top-5 {v['val_top5']:.3f} on {v['images']} images")
    print(f"run folder: {a.out} (log.csv, val.csv, checkpoint.pt"
          f"{'' if result.interrupted else ', model.safetensors'})")
    if result.interrupted:
        sys.exit(130)


# -- info --------------------------------------------------------------------------------------
def cmd_info(a: argparse.Namespace) -> None:
    from .checkpoint import CheckpointError, available_models, model_name, models_dir
    from .model import weight_count
    from .train import run_summary

    if a.list:
        for name in available_models():
            print(name)
        return
    model = _load(a.model)
    meta = model.meta
    path = Path(model.source)
    card = models_dir() / f"{model_name(path)}.md"
    try:  # a run folder of ours: its figures from config.json, log.csv, val.csv and the checkpoint
        training = meta.get("training") or run_summary(path.parent, meta)
    except CheckpointError as e:
        raise UserError(str(e)) from None
    info = {
        "model": a.model,
        "file": str(path),
        "config": meta.get("model"),
        "weights": weight_count(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": training,
        "results": meta.get("results"),
    }
    results = models_dir() / "results.json"
    if results.exists() and Path(path).parent == models_dir():
        info["results"] = json.loads(results.read_text()).get("models", {}).get(model_name(path))
    if a.json:
        print(json.dumps(info, indent=1))
        return
    print(f"{info['model']}  ({info['file']})")
    cfg = info["config"]
    print(f"  network: {cfg['variant']}, width {cfg['width']}, global size {cfg['global_size']}, "
          f"{cfg['num_classes']} classes; {info['parameters']:,} parameters; "
          f"saturation {meta.get('saturation', 1.0)}")
    t = info.get("training") or {}
    if t:
        of = f" of {t['total_steps']:,}" if t.get("total_steps") else ""
        print(f"  training: {t.get('steps', 0):,}{of} steps, {t.get('images_seen', 0):,} images seen "
              f"({t.get('epochs') or 0:.1f} epochs of {t.get('train_images') or 0:,} images) in "
              f"{t.get('wall_s') or 0:.0f} s on {meta.get('device') or t.get('device') or '?'}")
        final = t.get("final") or {}
        if final.get("loss") is not None:
            print(f"  final training loss: {final['loss']:.5f} (colour {final['colour_loss']:.5f}, "
                  f"class {final['class_loss']:.3f})")
        v = t.get("val") or {}
        if v:
            top = (f", top-1 {v['val_top1']:.3f}, top-5 {v['val_top5']:.3f}"
                   if v.get("val_top1") is not None else "")
            print(f"  last validation (step {v['step']:,}, {v['images']:,} images): colour loss "
                  f"{v['val_colour_loss']:.5f}{top}")
    r = info.get("results") or {}
    if r:
        top = (f", top-1 {r['top1']:.1f}%, top-5 {r['top5']:.1f}%" if r.get("top1") is not None else "")
        print(f"  validation ({r['images']:,} colour images of MiniPlaces val): PSNR {r['psnr']:.2f} dB, "
              f"SSIM {r['ssim']:.3f}, CIEDE2000 {r['ciede2000']:.2f}, AuC {r['auc']:.2f}%, colourfulness "
              f"{r['cf_pred']:.1f} (truth {r['cf_true']:.1f}, gap {r['cf_gap']:.1f}){top}")
    if card.exists():
        print(f"  model card: {card}")


TRAIN_EXAMPLES = """examples:
  colorlib train --smoke --out runs/smoke                      # ~20 s on a CPU, real photos
  colorlib train --out runs/full --epochs 10                   # the full model, ADADELTA
  colorlib train --out runs/base --epochs 10 --variant baseline
  colorlib train --out runs/full --resume                      # after Ctrl-C or a crash
  torchrun --nproc_per_node 4 -m colorlib train --out runs/ddp --epochs 10

the recipe of the shipped miniplaces-* models (see data/models/README.md):
  colorlib train --out runs/mp --config miniplaces --epochs 38 --batch-size 256 \\
      --optimizer adamw --lr 2e-3 --weight-decay 0.05 --schedule cosine --warmup-steps 210 --min-scale 0.6
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="colorlib",
        description="Automatic image colorization after Iizuka, Simo-Serra and Ishikawa, "
                    "'Let there be Color!' (SIGGRAPH 2016).",
        epilog="Shipped models: colorlib info --list. Data: --data, $COLORLIB_DATA or ../shared/data.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("colorize", help="colorize black-and-white (or any) photos",
                       description="Colorize photos of any size. The output keeps each input's "
                                   "lightness; only a*b* come from the network. Transparent input is "
                                   "colorized as seen over white; PNG, WebP and TIFF outputs keep its alpha.")
    c.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any mode; colour input is "
                                                              "reduced to its luminance first)")
    c.add_argument("-o", "--output", help="output file (one input only; default: IMAGE-color.png)")
    c.add_argument("--out-dir", help="write IMAGE-color.png files here")
    c.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name, .safetensors/.pt file, or run folder (default {DEFAULT_MODEL})")
    c.add_argument("--global-image", help="take the global features from this photo (style transfer)")
    c.add_argument("--mix", type=float, help="with --global-image: 0 = own global features, 1 = the other's")
    c.add_argument("--saturation", type=float,
                   help="gain on the predicted a*b* (default: the model's own, see its card; 1.0 = raw network)")
    c.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    c.add_argument("-q", "--quiet", action="store_true")
    c.set_defaults(func=cmd_colorize)

    t = sub.add_parser("train", help="train a model (paper Eq. 6, ADADELTA by default)",
                       description="Train on MiniPlaces (tar shards or folder), Places365-Standard or "
                                   "a folder of colour photos. Ctrl-C writes a checkpoint; --resume "
                                   "continues it exactly. Under torchrun, trains with DDP. The run "
                                   "folder gets log.csv (every step), val.csv (every epoch), "
                                   "config.json, checkpoints and the final model.",
                       epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", help="data root (default: $COLORLIB_DATA, else ../shared/data)")
    t.add_argument("--out", required=True, help="run folder (new, or existing with --resume)")
    t.add_argument("--config", choices=["paper", "miniplaces", "tiny"],
                   help="model preset (default miniplaces; --smoke: tiny)")
    t.add_argument("--variant", choices=["full", "baseline"],
                   help="full (default) or the paper's baseline: no global features, no classifier")
    t.add_argument("--alpha", type=float, help="classification loss weight (default 1/300; baseline: 0)")
    t.add_argument("--width", type=float, help="channel multiplier (1.0 = paper)")
    t.add_argument("--dropout", type=float, help="dropout before the global FC layers")
    t.add_argument("--optimizer", choices=["adadelta", "adamw"], help="default adadelta, as the paper")
    t.add_argument("--lr", type=float, help="learning rate (default 1.0 for ADADELTA, 1e-3 for AdamW)")
    t.add_argument("--weight-decay", type=float, help="decoupled weight decay on conv/FC weights (default 0)")
    t.add_argument("--schedule", choices=["constant", "cosine"],
                   help="learning-rate schedule (default constant; cosine: warm-up, then down to 0)")
    t.add_argument("--warmup-steps", type=int, help="linear warm-up steps of --schedule cosine (default 0)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="optimisation steps in all")
    g.add_argument("--epochs", type=float, help="passes over the training images (default 1)")
    t.add_argument("--batch-size", type=int, help="per process (default 128, as the paper)")
    t.add_argument("--min-scale", type=float, help="random-resized crop area (1.0 = paper's crop)")
    t.add_argument("--seed", type=int, help="seed of weights, crops and order (default 0; CPU runs repeat exactly)")
    t.add_argument("--shards", type=int, help="use only the first N MiniPlaces training shards")
    t.add_argument("--limit", type=int, help="use only the first N training images")
    t.add_argument("--val-limit", type=int, help="validation images per pass (0: none)")
    t.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 500, and at the end)")
    t.add_argument("--log-every", type=int,
                   help="steps between progress-bar updates (default 10; every step is logged)")
    t.add_argument("--precision", choices=["auto", "bf16", "fp32"],
                   help="default auto: bf16 autocast on CUDA, fp32 on CPU")
    t.add_argument("--device", help="auto | cpu | cuda")
    t.add_argument("--workers", type=int, help="decode workers")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--smoke", action="store_true",
                   help="a tiny CPU run (tiny config, 80 steps on 2,000 images): checks everything works")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    i = sub.add_parser("info", help="show a model's config, training and validation figures")
    i.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"shipped model name, weights file or run folder (default {DEFAULT_MODEL})")
    i.add_argument("--list", action="store_true", help="list the shipped models")
    i.add_argument("--json", action="store_true",
                   help="print the same figures (config, training, validation results) as JSON")
    i.set_defaults(func=cmd_info)

    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return p


_EXTRA_COMMANDS: list = []  # functions(sub) that add more subcommands
_register_eval(_EXTRA_COMMANDS)  # evaluate, classify, benchmark, study (colorlib/cli_eval.py)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        sys.exit(2)
    try:
        a.func(a)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except UserError as e:
        print(f"colorlib {a.command}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # the reader went away (`colorlib info --list | head -1`): no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        sys.exit(1)


if __name__ == "__main__":
    main()

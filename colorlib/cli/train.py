"""``colorlib train``: the paper's training (Eq. 6), a run folder that can be resumed.

    colorlib train --smoke --out runs/smoke
    colorlib train --out runs/full --epochs 10
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from ..checkpoint import CheckpointError, finish_run
from ..colorspace import DEFAULT_SPACE, SPACES
from ..data import DataError
from ..device import DEVICE_HELP
from ..io import WriteError
from ..model import PRESETS, VARIANTS
from ..train import CHOICES, RunResult, TrainConfig, train
from .common import UserError, device_option

#: ``--smoke``: a tiny CPU run on real photos that checks everything works (options given with it win).
SMOKE = dict(config="tiny", steps=80, batch_size=32, train_limit=2000, val_limit=200, log_every=5,
             checkpoint_every=40, optimizer="adamw", lr=3e-3)

#: The files of a run folder the summary names, in this order, each only when it is there (no
#: val.csv without validation photos; no model.safetensors after Ctrl-C).
RUN_FILES = ("config.json", "log.csv", "val.csv", "checkpoint.pt", "model.safetensors")

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


def _config_kwargs(a: argparse.Namespace) -> dict:
    """The :class:`colorlib.train.TrainConfig` keywords the options ask for (``--smoke``'s under
    them; one epoch when neither ``--steps`` nor ``--epochs`` is given)."""
    if a.steps is not None and a.epochs is not None:
        raise UserError("give --steps or --epochs, not both")
    kw = dict(SMOKE) if a.smoke else {}  # then each option given, under TrainConfig's name for it
    kw.update({f.name: getattr(a, f.name) for f in fields(TrainConfig) if getattr(a, f.name, None) is not None})
    if a.epochs is not None:
        kw.pop("steps", None)  # --smoke --epochs 2: the user's length, not the smoke run's
    if a.limit is not None:
        kw["train_limit"] = a.limit
    if kw.get("steps") is None and kw.get("epochs") is None:
        kw["epochs"] = 1.0
    return kw


def cmd_train(a: argparse.Namespace) -> None:
    """Train into the run folder ``a.out`` (or continue it, ``--resume``) and save its final
    ``model.safetensors``; exit status 130 after Ctrl-C (the checkpoint is written)."""
    try:
        tc = TrainConfig(**_config_kwargs(a))  # checks every option (the device too) before the folder exists
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
        try:
            finish_run(a.out)
        except CheckpointError as e:
            raise UserError(str(e)) from None
    _print_summary(a.out, result)
    if result.interrupted:
        sys.exit(130)


def _print_summary(out: str, result: RunResult) -> None:
    """Steps, images, losses, the last validation and the run folder's files."""
    first = result.log[0]["loss"] if result.log else float("nan")
    last = result.log[-1]["loss"] if result.log else float("nan")
    print(f"{result.steps} steps, {result.images_seen} images seen in {result.wall_s:.1f} s "
          f"({result.train_images} training images; {result.removed_gray} gray/low-colour and "
          f"{result.removed_corrupt} unreadable removed). loss {first:.4f} -> {last:.4f}")
    if result.val:
        v = result.val[-1]
        print(f"validation: colour loss {v['val_colour_loss']:.5f}, top-1 {v['val_top1']:.3f}, "
              f"top-5 {v['val_top5']:.3f} on {v['images']} images")
    written = [name for name in RUN_FILES if (Path(out) / name).is_file()]
    print(f"run folder: {out} ({', '.join(written) or 'nothing written'})")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib train`` and its options."""
    t = sub.add_parser("train", help="train a model (paper Eq. 6, ADADELTA by default)",
                       description="Train on MiniPlaces (tar shards or folder), Places365-Standard or "
                                   "a folder of colour photos. Ctrl-C writes a checkpoint; --resume "
                                   "continues it exactly. Under torchrun, trains with DDP. The run "
                                   "folder gets log.csv (every step), val.csv (every epoch), "
                                   "config.json, checkpoints and the final model.",
                       epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--data", help="data root (default: $COLORLIB_DATA, else ../shared/data)")
    t.add_argument("--out", required=True, help="run folder (new, or existing with --resume)")
    t.add_argument("--config", choices=list(PRESETS),
                   help="model preset (default miniplaces; --smoke: tiny)")
    t.add_argument("--variant", choices=VARIANTS,
                   help="full (default) or the paper's baseline: no global features, no classifier")
    t.add_argument("--color-space", choices=list(SPACES),
                   help="what the network predicts (paper section 4.8's comparison): "
                        + ", ".join(f"{s.name}: {s.label}" for s in SPACES.values()) + f"; default {DEFAULT_SPACE}")
    t.add_argument("--alpha", type=float, help="classification loss weight (default 1/300; baseline: 0)")
    t.add_argument("--width", type=float, help="channel multiplier (1.0 = paper)")
    t.add_argument("--dropout", type=float, help="dropout before the global FC layers")
    t.add_argument("--optimizer", choices=CHOICES["optimizer"], help="default adadelta, as the paper")
    t.add_argument("--lr", type=float, help="learning rate (default 1.0 for ADADELTA, 1e-3 for AdamW)")
    t.add_argument("--weight-decay", type=float, help="decoupled weight decay on conv/FC weights (default 0)")
    t.add_argument("--schedule", choices=CHOICES["schedule"],
                   help="learning-rate schedule (default constant; cosine: warm-up, then down to 0)")
    t.add_argument("--warmup-steps", type=int, help="linear warm-up steps of --schedule cosine (default 0)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="optimisation steps in all")
    g.add_argument("--epochs", type=float, help="passes over the training images (default 1)")
    t.add_argument("--batch-size", type=int, help="per process (default 128, as the paper)")
    t.add_argument("--min-scale", type=float, help="random-resized crop area (1.0 = paper's crop)")
    t.add_argument("--seed", type=int,
                   help="seed of weights, crops and order (default 0; CPU runs repeat exactly)")
    t.add_argument("--shards", type=int, help="use only the first N MiniPlaces training shards")
    t.add_argument("--limit", type=int, help="use only the first N training images")
    t.add_argument("--val-limit", type=int, help="validation images per pass (0: none)")
    t.add_argument("--checkpoint-every", type=int,
                   help="steps between checkpoints (default 500, and at the end)")
    t.add_argument("--log-every", type=int,
                   help="steps between progress-bar updates (default 10; every step is logged)")
    t.add_argument("--precision", choices=CHOICES["precision"],
                   help="default auto: bf16 autocast on CUDA, fp32 on CPU")
    t.add_argument("--device", type=device_option, help=f"{DEVICE_HELP} (default auto)")
    t.add_argument("--workers", type=int, help="decode workers")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--smoke", action="store_true",
                   help="a tiny CPU run (tiny config, 80 steps on 2,000 images): checks everything works")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

"""Train the shipped MiniPlaces models on the lent GPU in one time-boxed call.

Reads the tars made by ``scripts/pack_device_data.py`` (whichever parts are present),
decodes them once into GPU memory, measures each model's speed, picks one epoch count that
fits every model of the plan into ``--budget-s`` seconds, then trains the plan in order
(shipped models first, then the width comparison), scoring each on the held-out
validation images. Writes to ``--out``: the shipped weights (float16 safetensors), and
``logs.tar.gz`` (each run's log.csv, val.csv, config.json, and results.json).

Every run, the speed measurements included, is :func:`colorlib.train.train` itself, on the
images decoded here (``data=``). On the CPU, with small packs, it makes a quick rehearsal:

    python scripts/device_train.py --parts /tmp/cl/part-a.pack .gpu/part-b.pack --out $OUT
    python scripts/device_train.py --parts small.pack --out /tmp/dt --device cpu --workers 0 \
        --batch-size 8 --epochs 1 --only miniplaces-full miniplaces-baseline
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib import data as D  # noqa: E402
from colorlib.checkpoint import read_checkpoint, save_model  # noqa: E402
from colorlib.device import device_name, resolve_device  # noqa: E402
from colorlib.evaluate import score, summarise  # noqa: E402
from colorlib.io import write_bytes, write_text  # noqa: E402
from colorlib.model import Colorizer  # noqa: E402
from colorlib.train import StepInfo, TrainConfig, Validation, train  # noqa: E402

# The recipe shared by every shipped model (see colorlib/models/README.md for why).
RECIPE = dict(config="miniplaces", optimizer="adamw", lr=2e-3, weight_decay=0.05, schedule="cosine",
              batch_size=256, min_scale=0.6, log_every=50, checkpoint_every=10**9, val_limit=None)

DEVICE = torch.device("cuda")

# name, overrides, ship?
PLAN = [
    ("miniplaces-full", dict(variant="full", width=0.5, alpha=1 / 300), True),
    ("miniplaces-baseline", dict(variant="baseline", width=0.5, alpha=0.0), True),
    ("alpha-0", dict(variant="full", width=0.5, alpha=0.0), True),
    ("alpha-1-3000", dict(variant="full", width=0.5, alpha=1 / 3000), True),
    ("alpha-1-30", dict(variant="full", width=0.5, alpha=1 / 30), True),
    ("width-0.75", dict(variant="full", width=0.75, alpha=1 / 300), False),
    ("width-0.25", dict(variant="full", width=0.25, alpha=1 / 300), False),
]


def load_parts(paths: list[str], workers: int) -> tuple[D.DecodedImages, D.DecodedImages | None, list[str]]:
    """Decode the packs that arrived; members named ``val/...`` are the validation images."""
    sets = []
    for p in map(Path, paths):
        if not p.exists():
            print(f"part {p} is not here (machine restarted?); training without it", flush=True)
            continue
        sets.append(D.load_pack(p))
    if not sets:
        raise SystemExit("no training data arrived")
    classes = sets[0].classes
    blobs = [b for s in sets for b in s.blobs]
    names = [n for s in sets for n in s.names]
    labels = np.concatenate([s.labels for s in sets])
    is_val = np.array([n.startswith("val/") for n in names])
    whole = D.ImageSet(blobs, names, labels, classes)
    t0 = time.time()
    train = D.decode_all(whole.subset(np.flatnonzero(~is_val)), 128, filter_gray=False, workers=workers,
                         progress=False)
    val = (D.decode_all(whole.subset(np.flatnonzero(is_val)), 128, workers=workers, progress=False)
           if is_val.any() else None)
    print(f"decoded {len(train)} training and {0 if val is None else len(val)} validation images "
          f"in {time.time() - t0:.1f} s", flush=True)
    return train, val, classes


def print_validation(info: StepInfo | Validation) -> None:
    """A train() callback: one line per validation pass (train() itself is quiet without progress)."""
    if isinstance(info, Validation):
        print(f"step {info.step}: val colour loss {info.val_colour_loss:.5f}  top-1 {info.val_top1:.3f}  "
              f"top-5 {info.val_top5:.3f}", flush=True)


def speed(cfg_kw: dict, images: D.DecodedImages, steps: int = 15, warmup: int = 5) -> float:
    """Training images/s of a plan entry: a short train() run on ``images`` (no validation), timed
    over its last ``steps`` steps. Its log windows are ``warmup`` steps long and each ends in the
    host sync that reads the losses, so the windows' speeds (log.csv's ``images_per_s``) time
    exactly what a step costs; the first window (compilation, cuDNN's search) is left out."""
    tc = TrainConfig(**{**RECIPE, **cfg_kw, "steps": warmup + steps, "log_every": warmup,
                        "device": DEVICE.type})
    with tempfile.TemporaryDirectory() as tmp:
        r = train(tc, Path(tmp) / "speed", progress=False, data=(images, None))
    timed = [row["images_per_s"] for row in r.log if row["step"] >= warmup]
    return len(timed) / sum(1 / s for s in timed)  # images over seconds, step by step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--budget-s", type=float, default=400, help="seconds of training for the whole plan")
    p.add_argument("--deadline-s", type=float, default=540, help="skip what would start after this")
    p.add_argument("--workers", type=int, default=15)
    p.add_argument("--epochs", type=float, default=None, help="fix the epochs instead of fitting the budget")
    p.add_argument("--only", nargs="*", default=None, help="train only these plan entries")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    a = p.parse_args()
    global DEVICE
    try:
        DEVICE = resolve_device(a.device)
    except ValueError as e:
        p.error(str(e))
    RECIPE["batch_size"] = a.batch_size
    t_start = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path("/tmp/colorlib-runs")
    shutil.rmtree(runs, ignore_errors=True)

    train_imgs, val_imgs, classes = load_parts(a.parts, a.workers)
    train_imgs, val_imgs = train_imgs.to(DEVICE), val_imgs.to(DEVICE) if val_imgs is not None else None
    plan = [e for e in PLAN if a.only is None or e[0] in a.only]
    speeds = {}
    for _name, kw, _ in plan:
        key = (kw["variant"], kw["width"])
        if key not in speeds:
            speeds[key] = speed(kw, train_imgs)
            print(f"speed {key}: {speeds[key]:.0f} images/s", flush=True)
    per_epoch_s = sum(len(train_imgs) / speeds[(kw["variant"], kw["width"])] for _, kw, _ in plan)
    epochs = a.epochs or max(1.0, a.budget_s / (per_epoch_s * 1.08))  # 8% for validation etc.
    steps = int(epochs * (len(train_imgs) // RECIPE["batch_size"]))
    print(f"{len(train_imgs)} images; plan of {len(plan)} models at {epochs:.1f} epochs = {steps} steps each "
          f"(predicted {per_epoch_s * epochs:.0f} s)", flush=True)

    gray = summarise(score(None, val_imgs.pixels, val_imgs.labels)) if val_imgs is not None else {}
    results = {"gray": gray, "train_images": len(train_imgs), "epochs": epochs, "steps": steps,
               "speeds": {f"{v}-w{w}": s for (v, w), s in speeds.items()},
               "device": device_name(DEVICE), "torch": torch.__version__, "models": {}}
    print("gray:", json.dumps({k: round(v, 3) for k, v in gray.items()}), flush=True)
    for name, kw, ship in plan:
        elapsed = time.time() - t_start
        predicted = steps * RECIPE["batch_size"] / speeds[(kw["variant"], kw["width"])]
        if elapsed + predicted > a.deadline_s:
            print(f"skip {name}: {elapsed:.0f} s elapsed + {predicted:.0f} s would pass the deadline",
                  flush=True)
            continue
        tc = TrainConfig(**{**RECIPE, **kw, "steps": steps, "device": DEVICE.type,
                            "warmup_steps": max(1, steps // 30), "val_every": max(1, int(epochs) // 6)})
        try:
            r = train(tc, runs / name, callbacks=(print_validation,), progress=False,
                      data=(train_imgs, val_imgs))
        except Exception:  # noqa: BLE001 - one failed model must not cost the others
            traceback.print_exc()
            continue
        model = Colorizer(tc.model_config(len(classes) or None)).to(DEVICE)  # as train() built it
        model.load_state_dict(read_checkpoint(runs / name / "checkpoint.pt")["model"])  # data only
        try:
            s = summarise(score(model, val_imgs.pixels, val_imgs.labels)) if val_imgs is not None else {}
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            s = {}
        info = {"train": {k: v for k, v in vars(tc).items()}, "wall_s": round(r.wall_s, 1),
                "images_seen": r.images_seen, "steps": r.steps, "train_images": len(train_imgs),
                "final_loss": r.log[-1] if r.log else None, "val_quick": s, "ship": ship}
        results["models"][name] = info
        print(f"{name}: {r.wall_s:.0f} s; " + json.dumps({k: round(v, 3) for k, v in s.items()}), flush=True)
        meta = {"classes": classes, "name": name, "train": info["train"],
                "training": {k: info[k] for k in ("wall_s", "images_seen", "steps", "train_images")},
                "device": results["device"]}
        if ship:
            save_model(model, out / f"{name}.safetensors", meta)
        (runs / name / "checkpoint.pt").unlink()
        write_text(out / "results.json", json.dumps(results, indent=1))
    write_text(runs / "results.json", json.dumps(results, indent=1))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(runs, arcname="runs")
    write_bytes(out / "logs.tar.gz", buf.getvalue())
    print(f"done in {time.time() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

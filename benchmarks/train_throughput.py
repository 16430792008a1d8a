"""Training throughput (images/s) of colorlib's real training step.

Two modes, each timed after warm-up with the device synchronised around the timed steps:

* ``synthetic``: random L* and a*b* tensors already on the device: the model alone
  (forward, Eq. 6, backward, optimiser step).
* ``real``: MiniPlaces photos decoded once into device memory, then per step exactly what
  ``colorlib train`` does: index a uint8 batch, random crop + flip on the device, sRGB ->
  L*a*b*, forward, loss, backward, step. JPEG decoding is timed separately (it happens
  once per run, not per epoch). With ``--compile`` the pixel preparation is compiled too.

    python benchmarks/train_throughput.py --config paper --batch-size 256 --compile --json out.json

Prints one line per (mode, compile) and writes all figures with the device name to JSON.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib import data as D  # noqa: E402
from colorlib.data import BatchSource  # noqa: E402
from colorlib.io import write_json  # noqa: E402
from colorlib.model import Colorizer, ModelConfig  # noqa: E402
from colorlib.train import TrainConfig, autocast_for, make_optimizer, make_train_step  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build_step(cfg: ModelConfig, device: torch.device, compile_: bool, precision: str,
               optimizer: str = "adadelta", alpha: float = 1 / 300):
    """The training step of ``colorlib train`` for a fresh model (compiled if asked)."""
    torch.manual_seed(0)
    model = Colorizer(cfg).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, TrainConfig(optimizer=optimizer))
    fn = torch.compile(model) if compile_ else model
    return make_train_step(fn, opt, autocast_for(device, precision), alpha)


def measure(step, cfg: ModelConfig, batch: int, steps: int, warmup: int, mode: str,
            device: torch.device, decoded: D.DecodedImages | None, prepare=D.prepare_batch) -> dict:
    s = cfg.global_size
    if mode == "synthetic":
        L = torch.rand(batch, 1, s, s, device=device)
        ab = torch.rand(batch, 2, s // 2, s // 2, device=device)
        labels = torch.randint(0, cfg.num_classes, (batch,), device=device)

        def get(i):
            return L, ab, labels
    else:
        source = BatchSource(decoded, batch, seed=0, prepare=prepare)

        def get(i):
            return source.batch(i, s, 1.0)

    t0 = time.perf_counter()
    for i in range(warmup):
        loss = step(*get(i))[0]
    sync(device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(*get(warmup + i))[0]
    sync(device)
    dt = time.perf_counter() - t0
    return dict(mode=mode, batch=batch, steps=steps,
                images_per_s=round(batch * steps / dt, 1), seconds=round(dt, 3),
                warmup_s=round(warm_s, 1), final_loss=float(loss))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="paper", help="model preset: paper | miniplaces | tiny")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--modes", nargs="+", default=["synthetic", "real"], choices=["synthetic", "real"])
    p.add_argument("--compile", action="store_true", help="also measure with torch.compile")
    p.add_argument("--no-eager", action="store_true", help="skip the eager (uncompiled) runs")
    p.add_argument("--precision", default="auto", help="auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32")
    p.add_argument("--data", default=None, help="data root or MiniPlaces tar (real mode)")
    p.add_argument("--limit", type=int, default=4000, help="images to decode for real mode")
    p.add_argument("--workers", type=int, default=None, help="decode workers")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="write the figures here")
    a = p.parse_args(argv)

    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if a.device == "auto" else a.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = ModelConfig.preset(a.config)
    precision = a.precision if a.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    report = dict(device=torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
                  or platform.machine(), torch=torch.__version__, config=a.config,
                  global_size=cfg.global_size, cpu_threads=torch.get_num_threads(), results=[])
    decoded = None
    if "real" in a.modes:
        images = D.load_images(a.data, "train", limit=a.limit)
        t0 = time.perf_counter()
        decoded = D.decode_all(images, 128, workers=a.workers, progress=False)
        dt = time.perf_counter() - t0
        report["decode"] = dict(images=len(images), seconds=round(dt, 2),
                                images_per_s=round(len(images) / dt, 1),
                                workers=a.workers if a.workers is not None else D.loader_workers())
        print(f"decode: {len(images)} JPEGs in {dt:.1f} s = {len(images) / dt:.0f} images/s "
              f"(+ gray filter; once per run)", flush=True)
        decoded = decoded.to(device)
    variants = ([] if a.no_eager else [False]) + ([True] if a.compile else [])
    for compile_ in variants:
        step = build_step(cfg, device, compile_, precision)
        for mode in a.modes:
            prepare = torch.compile(D.prepare_batch) if compile_ else D.prepare_batch
            r = measure(step, cfg, a.batch_size, a.steps, a.warmup, mode, device, decoded, prepare)
            r.update(compile=compile_, precision=precision)
            report["results"].append(r)
            print(f"{a.config} {cfg.global_size}px batch {a.batch_size} {precision} "
                  f"{'compiled' if compile_ else 'eager':8s} {mode:9s}: {r['images_per_s']:9.1f} images/s"
                  f"  (warm-up {r['warmup_s']} s)", flush=True)
    report["where"] = report["device"]
    if a.json:
        write_json(a.json, report)
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()

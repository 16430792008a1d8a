"""``colorize`` of a 1024x1024 photo against a plain eager forward pass of the same network.

The paper's network (Table 1, width 1.0, global size 224) with batch-norm statistics from a
few training-mode passes. Two timings, interleaved so that machine load hits both alike:

* plain: ``model(L)`` in eval mode under ``torch.no_grad()``: unfolded batch norm, default
  memory layout, the network alone;
* colorize: ``colorlib.infer.colorize(model, photo)``: the whole job (L* of the photo,
  batch norm folded into the weights (section 3.4), channels-last, the network, a*b*
  upsampled, joined with L*, back to sRGB, an 8-bit image).

    python benchmarks/colorize_speed.py --json benchmarks/results/colorize_speed_cpu.json

Prints the medians and their ratio (the target on a 2-core CPU: at most 0.7).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from colorlib.infer import colorize  # noqa: E402
from colorlib.io import write_json  # noqa: E402
from colorlib.model import Colorizer, ModelConfig  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    import skimage.data

    torch.manual_seed(0)
    model = Colorizer(ModelConfig()).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 224, 224))
    model.eval()
    photo = Image.fromarray(skimage.data.astronaut()).resize((a.size, a.size), Image.Resampling.BICUBIC)
    L = torch.rand(1, 1, a.size, a.size)

    def plain():
        with torch.no_grad():
            model(L)

    def job():
        colorize(model, photo, saturation=1.0)

    plain(), job()  # warm-up (and the folded copy is made once, as for any later call)
    times = {"plain": [], "colorize": []}
    for _ in range(a.repeats):
        for name, fn in (("plain", plain), ("colorize", job)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["colorize"] / med["plain"]
    print(f"{a.size}x{a.size}, {torch.get_num_threads()} threads: plain forward {med['plain']:.2f} s, "
          f"colorize {med['colorize']:.2f} s, ratio {ratio:.2f}")
    if a.json:
        write_json(a.json, dict(
            size=a.size, threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(),
            cores=os.cpu_count(), torch=torch.__version__, load_avg=os.getloadavg(),
            runs=times, median_s=med, ratio=ratio))


if __name__ == "__main__":
    main()

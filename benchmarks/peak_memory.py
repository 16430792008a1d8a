"""Peak memory of colorizing a 24-megapixel photo (6000x4000) with the shipped ``miniplaces-full``.

Each case runs in a fresh Python process and reports that process's RSS high-water mark
(``VmHWM`` in ``/proc/self/status``; ``ru_maxrss`` where there is no ``/proc``):

* ``startup``: import colorlib and load the model, nothing colorized (what any run pays);
* ``bounded-1M``, ``default`` (``max_pixels`` = ``DEFAULT_MAX_PIXELS``, 2048x2048 = 4,194,304):
  ``colorize(model, "photo.jpg", max_pixels=...)`` then ``save_image(..., "out.png")``, what
  ``colorlib colorize photo.jpg -o out.png`` does; the network sees the photo scaled down to
  at most that many pixels;
* ``unbounded`` (``max_pixels=None``): the network on all 24 million pixels, when the machine has
  the memory for it (skipped, and said so, when ``MemAvailable`` is below the estimate).

The photo is scikit-image's ``coffee`` (600x400) enlarged 10x (bicubic) and saved as JPEG in a
temporary folder. The script also derives the bytes per pixel the network needs (the slope
of the peak against the pixels it sees, between ``bounded-1M`` and ``unbounded``, or
``default`` when that was skipped) and the bytes per full-size pixel around it; ``colorlib/infer.py`` uses those figures for its out-of-memory message.

    python benchmarks/peak_memory.py --json benchmarks/results/peak_memory_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from colorlib.device import cpu_name  # noqa: E402
from colorlib.infer import DEFAULT_MAX_PIXELS, network_size  # noqa: E402
from colorlib.io import write_json  # noqa: E402

WIDTH, HEIGHT = 6000, 4000
CASES = {"startup": 0, "bounded-1M": 1 << 20, "default": DEFAULT_MAX_PIXELS, "unbounded": None}


def peak_rss() -> int:
    """This process's RSS high-water mark in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child(case: str, photo: str, out_dir: str) -> None:
    """One case in this (fresh) process; prints one JSON line."""
    from colorlib.checkpoint import load_model
    from colorlib.imageio import save_image
    from colorlib.infer import colorize

    model = load_model("miniplaces-full")
    max_pixels = CASES[case]
    start, cpu_start = time.perf_counter(), time.process_time()
    if max_pixels != 0:
        out = colorize(model, photo, max_pixels=max_pixels)
        save_image(out, Path(out_dir) / f"{case}.png")
    h, w = network_size(HEIGHT, WIDTH, max_pixels) if max_pixels != 0 else (0, 0)
    print(json.dumps(dict(case=case, max_pixels=max_pixels, network_size=[w, h], network_pixels=w * h,
                          peak_rss_bytes=peak_rss(), seconds=round(time.perf_counter() - start, 2),
                          cpu_seconds=round(time.process_time() - cpu_start, 2),
                          threads=torch.get_num_threads())))


def machine() -> dict:
    """The CPU model, cores, memory and library versions (no paths)."""
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    except OSError:
        pass
    return dict(cpu=cpu_name(), cores=os.cpu_count(), memory_bytes=mem_total, torch=torch.__version__,
                numpy=np.__version__, pillow=PIL.__version__, python=platform.python_version(),
                os=platform.system())


def mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    p.add_argument("--photo", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child, a.photo, a.out_dir)
        return
    import skimage.data

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        Image.fromarray(skimage.data.coffee()).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC).save(
            photo, quality=95)
        for case in CASES:
            if case == "unbounded":
                free = mem_available()
                need = 140 * WIDTH * HEIGHT  # about 130 bytes per pixel before the bound, and slack
                if free is not None and free < need:
                    print(f"unbounded: skipped, {free / 2**30:.1f} GB available, about {need / 2**30:.1f} needed")
                    results.append(dict(case=case, skipped=f"{free} bytes available, about {need} needed"))
                    continue
            run = subprocess.run([sys.executable, __file__, "--child", case, "--photo", str(photo),
                                  "--out-dir", tmp], capture_output=True, text=True)
            if run.returncode != 0:
                tail = (run.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{case}: failed ({tail})")
                results.append(dict(case=case, failed=tail))
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{case}: network {r['network_size'][0]}x{r['network_size'][1]}, peak RSS "
                  f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB, {r['seconds']:.1f} s ({r['cpu_seconds']:.1f} s CPU)")
            results.append(r)
    by = {r["case"]: r for r in results if "peak_rss_bytes" in r}
    derived = {}
    if {"startup", "bounded-1M", "default"} <= by.keys():
        # the slope over the widest span of pixels the network sees: unbounded (24 M) when it ran
        small, big = by["bounded-1M"], by.get("unbounded", by["default"])
        per_net = (big["peak_rss_bytes"] - small["peak_rss_bytes"]) / (big["network_pixels"] - small["network_pixels"])
        full = (small["peak_rss_bytes"] - by["startup"]["peak_rss_bytes"] - per_net * small["network_pixels"])
        derived = dict(network_bytes_per_pixel=round(per_net, 1), slope_between=[small["case"], big["case"]],
                       full_resolution_bytes_per_pixel=round(full / (WIDTH * HEIGHT), 1))
        print(f"network: {per_net:.0f} bytes per pixel it sees; full resolution: "
              f"{derived['full_resolution_bytes_per_pixel']:.0f} bytes per pixel of the photo")
    if a.json:
        write_json(a.json, dict(photo=f"{WIDTH}x{HEIGHT} JPEG (skimage coffee x10, bicubic)",
                                model="miniplaces-full", machine=machine(), load_avg=os.getloadavg(),
                                cases=results, derived=derived))
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()

"""Build the book: vendor its JavaScript, then ``jupyter-book build`` with warnings as errors.

    python scripts/build_book.py          # fast mode (COLORLIB_FAST=1): _build/html
    python scripts/build_book.py --full   # full mode (for a GPU machine): _build/full/_build/html

The two modes keep separate execution caches: jupyter-cache keys a notebook on its code
only, so a fast-mode result must never be reused for a full build or the other way round.
For the same reason the cache is emptied when what the chapters run on changes: the
``colorlib`` sources (the book's helpers in ``colorlib/book`` among them), the shipped
models, or the data folder found (``_build/.book-key``).
After the HTML, every chapter is written as a plain ``.ipynb`` (with and without solutions) into
``downloads/`` of the HTML, each chapter page's download menu offers both, and the classroom kit
(``downloads/colorlib-classroom-kit.zip``: wheel, notebooks, study stimuli, README) is packed
beside them (``book/tools/make_notebooks.py``).
Prints where the HTML is and how long the build took; exits non-zero on any warning or
failing cell.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "book" / "tools"))

from make_notebooks import publish  # noqa: E402
from study_web import publish_study_images  # noqa: E402
from vendor_assets import vendor  # noqa: E402

from colorlib.checkpoint import load_model, models_dir  # noqa: E402
from colorlib.data import DataError, data_root  # noqa: E402
from colorlib.io import write_json  # noqa: E402
from colorlib.onnx.export import export_float16, export_onnx  # noqa: E402


def output_dir(full: bool) -> Path:
    """Where ``jupyter-book`` writes (its ``_build`` folder) for each mode."""
    return ROOT / "_build" / "full" if full else ROOT


def html_dir(full: bool = False) -> Path:
    return output_dir(full) / "_build" / "html"


def execution_key(full: bool) -> dict:
    """What the executed chapters depend on besides their own code: the package's sources
    (``colorlib.book`` included), the shipped models, the benchmark results chapter 11 shows and
    the data folder found."""
    h = hashlib.sha256()
    files = sorted((ROOT / "colorlib").rglob("*.py")) + sorted(models_dir().rglob("*"))
    files += sorted((ROOT / "benchmarks" / "results").glob("*.json"))  # chapter 11 reads them
    for p in files:
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(Path(os.path.relpath(p, ROOT)).as_posix().encode())  # models may live elsewhere
            h.update(p.read_bytes())
    try:
        data = str(data_root())
    except DataError:
        data = None
    return {"mode": "full" if full else "fast", "data": data, "code_and_models": h.hexdigest()}


def fresh_cache(full: bool) -> None:
    """Empty the execution cache if the package, the models or the data changed."""
    build_dir = output_dir(full) / "_build"
    stamp = build_dir / ".book-key"
    key = execution_key(full)
    try:
        old = json.loads(stamp.read_text())
    except (OSError, ValueError):
        old = None
    if old != key:
        if (build_dir / ".jupyter_cache").exists():
            print("colorlib, the models or the data changed since the last build: "
                  "every chapter runs again")
        shutil.rmtree(build_dir / ".jupyter_cache", ignore_errors=True)
        write_json(stamp, key)


# The models the pages run in the reader's browser (book/_js/colorizer.js): chapters 1, 8 and 10
# run miniplaces-full, chapter 5 the four models of its alpha sweep side by side. Each is
# exported afresh on every build from the network as the code defines it now (a few seconds:
# the five share one architecture, colorlib.onnx.export fills its weights in) and copied with
# float16 weights (half the bytes, still float32 arithmetic: colorlib.onnx.export.float16_weights)
# to _static/onnx/<name>/ of the built HTML, so that the runtime and all five fit in the 80 MiB
# the book allows them (tests/book/test_inbrowser.py). tests/book/test_book_onnx.py checks the
# built graphs against PyTorch.
BROWSER_MODELS = ("miniplaces-full", "sweep-alpha-0", "sweep-alpha-1-3000", "sweep-alpha-1-300",
                  "sweep-alpha-1-30")


def export_browser_models(html: Path) -> None:
    """Export :data:`BROWSER_MODELS` as ONNX graphs (:mod:`colorlib.onnx.export`) into ``html``'s
    ``_static/onnx/<name>/`` (manifest.json, global.onnx, colorizer.onnx), weights stored as
    float16; a page downloads a model only when its reader first needs it."""
    for name in BROWSER_MODELS:
        target = html / "_static" / "onnx" / name
        shutil.rmtree(target, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix="colorlib-book-onnx-") as tmp:
            export_onnx(load_model(name), tmp, name=name)
            export_float16(tmp, target)


def build(full: bool = False, quiet: bool = False) -> Path:
    vendor()
    fresh_cache(full)
    env = dict(os.environ)
    if full:
        env.pop("COLORLIB_FAST", None)
    else:
        env["COLORLIB_FAST"] = "1"
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all: re-read every page (execution stays cached), so warnings are never hidden by an
    # incremental build and static files are always fresh
    cmd = [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going", "--all"]
    if full:
        cmd += ["--path-output", str(output_dir(True))]
    if quiet:
        cmd.append("-q")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"book build failed (exit {proc.returncode}) after {took:.0f} s; see the messages above")
    out = html_dir(full)
    export_browser_models(out)
    publish_study_images(out)  # chapter 7's in-page study shows these images
    # every chapter as a plain .ipynb (both editions) and the classroom kit, served with the book
    t1 = time.perf_counter()
    kit = publish(out, output_dir(full) / "_build" / ".jupyter_cache")
    print(f"notebooks and the classroom kit ({kit.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t1:.0f} s")
    print(f"book built in {took:.0f} s ({'full' if full else 'fast'} mode): {out / 'index.html'}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="full mode (unset COLORLIB_FAST); for a GPU")
    p.add_argument("-q", "--quiet", action="store_true", help="less output from Sphinx")
    a = p.parse_args()
    build(a.full, a.quiet)


if __name__ == "__main__":
    main()

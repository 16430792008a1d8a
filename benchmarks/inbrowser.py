"""The network in the reader's browser: chapter 1's colorize box (book/_js/colorizer.js, ONNX
Runtime Web on WebAssembly, one thread) timed in headless Chromium, by image size.

The built book (``make book``: ``_build/html``) is served on 127.0.0.1; Debian's Chromium, with the
flags and free port of the browser tests (tests/local_browser.py), opens chapter 1 and gives its
box a photo through the file picker, as a reader would. The time is the one the box reports
(``performance.now()`` around ``colorize`` in colorizer.js: from the photo's L* to the colorized
image, global branch, colorizer, a*b* upsampled, back to sRGB). Input: ``skimage.data.astronaut``
(512x512) resized to each size (Lanczos).

* first: the first photo in a fresh browser context (empty cache), so it includes downloading
  and compiling the runtime and loading both graphs; median of ``--cold`` contexts;
* warm: the same photo again in the same page, the network loaded; median of ``--warm`` runs.

Every run, the medians, the CPU (model, cores), the browser's version and ONNX Runtime Web's (as
the page reports it) go to ``--json``. Nothing leaves 127.0.0.1: any other request is refused.

    python benchmarks/inbrowser.py --json benchmarks/results/inbrowser.json
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from local_browser import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402
from PIL import Image  # noqa: E402

from colorlib.device import machine_info  # noqa: E402
from colorlib.io import write_json  # noqa: E402

#: the page and its box; the model is the box's own (``data-model``)
PAGE = "book/01_why.html"
BOX = "[data-colorlib=colorize]"
#: a bound on waiting for one photo (the first 1024x1024 on a busy 2-core CPU), not a figure
WAIT_MS = 600_000


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """``folder`` served on 127.0.0.1 and a free port; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()),
                                            functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def photos(sizes: list[int], folder: Path) -> dict[int, Path]:
    """``skimage.data.astronaut`` resized to each size, as PNG files in ``folder``."""
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    out = {}
    for size in sizes:
        out[size] = folder / f"astronaut-{size}.png"
        astronaut.resize((size, size), Image.Resampling.LANCZOS).save(out[size])
    return out


def colorize_once(page, photo: Path, size: int) -> float:
    """Give the box ``photo`` through its file picker; the seconds the box reports. Exits with the
    box's message if it fails, or if its result is not ``size`` x ``size``."""
    # an emptied picker: Chromium fires no change event for the file it already holds
    page.eval_on_selector(BOX, "r => { delete r.dataset.seconds; r.querySelector('input[type=file]').value = ''; }")
    page.set_input_files(f"{BOX} input[type=file]", str(photo))
    page.wait_for_function("""sel => {
        const r = document.querySelector(sel);
        return r.dataset.state === 'error' || (r.dataset.state === 'done' && r.dataset.seconds !== undefined);
    }""", arg=BOX, timeout=WAIT_MS)
    if page.get_attribute(BOX, "data-state") != "done":
        sys.exit(f"the box failed: {page.inner_text(BOX + ' .colorlib-status')}")
    shape = page.eval_on_selector(f"{BOX} .colorlib-figure:nth-child(2) canvas", "c => [c.width, c.height]")
    if shape != [size, size]:
        sys.exit(f"the box showed a {shape} result for a {size}x{size} photo")
    return float(page.get_attribute(BOX, "data-seconds"))


@contextmanager
def fresh_page(browser, url: str) -> Iterator:
    """Chapter 1 in a new browser context (its own empty cache), once its box is ready; requests
    that would leave ``url`` are refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith((url, "data:", "blob:")) else r.abort())
    page.goto(f"{url}/{PAGE}", wait_until="load")
    page.wait_for_selector(f"{BOX}[data-state=idle]", state="attached", timeout=60_000)
    try:
        yield page
    finally:
        context.close()


def measure(browser, url: str, files: dict[int, Path], cold: int, warm: int) -> tuple[list[dict], dict]:
    """Per size: ``cold`` first photos, each in a fresh context, and ``warm`` more in the first
    of them. Returns the rows and what the page reports of itself (model, runtime version)."""
    rows, page_info = [], {}
    for size, photo in files.items():
        first, again = [], []
        for k in range(cold):
            with fresh_page(browser, url) as page:
                first.append(colorize_once(page, photo, size))
                if k == 0:
                    again = [colorize_once(page, photo, size) for _ in range(warm)]
                page_info = page.evaluate("""box => ({
                    model: document.querySelector(box).dataset.model,
                    onnxruntime_web: window.ort.env.versions.web,
                    threads: window.ort.env.wasm.numThreads })""", BOX)
            print(f"{size}x{size}: first {first[-1]:.2f} s" + (f", warm {again}" if k == 0 else ""), file=sys.stderr)
        rows.append({"size": size, "pixels": size * size,
                     "first_s": round(statistics.median(first), 3), "first_runs": first,
                     "warm_s": round(statistics.median(again), 3), "warm_min_s": min(again), "warm_runs": again})
    return rows, page_info


def served_model(book: Path, name: str) -> dict:
    """What the page downloads of model ``name``: its graphs' bytes and how the weights are stored
    (from the exported manifest, ``_static/onnx/<name>/manifest.json``)."""
    manifest = json.loads((book / "_static" / "onnx" / name / "manifest.json").read_text())
    return {"name": name, "graph_bytes": sum(g["bytes"] for g in manifest["graphs"].values()),
            "weights": manifest.get("weights_storage", manifest.get("dtype", "float32"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--book", default=str(ROOT / "_build" / "html"), help="the built book (default _build/html)")
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024])
    p.add_argument("--cold", type=int, default=3, help="fresh contexts per size for the first photo (default 3)")
    p.add_argument("--warm", type=int, default=5, help="runs per size with the network loaded (default 5)")
    p.add_argument("--note", default="", help="a sentence on the conditions (a shared machine, ...)")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args()
    book = Path(a.book)
    if not (book / PAGE).is_file():
        sys.exit(f"no built book in {book} ({PAGE} missing): build it first with `make book`")
    if not Path(CHROMIUM).exists():
        sys.exit("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="colorlib-inbrowser-") as tmp, serve(book) as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        rows, page_info = measure(browser, url, photos(a.sizes, Path(tmp)), a.cold, a.warm)
        version = browser.version
        browser.close()
    machine = machine_info("cpu")
    machine.update(browser=f"Chromium {version} (headless)", onnxruntime_web=page_info["onnxruntime_web"],
                   onnxruntime_web_backend=f"WebAssembly SIMD, {page_info['threads']} thread"
                                           + ("s" if page_info["threads"] != 1 else ""),
                   load_avg_before_1_5_15_min=load_before)
    result = {
        "what": "seconds to colorize a photo in chapter 1's colorize box (book/_js/colorizer.js, "
                f"{page_info['model']}, ONNX Runtime Web), as the box reports them (performance.now() around "
                "colorize: from the photo's L* to the colorized image)",
        "input": "skimage.data.astronaut (512x512) resized to size x size (Lanczos), PNG, given to the box's "
                 "file picker",
        "timing": f"first: the first photo in a fresh browser context (empty cache: downloading and compiling "
                  f"the runtime and loading both graphs included), median of {a.cold}; warm: the same photo "
                  f"again with the network loaded, median of {a.warm}",
        "command": "python benchmarks/inbrowser.py --json benchmarks/results/inbrowser.json",
        "model": served_model(book, page_info["model"]),
        "machine": machine,
        "note": a.note,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sizes": rows,
    }
    if a.json:
        write_json(a.json, result)
        print(f"wrote {a.json}", file=sys.stderr)


if __name__ == "__main__":
    main()

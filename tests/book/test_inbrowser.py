"""The network in the reader's browser (book/_js/colorizer.js, issue 14 items 3-4), in Chromium.

The built book is served from 127.0.0.1; every request to anywhere else is refused and fails
the test, and so does any console error. Chapter 1: an uploaded photo is colorized in the page
and its pixels agree with ``colorlib.colorize`` of the same file (PSNR >= 38 dB, L* kept), the
top-5 classes with ``colorlib.classify``, the download with the picture shown. Chapter 8: A with
B's global features mixed at t = 0.5 agrees with PyTorch's mix. Chapter 10 colorizes too.
Opened from disk (``file://``), each box says the one command that serves the book, and that
command does. The 512x512 timing goes to tests/artifacts/inbrowser_timing.json (a benchmark
figure: nothing here asserts on time).
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from local_browser import free_port
from PIL import Image

from .book_helpers import ROOT

pytestmark = pytest.mark.book

ARTIFACTS = ROOT / "tests" / "artifacts"
MODEL = "miniplaces-full"
#: loading the runtime and the network and colorizing, on a loaded 2-core CPU: a bound for
#: waiting, not a figure under test
WAIT_MS = 300_000


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """L* of 8-bit sRGB (H, W, 3), as colorlib.lab computes it (skimage's D65 rgb2lab)."""
    from skimage.color import rgb2lab

    return rgb2lab(rgb)[..., 0]


@pytest.fixture(scope="module")
def model():
    import colorlib

    return colorlib.load_model(MODEL)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """Test photos from scikit-image written as PNG files: astronaut (512x512), coffee (600x400)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("astronaut", "coffee", "camera"):
        out[name] = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(out[name])
    return out


def _record_errors(page, errors: list[str]) -> None:
    """Console errors and uncaught exceptions of ``page`` into ``errors`` (none is let through: the
    theme's duplicate THEBE_JS_URL is fixed at its source, colorlib.book.sphinx_fixes)."""
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))


@pytest.fixture
def page(browser, server):
    """A page that records requests leaving 127.0.0.1 (refused), error responses and console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.outside, pg.failed, pg.errors = [], [], []

    def route(r):
        url = r.request.url
        if url.startswith((server + "/", "data:", "blob:")):
            r.continue_()
        else:
            pg.outside.append(url)
            r.abort()

    pg.route("**/*", route)
    pg.on("response", lambda resp: pg.failed.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)
    _record_errors(pg, pg.errors)
    pg.base = server
    yield pg
    context.close()


def _open(page, name: str) -> None:
    page.goto(f"{page.base}/book/{name}.html", wait_until="load")
    page.wait_for_selector("[data-colorlib][data-state]", state="attached", timeout=30_000)


def _clean(page) -> None:
    assert page.outside == [], f"requests that tried to leave 127.0.0.1: {page.outside}"
    assert page.failed == [], f"error responses: {page.failed}"
    assert page.errors == [], f"console errors: {page.errors}"


def _wait_state(page, selector: str, state: str = "done", **data: str) -> None:
    """Wait until the box at ``selector`` has data-state ``state`` (failing at once on "error")
    and the given data-* values."""
    page.wait_for_function(
        """([sel, state, data]) => {
            const r = document.querySelector(sel);
            if (r.dataset.state === 'error') return true;
            return r.dataset.state === state && Object.entries(data).every(([k, v]) => r.dataset[k] === v);
        }""", arg=[selector, state, data], timeout=WAIT_MS)
    status = page.locator(f"{selector} .colorlib-status").inner_text()
    assert page.locator(selector).get_attribute("data-state") == state, status


def _canvas(page, selector: str) -> np.ndarray:
    """The pixels of a canvas, read back losslessly (PNG), as uint8 (H, W, 3)."""
    url = page.eval_on_selector(selector, "c => c.toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_chapter1_colorizes_an_upload_as_colorlib_does(page, model, photos, tmp_path):
    import colorlib

    box = "[data-colorlib=colorize]"
    _open(page, "01_why")
    assert page.locator(box).get_attribute("data-state") == "idle"
    page.set_input_files(f"{box} input[type=file]", str(photos["astronaut"]))
    _wait_state(page, box)

    got = _canvas(page, f"{box} .colorlib-figure:nth-child(2) canvas")
    want = np.asarray(colorlib.colorize(model, photos["astronaut"]).convert("RGB"))
    source = np.asarray(Image.open(photos["astronaut"]).convert("RGB"))
    assert got.shape == want.shape == (512, 512, 3)
    assert psnr(got, want) >= 38, f"{psnr(got, want):.2f} dB against colorlib colorize"
    dL = np.abs(lightness(got) - lightness(source))
    assert dL.mean() < 0.5 and np.percentile(dL, 99) < 1.5, (dL.mean(), dL.max())  # 8-bit rounding only
    assert (got.astype(int) - source.astype(int)).std() > 1  # colour changed, not the input copied

    gray = _canvas(page, f"{box} .colorlib-figure:nth-child(1) canvas")
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert np.abs(lightness(gray) - lightness(source)).mean() < 0.5

    shown = [li.rsplit(" (", 1) for li in page.locator(f"{box} .colorlib-top5 li").all_inner_texts()]
    expected = colorlib.classify(model, photos["astronaut"])
    assert [name for name, _ in shown] == [name for name, _ in expected]
    for (_, pct), (_, p) in zip(shown, expected):
        assert abs(float(pct.rstrip("%)")) - 100 * p) <= 0.06  # printed to 0.1 %

    with page.expect_download() as d:
        page.click(f"{box} .colorlib-download")
    saved = tmp_path / d.value.suggested_filename
    d.value.save_as(saved)
    assert saved.name == "astronaut-color.png"
    assert np.array_equal(np.asarray(Image.open(saved).convert("RGB")), got)

    first = float(page.locator(box).get_attribute("data-seconds"))
    png = "data:image/png;base64," + base64.b64encode(photos["astronaut"].read_bytes()).decode()
    warm = page.evaluate("""async ([png, model]) => {  // the same photo again, the network loaded
        const image = await window.colorlib.readImage(await (await fetch(png)).blob());
        const times = [];
        for (let i = 0; i < 5; i++) times.push((await window.colorlib.colorize(model, image)).seconds);
        return times;
    }""", [png, MODEL])
    _write_timing(page, first, warm)
    _clean(page)


def _write_timing(page, first: float, warm: list[float]) -> None:
    from colorlib.report import cpu_name

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    result = {
        "what": f"colorlib colorize of a 512x512 photo in the book's page (book/_js/colorizer.js, {MODEL}, "
                "ONNX Runtime Web, WebAssembly SIMD, one thread), measured by performance.now() in the page",
        "first_seconds": round(first, 3),
        "first_includes": "downloading and compiling the runtime, loading both graphs, global branch, colorizer",
        "warm_seconds": [round(t, 3) for t in warm],
        "warm_median_seconds": round(statistics.median(warm), 3),
        "browser": f"Chromium {page.context.browser.version} (headless)",
        "machine": f"{cpu_name()}, {os.cpu_count()} CPUs, {platform.system()}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (ARTIFACTS / "inbrowser_timing.json").write_text(json.dumps(result, indent=2) + "\n")


def test_chapter8_mix_at_half_matches_torch(page, model, photos):
    import colorlib
    from colorlib.infer import global_features_of
    from colorlib.model import mix_global

    box = "[data-colorlib=mix]"
    _open(page, "08_style_transfer")
    assert page.locator(box).get_attribute("data-state") == "idle"
    gallery = page.locator(f"{box} .colorlib-choices").nth(1).locator(".colorlib-thumb")
    assert gallery.count() == 6  # the chapter's gallery, for either photo
    files = page.locator(f"{box} input[type=file]")
    files.nth(0).set_input_files(str(photos["astronaut"]))
    files.nth(1).set_input_files(str(photos["coffee"]))
    _wait_state(page, box, t="0", a="astronaut.png", b="coffee.png")
    at0 = _canvas(page, f"{box} canvas")
    page.locator(f"{box} input[type=range]").fill("0.5")
    _wait_state(page, box, t="0.5", a="astronaut.png", b="coffee.png")
    got = _canvas(page, f"{box} canvas")

    g = [global_features_of(model, photos[n]) for n in ("astronaut", "coffee")]
    want = np.asarray(colorlib.colorize(model, photos["astronaut"], global_features=mix_global(*g, 0.5)))
    own = np.asarray(colorlib.colorize(model, photos["astronaut"]))
    assert psnr(got, want) >= 38, f"{psnr(got, want):.2f} dB against PyTorch's mix at t = 0.5"
    assert psnr(at0, own) >= 38  # t = 0: A's own global features
    assert psnr(got, at0) < psnr(got, want) - 3  # the slider moved the picture

    name = gallery.nth(2).get_attribute("data-name")  # a gallery photo lends its features now
    gallery.nth(2).click()
    _wait_state(page, box, t="0.5", a="astronaut.png", b=name)
    assert not np.array_equal(_canvas(page, f"{box} canvas"), got)
    _clean(page)


def test_chapter10_colorizes_an_upload(page, photos):
    box = "[data-colorlib=colorize]"
    _open(page, "10_past")
    page.set_input_files(f"{box} input[type=file]", str(photos["camera"]))
    _wait_state(page, box)
    got = _canvas(page, f"{box} .colorlib-figure:nth-child(2) canvas")
    assert got.shape == (512, 512, 3) and got.std(axis=2).mean() > 1  # a gray photo, now in colour
    assert page.locator(f"{box} .colorlib-top5 li").count() == 5
    _clean(page)


@pytest.mark.parametrize("name", ["01_why", "08_style_transfer", "10_past"])
def test_opened_from_disk_the_box_gives_the_command_that_serves_the_book(browser, built_book, name):
    context = browser.new_context()
    pg = context.new_page()
    errors, outside = [], []
    _record_errors(pg, errors)
    pg.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
             else (outside.append(r.request.url), r.abort()))
    pg.goto((built_book / "book" / f"{name}.html").resolve().as_uri(), wait_until="load")
    pg.wait_for_selector("[data-colorlib][data-state=needs-server]", timeout=30_000)
    assert pg.locator("[data-colorlib] input").count() == 0  # no control that could not work
    command = pg.locator("[data-colorlib] .colorlib-serve code").inner_text()
    link = pg.locator("[data-colorlib] .colorlib-serve a").get_attribute("href")
    context.close()
    assert outside == [] and errors == [], (outside, errors)
    assert link == f"http://127.0.0.1:8000/book/{name}.html"

    # the command, run as shown (on a free port), serves this copy of the book
    argv = shlex.split(command)
    assert argv[:3] == ["python3", "-m", "http.server"] and Path(argv[-1]) == built_book.resolve()
    port = free_port()
    argv = [sys.executable, *argv[1:3], *[str(port) if a == "8000" else a for a in argv[3:]]]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(link.replace("8000", str(port)), timeout=5) as r:
                    assert r.status == 200 and b"data-colorlib" in r.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"{command} did not serve the book")
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""The network in the reader's browser (book/_js/colorizer.js, issue 14 items 3-4), in Chromium.

The built book is served from 127.0.0.1; every request to anywhere else is refused and fails
the test, and so does any console error. Chapter 1: an uploaded photo is colorized in the page
and its pixels agree with ``colorlib.colorize`` of the same file (PSNR >= 38 dB, L* kept), the
top-5 classes with ``colorlib.classify``, the download with the picture shown. Chapter 5: the four
models of the alpha sweep colorize an upload and a gallery photo side by side, each as
``colorlib.colorize`` with that model, with its top-5 classes. Chapter 8: A with B's global
features mixed at t = 0.5 agrees with PyTorch's mix. Chapter 10 colorizes too. The pages' models
are stored with float16 weights (colorlib.export.float16_weights) so that the runtime and the
five models fit in the 80 MiB the book allows them.
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
#: the models of chapter 5's alpha sweep, in the order the page shows them
SWEEP = ("sweep-alpha-0", "sweep-alpha-1-3000", "sweep-alpha-1-300", "sweep-alpha-1-30")
#: a class probability in the page may differ from colorlib.classify's by the float16 rounding of
#: the weights (colorlib.export.float16_weights): measured up to 1.6e-3 in the page (sweep-alpha-1-30
#: on a gallery photo, p = 0.28; with float32 weights below 1e-4)
PROB_TOL = 2.5e-3
#: what the in-browser network may add to the built book (issue 14): runtime, models, script
BUDGET = 80 * 2**20


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
    """Test photos from scikit-image written as PNG files: astronaut (512x512), coffee (600x400),
    camera (512x512, gray), chelsea (451x300)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("astronaut", "coffee", "camera", "chelsea"):
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
    """A page that records its requests (``requested``), those leaving 127.0.0.1 (refused), error
    responses and console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.requested, pg.outside, pg.failed, pg.errors = [], [], [], []

    def route(r):
        url = r.request.url
        pg.requested.append(url)
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


def _assert_top5(page, selector: str, model, photo) -> None:
    """The five classes listed at ``selector`` are ``colorlib.classify``'s, best first; a class
    may take the place of one whose probability is within PROB_TOL of its own (a near tie that
    the float16 weights can reorder)."""
    import colorlib

    shown = [li.rsplit(" (", 1) for li in page.locator(selector).all_inner_texts()]
    expected = colorlib.classify(model, photo, top=10**6)  # every class, best first
    p = dict(expected)
    assert len(shown) == 5 and len({name for name, _ in shown}) == 5, shown
    for (name, pct), (_, want) in zip(shown, expected):
        assert abs(p[name] - want) <= PROB_TOL, (shown, expected[:6])
        assert abs(float(pct.rstrip("%)")) - 100 * p[name]) <= 0.05 + 100 * PROB_TOL  # printed to 0.1 %


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

    _assert_top5(page, f"{box} .colorlib-top5 li", model, photos["astronaut"])

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
    from colorlib.device import cpu_name

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


def _data_url_image(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def test_chapter5_four_alpha_models_side_by_side(page, photos):
    import colorlib

    box = "[data-colorlib=compare]"
    _open(page, "05_training")
    assert page.locator(box).get_attribute("data-state") == "idle"
    panel = f"{box} .colorlib-panel"
    assert page.locator(panel).evaluate_all("ps => ps.map(p => p.dataset.model)") == list(SWEEP)
    # nothing of the network is downloaded before the reader chooses a photo
    assert not [u for u in page.requested if "/_static/onnx" in u or "onnxruntime" in u]

    # a large photo: the network sees it as colorlib does, at most DEFAULT_MAX_PIXELS (area-averaged)
    from colorlib.infer import DEFAULT_MAX_PIXELS, network_size

    big = page.evaluate("""() => {
        const lum = colorlib.lightness(new ImageData(3000, 2000));
        return [lum.H, lum.W, lum.h, lum.w, lum.seen.length, lum.L.length];
    }""")
    h, w = network_size(2000, 3000)
    assert h * w <= DEFAULT_MAX_PIXELS and big == [2000, 3000, h, w, h * w, 2000 * 3000]

    # every status the box shows, in order: it names the model running, one after the other
    page.evaluate("""sel => {
        const status = document.querySelector(sel + ' .colorlib-status');
        window.statuses = [];
        new MutationObserver(() => window.statuses.push(status.textContent))
            .observe(status, {childList: true, characterData: true, subtree: true});
    }""", box)
    models = {name: colorlib.load_model(name) for name in SWEEP}
    page.set_input_files(f"{box} input[type=file]", str(photos["chelsea"]))
    _wait_state(page, box, photo="chelsea.png")
    statuses = page.evaluate("window.statuses")
    running = [next((i for i, s in enumerate(statuses) if f"colorizing with {name} ({k} of 4)" in s), None)
               for k, name in enumerate(SWEEP, 1)]
    assert None not in running and running == sorted(running), statuses
    assert statuses[-1].startswith("chelsea.png (451x300) colorized by the 4 networks")
    # the chooser is emptied once the file is read: choosing the same file again is a change
    assert page.eval_on_selector(f"{box} input[type=file]", "i => i.value") == ""
    source = np.asarray(Image.open(photos["chelsea"]).convert("RGB"))
    got = {}
    for name, model in models.items():
        got[name] = _canvas(page, f'{panel}[data-model="{name}"] canvas')
        want = np.asarray(colorlib.colorize(model, photos["chelsea"]).convert("RGB"))
        assert got[name].shape == want.shape == source.shape
        assert psnr(got[name], want) >= 38, f"{name}: {psnr(got[name], want):.2f} dB against colorlib colorize"
        _assert_top5(page, f'{panel}[data-model="{name}"] .colorlib-top5 li', model, photos["chelsea"])
    # four different models, not one picture four times
    assert psnr(got["sweep-alpha-0"], got["sweep-alpha-1-30"]) < 38
    # the untrained classifier (alpha = 0) is said so under its classes, and only there
    notes = page.locator(panel).evaluate_all(
        "ps => ps.map(p => (p.querySelector('.colorlib-note') || {}).textContent || '')")
    assert "never received a gradient" in notes[0] and notes[1:] == ["", "", ""]
    fetched = [u.split("/_static/onnx/")[1] for u in page.requested if "/_static/onnx/" in u]
    assert {f"{name}/{file}" for name in SWEEP for file in ("manifest.json", "global.onnx", "colorizer.onnx")} \
        == set(fetched)

    thumb = page.locator(f"{box} .colorlib-thumb").nth(2)  # a gallery photo
    assert page.locator(f"{box} .colorlib-thumb").count() == 5
    photo = _data_url_image(thumb.locator("img").get_attribute("src"))
    thumb.click()
    _wait_state(page, box, photo=thumb.get_attribute("data-name"))
    for name, model in models.items():
        shown = _canvas(page, f'{panel}[data-model="{name}"] canvas')
        want = np.asarray(colorlib.colorize(model, photo).convert("RGB"))
        assert psnr(shown, want) >= 38, f"{name}: {psnr(shown, want):.2f} dB on the gallery photo"
        _assert_top5(page, f'{panel}[data-model="{name}"] .colorlib-top5 li', model, photo)
    assert len([u for u in page.requested if "/_static/onnx/" in u]) == len(fetched)  # loaded once

    # the same file as before, chosen again after the gallery photo, is colorized again
    page.set_input_files(f"{box} input[type=file]", str(photos["chelsea"]))
    _wait_state(page, box, photo="chelsea.png")
    assert np.array_equal(_canvas(page, f'{panel}[data-model="{SWEEP[0]}"] canvas'), got[SWEEP[0]])
    _clean(page)


def test_in_browser_additions_fit_the_budget(built_book):
    """ONNX Runtime Web, every exported model and colorizer.js together at most 80 MiB, and the
    models shipped are exactly those the pages name."""
    static = built_book / "_static"
    parts = [static / "onnxruntime-web", static / "onnx", static / "colorizer.js"]
    files = [f for p in parts for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    assert total <= BUDGET, f"{total / 2**20:.1f} MiB"
    named = set()
    for page in (built_book / "book").glob("*.html"):
        text = page.read_text()
        named |= {m.split('"')[0] for m in text.split('data-model="')[1:]}
    assert {p.name for p in (static / "onnx").iterdir()} == named == {MODEL, *SWEEP}


def test_pages_name_a_favicon_the_book_serves(page):
    """Every page links its own icon (_config.yml html.favicon), served from _static, so the
    browser never asks for a /favicon.ico the book lacks (a 404 in the console)."""
    _open(page, "05_training")
    href = page.eval_on_selector("link[rel~=icon]", "l => l.href")
    assert href.startswith(page.base + "/_static/")
    status, kind, size = page.evaluate("""u => fetch(u).then(async r =>
        [r.status, r.headers.get('content-type'), (await r.arrayBuffer()).byteLength])""", href)
    assert status == 200 and kind == "image/png" and 0 < size < 4096
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


@pytest.mark.parametrize("name", ["01_why", "05_training", "08_style_transfer", "10_past"])
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

"""The built HTML in a real browser: Debian's Chromium driven by Playwright, fully offline.

The book is served from 127.0.0.1 on a free port; every request to anywhere else is recorded
and refused. Each page must show its figures (images that actually decoded), its widgets
(rendered from the embedded state, no kernel) and its typeset equations, and log no error in
the console; moving a jslinked control must change the image shown. One screenshot per page goes
to tests/artifacts/.
"""

from __future__ import annotations

import re

import pytest

from .book_helpers import PAGES, ROOT

pytestmark = pytest.mark.book

ARTIFACTS = ROOT / "tests" / "artifacts"

# figures (img elements) at least, widgets, and equations each page must have (the figure
# counts hold without the data folder too, where a few figures have nothing to show)
FIGURES = {"01_why": 2, "02_lab": 3, "03_network": 1, "04_data": 3, "05_training": 6, "06_results": 4,
           "07_user_study": 2, "08_style_transfer": 5, "09_classification": 1, "10_past": 1,
           "11_runtime": 1, "12_limitations": 3}
# (chapter 7's study is the page's own script, not a widget: tests/book/test_inbrowser_study.py)
WIDGETS = {"02_lab": ".widget-slider", "05_training": ".widget-toggle-buttons",
           "08_style_transfer": ".widget-dropdown"}
MATH = {"02_lab", "03_network", "05_training", "11_runtime"}

#: What a page must not show of the machine that built it (issue 15, item 1): an absolute path
#: (a Unix home, /work, /tmp, /root, /mnt, /srv, /var, a Windows drive) or the machine's load.
#: A relative path a reader is told to use (the instructors' page) is no leak.
MACHINE_LEAKS = re.compile(
    r"(?<![\w.~])/(?:home|work|tmp|root|mnt|srv|var|Users|opt/[a-z])\S*|\b[A-Z]:\\\w"
    r"|load[ _]av(?:erage|g)|getloadavg", re.IGNORECASE)


def machine_leaks(text: str) -> list[str]:
    """The snippets of ``text`` (a page's visible text) that name the build machine's paths or load."""
    return [text[max(0, m.start() - 30): m.end() + 30] for m in MACHINE_LEAKS.finditer(text)]


def test_machine_leaks_finds_paths_and_load_and_passes_plain_text():
    assert machine_leaks("data from /home/student/data/miniplaces/val.tar.gz at 128")
    assert machine_leaks("220 s on AMD EPYC (load average 2.5 over 5 minutes)")
    assert machine_leaks(r"saved to C:\Users\me")
    assert machine_leaks("cache in /tmp/abc")
    assert not machine_leaks("the 2,000 photos of the MiniPlaces validation split, 24.65 dB, a*b* / 2")
    assert not machine_leaks("see colorlib/models/results.json and book/_vendor, 1/300 and 0.5/s")


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.outside = []  # requests that tried to leave 127.0.0.1
    pg.failed = []  # local responses with an error status
    pg.errors = []  # console errors and uncaught exceptions (issue 15, item 8: none on any page)

    def route(r):
        url = r.request.url
        if url.startswith((server + "/", "data:", "blob:")):
            r.continue_()
        else:
            pg.outside.append(url)
            r.abort()

    pg.route("**/*", route)
    pg.on("response", lambda resp: pg.failed.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)
    pg.on("console", lambda msg: pg.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: pg.errors.append(f"uncaught: {exc}"))
    pg.base = server
    yield pg
    context.close()


def _open(page, name: str) -> None:
    page.goto(f"{page.base}/book/{name}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    if name in WIDGETS:
        page.wait_for_selector(".jupyter-widgets", state="attached", timeout=30_000)
    if name in MATH:
        page.wait_for_selector("mjx-container", state="attached", timeout=30_000)
    page.wait_for_timeout(300)


def _visible_widget_images(page) -> list[str]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.jupyter-widgets img'))
        .filter(i => i.offsetParent !== null && i.naturalWidth > 0).map(i => i.src)""")


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_offline_with_figures_widgets_and_math(page, name):
    _open(page, name)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.outside == [], f"{name} tried to load from outside 127.0.0.1: {page.outside}"
    assert page.failed == [], f"{name}: {page.failed}"
    assert page.errors == [], f"{name} logs errors in the browser's console: {page.errors}"
    leaks = machine_leaks(page.inner_text("main"))
    assert leaks == [], f"{name} shows the build machine's paths or load: {leaks}"
    images = page.evaluate("""() => Array.from(document.querySelectorAll('main img'))
        .filter(i => i.offsetParent !== null || !i.closest('.jupyter-widgets'))
        .map(i => ({src: i.src.slice(0, 80), w: i.naturalWidth, h: i.naturalHeight}))""")
    broken = [i for i in images if not (i["w"] and i["h"])]
    assert not broken, f"{name}: images that did not load: {broken}"
    assert len(images) >= FIGURES.get(name, 0), f"{name}: {len(images)} images"
    if name in WIDGETS:
        assert page.locator(WIDGETS[name]).count() > 0
        assert page.locator(".jupyter-widgets").count() > 0
        assert not page.locator("text=Error rendering").count()
    if name in MATH:
        assert page.locator("mjx-container").count() > 0
        assert not page.locator("mjx-merror").count()


def test_lab_slider_changes_the_plane_shown(page):
    _open(page, "02_lab")
    before = _visible_widget_images(page)
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(500)
    after = _visible_widget_images(page)
    assert before and after and before != after
    assert page.locator(".widget-readout").first.inner_text().strip() == "70"
    assert page.errors == []


def test_alpha_buttons_switch_the_model_shown(page):
    _open(page, "05_training")
    before = _visible_widget_images(page)
    page.locator(".widget-toggle-button", has_text="α = 0").first.click()
    page.wait_for_timeout(500)
    after = _visible_widget_images(page)
    assert before and after and before != after
    assert page.locator("text=sweep-alpha-0").count() > 0
    assert page.errors == []


def test_style_transfer_pickers_and_mix_slider(page):
    _open(page, "08_style_transfer")
    before = _visible_widget_images(page)
    page.locator(".widget-dropdown select").nth(1).select_option(index=3)
    page.wait_for_timeout(500)
    after = _visible_widget_images(page)
    assert after != before
    handle = page.locator(".widget-slider .noUi-handle").first  # the jslinked t slider
    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_timeout(500)
    assert _visible_widget_images(page) != after
    assert page.errors == []

"""The class apps (issue 13, item 6; issue 15): the naturalness study, style transfer and chapter
5's alpha control served by Voila, started as the README says (``colorlib apps study|style|alpha``)
on 127.0.0.1 and a free port, and used in Debian's Chromium driven by Playwright. Each app must
show no code; moving the style app's slider or dropdown must change the colorization shown; the
study's answers, clicked in the page, must land in the participant's CSV in the order
:class:`colorlib.study.Study` plans, and ``colorlib study`` must merge them; the alpha chosen on
the alpha app's slider must be the one trained, in the runs folder given, and be listed with its
scores.

Every request that tries to leave 127.0.0.1 is refused.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from conftest import data_dir
from local_browser import free_port

from colorlib.apps import APPS, notebook

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Seconds allowed for Voila to start, and for a kernel to run an app and show it (a slow CI
#: machine imports torch, the models and the photos); a bound on waiting, never an assertion on time.
START_S = 240
#: What a page would show if Voila left code in it.
CODE_SELECTORS = ".jp-InputArea-editor, .jp-CodeMirrorEditor, .cm-editor, .CodeMirror, .jp-InputPrompt"


def test_every_app_notebook_is_shipped_without_outputs(cli):
    for name in APPS:
        path = notebook(name)
        assert path.is_file() and path.parent == ROOT / "colorlib" / "apps"
        nb = nbformat.read(path, as_version=4)
        assert [c.cell_type for c in nb.cells] == ["code"] and not nb.cells[0].outputs
        assert f"from colorlib.apps.{name} import" in nb.cells[0].source
        status, out, _ = cli("apps", name, "--path")
        assert status == 0 and out.strip() == str(path)


def test_apps_command_says_what_is_missing_or_wrong_before_starting(cli, tmp_path, monkeypatch):
    import importlib.util
    import json

    missing = tmp_path / "none.json"
    status, _, err = cli("apps", "study", "--stimuli", missing)
    assert status == 2 and f"stimuli manifest {missing}" in err and len(err.splitlines()) == 1
    manifest = tmp_path / "manifest-n3.json"
    manifest.write_text(json.dumps({"image_ids": ["a", "b", "c"], "size": 224, "seed": 0, "source": "test",
                                    "models": {"ground_truth": "photo", "full": "f", "baseline": "b"}}))
    status, _, err = cli("apps", "study", "--stimuli", manifest, "--trials", "2", "--answers", tmp_path / "a")
    assert status == 2 and "needs 6 photos; the stimuli have 3" in err
    status, _, err = cli("apps", "alpha", "--steps", "0")
    assert status == 2 and "--steps must be at least 1" in err
    for port in ("99999", "0", "-1", "http"):  # found by the break test: 99999 served on 34463
        status, _, err = cli("apps", "alpha", "--port", port)
        assert status == 2 and "port from 1 to 65535" in err and len(err.splitlines()) == 1, port
    status, _, err = cli("apps", "alpha", "--ip", "999.1.1.1", "--no-browser")  # was a traceback
    assert status == 2 and "--ip 999.1.1.1: not an address" in err and len(err.splitlines()) == 1
    monkeypatch.setenv("COLORLIB_DATA", str(missing))
    status, _, err = cli("apps", "alpha")
    assert status == 2 and str(missing) in err  # a data folder named but absent: said before serving
    monkeypatch.delenv("COLORLIB_DATA")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "voila" else find_spec(name, *a))
    status, _, err = cli("apps", "style")
    assert status == 2 and 'pip install "colorlib[apps]"' in err


@contextmanager
def serve(app: str, folder: Path, *options: str) -> Iterator[tuple[str, Path]]:
    """``colorlib apps APP`` running in ``folder`` (its own cache there): yields the app's URL
    and the server's log once Voila answers; stops Voila and its kernels (the process group it leads) afterwards."""
    port = free_port()
    log = folder / f"voila-{app}.log"
    env = dict(os.environ, COLORLIB_CACHE=str(folder / "cache"))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "colorlib", "apps", app, "--port", str(port),
                                 "--no-browser", *options], cwd=folder, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, f"colorlib apps {app} stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"Voila did not answer:\n{log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(url + "voila/static/", timeout=5)
                break
            except OSError as e:
                if getattr(e, "code", None):  # an HTTP status: the server is up
                    break
                time.sleep(0.5)
        yield url, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def open_page(browser, url: str, log: Path):
    """A page of ``url`` that may reach 127.0.0.1 only; ``page.outside`` lists refused requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(START_S * 1000)
    page.outside = []
    page.errors = []
    page.log = log  # the server's, for failures
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def route(r):
        if r.request.url.startswith((url, "data:", "blob:")):
            r.continue_()
        else:
            page.outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    yield page
    context.close()


def wait_for_app(page, shown) -> None:
    """Wait until the kernel has run the app and ``shown`` (a locator) appears, or Voila reports
    that the app's cell failed (then fail with the server's log, which holds the traceback)."""
    failed = page.get_by_text("There was an error when executing cell")
    shown.or_(failed).first.wait_for()
    assert not failed.count(), f"the app's cell failed:\n{page.log.read_text()[-4000:]}"


def assert_no_code(page) -> None:
    assert page.locator(CODE_SELECTORS).count() == 0, "the app shows a code cell"
    text = page.inner_text("body")
    for code in ("import ", "from colorlib", "_page()"):
        assert code not in text, f"the app shows code: {code!r} in its text"


def result_image(page):
    """The style app's colorization: the widget image of 256 pixels (thumbnails are 96)."""
    return page.locator(".widget-image[width='256']")


def test_style_app_shows_no_code_and_its_controls_change_the_colorization(browser, tmp_path):
    with serve("style", tmp_path) as (url, log), open_page(browser, url, log) as page:
        image = result_image(page)
        wait_for_app(page, image)
        caption = page.get_by_text("colorized with (1 - t)")
        assert "t = 0.50" in caption.inner_text()
        assert page.locator(".widget-image").count() >= 3  # the gallery's thumbnails and the result
        assert_no_code(page)

        before_src, before_png = image.get_attribute("src"), image.screenshot()
        handle = page.locator(".widget-hslider .noUi-handle")
        handle.focus()
        for _ in range(10):  # t from 0.50 to 1.00, a step of 0.05 per key, as a reader would
            handle.press("ArrowRight")
        page.get_by_text("t = 1.00").wait_for()
        page.wait_for_function("([el, src]) => el.src !== src", arg=[image.element_handle(), before_src])
        after_png = image.screenshot()
        assert after_png != before_png, "moving t did not change the picture"

        selects = page.locator(".widget-dropdown select")
        assert selects.count() == 2
        options = selects.nth(1).locator("option").all_inner_texts()
        other = options[2]
        src = image.get_attribute("src")
        selects.nth(1).select_option(label=other)
        page.get_by_text(f"B = {other}").wait_for()
        page.wait_for_function("([el, src]) => el.src !== src", arg=[image.element_handle(), src])
        assert image.screenshot() not in (after_png, before_png), "another photo B did not change it"
        assert_no_code(page)
        assert not page.errors, page.errors


def click_and_wait(page, button: str, next_progress: str) -> None:
    """Answer as a participant: look at the image for a moment (the app ignores answers within
    0.3 s of an image appearing), click, and wait for the next image's progress line."""
    page.wait_for_timeout(500)
    page.get_by_role("button", name=button).click()
    page.get_by_text(next_progress).wait_for()


def test_study_app_answers_land_in_the_participants_csv(browser, tmp_path, cli):
    from colorlib.study import Stimuli, Study, load_answers

    answers = tmp_path / "answers"
    with serve("study", tmp_path, "--answers", "answers", "--images", "6", "--trials", "2") as (url, log):
        with open_page(browser, url, log) as page:
            wait_for_app(page, page.get_by_role("button", name="Start"))
            assert_no_code(page)
            page.get_by_placeholder("e.g. anna or s12").fill("bad id!")
            page.get_by_role("button", name="Start").click()
            page.get_by_text("use letters, digits").wait_for()  # the study's own check, shown
            page.get_by_placeholder("e.g. anna or s12").fill("p01")
            page.get_by_role("button", name="Start").click()
            page.get_by_text("trial 1 of 6").wait_for()
            image = page.locator(".widget-image").first
            shown = [image.get_attribute("src")]
            for n, button in enumerate(["Yes (y)", "No (n)", "Yes (y)"], start=2):
                click_and_wait(page, button, f"trial {n} of 6")
                shown.append(image.get_attribute("src"))
            assert len(set(shown)) == 4, "each answer must bring the next image"
            assert_no_code(page)
            assert not page.errors, page.errors

        with open_page(browser, url, log) as page:  # the same participant, back after closing the tab
            page.get_by_placeholder("e.g. anna or s12").fill("p01")
            page.get_by_role("button", name="Start").click()
            page.get_by_text("Welcome back: 3 answered already.").wait_for()
            page.get_by_text("trial 4 of 6").wait_for()
            click_and_wait(page, "No (n)", "trial 5 of 6")
            click_and_wait(page, "No (n)", "trial 6 of 6")
            click_and_wait(page, "Yes (y)", "Thank you, p01!")  # the last answer: the participant's rates
            assert page.get_by_role("button", name="Yes (y)").is_hidden()

    got = load_answers(answers / "p01.csv", quiet=True)
    assert not got.warnings
    assert [(r.participant, r.trial, r.answer, r.seed) for r in got.rows] == [
        ("p01", n, answer, 0) for n, answer in enumerate(["yes", "no", "yes", "no", "no", "yes"], start=1)]
    manifest = next((tmp_path / "cache" / "study").glob("*/manifest-n6.json"))
    plan = Study("p01", Stimuli.load(manifest), 2, seed=0, csv_path=answers, resume=True)
    assert plan.done and plan.n_trials == 6
    assert [(r.image_id, r.condition) for r in got.rows] == [(t.image_id, t.condition) for t in plan.trials]
    assert sorted(r.condition for r in got.rows) == sorted(plan.stimuli.conditions * 2)  # 2 per condition
    status, out, err = cli("study", answers)
    assert status == 0, err
    assert "6 answers from 1 participants" in out


def comparison_row(page, label: str) -> list[str]:
    """The cells of the alpha app's comparison row for ``α = label``, once it is there."""
    row = page.locator("table tr").filter(has_text=f"α = {label}")
    row.wait_for()
    return row.locator("td").all_inner_texts()


def test_alpha_app_trains_the_alpha_chosen_and_compares_it(browser, tmp_path):
    import csv
    import json

    from colorlib.sample_photos import sample_photos

    d = data_dir()
    miniplaces = d is not None and (d / "miniplaces").exists()
    runs = tmp_path / "my-runs"
    with serve("alpha", tmp_path, "--runs", "my-runs", "--steps", "10") as (url, log):
        with open_page(browser, url, log) as page:
            train = page.get_by_role("button", name="Train")
            wait_for_app(page, train)
            assert_no_code(page)
            text = page.inner_text("body")
            # a batch is 32 photos, or all of them when there are fewer: without the data folder the
            # app trains on the colour photos that ship in the installed packages (seven of them)
            batch = 32 if miniplaces else min(32, len(sample_photos(colour_only=True)))
            assert f"10 steps of {batch} photos" in text and "on the CPU" in text
            if miniplaces:
                assert "Training data: MiniPlaces: the first 2,000 photos of the training split" in text
            else:
                assert "No MiniPlaces data folder was found" in text and "no data folder found" in text
            handle = page.locator(".widget-hslider .noUi-handle")
            handle.focus()
            for _ in range(2):  # 1/300 -> 1/500 -> 1/1000, one notch per key, as a reader would
                handle.press("ArrowLeft")
            page.locator(".widget-readout").filter(has_text="1/1000").wait_for()
            train.click()
            page.get_by_text("α = 1/1000: trained.").wait_for()
            cells = comparison_row(page, "1/1000")
            assert cells[0] == "α = 1/1000" and len(cells) == 5
            psnr, auc, top5 = cells[2:]
            # Colorized photos keep their L*; even 10 steps land far above 10 dB and below a copy
            assert 10 < float(psnr) < 60
            assert 0 <= float(auc) <= 100
            assert (0 <= float(top5) <= 100) if miniplaces else top5 == "–"  # no labels: no top-5
            shown = page.locator("table tr").filter(has_text="α = 1/1000").locator("img")
            assert shown.count() == 4 and shown.first.get_attribute("src").startswith("data:image/jpeg")
            assert_no_code(page)
            assert not page.errors, page.errors

        with open_page(browser, url, log) as page:  # another tab: the run is in the shared folder
            train = page.get_by_role("button", name="Train")
            wait_for_app(page, train)
            handle = page.locator(".widget-hslider .noUi-handle")
            handle.focus()
            for _ in range(2):
                handle.press("ArrowLeft")
            page.locator(".widget-readout").filter(has_text="1/1000").wait_for()
            train.click()
            page.get_by_text("α = 1/1000: loaded from its run folder.").wait_for()
            assert comparison_row(page, "1/1000")[2:] == [psnr, auc, top5]

    run = runs / f"{'miniplaces' if miniplaces else 'package-photos'}-10-steps" / "alpha-1-1000"
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["alpha"] == pytest.approx(1 / 1000) and config["steps"] == 10 and config["device"] == "cpu"
    with open(run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(10))  # one row per step: the budget given
    class_loss = [float(r["class_loss"]) for r in rows]
    # Eq. 6's class term is on with labels (about ln 100 = 4.6 at the start), off without
    assert all(c > 1 for c in class_loss) if miniplaces else all(c == 0 for c in class_loss)
    assert sorted(p.name for p in runs.rglob("model.safetensors")) == ["model.safetensors"]  # one run


def test_apps_refuse_an_address_a_busy_port_or_a_folder_before_any_work(cli, tmp_path, monkeypatch):
    """Issue 25: an address that is not this machine's was a 22-line tornado traceback (exit 1)
    with a voila__* folder left behind; a busy --port was said as served while Voila took the
    next one; an --answers folder that cannot be written failed after rendering the stimuli.
    Each is now one line, exit 2, before Voila starts (os.execve is never reached)."""
    import socket
    import tempfile

    import colorlib.cli.apps as command
    import colorlib.study

    started = []
    monkeypatch.setattr(command.os, "execve", lambda exe, args, env: started.append(args))
    monkeypatch.setattr(colorlib.study, "make_stimuli", lambda **kw: pytest.fail("rendered before the checks"))
    before = set(Path(tempfile.gettempdir()).glob("voila__*"))
    status, out, err = cli("apps", "style", "--ip", "198.51.100.77", "--no-browser")  # TEST-NET-2: documentation only
    assert status == 2 and out == "" and len(err.splitlines()) == 1, err
    assert "--ip 198.51.100.77: not an address of this machine" in err and "Traceback" not in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, out, err = cli("apps", "style", "--port", port, "--no-browser")
        assert status == 2 and out == "" and err == (
            f"colorlib apps: error: port {port} is in use on 127.0.0.1 (another server, perhaps an app "
            "still running): stop it, or give another --port\n")
        monkeypatch.setattr(command, "DEFAULT_PORT", port)  # the default taken: the next free one, said
        status, out, err = cli("apps", "style", "--no-browser")
    assert status == 0 and err == "" and len(started) == 1
    served = int(next(a for a in started[0] if a.startswith("--port=")).split("=")[1])
    assert served != port and "--Voila.port_retries=0" in started[0]
    assert out == f"starting Voila on http://127.0.0.1:{served}/ ({port} is in use) (Ctrl-C stops it)\n"
    (tmp_path / "a-file").write_text("a file where a folder is expected\n")
    for app, option, folder, why in [("study", "--answers", tmp_path / "a-file", "not a folder"),
                                     ("study", "--answers", tmp_path / "a-file" / "answers", "a-file is not a folder"),
                                     ("study", "--answers", "/proc/answers", "no file can be created in /proc"),
                                     ("alpha", "--runs", tmp_path / "a-file" / "runs", "a-file is not a folder")]:
        status, out, err = cli("apps", app, option, folder, "--no-browser")
        assert status == 2 and out == "" and len(err.splitlines()) == 1, err
        assert err.startswith(f"colorlib apps: error: {option} {folder}: ") and why in err, err
    assert len(started) == 1 and set(Path(tempfile.gettempdir()).glob("voila__*")) == before


def test_study_counts_below_one_are_refused_by_their_option(cli, monkeypatch):
    """Found by the issue 25 break test: --trials 0 quietly meant the default, --trials -1 said
    the stimuli 'need -3 photos', --images 0 named a size the user never gave."""
    import colorlib.study

    monkeypatch.setattr(colorlib.study, "make_stimuli", lambda **kw: pytest.fail("rendered before the checks"))
    for option, value in (("--trials", "0"), ("--trials", "-1"), ("--images", "0"), ("--images", "-2")):
        status, out, err = cli("apps", "study", option, value, "--no-browser")
        assert (status, out, err) == (2, "", f"colorlib apps: error: {option} must be at least 1, got {value}\n")

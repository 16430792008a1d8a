"""Chapter 7's naturalness study in the reader's browser (book/_js/study.js, issue 14), in Chromium.

A participant answers every trial with the keys y and n, the page is reloaded halfway and
resumes, and the CSV it offers at the end is checked against colorlib itself: the images shown
are the trials ``colorlib.study.Study`` plans for that participant (same order), the file is
byte for byte the one ``Study.answer`` writes for the same answers (timestamps aside), and
``colorlib study FOLDER`` and ``load_answers`` read it with the answers and yes counts pressed.
Opened from disk (``file://``) the study works too (buttons, reload, download). The page's order
(SHA-256 by Web Crypto) is Python's for several participants, served and from disk; without Web
Crypto the box says why it cannot start. No request may leave 127.0.0.1 and no console error is
let through.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from .book_helpers import ROOT, miniplaces_present

pytestmark = pytest.mark.book

BOX = "[data-colorlib=study]"
IMAGE = f"{BOX} img.colorlib-stimulus"
#: StudyApp ignores answers within 0.3 s of an image appearing; the test waits a little longer
GUARD_MS = 400
WAIT_MS = 30_000


def _record(page, allowed: tuple[str, ...]) -> None:
    """Refuse and record every request outside ``allowed``; record error responses and console
    errors (the same checks as tests/book/test_inbrowser.py)."""
    page.outside, page.failed, page.errors = [], [], []

    def route(r):
        if r.request.url.startswith(allowed):
            r.continue_()
        else:
            page.outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("response", lambda resp: page.failed.append(f"{resp.status} {resp.url}") if resp.status >= 400 else None)
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))


def _clean(page) -> None:
    assert page.outside == [], f"requests that tried to leave 127.0.0.1: {page.outside}"
    assert page.failed == [], f"error responses: {page.failed}"
    assert page.errors == [], f"console errors: {page.errors}"


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield ctx
    ctx.close()


def _settings(page) -> dict:
    return json.loads(page.get_attribute(BOX, "data-study"))


def _stimuli(settings: dict):
    """The stimulus set chapter 7 rendered, re-opened from its manifest on disk."""
    from colorlib.study import Stimuli

    folder = ROOT / "runs" / "book" / "study-stimuli" / settings["stimuli"]
    return Stimuli.load(folder / f"manifest-n{len(settings['image_ids'])}.json")


def _wait(page, state: str = "asking", answered: int | None = None) -> None:
    """Wait for the box's state, its image loaded (while asking) and its count of answers."""
    page.wait_for_function(
        """([sel, state, answered]) => {
            const r = document.querySelector(sel);
            if (!r || r.dataset.state === 'error') return !!r;
            return r.dataset.state === state && (state !== 'asking' || r.dataset.loaded === '1') &&
                   (answered === null || r.dataset.answered === String(answered));
        }""", arg=[BOX, state, answered], timeout=WAIT_MS)
    assert page.get_attribute(BOX, "data-state") == state, page.inner_text(BOX)


def _shown(page, settings: dict) -> str:
    """The file of the image shown, relative to the stimulus folder ("full/val__00001234.png")."""
    src = page.get_attribute(IMAGE, "src")
    prefix = f"_static/study/{settings['stimuli']}/"
    assert prefix in src, src
    return src.split(prefix, 1)[1]


def _start(page, participant: str) -> None:
    _wait(page, "ready")
    page.fill(f"{BOX} input[name=participant]", participant)
    page.click(f"{BOX} .colorlib-start button[type=submit]")
    _wait(page, "asking", 0)


def _download(page, folder):
    with page.expect_download() as d:
        page.click(f"{BOX} .colorlib-download")
    folder.mkdir(parents=True, exist_ok=True)
    saved = folder / d.value.suggested_filename
    d.value.save_as(saved)
    return saved


def _without_timestamps(text: str) -> list[list[str]]:
    rows = [line.split(",") for line in text.split("\n")]
    return [r[:5] + r[6:] if len(r) == 7 else r for r in rows]


def test_study_by_keyboard_resumes_after_a_reload_and_its_csv_is_what_colorlib_study_reads(
        context, server, cli, tmp_path):
    from colorlib.study import CONDITIONS, Study, load_answers

    participant = "student-07"
    page = context.new_page()
    _record(page, (server + "/", "data:", "blob:"))
    page.goto(f"{server}/book/07_user_study.html", wait_until="load")
    settings = _settings(page)
    stimuli = _stimuli(settings)
    assert settings["image_ids"] == stimuli.image_ids and tuple(settings["conditions"]) == CONDITIONS
    _start(page, participant)

    # the chapter's session: 4 photos per condition in fast mode (2 with the packages' 6 photos)
    per = 4 if miniplaces_present() else 2
    plan = Study(participant, stimuli, per, seed=0, csv_path=tmp_path / "plan").trials
    n = len(plan)
    assert n == 3 * per and settings["trials_per_condition"] == per and settings["seed"] == 0
    pressed = []
    for k in range(n):
        if k == n // 2:  # halfway: a reload loses nothing and continues at the next trial
            page.reload(wait_until="load")
            _wait(page, "asking")
            assert page.get_attribute(BOX, "data-answered") == str(k)
            assert "Welcome back, student-07" in page.inner_text(f"{BOX} .colorlib-status")
        t = plan[k]
        assert page.inner_text(f"{BOX} .colorlib-progress") == f"trial {k + 1} of {n}"
        assert _shown(page, settings) == stimuli.path(t.image_id, t.condition).relative_to(stimuli.folder).as_posix()
        key = "y" if t.condition == "ground_truth" or (t.condition == "full" and k % 2 == 0) else "n"
        page.wait_for_timeout(GUARD_MS)
        if k == 1:
            page.keyboard.press("x")  # not an answer: the next y/n answers this trial, not the one after
        page.keyboard.press(key)
        pressed.append((t, key))
        _wait(page, "done" if k == n - 1 else "asking", k + 1)
    assert page.inner_text(f"{BOX} .colorlib-progress") == f"done: {n} of {n}"
    assert not page.is_visible(IMAGE)

    yes = {c: sum(key == "y" for t, key in pressed if t.condition == c) for c in CONDITIONS}
    rates = page.locator(f"{BOX} .colorlib-rates tr").all_inner_texts()
    assert rates == [f"{settings['labels'][c]}\t{100 * yes[c] / per:.0f}%" for c in CONDITIONS]

    folder = tmp_path / "class"
    saved = _download(page, folder)
    assert saved.name == "student-07.csv"
    text = saved.read_bytes().decode("utf-8")  # UTF-8, no byte-order mark, "\n" line ends
    assert not text.startswith("\ufeff") and "\r" not in text

    # byte for byte what colorlib's own session writes for the same answers, timestamps aside
    py = Study(participant, stimuli, per, seed=0, csv_path=tmp_path / "python")
    for _, key in pressed:
        py.answer(key)
    assert _without_timestamps(text) == _without_timestamps(py.csv_path.read_text(encoding="utf-8"))
    for line in text.splitlines()[1:]:
        stamp = line.split(",")[5]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", stamp), stamp
        assert datetime.fromisoformat(stamp).tzinfo == timezone.utc

    answers = load_answers(folder, quiet=True)
    assert answers.warnings == [] and len(answers.rows) == n
    for c in CONDITIONS:
        got = [r for r in answers.rows if r.condition == c]
        assert len(got) == per and sum(r.natural for r in got) == yes[c], c
    assert len({r.image_id for r in answers.rows}) == n  # no photo twice

    status, out, err = cli("study", folder, "--json", tmp_path / "figure5.json")
    assert status == 0, err
    assert f"{n} answers from 1 participants in 1 file(s); 0 rows skipped" in out
    report = json.loads((tmp_path / "figure5.json").read_text())
    assert report["skipped"] == []
    assert report["counts"] == {participant: {c: [yes[c], per] for c in CONDITIONS}}

    # and a notebook session of the same participant takes the file as its own: same plan, done
    assert Study(participant, stimuli, per, seed=0, csv_path=folder, resume=True).done
    _clean(page)


def test_study_opened_from_disk_works_with_the_buttons(context, built_book, tmp_path):
    from colorlib.study import Study, load_answers

    page = context.new_page()
    _record(page, ("file:", "data:", "blob:"))
    page.goto((built_book / "book" / "07_user_study.html").resolve().as_uri(), wait_until="load")
    settings = _settings(page)
    stimuli = _stimuli(settings)
    _start(page, "disk.1")
    plan = Study("disk.1", stimuli, settings["trials_per_condition"], seed=0, csv_path=tmp_path / "plan").trials
    for k, button in enumerate(("yes", "no")):
        assert page.evaluate("s => document.querySelector(s).naturalWidth", IMAGE) == stimuli.size
        page.wait_for_timeout(GUARD_MS)
        page.click(f"{BOX} .colorlib-{button}")
        _wait(page, "asking", k + 1)
    page.reload(wait_until="load")
    _wait(page, "asking", 2)
    assert page.inner_text(f"{BOX} .colorlib-progress") == f"trial 3 of {len(plan)}"
    saved = _download(page, tmp_path / "disk")
    rows = load_answers(saved, quiet=True).rows
    assert [(r.trial, r.image_id, r.condition, r.answer) for r in rows] == [
        (t.number, t.image_id, t.condition, a) for t, a in zip(plan, ("yes", "no"))]
    _clean(page)


def _store_key(settings: dict, participant: str, order: str = "sha256-order") -> str:
    """The localStorage key of a participant's answers (study.js's sessionKey); ``order=None``
    gives the key of the script before the SHA-256 order."""
    parts = [order] if order else []
    parts += [settings["stimuli"], settings["seed"], settings["trials_per_condition"], participant]
    return "colorlib-study/" + "/".join(str(v) for v in parts)


def _page_plan(page, settings: dict, participant: str) -> list[tuple]:
    got = page.evaluate("([s, p]) => window.colorlibStudy.plan(s, p)", [settings, participant])
    return [(t["number"], t["image_id"], t["condition"], t["file"]) for t in got]


def _python_plan(stimuli, settings: dict, participant: str, tmp_path) -> list[tuple]:
    from colorlib.study import Study

    trials = Study(participant, stimuli, settings["trials_per_condition"], seed=settings["seed"],
                   csv_path=tmp_path / "plans").trials
    return [(t.number, t.image_id, t.condition, stimuli.path(t.image_id, t.condition)
             .relative_to(stimuli.folder).as_posix()) for t in trials]


@pytest.mark.parametrize("where", ["server", "disk"])
def test_the_pages_plan_is_pythons_with_web_crypto(context, server, built_book, tmp_path, where):
    """window.colorlibStudy.plan (Web Crypto's SHA-256) gives every participant the trials
    Study._plan gives them, for the chapter's settings and others (another seed, the most trials
    the stimuli allow), served on 127.0.0.1 and opened from disk (file://), which Chromium counts as
    secure pages; answers stored under the order before the SHA-256 rule are not taken for it."""
    page = context.new_page()
    if where == "server":
        _record(page, (server + "/", "data:", "blob:"))
        page.goto(f"{server}/book/07_user_study.html", wait_until="load")
    else:
        _record(page, ("file:", "data:", "blob:"))
        page.goto((built_book / "book" / "07_user_study.html").resolve().as_uri(), wait_until="load")
    assert page.evaluate("isSecureContext && typeof crypto.subtle.digest === 'function'")
    settings = _settings(page)
    stimuli = _stimuli(settings)
    most = dict(settings, seed=12345, trials_per_condition=len(stimuli) // 3)
    for s, participant in [(settings, "student-07"), (settings, "Zoe_2.b"), (most, "p1")]:
        assert _page_plan(page, s, participant) == _python_plan(stimuli, s, participant, tmp_path), participant
    with pytest.raises(Exception, match="distinct photos"):
        page.evaluate("s => window.colorlibStudy.plan(s, 'p1')",
                      dict(settings, trials_per_condition=len(stimuli) // 3 + 1))

    # answers kept in this browser by the old script (trial numbers of numpy's order) name other
    # images: the participant starts afresh; the old entry is left as it was
    old = _store_key(settings, "old-tab", order=None)
    page.evaluate("""key => localStorage.setItem(key, JSON.stringify({participant: 'old-tab',
        answers: {1: {answer: 'yes', timestamp: '2026-01-01T00:00:00+00:00'}}}))""", old)
    _start(page, "old-tab")
    assert "Answering as old-tab" in page.inner_text(f"{BOX} .colorlib-status")
    assert page.evaluate("key => JSON.parse(localStorage.getItem(key)).answers[1].answer", old) == "yes"
    _clean(page)


def test_without_web_crypto_the_box_says_what_to_do(context, server):
    """An http page on another machine (a class's LAN server) has no crypto.subtle: simulated by
    removing it, the box says so instead of starting."""
    page = context.new_page()
    _record(page, (server + "/", "data:", "blob:"))
    page.add_init_script("Object.defineProperty(window.crypto, 'subtle', {value: undefined})")
    page.goto(f"{server}/book/07_user_study.html", wait_until="load")
    _wait(page, "ready")
    page.fill(f"{BOX} input[name=participant]", "lan-1")
    page.click(f"{BOX} .colorlib-start button[type=submit]")
    page.wait_for_function("s => document.querySelector(s).dataset.state === 'error'", arg=BOX, timeout=WAIT_MS)
    assert "needs this page on https, on localhost or opened from disk" in page.inner_text(f"{BOX} .colorlib-status")
    _clean(page)


def _answer(page, button: str) -> None:
    """Answer the trial shown (its image loaded) with the button "yes" or "no", past the guard."""
    _wait(page, "asking")
    page.wait_for_timeout(GUARD_MS)
    page.click(f"{BOX} .colorlib-{button}")


def test_two_tabs_of_the_page_lose_no_answer_and_answer_no_trial_twice(context, server, tmp_path):
    """Tab A answers 1 trial, tab B (resuming the same participant) 4 more, then tab A 1: a
    stale tab takes in the other's answers instead of writing its own copy over them, and
    moves on to the next unanswered trial; a fresh tab then has all 6, each trial once."""
    from colorlib.study import Study, load_answers

    url = f"{server}/book/07_user_study.html"
    tabs = []
    for _ in range(3):
        tabs.append(context.new_page())
        _record(tabs[-1], (server + "/", "data:", "blob:"))
    a, b, c = tabs
    a.goto(url, wait_until="load")
    settings = _settings(a)
    stimuli = _stimuli(settings)
    _start(a, "twotab")
    plan = Study("twotab", stimuli, settings["trials_per_condition"], seed=0, csv_path=tmp_path / "plan").trials
    n = len(plan)
    assert n >= 6
    given = ["yes"]
    _answer(a, "yes")
    _wait(a, "asking", 1)

    b.goto(url, wait_until="load")  # resumes twotab at trial 2
    _wait(b, "asking", 1)
    for k in range(1, 5):
        assert b.inner_text(f"{BOX} .colorlib-progress") == f"trial {k + 1} of {n}"
        given.append("no" if k % 2 else "yes")
        _answer(b, given[-1])
        _wait(b, "asking", k + 1)

    # tab A, which showed trial 2, has taken in tab B's answers and shows trial 6
    _wait(a, "asking", 5)
    assert a.inner_text(f"{BOX} .colorlib-progress") == f"trial 6 of {n}"
    t = plan[5]
    assert _shown(a, settings) == stimuli.path(t.image_id, t.condition).relative_to(stimuli.folder).as_posix()
    given.append("no")
    _answer(a, "no")
    _wait(a, "done" if n == 6 else "asking", 6)
    _wait(b, "done" if n == 6 else "asking", 6)  # and tab B tab A's

    # a stale copy never wins: tab A's trial 7 answered behind its back (as by a tab whose
    # storage event it missed) is kept, and tab A's next answer goes to trial 8
    if n >= 8:
        key = _store_key(settings, "twotab")
        a.evaluate("""key => {
            const s = JSON.parse(localStorage.getItem(key));
            s.answers[7] = {answer: 'yes', timestamp: '2026-01-01T00:00:00+00:00'};
            localStorage.setItem(key, JSON.stringify(s));
        }""", key)
        _answer(a, "no")  # taken for trial 7, already answered: refused, trial 8 shown
        _wait(a, "asking", 7)
        assert a.inner_text(f"{BOX} .colorlib-progress") == f"trial 8 of {n}"
        _answer(a, "no")
        _wait(a, "asking", 8)
        given += ["yes", "no"]

    c.goto(url, wait_until="load")  # a fresh tab: every answer kept
    _wait(c, "done" if n == len(given) else "asking", len(given))
    assert f"your {len(given)} answers are kept" in c.inner_text(f"{BOX} .colorlib-status") or n == len(given)
    rows = load_answers(_download(c, tmp_path / "two"), quiet=True).rows
    assert [(r.trial, r.image_id, r.condition, r.answer) for r in rows] == [
        (t.number, t.image_id, t.condition, g) for t, g in zip(plan, given)]
    assert len({r.trial for r in rows}) == len(given)  # no trial twice
    for page in tabs:
        _clean(page)

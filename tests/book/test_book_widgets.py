"""Widget callbacks with a live kernel (testbook): move a slider or upload a photo, read the result.

Only the cells a widget needs are executed, in fast mode. jslinked widgets have no Python
callback; they are tested in the browser (test_book_browser.py).
"""

from __future__ import annotations

import jupytext
import pytest

from .book_helpers import BOOK, miniplaces_present

pytestmark = pytest.mark.book

testbook = pytest.importorskip("testbook").testbook


def _index(nb, text: str) -> int:
    """Index of the first code cell containing ``text``."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source)


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setenv("COLORLIB_FAST", "1")


def test_style_transfer_mix_slider_and_upload(fast):
    nb = jupytext.read(BOOK / "08_style_transfer.md")
    last = _index(nb, "fine = W.FloatSlider")
    with testbook(nb, execute=list(range(last + 1)), timeout=600) as tb:
        tb.inject("import hashlib, io\nfrom PIL import Image as _I", pop=True)
        digest = "hashlib.sha1(bytes(live_image.value)).hexdigest()"
        before = tb.value(digest)
        tb.inject("fine.value = 0.2", pop=True)
        after = tb.value(digest)
        assert after != before
        assert tb.value("_I.open(io.BytesIO(live_image.value)).size") == [256, 256]
        tb.inject("fine.value = 1.3", pop=True)  # beyond the two photos: extrapolation works too
        assert tb.value(digest) not in (before, after)

        assert tb.value("len(upload_result.value)") == 0
        tb.inject(
            """
            from datetime import datetime, timezone
            from skimage import data as skdata
            buf = io.BytesIO()
            _I.fromarray(skdata.coffee()).save(buf, "PNG")
            upload.value = ({"name": "coffee.png", "type": "image/png", "size": len(buf.getvalue()),
                             "content": memoryview(buf.getvalue()),
                             "last_modified": datetime.now(timezone.utc)},)
            """,
            pop=True,
        )
        # skimage's coffee is 600x400, shrunk to 512 on its long side before colorizing
        assert tb.value("_I.open(io.BytesIO(upload_result.value)).size") == [512, 341]
        assert tb.value("repr(upload_result.layout.display)") == "None"  # now shown
        note = tb.value("upload_note.value")
        assert "coffee.png" in note and tb.value("global_pick.value") in note


def test_user_study_app_records_answers(fast, tmp_path):
    nb = jupytext.read(BOOK / "07_user_study.md")
    answers_cell = _index(nb, "answers_dir = ")
    app_cell = _index(nb, "app = StudyApp(study)")
    with testbook(nb, execute=False, timeout=600) as tb:
        for i in range(answers_cell + 1):
            tb.execute_cell(i)
        tb.inject(f"from pathlib import Path; answers_dir = Path({str(tmp_path)!r})", pop=True)
        tb.execute_cell(app_cell)
        assert tb.value("app.state['answered']") == 0
        tb.inject("app.min_seconds = 0", pop=True)
        assert tb.value("app.click_yes()") is True
        assert tb.value("app.press('n')") is True
        state = tb.value("app.state")
        assert state["answered"] == 2 and state["progress"] == f"trial 3 of {state['n_trials']}"
        assert state["n_trials"] == (12 if miniplaces_present() else 6)
    rows = (tmp_path / "reader.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[4] == "yes" and rows[2].split(",")[4] == "no"

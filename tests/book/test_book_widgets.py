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


def test_alpha_lab_trains_caches_and_compares(fast, tmp_path):
    nb = jupytext.read(BOOK / "05_training.md")
    lab_cell = _index(nb, "lab = AlphaLab(")
    with testbook(nb, execute=False, timeout=900) as tb:
        for i in range(lab_cell + 1):
            tb.execute_cell(i)
        assert tb.value("lab.comparison()") == []
        tb.inject(  # a tiny step budget, and runs in a fresh folder
            f"""
            from dataclasses import replace
            from pathlib import Path
            lab.runs_dir = Path({str(tmp_path)!r})
            _config = lab.config
            lab.config = lambda a: replace(_config(a), steps=6, log_every=1)
            lab.every = 2
            """,
            pop=True,
        )
        tb.inject("lab.slider.value = 1 / 30\nlab.train_button.click()", pop=True)
        assert [r["label"] for r in tb.value("lab.comparison()")] == ["1/30"]
        # what was trained is what the slider said, for the budget given
        assert tb.value("lab.runs[1 / 30].model.meta['train']['alpha']") == pytest.approx(1 / 30)
        assert tb.value("len(lab.runs[1 / 30].log['step'])") == 6
        assert tb.value("lab.curve.value[:8] == b'\\x89PNG\\r\\n\\x1a\\n'") is True  # the live curve
        tb.inject("lab.slider.value = 0.0\nlab.train_button.click()", pop=True)
        rows = tb.value("lab.comparison()")
        assert [r["label"] for r in rows] == ["0", "1/30"]  # ordered by alpha
        assert tb.value("lab.runs[0.0].model.meta['train']['alpha']") == 0
        assert all(10 < r["psnr"] < 45 and 0 <= r["auc"] <= 100 for r in rows)
        table = tb.value("lab.table.value")
        assert table.count("<tr>") == 1 + 1 + 2 and f"{rows[1]['psnr']:.2f}" in table
        # trying 1/30 again is instant: the cached run, nothing trained or written
        folders = sorted(p.name for p in tmp_path.iterdir())
        assert folders == ["alpha-0", "alpha-1-30"]
        tb.inject("lab.slider.value = 1 / 30\nlab.train_button.click()", pop=True)
        assert "cached" in tb.value("lab.status.value")
        assert len(tb.value("lab.comparison()")) == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == folders

"""The naturalness user study (Fig. 5): stimuli, sessions, crash safety, analysis, the app."""

from __future__ import annotations

import codecs
import csv
import errno
import hashlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from conftest import data_dir
from PIL import Image

from colorlib.data import LOW_COLOUR_STD, ImageSet, colour_std, decode, load_images
from colorlib.io import WriteError
from colorlib.lab import rgb_to_lab
from colorlib.sample_photos import SAMPLE_PHOTOS, MissingPackageError, sample_photos
from colorlib.study import (
    COLUMNS,
    CONDITIONS,
    QUESTION,
    Answer,
    Stimuli,
    Study,
    StudyError,
    load_answers,
    make_stimuli,
    naturalness,
    plot_figure5,
    save_figure,
    simulate_participant,
)
from colorlib.study.answers import read_format
from colorlib.study.app import StudyApp
from colorlib.study.stimuli import _photo_pool

matplotlib.use("Agg")

T = 2  # trials per condition: 6 trials, so 6 distinct photos per participant


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def pool(photos) -> ImageSet:
    """Ten MiniPlaces val photos (else the wheels' photos at 128 px), and one gray photo."""
    d = data_dir()
    if d is not None and (d / "miniplaces" / "val.tar.gz").exists():
        images = load_images(d / "miniplaces" / "val.tar.gz", "val", limit=10)
        names, blobs = images.names, images.blobs
    else:
        rgbs = sample_photos(["astronaut", "coffee", "chelsea", "china", "flower", "rocket"])
        names = [f"wheel/{i}.png" for i in range(len(rgbs) - 1)] + ["wheel/rocket.png"]
        blobs = [_png(np.array(Image.fromarray(a).resize((128, 128), Image.Resampling.LANCZOS)))
                 for a in rgbs.values()]
    return ImageSet(blobs + [_png(photos["camera"][::4, ::4])], names + ["gray/camera.png"])


def test_the_pool_is_miniplaces_with_data_and_the_wheels_photos_without(pool):
    d = data_dir()
    if d is not None and (d / "miniplaces" / "val.tar.gz").exists():
        assert len(pool.names) == 11 and all(n.startswith("val/") for n in pool.names[:10])
    else:
        assert pool.names[:6] == [f"wheel/{i}.png" for i in range(5)] + ["wheel/rocket.png"]
        assert {decode(b).shape[:2] for b in pool.blobs[:6]} == {(128, 128)}
    assert pool.names[-1] == "gray/camera.png"


@pytest.fixture(scope="module")
def colour_photos(pool) -> int:
    x = torch.stack([torch.from_numpy(decode(b)).permute(2, 0, 1) for b in pool.blobs[:-1]])
    return int((colour_std(x) >= LOW_COLOUR_STD).sum())


@pytest.fixture(scope="module")
def stimuli(pool, colour_photos, tmp_path_factory) -> Stimuli:
    return make_stimuli(colour_photos, data=pool, size=64, cache_dir=tmp_path_factory.mktemp("cache"))


# -- stimuli ---------------------------------------------------------------------------------
def test_stimuli_three_versions_of_the_same_colour_photos(stimuli, colour_photos, pool, monkeypatch):
    assert len(stimuli) == colour_photos >= 3 * T and "gray/camera" not in stimuli.image_ids
    assert stimuli.conditions == ("ground_truth", "full", "baseline")
    for image_id in stimuli.image_ids:
        ims = {c: Image.open(stimuli.path(image_id, c)).convert("RGB") for c in stimuli.conditions}
        assert all(im.size == (64, 64) for im in ims.values())
        L = {c: rgb_to_lab(torch.from_numpy(np.array(im)).permute(2, 0, 1)[None] / 255.0)[0]
             for c, im in ims.items()}
        # Colorized at native size, then resized like the photo: same L*, new a*b*.
        # Measured mean |dL*| 0.09-0.15 (MiniPlaces val) and 0.12-0.19 (the wheels' photos); mean
        # |da*b*| 4.1-16.8 and 4.9-26.2: L* is kept to about twice the measured error, and every
        # photo's colours are new (a model that returned the photo or its gray would give 0).
        assert (L["full"][0] - L["ground_truth"][0]).abs().mean() < 0.4
        assert (L["full"][1:] - L["ground_truth"][1:]).abs().mean() > 3
    # Cached: the same call renders nothing and loads no model; a larger n reuses the PNGs.
    monkeypatch.setattr("colorlib.checkpoint.load_model", lambda *a: pytest.fail("recomputed"))
    again = make_stimuli(colour_photos, data=pool, size=64, cache_dir=stimuli.folder.parent)
    assert again.image_ids == stimuli.image_ids and again.folder == stimuli.folder
    assert Stimuli.load(stimuli.manifest) == stimuli
    with pytest.raises(StudyError, match=f"only {colour_photos} colour photos"):
        make_stimuli(colour_photos + 1, data=pool, size=64, cache_dir=stimuli.folder.parent)


def test_without_a_data_folder_the_wheels_photos_are_used(monkeypatch, tmp_path):
    monkeypatch.setenv("COLORLIB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr("colorlib.data.repo_root", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    ids, photos, source = _photo_pool(None)
    assert len(ids) == 7 and "skimage/astronaut" in ids and "wheels" in source
    assert all(p.ndim == 3 and p.shape[2] == 3 for p in photos)


# -- a participant's session ------------------------------------------------------------------
def test_order_is_reproducible_and_differs_across_participants(stimuli, tmp_path):
    def order(pid, seed=0):
        return Study(pid, stimuli, T, seed=seed, csv_path=tmp_path).trials

    assert order("alice") == order("alice")
    assert order("alice") != order("bob") and order("alice") != order("alice", seed=1)
    assert not list(tmp_path.iterdir())  # nothing written before the first answer


@pytest.mark.parametrize("pid", ["p1", "p2", "p3", "p4", "p5"])
def test_trials_per_condition_exact_and_no_photo_shown_twice(stimuli, tmp_path, pid):
    s = Study(pid, stimuli, T, csv_path=tmp_path)
    assert Counter(t.condition for t in s.trials) == {c: T for c in stimuli.conditions}
    assert len({t.image_id for t in s.trials}) == s.n_trials == 3 * T
    assert [t.number for t in s.trials] == list(range(1, 3 * T + 1))


def _ids_only(image_ids) -> Stimuli:
    """A stimulus set of these ids whose images were never rendered: enough to plan a session."""
    return Stimuli(Path("unrendered"), list(image_ids), {c: c for c in CONDITIONS}, 64, 0, "test")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_order_is_the_sha256_rule(tmp_path):
    """The rule chapter 7's page repeats (book/_js/study.js): the photos ranked by the SHA-256 hex
    of "seed:participant:image_id", the first per-condition block of them in the first condition
    and so on, the trials ordered by the hex of "seed:participant:image_id:condition"."""
    # worked out by hand with hashlib: the ranks of a..g for student-07, seed 0, start
    # e 280fad7d, d 6e14f47f, b 875f8d69, c 90e78ce4, a 9b94be3b, f b667521f (g f48a6193 is left out)
    got = Study("student-07", _ids_only("abcdefg"), 2, seed=0, csv_path=tmp_path).trials
    assert [(t.number, t.image_id, t.condition) for t in got] == [
        (1, "c", "full"), (2, "a", "baseline"), (3, "d", "ground_truth"),
        (4, "f", "baseline"), (5, "b", "full"), (6, "e", "ground_truth")]
    # and for other ids, seeds, sizes and non-ASCII image ids, straight from hashlib
    ids = [f"val/{k:08d}" for k in range(1, 31)] + ["café/straße", "a:b", "日本/写真"]
    for pid, seed, per in [("p1", 0, 1), ("ana", 3, 4), ("x.y_z-9", -2, 11), ("B", 12345678901, 2)]:
        photos = sorted(ids, key=lambda i: _sha(f"{seed}:{pid}:{i}"))[:3 * per]
        pairs = [(i, CONDITIONS[k // per]) for k, i in enumerate(photos)]
        expected = sorted(pairs, key=lambda ic: _sha(f"{seed}:{pid}:{ic[0]}:{ic[1]}"))
        got = Study(pid, _ids_only(ids), per, seed=seed, csv_path=tmp_path).trials
        assert [(t.image_id, t.condition) for t in got] == expected, (pid, seed, per)


def test_every_participant_sees_each_condition_equally_and_no_photo_twice(tmp_path):
    ids = [f"img{k}" for k in range(12)]
    for k in range(60):
        for per in (1, 3, 4):  # 4 x 3 = every photo of the set
            trials = Study(f"s{k}", _ids_only(ids), per, seed=k % 3, csv_path=tmp_path).trials
            assert Counter(t.condition for t in trials) == {c: per for c in CONDITIONS}
            assert len({t.image_id for t in trials}) == len(trials) == 3 * per
            assert [t.number for t in trials] == list(range(1, 3 * per + 1))
    # the order and the condition a photo is shown in change from one participant to the next
    plans = {tuple((t.image_id, t.condition) for t in Study(f"s{k}", _ids_only(ids), 4, csv_path=tmp_path).trials)
             for k in range(20)}
    assert len(plans) == 20
    assert len({dict((i, c) for i, c in plan)["img0"] for plan in plans}) == 3


#: A class file written by colorlib before the SHA-256 order (numpy's default_rng([seed, id hash])
#: and two permutations): the plan of participant old-07, seed 0, 2 trials per condition, photos
#: val/00000001-10, as that version wrote it.
OLD_ORDER_CSV = """participant,trial,image_id,condition,answer,timestamp,seed
old-07,1,val/00000007,full,yes,2026-02-10T09:00:01+00:00,0
old-07,2,val/00000009,ground_truth,yes,2026-02-10T09:00:03+00:00,0
old-07,3,val/00000001,ground_truth,no,2026-02-10T09:00:05+00:00,0
old-07,4,val/00000008,baseline,no,2026-02-10T09:00:08+00:00,0
old-07,5,val/00000006,full,no,2026-02-10T09:00:10+00:00,0
old-07,6,val/00000004,baseline,yes,2026-02-10T09:00:12+00:00,0
"""


def test_answers_in_the_old_order_still_merge(tmp_path, cli):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "old-07.csv").write_text(OLD_ORDER_CSV, encoding="utf-8")
    (folder / "new-01.csv").write_text(",".join(COLUMNS) + "\n" + "".join(
        f"new-01,{k},val/{k:08d},{c},yes,2026-03-01T10:00:00+00:00,0\n"
        for k, c in enumerate([*CONDITIONS, *CONDITIONS], 1)), encoding="utf-8")
    got = load_answers(folder, quiet=True)
    assert got.warnings == [] and len(got.rows) == 12
    # counted by hand from OLD_ORDER_CSV: ground truth yes, no; full yes, no; baseline no, yes
    assert naturalness(got).counts["old-07"] == {"ground_truth": (1, 2), "full": (1, 2), "baseline": (1, 2)}
    status, out, err = cli("study", folder, "--json", tmp_path / "r.json")
    assert status == 0 and err == ""
    assert "12 answers from 2 participants in 2 file(s); 0 rows skipped" in out
    assert json.loads((tmp_path / "r.json").read_text())["rates"]["old-07"] == {c: 50.0 for c in CONDITIONS}
    # a session cannot resume it (the plan is another now), and says why in one line
    ids = [f"val/{k:08d}" for k in range(1, 11)]
    with pytest.raises(StudyError, match=r"old-07\.csv:2 does not match .* before the SHA-256 order still merge"):
        Study("old-07", _ids_only(ids), 2, seed=0, csv_path=folder, resume=True)


def test_too_few_photos_and_bad_input_are_refused_clearly(stimuli, tmp_path):
    with pytest.raises(StudyError, match="distinct photos"):
        Study("p1", stimuli, len(stimuli) // 3 + 1, csv_path=tmp_path)
    with pytest.raises(StudyError, match="participant id"):
        Study("../x", stimuli, T, csv_path=tmp_path)
    s = Study("p1", stimuli, T, csv_path=tmp_path)
    with pytest.raises(StudyError, match="yes/no"):
        s.answer("maybe")


def test_every_answer_is_on_disk_and_fsynced_before_answer_returns(stimuli, tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    s = Study("p1", stimuli, T, seed=3, csv_path=tmp_path / "p1.csv")
    assert s.progress == "trial 1 of 6"
    given = [True, "no", "y", "N", False, "yes"]
    expected = ["yes", "no", "yes", "no", "no", "yes"]  # by hand: True, y -> yes; N, False -> no
    for k, (value, answer) in enumerate(zip(given, expected), 1):
        t = s.answer(value)
        with open(s.csv_path, newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == list(COLUMNS) and len(rows) == k + 1
        assert rows[-1][:5] == ["p1", str(t.number), t.image_id, t.condition, answer]
        assert rows[-1][6] == "3"
        assert len(synced) >= k
    assert s.done and s.current is None and s.progress == "done"
    assert [r[4] for r in rows[1:]] == ["yes", "no", "yes", "no", "no", "yes"]
    with pytest.raises(StudyError, match="answered all 6"):
        s.answer(True)


CRASH = """
import os, sys
from colorlib.study import Stimuli, Study, simulate_participant
s = Study("p07", Stimuli.load(sys.argv[1]), {T}, seed=5, csv_path=sys.argv[2])
simulate_participant(s, rng=0, max_answers=int(sys.argv[3]))
os._exit(9)  # killed: no cleanup, no buffered output
"""


def test_kill_mid_study_then_resume_counts_add_up(stimuli, tmp_path):
    r = subprocess.run([sys.executable, "-c", CRASH.format(T=T), str(stimuli.manifest), str(tmp_path), "4"],
                       check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 9, r.stderr
    with open(tmp_path / "p07.csv", "a") as f:  # and the 5th answer was cut short mid-write
        f.write("p07,5,val/0000")
    with pytest.raises(StudyError, match="already has 4 answers.*resume=True"):
        Study("p07", stimuli, T, seed=5, csv_path=tmp_path)
    with pytest.raises(StudyError, match="does not match"):
        Study("p07", stimuli, T, seed=6, csv_path=tmp_path, resume=True)
    s = Study("p07", stimuli, T, seed=5, csv_path=tmp_path, resume=True)
    assert s.n_answered == 4 and s.current == s.trials[4] and s.progress == "trial 5 of 6"
    assert any("p07.csv:6" in w for w in s.warnings)
    assert simulate_participant(s, rng=1) == 2 and s.done
    answers = load_answers(tmp_path, quiet=True)
    assert len(answers.warnings) == 1 and "p07.csv:6" in answers.warnings[0]
    assert sorted(a.trial for a in answers.rows) == list(range(1, 7))
    assert Counter(a.condition for a in answers.rows) == {"ground_truth": T, "full": T, "baseline": T}
    assert [(a.image_id, a.condition) for a in sorted(answers.rows, key=lambda a: a.trial)] == [
        (t.image_id, t.condition) for t in s.trials]
    # Resuming a finished session is harmless; nothing was ever rewritten.
    assert Study("p07", stimuli, T, seed=5, csv_path=tmp_path, resume=True).done


def test_same_participant_id_in_one_folder_is_refused(stimuli, tmp_path):
    simulate_participant(Study("ana", stimuli, T, csv_path=tmp_path / "ana.csv"), max_answers=1)
    with pytest.raises(StudyError, match="'ana' already has 1 answers"):
        Study("ana", stimuli, T, csv_path=tmp_path / "ana-2.csv")
    with pytest.raises(StudyError, match="resume with that csv_path"):
        Study("ana", stimuli, T, csv_path=tmp_path / "ana-2.csv", resume=True)
    Study("bo", stimuli, T, csv_path=tmp_path)  # another id is fine


# -- analysis ---------------------------------------------------------------------------------
def test_broken_rows_are_reported_with_line_numbers_and_skipped(tmp_path, capsys):
    path = tmp_path / "hand-edited.csv"
    path.write_text(
        ",".join(COLUMNS) + "\n"
        "p1,1,a,full,yes,t,0\n"
        "p1,2,b,full,maybe,t,0\n"      # 3: bad answer
        "p1,3,c,baseline,no,t\n"       # 4: 6 columns
        "\n"
        "p1,4,d,sepia,yes,t,0\n"       # 6: unknown condition
        "p1,1,e,baseline,no,t,0\n"     # 7: trial 1 again
        "p1,5,f,ground_truth,YES,t,0\n"
        "p1,x,g,baseline,no,t,0\n")    # 9: trial not a number
    got = load_answers(path)
    assert [(a.trial, a.answer, a.line) for a in got.rows] == [(1, "yes", 2), (5, "yes", 8)]
    assert [w.split(":")[1] for w in got.warnings] == ["3", "4", "6", "7", "9"]
    assert all(w.startswith("hand-edited.csv:") for w in got.warnings)
    assert "at hand-edited.csv:2" in got.warnings[3] and "'maybe'" in got.warnings[0]
    err = capsys.readouterr().err
    assert err.count("warning: hand-edited.csv:") == 5


def test_a_class_folder_merges(stimuli, tmp_path):
    pids = [f"s{i:02d}" for i in range(12)]
    for i, pid in enumerate(pids):
        folder = tmp_path / ("late" if i >= 10 else "")  # subfolders are read too
        simulate_participant(Study(pid, stimuli, T, csv_path=folder), rng=i)
    result = naturalness(load_answers(tmp_path))
    assert sorted(result.participants) == pids
    assert all(result.counts[p][c][1] == T for p in pids for c in result.conditions)
    # Each rate recounted from the CSV rows themselves (not load_answers): 100 * yes / shown.
    counted: dict[str, dict[str, list[int]]] = {}
    for path in sorted(tmp_path.rglob("*.csv")):
        with open(path, newline="") as f:
            for row in list(csv.reader(f))[1:]:
                pid, cond, answer = row[0], row[3], row[4]
                yes_shown = counted.setdefault(pid, {}).setdefault(cond, [0, 0])
                yes_shown[0] += answer == "yes"
                yes_shown[1] += 1
    assert sorted(counted) == pids
    for p in pids:
        assert {c: 100 * y / n for c, (y, n) in counted[p].items()} == pytest.approx(result.rates[p], abs=1e-9)
        assert {c: tuple(v) for c, v in counted[p].items()} == result.counts[p]



def test_study_command_merges_a_class_and_reports_damage(tmp_path, cli):
    answers = tmp_path / "class"
    answers.mkdir()
    rows = {"p1": "yy|yn|nn", "p2": "yn|yy|yn", "p3": "yy|yy|yy"}
    for pid, table in rows.items():
        trials = [(cond, m) for cond, marks in zip(CONDITIONS, table.split("|")) for m in marks]
        lines = [",".join(COLUMNS)] + [f"{pid},{k},img{k},{cond},{'yes' if m == 'y' else 'no'},t,0"
                                       for k, (cond, m) in enumerate(trials, 1)]
        (answers / f"{pid}.csv").write_text("\n".join(lines) + "\n")
    with open(answers / "p3.csv", "a") as f:
        f.write("p3,99,x,full,perhaps,t,0\n")  # line 8 of p3.csv: a hand-edit
    status, out, err = cli("study", answers, "--plot", tmp_path / "fig5.png", "--json", tmp_path / "r.json")
    assert status == 0, err
    assert "18 answers from 3 participants in 3 file(s); 1 rows skipped" in out
    assert "warning: p3.csv:8: answer 'perhaps'" in err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["median"] == {"ground_truth": 100.0, "full": 100.0, "baseline": 50.0}
    assert report["rates"]["p1"] == {"ground_truth": 100.0, "full": 50.0, "baseline": 0.0}
    assert report["counts"]["p2"]["baseline"] == [1, 2] and len(report["skipped"]) == 1
    assert Image.open(tmp_path / "fig5.png").size[0] > 300

    status, _, err = cli("study", tmp_path / "nowhere")
    assert status == 2 and "no study CSVs" in err  # a usage error (colorlib.cli.common.UserError)


def _answers(table: dict[str, dict[str, str]]) -> list[Answer]:
    return [Answer(p, 0, "", c, "yes" if ch == "y" else "no", "", 0)
            for p, conds in table.items() for c, s in conds.items() for ch in s]


def test_naturalness_medians_on_a_hand_made_class():
    rows = _answers({
        "p1": {"ground_truth": "yy", "full": "yn", "baseline": "nn"},
        "p2": {"ground_truth": "yn", "full": "yy", "baseline": "yn"},
        "p3": {"ground_truth": "yy", "full": "yy", "baseline": "yy"},
        "p4": {"ground_truth": "n", "full": "ynnn", "baseline": ""},
    })
    r = naturalness(rows)
    assert r.rates["p1"] == {"ground_truth": 100, "full": 50, "baseline": 0}
    assert r.rates["p4"]["full"] == 25 and np.isnan(r.rates["p4"]["baseline"])
    assert r.counts["p4"]["full"] == (1, 4)
    assert r.median == {"ground_truth": 75.0, "full": 75.0, "baseline": 50.0}
    assert r.table()[-2] == {"participant": "median", **r.median}
    assert "97.7%" in str(r) and "Full model" in str(r)
    p4 = next(line for line in str(r).splitlines() if line.split()[0] == "p4")
    assert p4.split()[1:] == ["0.0%", "25.0%", "-"] and "nan" not in str(r)  # no answers: a dash


def test_figure5_has_a_box_per_condition():
    r = naturalness(_answers({"p1": {"ground_truth": "yy", "full": "yn", "baseline": "nn"},
                              "p2": {"ground_truth": "yy", "full": "yy", "baseline": "yn"}}))
    fig = plot_figure5(r)
    ax = fig.axes[0]
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Ground truth", "Full model", "Baseline"]
    assert list(ax.get_lines()[-1].get_ydata()) == [97.7, 92.6, 69.8]  # the paper's medians
    # The data's medians, by hand: ground truth 100 and 100, full 50 and 100, baseline 0 and 50
    # -> 100, 75, 25. The box's median line is the one horizontal line as wide as the box (0.5).
    medians = [(float(np.mean(ln.get_xdata())), float(ln.get_ydata()[0])) for ln in ax.get_lines()
               if len(ln.get_xdata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]
               and np.ptp(ln.get_xdata()) == pytest.approx(0.5)]
    assert medians == [(1.0, 100.0), (2.0, 75.0), (3.0, 25.0)]
    # and a dot per participant at its own rate
    dots = [sorted(ln.get_ydata()) for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert dots == [[100.0, 100.0], [50.0, 100.0], [0.0, 50.0]]
    _, ax2 = plt.subplots()
    assert plot_figure5(r, ax=ax2) is ax2.figure
    plt.close("all")


# -- the widget app ---------------------------------------------------------------------------
def test_app_keys_clicks_progress_and_thank_you(stimuli, tmp_path):
    study = Study("kid", stimuli, T, csv_path=tmp_path)
    app = StudyApp(study, min_seconds=0)
    assert QUESTION in app.question.value
    assert app.state["progress"] == "trial 1 of 6" and not app.state["done"]
    assert app.image.value == stimuli.png(app.state["image_id"], app.state["condition"])
    assert app.press("y") and app.state["progress"] == "trial 2 of 6"
    assert not app.press("x") and app.state["answered"] == 1
    app.click_no()
    app.keys.value = "Y"  # typed into the key box
    assert app.keys.value == "" and app.state["answered"] == 3
    app.click_yes()
    assert app.image.value == stimuli.png(study.current.image_id, study.current.condition)
    # The tab is closed; a new app on the resumed study continues at trial 5.
    app = StudyApp(Study("kid", stimuli, T, csv_path=tmp_path, resume=True), min_seconds=0)
    assert app.state["progress"] == "trial 5 of 6"
    app.press("n")
    app.click_no()
    state = app.state
    assert state["done"] and state["answered"] == 6 and "Thank you, kid" in state["thanks"]
    assert app.trial_view.layout.display == "none" and app.thanks.layout.display is None
    assert not app.press("y") and not app.click_yes()  # late answers change nothing
    got = load_answers(tmp_path, quiet=True)
    assert [a.answer for a in sorted(got.rows, key=lambda a: a.trial)] == ["yes", "no", "yes", "yes", "no", "no"]
    assert not got.warnings
    assert "%" in state["thanks"] and "Ground truth" in state["thanks"]
    # In a notebook the app shows as its widget: the Jupyter widget view of app.widget's model.
    bundle = app._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == app.widget.model_id
    assert bundle["text/plain"].startswith(type(app.widget).__name__ + "(")


def test_app_ignores_a_double_click(stimuli, tmp_path):
    app = StudyApp(Study("dbl", stimuli, T, csv_path=tmp_path), min_seconds=60)
    assert not app.click_yes() and not app.press("n")
    assert app.state["answered"] == 0 and app.state["ignored"] == 2
    app.min_seconds = 0
    assert app.click_yes() and app.state["progress"] == "trial 2 of 6"


def test_a_foreign_csv_is_never_appended_to(stimuli, tmp_path):
    grades = tmp_path / "p1.csv"
    grades.write_text("name,grade\nann,A\n")
    with pytest.raises(StudyError, match="not a study CSV"):
        Study("p1", stimuli, T, csv_path=tmp_path)
    assert grades.read_text() == "name,grade\nann,A\n"


def test_a_damaged_or_missing_manifest_is_one_clear_error(tmp_path):
    (tmp_path / "manifest-n3.json").write_text('{"image_ids": [')
    with pytest.raises(StudyError, match="manifest-n3.json is damaged or not a manifest"):
        Stimuli.load(tmp_path / "manifest-n3.json")
    (tmp_path / "manifest-n3.json").write_text('{"image_ids": []}')
    with pytest.raises(StudyError, match="manifest-n3.json is damaged or not a manifest"):
        Stimuli.load(tmp_path / "manifest-n3.json")
    with pytest.raises(StudyError, match="nowhere.json"):
        Stimuli.load(tmp_path / "nowhere.json")


# -- files appear whole or not at all ---------------------------------------------------------
def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_render_that_fails_leaves_no_partial_png(pool, tmp_path, monkeypatch):
    def half_then_full(self, fp, *args, **kwargs):
        open(fp, "wb").write(b"\x89PNG half an image")
        _full_disk()

    monkeypatch.setattr(Image.Image, "save", half_then_full)
    with pytest.raises(WriteError, match=r"\.png: no space left on the device$"):
        make_stimuli(1, data=pool, size=32, cache_dir=tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing a later call would take as done


def test_a_finished_render_leaves_no_temporary_files(stimuli):
    files = [p for p in stimuli.folder.rglob("*") if p.is_file()]
    assert len(files) == 3 * len(stimuli) + 1 and stimuli.manifest in files
    assert json.loads(stimuli.manifest.read_text())["image_ids"] == stimuli.image_ids


def test_a_figure_is_saved_whole_or_not_at_all(tmp_path, monkeypatch):
    fig = plot_figure5(naturalness(_answers({"p1": {"ground_truth": "yy", "full": "yn", "baseline": "nn"}})))
    assert save_figure(fig, tmp_path / "fig5.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert save_figure(fig, tmp_path / "fig5.pdf").read_bytes()[:5] == b"%PDF-"
    before = (tmp_path / "fig5.png").read_bytes()
    monkeypatch.setattr(fig, "savefig", _full_disk)
    with pytest.raises(WriteError, match=r"fig5.png: no space left on the device \(the previous file is intact\)"):
        save_figure(fig, tmp_path / "fig5.png")
    assert (tmp_path / "fig5.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig5.pdf", "fig5.png"]
    plt.close("all")


# -- answer files re-saved by a spreadsheet ---------------------------------------------------
#: A class of three with a participant id and image ids outside ASCII (inside Windows-1252), so
#: that every encoding below changes the bytes. The same marks as the study command's test.
CLASS = {"p1": "yy|yn|nn", "zoë": "yn|yy|yn", "p3": "yy|yy|yy"}
#: (encoding, separator, line end) as spreadsheets save CSVs.
SPREADSHEET = [
    ("utf-8-sig", ",", "\r\n"),  # Excel "CSV UTF-8"
    ("utf-16-le", ",", "\n"),  # with its byte-order mark, as every file below that has one
    ("utf-16-be", ",", "\n"),
    ("utf-16-le", "\t", "\r\n"),  # Excel "Unicode text"
    ("cp1252", ",", "\r\n"),  # Excel "CSV" on Windows
    ("cp1252", ";", "\r\n"),  # the same in a European locale
    ("utf-8", ";", "\n"),  # LibreOffice in a European locale
    ("utf-8", ",", "\r\n"),
    ("utf-8", ",", "\r"),  # classic Mac OS
]


def _encode(text: str, encoding: str) -> bytes:
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    return bom + text.encode(encoding)  # utf-8-sig writes its own mark


def _write_class(folder, encoding: str = "utf-8", sep: str = ",", newline: str = "\n"):
    folder.mkdir(parents=True, exist_ok=True)
    for pid, table in CLASS.items():
        trials = [(cond, m) for cond, marks in zip(CONDITIONS, table.split("|")) for m in marks]
        rows = [[pid, k, f"café/straße-{k}", cond, "yes" if m == "y" else "no", "2026-03-02T10:00:00+00:00", 0]
                for k, (cond, m) in enumerate(trials, 1)]
        buf = io.StringIO()
        csv.writer(buf, delimiter=sep, lineterminator=newline).writerows([COLUMNS, *rows])
        (folder / f"{pid}.csv").write_bytes(_encode(buf.getvalue(), encoding))
    return folder


def _summary(answers) -> tuple:
    rows = sorted((a.participant, a.trial, a.image_id, a.condition, a.answer, a.timestamp, a.seed)
                  for a in answers.rows)
    return rows, naturalness(answers).counts


#: Counts (yes, shown) per participant and condition written by _write_class.
CLASS_COUNTS = {"p1": {"ground_truth": (2, 2), "full": (1, 2), "baseline": (0, 2)},
                "zoë": {"ground_truth": (1, 2), "full": (2, 2), "baseline": (1, 2)},
                "p3": {"ground_truth": (2, 2), "full": (2, 2), "baseline": (2, 2)}}


@pytest.fixture(scope="module")
def plain_class(tmp_path_factory):
    """The class as a session writes it (UTF-8, ',', LF), and what load_answers makes of it."""
    folder = _write_class(tmp_path_factory.mktemp("plain"))
    got = load_answers(folder, quiet=True)
    assert not got.warnings and len(got.rows) == 18 and naturalness(got).counts == CLASS_COUNTS
    assert {a.image_id for a in got.rows} == {f"café/straße-{k}" for k in range(1, 7)}
    return folder, _summary(got)


@pytest.mark.parametrize("encoding,sep,newline", SPREADSHEET, ids=lambda v: repr(v).strip("'"))
def test_answers_resaved_by_a_spreadsheet_merge_the_same(plain_class, tmp_path, capsys, encoding, sep, newline):
    plain, expected = plain_class
    folder = _write_class(tmp_path / "class", encoding, sep, newline)
    assert (folder / "zoë.csv").read_bytes() != (plain / "zoë.csv").read_bytes()
    got = load_answers(folder)
    assert got.warnings == [] and capsys.readouterr().err == ""
    assert _summary(got) == expected


@pytest.mark.parametrize("encoding,sep,newline", SPREADSHEET, ids=lambda v: repr(v).strip("'"))
def test_study_command_reads_spreadsheet_csvs(tmp_path, cli, encoding, sep, newline):
    folder = _write_class(tmp_path / "class", encoding, sep, newline)
    status, out, err = cli("study", folder, "--json", tmp_path / "r.json")
    assert status == 0 and err == ""
    assert "18 answers from 3 participants in 3 file(s); 0 rows skipped" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {p: {c: list(n) for c, n in cs.items()} for p, cs in CLASS_COUNTS.items()}
    assert report["median"] == {"ground_truth": 100.0, "full": 100.0, "baseline": 50.0}


#: Files named .csv that are not study CSVs at all.
GARBAGE = {
    "random bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "a PNG": _png(np.zeros((8, 8, 3), np.uint8)),
    "neither UTF-8 nor cp1252": bytes(range(1, 256)) * 4,  # 0x81 is not a cp1252 character
    "cp1252 noise": bytes(b for b in range(1, 256) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)),
    "broken UTF-16": codecs.BOM_UTF16_LE + b"\x00\xd8a\x00",  # a lone surrogate
    "another table": "name;grade\r\nann;A\r\n".encode("cp1252"),
    "UTF-16 without its mark": ",".join(COLUMNS).encode("utf-16-le"),
}


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_a_file_that_is_not_a_study_csv_is_one_warning(plain_class, tmp_path, cli, kind):
    folder = _write_class(tmp_path / "class")
    (folder / "late").mkdir()
    (folder / "late" / "junk.csv").write_bytes(GARBAGE[kind])
    got = load_answers(folder, quiet=True)
    assert len(got.warnings) == 1 and got.warnings[0].startswith("late/junk.csv: ")
    assert got.warnings[0].endswith("; skipped") and "\n" not in got.warnings[0]
    assert _summary(got) == plain_class[1]
    status, out, err = cli("study", folder, "--json", tmp_path / "r.json")
    assert status == 0 and "18 answers from 3 participants in 4 file(s); 1 rows skipped" in out
    assert err.splitlines() == [f"warning: {got.warnings[0]}"]
    # On its own: the warning, then one error line, exit 1 (the file was read: not a usage
    # mistake, which is 2); never a traceback.
    status, out, err = cli("study", folder / "late" / "junk.csv")
    assert status == 1 and "Traceback" not in err
    assert err.splitlines() == [f"warning: junk.csv: {got.warnings[0].split(': ', 1)[1]}",
                                f"colorlib study: error: no valid answers in {folder / 'late' / 'junk.csv'} "
                                "(1 rows skipped)"]


HEADER = "participant,trial,image_id,condition,answer,timestamp,seed"


@pytest.mark.parametrize("header, why", [
    (HEADER + ",notes", "the extra column 'notes'"),
    (HEADER.replace("seed", "seed;x").replace(",", ";"), "the extra column 'x'"),
    (HEADER.replace(",condition", ""), "no column 'condition'"),
    (HEADER.replace("condition", "cond"), "the extra column 'cond' and no column 'condition'"),
    (HEADER.replace("timestamp", "time stamp,comment"), "the extra columns 'time stamp', 'comment' and "
                                                         "no column 'timestamp'"),
    (HEADER.replace("trial,", "trial,trial,"), "the column 'trial' twice"),
    ("trial,participant,image_id,condition,answer,timestamp,seed", "the columns in another order"),
])
def test_a_header_that_differs_names_the_column(plain_class, tmp_path, cli, header, why):
    folder = _write_class(tmp_path / "class")
    rows = "p9,1,a,full,yes,t,0,hello\np9,2,b,baseline,no,t,0,\n"
    (folder / "notes.csv").write_text(header + "\n" + rows, encoding="utf-8")
    expected = (f"notes.csv: not a study CSV: its header has {why} (a study CSV's header is "
                f"{HEADER}); skipped")
    got = load_answers(folder, quiet=True)
    assert got.warnings == [expected] and _summary(got) == plain_class[1]  # the file skipped, the rest read
    status, out, err = cli("study", folder)
    assert status == 0 and err.splitlines() == [f"warning: {expected}"]
    assert "18 answers from 3 participants in 4 file(s); 1 rows skipped" in out
    status, out, err = cli("study", folder / "notes.csv")
    assert status == 1 and err.splitlines() == [
        f"warning: {expected}", f"colorlib study: error: no valid answers in {folder / 'notes.csv'} (1 rows skipped)"]


def test_a_first_line_far_from_the_header_is_shown_cut_at_60_characters(tmp_path):
    line = "name,grade," + "x" * 80
    (tmp_path / "grades.csv").write_text(line + "\nann,A\n", encoding="utf-8")
    assert load_answers(tmp_path, quiet=True).warnings == [
        f"grades.csv: not a study CSV: its first line {line[:57] + '...'!r} is not the header {HEADER} "
        "(separated by ',', ';' or tab); skipped"]


def test_a_trial_in_two_files_counts_once(tmp_path, cli):
    """One participant's answers split over two files (a file handed in twice, under two names,
    and a session continued elsewhere): every (participant, trial) counts once, the first met
    in the files' sorted order, and each repeat is a skipped row naming where it was first seen."""
    folder = tmp_path / "class"
    (folder / "resent").mkdir(parents=True)
    head = HEADER + "\n"
    (folder / "kim.csv").write_text(head + "kim,1,a,ground_truth,yes,t,0\n"
                                           "kim,2,b,full,yes,t,0\n"
                                           "kim,3,c,baseline,no,t,0\n")
    (folder / "kim (1).csv").write_text(head + "kim,4,d,full,no,t,0\n"        # new: counted
                                               "kim,2,b,full,no,t,0\n")       # 3: trial 2 again, other answer
    (folder / "resent" / "kim.csv").write_text(head + "kim,1,a,ground_truth,yes,t,0\n"  # 2: trial 1 again
                                                      "lee,1,a,baseline,no,t,0\n")      # another participant
    got = load_answers(folder, quiet=True)
    # files in sorted order: "kim (1).csv", "kim.csv", "resent/kim.csv"; so trial 2 is kim (1).csv's "no"
    # and kim.csv's trial 2 is the repeat
    assert [(a.participant, a.trial, a.answer, Path(a.file).relative_to(folder).as_posix())
            for a in got.rows] == [
        ("kim", 4, "no", "kim (1).csv"), ("kim", 2, "no", "kim (1).csv"),
        ("kim", 1, "yes", "kim.csv"), ("kim", 3, "no", "kim.csv"), ("lee", 1, "no", "resent/kim.csv")]
    assert got.warnings == [
        "kim.csv:3: trial 2 of 'kim' was already answered at kim (1).csv:3; skipped",
        "resent/kim.csv:2: trial 1 of 'kim' was already answered at kim.csv:2; skipped"]
    # by hand: kim ground truth 1 of 1 yes, full 0 of 2 (trials 2 and 4), baseline 0 of 1
    assert naturalness(got).counts["kim"] == {"ground_truth": (1, 1), "full": (0, 2), "baseline": (0, 1)}
    status, out, err = cli("study", folder, "--json", tmp_path / "r.json")
    assert status == 0 and "5 answers from 2 participants in 3 file(s); 2 rows skipped" in out
    assert err.splitlines() == [f"warning: {w}" for w in got.warnings]
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["kim"] == {
        "ground_truth": [1, 1], "full": [0, 2], "baseline": [0, 1]}


def test_a_quote_never_closed_is_one_warning(tmp_path):
    path = tmp_path / "p1.csv"
    path.write_text(",".join(COLUMNS) + '\np1,1,a,full,yes,t,0\n"p1,2,b,full,no,t,0\np1,3,c,full,no,t,0\n')
    got = load_answers(path, quiet=True)
    assert [a.trial for a in got.rows] == [1] and len(got.warnings) == 1
    assert got.warnings == ["p1.csv:3: 1 columns instead of 7 (a quoted field runs on to line 4); skipped"]


def test_a_class_folder_reads_any_case_and_leaves_out_hidden_and_lock_files(tmp_path):
    folder = _write_class(tmp_path / "class")
    (folder / "p3.csv").rename(folder / "P3.CSV")
    (folder / "._p1.csv").write_bytes(b"\x00\x05\x16\x07" + bytes(60))  # a macOS copy's resource fork
    (folder / "~$p1.csv").write_bytes(b"\x07teacher")  # an office program's lock file
    (folder / "notes.txt").write_text("p1 arrived late\n")
    got = load_answers(folder, quiet=True)
    assert [f.name for f in got.files] == ["P3.CSV", "p1.csv", "zoë.csv"]
    assert not got.warnings and naturalness(got).counts == CLASS_COUNTS


def test_a_session_resumes_a_utf8_resave_but_never_appends_to_another_format(stimuli, tmp_path):
    s = Study("ana", stimuli, T, csv_path=tmp_path)
    simulate_participant(s, rng=0, max_answers=2)
    text = s.csv_path.read_text(encoding="utf-8")
    # Excel's "CSV UTF-8": a byte-order mark and CRLF. The session resumes and appends to it.
    s.csv_path.write_bytes(codecs.BOM_UTF8 + text.replace("\n", "\r\n").encode())
    resumed = Study("ana", stimuli, T, csv_path=tmp_path, resume=True)
    assert resumed.n_answered == 2 and simulate_participant(resumed, rng=1) == 4
    got = load_answers(tmp_path, quiet=True)
    assert not got.warnings and sorted(a.trial for a in got.rows) == list(range(1, 7))
    # UTF-16 or ';': load_answers reads it, but appending UTF-8 ',' rows would mix two formats.
    for data in (_encode(text, "utf-16-le"), text.replace(",", ";").encode()):
        s.csv_path.write_bytes(data)
        assert len(load_answers(tmp_path, quiet=True).rows) == 2
        with pytest.raises(StudyError, match="ana.csv was re-saved as .*-separated; .*choose another csv_path"):
            Study("ana", stimuli, T, csv_path=tmp_path, resume=True)
        assert s.csv_path.read_bytes() == data
    s.csv_path.write_bytes(GARBAGE["random bytes"])
    with pytest.raises(StudyError, match=r"ana.csv is not a study CSV \(binary data"):
        Study("ana", stimuli, T, csv_path=tmp_path, resume=True)
    Study("bo", stimuli, T, csv_path=tmp_path)  # the damaged file does not stop another participant


# -- the photos shipped in packages; optional packages ------------------------------------------
def test_sample_photos_are_rgb_uint8_with_credit_and_licence(photos, monkeypatch):
    got = sample_photos()
    assert list(got) == list(SAMPLE_PHOTOS) and len(got) == 8
    for name, rgb in got.items():
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and min(rgb.shape[:2]) >= 256
        assert SAMPLE_PHOTOS[name].credit and SAMPLE_PHOTOS[name].licence
    assert (got["astronaut"] == photos["astronaut"]).all()
    cam = got["camera"]
    assert (cam == photos["camera"][..., None]).all()  # black and white: three equal channels
    assert list(sample_photos(colour_only=True)) == [n for n in SAMPLE_PHOTOS if n != "camera"]
    with pytest.raises(KeyError, match="no sample photo 'lena'"):
        sample_photos(["chelsea", "lena"])
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingPackageError, match=r'scikit-learn need that package: pip install "colorlib\[book\]"$'):
        sample_photos(["chelsea", "china"])
    assert list(sample_photos(["chelsea"])) == ["chelsea"]  # the other packages' photos still load


def test_without_data_or_scikit_learn_the_study_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("COLORLIB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setattr("colorlib.data.repo_root", lambda: tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(StudyError, match=r'^no data folder found, and .*pip install "colorlib\[book\]"$'):
        _photo_pool(None)


def test_importing_the_study_loads_no_widgets_or_plots():
    # torch does load: `import colorlib` gives the public API (Colorizer, colorize, ...) first
    code = ("import sys, colorlib.study\n"
            "print(sorted(m for m in ('ipywidgets', 'IPython', 'matplotlib') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
    code = "import sys\nsys.modules['ipywidgets'] = None\nimport colorlib.study.app"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        'ImportError: colorlib.study.app needs ipywidgets: pip install "colorlib[book]"')


def test_the_plot_without_matplotlib_says_what_to_install(monkeypatch):
    result = naturalness(_answers({"p1": {"ground_truth": "y", "full": "y", "baseline": "n"}}))
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'^the Figure 5 plot needs matplotlib: pip install "colorlib\[book\]"$'):
        plot_figure5(result)


@pytest.mark.parametrize("trial, seed", [("²", "0"), ("9" * 5000, "0"), ("١", "0"), ("1", "-" + "9" * 5000),
                                         ("1", "³"), ("+1", "0"), ("1", "--1")])
def test_a_number_int_would_refuse_is_a_skipped_row_not_a_traceback(tmp_path, cli, trial, seed):
    """'²' and Arabic-Indic digits pass ``str.isdigit``; int() refuses the first and a 5000-digit
    number: each such row is one warning, the others are read."""
    path = tmp_path / "p1.csv"
    path.write_text(",".join(COLUMNS) + f"\np1,1,a,full,yes,t,0\np1,{trial},b,full,no,t,{seed}\n",
                    encoding="utf-8")
    got = load_answers(path, quiet=True)
    assert [(a.trial, a.line) for a in got.rows] == [(1, 2)]
    assert len(got.warnings) == 1 and got.warnings[0].startswith("p1.csv:3: participant, trial or seed")
    status, out, err = cli("study", path)
    assert status == 0 and "Traceback" not in err and "1 answers from 1 participants" in out
    assert len(err.splitlines()) == 1 and err.startswith("warning: p1.csv:3: ")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_or_device_as_answers_is_refused_without_reading_it(tmp_path, cli):
    """Reading a FIFO (nobody writing) or /dev/zero would never end: neither is read."""
    fifo = tmp_path / "answers.csv"
    os.mkfifo(fifo)
    for given in (fifo, Path("/dev/zero")):
        if not given.exists():
            continue
        status, out, err = cli("study", given)
        assert status == 2 and out == ""
        assert err == (f"colorlib study: error: {given} is not a regular file (a device, pipe or socket); "
                       "give a CSV file or a folder\n")
    # a FIFO named *.csv inside a class folder is left out; the real CSVs are read
    (tmp_path / "p1.csv").write_text(",".join(COLUMNS) + "\np1,1,a,full,yes,t,0\n")
    assert [a.participant for a in load_answers(tmp_path, quiet=True).rows] == ["p1"]
    with pytest.raises(StudyError, match="not a regular file"):
        read_format(fifo)

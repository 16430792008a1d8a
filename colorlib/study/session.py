"""One participant's session: a reproducible order of trials, and every answer appended to the
participant's CSV and fsynced at once, so a crash loses nothing and ``resume=True`` continues
where the participant stopped."""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .answers import COLUMNS, csv_files, read_format, read_rows
from .design import StudyError
from .stimuli import Stimuli

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Trial:
    number: int  # 1-based position in the participant's order
    image_id: str
    condition: str


class Study:
    """One participant's session: ``trials_per_condition`` photos of each condition, in an
    order drawn from ``seed`` and the participant id, no photo shown twice. The order is the
    SHA-256 rule of ``_plan`` (the page of chapter 7 has the same lines): the photos ranked by
    ``sha256(f"{seed}:{participant}:{image_id}")`` (hex), the first ``trials_per_condition`` of
    them shown in the first condition, the next in the second and so on, and those trials ordered
    by ``sha256(f"{seed}:{participant}:{image_id}:{condition}")``.

    ``csv_path``: the participant's CSV, or a folder (then ``<folder>/<participant>.csv``).
    Answers already in that folder for this participant are refused unless ``resume=True``,
    which continues the same order and skips the answered trials.

    Raises:
        StudyError: a participant id other than letters, digits, '.', '_', '-'; too few photos
            for the trials asked; answers of this participant already there (without
            ``resume``) or from another plan; a ``csv_path`` that is not a study CSV, or one
            re-saved by a spreadsheet in a form the session cannot append to (not UTF-8, or
            not comma-separated).
    """

    def __init__(
        self,
        participant_id: str,
        stimuli: Stimuli,
        trials_per_condition: int,
        seed: int = 0,
        csv_path: str | os.PathLike = "study-answers",
        resume: bool = False,
    ) -> None:
        if not _ID.match(str(participant_id)):
            raise StudyError(f"participant id {participant_id!r}: use letters, digits, '.', '_' or '-'")
        self.participant, self.stimuli, self.seed = str(participant_id), stimuli, int(seed)
        csv_path = Path(csv_path)
        if csv_path.is_dir() or csv_path.suffix.lower() != ".csv":
            csv_path = csv_path / f"{self.participant}.csv"
        self.csv_path = csv_path
        if csv_path.is_file() and csv_path.stat().st_size:
            try:
                fmt, _ = read_format(csv_path)
            except StudyError as e:
                raise StudyError(f"{csv_path} is not a study CSV ({e}); it was left as it is: "
                                 "choose another csv_path") from None
            if not fmt.appendable:
                raise StudyError(f"{csv_path} was re-saved as {fmt}; a session appends UTF-8, ','-separated "
                                 "rows: save it as 'CSV UTF-8 (comma delimited)' or choose another csv_path")
        self.trials = self._plan(trials_per_condition)
        self.answers: dict[int, str] = {}
        self.warnings: list[str] = []
        for other in csv_files(csv_path.parent, recursive=False) if csv_path.parent.is_dir() else []:
            rows, warns = read_rows(other, stimuli.conditions)
            mine = [r for r in rows if r.participant == self.participant]
            if mine and not resume:
                raise StudyError(
                    f"participant {self.participant!r} already has {len(mine)} answers in {other}. "
                    "Pass resume=True to continue that session, or choose another participant id.")
            if mine and other.resolve() != csv_path.resolve():
                raise StudyError(f"the answers of {self.participant!r} are in {other}, not {csv_path}; "
                                 "resume with that csv_path")
            if other.resolve() == csv_path.resolve():
                self.warnings = warns
            for r in mine:
                t = self.trials[r.trial - 1] if 0 < r.trial <= len(self.trials) else None
                if r.seed != self.seed or t is None or (t.image_id, t.condition) != (r.image_id, r.condition):
                    raise StudyError(
                        f"{other}:{r.line} does not match this session's plan (seed {self.seed}, "
                        f"{len(self.trials)} trials, these stimuli); resume with the same settings. "
                        "(Answers from a colorlib before the SHA-256 order still merge with colorlib "
                        "study but cannot be resumed: go on under a new participant id.)")
                self.answers[r.trial] = r.answer

    def _plan(self, per_condition: int) -> list[Trial]:
        conds = self.stimuli.conditions
        need = per_condition * len(conds)
        if per_condition < 1 or need > len(self.stimuli):
            raise StudyError(
                f"{per_condition} trials per condition x {len(conds)} conditions needs {need} distinct "
                f"photos (no photo is shown twice to a participant); the stimuli have "
                f"{len(self.stimuli)}. Make more with make_stimuli(n_images={need}) or ask fewer trials.")
        # The rule, also in book/_js/study.js: the photos ranked by the SHA-256 of
        # "seed:participant:image_id", the first per_condition shown in the first condition, the
        # next per_condition in the second...; the trials ordered by that of "...:image_id:condition".
        def key(*parts: object) -> str:
            return hashlib.sha256(":".join(map(str, (self.seed, self.participant, *parts))).encode()).hexdigest()

        photos = sorted(self.stimuli.image_ids, key=key)[:need]
        pairs = sorted(((i, conds[k // per_condition]) for k, i in enumerate(photos)), key=lambda p: key(*p))
        return [Trial(n, i, c) for n, (i, c) in enumerate(pairs, 1)]

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    @property
    def n_answered(self) -> int:
        return len(self.answers)

    @property
    def done(self) -> bool:
        return self.n_answered == self.n_trials

    @property
    def current(self) -> Trial | None:
        """The next unanswered trial (None when the participant is done)."""
        return next((t for t in self.trials if t.number not in self.answers), None)

    @property
    def progress(self) -> str:
        return "done" if self.done else f"trial {self.n_answered + 1} of {self.n_trials}"

    def image_png(self) -> bytes:
        """PNG bytes of the current trial's image."""
        t = self.current
        if t is None:
            raise StudyError("the study is finished: there is no image to show")
        return self.stimuli.png(t.image_id, t.condition)

    def answer(self, value: bool | str) -> Trial:
        """Record the answer to the current trial (True/'yes'/'y' or False/'no'/'n'): the row
        is appended to the CSV (UTF-8) and fsynced before this returns. Returns the trial
        answered. Appending, not an atomic rewrite, is deliberate: a crash loses at most the
        row being written, and every earlier answer stays as it was on disk."""
        norm = {"y": "yes", "yes": "yes", "n": "no", "no": "no"}
        ans = ("yes" if value else "no") if isinstance(value, bool) else norm.get(str(value).strip().lower())
        if ans is None:
            raise StudyError(f"answer {value!r}: expected yes/no (or y/n, True/False)")
        t = self.current
        if t is None:
            raise StudyError(f"participant {self.participant!r} has answered all {self.n_trials} trials")
        row = [self.participant, t.number, t.image_id, t.condition, ans,
               datetime.now(timezone.utc).isoformat(timespec="seconds"), self.seed]
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        cut = False
        if not new:  # a row cut short by a crash stays on its own (broken) line
            with open(self.csv_path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                cut = f.read(1) not in (b"\n", b"\r")
        with open(self.csv_path, "a", newline="", encoding="utf-8") as f:  # append only: nothing is overwritten
            f.write("\n" if cut else "")
            w = csv.writer(f, lineterminator="\n")
            if new:
                w.writerow(COLUMNS)
            w.writerow(row)
            f.flush()
            os.fsync(f.fileno())
        if new and hasattr(os, "O_DIRECTORY"):  # make the new file's directory entry durable too
            fd = os.open(self.csv_path.parent, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)
        self.answers[t.number] = ans
        return t

    def rates(self) -> dict[str, float]:
        """This participant's % of 'yes' per condition, in [0, 100], over the trials answered so
        far (nan for a condition not shown yet)."""
        out = {}
        for c in self.stimuli.conditions:
            got = [self.answers[t.number] for t in self.trials if t.condition == c and t.number in self.answers]
            out[c] = 100.0 * got.count("yes") / len(got) if got else float("nan")
        return out


def simulate_participant(
    study: Study,
    p_yes: Mapping[str, float] | None = None,
    rng: np.random.Generator | int | None = None,
    max_answers: int | None = None,
) -> int:
    """Answer ``study`` through :meth:`Study.answer` (the widget's own path), saying yes with
    probability ``p_yes[condition]`` (in [0, 1]); stop after ``max_answers``. Returns answers given."""
    p_yes = dict(p_yes or {"ground_truth": 0.97, "full": 0.9, "baseline": 0.7})
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = 0
    while not study.done and (max_answers is None or n < max_answers):
        study.answer(bool(rng.random() < p_yes[study.current.condition]))
        n += 1
    return n

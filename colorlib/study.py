"""The naturalness user study of the paper's Figure 5 ("Does this image look natural to you?";
10 users, 224x224; median 97.7% ground truth, 92.6% full model, 69.8% baseline), for a class.

* :func:`make_stimuli`: each photo as it is, colorized by the full model and by the baseline.
* :class:`Study`: one participant's session; every answer is appended to a CSV and fsynced at
  once, so a crash loses nothing and ``resume=True`` continues where the participant stopped.
* :func:`load_answers`, :func:`naturalness`, :func:`plot_figure5`: one CSV or a class folder.

The widgets (:mod:`colorlib.study_app`) only show this module's state.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

QUESTION = "Does this image look natural to you?"
CONDITIONS = ("ground_truth", "full", "baseline")
#: Median percentage of "natural" answers per condition in the paper's Figure 5.
PAPER_MEDIANS = {"ground_truth": 97.7, "full": 92.6, "baseline": 69.8}
LABELS = {"ground_truth": "Ground truth", "full": "Full model", "baseline": "Baseline"}
COLUMNS = ("participant", "trial", "image_id", "condition", "answer", "timestamp", "seed")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class StudyError(ValueError):
    """A study that cannot start or continue as asked, with a message that says why."""


def _sha(data: bytes | str, n: int = 10) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:n]


def default_cache_dir() -> Path:
    """``$COLORLIB_CACHE/study``, else ``~/.cache/colorlib/study``."""
    root = os.environ.get("COLORLIB_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "colorlib") / "study"


# -- stimuli ---------------------------------------------------------------------------------
@dataclass
class Stimuli:
    """A rendered stimulus set: ``<folder>/<condition>/<image>.png``, all ``size`` x ``size``."""

    folder: Path
    image_ids: list[str]
    models: dict[str, str]  # condition -> model name ("photo" for ground_truth)
    size: int
    seed: int
    source: str  # where the photos came from (MiniPlaces val, or photos shipped in wheels)

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(self.models)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def manifest(self) -> Path:
        return self.folder / f"manifest-n{len(self)}.json"

    def path(self, image_id: str, condition: str) -> Path:
        return self.folder / condition / (image_id.replace("/", "__") + ".png")

    def png(self, image_id: str, condition: str) -> bytes:
        """The PNG bytes shown for ``image_id`` in ``condition``."""
        return self.path(image_id, condition).read_bytes()

    @classmethod
    def load(cls, manifest: str | os.PathLike) -> Stimuli:
        """Re-open a set from its ``manifest-n*.json`` (no model needed: copy the folder to a
        classroom machine and run the study there)."""
        m = json.loads(Path(manifest).read_text())
        return cls(Path(manifest).parent, m["image_ids"], m["models"], m["size"], m["seed"], m["source"])


def _photo_pool(data) -> tuple[list[str], list[bytes] | list[np.ndarray], str]:
    """(ids, encoded bytes or RGB arrays, source) of the candidate photos."""
    from .data import DataError, ImageSet, load_images, load_miniplaces, miniplaces_dir

    if isinstance(data, ImageSet):
        return [n.rsplit(".", 1)[0] for n in data.names], data.blobs, "given ImageSet"
    try:
        images = load_images(data, "val") if data is not None else load_miniplaces(None, "val")
        where = data if data is not None else miniplaces_dir()
        return [n.rsplit(".", 1)[0] for n in images.names], images.blobs, f"MiniPlaces val ({where})"
    except DataError:
        if data is not None:
            raise
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_image

    photos = {f"skimage/{k}": getattr(skimage.data, k)() for k in ("astronaut", "coffee", "chelsea", "rocket")}
    photos |= {f"sklearn/{k}": load_sample_image(f"{k}.jpg") for k in ("china", "flower")}
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos["matplotlib/grace_hopper"] = np.array(Image.open(f).convert("RGB"))
    return list(photos), list(photos.values()), "photos shipped in wheels (no data folder found)"


def _save_png(im: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    im.save(tmp, format="PNG")
    os.replace(tmp, path)  # a killed render never leaves half a PNG behind


def make_stimuli(
    n_images: int,
    models: tuple[str, str] | Mapping[str, str] = ("miniplaces-full", "miniplaces-baseline"),
    data=None,
    seed: int = 0,
    size: int = 224,
    cache_dir: str | os.PathLike | None = None,
) -> Stimuli:
    """Render ``ground_truth``, ``full`` and ``baseline`` versions of ``n_images`` photos.

    ``models``: (full, baseline) model names or files, or a {condition: model} dict.
    ``data``: a data root, a tar, or an :class:`~colorlib.data.ImageSet`; None reads
    MiniPlaces val from the data root, or falls back to photos shipped in installed wheels
    (``source`` says which). Photos are drawn in a ``seed``-ed order, gray ones skipped,
    centre-cropped square, colorized at their own size and only then resized (Lanczos) to
    ``size`` x ``size`` as in the paper's 224x224 study. PNGs are cached in a folder keyed by
    the photo pool, the models (name and a hash of their weights), ``seed`` and ``size``;
    a second call renders nothing.
    """
    import torch

    from .checkpoint import load_model, model_name, resolve_model_path
    from .data import LOW_COLOUR_STD, colour_std, decode
    from .infer import colorize

    models = dict(models) if isinstance(models, Mapping) else dict(zip(("full", "baseline"), models))
    ids, pool, source = _photo_pool(data)
    weights = {c: _sha(resolve_model_path(m).read_bytes()) for c, m in models.items()}
    key = _sha(json.dumps([ids, sorted(weights.items())]))
    folder = Path(cache_dir or default_cache_dir()) / f"seed{seed}-{size}px-{key}"
    manifest = folder / f"manifest-n{n_images}.json"
    if manifest.exists():
        return Stimuli.load(manifest)
    names = {"ground_truth": "photo"} | {c: model_name(m) for c, m in models.items()}
    stim = Stimuli(folder, [], names, size, seed, source)
    loaded: dict = {}
    for i in np.random.default_rng(seed).permutation(len(ids)):
        item = pool[i]
        rgb = decode(item) if isinstance(item, bytes) else np.asarray(item)[..., :3]
        if rgb is None or colour_std(torch.from_numpy(rgb).permute(2, 0, 1)[None]).item() < LOW_COLOUR_STD:
            continue  # unreadable or gray: the paper's study shows colour photos only
        side = min(rgb.shape[:2])  # centre square: the study shows square images
        top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
        rgb = np.ascontiguousarray(rgb[top : top + side, left : left + side])
        for cond in stim.conditions:
            path = stim.path(ids[i], cond)
            if path.exists():
                continue
            if cond == "ground_truth":
                im = Image.fromarray(rgb)
            else:
                if cond not in loaded:
                    loaded[cond] = load_model(models[cond])
                im = colorize(loaded[cond], rgb)
            _save_png(im.resize((size, size), Image.Resampling.LANCZOS), path)
        stim.image_ids.append(ids[i])
        if len(stim.image_ids) == n_images:
            break
    else:
        raise StudyError(f"asked for {n_images} photos, but {source} has only "
                         f"{len(stim.image_ids)} colour photos")
    meta = {k: getattr(stim, k) for k in ("image_ids", "models", "size", "seed", "source")}
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(json.dumps(meta | {"weights": weights}, indent=1))
    os.replace(tmp, manifest)
    return stim


# -- one participant's session ---------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    number: int  # 1-based position in the participant's order
    image_id: str
    condition: str


@dataclass(frozen=True)
class Answer:
    """One row of a study CSV; ``file`` and ``line`` say where it was read."""

    participant: str
    trial: int
    image_id: str
    condition: str
    answer: str  # "yes" or "no"
    timestamp: str
    seed: int
    file: str = ""
    line: int = 0

    @property
    def natural(self) -> bool:
        return self.answer == "yes"


def _read_csv(path: Path, conditions: Iterable[str], seen: dict | None = None) -> tuple[list[Answer], list[str]]:
    """Valid rows of one CSV and a warning ("file:line: why") for each row skipped.
    ``seen``: (participant, trial) -> "file:line" of rows read before (from other files too)."""
    rows: list[Answer] = []
    warns: list[str] = []
    seen = {} if seen is None else seen
    with open(path, newline="") as f:
        reader = csv.reader(f)
        for rec in reader:
            where = f"{path.name}:{reader.line_num}"
            if not rec or rec == list(COLUMNS):
                continue
            if len(rec) != len(COLUMNS):
                warns.append(f"{where}: {len(rec)} columns instead of {len(COLUMNS)}; skipped")
                continue
            d = dict(zip(COLUMNS, (v.strip() for v in rec)))
            ans = d["answer"].lower()
            if ans not in ("yes", "no"):
                warns.append(f"{where}: answer {d['answer']!r} is neither 'yes' nor 'no'; skipped")
            elif d["condition"] not in conditions:
                warns.append(f"{where}: unknown condition {d['condition']!r}; skipped")
            elif not (d["trial"].isdigit() and d["seed"].lstrip("-").isdigit() and d["participant"]):
                warns.append(f"{where}: participant, trial or seed is not valid ({rec!r}); skipped")
            elif (d["participant"], int(d["trial"])) in seen:
                warns.append(f"{where}: trial {d['trial']} of {d['participant']!r} was already answered "
                             f"at {seen[d['participant'], int(d['trial'])]}; skipped")
            else:
                seen[d["participant"], int(d["trial"])] = where
                rows.append(Answer(d["participant"], int(d["trial"]), d["image_id"], d["condition"], ans,
                                   d["timestamp"], int(d["seed"]), str(path), reader.line_num))
    return rows, warns


class Study:
    """One participant's session: ``trials_per_condition`` photos of each condition, in an
    order drawn from ``seed`` and the participant id, no photo shown twice.

    ``csv_path``: the participant's CSV, or a folder (then ``<folder>/<participant>.csv``).
    Answers already in that folder for this participant are refused unless ``resume=True``,
    which continues the same order and skips the answered trials.
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
            with open(csv_path, newline="") as f:
                if next(csv.reader(f), None) != list(COLUMNS):
                    raise StudyError(f"{csv_path} is not a study CSV (its header is not {','.join(COLUMNS)}); "
                                     "it was left as it is: choose another csv_path")
        self.trials = self._plan(trials_per_condition)
        self.answers: dict[int, str] = {}
        self.warnings: list[str] = []
        for other in sorted(csv_path.parent.glob("*.csv")) if csv_path.parent.is_dir() else []:
            rows, warns = _read_csv(other, stimuli.conditions)
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
                        f"{len(self.trials)} trials, these stimuli); resume with the same settings")
                self.answers[r.trial] = r.answer

    def _plan(self, per_condition: int) -> list[Trial]:
        conds = self.stimuli.conditions
        need = per_condition * len(conds)
        if per_condition < 1 or need > len(self.stimuli):
            raise StudyError(
                f"{per_condition} trials per condition x {len(conds)} conditions needs {need} distinct "
                f"photos (no photo is shown twice to a participant); the stimuli have "
                f"{len(self.stimuli)}. Make more with make_stimuli(n_images={need}) or ask fewer trials.")
        pid = int(hashlib.sha256(self.participant.encode()).hexdigest()[:16], 16)
        rng = np.random.default_rng([self.seed, pid])
        photos = rng.permutation(len(self.stimuli))[:need]
        pairs = [(self.stimuli.image_ids[i], conds[k // per_condition]) for k, i in enumerate(photos)]
        return [Trial(n + 1, *pairs[i]) for n, i in enumerate(rng.permutation(need))]

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
        is appended to the CSV and fsynced before this returns. Returns the trial answered."""
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
                cut = f.read(1) != b"\n"
        with open(self.csv_path, "a", newline="") as f:  # append only: nothing is overwritten
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
        """This participant's % of 'yes' per condition, over the trials answered so far."""
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
    probability ``p_yes[condition]``; stop after ``max_answers``. Returns answers given."""
    p_yes = dict(p_yes or {"ground_truth": 0.97, "full": 0.9, "baseline": 0.7})
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = 0
    while not study.done and (max_answers is None or n < max_answers):
        study.answer(bool(rng.random() < p_yes[study.current.condition]))
        n += 1
    return n


# -- analysis --------------------------------------------------------------------------------
@dataclass
class AnswerSet:
    rows: list[Answer]
    warnings: list[str]  # "file:line: why" for every row skipped
    files: list[Path]


def load_answers(
    path: str | os.PathLike, conditions: Iterable[str] = CONDITIONS, quiet: bool = False
) -> AnswerSet:
    """Read one study CSV, or every ``*.csv`` under a folder (a class merged).

    Broken rows (wrong column count, bad answer, unknown condition, a trial answered twice)
    are skipped; each is reported as ``file:line: why`` in ``warnings`` and printed to
    stderr unless ``quiet``.
    """
    p = Path(path)
    files = sorted(p.rglob("*.csv")) if p.is_dir() else [p]
    if not files or not files[0].exists():
        raise StudyError(f"no study CSVs at {p}")
    rows: list[Answer] = []
    warns: list[str] = []
    seen: dict = {}  # shared, so one participant's trial found in two files is caught too
    for f in files:
        got, w = _read_csv(f, tuple(conditions), seen)
        rows += got
        warns += w
    if not quiet:
        for w in warns:
            print(f"warning: {w}", file=sys.stderr)
    return AnswerSet(rows, warns, files)


@dataclass
class Naturalness:
    """Percent of "natural" answers per participant and condition, and medians (Fig. 5)."""

    conditions: tuple[str, ...]
    rates: dict[str, dict[str, float]]  # participant -> condition -> % yes (nan: no trials)
    counts: dict[str, dict[str, tuple[int, int]]]  # participant -> condition -> (yes, shown)
    median: dict[str, float]  # condition -> median over participants (nan: no answers)

    @property
    def participants(self) -> list[str]:
        return list(self.rates)

    def table(self) -> list[dict]:
        """One dict per participant, then one for the medians and one for the paper."""
        rows = [{"participant": p, **r} for p, r in self.rates.items()]
        return rows + [{"participant": "median", **self.median},
                       {"participant": "paper (Fig. 5)", **{c: PAPER_MEDIANS.get(c) for c in self.conditions}}]

    def __str__(self) -> str:
        cells = [[r["participant"]] + [f"{r[c]:.1f}%" if r[c] is not None else "-" for c in self.conditions]
                 for r in self.table()]
        return "\n".join("".join(f"{v:>16}" for v in row)
                         for row in [["participant", *(LABELS.get(c, c) for c in self.conditions)], *cells])


def naturalness(answers: AnswerSet | Iterable[Answer], conditions: Iterable[str] = CONDITIONS) -> Naturalness:
    """Per-participant naturalness (% yes) for each condition, and the median per condition."""
    rows = answers.rows if isinstance(answers, AnswerSet) else list(answers)
    conditions = tuple(conditions)
    counts: dict[str, dict[str, list[int]]] = {}
    for r in rows:
        if r.condition in conditions:
            c = counts.setdefault(r.participant, {k: [0, 0] for k in conditions})[r.condition]
            c[0] += r.natural
            c[1] += 1
    rates = {p: {c: 100.0 * y / n if n else float("nan") for c, (y, n) in cs.items()}
             for p, cs in counts.items()}
    median = {}
    for c in conditions:
        vals = [r[c] for r in rates.values() if not np.isnan(r[c])]
        median[c] = float(np.median(vals)) if vals else float("nan")
    return Naturalness(conditions, rates, {p: {c: tuple(v) for c, v in cs.items()} for p, cs in counts.items()},
                       median)


def plot_figure5(result: Naturalness, ax=None, paper: Mapping[str, float] | None = PAPER_MEDIANS):
    """The paper's Figure 5: a box per condition of the participants' naturalness, each
    participant a dot, the paper's medians as diamonds. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    conds = result.conditions
    data = [[r[c] for r in result.rates.values() if not np.isnan(r[c])] for c in conds]
    pos = np.arange(1, len(conds) + 1)
    ax.boxplot(data, positions=pos, widths=0.5, patch_artist=True, showfliers=False,  # dots show all
               boxprops={"facecolor": "#cfe2f3"}, medianprops={"color": "k"})
    jitter = np.random.default_rng(0)
    for x, d in zip(pos, data):
        ax.plot(x + jitter.uniform(-0.12, 0.12, len(d)), d, "o", ms=3, color="0.3", alpha=0.6)
    if paper:
        ax.plot(pos, [paper.get(c, np.nan) for c in conds], "D", color="tab:red",
                label="paper median (Fig. 5)")
        ax.legend(loc="lower left", fontsize="small")
    ax.set_xticks(pos, [LABELS.get(c, c) for c in conds])
    ax.set_ylabel("naturalness (% of 'yes')")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{QUESTION}  ({len(result.rates)} participants)", fontsize="small")
    return ax.figure

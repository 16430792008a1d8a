"""The analysis of Figure 5: each participant's percentage of "natural" answers per condition,
the medians over participants, and the box plot beside the paper's medians."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import atomic_write
from .answers import Answer, AnswerSet
from .design import CONDITIONS, INSTALL_BOOK, LABELS, PAPER_MEDIANS, QUESTION


@dataclass
class Naturalness:
    """Percent of "natural" answers per participant and condition, and medians (Fig. 5)."""

    conditions: tuple[str, ...]
    rates: dict[str, dict[str, float]]  # participant -> condition -> % yes in [0, 100] (nan: no trials)
    counts: dict[str, dict[str, tuple[int, int]]]  # participant -> condition -> (yes, shown)
    median: dict[str, float]  # condition -> median over participants, % (nan: no answers)

    @property
    def participants(self) -> list[str]:
        return list(self.rates)

    def table(self) -> list[dict]:
        """One dict per participant, then one for the medians and one for the paper."""
        rows = [{"participant": p, **r} for p, r in self.rates.items()]
        return rows + [{"participant": "median", **self.median},
                       {"participant": "paper (Fig. 5)", **{c: PAPER_MEDIANS.get(c) for c in self.conditions}}]

    def __str__(self) -> str:
        def cell(v: float | None) -> str:  # None: the paper has no figure; NaN: no answers
            return "-" if v is None or v != v else f"{v:.1f}%"

        cells = [[r["participant"]] + [cell(r[c]) for c in self.conditions] for r in self.table()]
        return "\n".join("".join(f"{v:>16}" for v in row)
                         for row in [["participant", *(LABELS.get(c, c) for c in self.conditions)], *cells])


def naturalness(answers: AnswerSet | Iterable[Answer], conditions: Iterable[str] = CONDITIONS) -> Naturalness:
    """Per-participant naturalness (% yes, in [0, 100]) for each condition, and the median per
    condition over the participants who saw it (section 4.3, Figure 5)."""
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


def _pyplot():
    # matplotlib is optional (the book extra) and slow to import; only plotting needs it.
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(f"the Figure 5 plot needs matplotlib: {INSTALL_BOOK}") from e
    return plt


def plot_figure5(result: Naturalness, ax=None, paper: Mapping[str, float] | None = PAPER_MEDIANS):
    """The paper's Figure 5: a box per condition of the participants' naturalness (%), each
    participant a dot, the paper's medians as diamonds. Returns the matplotlib figure.
    Raises ImportError (one line naming the extra to install) without matplotlib."""
    plt = _pyplot()
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


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a matplotlib figure (e.g. from :func:`plot_figure5`) atomically: the file appears
    whole or not at all. The format comes from the suffix of ``path`` (PNG when it has none).
    Raises :class:`colorlib.io.WriteError` (one line) when it cannot be written."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    # The temporary file's name ends in .tmp, so the format is passed explicitly.
    return atomic_write(path, lambda p: fig.savefig(p, format=fmt, dpi=dpi, bbox_inches="tight"))

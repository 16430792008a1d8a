"""``colorlib study``: merge a class's naturalness user-study answers (the paper's Figure 5).

    colorlib study class-answers/ --plot figure5.png --json figure5.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..study import StudyError, load_answers, naturalness, plot_figure5, save_figure
from .common import CommandFailed, UserError, check_outputs, write_strict_json


def _rounded(x: float) -> float | None:
    return None if x != x else round(x, 2)  # NaN (no trials of a condition) -> null


def _check_plot_format(path: str | None) -> None:
    if not path:
        return
    try:  # matplotlib is heavy and optional (only --plot needs it): imported here, when asked for
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise UserError("--plot needs matplotlib (pip install matplotlib)") from None
    formats = FigureCanvasBase.get_supported_filetypes()
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in formats:
        raise UserError(f"cannot tell the image format of --plot {path}: give a name ending in "
                        f".png, .pdf or .svg (or any of {', '.join(sorted(formats))})")


def cmd_study(a: argparse.Namespace) -> None:
    """Print each participant's rate of 'natural' answers per condition and the medians; save the
    Figure 5 plot (``--plot``) and the figures as strict JSON (``--json``)."""
    check_outputs(a.plot, a.json)
    _check_plot_format(a.plot)
    try:
        answers = load_answers(a.answers)  # prints "warning: file:line: why" for each row skipped
    except StudyError as e:
        raise UserError(str(e)) from None
    if not answers.rows:  # the files were read: not a usage mistake (exit 1, not 2)
        raise CommandFailed(f"no valid answers in {a.answers} ({len(answers.warnings)} rows skipped)")
    result = naturalness(answers)
    print(f"{len(answers.rows)} answers from {len(result.participants)} participants in "
          f"{len(answers.files)} file(s); {len(answers.warnings)} rows skipped\n")
    print(result)
    if a.plot:
        save_figure(plot_figure5(result), a.plot)
        print(f"wrote {a.plot}")
    if a.json:
        report = dict(files=[str(f) for f in answers.files], skipped=answers.warnings,
                      median={c: _rounded(v) for c, v in result.median.items()},
                      rates={p: {c: _rounded(v) for c, v in r.items()} for p, r in result.rates.items()},
                      counts={p: {c: list(n) for c, n in cs.items()} for p, cs in result.counts.items()})
        write_strict_json(a.json, report)
        print(f"wrote {a.json}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib study`` and its options."""
    s = sub.add_parser("study", help="analyse naturalness user-study answers (Figure 5), one CSV or a class",
                       description="Merge the answer CSVs of the naturalness user study (written by "
                                   "colorlib.study / the book's chapter 7; every *.csv under a folder, "
                                   "subfolders too) and print each participant's percentage of 'natural' "
                                   "answers per condition, the medians and the paper's (Figure 5). "
                                   "Damaged rows are skipped and reported as file:line.")
    s.add_argument("answers", metavar="CSV_OR_FOLDER")
    s.add_argument("--plot", metavar="PNG", help="save the Figure 5 box plot here")
    s.add_argument("--json", metavar="FILE", help="write rates, counts, medians and skipped rows here")
    s.set_defaults(func=cmd_study)

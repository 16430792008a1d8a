"""The naturalness user study of the paper's Figure 5 (section 4.3: "Does this image look natural
to you?"; 10 users, 224x224; median 97.7% ground truth, 92.6% full model, 69.8% baseline), for a
class.

* :mod:`~colorlib.study.stimuli`: :func:`make_stimuli` renders each photo as it is, colorized by
  the full model and by the baseline; :class:`Stimuli` re-opens a rendered set.
* :mod:`~colorlib.study.session`: :class:`Study` is one participant's session; every answer is
  appended to a CSV and fsynced at once, so a crash loses nothing and ``resume=True`` continues.
* :mod:`~colorlib.study.answers`: the CSV format, and :func:`load_answers` for one CSV or a
  class folder, also as re-saved by a spreadsheet (other encodings, ``;``, CRLF).
* :mod:`~colorlib.study.analysis`: :func:`naturalness` and :func:`plot_figure5`.
* :mod:`colorlib.study.app`: the ipywidgets app (``from colorlib.study.app import StudyApp``);
  it only shows a :class:`Study`'s state. Importing :mod:`colorlib.study` loads neither
  ipywidgets nor matplotlib, nor torch (rendering stimuli does).
"""

from .analysis import Naturalness, naturalness, plot_figure5, save_figure
from .answers import COLUMNS, Answer, AnswerSet, CsvFormat, load_answers
from .design import CONDITIONS, LABELS, PAPER_MEDIANS, QUESTION, StudyError
from .session import Study, Trial, simulate_participant
from .stimuli import Stimuli, default_cache_dir, make_stimuli

__all__ = [
    "COLUMNS", "CONDITIONS", "LABELS", "PAPER_MEDIANS", "QUESTION",
    "Answer", "AnswerSet", "CsvFormat", "Naturalness", "Stimuli", "Study", "StudyError", "Trial",
    "default_cache_dir", "load_answers", "make_stimuli", "naturalness", "plot_figure5", "save_figure",
    "simulate_participant",
]

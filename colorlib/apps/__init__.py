"""Three apps for a class with a server, opened by Voila (``pip install "colorlib[apps]"``): each
is a notebook whose code Voila runs and hides, so a browser shows only its controls.

* ``study`` (:mod:`~colorlib.apps.study`): the naturalness study of the paper's Figure 5
  (section 4.3) for one participant per browser tab, writing the CSVs ``colorlib study`` merges;
* ``style`` (:mod:`~colorlib.apps.style`): style transfer through the global features (section
  4.5, chapter 8 of the book): two photos from a gallery and a mixing weight ``t``;
* ``alpha`` (:mod:`~colorlib.apps.alpha`): chapter 5's "tweak alpha by hand": choose the weight
  of the classification loss (Eq. 6), train a small model on the CPU, compare the runs.

Start one with ``colorlib apps study|style|alpha`` (:mod:`colorlib.cli.apps`), or
give :func:`notebook`'s path to ``voila`` yourself. ``import colorlib`` does not load this package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: app name -> its notebook, shipped as package data beside this module
APPS = {"study": "study.ipynb", "style": "style_transfer.ipynb", "alpha": "alpha.ipynb"}
#: How to get Voila and what the apps import.
INSTALL_APPS = 'pip install "colorlib[apps]"'

#: The settings ``colorlib apps study`` hands the study app's kernels (environment variables:
#: Voila starts one kernel per browser tab, and each inherits the server's environment).
STUDY_ANSWERS = "COLORLIB_STUDY_ANSWERS"  # folder of the answer CSVs, one per participant
STUDY_STIMULI = "COLORLIB_STUDY_STIMULI"  # a stimuli manifest (colorlib.study.make_stimuli)
STUDY_TRIALS = "COLORLIB_STUDY_TRIALS"  # trials per condition
STUDY_SEED = "COLORLIB_STUDY_SEED"  # the seed of every participant's order
#: ... and the alpha app's (``colorlib apps alpha``).
ALPHA_RUNS = "COLORLIB_ALPHA_RUNS"  # folder of the trained runs, shared by every tab
ALPHA_STEPS = "COLORLIB_ALPHA_STEPS"  # training steps per run


def alpha_runs_dir() -> Path:
    """Where the alpha app keeps its runs unless told: :func:`colorlib.data.cache_dir` ``alpha-lab``."""
    from ..data import cache_dir  # loads torch: only when the app needs the folder

    return cache_dir("alpha-lab")


def notebook(name: str) -> Path:
    """The notebook of app ``name`` (a key of :data:`APPS`). Raises ``KeyError`` for another name."""
    return Path(str(files(__package__) / APPS[name]))

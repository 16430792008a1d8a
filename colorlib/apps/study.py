"""The naturalness study as a Voila app (:mod:`colorlib.apps`): a participant types an id and
starts; then :class:`~colorlib.study.app.StudyApp` shows the paper's question with Yes / No for
each image, in the participant's own random order, and appends every answer to
``<answers>/<id>.csv`` at once (the format ``colorlib study`` merges). Reopening the page with the
same id continues where the participant stopped.

The settings come from environment variables that ``colorlib apps study`` sets
(:data:`~colorlib.apps.STUDY_ANSWERS` and the others): Voila runs this in a kernel of its own
for every browser tab, in the notebook's folder, which is no place for answers.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..study import QUESTION, Stimuli, Study, StudyError, make_stimuli
from . import INSTALL_APPS, STUDY_ANSWERS, STUDY_SEED, STUDY_STIMULI, STUDY_TRIALS

try:
    import ipywidgets as W

    from ..study.app import StudyApp
except ImportError as e:  # optional packages: the apps extra brings them
    raise ImportError(f"colorlib.apps.study needs ipywidgets: {INSTALL_APPS}") from e

#: Where answers go when the app is opened without ``colorlib apps study`` (never the notebook's folder).
DEFAULT_ANSWERS = Path.home() / "colorlib-study-answers"


def settings() -> tuple[Stimuli, Path, int | None, int]:
    """``(stimuli, answers folder, trials per condition or None, seed)`` from the environment;
    without a manifest, the six photos shipped in the packages (or MiniPlaces), rendered once
    and cached (:func:`colorlib.study.make_stimuli`)."""
    seed = int(os.environ.get(STUDY_SEED) or 0)
    manifest = os.environ.get(STUDY_STIMULI)
    stimuli = Stimuli.load(manifest) if manifest else make_stimuli(n_images=6, seed=seed)
    trials = os.environ.get(STUDY_TRIALS)
    answers = Path(os.environ.get(STUDY_ANSWERS) or DEFAULT_ANSWERS)
    return stimuli, answers, int(trials) if trials else None, seed


class StudyPage:
    """The page: an id box and a Start button, then the participant's :class:`StudyApp`."""

    def __init__(self, stimuli: Stimuli, answers: Path, trials: int | None = None, seed: int = 0) -> None:
        self.stimuli, self.answers, self.seed = stimuli, answers, seed
        self.trials = trials or len(stimuli) // len(stimuli.conditions)
        self.app: StudyApp | None = None
        self.participant = W.Text(description="your id:", placeholder="e.g. anna or s12")
        self.start = W.Button(description="Start", button_style="primary")
        self.message = W.HTML()
        self.start.on_click(lambda _: self.begin())
        self.participant.on_submit(lambda _: self.begin())
        intro = W.HTML(
            f"<h3>Is it natural?</h3><p>You will see {self.trials * len(stimuli.conditions)} images, one "
            f"at a time, and answer one question for each: <em>{QUESTION}</em> Go with your first "
            "impression. Type the id your instructor gave you, then press Start.</p>")
        self.form = W.VBox([intro, W.HBox([self.participant, self.start]), self.message])
        self.widget = W.VBox([self.form])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def begin(self) -> bool:
        """Start (or continue) the session of the id typed; returns whether it started."""
        try:
            study = Study(self.participant.value.strip(), self.stimuli, self.trials, seed=self.seed,
                          csv_path=self.answers, resume=True)
        except StudyError as e:
            self.message.value = f"<p style='color:#b00'>{e}</p>"
            return False
        self.app = StudyApp(study)
        back = f"<p>Welcome back: {study.n_answered} answered already.</p>" if study.n_answered else ""
        self.widget.children = [W.HTML(back), self.app.widget]
        return True


def study_page() -> StudyPage:
    """The app as the notebook shows it, with the settings of :func:`settings`."""
    return StudyPage(*settings())

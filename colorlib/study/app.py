"""A Jupyter app for the naturalness study (:mod:`colorlib.study`): one image, the question,
Yes / No buttons, y / n keys, progress, and a thank-you panel with the participant's rates.

The app only shows :class:`~colorlib.study.Study` state and forwards answers to
:meth:`Study.answer`; a crash or a closed tab loses nothing (every answer is already on
disk), and ``Study(..., resume=True)`` continues. Keys: ipywidgets has no key events, so
a small text box takes them; click it once, then type ``y`` or ``n``.

Import it as ``from colorlib.study.app import StudyApp`` (it needs ipywidgets, from the
``book`` extra). Tests drive it without a browser through :meth:`StudyApp.press`,
:meth:`StudyApp.click_yes`, :meth:`StudyApp.click_no` and :attr:`StudyApp.state`.
"""

from __future__ import annotations

import time

from .design import INSTALL_BOOK, LABELS, QUESTION
from .session import Study

try:
    import ipywidgets as widgets
except ImportError as e:  # an optional package: the book extra brings it
    raise ImportError(f"colorlib.study.app needs ipywidgets: {INSTALL_BOOK}") from e


class StudyApp:
    """The participant's view of ``study``. Display it as the last expression of a cell.

    ``min_seconds``: answers that come sooner than this after an image appeared are ignored,
    so a double click or a held-down key does not answer an image nobody saw. Scripts that
    drive the app quickly (tests) pass 0.
    """

    def __init__(self, study: Study, min_seconds: float = 0.3) -> None:
        self.study, self.min_seconds = study, min_seconds
        self.ignored = 0  # answers dropped by the min_seconds guard
        size = f"{study.stimuli.size}px"
        self.question = widgets.HTML(f"<h3>{QUESTION}</h3>")
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=size, height=size))
        self.yes_button = widgets.Button(description="Yes (y)", button_style="success")
        self.no_button = widgets.Button(description="No (n)", button_style="danger")
        self.yes_button.on_click(lambda _: self._answer(True))
        self.no_button.on_click(lambda _: self._answer(False))
        self.keys = widgets.Text(placeholder="click here, then type y or n",
                                 continuous_update=True, layout=widgets.Layout(width="220px"))
        self.keys.observe(self._on_key, names="value")
        self.progress = widgets.Label()
        self.thanks = widgets.HTML(layout=widgets.Layout(display="none"))
        self.trial_view = widgets.VBox([
            self.question, self.image,
            widgets.HBox([self.yes_button, self.no_button, self.keys]), self.progress])
        self.widget = widgets.VBox([self.trial_view, self.thanks])
        self._show()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- what a participant does ------------------------------------------------------------
    def press(self, key: str) -> bool:
        """A key typed by the participant: 'y' / 'n' answer (any case), others are ignored.
        Returns whether an answer was recorded."""
        key = key.strip().lower()
        return key in ("y", "n") and self._answer(key == "y")

    def click_yes(self) -> bool:
        """Click the Yes button (its real handler runs). Returns whether an answer was recorded."""
        before = self.study.n_answered
        self.yes_button.click()
        return self.study.n_answered > before

    def click_no(self) -> bool:
        before = self.study.n_answered
        self.no_button.click()
        return self.study.n_answered > before

    @property
    def state(self) -> dict:
        """What the participant sees now (and, for tests, the trial behind it)."""
        t = self.study.current
        return {"done": self.study.done, "progress": self.progress.value,
                "answered": self.study.n_answered, "n_trials": self.study.n_trials, "ignored": self.ignored,
                "image_id": t and t.image_id, "condition": t and t.condition,
                "thanks": self.thanks.value if self.study.done else ""}

    # -- plumbing ---------------------------------------------------------------------------
    def _on_key(self, change) -> None:
        text = change["new"]
        if text:
            self.keys.value = ""  # fires this observer again with "", which is ignored
            self.press(text[-1])

    def _answer(self, natural: bool) -> bool:
        if self.study.done:
            return False
        if time.monotonic() - self._shown_at < self.min_seconds:
            self.ignored += 1
            return False
        self.study.answer(natural)
        self._show()
        return True

    def _show(self) -> None:
        s = self.study
        self._shown_at = time.monotonic()
        if not s.done:
            self.image.value = s.image_png()
            self.progress.value = f"trial {s.n_answered + 1} of {s.n_trials}"
            return
        self.progress.value = f"done: {s.n_trials} of {s.n_trials}"
        rows = "".join(f"<tr><td>{LABELS.get(c, c)}</td><td style='text-align:right'>{r:.0f}%</td></tr>"
                       for c, r in s.rates().items())
        self.thanks.value = (
            f"<h3>Thank you, {s.participant}!</h3><p>You answered all {s.n_trials} images. "
            "Some were real photos, some were colorized from gray by a network. "
            f"How often you found each kind natural:</p><table>{rows}</table>")
        self.trial_view.layout.display = "none"
        self.thanks.layout.display = None

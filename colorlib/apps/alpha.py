"""Chapter 5's "tweak alpha by hand" as a Voila app (:mod:`colorlib.apps`, issue 15): choose the
weight alpha of the classification loss (Eq. 6) on a logarithmic slider, press Train, watch the
loss of a small model fall, and compare the runs made so far (PSNR, AuC, top-5). The control is
the chapter's own, :class:`colorlib.book.alpha_lab.AlphaLab`, with the chapter's recipe.

What differs from the chapter is where it runs: on a server, one kernel per browser tab. Every
tab shares one folder of runs (``colorlib apps alpha --runs``, :data:`~colorlib.apps.ALPHA_RUNS`),
so an alpha trained by anyone loads at once, and a run folder is trained by one tab at a time
(:class:`SharedAlphaLab`). Training runs on the CPU: a class's tabs do not compete for a GPU.

The data is the chapter's: the first 2,000 MiniPlaces training photos when the data folder is
there, else the photos shipped in the installed packages, which have no scene labels, so that
alpha changes nothing; the page says which.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..device import cpu_name
from ..model import ModelConfig
from ..train import TrainConfig
from . import ALPHA_RUNS, ALPHA_STEPS, INSTALL_APPS, alpha_runs_dir

try:
    import ipywidgets as W

    from .. import book
    from ..book.alpha_lab import AlphaLab, alpha_label
except ImportError as e:  # optional packages: the apps extra brings them
    raise ImportError(f"colorlib.apps.alpha needs ipywidgets and matplotlib: {INSTALL_APPS}") from e

try:
    import fcntl
except ImportError:  # Windows: one user, one tab; nothing to share
    fcntl = None

#: Chapter 5's lab: steps per run (about a minute on a CPU), batch size, training and validation
#: photos, and the validation photos every run is scored on (the chapter's fast mode).
STEPS = 120
BATCH = 32
N_TRAIN, N_VAL, N_SCORED = 2000, 200, 100


def lab_config(steps: int, batch_size: int) -> Callable[[float], TrainConfig]:
    """The run for each alpha: chapter 5's short live run (tiny model, AdamW, seed 0) on the CPU,
    ``steps`` steps of ``batch_size`` photos; only alpha differs."""

    def config(alpha: float) -> TrainConfig:
        return TrainConfig(config="tiny", optimizer="adamw", alpha=alpha, seed=0, device="cpu",
                           batch_size=batch_size, steps=steps, log_every=min(5, steps),
                           checkpoint_every=10**9)

    return config


@contextmanager
def one_at_a_time(lock: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (created) while the block runs; when another
    process holds it, call ``on_wait`` and wait. Without ``fcntl`` (Windows), no lock."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                on_wait()
                fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


class SharedAlphaLab(AlphaLab):
    """:class:`~colorlib.book.alpha_lab.AlphaLab` whose run folders several kernels share: a
    tab that finds another training the same alpha waits for it, then loads its run."""

    def train(self, alpha: float | None = None):
        alpha = self.slider.value if alpha is None else float(alpha)
        if alpha in self.runs:
            return super().train(alpha)

        def waiting() -> None:
            self.status.value = (f"α = {alpha_label(alpha)}: another page is training this value; "
                                 "waiting for it, then its run loads here.")

        with one_at_a_time(self.run_dir(alpha).with_name(self.run_dir(alpha).name + ".lock"), waiting):
            return super().train(alpha)


def intro(steps: int, batch_size: int, source: str, scored: book.Photos) -> str:
    """The page's text: what the control does, the recipe, the data and the hardware."""
    text = ("<h3>Tweak α by hand</h3><p>The joint loss of the paper (Eq. 6) is the colour error plus α "
            "times the scene-classification error. Choose α on the slider (0, then 1/10,000 to 1/10 on a "
            "logarithmic scale; the paper uses 1/300), press <b>Train</b> and watch the loss fall. A "
            "finished run joins the table: the same photos colorized by every run so far, with PSNR, "
            "AuC and top-5.</p>"
            f"<p>Every run is chapter 5's short run: the tiny model, AdamW, seed 0, {steps} steps of "
            f"{batch_size} photos at 64 x 64; only α differs. It trains on the CPU of the machine "
            f"serving this page ({html.escape(cpu_name())}, {os.cpu_count()} logical cores). "
            "Runs are kept by α for every page of this app: a value trained before loads at once.</p>"
            f"<p><b>Training data</b>: {html.escape(source)}. <b>Scored on</b>: {len(scored)} "
            f"{html.escape(scored.source)}.</p>")
    if scored.fallback:
        text += ("<p><b>No MiniPlaces data folder was found</b> (start the app with <code>COLORLIB_DATA"
                 "</code> set to the folder holding <code>miniplaces/</code>). These photos have no scene "
                 "labels, so the class term of Eq. 6 is off: every α trains the same model, top-5 is not "
                 "measured, and the runs are scored on the photos they train on. The control works; the "
                 "comparison needs MiniPlaces.</p>")
    return text


def alpha_page() -> W.VBox:
    """The app as the notebook shows it: the text, then the lab over the chapter's data, its runs
    in ``$COLORLIB_ALPHA_RUNS`` (else :func:`~colorlib.apps.alpha_runs_dir`), one folder per
    data set and step budget (``$COLORLIB_ALPHA_STEPS``, else :data:`STEPS`)."""
    env = book.setup(seed=0)
    steps = int(os.environ.get(ALPHA_STEPS) or STEPS)
    runs = Path(os.environ.get(ALPHA_RUNS) or alpha_runs_dir())
    train, val, source = book.training_data(env, ModelConfig.preset("tiny").global_size, N_TRAIN, N_VAL)
    scored = book.validation_photos(env, n=N_SCORED)
    batch_size = min(BATCH, len(train))
    data_name = "package-photos" if scored.fallback else "miniplaces"
    lab = SharedAlphaLab(lab_config(steps, batch_size), (train, val), scored,
                         runs / f"{data_name}-{steps}-steps")
    return W.VBox([W.HTML(intro(steps, batch_size, source, scored)), lab.widget()])

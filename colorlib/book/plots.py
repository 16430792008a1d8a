"""Figures: grids of images, smoothed curves, and the loss curve that redraws while a model trains."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.figure import Figure

from ..train import StepInfo, Validation
from .images import ImageData, to_pil

#: Width in CSS pixels of a page's text column at a 1280 px wide window (the book theme's main
#: column); a wider figure is scaled down to it, and its type with it.
PAGE_PX = 720
#: Smallest height of figure text a reader should get, in CSS pixels, after that scaling.
MIN_TEXT_PX = 10.5


def text_pt(fig_width_in: float, dpi: float = 96) -> float:
    """Font size (points) that is still :data:`MIN_TEXT_PX` pixels tall when a figure
    ``fig_width_in`` inches wide at ``dpi`` is shrunk to the page column (:data:`PAGE_PX`)."""
    shrink = min(1.0, PAGE_PX / (fig_width_in * dpi))
    return MIN_TEXT_PX * 72 / dpi / shrink


def grid(rows: Sequence[Sequence[ImageData | None]], titles: Sequence[Sequence[str] | None] | None = None,
         row_labels: Sequence[str] | None = None, size: float = 1.9, suptitle: str | None = None) -> Figure:
    """Draw rows of images (anything :func:`~colorlib.book.images.to_pil` takes; None leaves a
    cell empty) in a grid, ``size`` inches per cell, with optional per-image ``titles`` (a list
    per row, or None for a row without), ``row_labels`` and a ``suptitle``. Gray images are
    drawn in gray, 0..255. Returns the figure."""
    nr, nc = len(rows), max(len(r) for r in rows)
    pt = text_pt(size * nc)  # labels stay readable however many columns the page shrinks
    fig, axes = plt.subplots(nr, nc, figsize=(size * nc, size * nr + (pt / 30 if suptitle else 0)),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j in range(nc):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j >= len(row) or row[j] is None:
                ax.axis("off")
                continue
            im = to_pil(row[j])
            ax.imshow(im, cmap="gray" if im.mode == "L" else None, vmin=0, vmax=255)
            if titles is not None and titles[i] is not None and j < len(titles[i]):
                ax.set_title(titles[i][j], fontsize=pt)
        if row_labels is not None:
            axes[i][0].set_ylabel(row_labels[i], fontsize=pt)
    if suptitle:
        fig.suptitle(suptitle, fontsize=pt * 1.1)
    fig.tight_layout()
    return fig


def smooth(y: Sequence[float] | np.ndarray, n: int = 25) -> np.ndarray:
    """Moving average of ``y`` over ``n`` points, same length (shorter windows at the start)."""
    y = np.asarray(y, dtype=float)
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(0, idx - n)
    return (c[idx] - c[lo]) / (idx - lo)


class LivePlot:
    """A training callback (``colorlib.train.train(..., callbacks=[plot])``) that redraws the
    loss curve (Eq. 6, and its colour part) every ``every`` logged steps.

    In a live notebook the figure updates while the run goes on; in the built book the final
    curve is what remains. Validation passes (:class:`colorlib.train.Validation`) are kept in
    :attr:`val`.
    """

    def __init__(self, title: str = "training loss (Eq. 6)", every: int = 10):
        self.title, self.every = title, every
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.colour: list[float] = []
        self.val: list[Validation] = []
        self._handle = None

    def __call__(self, info: StepInfo | Validation) -> None:
        if isinstance(info, Validation):
            self.val.append(info)
            return
        self.steps.append(info.step)
        self.loss.append(info.loss)
        self.colour.append(info.colour_loss)
        if len(self.steps) % self.every == 0:
            self.draw()

    def figure(self) -> Figure:
        """The curve so far: the joint loss (raw and smoothed) and its colour (MSE) part."""
        fig, ax = plt.subplots(figsize=(6, 3))
        if self.steps:
            ax.plot(self.steps, self.loss, lw=0.8, alpha=0.4, color="C0")
            ax.plot(self.steps, smooth(self.loss, 10), color="C0", label="joint loss")
            ax.plot(self.steps, smooth(self.colour, 10), color="C1", label="colour (MSE) part")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(self.title)
        ax.legend(loc="upper right")
        fig.tight_layout()
        plt.close(fig)
        return fig

    def replay(self, log: dict[str, np.ndarray]) -> None:
        """Draw the curve of a finished run from its log columns (a run that was loaded, not
        trained; see :func:`colorlib.book.runs.load_or_train`)."""
        self.steps = [int(s) for s in log["step"]]
        self.loss = list(log["loss"])
        self.colour = list(log["colour_loss"])
        self.draw()

    def draw(self) -> None:
        """Show the figure, or update the one already shown."""
        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)

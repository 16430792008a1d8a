"""Chapter 5's "tweak alpha by hand" control (issue 15): choose the weight alpha of the
classification loss (Eq. 6) on a logarithmic slider, press Train, watch the loss of a small
model fall, and compare the runs made so far on the same photos (PSNR, AuC, top-5).

Every run uses the same data, recipe and step budget; only alpha differs. Runs are cached by
alpha, in memory and in their run folder (:func:`colorlib.book.runs.load_or_train`), so
choosing a value again is instant. Training needs a running kernel: in the static HTML of the
book the button has nothing to call, and the page says so.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from ..data import DecodedImages
from ..evaluate import score, summarise
from ..infer import colorize
from ..model import Colorizer
from ..train import StepInfo, TrainConfig
from .photos import Photos
from .plots import smooth
from .runs import load_or_train
from .widgets import encode

#: The slider's values: 0 (no classification loss), then 1/10,000 to 1/10 in roughly even steps
#: on a logarithmic scale (1/3000, 1/300 and 1/30 are the shipped sweep's, 1/300 the paper's).
ALPHAS = (0.0, 1 / 10000, 1 / 5000, 1 / 3000, 1 / 2000, 1 / 1000, 1 / 500, 1 / 300, 1 / 200,
          1 / 100, 1 / 50, 1 / 30, 1 / 20, 1 / 10)


def alpha_label(alpha: float) -> str:
    """``0`` or ``1/300``: alpha as the paper writes it."""
    return "0" if alpha == 0 else f"1/{round(1 / alpha)}"


@dataclass
class AlphaRun:
    """One finished run of the lab: its model, its loss log and its scores on the lab's photos."""

    alpha: float
    model: Colorizer
    log: dict[str, np.ndarray]
    scores: dict[str, float]  # summarise(score(...)): psnr, auc, top5, ...
    trained: bool  # trained in this session (False: loaded from its run folder)


class AlphaLab:
    """The control: :attr:`slider`, :attr:`train_button`, a live loss curve, and a comparison
    table of every run so far (:meth:`comparison`). :meth:`train` is what the button calls.

    ``config(alpha)`` gives the run's :class:`~colorlib.train.TrainConfig` (the same for every
    alpha but alpha itself); ``data`` is the decoded ``(train, val)``; ``photos`` are scored and
    shown for every run; runs live in ``runs_dir/alpha-<value>``.
    """

    def __init__(self, config: Callable[[float], TrainConfig], data: tuple[DecodedImages, DecodedImages | None],
                 photos: Photos, runs_dir: str | Path, shown: int = 4, every: int = 5):
        self.config, self.data, self.photos = config, data, photos
        self.runs_dir = Path(runs_dir)
        self.shown = list(range(min(shown, len(photos))))
        self.every = every
        self.runs: dict[float, AlphaRun] = {}
        self.slider = W.SelectionSlider(options=[(alpha_label(a), a) for a in ALPHAS], value=1 / 300,
                                        description="α", continuous_update=False)
        self.train_button = W.Button(description="Train", button_style="primary", icon="play")
        self.status = W.HTML()
        self.curve = W.Image(format="png", layout=W.Layout(display="none"))  # shown once drawn
        self.table = W.HTML()
        self.train_button.on_click(self._clicked)
        self._steps: list[int] = []
        self._loss: list[float] = []

    def _clicked(self, _button) -> None:
        try:
            self.train()
        except Exception as e:  # shown on the page; ipywidgets would only log it
            self.status.value = f"<b>Training failed</b>: {html.escape(str(e))}"
            raise

    def widget(self) -> W.VBox:
        return W.VBox([W.HBox([self.slider, self.train_button]), self.status, self.curve, self.table])

    def run_dir(self, alpha: float) -> Path:
        return self.runs_dir / f"alpha-{alpha_label(alpha).replace('/', '-')}"

    def _draw(self, title: str) -> None:
        fig, ax = plt.subplots(figsize=(5.5, 2.6))
        if self._loss:
            ax.plot(self._steps, self._loss, lw=0.8, alpha=0.4, color="C0")
            ax.plot(self._steps, smooth(self._loss, 10), color="C0", label="joint loss (Eq. 6)")
            ax.legend(loc="upper right")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        self.curve.value = buf.getvalue()
        self.curve.layout.display = None

    def _on_step(self, title: str) -> Callable:
        def callback(info) -> None:
            if isinstance(info, StepInfo):
                self._steps.append(info.step)
                self._loss.append(info.loss)
                if len(self._steps) % self.every == 0:
                    self._draw(title)
        return callback

    def train(self, alpha: float | None = None) -> AlphaRun:
        """Train (or load, or take from the cache) the run for ``alpha`` (default: the slider's),
        score it on the lab's photos, and redraw the comparison. Returns the run."""
        alpha = self.slider.value if alpha is None else float(alpha)
        label = alpha_label(alpha)
        if alpha in self.runs:
            self.status.value = f"α = {label}: already trained (cached), shown in the table below."
            return self.runs[alpha]
        title = f"α = {label}: training"
        self.status.value = f"α = {label}: training…"
        self.train_button.disabled = True
        self._steps, self._loss = [], []
        try:
            model, log, _, trained = load_or_train(self.run_dir(alpha), self.config(alpha), self.data,
                                                   callbacks=[self._on_step(title)])
        finally:
            self.train_button.disabled = False
        self._steps, self._loss = [int(s) for s in log["step"]], list(log["loss"])
        self._draw(f"α = {label}: {len(self._steps)} steps")
        scores = summarise(score(model, self.photos.pixels, self.photos.labels, saturation=None))
        run = self.runs[alpha] = AlphaRun(alpha, model, log, scores, trained)
        self.status.value = f"α = {label}: {'trained' if trained else 'loaded from its run folder'}."
        self.table.value = self.comparison_html()
        return run

    def comparison(self) -> list[dict]:
        """One row per run so far, by alpha: ``alpha``, ``psnr`` (dB), ``auc`` and ``top5`` (%)."""
        return [dict(alpha=a, label=alpha_label(a), psnr=r.scores["psnr"], auc=r.scores["auc"],
                     top5=r.scores["top5"]) for a, r in sorted(self.runs.items())]

    def comparison_html(self) -> str:
        """The comparison as an HTML table: the same photos colorized by each run, and its scores."""
        import base64

        def img(im) -> str:
            data = base64.b64encode(encode(im)).decode()
            return f"<img src='data:image/jpeg;base64,{data}' width='96' style='margin:1px'>"

        def pct(v: float) -> str:
            return "–" if v != v else f"{v:.1f}"

        truth = "".join(img(self.photos.image(i)) for i in self.shown)
        rows = [f"<tr><td>photos</td><td>{truth}</td><td></td><td></td><td></td></tr>"]
        for row in self.comparison():
            model = self.runs[row["alpha"]].model
            shown = "".join(img(colorize(model, self.photos.image(i))) for i in self.shown)
            rows.append(f"<tr><td>α = {html.escape(row['label'])}</td><td>{shown}</td>"
                        f"<td>{row['psnr']:.2f}</td><td>{pct(row['auc'])}</td><td>{pct(row['top5'])}</td></tr>")
        head = "<tr><th>run</th><th>colorized</th><th>PSNR (dB)</th><th>AuC (%)</th><th>top-5 (%)</th></tr>"
        return (f"<table style='font-size:0.85em'>{head}{''.join(rows)}</table>"
                f"<div style='font-size:0.85em'>Scores on the {len(self.photos)} photos of this "
                "lab (a preview, not the validation split).</div>")

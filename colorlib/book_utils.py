"""What the book's chapters share: the setup cell, where photos come from, figures and widgets.

Every chapter of the book (``book/``) opens with the same cell::

    from colorlib import book_utils as bu
    env = bu.setup(seed=0)

which fixes the seed, picks the device, reads ``COLORLIB_FAST`` and finds the data. Nothing
here re-implements the method: the chapters call :mod:`colorlib` for that. This module only
decides *which* photos a page shows (MiniPlaces when the data folder is there, else the
photographs that ship inside scikit-image, scikit-learn and matplotlib) and how results are
drawn (matplotlib grids, ipywidgets that also work in the static HTML).
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import data as D
from .checkpoint import available_models, load_model, models_dir


# -- the setup cell ---------------------------------------------------------------------------
def fast_mode() -> bool:
    """``COLORLIB_FAST=1`` (CI, laptops): fewer steps and smaller subsets, same data and models."""
    return os.environ.get("COLORLIB_FAST", "").strip().lower() in ("1", "true", "yes", "on")


def short_path(p: Path | None, root: Path) -> str:
    if p is None:
        return "not found"
    try:
        return os.path.relpath(p, root)
    except ValueError:
        return str(p)


@dataclass
class BookEnv:
    """Paths, seed, device and mode of one chapter run."""

    root: Path  # the repository (colorlib/ and book/ live here)
    data: Path | None  # data root holding miniplaces/ and historical/; None on a bare machine
    models: Path  # shipped models (data/models)
    fast: bool  # COLORLIB_FAST: small subsets and few steps
    device: torch.device
    seed: int

    @property
    def miniplaces(self) -> Path | None:
        if self.data is None:
            return None
        d = self.data / "miniplaces"
        return d if (d / "val.tar.gz").exists() or (d / "val").is_dir() else None

    @property
    def historical(self) -> Path | None:
        d = None if self.data is None else self.data / "historical"
        return d if d is not None and any(d.glob("*.jpg")) else None

    @property
    def gpu(self) -> bool:
        return self.device.type == "cuda"

    def pick(self, fast, full):
        """``fast`` in fast mode, else ``full``: the one place where the two modes differ."""
        return fast if self.fast else full

    def __repr__(self) -> str:
        mode = "fast (COLORLIB_FAST=1)" if self.fast else "full"
        return (f"mode: {mode} | device: {self.device} | seed: {self.seed}\n"
                f"data: {short_path(self.data, self.root)} | models: {short_path(self.models, self.root)} "
                f"({len(available_models())} shipped)")


def setup(seed: int = 0) -> BookEnv:
    """The first cell of every chapter: seed everything, pick the device, find data and models."""
    import matplotlib

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    # ADADELTA's running averages start at zero and pass through denormal floats in the first
    # steps; on a CPU each such operation is many times slower (a 30 s run took minutes).
    torch.set_flush_denormal(True)
    matplotlib.rcParams.update({"figure.dpi": 96, "savefig.dpi": 96, "axes.titlesize": 9,
                                "figure.titlesize": 10, "font.size": 9})
    try:
        data = D.data_root()
    except D.DataError:
        data = None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return BookEnv(D.repo_root(), data, models_dir(), fast_mode(), device, seed)


def model(name: str, env: BookEnv | None = None):
    """A shipped model by name, on the chapter's device, in eval mode."""
    return load_model(name, "cpu" if env is None else env.device)


# -- photos -----------------------------------------------------------------------------------
#: Photographs that ship inside installed wheels (no data folder needed), with where they come from.
PACKAGE_PHOTOS = {
    "astronaut": "skimage.data.astronaut()",
    "coffee": "skimage.data.coffee()",
    "chelsea": "skimage.data.chelsea()",
    "rocket": "skimage.data.rocket()",
    "china": "sklearn.datasets.load_sample_image('china.jpg')",
    "grace_hopper": "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
    "camera": "skimage.data.camera()",  # a real grayscale photograph
}


def package_photo(name: str) -> np.ndarray:
    """One of :data:`PACKAGE_PHOTOS` as a uint8 array (RGB, or 2-D for ``camera``)."""
    if name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
        import skimage.data

        return getattr(skimage.data, name)()
    if name == "china":
        from sklearn.datasets import load_sample_image

        return load_sample_image("china.jpg")
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return np.array(Image.open(f).convert("RGB"))
    raise KeyError(f"no package photo {name!r}; choose one of {sorted(PACKAGE_PHOTOS)}")


def square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop, resized to ``size`` (the shape the MiniPlaces images have)."""
    im = Image.fromarray(img)
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.LANCZOS)
    return np.array(im.convert("RGB"))


@dataclass
class Photos:
    """Colour photos for a page: uint8 ``(N, 3, S, S)``, labels when known, and their source."""

    pixels: torch.Tensor
    names: list[str]
    labels: torch.Tensor | None
    classes: list[str]
    source: str  # what a reader can look up
    fallback: bool  # True when the data folder was missing and package photos stand in
    removed_gray: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pixels)

    def image(self, i: int) -> Image.Image:
        return to_pil(self.pixels[i])

    def label(self, i: int) -> str:
        if self.labels is None or int(self.labels[i]) < 0:
            return self.names[i]
        return self.classes[int(self.labels[i])]


def package_photo_set(size: int = 128, names: Sequence[str] | None = None) -> Photos:
    """The colour package photos as a :class:`Photos` set (the fallback for MiniPlaces)."""
    names = [n for n in (names or PACKAGE_PHOTOS) if n != "camera"]
    px = torch.stack([torch.from_numpy(square(package_photo(n), size)).permute(2, 0, 1) for n in names])
    return Photos(px, list(names), None, [], "photos shipped with scikit-image, scikit-learn and matplotlib",
                  fallback=True)


def validation_photos(env: BookEnv, n: int, size: int = 128, offset: int = 0) -> Photos:
    """``n`` MiniPlaces validation photos, gray and low-colour ones filtered out as in training
    (:data:`colorlib.data.LOW_COLOUR_STD`), or the package photos when the data folder is
    missing (then ``fallback`` is True). ``extra["gray"]`` holds the filtered-out ones."""
    if env.miniplaces is None:
        return package_photo_set(size)
    want = offset + n + n // 8 + 8  # a few more: the filter drops about 4%
    images = D.load_miniplaces(env.miniplaces, "val", limit=want)
    images = images.subset(np.arange(min(offset, len(images) - 1), len(images)))
    dec = D.decode_all(images, size, filter_gray=False, workers=0, progress=False)
    names = images.names if len(dec) == len(images) else [f"val #{i}" for i in range(len(dec))]
    colourful = D.colour_std(dec.pixels) >= D.LOW_COLOUR_STD
    idx = torch.nonzero(colourful).flatten()[:n]
    gray_idx = torch.nonzero(~colourful).flatten()
    return Photos(dec.pixels[idx], [names[i] for i in idx], dec.labels[idx], dec.classes,
                  f"MiniPlaces validation set ({short_path(env.miniplaces, env.root)}/val.tar.gz)",
                  fallback=False, removed_gray=int((~colourful[: int(idx[-1]) + 1]).sum()),
                  extra={"gray": dec.pixels[gray_idx], "gray_labels": dec.labels[gray_idx]})


def training_data(env: BookEnv, size: int, n_train: int | None, n_val: int | None):
    """Decoded ``(train, val, source)`` for a training run in the book: the first ``n_train``
    MiniPlaces training photos (None: all 45,000) and ``n_val`` validation photos, gray ones
    removed; or, without the data folder, the package photos (unlabelled, no validation)."""
    if env.miniplaces is None:
        ps = package_photo_set(size)
        pixels = ps.pixels
        return (D.DecodedImages(pixels, torch.full((len(pixels),), -1), []), None,
                "photos shipped with scikit-image, scikit-learn and matplotlib (no data folder found)")
    workers = 0 if env.fast else None
    train = D.load_miniplaces(env.miniplaces, "train", limit=n_train)
    val = D.load_miniplaces(env.miniplaces, "val", limit=n_val)
    return (D.decode_all(train, size, workers=workers, progress=False),
            D.decode_all(val, size, workers=workers, progress=False),
            (f"MiniPlaces ({short_path(env.miniplaces, env.root)}): {len(train):,} training and "
             f"{len(val):,} validation photos"))


def source_note(photos: Photos) -> object:
    """A line for the page saying where its photos come from (and a warning on fallback)."""
    from IPython.display import Markdown

    if photos.fallback:
        return Markdown(
            "> **Note: no data folder here.** The MiniPlaces photos were not found "
            "(`../shared/data` or `$COLORLIB_DATA`), so this page shows the photographs that "
            f"ship inside the installed packages instead ({photos.source}). Its figures and "
            "numbers are therefore not the ones printed in the published book."
        )
    return Markdown(f"Photos on this page: {photos.source}, {len(photos)} images.")


def historical_photos(env: BookEnv) -> list[tuple[str, Path]]:
    """``(name, path)`` of the historical photographs (``../shared/data/historical``); empty
    when the folder is missing."""
    if env.historical is None:
        return []
    return [(p.name, p) for p in sorted(env.historical.glob("*.jpg"))]


def historical_credits(env: BookEnv) -> dict[str, str]:
    """file name -> credit, read from the table in the data folder's README.md."""
    credits: dict[str, str] = {}
    readme = None if env.data is None else env.data / "README.md"
    if readme is None or not readme.exists():
        return credits
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith(".jpg"):
            credits[cells[0]] = cells[3]
    return credits


# -- images ------------------------------------------------------------------------------------
def to_pil(x) -> Image.Image:
    """uint8/float tensor ``(3, H, W)`` or ``(1, H, W)``, array ``(H, W[, 3])`` or PIL -> PIL."""
    if isinstance(x, Image.Image):
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dim() == 4:
            x = x[0]
        if x.dim() == 3 and x.shape[0] in (1, 3):
            x = x.permute(1, 2, 0)
        x = x.numpy()
    a = np.asarray(x)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return Image.fromarray(a)


def gray(x) -> Image.Image:
    """What the network sees: the L* channel of a photo, as a gray image."""
    from .infer import luminance

    L = luminance(to_pil(x))[0, 0] / 100.0
    return to_pil(L.clamp(0, 1).numpy())


def fit(img: Image.Image, longest: int) -> Image.Image:
    """Shrink so the longest side is at most ``longest`` (keeps aspect ratio)."""
    if max(img.size) <= longest:
        return img
    s = longest / max(img.size)
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))), Image.Resampling.LANCZOS)


def grid(rows: Sequence[Sequence], titles: Sequence[Sequence[str]] | None = None,
         row_labels: Sequence[str] | None = None, size: float = 1.9, suptitle: str | None = None):
    """Draw a grid of images (rows of PIL/arrays/tensors) with optional titles; returns the figure."""
    import matplotlib.pyplot as plt

    nr, nc = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nr, nc, figsize=(size * nc, size * nr + (0.3 if suptitle else 0)),
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
                ax.set_title(titles[i][j], fontsize=8)
        if row_labels is not None:
            axes[i][0].set_ylabel(row_labels[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


# -- training logs -----------------------------------------------------------------------------
def read_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A training log CSV (``log.csv`` / ``val.csv`` of a run, or ``data/models/logs/*.csv``)
    as columns of floats."""
    with Path(path).open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def shipped_log(name: str, val: bool = False) -> dict[str, np.ndarray]:
    """Training (or validation) log of a shipped model, from ``data/models/logs``."""
    return read_log(models_dir() / "logs" / f"{name}{'.val' if val else ''}.csv")


def smooth(y: np.ndarray, n: int = 25) -> np.ndarray:
    """Moving average over ``n`` points (same length; shorter windows at the start)."""
    y = np.asarray(y, dtype=float)
    c = np.cumsum(np.insert(y, 0, 0.0))
    idx = np.arange(1, len(y) + 1)
    lo = np.maximum(0, idx - n)
    return (c[idx] - c[lo]) / (idx - lo)


class LivePlot:
    """A training callback (``colorlib.train`` ``callbacks=``) that redraws the loss curve.

    In a live notebook the figure updates every ``every`` logged steps; in the built book the
    final curve is what remains.
    """

    def __init__(self, title: str = "training loss (Eq. 6)", every: int = 10):
        self.title, self.every = title, every
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.colour: list[float] = []
        self.val: list[dict] = []
        self._handle = None

    def __call__(self, info) -> None:
        if info.val is not None:
            self.val.append(info.val)
            return
        self.steps.append(info.step)
        self.loss.append(info.loss)
        self.colour.append(info.colour_loss)
        if len(self.steps) % self.every == 0:
            self.draw()

    def figure(self):
        import matplotlib.pyplot as plt

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
        """Draw the curve of a finished run from its log (a run that was loaded, not trained)."""
        self.steps = [int(s) for s in log["step"]]
        self.loss = list(log["loss"])
        self.colour = list(log["colour_loss"])
        self.draw()

    def draw(self) -> None:
        from IPython.display import display

        fig = self.figure()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)


def load_or_train(run_dir: str | os.PathLike, tc, data=None, callbacks: Sequence[Callable] = ()):
    """Load the model a run folder holds, else train it there: the pattern for long runs.

    Returns ``(model, log, val, trained)`` with the run's log columns (:func:`read_log`).
    Delete the folder to train again.
    """
    from .checkpoint import save_model
    from .train import train

    run_dir = Path(run_dir)
    weights = run_dir / "model.safetensors"
    trained = False
    if not weights.exists():
        if run_dir.exists():  # an unfinished run: start it again from scratch
            import shutil

            shutil.rmtree(run_dir)
        result = train(tc, run_dir, callbacks=tuple(callbacks), progress=False, data=data)
        m = load_model(run_dir / "checkpoint.pt")
        save_model(m, weights, {k: v for k, v in m.meta.items() if k != "model"}, half=False)
        (run_dir / "checkpoint.pt").unlink()  # weights are enough; the optimizer state is large
        trained = True
        del result
    m = load_model(weights)
    log = read_log(run_dir / "log.csv")
    val = read_log(run_dir / "val.csv") if (run_dir / "val.csv").exists() else {}
    return m, log, val, trained


# -- widgets that also work without a kernel ---------------------------------------------------
def encode(img, fmt: str = "jpeg", quality: int = 88) -> bytes:
    """PIL/array/tensor -> JPEG (or PNG) bytes for an ``ipywidgets.Image``."""
    buf = io.BytesIO()
    im = to_pil(img)
    if fmt == "jpeg":
        im.convert("RGB").save(buf, "JPEG", quality=quality)
    else:
        im.save(buf, fmt.upper())
    return buf.getvalue()


def image_widget(img, width: int | None = None, fmt: str = "jpeg"):
    import ipywidgets as W

    im = to_pil(img)
    return W.Image(value=encode(im, fmt), format=fmt, width=width or im.width)


def figure_widget(fig, width: int | None = None):
    """A matplotlib figure as an ``ipywidgets.Image`` (PNG); closes the figure."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    im = Image.open(io.BytesIO(buf.getvalue()))
    return W.Image(value=buf.getvalue(), format="png", width=width or im.width)


def linked_stack(control, children: Sequence, attr: str = "index"):
    """An ``ipywidgets.Stack`` showing ``children[control.<attr>]``.

    The link is a ``jslink``, made in the browser: it works in the static HTML of the book,
    where no kernel runs, as well as in a live notebook.
    """
    import ipywidgets as W

    stack = W.Stack(list(children), selected_index=int(getattr(control, attr) or 0))
    W.jslink((control, attr), (stack, "selected_index"))
    return stack


def caption(text: str):
    """A small HTML caption widget."""
    import ipywidgets as W

    return W.HTML(f"<div style='font-size: 0.85em; line-height: 1.3'>{text}</div>")

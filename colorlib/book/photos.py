"""Which photos a page shows: MiniPlaces when the data folder is there, else photographs that
ship inside installed packages; the historical photographs of chapter 10 and their credits.

A page never fails for want of data: without the data folder it runs on the package photos
and says so (:func:`source_note`), so its figures are not the published ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from IPython.display import Markdown
from PIL import Image

from .. import data as D
from ..sample_photos import sample_photos
from .env import BookEnv
from .images import to_pil

#: Where the package photos come from, for a page's note.
PACKAGE_SOURCE = "photos shipped with scikit-image, scikit-learn and matplotlib"


def square(img: np.ndarray, size: int) -> np.ndarray:
    """Centre square crop of uint8 ``(H, W[, 3])``, resized (Lanczos) to uint8 RGB
    ``(size, size, 3)``: the shape the MiniPlaces images have."""
    im = Image.fromarray(img)
    s = min(im.size)
    left, top = (im.width - s) // 2, (im.height - s) // 2
    im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.LANCZOS)
    return np.array(im.convert("RGB"))


@dataclass
class Photos:
    """Colour photos for a page: uint8 ``(N, 3, S, S)``, labels when known, and their source."""

    pixels: torch.Tensor  # uint8 (N, 3, S, S), sRGB 0..255
    names: list[str]  # file names, or package photo names
    labels: torch.Tensor | None  # scene class index per photo (-1: none); None when unlabelled
    classes: list[str]  # scene names, indexed by label
    source: str  # what a reader can look up
    fallback: bool  # True when the data folder was missing and package photos stand in
    removed_gray: int = 0  # gray and low-colour photos skipped before the last one kept
    extra: dict = field(default_factory=dict)  # "gray", "gray_labels": the skipped photos

    def __len__(self) -> int:
        return len(self.pixels)

    def image(self, i: int) -> Image.Image:
        """Photo ``i`` as an RGB PIL image."""
        return to_pil(self.pixels[i])

    def label(self, i: int) -> str:
        """Photo ``i``'s scene class, or its name when it has none."""
        if self.labels is None or int(self.labels[i]) < 0:
            return self.names[i]
        return self.classes[int(self.labels[i])]


def package_photo_set(size: int = 128, names: Sequence[str] | None = None) -> Photos:
    """The colour photos of :data:`colorlib.sample_photos.SAMPLE_PHOTOS` (``names``, default
    all; black-and-white ones are left out) as a :class:`Photos` set of ``size`` x ``size``
    squares: the stand-in for MiniPlaces. Raises ``KeyError`` for an unknown name."""
    photos = sample_photos(names, colour_only=True)
    px = torch.stack([torch.from_numpy(square(rgb, size)).permute(2, 0, 1) for rgb in photos.values()])
    return Photos(px, list(photos), None, [], PACKAGE_SOURCE, fallback=True)


def validation_photos(env: BookEnv, n: int, size: int = 128, offset: int = 0) -> Photos:
    """``n`` MiniPlaces validation photos from number ``offset`` on, ``size`` x ``size``, gray
    and low-colour ones filtered out as in training (:data:`colorlib.data.LOW_COLOUR_STD`,
    section 4); ``extra["gray"]`` holds those filtered out. Without the data folder, the
    package photos (:func:`package_photo_set`, ``fallback`` True) whatever ``n`` is."""
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
                  "photos of the MiniPlaces validation split (never trained on)",
                  fallback=False, removed_gray=int((~colourful[: int(idx[-1]) + 1]).sum()),
                  extra={"gray": dec.pixels[gray_idx], "gray_labels": dec.labels[gray_idx]})


def training_data(env: BookEnv, size: int, n_train: int | None,
                  n_val: int | None) -> tuple[D.DecodedImages, D.DecodedImages | None, str]:
    """Decoded ``(train, val, source)`` at ``size`` x ``size`` for a training run in the book:
    the first ``n_train`` MiniPlaces training photos (None: all 45,000) and ``n_val``
    validation photos, gray ones removed; or, without the data folder, the package photos
    (unlabelled, ``val`` None). ``source`` is a line for the page."""
    if env.miniplaces is None:
        pixels = package_photo_set(size).pixels
        return (D.DecodedImages(pixels, torch.full((len(pixels),), -1), []), None,
                f"{PACKAGE_SOURCE} (no data folder found)")
    workers = 0 if env.fast else None
    train = D.load_miniplaces(env.miniplaces, "train", limit=n_train)
    val = D.load_miniplaces(env.miniplaces, "val", limit=n_val)
    return (D.decode_all(train, size, workers=workers, progress=False),
            D.decode_all(val, size, workers=workers, progress=False),
            (f"MiniPlaces: the first {len(train):,} photos of the training split and "
             f"{len(val):,} of the validation split"))


def source_note(photos: Photos) -> Markdown:
    """A line for the page saying where its photos come from (and a warning on fallback)."""
    if photos.fallback:
        return Markdown(
            "> **Note: no data folder here.** The MiniPlaces photos were not found "
            "(set `$COLORLIB_DATA` to the folder holding `miniplaces/`), so this page shows the photographs that "
            f"ship inside the installed packages instead ({photos.source}). Its figures and "
            "numbers are therefore not the ones printed in the published book."
        )
    return Markdown(f"Photos on this page: {len(photos):,} {photos.source}.")


def historical_photos(env: BookEnv) -> list[tuple[str, Path]]:
    """``(file name, path)`` of the historical photographs (``<data>/historical/*.jpg``), sorted
    by name; empty when the folder is missing."""
    if env.historical is None:
        return []
    return [(p.name, p) for p in sorted(env.historical.glob("*.jpg"))]


def credits_from_table(markdown: str) -> dict[str, str]:
    """File name -> credit, from the rows of a Markdown table ``| file | size | mode | credit |``
    whose first cell names a ``.jpg`` file (the table in the data folder's README.md)."""
    credits: dict[str, str] = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].endswith(".jpg"):
            credits[cells[0]] = cells[3]
    return credits


def historical_credits(env: BookEnv) -> dict[str, str]:
    """File name -> credit of the historical photographs, read from the table in
    ``<data>/README.md`` (:func:`credits_from_table`); empty without it."""
    readme = None if env.data is None else env.data / "README.md"
    if readme is None or not readme.exists():
        return {}
    return credits_from_table(readme.read_text(encoding="utf-8"))

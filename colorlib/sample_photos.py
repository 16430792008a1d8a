"""Photographs that ship inside installed packages, so a demo, a test or the user study runs
without any data folder.

Each entry of :data:`SAMPLE_PHOTOS` says which package holds the photo, how to load it, who
took it and under which licence it may be used:

============  ==============  =========================================================  ======
name          package         photograph and licence                                     colour
============  ==============  =========================================================  ======
astronaut     scikit-image    Eileen Collins, NASA; public domain                        yes
coffee        scikit-image    a cup of coffee, Rachel Michetti; CC0                      yes
chelsea       scikit-image    Chelsea the cat, Stefan van der Walt; CC0                  yes
rocket        scikit-image    DSCOVR launch on Falcon 9, SpaceX; public domain           yes
china         scikit-learn    a temple in China, danielbuechele on Flickr; CC BY 2.0     yes
flower        scikit-learn    a flower, vultilion on Flickr; CC BY 2.0                   yes
grace_hopper  matplotlib      Rear Admiral Grace Hopper, U.S. Navy photo; public domain  yes
camera        scikit-image    a man with a camera, Lav Varshney; CC0                     no
============  ==============  =========================================================  ======

``camera`` is a real black-and-white photograph (the only one with nothing to compare a
colorization against). scikit-image is a dependency of colorlib; scikit-learn and matplotlib
come with the ``book`` extra (``pip install "colorlib[book]"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SamplePhoto:
    """Where one photograph comes from."""

    package: str  # the package (import name) that ships it
    call: str  # how that package loads it, for citing in a caption
    credit: str  # who took it
    licence: str
    colour: bool  # False for a black-and-white photograph


SAMPLE_PHOTOS: dict[str, SamplePhoto] = {
    "astronaut": SamplePhoto("skimage", "skimage.data.astronaut()", "Eileen Collins, NASA",
                             "public domain", True),
    "coffee": SamplePhoto("skimage", "skimage.data.coffee()", "Rachel Michetti", "CC0", True),
    "chelsea": SamplePhoto("skimage", "skimage.data.chelsea()", "Stefan van der Walt", "CC0", True),
    "rocket": SamplePhoto("skimage", "skimage.data.rocket()", "SpaceX", "public domain", True),
    "china": SamplePhoto("sklearn", "sklearn.datasets.load_sample_image('china.jpg')",
                         "danielbuechele (Flickr)", "CC BY 2.0", True),
    "flower": SamplePhoto("sklearn", "sklearn.datasets.load_sample_image('flower.jpg')",
                          "vultilion (Flickr)", "CC BY 2.0", True),
    "grace_hopper": SamplePhoto("matplotlib", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
                                "U.S. Navy", "public domain", True),
    "camera": SamplePhoto("skimage", "skimage.data.camera()", "Lav Varshney", "CC0", False),
}

_EXTRA = {"skimage": "scikit-image", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}


class MissingPackageError(ImportError):
    """A photo's package is not installed; the message is one line naming what to install."""


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise MissingPackageError(f"the sample photos of {_EXTRA[name.split('.')[0]]} need that package: "
                                  'pip install "colorlib[book]"') from e


def _load(name: str) -> np.ndarray:
    if name == "china" or name == "flower":
        return _module("sklearn.datasets").load_sample_image(f"{name}.jpg")
    if name == "grace_hopper":
        with _module("matplotlib.cbook").get_sample_data("grace_hopper.jpg") as f:
            return np.array(Image.open(f).convert("RGB"))
    return getattr(_module("skimage.data"), name)()


def sample_photos(names: Iterable[str] | None = None, colour_only: bool = False) -> dict[str, np.ndarray]:
    """The photographs of :data:`SAMPLE_PHOTOS` (see the table above for credits and licences).

    Args:
        names: which photos, in this order; None: all of them, in the table's order.
        colour_only: leave out black-and-white photos (``camera``).

    Returns:
        {name: uint8 array (H, W, 3), sRGB in [0, 255]}. A black-and-white photo has three
        equal channels.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
        MissingPackageError: (an ImportError) the package holding a photo is not installed;
            one line saying what to install.
    """
    names = list(SAMPLE_PHOTOS) if names is None else list(names)
    unknown = [n for n in names if n not in SAMPLE_PHOTOS]
    if unknown:
        raise KeyError(f"no sample photo {unknown[0]!r}; choose from {', '.join(SAMPLE_PHOTOS)}")
    out = {}
    for name in names:
        if colour_only and not SAMPLE_PHOTOS[name].colour:
            continue
        rgb = np.asarray(_load(name), dtype=np.uint8)
        out[name] = np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else np.ascontiguousarray(rgb[..., :3])
    return out

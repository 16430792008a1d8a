"""The images of the study: each photo as it is, colorized by the full model and by the baseline,
all square and ``size`` x ``size`` (224 in the paper, section 4.3), cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import atomic_write, write_json
from ..sample_photos import SAMPLE_PHOTOS, MissingPackageError, sample_photos
from .design import StudyError


def _sha(data: bytes | str, n: int = 10) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:n]


def default_cache_dir() -> Path:
    """:func:`colorlib.data.cache_dir` ``study``: ``$COLORLIB_CACHE/study``, else
    ``~/.cache/colorlib/study``."""
    from ..data import cache_dir

    return cache_dir("study")


@dataclass
class Stimuli:
    """A rendered stimulus set: ``<folder>/<condition>/<image>.png``, all ``size`` x ``size``."""

    folder: Path
    image_ids: list[str]
    models: dict[str, str]  # condition -> model name ("photo" for ground_truth)
    size: int  # pixels, each side
    seed: int
    source: str  # where the photos came from (MiniPlaces val, or photos shipped in wheels)

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(self.models)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def manifest(self) -> Path:
        return self.folder / f"manifest-n{len(self)}.json"

    def path(self, image_id: str, condition: str) -> Path:
        return self.folder / condition / (image_id.replace("/", "__") + ".png")

    def png(self, image_id: str, condition: str) -> bytes:
        """The PNG bytes shown for ``image_id`` in ``condition``."""
        return self.path(image_id, condition).read_bytes()

    @classmethod
    def load(cls, manifest: str | os.PathLike) -> Stimuli:
        """Re-open a set from its ``manifest-n*.json`` (no model needed: copy the folder to a
        classroom machine and run the study there). Raises :class:`StudyError` (one line) for
        a manifest that is missing or damaged."""
        manifest = Path(manifest)
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            return cls(manifest.parent, list(m["image_ids"]), dict(m["models"]), int(m["size"]),
                       int(m["seed"]), str(m["source"]))
        except OSError as e:
            raise StudyError(f"stimuli manifest {manifest}: {e.strerror or e}") from None
        except (ValueError, KeyError, TypeError) as e:
            raise StudyError(f"stimuli manifest {manifest} is damaged or not a manifest "
                             f"({type(e).__name__}: {e}); render it again with make_stimuli") from None


def _photo_pool(data) -> tuple[list[str], list[bytes] | list[np.ndarray], str]:
    """(ids, encoded bytes or RGB arrays, source) of the candidate photos: ``data`` (see
    :func:`make_stimuli`), else MiniPlaces val, else the colour photos of
    :mod:`colorlib.sample_photos` (ids ``<package>/<name>``)."""
    # colorlib.data imports torch (about a second); `colorlib study` reads answers without it.
    from ..data import DataError, ImageSet, load_images, load_miniplaces, miniplaces_dir

    if isinstance(data, ImageSet):
        return [n.rsplit(".", 1)[0] for n in data.names], data.blobs, "given ImageSet"
    try:
        images = load_images(data, "val") if data is not None else load_miniplaces(None, "val")
        where = data if data is not None else miniplaces_dir()
        return [n.rsplit(".", 1)[0] for n in images.names], images.blobs, f"MiniPlaces val ({where})"
    except DataError:
        if data is not None:
            raise
    try:
        photos = sample_photos(colour_only=True)
    except MissingPackageError as e:
        raise StudyError(f"no data folder found, and {e}") from None
    ids = [f"{SAMPLE_PHOTOS[name].package}/{name}" for name in photos]
    return ids, list(photos.values()), "photos shipped in wheels (no data folder found)"


def _save_png(im: Image.Image, path: Path) -> None:
    # Atomic: a killed render never leaves half a PNG that a later call would take as done.
    atomic_write(path, lambda p: im.save(p, format="PNG"))


def _square_colour_photo(item) -> np.ndarray | None:
    """The centre square (the study shows square images) of an encoded photo or an array, as
    uint8 RGB; None for an unreadable or gray photo."""
    import torch  # see make_stimuli: only rendering needs torch

    from ..data import LOW_COLOUR_STD, colour_std
    from ..data import decode as decode_image

    rgb = decode_image(item) if isinstance(item, bytes) else np.asarray(item)[..., :3]
    if rgb is None or colour_std(torch.from_numpy(rgb).permute(2, 0, 1)[None]).item() < LOW_COLOUR_STD:
        return None
    side = min(rgb.shape[:2])
    top, left = (rgb.shape[0] - side) // 2, (rgb.shape[1] - side) // 2
    return np.ascontiguousarray(rgb[top : top + side, left : left + side])


def _render(rgb: np.ndarray, cond: str, models: dict, loaded: dict) -> Image.Image:
    """The photo as condition ``cond`` shows it: itself, or colorized from its L* by the
    condition's model (loaded once into ``loaded``)."""
    from .. import checkpoint  # see make_stimuli: only rendering needs the model code
    from ..infer import colorize
    from ..model import fold_batchnorm

    if cond == "ground_truth":
        return Image.fromarray(rgb)
    if cond not in loaded:
        loaded[cond] = fold_batchnorm(checkpoint.load_model(models[cond]))  # once per model
    return colorize(loaded[cond], rgb)


def _cache_folder(cache_dir, ids: list[str], weights: dict[str, str], seed: int, size: int) -> Path:
    """The folder of one stimulus set: keyed by the photo pool, the models' weights, seed and size."""
    key = _sha(json.dumps([ids, sorted(weights.items())]))
    return Path(cache_dir or default_cache_dir()) / f"seed{seed}-{size}px-{key}"


def make_stimuli(
    n_images: int,
    models: tuple[str, str] | Mapping[str, str] = ("miniplaces-full", "miniplaces-baseline"),
    data=None,
    seed: int = 0,
    size: int = 224,
    cache_dir: str | os.PathLike | None = None,
) -> Stimuli:
    """Render ``ground_truth``, ``full`` and ``baseline`` versions of ``n_images`` photos.

    Args:
        n_images: how many photos; each is shown in all conditions (to different participants).
        models: (full, baseline) model names or files, or a {condition: model} dict.
        data: a data root, a tar, or an :class:`~colorlib.data.ImageSet`; None reads MiniPlaces
            val from the data root, or falls back to the colour photos of
            :func:`colorlib.sample_photos.sample_photos` (``source`` says which).
        seed: the order photos are drawn in.
        size: side of the square images, pixels (224 in the paper's study, section 4.3).
        cache_dir: where PNGs are kept (default :func:`default_cache_dir`).

    Photos are drawn in a ``seed``-ed order, gray ones skipped, centre-cropped square, colorized
    at their own size, then resized (Lanczos) to ``size`` x ``size``. PNGs are cached per photo
    pool, models (weights hash), ``seed`` and ``size`` (:func:`_cache_folder`): a second call
    renders nothing. PNGs and the manifest are written atomically (:mod:`colorlib.io`).

    Raises:
        StudyError: ``n_images`` or ``size`` below 1, or fewer than ``n_images`` colour photos.
        colorlib.io.WriteError: the cache folder cannot be written.
    """
    from .. import checkpoint  # torch and the model code take a second to load: only rendering needs them

    if n_images < 1 or size < 1:
        raise StudyError(f"n_images ({n_images}) and size ({size}) must be at least 1")
    models = dict(models) if isinstance(models, Mapping) else dict(zip(("full", "baseline"), models))
    ids, pool, source = _photo_pool(data)
    weights = {c: _sha(checkpoint.resolve_model_path(m).read_bytes()) for c, m in models.items()}
    folder = _cache_folder(cache_dir, ids, weights, seed, size)
    manifest = folder / f"manifest-n{n_images}.json"
    if manifest.exists():
        return Stimuli.load(manifest)
    names = {"ground_truth": "photo"} | {c: checkpoint.model_name(m) for c, m in models.items()}
    stim = Stimuli(folder, [], names, size, seed, source)
    loaded: dict = {}
    for i in np.random.default_rng(seed).permutation(len(ids)):
        rgb = _square_colour_photo(pool[i])
        if rgb is None:
            continue  # unreadable or gray: the paper's study shows colour photos only
        for cond in stim.conditions:
            path = stim.path(ids[i], cond)
            if not path.exists():
                _save_png(_render(rgb, cond, models, loaded).resize((size, size), Image.Resampling.LANCZOS), path)
        stim.image_ids.append(ids[i])
        if len(stim.image_ids) == n_images:
            break
    else:
        raise StudyError(f"asked for {n_images} photos, but {source} has only "
                         f"{len(stim.image_ids)} colour photos")
    meta = {k: getattr(stim, k) for k in ("image_ids", "models", "size", "seed", "source")}
    write_json(manifest, meta | {"weights": weights})
    return stim

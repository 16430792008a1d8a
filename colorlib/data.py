"""Training data: MiniPlaces (gzipped tar shards or unpacked), Places365-Standard, plain folders.

Images are read as encoded bytes (straight from the tar shards, never unpacked to disk),
decoded to uint8 RGB at a fixed ``load_size`` by loader workers, and kept on the training
device. What one training step sees is made there, in batches: :class:`BatchSource` picks the
step's photos and crop boxes (:func:`crop_boxes`), :func:`augment` crops and flips them and
:func:`lab_batch` gives the network's input and target (:func:`prepare_batch` does both).

The data root comes from ``--data``, else ``$COLORLIB_DATA``, else ``../shared/data``
when it exists (see :func:`data_root`).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import tarfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from .colorspace import DEFAULT_SPACE, SPACES
from .io import atomic_write
from .lab import normalize_L, rgb_to_L, rgb_to_lab

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: An image whose a* and b* standard deviations add up to less than this is "low colour"
#: and dropped from training, as the paper drops gray and low-colour-variance images
#: (section 4). On MiniPlaces this removes about 4% (gray scans, sepia, near-monochrome).
LOW_COLOUR_STD = 3.0

MINIPLACES_URL = "http://miniplaces.csail.mit.edu/data/data.tar.gz"
NO_DATA_HELP = (
    "No photos found. Pass --data DIR or set COLORLIB_DATA to a folder holding "
    "miniplaces/ (train-*.tar.gz shards with train.txt, or the unpacked train/ folder), "
    "a Places365-Standard folder, or any folder of colour photos. MiniPlaces is at "
    f"{MINIPLACES_URL} (unpack it; train.txt and categories.txt come with it)."
)


class DataError(ValueError):
    """A data folder that cannot be used, with a message that says why and what to do."""


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@functools.cache
def _folder(name: str) -> Path:
    """A folder named by an option or an environment variable, resolved once per name in this
    process: ``~`` expanded, a relative name taken from the working folder of its first use (so
    that changing folder later, as a notebook does, finds the same one)."""
    return Path(name).expanduser().resolve()


def cache_dir(*parts: str) -> Path:
    """Where colorlib keeps what it makes for later (the study's rendered stimuli, the alpha app's
    runs), never inside the package: ``$COLORLIB_CACHE/<parts>``, else ``~/.cache/colorlib/<parts>``
    (:func:`_folder`: ``COLORLIB_CACHE=~/cc`` is the home's ``cc``, never a folder named ``~``)."""
    return _folder(os.environ.get("COLORLIB_CACHE") or "~/.cache/colorlib").joinpath(*parts)


def data_root(arg: str | os.PathLike | None = None) -> Path:
    """``arg``, else ``$COLORLIB_DATA`` (either resolved as :func:`_folder` does), else
    ``../shared/data`` beside the repo; or DataError."""
    candidates = [arg, os.environ.get("COLORLIB_DATA")]
    for c in candidates:
        if c:
            p = _folder(os.fspath(c))
            if not p.exists():
                raise DataError(f"data path {p} does not exist. {NO_DATA_HELP}")
            if not (p.is_dir() or p.is_file()):  # a pipe or a device: reading it may never end
                raise DataError(f"data path {p} is not a folder or a regular file (a device, pipe or "
                                "socket); it is not read")
            return p
    for p in (repo_root().parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if p.is_dir():
            return p
    raise DataError(NO_DATA_HELP)


def image_files(folder: Path) -> list[Path]:
    """The regular files with an image suffix under ``folder`` (recursively), sorted. A folder
    named ``x.jpg``, a pipe or a device is left out: reading them fails or never ends."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def shard_files(folder: Path, pattern: str) -> list[Path]:
    """The regular files in ``folder`` matching ``pattern`` (tar shards), sorted; as :func:`image_files`."""
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def read_file(path: Path) -> bytes:
    """The bytes of one data file, or :class:`DataError` (one line naming it) when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def miniplaces_dir(root: str | os.PathLike | None = None) -> Path:
    """The ``miniplaces`` folder inside the data root (or the root itself if it is one)."""
    root = data_root(root)
    if root.is_file():
        return root.parent
    for p in (root / "miniplaces", root):
        if (p / "categories.txt").is_file() or shard_files(p, "train-*.tar.gz"):
            return p
    raise DataError(f"{root} holds no MiniPlaces data (categories.txt, train-*.tar.gz). {NO_DATA_HELP}")


@dataclass
class ImageSet:
    """Encoded images in memory, with their labels (or none) and class names."""

    blobs: list[bytes]
    names: list[str]
    labels: np.ndarray | None = None  # int64 class index per image, or None (no labels)
    classes: list[str] = field(default_factory=list)
    skipped: int = 0  # members that were not images or could not be read

    def __len__(self) -> int:
        return len(self.blobs)

    def subset(self, index) -> ImageSet:
        index = np.asarray(index, dtype=np.int64)
        return ImageSet([self.blobs[i] for i in index], [self.names[i] for i in index],
                        None if self.labels is None else self.labels[index], self.classes, self.skipped)

    def __repr__(self) -> str:
        lab = "unlabelled" if self.labels is None else f"{len(self.classes)} classes"
        return f"ImageSet({len(self)} images, {lab})"


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file of the data (a class list, a label file); :class:`DataError`
    (one line naming it) for a file that cannot be read or is not UTF-8 text."""
    if not path.is_file():
        raise DataError(f"cannot read {path}: it is not a regular file")
    try:
        return read_file(path).decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"cannot read {path}: not UTF-8 text (byte {e.start})") from None


def _whole(text: str) -> bool:
    """ASCII digits, at most 18 (``str.isdigit`` accepts '²', which ``int`` refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def read_categories(path: Path) -> list[str]:
    """MiniPlaces/Places ``categories.txt``: ``/a/abbey 0`` per line -> names by index."""
    names: dict[int, str] = {}
    for i, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            name, idx = line.rsplit(maxsplit=1)
            if not _whole(idx):
                raise ValueError(idx)
            names[int(idx)] = name.strip("/").split("/", 1)[-1]
        except ValueError:
            raise DataError(f"{path}:{i}: expected 'name index', got {line!r}") from None
    if sorted(names) != list(range(len(names))):
        raise DataError(f"{path}: class indices must be 0 .. {len(names) - 1}, each once; "
                        f"got {min(names, default=0)} .. {max(names, default=-1)}")
    return [names[i] for i in range(len(names))]


def read_label_file(path: Path) -> dict[str, int]:
    """``path label [shard]`` per line -> {path: label}."""
    labels = {}
    for i, line in enumerate(read_lines(path), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not _whole(parts[1].removeprefix("-")):
            raise DataError(f"{path}:{i}: expected 'path label', got {line!r}")
        labels[parts[0].lstrip("/")] = int(parts[1])
    return labels


def read_tar(path: Path, limit: int | None = None) -> tuple[list[str], list[bytes], int]:
    """Image members of a (gzipped) tar, read in order without unpacking to disk."""
    names, blobs, skipped = [], [], 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                f = tar.extractfile(member) if member.name.lower().endswith(IMAGE_SUFFIXES) else None
                if f is None:
                    skipped += 1
                    continue
                names.append(member.name.lstrip("./"))
                blobs.append(f.read())
                if limit is not None and len(blobs) >= limit:
                    break
    except (tarfile.TarError, EOFError, OSError) as e:
        if not blobs:
            raise DataError(f"cannot read {path}: {e}") from e
        warnings.warn(f"{path} is truncated or corrupt after {len(blobs)} images ({e}); using those",
                      stacklevel=2)
    return names, blobs, skipped


def _attach_labels(names: list[str], blobs: list[bytes], label_file: Path | None, classes: list[str],
                   skipped: int) -> ImageSet:
    if label_file is None or not label_file.is_file():
        return ImageSet(blobs, names, None, classes, skipped)
    labels = read_label_file(label_file)
    missing = [n for n in names if n not in labels]
    if missing:
        raise DataError(f"{len(missing)} of {len(names)} images have no line in {label_file} "
                        f"(first: {missing[0]}); the label file and the images disagree")
    y = np.array([labels[n] for n in names], dtype=np.int64)
    if classes and (y.min() < 0 or y.max() >= len(classes)):
        bad = names[int(np.argmax((y < 0) | (y >= len(classes))))]
        raise DataError(f"{label_file}: label of {bad} is outside 0..{len(classes) - 1}")
    return ImageSet(blobs, names, y, classes, skipped)


def load_miniplaces(
    root: str | os.PathLike | None = None,
    split: str = "train",
    shards: int | None = None,
    limit: int | None = None,
) -> ImageSet:
    """MiniPlaces ``train`` or ``val``, from gzipped tar shards or an unpacked folder.

    ``shards``: read only the first N training shards (each a fair sample of all classes);
    ``limit``: stop after N images.
    """
    d = miniplaces_dir(root)
    classes = read_categories(d / "categories.txt") if (d / "categories.txt").is_file() else []
    label_file = d / f"{split}.txt"
    tars = (shard_files(d, f"{split}-*.tar.gz") or shard_files(d, f"{split}.tar.gz"))[:shards]
    names, blobs, skipped = [], [], 0
    if tars:
        for t in tars:
            n, b, s = read_tar(t, None if limit is None else limit - len(blobs))
            names, blobs, skipped = names + n, blobs + b, skipped + s
            if limit is not None and len(blobs) >= limit:
                break
    elif (d / split).is_dir():
        files = image_files(d / split)[:limit]
        names, blobs = [p.relative_to(d).as_posix() for p in files], [read_file(p) for p in files]
    else:
        raise DataError(f"{d} has no {split}-*.tar.gz shards and no {split}/ folder. {NO_DATA_HELP}")
    if not blobs:
        raise DataError(f"no images found for split {split!r} in {d}")
    return _attach_labels(names, blobs, label_file, classes, skipped)


def load_places365(root: Path, split: str = "train", limit: int | None = None) -> ImageSet:
    """Places365-Standard: ``places365_{split}_standard.txt`` + ``categories_places365.txt``,
    images under ``data_256/`` (train) or ``val_256/`` (val), or beside the list."""
    root = Path(root)
    listing = root / f"places365_{split}_standard.txt"
    classes = read_categories(root / "categories_places365.txt")
    labels = read_label_file(listing)
    folders = [root / "data_256", root / "data_large", root / f"{split}_256", root / f"{split}_large", root]
    names, blobs = [], []
    for rel in list(labels)[:limit]:
        path = next((f / rel for f in folders if (f / rel).is_file()), None)
        if path is None:
            raise DataError(f"{listing} lists {rel}, which is in none of {[str(f) for f in folders]}")
        names.append(rel)
        blobs.append(read_file(path))
    y = np.array([labels[n] for n in names], dtype=np.int64)
    return ImageSet(blobs, names, y, classes)


def load_folder(root: Path, limit: int | None = None) -> ImageSet:
    """Every image under ``root`` (recursively), unlabelled: the class loss is off."""
    files = image_files(Path(root))[:limit]
    if not files:
        raise DataError(f"{root} contains no images ({', '.join(IMAGE_SUFFIXES)}). {NO_DATA_HELP}")
    return ImageSet([read_file(p) for p in files], [p.relative_to(root).as_posix() for p in files])


def load_images(
    root: str | os.PathLike | None = None,
    split: str = "train",
    shards: int | None = None,
    limit: int | None = None,
) -> ImageSet:
    """Whatever ``root`` holds: MiniPlaces, Places365-Standard, a tar, or a plain folder."""
    p = data_root(root)
    if p.is_file() and p.suffix == ".pack":
        return load_pack(p, limit)
    if p.is_file() and p.name.endswith((".tar", ".tar.gz", ".tgz")):
        names, blobs, skipped = read_tar(p, limit)
        if not blobs:
            raise DataError(f"{p} contains no images")
        label_file = p.parent / (p.name.split(".")[0] + ".txt")
        cats = p.parent / "categories.txt"
        classes = read_categories(cats) if cats.is_file() else []
        return _attach_labels(names, blobs, label_file if classes else None, classes, skipped)
    if (p / f"places365_{split}_standard.txt").is_file():
        return load_places365(p, split, limit)
    for d in (p / "miniplaces", p):
        if shard_files(d, f"{split}-*.tar.gz") or shard_files(d, f"{split}.tar.gz") or (
            (d / "categories.txt").is_file() and (d / split).is_dir()
        ):
            return load_miniplaces(d, split, shards, limit)
    return load_folder(p, limit)


# -- packs: one file of encoded images, to carry a data set to another machine ----------------
def save_pack(path: str | os.PathLike, images: ImageSet) -> Path:
    """Write ``images`` (encoded bytes, names, labels, classes) into one file.

    A pack has no per-file overhead (a tar spends 512 bytes or more on each 3 KB photo), so
    more photos fit in a size-limited transfer. It is an uncompressed NumPy ``.npz`` of plain
    arrays (the encoded bytes end to end, their offsets, the labels, and the names and classes
    as UTF-8 JSON), read back with ``allow_pickle=False``: loading a pack never runs code.
    """
    offsets = np.cumsum([0] + [len(b) for b in images.blobs], dtype=np.int64)
    header = json.dumps({"names": list(images.names), "classes": images.classes}).encode()
    arrays = {"blobs": np.frombuffer(b"".join(images.blobs), dtype=np.uint8), "offsets": offsets,
              "header": np.frombuffer(header, dtype=np.uint8)}
    if images.labels is not None:
        arrays["labels"] = np.asarray(images.labels, dtype=np.int64)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.savez would add .npz to a path
            np.savez(f, **arrays)

    return atomic_write(path, write)


def load_pack(path: str | os.PathLike, limit: int | None = None) -> ImageSet:
    """Read a file written by :func:`save_pack` (the first ``limit`` images).

    Raises :class:`DataError` (one line) for a file that is not such a pack, including an old
    pickled pack: those are refused, never unpickled."""
    try:
        with np.load(path, allow_pickle=False) as z:
            offsets, blobs = z["offsets"], z["blobs"]
            header = json.loads(z["header"].tobytes())
            labels = z["labels"] if "labels" in z.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is not a colorlib pack (made by colorlib.data.save_pack): "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    n = len(offsets) - 1 if limit is None else min(limit, len(offsets) - 1)
    data = blobs.tobytes()
    return ImageSet([data[offsets[i]:offsets[i + 1]] for i in range(n)], header["names"][:n],
                    None if labels is None else labels[:n].copy(), header["classes"])


# -- decoding -------------------------------------------------------------------------------
def decode(blob: bytes, size: int | None = None) -> np.ndarray | None:
    """Encoded image -> uint8 RGB ``(H, W, 3)``, resized to ``size`` x ``size`` if given.

    Returns None for bytes that are not a readable image (the caller counts them).
    """
    try:
        with Image.open(io.BytesIO(blob)) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.array(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def colour_std(rgb: torch.Tensor) -> torch.Tensor:
    """std(a*) + std(b*) per image of uint8 ``(N, 3, H, W)`` (or float in [0, 1])."""
    x = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
    ab = rgb_to_lab(x)[:, 1:]
    return ab.flatten(2).std(dim=2).sum(dim=1)


class DecodeDataset(torch.utils.data.Dataset):
    """Index -> (uint8 CHW image at ``size``, label, ok). Undecodable images give ok=False."""

    def __init__(self, images: ImageSet, size: int):
        self.images, self.size = images, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        arr = decode(self.images.blobs[i], self.size)
        label = -1 if self.images.labels is None else int(self.images.labels[i])
        blank = np.zeros((self.size, self.size, 3), np.uint8)
        return torch.from_numpy(blank if arr is None else arr).permute(2, 0, 1), label, arr is not None


def loader_workers() -> int:
    return min(8, max(0, (os.cpu_count() or 1) - 1))


@dataclass
class DecodedImages:
    """A whole data set decoded once to uint8 ``(N, 3, S, S)`` (MiniPlaces: 2.2 GB for 45,000).

    ``removed_gray`` and ``removed_corrupt`` count what the filter and the decoder dropped.
    """

    pixels: torch.Tensor
    labels: torch.Tensor  # int64, -1 where unlabelled
    classes: list[str]
    removed_gray: int = 0
    removed_corrupt: int = 0

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def to(self, device) -> DecodedImages:
        return dataclasses.replace(self, pixels=self.pixels.to(device), labels=self.labels.to(device))

    @property
    def labelled(self) -> bool:
        return bool((self.labels >= 0).any())


def decode_all(images: ImageSet, size: int, filter_gray: bool = True, workers: int | None = None,
               progress: bool = True) -> DecodedImages:
    """Decode every image to ``size`` x ``size`` with loader workers, dropping corrupt ones
    and (with ``filter_gray``) low-colour ones (:data:`LOW_COLOUR_STD`)."""
    workers = loader_workers() if workers is None else workers
    loader = torch.utils.data.DataLoader(DecodeDataset(images, size), batch_size=256, num_workers=workers)
    batches = [(x, y, ok, colour_std(x) if filter_gray else torch.full((len(x),), float("inf")))
               for x, y, ok in tqdm(loader, desc=f"decoding {len(images)} images", disable=not progress,
                                    unit="batch", leave=False)]
    if not batches:
        raise DataError("no images to decode")
    pixels, labels, ok, std = (torch.cat(column) for column in zip(*batches))
    keep = ok & (std >= LOW_COLOUR_STD)
    gray, unreadable = int((ok & (std < LOW_COLOUR_STD)).sum()), int((~ok).sum())
    if not keep.any():
        raise DataError(f"none of the {len(images)} images is a usable colour image "
                        f"({unreadable} unreadable, {gray} gray or low colour)")
    return DecodedImages(pixels[keep].contiguous(), labels[keep], images.classes, gray, unreadable)


# -- on the training device -----------------------------------------------------------------
def crop_boxes(
    n: int, generator: torch.Generator, min_scale: float = 1.0, crop_fraction: float = 224 / 256
) -> torch.Tensor:
    """Random crop boxes ``(n, 5)``: x0, y0, w, h as fractions of the source side, and flip.

    ``min_scale = 1`` is the paper's augmentation: a fixed crop of ``crop_fraction`` of the
    image (224 of 256) at a random place. ``min_scale < 1`` also varies the crop area
    between ``min_scale`` and 1 of the image (a random-resized crop).
    """
    u = torch.rand(n, 4, generator=generator)
    if min_scale >= 1.0:
        side = torch.full((n,), crop_fraction)
    else:
        side = (min_scale + (1 - min_scale) * u[:, 0]).sqrt()
    x0 = (1 - side) * u[:, 1]
    y0 = (1 - side) * u[:, 2]
    flip = (u[:, 3] < 0.5).float()
    return torch.stack((x0, y0, side, side, flip), dim=1)


def augment(pixels: torch.Tensor, boxes: torch.Tensor, out_size: int) -> torch.Tensor:
    """Crop ``boxes`` out of uint8 ``(N, 3, S, S)`` images, flip, and resize to ``out_size``.

    One batched ``grid_sample`` on the images' device; returns float RGB in [0, 1].
    """
    boxes = boxes.to(pixels.device, torch.float32, non_blocking=True)
    x0, y0, w, h, flip = boxes.unbind(1)
    theta = torch.zeros(len(boxes), 2, 3, device=pixels.device)
    theta[:, 0, 0] = w * (1 - 2 * flip)
    theta[:, 0, 2] = 2 * x0 + w - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * y0 + h - 1
    grid = F.affine_grid(theta, [len(boxes), 3, out_size, out_size], align_corners=False)
    x = pixels.float().div_(255.0)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def lab_batch(rgb: torch.Tensor, space: str = DEFAULT_SPACE) -> tuple[torch.Tensor, torch.Tensor]:
    """Float RGB ``(N, 3, H, W)`` -> network input L*/100 ``(N, 1, H, W)`` and the target in
    ``space`` (normalised a*b* ``(N, 2, H/2, W/2)`` for L*a*b*; :data:`colorlib.colorspace.SPACES`,
    section 4.8), averaged to the network's output size (paper 3.2.5). The input is L*/100 in
    every space."""
    target = SPACES[space].target(rgb)
    return normalize_L(rgb_to_L(rgb)), F.avg_pool2d(target, 2, ceil_mode=True)


def prepare_batch(pixels: torch.Tensor, boxes: torch.Tensor, out_size: int,
                  channels_last: bool = False, space: str = DEFAULT_SPACE) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images + crop boxes -> (network input L*/100, target in ``space``, :func:`lab_batch`).

    Everything a training step does to pixels, in one function, so ``torch.compile`` can
    fuse it into a few kernels (``train --compile`` does).
    """
    L, ab = lab_batch(augment(pixels, boxes, out_size), space)
    return (L.contiguous(memory_format=torch.channels_last) if channels_last else L), ab


class BatchSource:
    """Training batches from images decoded once and kept on the training device.

    The order is a permutation per epoch drawn from ``(seed, epoch)`` and the crops from
    ``(seed, step)``, so any step's batch can be rebuilt exactly: that makes ``--resume``
    continue bit for bit. Under DDP each rank takes its own slice of every global batch.
    ``prepare`` turns uint8 pixels and crop boxes into (L, ab): :func:`prepare_batch`,
    or a compiled version of it.
    """

    def __init__(self, images: DecodedImages, batch_size: int, seed: int, rank=0, world=1,
                 prepare=prepare_batch):
        self.images, self.batch_size, self.seed = images, batch_size, seed
        self.rank, self.world, self.prepare = rank, world, prepare
        self.channels_last = images.pixels.is_cuda
        self.steps_per_epoch = len(images) // (batch_size * world)
        if self.steps_per_epoch == 0:
            raise DataError(
                f"{len(images)} training images cannot fill one batch of {batch_size * world}; "
                "lower --batch-size or use more images"
            )
        self._perm_epoch, self._perm = -1, None

    def indices(self, step: int) -> torch.Tensor:
        epoch, within = divmod(step, self.steps_per_epoch)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.images), generator=g)
            self._perm_epoch = epoch
        B = self.batch_size * self.world
        batch = self._perm[within * B : (within + 1) * B]
        return batch[self.rank :: self.world]

    def batch(self, step: int, out_size: int, min_scale: float):
        """(L*/100, normalised a*b* at half size, labels) for ``step``, on the images' device."""
        device = self.images.pixels.device
        idx = self.indices(step).to(device, non_blocking=True)
        g = torch.Generator().manual_seed(self.seed * 7_000_003 + step)
        boxes = crop_boxes(len(idx), g, min_scale).to(device, non_blocking=True)
        L, ab = self.prepare(self.images.pixels.index_select(0, idx), boxes, out_size, self.channels_last)
        return L, ab, self.images.labels.index_select(0, idx)

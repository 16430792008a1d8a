"""Reading and writing image files: every PIL mode, arrays and file objects in; PNG/JPEG/... out.

Reading gives the image's own 8-bit sRGB and its alpha channel (:func:`rgb_and_alpha`), or the
RGB a viewer shows, transparent pixels composited over white (:func:`to_rgb_array`). Colorizing
keeps the L* of that RGB, so how each PIL mode becomes 8-bit sRGB is what "the input's
lightness" means; it is stated once here:

==============================  ======================================================================
PIL mode                        read as
==============================  ======================================================================
``1``, ``L``                    gray: 0/1 -> 0/255; L as it is
``LA``, ``La``                  gray with alpha (``La``, premultiplied, is un-premultiplied first)
``P``, ``PA``                   the palette's colours; palette or ``PA`` transparency becomes alpha
``RGB``, ``RGBX``               as it is (X, padding, dropped)
``RGBA``, ``RGBa``              colour with alpha (``RGBa``, premultiplied, is un-premultiplied)
``CMYK``, ``YCbCr``, ``HSV``    PIL's own conversion to RGB
``LAB``                         PIL's 8-bit CIELAB (L* = value x 100/255; a*, b* stored as signed
                                bytes, which ``getpixel`` shows plus 128): this library's L*a*b* ->
                                sRGB, chroma reduced into the gamut at constant L*
                                (:func:`colorlib.lab.lab_to_rgb_in_gamut`), so L* is the file's
``I;16``, ``I;16B/L/N``         16-bit gray: value / 257 (0..65535 -> 0..255)
``I`` (32-bit integer)          0..255: 8-bit gray as it is; else 0..65535: 16-bit gray (value / 257)
``F`` (32-bit float)            within [0, 1]: fraction of white (x 255); else within [0, 255]: 8-bit
                                levels (what ``convert("F")`` of an ``L`` image holds); else within
                                [0, 65535]: 16-bit levels (/ 257)
==============================  ======================================================================

``I`` and ``F`` images with values outside those ranges (negative, above 65535, NaN or infinity)
are refused with a ``ValueError``: there is no one right way to map them to a lightness, and a
guess (min-max stretching, say) would invent one. Other modes are refused the same way.

Arrays: gray ``(H, W)``, RGB ``(H, W, 3)`` or RGBA ``(H, W, 4)``; uint8 as they are, uint16 / 257,
bool as 0/255, float in [0, 1] (NaN, infinity or values outside [0, 1] are refused).

Files are opened with their EXIF orientation applied. A multi-frame file (animated GIF or PNG,
multi-page TIFF) gives its first frame and a ``UserWarning`` "FILE has N frames; only the first
is colorized". :func:`save_image` writes through :func:`colorlib.io.atomic_write`, so a failed
save leaves no partial file. It keeps every pixel's L* as the suffix's format allows: exactly in
lossless formats (PNG, TIFF, BMP, WebP saved lossless, ...); JPEG at quality 100 without chroma
subsampling (L* within 1.5; measured at most 1.05 on four photos); AVIF at quality 100, 4:4:4
(within 1.0; measured 0.5). GIF (256 colours), PDF, EPS and ICNS are refused, and ICO takes
images up to 256x256 (:data:`LIGHTNESS_TOLERANCE`, :data:`REFUSED_FORMATS`, :data:`MAX_SIDE`).
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

from .io import atomic_write
from .lab import lab_to_rgb_in_gamut

#: What every reader takes: a PIL image, an array, a path, or a binary file object (``io.BytesIO``,
#: ``sys.stdin.buffer``).
ImageLike = Image.Image | np.ndarray | str | os.PathLike | BinaryIO

#: Formats whose files keep an alpha channel; others get RGBA composited over white.
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")

#: How :func:`save_image` encodes the formats that would otherwise lose lightness: WebP
#: losslessly; JPEG (and MPO, its multi-picture form) at quality 100 without chroma subsampling;
#: AVIF at quality 100, 4:4:4. Every other format it writes stores 8-bit RGB as it is.
SAVE_OPTIONS = {
    "JPEG": dict(quality=100, subsampling=0),
    "MPO": dict(quality=100, subsampling=0),
    "WEBP": dict(lossless=True, exact=True),  # exact: keep the RGB under transparent pixels too
    "AVIF": dict(quality=100, subsampling="4:4:4"),
}

#: The most each format moves a pixel's L* when a colour image is saved and read back, as
#: ``tests/test_imageio_formats.py`` measures it on photos (JPEG: at most 1.05 on skimage's
#: astronaut, coffee, chelsea and rocket; AVIF: 0.5); the test holds each format to this bound.
#: Formats not named here are lossless (0).
LIGHTNESS_TOLERANCE = {"JPEG": 1.5, "MPO": 1.5, "AVIF": 1.0}

#: Formats :func:`save_image` refuses for colour images, and why.
REFUSED_FORMATS = {
    "GIF": "GIF holds at most 256 colours, which moves L* by up to 15",
    "PDF": "PDF is a document format (PIL stores its pictures as JPEG at quality 75)",
    "EPS": "EPS is a document format, which PIL reads back only through Ghostscript",
    "ICNS": "ICNS holds only fixed icon sizes (PIL rescales the image to them)",
}

#: The largest width or height each format can hold (others: as large as colorlib writes).
MAX_SIDE = {"ICO": 256, "JPEG": 65_535, "MPO": 65_535, "WEBP": 16_383}


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """Any image (see the module docstring for how each PIL mode and array type is read) ->
    uint8 RGB ``(H, W, 3)``, transparent pixels composited over white, as a viewer shows them.

    Raises what :func:`rgb_and_alpha` raises."""
    rgb, alpha = rgb_and_alpha(image)
    return rgb if alpha is None else over_white(rgb, alpha)


def rgb_and_alpha(image: ImageLike) -> tuple[np.ndarray, np.ndarray | None]:
    """The image's own (not composited) uint8 RGB ``(H, W, 3)`` and its alpha channel (uint8
    ``(H, W)``; None when it has none). How each PIL mode and array type is scaled: the module
    docstring.

    Raises ``FileNotFoundError`` for a missing path; ``TypeError`` for what is no image at all
    (None, ``bytes``: wrap them in ``io.BytesIO``, a number), saying what is accepted;
    ``ValueError`` (one line) for a folder, a
    device or other non-regular file, a file PIL cannot read or one too large to open safely,
    an image with no pixels, a mode or value range that has no defined lightness, non-finite or
    out-of-range float arrays and arrays of other shapes or types. A multi-frame file warns
    (``UserWarning``) and gives its first frame.
    """
    name = None
    if isinstance(image, (str, os.PathLike)):
        name = str(image)
        image = _open(Path(image), name)
    elif hasattr(image, "read"):  # a binary file object
        name = str(getattr(image, "name", None) or "the image data")
        image = _open(image, name)
    if isinstance(image, Image.Image):
        return _from_pil(image, name)
    return _from_array(image)


def over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` with alpha ``(H, W)`` -> uint8 RGB composited over white."""
    w = alpha[..., None].astype(np.float32) / 255
    return (rgb.astype(np.float32) * w + 255 * (1 - w)).round().astype(np.uint8)


def output_format(path: str | os.PathLike, size: tuple[int, int] | None = None) -> str:
    """The PIL format :func:`save_image` writes for ``path``'s suffix, checked for a colour
    image of ``size`` (width, height; None: any). Raises ``ValueError`` (one line naming the
    path) for a suffix that names no format PIL can write, a format that would not keep the
    image (:data:`REFUSED_FORMATS`), and a size larger than the format holds (:data:`MAX_SIDE`)."""
    path = Path(path)
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the image format of {path}: give a name ending in .png or .jpg")
    if fmt not in Image.SAVE:
        raise ValueError(f"PIL cannot write {fmt} images in colour ({path}): give a name ending in .png or .jpg")
    if fmt in REFUSED_FORMATS:
        raise ValueError(f"{path}: {REFUSED_FORMATS[fmt]}; give a name ending in .png, .tif or .webp "
                         "(lossless) or .jpg")
    side = MAX_SIDE.get(fmt)
    if side and size and max(size) > side:
        raise ValueError(f"{path}: a {size[0]}x{size[1]} image is too large for {fmt}, which holds at most "
                         f"{side}x{side}; give a name ending in .png")
    return fmt


def image_size(source: str | os.PathLike) -> tuple[int, int] | None:
    """``(width, height)`` of an image file as its header states it (nothing decoded), or None
    when it cannot be told (the file is then reported when it is read)."""
    try:
        if not Path(source).is_file():
            return None
        with Image.open(source) as im:
            return im.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def save_image(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``image`` to ``path`` in the format its suffix names (``.png``, ``.jpg``, ...),
    so that every pixel's L* reads back within :data:`LIGHTNESS_TOLERANCE` of ``image``'s
    (lossless formats exactly; JPEG, MPO and AVIF with :data:`SAVE_OPTIONS`).

    RGBA stays RGBA in formats that hold alpha (:data:`ALPHA_FORMATS`); other formats get it
    composited over white, as a viewer shows it. The file is encoded in memory first and then
    written atomically, so a format that fails, or a full disk, leaves no file behind.
    Raises ``ValueError`` (one line) for what :func:`output_format` refuses and an image the
    format cannot hold, and :class:`colorlib.io.WriteError` when the file cannot be written.
    """
    path = Path(path)
    fmt = output_format(path, image.size)
    if image.mode == "RGBA" and fmt not in ALPHA_FORMATS:
        rgba = np.asarray(image)
        image = Image.fromarray(over_white(rgba[..., :3], rgba[..., 3]))
    buf = io.BytesIO()
    try:
        sizes = {"sizes": [image.size]} if fmt == "ICO" else {}  # else PIL shrinks it to a standard icon size
        image.save(buf, format=fmt, **SAVE_OPTIONS.get(fmt, {}), **sizes)
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot save a {image.mode} image as {fmt} ({path}): {e}") from None
    data = buf.getvalue()
    return atomic_write(path, lambda p: p.write_bytes(data))


def _open(source: Path | BinaryIO, name: str) -> Image.Image:
    """Decode a file (first frame, EXIF orientation applied) into a loaded, file-free image."""
    if isinstance(source, Path):
        try:
            mode = source.stat().st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f"no such image: {name}") from None
        except OSError as e:
            raise ValueError(f"{name} cannot be read: {e.strerror or e}") from None
        if stat.S_ISDIR(mode):
            raise ValueError(f"{name} is a folder, not an image file")
        if not stat.S_ISREG(mode):  # a device, a pipe or a socket: reading it may never end
            raise ValueError(f"{name} is not a regular file")
        if not os.access(source, os.R_OK):
            raise ValueError(f"{name} cannot be read: permission denied")
    try:
        with Image.open(source) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                warnings.warn(f"{name} has {frames} frames; only the first is colorized", UserWarning,
                              stacklevel=2)
            image = ImageOps.exif_transpose(im)  # a copy of the first frame, loaded
            image.load()
        return image
    except Image.DecompressionBombError as e:
        raise ValueError(f"{name} is too large to open safely: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        detail = " ".join(str(e).replace(repr(source), "").split())  # never a repr (<_io.BytesIO object at 0x..>)
        raise ValueError(f"{name} is not an image PIL can read: {detail}") from None


def _from_pil(image: Image.Image, name: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    label = name or getattr(image, "filename", None) or "the image"
    if image.width * image.height == 0:
        raise ValueError(f"{label}: image has no pixels" if name else "image has no pixels")
    frames = getattr(image, "n_frames", 1)
    if frames > 1:  # an open multi-frame file given as a PIL image: its current frame is used
        which = "the first" if image.tell() == 0 else f"frame {image.tell()} (the current one)"
        warnings.warn(f"{label} has {frames} frames; only {which} is colorized", UserWarning, stacklevel=2)
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _numeric_gray(image, label)
    if mode == "LAB":
        return _from_lab(image), None
    if mode == "La":  # premultiplied: PIL converts it to RGBA only through LA
        image = image.convert("LA")
    if image.mode in ("RGBA", "RGBa", "LA", "PA") or "transparency" in image.info:
        rgba = np.array(image.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    if mode == "RGB":
        return np.array(image), None  # one writable copy, no intermediate PIL image
    if mode == "L":
        return np.repeat(np.asarray(image)[..., None], 3, axis=-1), None  # likewise
    try:
        return np.array(image.convert("RGB")), None
    except ValueError:
        raise ValueError(f"{label}: images in PIL mode {mode} are not supported; "
                         "convert it to RGB or L first") from None


def _numeric_gray(image: Image.Image, label: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Modes ``I;16*``, ``I`` and ``F`` -> 8-bit gray, scaled as the module docstring says
    (never through ``convert("RGB")``, which clips them to 0..255)."""
    raw = np.asarray(image)
    mode = image.mode
    if mode == "F" and not np.isfinite(raw).all():
        raise ValueError(f"{label}: mode F image has NaN or infinite values")
    lo, hi = float(raw.min()), float(raw.max())
    if mode.startswith("I;16"):
        scale = 1 / 257
    elif mode == "F" and lo >= 0 and hi <= 1:
        scale = 255.0
    elif lo >= 0 and hi <= 255:
        scale = 1.0
    elif lo >= 0 and hi <= 65535:
        scale = 1 / 257
    else:
        raise ValueError(f"{label}: mode {mode} values span {lo:g}..{hi:g}; only 0..255 (8-bit) or "
                         f"0..65535 (16-bit){' or 0..1' if mode == 'F' else ''} are read as gray levels")
    levels = np.multiply(raw, scale, dtype=np.float32)  # float32, never a float64 copy of a big photo
    gray = np.rint(levels, out=levels).clip(0, 255, out=levels).astype(np.uint8)
    key = image.info.get("transparency")  # a 16-bit PNG's transparent gray level
    alpha = None if not isinstance(key, int) else np.where(raw == key, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1), alpha


def _from_lab(image: Image.Image) -> np.ndarray:
    """PIL's 8-bit ``LAB`` -> uint8 sRGB whose L* is the file's (a*b* reduced into the gamut)."""
    raw = np.asarray(image)
    L = torch.from_numpy(raw[..., 0].astype(np.float32) * (100 / 255))
    ab = torch.from_numpy(np.ascontiguousarray(raw[..., 1:]).view(np.int8).astype(np.float32))
    lab = torch.cat((L[None], ab.permute(2, 0, 1)))
    return to_uint8(lab_to_rgb_in_gamut(lab).permute(1, 2, 0)).numpy()


def to_uint8(rgb01: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Float values in [0, 1] (a tensor or an array, any shape) -> uint8 0..255 as an image file
    stores them: times 255, rounded, values outside [0, 1] clipped. The one float-to-8-bit step
    of the package (reading arrays, :func:`_from_array`, refuses out-of-range values instead)."""
    if isinstance(rgb01, torch.Tensor):
        return (rgb01 * 255).round().clamp(0, 255).to(torch.uint8)
    a = np.asarray(rgb01)
    return a if a.dtype == np.uint8 else (np.clip(a, 0, 1) * 255).round().astype(np.uint8)


#: What every reader accepts, as its errors say it.
ACCEPTED = ("a PIL image, an array shaped (H, W), (H, W, 3) or (H, W, 4), a path, or a binary file object "
            "(io.BytesIO)")


def _from_array(image) -> tuple[np.ndarray, np.ndarray | None]:
    what = type(image).__name__
    if image is None or isinstance(image, (bytes, bytearray, memoryview)):
        what = "None" if image is None else f"{what} ({len(image):,} bytes); wrap a file's bytes in io.BytesIO(data)"
        raise TypeError(f"expected an image: {ACCEPTED}; got {what}")
    try:
        a = np.asarray(image)
    except (ValueError, TypeError):  # a ragged list
        a, what = np.empty((), dtype=object), f"{what} (not a rectangular array)"
    if a.dtype == object or a.ndim == 0:  # a number, a dict, a ragged list: not pixels at all
        raise TypeError(f"expected an image: {ACCEPTED}; got {what}")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image shaped (H, W), (H, W, 3) or (H, W, 4), got an array shaped {a.shape}")
    if a.shape[0] * a.shape[1] == 0:
        raise ValueError("image has no pixels")
    a = _to_uint8(a)
    if a.shape[-1] == 4:
        return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3])
    return np.ascontiguousarray(np.broadcast_to(a, (*a.shape[:2], 3))), None


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        bad = a.size - np.count_nonzero(np.isfinite(a))
        if bad:
            raise ValueError(f"float images must be finite: this one has {bad} NaN or infinite values")
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"float images must be in [0, 1], got values in [{a.min():g}, {a.max():g}]")
        out = np.multiply(a, 255, dtype=np.float32)  # float32 even for float64 input
        return np.rint(out, out=out).astype(np.uint8)
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(a / 257), in integers
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    raise ValueError(f"unsupported image dtype {a.dtype}: give uint8, uint16, bool or float in [0, 1]")

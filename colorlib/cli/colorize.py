"""``colorlib colorize``: photos of any size in, colour photos with their own lightness out.

    colorlib colorize old.jpg -o old-color.png
    colorlib colorize scans/ -o colored/
    colorlib colorize - -o - < in.jpg > out.png
"""

from __future__ import annotations

import argparse
import functools
import io
import itertools
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from ..device import DEVICE_HELP, resolve_device
from ..imageio import ALPHA_FORMATS, image_size, output_format, over_white, rgb_and_alpha, save_image
from ..infer import DEFAULT_MAX_PIXELS, colorize, global_features_of, resolve_saturation
from ..io import WriteError, check_writable
from ..model import Colorizer, fold_batchnorm, mix_global
from .common import (
    DEFAULT_MODEL,
    STDIO,
    Input,
    UserError,
    device_option,
    image_inputs,
    open_model,
    printable,
    run_each,
)


def _check_colorize_options(a: argparse.Namespace) -> None:
    if a.output and a.out_dir:
        raise UserError("give -o or --out-dir, not both (--out-dir DIR is -o DIR/)")
    if a.mix is not None and not a.global_image:
        raise UserError("--mix needs --global-image (the photo to mix global features with)")
    if a.mix is not None and not 0 <= a.mix <= 1:
        raise UserError(f"--mix must be in [0, 1], got {a.mix}")
    if a.max_pixels < 0:
        raise UserError(f"--max-pixels must be a number of pixels, or 0 for no bound; got {a.max_pixels}")
    if a.global_image and not Path(a.global_image).is_file():
        why = "not a regular file" if Path(a.global_image).exists() else "no such image file"
        raise UserError(f"{why}: {a.global_image} (--global-image)")


def _open_model(a: argparse.Namespace) -> Colorizer:
    """``--onnx DIR`` (ONNX graphs, :class:`colorlib.onnx.OnnxColorizer`) or ``--model``, folded
    once for every photo (section 3.4), checked against ``--saturation``; else a :class:`UserError`."""
    if a.onnx is not None:
        model = _open_onnx(a)
    else:
        a.model = a.model or DEFAULT_MODEL
        model = fold_batchnorm(open_model(a.model, a.device))
    try:
        resolve_saturation(model, a.saturation)
    except ValueError as e:
        raise UserError(f"--{e}") from None
    return model


def _open_onnx(a: argparse.Namespace):
    if a.model is not None:
        raise UserError("give --model or --onnx, not both (--onnx DIR runs the graphs exported from a model)")
    if resolve_device(a.device).type != "cpu":
        raise UserError("--onnx runs on the CPU (ONNX Runtime): leave out --device")
    try:
        from ..onnx import OnnxColorizer  # the optional extra, checked before any work
    except ImportError as e:
        raise UserError(f"--onnx: {e}") from None
    try:
        return OnnxColorizer(a.onnx)
    except ValueError as e:
        raise UserError(f"--onnx {a.onnx}: {' '.join(str(e).split())}") from None


def _global_features(a: argparse.Namespace, model: Colorizer) -> torch.Tensor | None:
    """The --global-image's global features (None without it), or a :class:`UserError`."""
    if not a.global_image:
        return None
    if model.cfg.variant != "full":
        raise UserError(f"{a.onnx or a.model} is a baseline model: it has no global features to transfer")
    try:
        with warnings.catch_warnings(record=True) as caught:  # a multi-frame file: a note, not Python's warning
            warnings.simplefilter("always", UserWarning)
            g = global_features_of(model, a.global_image)
    except (ValueError, OSError, MemoryError) as e:
        raise UserError(f"--global-image: {' '.join(str(e).split())}") from None
    for w in caught:
        if issubclass(w.category, (UserWarning, RuntimeWarning)):
            text = str(w.message).replace("only the first is colorized", "only the first is used")
            print(f"colorlib colorize: note: --global-image: {printable(text)}", file=sys.stderr)
    return g


def cmd_colorize(a: argparse.Namespace) -> None:
    """Colorize every input of ``a.images``; exit status 1 when any failed (each named on stderr)."""
    _check_colorize_options(a)
    jobs = _colorize_targets(image_inputs(a.images), a.global_image, a.out_dir or a.output, bool(a.out_dir))
    model = _open_model(a)
    other = _global_features(a, model)
    targets = {id(item): target for item, target in jobs}
    if STDIO in targets.values() and sys.stdout.isatty():
        raise UserError("-o - writes a PNG to standard output, which is a terminal: redirect it (> out.png)")
    say = sys.stderr if STDIO in targets.values() else sys.stdout  # stdout carries only the image then

    def work(item: Input) -> None:
        target = targets[id(item)]
        g = other if a.mix is None else mix_global(global_features_of(model, item.source()), other, a.mix)
        try:
            result = colorize(model, _seen_source(item, target), global_features=g, saturation=a.saturation,
                              max_pixels=a.max_pixels or None)
        except MemoryError as e:  # the library's advice names its argument; here it is the option
            raise MemoryError(str(e).replace("pass a smaller max_pixels", "give a smaller --max-pixels")) from None
        if target == STDIO:
            buf = io.BytesIO()
            result.save(buf, format="PNG")
            _to_standard_output(buf.getvalue())
        else:
            save_image(result, target)
        if not a.quiet:
            tqdm.write(f"{item.label} -> {'standard output' if target == STDIO else target}", file=say)

    failed = run_each("colorize", [item for item, _ in jobs], work, progress=not a.quiet)
    if failed or not a.quiet:
        print(f"colorlib colorize: {len(jobs) - failed} written, {failed} failed", file=sys.stderr)
    if failed:
        sys.exit(1)


def _seen_source(item: Input, target: Path | str):
    """What ``colorize`` reads for ``item``: its source, or for a target whose format holds no
    alpha (JPEG, BMP, ...) the input composited over white first, as a viewer shows it. The
    output then keeps the L* of that composite on every pixel; compositing the colorized RGBA
    over white afterwards (as :func:`colorlib.imageio.save_image` must) moved L* by up to about
    4 where the input was semi-transparent, since the colours blended are not the input's."""
    source = item.source()
    if target == STDIO or output_format(target) in ALPHA_FORMATS:
        return source
    rgb, alpha = rgb_and_alpha(source)
    return rgb if alpha is None else over_white(rgb, alpha)


def _to_standard_output(data: bytes) -> None:
    """Write a PNG to standard output and, where that is a pipe, wait until its reader has taken
    every byte: a reader that leaves first (``colorlib colorize x.jpg -o - | head -c 10``) makes
    this image fail (``OSError``), never count as written, though the bytes fitted in the pipe."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        if _reader_left(sys.stdout.fileno()):
            raise BrokenPipeError
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exit's flush is quiet
        raise OSError("standard output was closed before the PNG was read whole") from None


def _reader_left(fd: int) -> bool:
    """For a pipe: wait until its reader has taken every byte written (True if it closed first);
    False at once for anything else (a file, a terminal). On Linux FIONREAD on the
    writing end counts the bytes not yet read; a closed reading end polls as POLLERR."""
    import select
    import stat

    if not stat.S_ISFIFO(os.fstat(fd).st_mode) or not hasattr(select, "poll"):
        return False
    watch = select.poll()
    watch.register(fd, 0)  # POLLERR and POLLHUP are reported whatever is asked for
    while True:
        if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in watch.poll(0)):
            return _unread(fd) > 0
        if _unread(fd) == 0:
            return False
        watch.poll(20)


def _unread(fd: int) -> int:
    """Bytes written to the pipe ``fd`` that its reader has not taken yet (0 where not told)."""
    import fcntl
    import struct
    import termios

    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _colorize_targets(inputs: list[Input], global_image: str | None, out: str | None,
                      out_is_folder: bool = False) -> list[tuple[Input, Path | str | None]]:
    """Each input with where its colorized image goes (``-``: standard output; None for an
    input already known to fail). A file named twice is colorized once. Images found in a
    folder that this run writes are not inputs of it (a second run over a folder does not
    colorize the first run's results).

    Each output is distinct and never an input: where ``STEM-color.png`` is an input or another
    input's output (``a/x.png`` and ``b/x.jpg`` into one folder), the later input gets
    ``STEM-EXT-color.png`` (then ``STEM-EXT-2-color.png``, ...), with a note on stderr.
    Raises :class:`UserError`, before any work, for ``-o FILE`` naming an input photo, and
    those of :func:`_output_place` and :func:`_check_image_target`.
    """
    place = _output_place(inputs, out, out_is_folder)
    once: dict[Path | None, Input] = {}
    for i in inputs:  # the same file named twice: once (standard input is one input anyway)
        once.setdefault(_real(i.path) if i.path else None, i)
    inputs = list(once.values())

    def target(item: Input) -> Path | str:
        if place == STDIO:
            return STDIO
        if place is not None and not place.is_folder:
            return place.path
        stem = "stdin" if item.path is None else item.path.stem
        return (place.path if place else item.path.parent) / f"{stem}-color.png"

    jobs = [(i, None if i.error else target(i)) for i in inputs]
    written = {_real(t) for _, t in jobs if t not in (None, STDIO)}
    jobs = [(i, t) for i, t in jobs if not (i.in_folder and _real(i.path) in written)]
    avoid = {_real(i.path) for i, _ in jobs if i.path} | ({_real(global_image)} if global_image else set())
    if isinstance(place, _Place) and not place.is_folder:  # one input, one named file
        if _real(place.path) in avoid:
            raise UserError(f"refusing to overwrite the input photo {place.path}: give -o another name")
        _check_image_target(place.path, image_size(jobs[0][0].path) if jobs[0][0].path else None)
        return jobs
    taken: set[Path] = set()
    for k, (item, t) in enumerate(jobs):
        if t not in (None, STDIO):
            t = _distinct(item, t, avoid, taken)
            taken.add(_real(t))
            _check_image_target(t)
            jobs[k] = (item, t)
    return jobs


def _real(path: str | os.PathLike) -> Path:
    """The path with every link followed, as far as they lead (``Path.resolve`` raises
    ``RuntimeError`` for links that loop in Python 3.11; such an input fails with one line)."""
    return Path(os.path.realpath(path))


def _distinct(item: Input, t: Path, inputs: set[Path], taken: set[Path]) -> Path:
    """``t``, or where it is an input or already another input's output, the first free name of
    ``STEM-EXT-color.png``, ``STEM-EXT-2-color.png``, ... (a note on stderr says so)."""
    if _real(t) not in inputs | taken:
        return t
    ext = "stdin" if item.path is None else item.path.suffix.lstrip(".").lower() or "file"
    stem = t.name.removesuffix("-color.png")
    names = (f"{stem}-{ext}{'' if n == 1 else f'-{n}'}-color.png" for n in itertools.count(1))
    free = next(t.with_name(n) for n in names if _real(t.with_name(n)) not in inputs | taken)
    why = "is an input" if _real(t) in inputs else "is another input's output"
    print(f"colorlib colorize: note: {t} {why}; {item.label} is written to {free}", file=sys.stderr)
    return free


@dataclass
class _Place:
    """Where ``-o`` puts the results: one file, or a folder of ``STEM-color.png`` files."""

    path: Path
    is_folder: bool


def _output_place(inputs: list[Input], out: str | None, out_is_folder: bool) -> _Place | str | None:
    """What ``-o OUT`` means (None: no -o, each output beside its input).

    ``-`` writes the one input's PNG to standard output. With one input file, a name with an
    image suffix is that file. Otherwise (several inputs, a folder among them, an existing
    folder, a name ending in ``/`` or without a suffix, ``--out-dir``) it is a folder, created
    when missing, that gets ``STEM-color.png`` files. Raises :class:`UserError` for an image
    suffix with several inputs, a suffix that names no format, ``-`` with several inputs, and
    standard input without ``-o``.
    """
    single = len(inputs) == 1 and not inputs[0].in_folder and not (inputs[0].path and inputs[0].path.is_dir())
    if out is None:
        if any(i.path is None for i in inputs):
            raise UserError("reading standard input (-) needs -o: a file, a folder, or - for standard output")
        return None
    if out == STDIO:
        if not single:
            raise UserError("-o - writes one image to standard output: give one input file")
        return STDIO
    path = Path(out)
    if out_is_folder or out.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return _Place(path, is_folder=True)
    known = path.suffix.lower() in Image.registered_extensions()
    if single and not known:
        raise UserError(f"cannot tell the image format of {out}: give a name ending in .png or .jpg "
                        "(or a folder's name ending in /)")
    if not single and known:
        raise UserError(f"-o {out} names one image file, but there are several inputs: "
                        "give a folder (-o DIR/ or --out-dir DIR)")
    return _Place(path, is_folder=not single)


def _check_image_target(path: Path, size: tuple[int, int] | None = None) -> None:
    """Refuse now a colour image that could not be written to ``path`` later: what
    :func:`colorlib.imageio.output_format` refuses (a suffix that names no format, a format
    that would not keep the image, an image of ``size`` too large for it), a format PIL cannot
    write in colour, a place :func:`colorlib.io.check_writable` refuses. Raises :class:`UserError`."""
    try:
        fmt = output_format(path, size)
    except ValueError as e:
        raise UserError(str(e)) from None
    if not _writes_colour(fmt):
        raise UserError(f"PIL cannot write {fmt} images in colour ({path}): "
                        "give a name ending in .png or .jpg")
    try:
        check_writable(path)
    except WriteError as e:
        raise UserError(str(e)) from None


@functools.cache
def _writes_colour(fmt: str) -> bool:
    """Whether PIL can encode an RGB image as ``fmt`` (:func:`colorlib.imageio.save_image`
    composites RGBA over white where the format has no alpha, so RGB is what each must take)."""
    if fmt not in Image.SAVE:
        return False
    try:
        Image.new("RGB", (1, 1)).save(io.BytesIO(), format=fmt)
    except (OSError, ValueError, KeyError):
        return False
    return True


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``colorlib colorize`` and its options."""
    c = sub.add_parser("colorize", help="colorize black-and-white (or any) photos",
                       description="Colorize photos of any size. The output keeps each input's lightness;\n"
                                   "only a*b* come from the network. Transparent input is colorized as seen\n"
                                   "over white; PNG, WebP and TIFF outputs keep its alpha, other formats get\n"
                                   "the input over white, whose L* they keep. Every input that\n"
                                   "can be read is colorized; each one that cannot gets one line on stderr,\n"
                                   "and the exit status is then 1 (2: a usage mistake, found before any work).\n"
                                   "Lightness is kept in the file too: lossless formats exactly, WebP lossless,\n"
                                   "JPEG at quality 100 4:4:4 (L* within 1.5), AVIF 4:4:4 (within 1.0); GIF,\n"
                                   "PDF, EPS and ICNS are refused, ICO holds up to 256x256. Inputs with the\n"
                                   "same name get distinct outputs (STEM-EXT-color.png, with a note).",
                       epilog="examples:\n"
                              "  colorlib colorize old.jpg -o old-color.png     # one file\n"
                              "  colorlib colorize scans/ -o colored/           # every image in scans/\n"
                              "  colorlib colorize - -o - < in.jpg > out.png    # a pipeline (PNG out)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (any mode; colour input is reduced to its lightness L* first), folders "
                        "(their image files), or - for one image from standard input")
    c.add_argument("-o", "--output", metavar="OUT",
                   help="with one input and an image suffix (.png, .jpg, ...): that file; - : PNG on "
                        "standard output; otherwise a folder (created if missing) for IMAGE-color.png "
                        "files (default: beside each input)")
    c.add_argument("--out-dir", metavar="DIR",
                   help="write IMAGE-color.png files into this folder (as -o DIR/)")
    c.add_argument("--model",
                   help=f"shipped model name, .safetensors/.pt file, or run folder (default {DEFAULT_MODEL})")
    c.add_argument("--global-image", help="take the global features from this photo (style transfer)")
    c.add_argument("--mix", type=float, help="with --global-image, in [0, 1]: 0 = own global features, "
                                              "1 = the other's")
    c.add_argument("--saturation", type=float,
                   help="factor on the predicted a*b*, in [0, 4] (default: the model's own, see its card; "
                        "1.0 = the network's own output)")
    c.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"the network sees at most N pixels (a larger photo is scaled down for it; a*b* are "
                        f"upsampled to full size); 0: no bound (default {DEFAULT_MAX_PIXELS:,})")
    c.add_argument("--device", type=device_option, default="cpu", help=f"{DEVICE_HELP} (default cpu)")
    c.add_argument("--onnx", metavar="DIR",
                   help="run a folder of ONNX graphs (written by colorlib export-onnx) with ONNX Runtime on "
                        "the CPU instead of --model on PyTorch; same colours to within one level "
                        "(pip install \"colorlib[onnx]\")")
    c.add_argument("-q", "--quiet", action="store_true", help="print only failures and their count")
    c.set_defaults(func=cmd_colorize)

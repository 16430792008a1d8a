"""What every ``colorlib`` command shares: one-line errors, the model and device options, output
checks, the strict JSON writer, and the batch contract of ``colorize`` and ``classify``.

The batch contract: every input that can be read is processed; each one that cannot gets one
line on stderr naming it and why, and the run goes on (:func:`run_each`). A usage mistake is a
:class:`UserError`, found before any work: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import sys
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from PIL import Image
from tqdm.auto import tqdm

from ..checkpoint import CheckpointError, load_model
from ..device import resolve_device
from ..io import WriteError, check_writable, write_json
from ..model import Colorizer

DEFAULT_MODEL = "miniplaces-full"
STDIO = "-"  # as an input: read one image from standard input; as -o: write PNG to standard output


def printable(text: object) -> str:
    """``text`` as it may reach a terminal: control, format and separator characters (escape
    sequences, newlines, a right-to-left override, bytes a file name holds that are not UTF-8)
    shown as escapes (``\\x1b``, ``\\n``, ``\\u202e``, ``\\udcff``), never sent. What a file
    or a model's metadata names is printed through it; other characters, accents and CJK
    included, are kept."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _UNPRINTABLE
                   else c for c in str(text))


#: Unicode categories :func:`printable` escapes: control, format (bidi overrides, zero-width),
#: surrogate (undecodable bytes of a file name), unassigned, line and paragraph separators.
_UNPRINTABLE = {"Cc", "Cf", "Cs", "Cn", "Zl", "Zp"}


class UserError(Exception):
    """A mistake in the command line found before any work: printed as one line, exit status 2."""


class CommandFailed(Exception):
    """Work that was started and could not be done (an export torch refuses): one line, exit status 1."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``colorlib CMD: error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def device_option(name: str) -> str:
    """argparse ``type=`` of every ``--device``: a name :func:`colorlib.device.resolve_device`
    accepts (``cpu``, ``cuda``, ``cuda:N``, ``auto``, ``mps`` where PyTorch has it), exactly as
    written. Any other name (``CPU``, `` cpu``, a typo), or a GPU this PyTorch cannot see, is a
    usage error before any work."""
    try:
        resolve_device(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def open_model(spec: str, device: str = "cpu") -> Colorizer:
    """:func:`colorlib.checkpoint.load_model` (a shipped name, weights file or run folder), with a
    file it refuses as a :class:`UserError`."""
    if not spec.strip():  # else read as the current folder ('. holds neither model.safetensors ...')
        raise UserError("--model is empty: give a shipped model's name (colorlib info --list), a weights "
                        "file or a run folder")
    try:
        return load_model(spec, resolve_device(device))
    except CheckpointError as e:
        raise UserError(str(e)) from None


def check_outputs(*paths: str | Path | None) -> list[Path]:
    """The given output files (``None`` and ``""`` left out), each checked now
    (:func:`colorlib.io.check_writable`); raises :class:`UserError` for a place that cannot be
    written or a file named twice."""
    given = [Path(p) for p in paths if p]
    for p in given:
        try:
            check_writable(p)
        except WriteError as e:
            raise UserError(str(e)) from None
    if len({p.resolve() for p in given}) < len(given):
        raise UserError("the same file is named for two outputs")
    return given


def check_folder(path: str | Path, option: str) -> Path:
    """A folder that a command writes into later (created then when missing), checked now as
    :func:`colorlib.io.check_writable` checks a file in it; raises :class:`UserError` (``OPTION
    PATH: why``) for a file in its place or a place where nothing can be created."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path}: not a folder")
    probe = path / ".colorlib-check"
    try:
        check_writable(probe)
    except WriteError as e:
        raise UserError(f"{option} {path}: {str(e).removeprefix(f'could not write {probe}: ')}") from None
    return path


def available_memory() -> int | None:
    """Bytes of memory free for a new process (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def write_strict_json(path: str | Path, obj, indent: int | None = 1) -> None:
    """:func:`colorlib.io.write_json`; a NaN or infinity in ``obj`` is a :class:`WriteError` too
    (strict JSON never holds them), so it is reported in one line like a full disk."""
    try:
        write_json(path, obj, indent=indent)
    except ValueError as e:
        raise WriteError(f"could not write {path}: {e} (NaN or infinity; strict JSON has neither)") from None


# -- a batch of inputs: each one that can be read is processed; each one that cannot, one line --
@dataclass
class Input:
    """One image of a batch: named on the command line, or found in a folder named there."""

    name: str  # as the user gave it (``-`` for standard input)
    path: Path | None  # None: standard input
    in_folder: bool = False  # found in a folder given as an input
    error: str | None = None  # why it cannot be read, known while listing the inputs
    _stdin: bytes | None = None

    @property
    def label(self) -> str:
        """The name messages give it (:func:`printable`)."""
        return "standard input" if self.path is None else printable(self.name)

    def source(self) -> Path | io.BytesIO:
        """What the library reads: the path, or standard input's bytes (read once)."""
        if self.path is not None:
            return self.path
        if self._stdin is None:
            self._stdin = sys.stdin.buffer.read()
        if not self._stdin:
            raise ValueError("standard input is empty")
        data = io.BytesIO(self._stdin)
        data.name = "standard input"  # what messages call it (imageio reads .name)
        return data


def image_inputs(args: list[str]) -> list[Input]:
    """The inputs ``args`` name: a file; a folder, which stands for the image files in it (sorted
    by name; hidden files and names PIL cannot open are left out; an empty one is a failed
    input); ``-``, one image from standard input. Something that is neither a file nor a folder
    (a device such as ``/dev/null``, a pipe) is a failed input, never read. Raises
    :class:`UserError` for ``-`` given twice."""
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    inputs: list[Input] = []
    for arg in args:
        path = Path(arg)
        if arg == STDIO:
            inputs.append(Input(arg, None))
        elif path.is_dir():
            inputs += _folder_inputs(arg, path, readable)
        elif path.exists() and not path.is_file():
            inputs.append(Input(arg, path, error=f"{arg} is not a regular file (a device, pipe or socket)"))
        elif (broken := _broken_link(path)) is not None:
            inputs.append(Input(arg, path, error=f"{arg}: {broken}"))
        else:
            inputs.append(Input(arg, path))  # a missing file fails when it is read, with the others
    if sum(i.path is None for i in inputs) > 1:
        raise UserError("- (standard input) can be given only once")
    return inputs


def _folder_inputs(arg: str, folder: Path, readable: set[str]) -> list[Input]:
    """The image files of a folder given as an input, or one failed input saying why there are none."""
    try:
        names = sorted(f for f in folder.iterdir() if f.suffix.lower() in readable and not f.name.startswith("."))
    except OSError as e:
        return [Input(arg, folder, error=f"cannot list the folder {arg}: {e.strerror or e}")]
    found = []
    for f in names:
        if f.is_file():
            found.append(Input(str(f), f, in_folder=True))
        elif (broken := _broken_link(f)) is not None:  # an image's name that leads nowhere: said, not skipped
            found.append(Input(str(f), f, in_folder=True, error=f"{f}: {broken}"))
    if not found:
        return [Input(arg, folder, error=f"{arg}: no image files in this folder")]
    return found


def _broken_link(path: Path) -> str | None:
    """Why ``path``, a symbolic link, leads to no file (its target is missing, or links loop back);
    None for anything else (a missing file is reported when it is read)."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link that loops (it leads back to itself)"
        if e.errno == errno.ENOENT:
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        return f"a symbolic link that cannot be followed: {e.strerror or e}"
    return None


def _one_line(item: Input, e: BaseException | str) -> str:
    """``e`` as one line that names the input (put in front unless the message names it)."""
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, BaseException) and not isinstance(e, (ValueError, OSError, MemoryError)):
        text = f"{type(e).__name__}: {text}"  # an unexpected kind: say which, so it can be reported
    name = item.label if item.path is None else " ".join(item.name.split())  # "-" is in most texts
    named = name in text  # compared as text has it: a newline in a file name is a space there too
    return text if named else f"{item.label}: {text}"


class Interrupted(Exception):
    """Ctrl-C during a batch: printed as one line (how far it got), exit status 130."""


def run_each(command: str, inputs: list[Input], work: Callable[[Input], None], progress: bool = True) -> int:
    """Call ``work(item)`` for every input; one that fails never stops the others.

    A failure prints one line on stderr, ``colorlib COMMAND: error: INPUT: why``; each
    ``UserWarning`` or ``RuntimeWarning`` raised for an input that succeeds (a multi-frame file,
    a damaged EXIF block, a very large image) prints one ``note:`` line. ``BrokenPipeError``
    (the reader of standard output went away) stops the batch; Ctrl-C stops it with
    :class:`Interrupted` ("stopped after N of M ...": every file written so far is whole, since
    each is renamed into place only when complete). ``progress``: a bar on stderr for three
    inputs or more, when stderr is a terminal. Returns how many inputs failed.
    """
    done = failed = 0
    hide = None if progress and len(inputs) > 2 else True  # tqdm: None = only on a terminal
    with tqdm(inputs, desc=command, unit="image", disable=hide) as bar:
        try:
            for item in bar:
                failed += not _run_one(command, item, work)
                done += 1
        except KeyboardInterrupt:
            raise Interrupted(f"stopped after {done} of {len(inputs)} ({done - failed} done, {failed} failed) "
                              "by Ctrl-C; the files written are whole") from None
    return failed


def _run_one(command: str, item: Input, work: Callable[[Input], None]) -> bool:
    """:func:`run_each` for one input: True when it succeeded; its error or notes printed."""
    reason = item.error
    if reason is None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)  # every input's own, not once per run
            try:
                work(item)
            except BrokenPipeError:
                raise
            except Exception as e:  # noqa: BLE001 - whatever one photo's decoder raises fails that photo
                reason = _one_line(item, e)
    if reason is not None:
        tqdm.write(f"colorlib {command}: error: {printable(reason)}", file=sys.stderr)
        return False
    notes = [_one_line(item, str(w.message)) for w in caught if issubclass(w.category, (UserWarning, RuntimeWarning))]
    for note in dict.fromkeys(notes):
        tqdm.write(f"colorlib {command}: note: {printable(note)}", file=sys.stderr)
    return True

"""Files that appear whole or not at all.

Every file colorlib writes (images, reports, JSON, CSV, checkpoints, exported models) goes
through :func:`atomic_write`: it is written to a temporary file in the same folder, flushed to
disk, then renamed over the target, so a full disk or a crash leaves either the previous file
or nothing, never a truncated one. :func:`check_writable` refuses a place that cannot be
written before any long work starts.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class WriteError(OSError):
    """A file that could not be written; the message is one line naming the path and why."""


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the OS allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(e: BaseException) -> str:
    full = getattr(e, "errno", None) in _FULL or (
        not isinstance(e, OSError) and "unexpected pos" in str(e))  # torch's zip writer on a full disk
    if full:
        return "no space left on the device"
    return str(getattr(e, "strerror", None) or e).splitlines()[0] if str(e) else type(e).__name__


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write a temporary file beside ``path``, then rename it to ``path``.

    Missing parent folders are created, but only inside an existing folder other than the
    filesystem root (:func:`missing_folders`). On any failure the temporary file is removed, an
    existing ``path`` is left as it was, and :class:`WriteError` is raised with one line:
    ``could not write PATH: REASON``.
    """
    path = Path(path)
    missing_folders(path)  # refuses folders at the filesystem root before creating anything
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise WriteError(f"could not write {path}: {_reason(e)}") from e
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before it takes the old file's place (power loss)
            os.fsync(f.fileno())
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)  # mkstemp makes 0600; the file gets the mode a plain open() would give
        os.replace(tmp, path)
    except BaseException as e:  # noqa: BLE001 - torch.save reports a full disk as a RuntimeError
        tmp.unlink(missing_ok=True)
        if not isinstance(e, Exception):  # Ctrl-C: no temporary file left behind, then stop
            raise
        kept = " (the previous file is intact)" if path.exists() else ""
        raise WriteError(f"could not write {path}: {_reason(e)}{kept}") from e
    _fsync_dir(path.parent)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj, indent: int | None = 1) -> Path:
    """Write ``obj`` as strict JSON (a NaN or infinity raises ``ValueError``) atomically."""
    return write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def missing_folders(path: str | os.PathLike) -> tuple[Path, list[Path]]:
    """``(the nearest existing folder above path, the folders below it that writing path
    creates, outermost first)``.

    Raises :class:`WriteError` when that nearest existing thing is a file, and when folders
    would have to be created directly in the filesystem root: ``-o /nonexistent/x.png`` is far
    more likely a typo than a wish for a new top-level folder, so colorlib creates missing
    folders only inside an existing folder other than the root."""
    path = Path(path)
    parent, missing = path.parent, []
    while not os.path.lexists(parent) and parent.parent != parent:
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise WriteError(f"could not write {path}: {parent} is not a folder")
    top = Path(os.path.abspath(parent))  # "." of a relative path is a folder, not the root
    if missing and top.parent == top:
        raise WriteError(f"could not write {path}: the folder {missing[-1]} does not exist (colorlib "
                         f"creates missing folders only inside an existing folder other than {parent})")
    return parent, missing[::-1]


def check_writable(path: str | os.PathLike) -> None:
    """Raise :class:`WriteError` now if ``path`` could not be written later: ``path`` itself a
    folder, a parent that is a file, missing folders at the filesystem root
    (:func:`missing_folders`), or a folder in which no file can be created. That last check
    creates and removes a hidden empty file there: permission bits do not tell (root may
    write anywhere ``os.access`` says, yet nothing can be created in ``/proc`` or ``/sys``).
    Missing parents are fine inside a folder that passes it (they are created on write)."""
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"could not write {path}: it is a folder")
    parent, _ = missing_folders(path)
    try:
        fd, name = tempfile.mkstemp(prefix=".colorlib-check.", dir=parent)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        why = (f"no permission to write in {parent}" if e.errno in (errno.EACCES, errno.EPERM)
               else f"no file can be created in {parent} ({_reason(e)})")
        raise WriteError(f"could not write {path}: {why}") from None
    if path.exists() and not path.is_file():
        raise WriteError(f"could not write {path}: it is not a regular file (a device, pipe or socket)")

"""Run management for :func:`colorlib.train.train`: what a run needs around its loop.

* the processes: rank and world size under ``torchrun``, each process's device, the DDP process
  group and the backends' speed flags (:func:`processes`, :func:`distributed`);
* the run folder: checked before any work, never another run's (:func:`check_run_folder`), its
  ``config.json`` (:func:`start_run_folder`) and CSV logs (``log.csv`` per step, ``val.csv`` per
  validation pass), cut back to the checkpoint's step on resume (:func:`truncate_log`);
* the per-step losses, kept on the device and written a window at a time, with the guard that
  stops a run whose loss is no longer finite (:class:`LossLog`, :func:`check_finite`);
* stopping on Ctrl-C or SIGTERM at a step every process agrees on (:class:`StopSignals`);
* a finished run folder's figures for ``colorlib info`` (:func:`run_summary`).

Nothing here knows the model or the loss (not even the log's columns: rows are written with the
keys they come with); :mod:`colorlib.train` holds those.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from .checkpoint import CheckpointError, check_resume, read_checkpoint
from .device import resolve_device
from .io import WriteError, check_writable, write_json, write_text


# -- the processes ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Processes:
    """This process's place in a run: ``rank`` of ``world`` processes (1 without torchrun) and
    the device it trains on."""

    rank: int
    world: int
    device: torch.device


def processes(device: str) -> Processes:
    """Read torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and resolve ``device``; creates nothing.

    Under DDP on CUDA each process takes its own GPU, ``cuda:LOCAL_RANK``. Raises ``ValueError``
    (one line, from :func:`colorlib.device.resolve_device`) for a device this machine lacks.
    """
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    resolved = resolve_device(device)
    if world > 1 and resolved.type == "cuda":
        resolved = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return Processes(rank, world, resolved)


@contextlib.contextmanager
def distributed(procs: Processes) -> Iterator[None]:
    """Join the DDP process group (NCCL on CUDA, gloo on the CPU) when there are several processes,
    set the backends' flags, and leave the group when the run ends normally.

    A group made by someone else (a notebook, a test) is used and left standing. After an error
    the group is left as it is: the other processes may be anywhere, so waiting for them could hang.
    """
    owns_group = False
    if procs.world > 1:
        if procs.device.type == "cuda":  # this process's GPU first, so NCCL binds to it
            torch.cuda.set_device(procs.device)
        if not dist.is_initialized():
            cuda = procs.device.type == "cuda"
            dist.init_process_group("nccl" if cuda else "gloo", device_id=procs.device if cuda else None)
            owns_group = True
    configure_backends(procs.device)
    yield
    if procs.world > 1:
        dist.barrier()
        if owns_group:
            dist.destroy_process_group()


def configure_backends(device: torch.device) -> None:
    """Speed flags for training on ``device``, which change no result beyond rounding: on the CPU
    denormal floats flushed to zero (ADADELTA's first updates are tiny, and as denormals many times
    slower); on CUDA cuDNN's fastest algorithms, and TF32 for float32 matrix products."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


# -- stopping on a signal -----------------------------------------------------------------------
class StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM, while the ``with`` block runs, ask the run to stop instead of
    killing it: the current step finishes, then :meth:`requested` says so and the run checkpoints.

    Every process installs the handlers (torchrun passes Ctrl-C on to each of them). Under DDP
    the processes agree, at every ``every``-th step and at step ``last``, on whether any of them
    saw a signal, so all stop at the same step. Outside the main thread (some notebook runners)
    no handler can be installed and Ctrl-C raises ``KeyboardInterrupt`` as usual.
    """

    def __init__(self, procs: Processes, every: int, last: int):
        self.procs, self.every, self.last = procs, every, last
        self.signal: int | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if hasattr(signal, "SIGTERM"):
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._old[sig] = signal.signal(sig, self._seen)
                except ValueError:  # not the main thread
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _seen(self, signum: int, frame) -> None:
        self.signal = signum

    def requested(self, step: int) -> bool:
        """Whether to stop after ``step``: a signal seen by this process (by any, under DDP)."""
        if self.procs.world == 1:
            return self.signal is not None
        if step % self.every and step != self.last:
            return False
        flag = torch.tensor([float(self.signal is not None)], device=self.procs.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


# -- the run folder -----------------------------------------------------------------------------
def check_run_folder(out: Path, resume: bool, rank: int, train_meta: dict) -> dict | None:
    """Check the run folder before any work; with ``resume``, return its checkpoint's state.

    Creates nothing: the folder appears with the run's first file (:func:`start_run_folder`), so a
    run that fails while loading its data leaves no empty folder behind. ``train_meta`` is the run's
    ``meta["train"]``; a checkpoint written with other options is refused here, before any data is
    read. Raises ``FileExistsError`` (``out`` is a file, or holds another run),
    :class:`~colorlib.checkpoint.CheckpointError` (nothing to resume, a refused or unreadable
    checkpoint, another configuration) and :class:`~colorlib.io.WriteError` (``out`` not writable).
    """
    ckpt = out / "checkpoint.pt"
    if resume:
        if not ckpt.exists():
            raise CheckpointError(f"--resume: {ckpt} does not exist; nothing to resume")
        state = read_checkpoint(ckpt)
        check_resume(ckpt, state, train_meta)
        return state
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a run folder")
    # rank 0 alone: the others may start after it has begun writing to the folder
    if rank == 0 and out.exists() and any(out.iterdir()):
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out "
            "(a run never overwrites another run's folder)"
        )
    if rank == 0:
        check_writable(out / "config.json")
    return None


def start_run_folder(out: Path, meta: dict) -> None:
    """Write ``config.json``, the run's first file; if that fails, remove the folder made for it
    (a failed run leaves nothing) and raise :class:`~colorlib.io.WriteError`."""
    fresh = not out.exists()
    try:
        write_json(out / "config.json", meta)
    except WriteError:
        if fresh and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def truncate_log(path: Path, step: int) -> None:
    """Drop a CSV log's rows from ``step`` on, so a resumed run's log equals an uninterrupted one."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if int(r["step"]) < step]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=reader.fieldnames or [])
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` (dicts with the same keys, in order: the columns) to a CSV log, writing
    its header first if new."""
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)


# -- the loss log and its guard -------------------------------------------------------------------
class LossLog:
    """The per-step losses of a run, collected on the device and written a window at a time.

    :meth:`add` keeps a step's values as a device tensor, so the GPU never waits for Python;
    :meth:`flush` is the one host sync per window. A window's images/s is measured from one flush
    to the next over ``images_per_step`` images a step (all processes together). Rows go to
    ``path`` (``log.csv``; None on the processes that do not write).
    """

    def __init__(self, path: Path | None, images_per_step: int, steps_per_epoch: int):
        self.path, self.images_per_step, self.steps_per_epoch = path, images_per_step, steps_per_epoch
        self._pending: list[tuple[int, list[str], torch.Tensor]] = []
        self._since = time.perf_counter()

    def add(self, step: int, values: dict[str, torch.Tensor]) -> None:
        """Keep step ``step``'s named values (0-d tensors on one device: the loss terms, the LR)."""
        self._pending.append((step, list(values), torch.stack(list(values.values()))))

    def flush(self) -> list[dict]:
        """Write the window's rows (``step``, ``epoch``, the values :meth:`add` was given by name,
        ``images_per_s``) and return them; [] when empty."""
        if not self._pending:
            return []
        values = torch.stack([v for *_, v in self._pending]).tolist()
        now = time.perf_counter()
        ips = round(len(values) * self.images_per_step / max(now - self._since, 1e-9), 1)
        rows = [dict(step=s, epoch=round(s / self.steps_per_epoch, 4), **dict(zip(names, v)), images_per_s=ips)
                for (s, names, _), v in zip(self._pending, values)]
        self._pending.clear()
        self._since = now
        if self.path is not None:
            append_rows(self.path, rows)
        return rows


def check_finite(rows: list[dict]) -> None:
    """The finite-loss guard: raise ``FloatingPointError`` (one line) at the first row with a value
    that is NaN or infinite. Checked before every checkpoint, so the last one never holds such weights."""
    bad = next((r["step"] for r in rows if not all(map(math.isfinite, r.values()))), None)
    if bad is not None:
        raise FloatingPointError(f"loss is not finite at step {bad}; stopping (the last checkpoint "
                                 "is from before it)")


# -- a run folder's figures -------------------------------------------------------------------
def _read_rows(path: Path) -> list[dict]:
    """A log CSV as dicts of numbers (``step`` an int, the rest floats; a non-finite value None).
    Rows whose ``step`` or ``images`` is not a whole number (a damaged or hand-edited file) are
    left out; a file that is not a regular file (a pipe) is never read."""
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error):
        return []

    def number(k: str, v):
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = math.nan
        if k in ("step", "images"):
            if not (math.isfinite(x) and x == int(x) and x >= 0):
                raise ValueError(k)
            return int(x)
        return x if math.isfinite(x) else None

    kept = []
    for r in rows:
        try:
            kept.append({k: number(k, v) for k, v in r.items() if k is not None})
        except ValueError:
            continue
    return kept


def _counts(where: Path, section: dict, keys: tuple[str, ...]) -> dict:
    """``section`` (a run's ``train`` or ``run`` dict), checked: each of ``keys`` it has is a
    whole number >= 0 or None. Raises :class:`CheckpointError` (one line naming ``where``)."""
    for k in keys:
        v = section.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise CheckpointError(f"{where}: its run's {k} is {str(v)[:40]!r}, not a whole number")
    return section


def run_summary(folder: str | os.PathLike, meta: dict | None = None) -> dict | None:
    """The figures of a run folder made by :func:`colorlib.train.train`, or ``None`` if ``folder``
    is not one.

    ``meta``: the run's meta as its model file or checkpoint holds it (``model.meta`` of
    :func:`colorlib.checkpoint.load_model`); else read from ``checkpoint.pt``, else
    ``config.json``. Returns strict-JSON data with the keys of a shipped model's
    ``meta["training"]``: ``steps``, ``images_seen``, ``epochs``, ``train_images``, ``wall_s``
    (seconds of the training loop, summed over resumed parts; None for runs from before it was
    recorded), ``final`` (the last log.csv row: losses, lr, images/s), plus ``total_steps``,
    ``finished``, ``device`` and ``val`` (the last val.csv row, or None). Raises
    :class:`colorlib.checkpoint.CheckpointError` for a refused or unreadable checkpoint.
    """
    folder = Path(folder)
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        saved = json.loads(config.read_bytes())
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return None
    if not isinstance(saved, dict) or "train" not in saved:
        return None
    source = folder / "checkpoint.pt"
    if not (meta and "run" in meta) and source.is_file():
        meta = read_checkpoint(source).get("meta", {})
    parts = {"config.json run": saved.get("run") or {}, "config.json train": saved["train"],
             "run": (meta or {}).get("run") or {}, "train": (meta or {}).get("train") or {}}
    for name, part in parts.items():
        if not isinstance(part, dict):
            raise CheckpointError(f"{folder}: its {name} is not a table of settings ({type(part).__name__})")
    counts = ("step", "total_steps", "steps_per_epoch", "train_images", "batch_size", "world_size")
    run = _counts(folder, {**parts["config.json run"], **parts["run"]}, counts)
    tc = _counts(folder, {**parts["config.json train"], **parts["train"]}, counts)
    log = _read_rows(folder / "log.csv")
    val = _read_rows(folder / "val.csv")
    steps = run.get("step")
    if steps is None:  # an older run: as far as its log goes
        steps = log[-1]["step"] + 1 if log else 0
    log = [r for r in log if r["step"] < steps]  # rows past the last checkpoint were not kept
    per_epoch = run.get("steps_per_epoch")
    if not per_epoch:
        last = next((r for r in reversed(log) if r.get("epoch")), None)
        per_epoch = last["step"] / last["epoch"] if last else None
    total = run.get("total_steps")
    return {
        "steps": steps,
        "images_seen": steps * tc.get("batch_size", 0) * tc.get("world_size", 1),
        "epochs": round(steps / per_epoch, 4) if per_epoch else None,
        "train_images": run.get("train_images"),
        "wall_s": run.get("wall_s"),
        "final": log[-1] if log else None,
        "total_steps": total,
        "finished": steps >= total if total else None,
        "device": run.get("device"),
        "val": next((v for v in reversed(val) if v["step"] <= steps), None),
    }

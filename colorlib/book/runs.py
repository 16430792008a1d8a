"""Models for a page: the shipped ones, their training logs, and "load the trained model if it
exists, else train it" for the runs a chapter makes itself."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..checkpoint import finish_run, load_model, models_dir
from ..data import DecodedImages
from ..model import Colorizer
from ..train import Callback, TrainConfig, train
from .env import BookEnv


def model(name: str, env: BookEnv | None = None) -> Colorizer:
    """A shipped model by name (``miniplaces-full``, see ``colorlib/models``), on the chapter's
    device (the CPU without ``env``), in eval mode. Raises
    :class:`colorlib.checkpoint.CheckpointError` for an unknown name."""
    return load_model(name, "cpu" if env is None else env.device)


def read_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A training log CSV (``log.csv`` / ``val.csv`` of a run, or ``colorlib/models/logs/*.csv``)
    as float columns by header name (``step``, ``loss``, ``colour_loss``, ...); empty for a log
    without rows."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def shipped_log(name: str, val: bool = False) -> dict[str, np.ndarray]:
    """Training (or, with ``val``, validation) log of a shipped model, from ``colorlib/models/logs``."""
    return read_log(models_dir() / "logs" / f"{name}{'.val' if val else ''}.csv")


def load_or_train(
    run_dir: str | os.PathLike,
    tc: TrainConfig,
    data: tuple[DecodedImages, DecodedImages | None] | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[Colorizer, dict[str, np.ndarray], dict[str, np.ndarray], bool]:
    """Load the model a run folder holds, else train it there: the pattern for long runs.

    A folder with ``model.safetensors`` is loaded. Otherwise the folder (an unfinished run, if
    any) is removed and :func:`colorlib.train.train` runs ``tc`` on ``data`` (decoded
    ``(train, val)``; None: load what ``tc`` names) with ``callbacks``; its final checkpoint
    becomes ``model.safetensors`` (float32) and the checkpoint, large with the optimizer
    state, is deleted. Delete the folder to train again.

    Returns ``(model, log, val, trained)``: the model in eval mode, the run's training and
    validation log columns (:func:`read_log`; ``val`` empty without validation) and whether it
    was trained now. A run stopped by the user (Ctrl-C, the notebook's stop button) raises
    ``KeyboardInterrupt`` and leaves the folder unfinished, so the next call trains it again.
    """
    run_dir = Path(run_dir)
    weights = run_dir / "model.safetensors"
    trained = False
    if not weights.exists():
        if run_dir.exists():  # an unfinished run: start it again from scratch
            shutil.rmtree(run_dir)
        result = train(tc, run_dir, callbacks=tuple(callbacks), progress=False, data=data)
        if result.interrupted:
            raise KeyboardInterrupt(f"training in {run_dir} was stopped at step {result.steps}; "
                                    "run the cell again to train it from the start")
        finish_run(run_dir)
        (run_dir / "checkpoint.pt").unlink()  # weights are enough; the optimizer state is large
        trained = True
    m = load_model(weights)
    log = read_log(run_dir / "log.csv")
    val = read_log(run_dir / "val.csv") if (run_dir / "val.csv").exists() else {}
    return m, log, val, trained

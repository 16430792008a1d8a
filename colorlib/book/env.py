"""The setup cell of every chapter: seed, device, fast mode, where the data and models are.

Every chapter of the book opens with::

    from colorlib import book

    env = book.setup(seed=0)
    env

The same cell at the top of every page (the pattern of phlippe/uvadlc_notebooks) makes a
chapter rerunnable on its own and makes the two modes, fast (``COLORLIB_FAST=1``: CI and
laptops) and full (a GPU machine), differ in one place: :meth:`BookEnv.pick`.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import matplotlib
import numpy as np
import torch

from .. import data as D
from ..checkpoint import available_models, models_dir
from ..device import cpu_name, device_name, resolve_device

T = TypeVar("T")

#: Figure defaults for every page: small type, 96 dpi (pages are read on screens).
RC_PARAMS = {"figure.dpi": 96, "savefig.dpi": 96, "axes.titlesize": 9, "figure.titlesize": 10,
             "font.size": 9}


def fast_mode() -> bool:
    """Whether ``COLORLIB_FAST`` is set to ``1``/``true``/``yes``/``on`` (CI, laptops): fewer
    steps and smaller subsets, the same data and models."""
    return os.environ.get("COLORLIB_FAST", "").strip().lower() in ("1", "true", "yes", "on")


def hardware(device: torch.device) -> str:
    """The hardware a page ran on, as a reader can compare it: the GPU's name for a CUDA
    ``device``, else the CPU's model and its logical core count. Never a path or a load."""
    if device.type == "cuda":
        return f"the GPU {device_name(device)}"
    return f"the CPU ({cpu_name()}, {os.cpu_count()} logical cores)"


def short_path(p: Path | None, root: Path) -> str:
    """``p`` relative to ``root`` for printing on a page (no absolute path of the machine that
    built the book); ``"not found"`` for None; ``p`` itself when no relative path exists
    (another drive on Windows)."""
    if p is None:
        return "not found"
    try:
        return os.path.relpath(p, root)
    except ValueError:
        return str(p)


@dataclass
class BookEnv:
    """Paths, seed, device and mode of one chapter run (what :func:`setup` returns)."""

    root: Path  # the repository (colorlib/ and book/ live here)
    data: Path | None  # data root holding miniplaces/ and historical/; None on a bare machine
    models: Path  # shipped models (colorlib/models, or $COLORLIB_MODELS)
    fast: bool  # COLORLIB_FAST: small subsets and few steps
    device: torch.device
    seed: int

    @property
    def miniplaces(self) -> Path | None:
        """``<data>/miniplaces`` when it holds the validation split (``val.tar.gz`` or ``val/``)."""
        if self.data is None:
            return None
        d = self.data / "miniplaces"
        return d if (d / "val.tar.gz").exists() or (d / "val").is_dir() else None

    @property
    def historical(self) -> Path | None:
        """``<data>/historical`` when it holds ``*.jpg`` photographs (chapter 10)."""
        d = None if self.data is None else self.data / "historical"
        return d if d is not None and any(d.glob("*.jpg")) else None

    @property
    def gpu(self) -> bool:
        """Whether the chapter runs on a CUDA GPU (long training runs need one)."""
        return self.device.type == "cuda"

    def pick(self, fast: T, full: T) -> T:
        """``fast`` in fast mode, else ``full``: the one place where the two modes differ."""
        return fast if self.fast else full

    def ran_on(self) -> str:
        """One sentence for a page saying what it was executed on and in which mode, and what a
        full run on a GPU changes (item 5 of issue 15: generated when the page runs)."""
        mode = ("fast mode (`COLORLIB_FAST=1`: small subsets, few steps)" if self.fast
                else "full mode (every photo, full-length runs)")
        where = f"This page was executed on {hardware(self.device)} in {mode}."
        if self.fast or not self.gpu:
            where += (" Built in full mode on a GPU (`make book-full`), the same cells use all 2,000"
                      " validation photos and train for longer, so its numbers change.")
        return where

    def __repr__(self) -> str:
        mode = "fast (COLORLIB_FAST=1)" if self.fast else "full"
        data = ("none found: package photos stand in" if self.miniplaces is None
                else "MiniPlaces" + (" and the historical photographs" if self.historical else ""))
        return (f"mode: {mode} | runs on: {hardware(self.device)} | seed: {self.seed}\n"
                f"data: {data} | models: {len(available_models())} shipped")


def setup(seed: int = 0) -> BookEnv:
    """The first cell of every chapter: seed Python, NumPy and PyTorch with ``seed``, pick the
    device (CUDA when there is one, else the CPU), set the figure style, and find the data
    (:func:`colorlib.data.data_root`; ``data`` is None when there is none) and the models.

    Changes process-wide settings: PyTorch's thread count and denormal flushing, matplotlib's
    rcParams.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    # ADADELTA's running averages start at zero and pass through denormal floats in the first
    # steps; on a CPU each such operation is many times slower (a 30 s run took minutes).
    torch.set_flush_denormal(True)
    matplotlib.rcParams.update(RC_PARAMS)
    try:
        data = D.data_root()
    except D.DataError:
        data = None
    return BookEnv(D.repo_root(), data, models_dir(), fast_mode(), resolve_device("auto"), seed)

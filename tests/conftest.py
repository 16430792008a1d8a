"""Shared fixtures: real photos that need no data folder, and the MiniPlaces folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from local_browser import CHROMIUM, CHROMIUM_ARGS

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# What colorlib keeps between runs (the study's rendered stimuli, the alpha app's runs) goes to the
# repository's pytest cache, not the user's ~/.cache: kept between runs, removed by make clean.
os.environ.setdefault("COLORLIB_CACHE", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "colorlib"))


def data_dir() -> Path | None:
    """$COLORLIB_DATA when set (None if that path does not exist: a run told to use a data folder
    that is not there has no data, never ../shared/data behind its back), else ../shared/data."""
    env = os.environ.get("COLORLIB_DATA")
    if env:
        return Path(env) if Path(env).exists() else None
    return SHARED if SHARED.exists() else None


@pytest.fixture
def cli(capsys):
    """Run ``colorlib ARGS`` in this process: returns (exit status, stdout, stderr)."""
    from colorlib.cli import main

    def run(*args) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            status = 0
        except SystemExit as e:
            status = e.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture(scope="session")
def miniplaces() -> Path:
    d = data_dir()
    if d is None or not (d / "miniplaces").exists():
        pytest.skip("MiniPlaces data not present (../shared/data or $COLORLIB_DATA)")
    return d / "miniplaces"


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photographs shipped inside installed wheels."""
    import skimage.data

    return {
        "astronaut": skimage.data.astronaut(),
        "coffee": skimage.data.coffee(),
        "chelsea": skimage.data.chelsea(),
        "camera": skimage.data.camera(),  # a real grayscale photograph
    }


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module; skipped where it is not
    installed, except in CI (``CI`` set), where that is a failure."""
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is not installed (apt-get install -y chromium; `make test` does it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

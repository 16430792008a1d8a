"""colorlib.book_utils without the book: the setup cell, the fallback photos, logs, widgets."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from colorlib import book_utils as bu

from .book_helpers import BOOK

pytestmark = pytest.mark.book


@pytest.fixture(autouse=True)
def restore_global_state():
    """bu.setup changes process-wide settings; give the other tests theirs back."""
    import matplotlib

    rc, threads = matplotlib.rcParams.copy(), torch.get_num_threads()
    yield
    matplotlib.rcParams.update(rc)
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


@pytest.fixture
def bare(monkeypatch, tmp_path):
    """A machine without the data folder: COLORLIB_DATA points to an empty folder."""
    monkeypatch.setenv("COLORLIB_DATA", str(tmp_path))
    monkeypatch.setenv("COLORLIB_FAST", "1")
    return bu.setup(seed=3)


def test_setup_reads_fast_mode_and_seeds(bare, monkeypatch):
    assert bare.fast and bare.seed == 3 and bare.device.type in ("cpu", "cuda")
    assert bare.pick(fast=1, full=2) == 1
    assert "mode: fast (COLORLIB_FAST=1)" in repr(bare)
    a = torch.rand(3)
    bu.setup(seed=3)
    assert torch.equal(a, torch.rand(3))
    monkeypatch.setenv("COLORLIB_FAST", "0")
    assert not bu.fast_mode()


def test_without_data_the_package_photos_stand_in_and_the_page_says_so(bare):
    assert bare.miniplaces is None and bare.historical is None
    photos = bu.validation_photos(bare, n=4)
    assert photos.fallback and photos.labels is None
    assert photos.pixels.dtype == torch.uint8 and photos.pixels.shape[1:] == (3, 128, 128)
    assert len(photos) == len(bu.PACKAGE_PHOTOS) - 1  # every colour photo (camera is gray)
    assert "no data folder here" in bu.source_note(photos).data
    train, val, source = bu.training_data(bare, 64, 2000, 200)
    assert val is None and not train.labelled and train.pixels.shape[-1] == 64
    assert "no data folder" in source
    assert bu.historical_photos(bare) == [] and bu.historical_credits(bare) == {}


@pytest.mark.parametrize("name", list(bu.PACKAGE_PHOTOS))
def test_package_photos_are_real_photos(name):
    img = bu.package_photo(name)
    assert img.dtype == np.uint8 and min(img.shape[:2]) >= 256
    assert (img.ndim == 2) == (name == "camera")


def test_images_logs_and_live_plot():
    assert bu.to_pil(torch.zeros(3, 8, 5, dtype=torch.uint8)).size == (5, 8)
    assert bu.to_pil(np.ones((4, 6))).mode == "L"
    assert bu.fit(bu.to_pil(np.zeros((100, 300, 3), np.uint8)), 150).size == (150, 50)
    assert bu.gray(bu.package_photo("coffee")).mode == "L"
    assert np.allclose(bu.smooth(np.array([1.0, 3.0, 5.0]), 2), [1.0, 2.0, 4.0])
    log = bu.shipped_log("miniplaces-full")
    assert len(log["step"]) > 1000 and log["loss"][-100:].mean() < log["loss"][:100].mean()
    plot = bu.LivePlot(every=10**9)
    from colorlib.train import StepInfo

    for s in range(5):
        plot(StepInfo(s, s / 10, 1.0 / (s + 1), 0.5, 0.1, 1.0, 100.0))
    plot(StepInfo(5, 0.5, *[float("nan")] * 5, val={"val_colour_loss": 0.1}))
    assert plot.steps == [0, 1, 2, 3, 4] and len(plot.val) == 1
    assert plot.figure().axes[0].get_title() == "training loss (Eq. 6)"


def test_linked_stack_follows_its_control():
    import ipywidgets as W

    slider = W.SelectionSlider(options=[1, 2, 3], value=2)
    stack = bu.linked_stack(slider, [bu.image_widget(np.zeros((4, 4, 3), np.uint8)) for _ in range(3)])
    assert stack.selected_index == 1 and len(stack.children) == 3
    assert stack.children[0].format == "jpeg" and stack.children[0].value[:2] == b"\xff\xd8"


def test_student_edition_strips_only_solution_blocks():
    sys.path.insert(0, str(BOOK / "tools"))
    from make_student_edition import strip_solution_blocks

    text = ("keep\n\n```{admonition} Exercise 1.1\nDo it.\n```\n\n"
            "```{admonition} Solution\n:class: dropdown solution\n\nThe answer.\n```\n\n"
            ":::{note}\n:class: dropdown\nA note that stays.\n:::\n")
    out, removed = strip_solution_blocks(text)
    assert removed == 1
    assert "The answer" not in out and "Do it." in out and "A note that stays." in out

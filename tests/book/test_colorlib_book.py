"""colorlib.book without the book: the setup cell, where photos come from, images, plots, runs,
widgets (one section per module of colorlib/book/)."""

from __future__ import annotations

import subprocess
import sys

import ipywidgets as W
import matplotlib
import numpy as np
import pytest
import torch
from docutils import nodes

from colorlib import book
from colorlib.book import env as book_env
from colorlib.device import cpu_name
from colorlib.sample_photos import SAMPLE_PHOTOS, sample_photos
from colorlib.train import StepInfo, TrainConfig, Validation

from .book_helpers import ROOT

pytestmark = pytest.mark.book


@pytest.fixture(autouse=True)
def restore_global_state():
    """book.setup changes process-wide settings; give the other tests theirs back."""
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
    return book.setup(seed=3)


def test_import_colorlib_loads_neither_the_book_nor_its_display_packages():
    code = ("import sys, colorlib, colorlib.infer, colorlib.checkpoint\n"
            "print(sorted(m for m in ('colorlib.book', 'ipywidgets', 'matplotlib', 'IPython') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- env ---------------------------------------------------------------------------------------
def test_setup_reads_fast_mode_and_seeds(bare, monkeypatch):
    assert bare.fast and bare.seed == 3 and bare.device.type in ("cpu", "cuda")
    assert bare.pick(fast=1, full=2) == 1
    assert "mode: fast (COLORLIB_FAST=1)" in repr(bare)
    assert matplotlib.rcParams["figure.dpi"] == book_env.RC_PARAMS["figure.dpi"]
    a = torch.rand(3)
    book.setup(seed=3)
    assert torch.equal(a, torch.rand(3))
    monkeypatch.setenv("COLORLIB_FAST", "0")
    assert not book.fast_mode()
    assert book.setup(seed=3).pick(fast=1, full=2) == 2


def test_setup_line_names_hardware_and_mode_but_no_path_of_the_machine(bare, tmp_path):
    text = repr(bare) + bare.ran_on()
    assert str(tmp_path) not in text and "/" not in repr(bare).split("|")[1].replace("a*b*", "")
    assert "data: none found" in repr(bare)
    assert "logical cores" in text or "GPU" in text
    assert "fast mode" in bare.ran_on() and "make book-full" in bare.ran_on()
    assert book.hardware(torch.device("cpu")).startswith("the CPU (") and cpu_name()


def test_figure_text_stays_readable_when_the_page_shrinks_a_wide_figure():
    narrow, wide = book.text_pt(3), book.text_pt(12)
    assert narrow == pytest.approx(10.5 * 72 / 96)  # no shrinking: 10.5 px
    # 12 in at 96 dpi = 1152 px shown in a 720 px column: the type grows by 1152 / 720
    assert wide == pytest.approx(narrow * 12 * 96 / book.plots.PAGE_PX)
    fig = book.grid([[np.zeros((4, 4, 3), np.uint8)] * 8], titles=[["a"] * 8], size=1.6)
    shown_px = fig.axes[0].title.get_fontsize() * 96 / 72 * book.plots.PAGE_PX / (8 * 1.6 * 96)
    assert shown_px >= book.plots.MIN_TEXT_PX - 1e-9


def test_paths_on_a_page_are_relative_to_the_repository(tmp_path):
    assert book.short_path(tmp_path / "data" / "x", tmp_path) == "data/x"
    assert book.short_path(None, tmp_path) == "not found"


# -- photos ------------------------------------------------------------------------------------
def test_without_data_the_package_photos_stand_in_and_the_page_says_so(bare):
    assert bare.miniplaces is None and bare.historical is None
    photos = book.validation_photos(bare, n=4)
    assert photos.fallback and photos.labels is None
    assert photos.pixels.dtype == torch.uint8 and photos.pixels.shape[1:] == (3, 128, 128)
    assert photos.names == [n for n, p in SAMPLE_PHOTOS.items() if p.colour]  # every colour photo
    assert "no data folder here" in book.source_note(photos).data
    assert photos.label(0) == photos.names[0] and photos.image(0).size == (128, 128)
    train, val, source = book.training_data(bare, 64, 2000, 200)
    assert val is None and not train.labelled and train.pixels.shape[-1] == 64
    assert "no data folder" in source
    assert book.historical_photos(bare) == [] and book.historical_credits(bare) == {}


@pytest.mark.parametrize("name", list(SAMPLE_PHOTOS))
def test_package_photos_are_real_photos(name):
    img = sample_photos([name])[name]
    assert img.dtype == np.uint8 and min(img.shape[:2]) >= 256 and img.shape[2] == 3
    gray = bool((img == img[..., :1]).all())  # three equal channels
    assert gray == (not SAMPLE_PHOTOS[name].colour) == (name == "camera")


def test_an_unknown_package_photo_names_the_choices():
    with pytest.raises(KeyError, match="no sample photo 'lena'.*astronaut"):
        book.package_photo_set(64, ["coffee", "lena"])


def test_historical_photos_and_their_credits_from_the_readme_table(monkeypatch, tmp_path):
    (tmp_path / "historical").mkdir()
    for name in ("b.jpg", "a.jpg"):
        book.to_pil(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "historical" / name)
    (tmp_path / "README.md").write_text(
        "# Data\n\n| file | what |\n| --- | --- |\n| `val.tar.gz` | 2,000 images |\n\n"
        "| file | size | mode | credit and basis |\n| --- | --- | --- | --- |\n"
        "| a.jpg | 4x4 | RGB | Dorothea Lange, 1936 - US federal work |\n"
        "| b.jpg | 4x4 | L | Lewis Hine, c.1910 - published before 1931 |\n", encoding="utf-8")
    monkeypatch.setenv("COLORLIB_DATA", str(tmp_path))
    env = book.setup(seed=0)
    assert env.historical == tmp_path / "historical"
    assert [name for name, _ in book.historical_photos(env)] == ["a.jpg", "b.jpg"]
    assert book.historical_credits(env) == {"a.jpg": "Dorothea Lange, 1936 - US federal work",
                                            "b.jpg": "Lewis Hine, c.1910 - published before 1931"}


# -- images ------------------------------------------------------------------------------------
def test_images():
    assert book.to_pil(torch.zeros(3, 8, 5, dtype=torch.uint8)).size == (5, 8)
    assert book.to_pil(np.ones((4, 6))).mode == "L"
    # floats are [0, 1], rounded to 0..255 and clipped as a page shows them
    assert list(np.asarray(book.to_pil(np.array([[-0.5, 0.2, 0.5, 2.0]])))[0]) == [0, 51, 128, 255]
    assert book.to_pil(torch.ones(1, 1, 2, 3)).size == (3, 2)
    assert book.fit(book.to_pil(np.zeros((100, 300, 3), np.uint8)), 150).size == (150, 50)
    assert book.gray(sample_photos(["coffee"])["coffee"]).mode == "L"
    white_black = np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8)
    assert list(np.asarray(book.gray(white_black))[0]) == [255, 0]  # L* 100 and 0


# -- plots -------------------------------------------------------------------------------------
def test_logs_smoothing_and_live_plot():
    assert np.allclose(book.smooth(np.array([1.0, 3.0, 5.0]), 2), [1.0, 2.0, 4.0])
    log = book.shipped_log("miniplaces-full")
    assert len(log["step"]) > 1000 and log["loss"][-100:].mean() < log["loss"][:100].mean()
    plot = book.LivePlot(every=10**9)
    for s in range(5):
        plot(StepInfo(s, s / 10, 1.0 / (s + 1), 0.5, 0.1, 1.0, 100.0))
    plot(Validation(5, 0.5, 0.1, float("nan"), float("nan"), 8))
    assert plot.steps == [0, 1, 2, 3, 4] and len(plot.val) == 1 and plot.val[0].val_colour_loss == 0.1
    assert plot.figure().axes[0].get_title() == "training loss (Eq. 6)"


def test_grid_lays_out_rows_and_leaves_missing_cells_empty():
    img = np.zeros((4, 4, 3), np.uint8)
    fig = book.grid([[img, img, img], [img, None]], titles=[["a", "b", "c"], None], row_labels=["x", "y"])
    axes = fig.axes
    assert len(axes) == 6 and [ax.get_title() for ax in axes[:3]] == ["a", "b", "c"]
    assert not axes[4].axison and not axes[5].axison and axes[3].get_ylabel() == "y"


# -- runs --------------------------------------------------------------------------------------
def test_load_or_train_trains_once_then_loads(bare, tmp_path):
    photos = book.training_data(bare, 64, None, None)[0]
    data = (photos, photos)  # validated on its training photos: only the plumbing is tested
    tc = TrainConfig(config="tiny", batch_size=4, steps=4, log_every=2, checkpoint_every=10**9, seed=1,
                     device="cpu")
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("left over from an unfinished run\n")
    seen, plot = [], book.LivePlot(every=10**9)
    m, log, val, trained = book.load_or_train(run, tc, data, callbacks=[seen.append, plot])
    steps = [i for i in seen if isinstance(i, StepInfo)]
    assert trained and steps and list(log["step"]) == [i.step for i in steps] == plot.steps
    assert log["step"][-1] == tc.steps - 1  # steps are numbered from 0
    assert list(val["step"]) == [v.step for v in plot.val] and val["step"][-1] == tc.steps
    assert (run / "model.safetensors").exists() and not (run / "checkpoint.pt").exists()
    m2, log2, _, trained2 = book.load_or_train(run, tc, data)
    assert not trained2 and np.array_equal(log2["loss"], log["loss"])
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert not m2.training


def test_a_stopped_run_is_not_taken_for_a_finished_one(bare, tmp_path):
    data = (book.training_data(bare, 64, None, None)[0], None)
    tc = TrainConfig(config="tiny", batch_size=4, steps=8, log_every=2, checkpoint_every=10**9, seed=1,
                     device="cpu")

    def stop(info):
        if info.step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match=r"training in .*run was stopped at step \d+; run the cell again"):
        book.load_or_train(tmp_path / "run", tc, data, callbacks=[stop])
    assert not (tmp_path / "run" / "model.safetensors").exists()


# -- widgets -----------------------------------------------------------------------------------
def test_linked_stack_follows_its_control():
    slider = W.SelectionSlider(options=[1, 2, 3], value=2)
    stack = book.linked_stack(slider, [book.image_widget(np.zeros((4, 4, 3), np.uint8)) for _ in range(3)])
    assert stack.selected_index == 1 and len(stack.children) == 3
    assert stack.children[0].format == "jpeg" and stack.children[0].value[:2] == b"\xff\xd8"


def test_figure_widget_and_encode():
    fig = book.grid([[np.zeros((4, 4, 3), np.uint8)]])
    w = book.figure_widget(fig)
    assert w.format == "png" and w.value[:8] == b"\x89PNG\r\n\x1a\n" and int(w.width) > 0
    assert book.encode(np.zeros((4, 4), np.uint8), "png")[:4] == b"\x89PNG"
    assert "hello" in book.caption("hello").value


# -- results -----------------------------------------------------------------------------------
RESULTS = {
    "images": 2000, "colour_images": 1921, "skipped_gray": 79,
    "machine": {"cpu": "AMD EPYC", "cpu_cores": 2, "load_avg_1_5_15_min": [3.0, 2.5, 1.9]},
    "data": "/somewhere/miniplaces/val.tar.gz",
    "models": {
        "gray": {"psnr": 23.3, "ssim": 0.933, "ciede2000": 10.7, "auc": 89.4, "auc_rebalanced": 79.5,
                 "cf_pred": 0.1, "cf_gap": 38.6, "top1": None, "top5": None, "saturation": 1.0},
        "m-full": {"psnr": 24.65, "ssim": 0.938, "ciede2000": 9.34, "auc": 91.15, "auc_rebalanced": 83.7,
                   "cf_pred": 24.5, "cf_gap": 14.1, "top1": 40.1, "top5": 69.0, "saturation": 1.2},
        "m-full@raw": {"psnr": 24.9, "ssim": 0.94, "ciede2000": 9.1, "auc": 91.3, "auc_rebalanced": 83.5,
                       "cf_pred": 20.2, "cf_gap": 18.4, "top1": 40.1, "top5": 69.0, "saturation": 1.0},
        "sweep-alpha-0": {"auc": 90.81}, "sweep-alpha-1-300": {"auc": 91.04},
    },
}


def test_results_tables_fit_the_page_explain_every_column_and_hide_the_machine():
    md = book.results_tables(RESULTS, ["gray", "m-full", "m-full@raw"])
    tables = [b for b in md.split("\n\n") if b.startswith("| model")]
    assert len(tables) == 2 and all(t.splitlines()[0].count("|") <= 8 for t in tables)  # two narrow tables
    assert "| `m-full` | 1.2 | 24.65 | 0.938 | 9.34 | 91.15 |" in tables[0]
    assert "| `m-full` (saturation 1.0) | 1.0 |" in tables[0] and "| gray answer (a\\*b\\* = 0) | – |" in tables[0]
    assert "| `m-full` | 1.2 | 24.5 | 14.1 | 40.1 | 69.0 |" in tables[1]
    for header, _ in book.results.COLUMNS.values():
        assert f"**{header}**\n: " in md
    assert "2,000 photos of the MiniPlaces validation split" in md and "AMD EPYC, 2 cores" in md
    assert "/somewhere" not in md and "load" not in md


def test_ranking_sentence_orders_by_the_metric():
    text = book.ranking_sentence(RESULTS)
    assert text.index("sweep-alpha-1-300") < text.index("sweep-alpha-0") and "91.040" in text
    assert "1,921" in text and book.ranking_sentence(RESULTS, prefix="nothing-") == ""
    assert "too close to call" not in text
    assert "too close to call" in book.ranking_sentence(RESULTS, close=0.5)  # 91.04 - 90.81 < 0.5


# -- the Sphinx extension ---------------------------------------------------------------------
def test_paper_equations_get_the_papers_numbers():
    from docutils.utils import new_document

    from colorlib.book import sphinx_fixes

    doc = new_document("x")
    doc += nodes.math_block("", "y", label="eq-fusion", number=1)
    doc += nodes.math_block("", "z", label="other", number=2)
    objects = {}
    app = type("App", (), {"env": type("Env", (), {"docname": "book/03_network",
                                                    "get_domain": lambda self, n: type("D", (), {"data": {"objects": objects}})()})()})()
    sphinx_fixes.number_paper_equations(app, doc)
    numbers = [n["number"] for n in doc.findall(nodes.math_block)]
    assert numbers == [5, 2] and objects == {"eq-fusion": ("book/03_network", 5)}

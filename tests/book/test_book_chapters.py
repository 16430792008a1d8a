"""Every chapter executes in fast mode, and computes what it says it computes.

The numbers come from the session's one book build (``executed`` fixture): each chapter
stores its key results with ``myst_nb.glue``, and these tests check them.
"""

from __future__ import annotations

import json
import math
import re
import sys

import jupytext
import pytest
import yaml

from colorlib.sample_photos import SAMPLE_PHOTOS

from .book_helpers import BOOK, CHAPTERS, PAGES, ROOT, glued, miniplaces_present, stream_text, widget_state

sys.path.insert(0, str(BOOK / "tools"))
from make_student_edition import strip_solution_blocks, student_edition  # noqa: E402  (book/tools is no package)

pytestmark = pytest.mark.book

#: Without the data folder the chapters run on these (colorlib.sample_photos, colour only).
COLOUR_SAMPLE_PHOTOS = sum(p.colour for p in SAMPLE_PHOTOS.values())

SETUP = ("# Setup (the same in every chapter): paths, seed, device, fast mode.\n"
         "from colorlib import book\n\nenv = book.setup(seed=0)\nenv")


# -- the book's structure (no build needed) -----------------------------------------------------
def test_toc_lists_every_page_in_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert files == [f"book/{p}" for p in PAGES]
    assert all(part.get("numbered") for part in toc["parts"][:-1])  # appendix unnumbered
    assert sorted(p.stem for p in BOOK.glob("*.md")) == sorted(PAGES)


def test_config_keeps_the_book_offline_and_strict():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["only_build_toc_files"] is True
    assert cfg["execute"]["execute_notebooks"] == "cache"
    sphinx = cfg["sphinx"]["config"]
    assert not any("://" in k for k in sphinx["nb_ipywidgets_js"]), "widget scripts must be local"
    assert "://" not in sphinx["mathjax_path"]
    assert "_static" not in " ".join(sphinx["html_static_path"])  # _static would be injected everywhere


@pytest.mark.parametrize("chapter", [*CHAPTERS, "instructors"])
def test_every_chapter_opens_with_the_same_setup_cell(chapter):
    nb = jupytext.read(BOOK / f"{chapter}.md")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.strip() == SETUP
    assert code[0].metadata.get("tags") == ["setup"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_a_summary_and_exercises_with_solutions(chapter):
    text = (BOOK / f"{chapter}.md").read_text()
    assert ":::{admonition} In this chapter" in text
    exercises = re.findall(r"\{admonition\} Exercise \d+\.\d+", text)
    solutions = len(re.findall(r":class: dropdown solution", text)) + text.count("tags: [hide-cell, solution]")
    assert exercises and solutions == len(exercises)
    assert "{cite}`iizuka2016`" in text


def test_student_edition_strips_only_solution_blocks():
    text = ("keep\n\n```{admonition} Exercise 1.1\nDo it.\n```\n\n"
            "```{admonition} Solution\n:class: dropdown solution\n\nThe answer.\n```\n\n"
            ":::{note}\n:class: dropdown\nA note that stays.\n:::\n")
    out, removed = strip_solution_blocks(text)
    assert removed == 1
    assert "The answer" not in out and "Do it." in out and "A note that stays." in out


def test_student_edition_removes_every_solution_and_keeps_the_exercises():

    for chapter in CHAPTERS:
        nb, removed = student_edition(BOOK / f"{chapter}.md")
        text = "".join(c.source for c in nb.cells)
        assert removed >= 2
        assert "{admonition} Solution" not in text and ":class: dropdown solution" not in text
        assert "Exercise" in text
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells)


# -- the executed chapters ----------------------------------------------------------------------
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_ran_in_fast_mode_without_errors(executed, chapter):
    nb = executed[chapter]
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert "mode: fast (COLORLIB_FAST=1)" in stream_text(nb) + "".join(
        o.get("data", {}).get("text/plain", "") for o in outputs)
    figures = [o for o in outputs if "image/png" in o.get("data", {})
               or "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert figures, f"{chapter} shows no figure"


def historical_present() -> bool:
    """Whether the data folder has the historical photographs chapter 10 colorizes."""
    from colorlib.data import DataError, data_root

    try:
        return any((data_root() / "historical").glob("*.jpg"))
    except DataError:
        return False


def test_ch01_colorization_keeps_lightness_and_size(executed):
    g = glued(executed["01_why"])
    assert g["ch1_same_size"] is True
    # only a*b* come from the network: L* changes by the 8-bit rounding of the RGB result and the
    # gamut step alone (measured 0.07-0.09 L* on average; half an 8-bit step is up to ~0.2 L*)
    assert g["ch1_lightness_error"] < 0.2


def test_ch02_lab_plane_and_ranges_agree_with_scikit_image(executed):
    import warnings

    import numpy as np
    from skimage.color import lab2rgb, rgb2lab

    g = glued(executed["02_lab"])
    # the reach of a* and b* over the same 64-level RGB cube, by scikit-image's conversion
    levels = np.linspace(0, 1, 64)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 1, 3)
    lab = rgb2lab(cube)
    a_lo, a_hi = map(int, re.findall(r"-?\d+", g["ch2_a_range"]))
    b_lo, b_hi = map(int, re.findall(r"-?\d+", g["ch2_b_range"]))
    reach = [lab[..., 1].min(), lab[..., 1].max(), lab[..., 2].min(), lab[..., 2].max()]
    # whole numbers on the page; the two conversions' constants differ in the 4th digit
    assert [a_lo, a_hi, b_lo, b_hi] == pytest.approx(reach, abs=0.6)
    # the displayable share of the a*b* plane at L* = 50, by the same test (a colour is
    # displayable when clipping to sRGB moves it by less than 1) done with scikit-image
    a = np.linspace(-128, 127, 256)
    b = np.linspace(127, -128, 256)
    B, A = np.meshgrid(b, a, indexing="ij")
    plane = np.stack([np.full_like(A, 50.0), A, B], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lab2rgb warns about the colours it clips
        back = rgb2lab(lab2rgb(plane))
    inside = float((np.linalg.norm(back - plane, axis=-1) < 1.0).mean())
    assert g["ch2_plane_shape"] == (3, 256, 256)
    assert g["ch2_gamut_fraction_50"] == pytest.approx(inside, abs=0.005)
    assert 0.2 < g["ch2_near_gray"] < 1  # photos crowd around gray
    state = widget_state(executed["02_lab"])
    slider = next(s["state"] for s in state.values() if s["model_name"] == "SelectionSliderModel")
    stack = next(s["state"] for s in state.values() if s["model_name"] == "StackModel")
    assert len(stack["children"]) == len(slider["_options_labels"])  # one plane per slider level
    assert any(s["model_name"] == "LinkModel" for s in state.values())


def test_ch03_table1_weights_shapes_and_fusion(executed):
    g = glued(executed["03_network"])
    assert g["ch3_weight_total"] == 42_346_880  # Table 1
    assert g["ch3_rows"] > 20
    assert g["ch3_fusion_difference"] < 1e-4  # FusionLayer == the literal Eq. 5
    s224, s512 = g["ch3_shapes_224"], g["ch3_shapes_384x512"]
    assert s224["low_level"] == (1, 512, 28, 28) and s224["mid_level"] == (1, 256, 28, 28)
    assert s224["global_network"] == (1, 256) and s512["global_network"] == (1, 256)
    assert s224["a*b* out"] == (1, 2, 112, 112) and s512["a*b* out"] == (1, 2, 192, 256)
    assert g["ch3_low_level_runs"] == {"224x224": 1, "384x512": 2}
    assert 0.8 < g["ch3_global_share"] < 0.9


def test_ch04_data_filter_and_augmentation(executed):
    g = glued(executed["04_data"])
    if miniplaces_present():  # the branch that read MiniPlaces ran
        assert g["ch4_classes"] == 100 and g["ch4_train_images"] == 45_000
        assert 0 < g["ch4_gray_fraction"] < 0.15  # MiniPlaces val has a few gray photos
    else:  # the package photos stood in: no class list, and every one of them is in colour
        assert g["ch4_classes"] is None and g["ch4_train_images"] is None
        assert g["ch4_gray_fraction"] == 0
    assert g["ch4_augment_shape"] == (8, 3, 128, 128)
    assert g["ch4_lab_shapes"] == ((8, 1, 128, 128), (8, 2, 64, 64))


def test_ch05_live_training_loss_goes_down_and_alpha_sweep(executed):
    g = glued(executed["05_training"])
    for optimizer in ("adadelta", "adamw"):
        assert g["ch5_steps"][optimizer] == 120
        assert g["ch5_loss_end"][optimizer] < 0.9 * g["ch5_loss_start"][optimizer]
    reached = g["ch5_class_reaches"]
    assert reached["low_level"] and reached["global_network"] and reached["classifier"]
    assert not (reached["mid_level"] or reached["fusion"] or reached["colorization"])
    sweep = g["ch5_sweep"]
    assert set(sweep) == {"sweep-alpha-0", "sweep-alpha-1-3000", "sweep-alpha-1-300", "sweep-alpha-1-30"}
    for name, r in sweep.items():  # each model file was trained with the alpha its name says
        n, _, d = name.removeprefix("sweep-alpha-").partition("-")
        assert r["alpha"] == pytest.approx(int(n) / int(d) if d else 0, abs=1e-3)
    assert all(15 < r["psnr"] < 40 for r in sweep.values())
    if miniplaces_present():  # scene labels to score against
        assert sweep["sweep-alpha-0"]["top5"] < 15  # an untrained classifier: chance is 5%
        assert sweep["sweep-alpha-1-30"]["top5"] > sweep["sweep-alpha-0"]["top5"] + 20
    else:  # the package photos have no scene labels: nothing to score
        assert all(math.isnan(r["top5"]) for r in sweep.values())
    state = widget_state(executed["05_training"])
    stacks = [s for s in state.values() if s["model_name"] == "StackModel"]
    assert any(len(s["state"]["children"]) == 4 for s in stacks)
    assert any(s["model_name"] == "ToggleButtonsModel" for s in state.values())


def test_ch06_metrics(executed):
    g = glued(executed["06_results"])
    summary = g["ch6_summary"]
    assert set(summary) == {"full", "baseline", "gray"}
    for s in summary.values():
        assert s["images"] == (100 if miniplaces_present() else COLOUR_SAMPLE_PHOTOS)
    # the paper's finding, and issue 16's: both models beat leaving the photo gray on colour,
    # and the full model beats the baseline on most photos it is compared on
    for model in ("full", "baseline"):
        assert summary[model]["auc"] > summary["gray"]["auc"]
        assert summary[model]["psnr"] > summary["gray"]["psnr"]
    assert g["ch6_full_wins"] > 0.5
    assert summary["gray"]["cf_pred"] < 1 < summary["full"]["cf_pred"] < summary["full"]["cf_true"]


def test_ch06_colour_spaces(executed):
    """Section 4.8 with real models: the three colour-space models shown side by side and their
    figures, as `colorlib evaluate` stored them (tests/test_shipped.py recomputes those)."""
    nb = executed["06_results"]
    g = glued(nb)
    stored = json.loads((ROOT / "colorlib" / "models" / "results-colorspace.json").read_text())
    assert set(g["ch6_spaces"]) == {"gray", "colorspace-lab", "colorspace-yuv", "colorspace-rgb"}
    for name, figures in g["ch6_spaces"].items():
        for k, v in figures.items():
            assert v == pytest.approx(stored["models"][name][k], abs=1e-9), (name, k)
    assert g["ch6_space_images"] == (100 if miniplaces_present() else COLOUR_SAMPLE_PHOTOS)
    cells = [c for c in nb.cells if c.cell_type == "code" and "book.grid(" in c.source and "SPACES" in c.source]
    assert len(cells) == 1 and any(o.get("data", {}).get("image/png") for o in cells[0].outputs)
    text = " ".join(str(o.get("data", {}).get("text/markdown", "")) for c in nb.cells for o in c.get("outputs", []))
    for name in ("colorspace-lab", "colorspace-yuv", "colorspace-rgb"):
        assert f"{stored['models'][name]['psnr']:.2f}" in text
    assert "CPU" in text and "no GPU" in text  # says where they were trained


def _naturalness_from_the_csv_files(folder) -> dict[str, float]:
    """Median over participants of the % "yes" per condition, read with the csv module from the
    files the chapter wrote: the first answer to each (participant, trial) counts, a line that
    is no answer (the header, the typo) does not."""
    import csv
    import statistics

    from colorlib.study import CONDITIONS

    seen, answers = set(), {}
    for path in sorted(folder.rglob("*.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                if len(row) != 7 or row[3] not in CONDITIONS or row[4] not in ("yes", "no"):
                    continue
                if (row[0], row[1]) in seen:
                    continue
                seen.add((row[0], row[1]))
                answers.setdefault(row[3], {}).setdefault(row[0], []).append(row[4] == "yes")
    return {c: statistics.median(100 * sum(v) / len(v) for v in per.values()) for c, per in answers.items()}


def test_ch07_study_merge_and_analysis(executed):
    g = glued(executed["07_user_study"])
    assert g["ch7_participants"] == 10
    per_condition = 8 if miniplaces_present() else COLOUR_SAMPLE_PHOTOS // 3  # fast mode
    assert g["ch7_answers"] == 10 * 3 * per_condition
    assert g["ch7_skipped"] == 3 * per_condition + 1  # the duplicated file and the typo
    expected = _naturalness_from_the_csv_files(ROOT / "runs" / "book" / "study-class-simulated")
    assert g["ch7_median"] == {c: round(v, 1) for c, v in expected.items()}
    # participants simulated with the paper's rates (baseline 69.8%, ground truth 97.7%)
    assert g["ch7_median"]["baseline"] < g["ch7_median"]["ground_truth"]


def test_ch09_classification(executed):
    g = glued(executed["09_classification"])
    if miniplaces_present():  # the branch that scores labelled MiniPlaces photos ran
        assert g["ch9_images"] == 300
        assert 5 < g["ch9_top1"] <= g["ch9_top5"] <= 100  # well above chance (1% / 5%)
        assert g["ch9_top5"] > 5 * 5
        stored = json.loads((ROOT / "colorlib" / "models" / "results.json").read_text())
        top5_all = stored["models"]["miniplaces-full"]["top5"]  # colorlib evaluate, 2,000 photos
        # 300 of the same photos: within four standard errors of a proportion near 0.7
        assert abs(g["ch9_top5"] - top5_all) < 4 * 100 * math.sqrt(0.7 * 0.3 / 300)
    else:  # the package photos have no scene labels: the page says so and scores nothing
        assert g["ch9_images"] == 0 and g["ch9_top1"] is None and g["ch9_top5"] is None
        assert g["ch9_top_confusions"] == "(no labelled photos here)"


def test_ch10_historical_photos(executed):
    g = glued(executed["10_past"])
    assert g["ch10_sizes_kept"] is True
    if historical_present():  # fast mode colorizes the chapter's eight favourites
        assert g["ch10_count"] == 8 and g["ch10_all_credited"] is True
    else:
        assert g["ch10_count"] == 0


def test_ch11_in_browser_figures_are_the_benchmarks(executed):
    """Chapter 11's in-browser table shows benchmarks/results/inbrowser.json (the medians of its
    own runs, recomputed here), for every size it measured."""
    import statistics

    stored = json.loads((ROOT / "benchmarks" / "results" / "inbrowser.json").read_text())
    shown = glued(executed["11_runtime"])["ch11_inbrowser"]
    assert set(shown) == {str(r["size"]) for r in stored["sizes"]}
    for r in stored["sizes"]:
        assert shown[str(r["size"])] == pytest.approx([statistics.median(r["first_runs"]),
                                                       statistics.median(r["warm_runs"])], abs=1e-3)


def test_ch11_engine_figures_are_the_benchmarks(executed):
    """Chapter 11's table of the two CPU engines shows benchmarks/results/engines_cpu.json: the
    medians of its own runs (recomputed here), for every model and size it measured."""
    import statistics

    stored = json.loads((ROOT / "benchmarks" / "results" / "engines_cpu.json").read_text())
    shown = glued(executed["11_runtime"])["ch11_engines"]
    assert set(shown) == {m["model"] for m in stored["models"]} == {"miniplaces-full", "paper"}
    for m in stored["models"]:
        assert set(shown[m["model"]]) == {str(r["size"]) for r in m["sizes"]}
        for r in m["sizes"]:
            assert shown[m["model"]][str(r["size"])] == pytest.approx(
                [statistics.median(r["torch_runs"]), statistics.median(r["onnx_runs"])], abs=1e-3)


def test_ch11_runtime_and_folding(executed):
    g = glued(executed["11_runtime"])
    assert g["ch11_fold_difference"] < 1e-3
    assert g["ch11_bn_after"] == 0
    times = g["ch11_times"]
    assert set(times) == {"paper, folded", "paper, with BN", "miniplaces-full"}
    for t in times.values():  # no relation between timings is asserted (wall-clock time)
        assert set(t) == {"224", "512"} and all(0 < v < float("inf") for v in t.values())
    # the speed-up the text states comes from the very table it sits under (one measurement)
    with_bn, folded = times["paper, with BN"]["512"], times["paper, folded"]["512"]
    assert g["ch11_fold_speedup"] == pytest.approx(with_bn / folded, rel=2e-3, abs=2e-3)


def test_ch12_limitations(executed):
    g = glued(executed["12_limitations"])
    # photos with the same L* but other colours get the same colorization (up to rounding)
    assert g["ch12_input_difference"] > 10 and g["ch12_output_difference"] < 2
    assert 0 < g["ch12_colourfulness_ratio"] < 1
    assert -1 < g["ch12_frontier_best"] < 0.1  # no head-only fine-tune beats raising the saturation


def test_instructor_page_tool_demo():
    text = (BOOK / "instructors.md").read_text()
    assert "make_student_edition.py" in text and "load_answers" in text


def test_no_nan_in_glued_numbers(executed):
    for chapter, nb in executed.items():
        for name, v in glued(nb).items():
            if isinstance(v, float):
                assert math.isfinite(v), f"{chapter}: {name} is {v}"

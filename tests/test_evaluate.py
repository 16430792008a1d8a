"""colorlib evaluate: real photos in a temporary folder, 20 MiniPlaces val images, bad inputs."""

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from colorlib.checkpoint import load_model
from colorlib.cli import main
from colorlib.evaluate import score, summarise

MODELS_DIR = Path(__file__).resolve().parents[1] / "colorlib" / "models"
COLUMNS = ["PSNR (dB)", "SSIM", "CIEDE2000", "AuC (%)", "AuC rebal. (%)", "CF", "CF gap",
           "top-1 (%)", "top-5 (%)", "images", "skipped gray"]


def save(path: Path, rgb: np.ndarray, side: int = 96) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).resize((side, side), Image.Resampling.BILINEAR).save(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos):
    """Four colour photos (one in a class-named folder, so labelled) and one gray photo."""
    root = tmp_path_factory.mktemp("photos")
    save(root / "astronaut.png", photos["astronaut"])
    save(root / "chelsea.png", photos["chelsea"])
    save(root / "kitchen" / "coffee.png", photos["coffee"])
    save(root / "church" / "outdoor" / "rocket.png", skimage.data.rocket())
    save(root / "camera.png", photos["camera"])
    return root


@pytest.fixture(scope="module")
def folder_report(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    main(["evaluate", "--data", str(folder), "--gray", "--model", "miniplaces-full",
          "--model", "miniplaces-baseline", "--size", "64", "--per-image", "-q",
          "--out", str(out / "r.json"), "--markdown", str(out / "r.md")])
    return json.loads((out / "r.json").read_text()), (out / "r.md").read_text()


def test_folder_report_json(folder_report):
    r, _ = folder_report
    assert r["images"] == 5 and r["colour_images"] == 4 and r["skipped_gray"] == 1 and r["size"] == 64
    assert list(r["models"]) == ["gray", "miniplaces-full", "miniplaces-baseline"]
    assert r["machine"]["cpu_cores"] >= 1 and r["wall_s"] > 0
    for s in r["models"].values():
        assert s["images"] == 4 and s["skipped_gray"] == 1
        assert 10 < s["psnr"] < 60 and 0 < s["ssim"] <= 1 and s["ciede2000"] > 0
        assert 0 < s["auc_rebalanced"] <= 100 and 0 < s["auc"] <= 100
        assert s["cf_gap"] == pytest.approx(abs(s["cf_pred"] - s["cf_true"]), abs=1e-3)
    gray, full = r["models"]["gray"], r["models"]["miniplaces-full"]
    assert gray["cf_pred"] < 1 and gray["top1"] is None  # a*b* = 0: no colour, no classifier
    # two photos sit in class-named folders: kitchen/ and church/outdoor/ (a class with a slash)
    assert r["labelled"] == 2 and full["classified"] == 2 and full["top1"] is not None
    assert r["models"]["miniplaces-baseline"]["top1"] is None and "miniplaces-baseline" not in r["confusion"]
    rows = {row["file"]: row for row in r["rows"]}
    assert set(rows) == {"astronaut.png", "chelsea.png", "kitchen/coffee.png",
                         "church/outdoor/rocket.png", "camera.png"}
    assert rows["camera.png"]["gray"] and rows["camera.png"]["scores"]["gray"]["psnr"] is None
    assert rows["kitchen/coffee.png"]["label"] == "kitchen"
    assert rows["astronaut.png"]["scores"]["miniplaces-full"]["top1"] is None  # no label
    assert isinstance(rows["astronaut.png"]["scores"]["miniplaces-full"]["predicted"], str)


def test_folder_report_markdown(folder_report):
    r, md = folder_report
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == COLUMNS
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert {"ground truth", "gray (a\\*b\\* = 0)", "miniplaces-full", "miniplaces-baseline"} <= set(lines)
    cells = [c.strip() for c in lines["miniplaces-full"].strip("|").split("|")]
    assert cells[1] == f"{r['models']['miniplaces-full']['psnr']:.2f}" and cells[-2:] == ["4", "1"]
    assert "Most confused classes: miniplaces-full" in md


def test_file_list(folder, tmp_path, cli):
    listing = folder / "two.txt"
    listing.write_text("astronaut.png\nkitchen/coffee.png kitchen\n")
    status, _, _ = cli("evaluate", "--data", listing, "--model", "miniplaces-full",
                       "--model", "miniplaces-full@raw", "--model", "miniplaces-full@1.5", "--model",
                       "miniplaces-full@0", "--size", "64", "-q", "--out", tmp_path / "r.json")
    r = json.loads((tmp_path / "r.json").read_text())
    assert status == 0 and r["images"] == 2 and r["labelled"] == 1
    shipped, raw = r["models"]["miniplaces-full"], r["models"]["miniplaces-full@raw"]
    assert shipped["classified"] == 1 and shipped["top1"] == raw["top1"]
    # as colorize outputs it: the model's saturation, 1.2 as its card states, against 1.0
    assert shipped["saturation"] == 1.2 and raw["saturation"] == 1.0
    assert shipped["cf_pred"] > raw["cf_pred"]
    # NAME@S: any saturation; 0 is the gray answer
    strong, none = r["models"]["miniplaces-full@1.5"], r["models"]["miniplaces-full@0"]
    assert strong["saturation"] == 1.5 and strong["cf_pred"] > shipped["cf_pred"]
    assert none["saturation"] == 0 and none["cf_pred"] < 1
    assert set(r["confusion"]) == {"miniplaces-full"}  # the saturation variants classify alike


def test_model_specs():
    from colorlib.cli.evaluate import model_spec

    assert model_spec("miniplaces-full") == ("miniplaces-full", None)
    assert model_spec("miniplaces-full@raw") == ("miniplaces-full", 1.0)
    assert model_spec("miniplaces-full@1.25") == ("miniplaces-full", 1.25)
    assert model_spec("runs/lr@3e-3") == ("runs/lr@3e-3", None)  # not a saturation: a name


def test_a_run_folder_named_with_an_at_is_taken_whole(tmp_path, folder, cli):
    import gzip

    from colorlib.checkpoint import resolve_model_path

    run = tmp_path / "seed@1"
    run.mkdir()
    (run / "model.safetensors").write_bytes(gzip.decompress(resolve_model_path("miniplaces-baseline").read_bytes()))
    status, _, err = cli("evaluate", "--data", folder, "--model", run, "--size", "64", "-q",
                         "--out", tmp_path / "r.json")
    assert status == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["models"][str(run)]["saturation"] == 1.2  # its card


def test_confusions_once_per_model_without_its_plain_name(folder, tmp_path, cli):
    status, _, _ = cli("evaluate", "--data", folder, "--model", "miniplaces-full@raw", "--model",
                       "miniplaces-full@1.5", "--size", "64", "-q", "--out", tmp_path / "r.json")
    assert status == 0
    assert list(json.loads((tmp_path / "r.json").read_text())["confusion"]) == ["miniplaces-full@raw"]


def test_model_gain_out_of_range_is_refused(folder, tmp_path, cli):
    status, _, err = cli("evaluate", "--data", folder, "--model", "miniplaces-full@9", "-q",
                         "--out", tmp_path / "r.json")
    assert status == 2 and "[0, 4]" in err and not (tmp_path / "r.json").exists()


def test_val_tar_20_images(miniplaces, tmp_path):
    main(["evaluate", "--data", str(miniplaces / "val.tar.gz"), "--limit", "20", "--gray",
          "--model", "miniplaces-full", "--model", "miniplaces-baseline", "-q",
          "--out", str(tmp_path / "r.json"), "--markdown", str(tmp_path / "r.md")])
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["images"] == 20 and r["labelled"] == 20 and r["size"] == 128
    full = r["models"]["miniplaces-full"]
    assert full["images"] + full["skipped_gray"] == 20 and full["classified"] == 20
    assert 0 <= full["top1"] <= full["top5"] <= 100
    # measured on these 20 photos: full 24.31 dB against gray 23.56, AuC 91.45 against 89.82,
    # CIEDE2000 8.88 against 10.34; the bounds leave about half of each margin
    gray = r["models"]["gray"]
    assert full["psnr"] > gray["psnr"] + 0.3 and full["auc"] > gray["auc"] + 0.5
    assert full["ciede2000"] < gray["ciede2000"] - 0.5
    n_wrong = sum(p["count"] for p in r["confusion"]["miniplaces-full"])
    assert 0 < n_wrong <= 20 - round(full["top1"] * 20 / 100) and len(r["confusion"]["miniplaces-full"]) <= 10
    assert "rows" not in r  # per-image rows only with --per-image
    assert "| miniplaces-baseline |" in (tmp_path / "r.md").read_text()


def test_unknown_model_lists_available(folder, tmp_path, cli):
    status, _, err = cli("evaluate", "--data", folder, "--model", "no-such-model",
                         "--out", tmp_path / "r.json")
    assert status == 2 and "no-such-model" in err and "miniplaces-full" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r.json").exists()


def test_no_colour_images(tmp_path, photos, cli):
    save(tmp_path / "gray" / "camera.png", photos["camera"])
    status, _, err = cli("evaluate", "--data", tmp_path / "gray", "--gray", "-q",
                         "--out", tmp_path / "r.json")
    assert status == 2 and "colour image" in err and not (tmp_path / "r.json").exists()
    (tmp_path / "empty").mkdir()
    status, _, err = cli("evaluate", "--data", tmp_path / "empty", "--gray", "--out", tmp_path / "r.json")
    assert status == 2 and "no images" in err


def test_never_overwrites_without_force(folder, tmp_path, cli):
    out = tmp_path / "r.json"
    out.write_text("keep me")
    status, _, err = cli("evaluate", "--data", folder, "--gray", "--size", "64", "-q", "--out", out)
    assert status == 2 and "--force" in err and out.read_text() == "keep me"
    status, _, _ = cli("evaluate", "--data", folder, "--gray", "--size", "64", "-q", "--out", out, "--force")
    assert status == 0 and json.loads(out.read_text())["models"]["gray"]["images"] == 4


def test_nothing_to_evaluate_and_missing_data(tmp_path, cli):
    status, _, err = cli("evaluate", "--data", tmp_path, "--out", tmp_path / "r.json")
    assert status == 2 and "--model" in err
    status, _, err = cli("evaluate", "--data", tmp_path / "nowhere", "--gray", "--out", tmp_path / "r.json")
    assert status == 2 and "does not exist" in err


def test_score_and_summarise_keep_their_keys(photos):
    # the fast torch-only path used during training
    x = torch.from_numpy(photos["astronaut"][::8, ::8].copy()).permute(2, 0, 1)[None]
    per_image = score(None, x)
    assert set(per_image) == {"psnr", "auc", "cf_pred", "cf_true", "top1", "top5"}
    s = summarise(per_image)
    assert {"psnr", "auc", "cf_gap", "images"} <= set(s) and s["images"] == 1 and s["cf_pred"] < 1


def test_score_with_the_models_own_saturation_matches_colorize(photos):
    from colorlib import metrics as M
    from colorlib.imageio import to_uint8
    from colorlib.infer import colorize_batch, default_saturation

    model = load_model("miniplaces-full")
    x = torch.from_numpy(photos["coffee"][::4, ::4].copy()).permute(2, 0, 1)[None]
    raw, own = score(model, x), score(model, x, saturation=None)
    saturation = default_saturation(model)
    assert saturation == 1.2  # as the model card states
    shown = to_uint8(colorize_batch(model, x.float() / 255, saturation))
    assert torch.allclose(own["cf_pred"], M.colourfulness(shown.float()), atol=1e-3)
    assert own["cf_pred"] > raw["cf_pred"]
    with pytest.raises(ValueError, match="saturation"):
        score(model, x, saturation=-1)


# -- top-1 and top-5 on a labelled set written here, class 0 among its labels (issue 27) ---------
CLASS_NAMES = [f"class{i}" for i in range(10)]


def _ranked_model(ranking: list[int]):
    """A tiny untrained Colorizer whose scene logits are the same for every photo: its last
    classifier layer's weights are 0 and its biases rank the classes (``ranking``: best first), so
    its top-1 and top-5 are known without running it."""
    from colorlib.model import Colorizer, ModelConfig

    torch.manual_seed(0)
    model = Colorizer(ModelConfig.preset("tiny", num_classes=len(CLASS_NAMES))).eval()
    last = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        for score, c in enumerate(reversed(ranking)):
            last.bias[c] = float(score)
    return model


# (ranking of the ten classes, best first; top-1 %, top-5 %) over four labelled photos of classes
# 0, 4, 5 and 9, counted by hand. 0..9: class 0 is the one top-1 hit, 0 and 4 are in the top five
# (25 %, 50 %); 9..0: 9 is top-1, 5 and 9 in the top five (25 %, 50 %); 3, 0, 1, 2, 6, ...: no
# top-1 hit, only class 0 in the top five (0 %, 25 %). Leaving class 0 out (taking its photos as
# unlabelled, or the class out of the ranking) gives 0 / 33 %, 33 / 67 % and 0 / 0 % instead.
RANKINGS = [(list(range(10)), 25.0, 50.0), (list(range(9, -1, -1)), 25.0, 50.0),
            ([3, 0, 1, 2, 6, 4, 5, 7, 8, 9], 0.0, 25.0)]
LABELS = [0, 4, 5, 9]


@pytest.mark.parametrize("ranking, top1, top5", RANKINGS)
def test_score_counts_class_0_in_top1_and_top5(photos, ranking, top1, top5):
    """colorlib.evaluate.score, the training-time path: labels given as class indices."""
    model = _ranked_model(ranking)
    x = torch.from_numpy(np.stack([photos[k][:64, :64] for k in ("astronaut", "coffee", "chelsea", "astronaut")]))
    s = summarise(score(model, x.permute(0, 3, 1, 2).contiguous(), torch.tensor(LABELS)))
    assert (s["top1"], s["top5"]) == (pytest.approx(top1), pytest.approx(top5))


@pytest.mark.parametrize("ranking, top1, top5", RANKINGS)
def test_evaluate_counts_class_0_on_a_labelled_folder(tmp_path, photos, cli, ranking, top1, top5):
    """colorlib evaluate on a folder written here: photos in folders named after the model's
    classes 0, 4, 5 and 9, one in a folder that is no class of the model and one at the top (no
    label); the model is saved and read back as a user's would be. Only the four labelled photos
    count, and the report's top-1 and top-5 are the ones counted by hand."""
    from colorlib.checkpoint import save_model

    root = tmp_path / "photos"
    for label, name in zip(LABELS, ("astronaut", "coffee", "chelsea", "rocket")):
        save(root / CLASS_NAMES[label] / f"{name}.png", skimage.data.rocket() if name == "rocket" else photos[name], 64)
    save(root / "kitchen" / "coffee.png", photos["coffee"], 64)  # not a class of this model
    save(root / "astronaut.png", photos["astronaut"], 64)  # unlabelled
    model_file = save_model(_ranked_model(ranking), tmp_path / "ranked.safetensors", {"classes": CLASS_NAMES})
    status, _, err = cli("evaluate", "--data", root, "--model", model_file, "--size", "64", "-q",
                         "--out", tmp_path / "r.json")
    assert status == 0, err
    r = json.loads((tmp_path / "r.json").read_text())
    got = r["models"][str(model_file)]
    assert got["classified"] == 4 and r["images"] == 6
    assert (got["top1"], got["top5"]) == (pytest.approx(top1), pytest.approx(top5))


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="free memory is read from /proc/meminfo")
def test_a_size_beyond_this_machines_memory_is_refused_before_any_work(folder, tmp_path, cli):
    """Found by the issue 25 break test: --size 100000 decoded the photos at 30 GB each until the
    process was killed (or the machine ran out of memory)."""
    for args in (["--gray"], ["--model", "miniplaces-full", "--limit", "1"]):
        status, out, err = cli("evaluate", "--data", folder, *args, "--size", "100000", "-q",
                               "--out", tmp_path / "r.json")
        assert status == 2 and out == "" and len(err.splitlines()) == 1, err
        assert err.startswith("colorlib evaluate: error: --size 100000: this evaluation needs at least ")
        assert err.endswith("GB free (give a smaller --size, --batch-size or --limit)\n")
    assert not (tmp_path / "r.json").exists()

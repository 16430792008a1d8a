"""colorlib classify: top classes from the grayscale version of each photo, with a shipped model."""

import json

import pytest
import torch
from PIL import Image

from colorlib.checkpoint import load_model
from colorlib.imageio import to_uint8
from colorlib.infer import lightness
from colorlib.lab import lab_to_rgb


@pytest.fixture(scope="module")
def images(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("classify")
    paths = {}
    for name in ("coffee", "astronaut"):
        paths[name] = root / f"{name}.png"
        Image.fromarray(photos[name]).save(paths[name])
    # the gray version as the model sees it: the photo's own L*, a*b* = 0, as 8-bit RGB
    L = lightness(photos["coffee"])
    gray = lab_to_rgb(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1))
    paths["coffee-gray"] = root / "coffee-gray.png"
    Image.fromarray(to_uint8(gray)[0].permute(1, 2, 0).numpy()).save(paths["coffee-gray"])
    return paths


def test_json_one_line_per_image(images, cli):
    status, out, _ = cli("classify", images["coffee"], images["astronaut"], "--json")
    lines = out.strip().splitlines()
    assert status == 0 and len(lines) == 2
    classes = set(load_model("miniplaces-full").meta["classes"])
    for line, path in zip(lines, (images["coffee"], images["astronaut"])):
        row = json.loads(line)
        assert set(row) == {"file", "top5"} and row["file"] == str(path)
        names = [name for name, _ in row["top5"]]
        probs = [p for _, p in row["top5"]]
        assert len(row["top5"]) == 5 and set(names) <= classes and len(set(names)) == 5
        assert not any(n.startswith("/") for n in names)  # as categories.txt, without /a/
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_only_the_gray_version_counts(images, cli):
    # the colour photo and its grayscale copy give the same answer: only L* is used
    _, out, _ = cli("classify", images["coffee"], images["coffee-gray"], "--json", "--top", "3")
    colour, gray = (json.loads(line) for line in out.strip().splitlines())
    assert len(colour["top3"]) == 3
    assert [n for n, _ in colour["top3"]] == [n for n, _ in gray["top3"]]
    assert [p for _, p in colour["top3"]] == pytest.approx([p for _, p in gray["top3"]], abs=2e-3)


def test_text_output(images, cli):
    status, out, _ = cli("classify", images["astronaut"])
    lines = out.splitlines()
    assert status == 0 and lines[0] == str(images["astronaut"]) and len(lines) == 6
    assert lines[1].strip().startswith("1. ") and lines[1].rstrip().endswith("%")


def test_baseline_and_missing_file_are_clear_errors(images, cli):
    status, _, err = cli("classify", images["coffee"], "--model", "miniplaces-baseline")
    assert status == 2 and "no classifier" in err and len(err.strip().splitlines()) == 1
    # a missing file is that input's failure: exit 1 and a count line (it was a usage error, exit 2)
    status, _, err = cli("classify", images["coffee"].with_name("missing.png"))
    assert status == 1 and "no such image" in err
    assert err.splitlines()[-1] == "colorlib classify: 0 classified, 1 failed"


def _strict(constant: str):
    raise ValueError(f"not strict JSON: {constant}")


def test_a_bad_photo_never_stops_the_batch(images, cli, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a photo")
    status, out, err = cli("classify", images["coffee"], bad, images["astronaut"], "--json")
    rows = [json.loads(line, parse_constant=_strict) for line in out.splitlines()]
    assert status == 1 and [r["file"] for r in rows] == [str(images["coffee"]), str(images["astronaut"])]
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"colorlib classify: error: {bad} is not an image PIL can read")
    assert lines[1] == "colorlib classify: 2 classified, 1 failed"


def test_a_nan_probability_fails_that_image_and_json_stays_strict(images, cli, monkeypatch):
    import colorlib.cli.classify

    real = colorlib.cli.classify.classify

    def nan_for_coffee(model, image, top=5):
        ranked = real(model, image, top)
        return [(name, float("nan")) for name, _ in ranked] if "coffee" in str(image) else ranked

    monkeypatch.setattr(colorlib.cli.classify, "classify", nan_for_coffee)
    status, out, err = cli("classify", images["coffee"], images["astronaut"], "--json")
    rows = [json.loads(line, parse_constant=_strict) for line in out.splitlines()]
    assert status == 1 and [r["file"] for r in rows] == [str(images["astronaut"])]
    assert err.splitlines() == [f"colorlib classify: error: {images['coffee']}: the model gave a probability "
                                "that is not a number (NaN)", "colorlib classify: 1 classified, 1 failed"]



def test_an_untrained_head_gets_a_note_and_class_names_never_reach_the_terminal_raw(images, cli, tmp_path):
    """Issue 25: a model trained without labels printed classes named 4, 2, ... from a head that
    was never trained, with no note; and class names from a model file's metadata were printed as
    they are (an escape sequence recolours the terminal, a newline forges a line)."""
    from colorlib.checkpoint import save_model
    from colorlib.model import Colorizer, ModelConfig

    model = Colorizer(ModelConfig(width=0.125, global_size=32, num_classes=4))
    save_model(model, tmp_path / "unlabelled.safetensors", {"classes": []})
    save_model(model, tmp_path / "alpha0.safetensors", {"classes": list("abcd"), "train": {"alpha": 0.0}})
    hostile = ["\x1b[31mred", "two\nlines", "\u202eright-to-left", "caf\u00e9 \u5317"]
    save_model(model, tmp_path / "hostile.safetensors", {"classes": hostile})
    for name, why in (("unlabelled", "was trained without class labels"), ("alpha0", "was trained with alpha 0")):
        status, out, err = cli("classify", images["coffee"], "--model", tmp_path / f"{name}.safetensors")
        assert status == 0 and len(out.splitlines()) == 5  # the photo's name and its four classes
        assert err == (f"colorlib classify: note: {tmp_path / name}.safetensors {why}"
                       f"{' (no class names)' if name == 'unlabelled' else ' (no classification loss, Eq. 6)'}"
                       ": its classification head is untrained, so its classes mean nothing\n")
    status, out, err = cli("classify", images["coffee"], "--model", tmp_path / "hostile.safetensors", "--top", 4)
    assert status == 0 and err == "" and len(out.splitlines()) == 5 and "\x1b" not in out and "\u202e" not in out
    shown = {line.split(". ", 1)[1].rsplit(None, 1)[0].strip() for line in out.splitlines()[1:]}
    assert shown == {"\\x1b[31mred", "two\\nlines", "\\u202eright-to-left", "caf\u00e9 \u5317"}
    status, out, _ = cli("classify", images["coffee"], "--model", tmp_path / "hostile.safetensors", "--json")
    assert {name for name, _ in json.loads(out)["top5"]} == set(hostile)  # JSON keeps them, escaped by JSON
    status, out, err = cli("classify", images["coffee"])
    assert status == 0 and err == ""  # a trained head: no note

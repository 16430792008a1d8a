"""The public API (issue 13, item 2): what ``import colorlib`` gives, documented."""

from __future__ import annotations

import inspect
from pathlib import Path

import colorlib

PUBLIC = {"Colorizer", "ModelConfig", "load_model", "colorize", "classify", "fold_batchnorm", "train",
          "TrainConfig"}


def test_the_public_names_are_exactly_the_api():
    assert set(colorlib.__all__) == PUBLIC
    assert all(hasattr(colorlib, name) for name in PUBLIC)


def test_every_public_name_is_documented_with_ranges_or_shapes_and_errors():
    for name in PUBLIC:
        doc = inspect.getdoc(getattr(colorlib, name)) or ""
        assert len(doc.split()) >= 15, f"colorlib.{name} needs a real docstring"
    for name in ("colorize", "classify", "load_model", "train"):
        assert "Raises" in inspect.getdoc(getattr(colorlib, name)) or "raise" in inspect.getdoc(
            getattr(colorlib, name)).lower(), f"colorlib.{name}: say what it raises"


def test_model_config_paper_is_table_1():
    cfg = colorlib.ModelConfig.paper()
    assert (cfg.num_classes, cfg.global_size, cfg.width, cfg.variant) == (205, 224, 1.0, "full")
    net = colorlib.Colorizer(cfg)
    # Table 1's first low-level layer: 64 3x3 filters at stride 2 over the one L* channel
    first = net.low_level.layers[0].layer
    assert tuple(first.weight.shape) == (64, 1, 3, 3) and first.stride == (2, 2)


def test_readme_python_example_uses_only_the_public_api(photos, tmp_path, monkeypatch):
    """The README's Python block, run as written on photos saved under its file names: it
    names only public ``colorlib.X`` attributes and writes the files it says."""
    import re

    from PIL import Image

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S)[1]
    used = set(re.findall(r"colorlib\.(\w+)", block))
    assert used and used <= set(colorlib.__all__), used - set(colorlib.__all__)
    for name, photo in (("photo.jpg", "coffee"), ("a.jpg", "chelsea"), ("b.jpg", "astronaut")):
        Image.fromarray(photos[photo]).save(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert Image.open("photo-color.png").size == Image.open("photo.jpg").size
    assert Path("a.jpg-raw.png").exists() and Path("b.jpg-raw.png").exists()
    model = scope["model"]
    top = colorlib.classify(model, photos["coffee"], top=5)
    assert len(top) == 5 and all(isinstance(c, str) and 0 <= p <= 1 for c, p in top)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert scope["ready"].is_folded and not model.is_folded

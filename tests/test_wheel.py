"""The wheel carries the shipped models: a plain (not editable) install into a fresh virtual
environment, used from a folder outside the repository, colorizes, classifies and describes with
them (issue 13, item 1). The new environment reuses this one's installed dependencies through a
``.pth`` line, so nothing is downloaded."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh environment with the built wheel installed in it."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what the wheel is made of: setuptools' build/ folder in a checkout can
    # hold files from an earlier build that the sources no longer have.
    src = tmp / "src"
    shutil.copytree(ROOT / "colorlib", src / "colorlib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("colorlib-*.whl"))
    env = tmp / "env"
    venv.create(env, with_pip=False)
    purelib = next(env.glob("lib/python*/site-packages"))
    (purelib / "_reuse_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    return env / "bin"


def run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True)


def test_the_wheel_holds_every_shipped_model_and_its_card(installed, tmp_path):
    out = run(installed, tmp_path, "python", "-c",
              "import colorlib, colorlib.checkpoint as c; print(colorlib.__file__); "
              "print(' '.join(c.available_models())); print(c.models_dir())")
    assert out.returncode == 0, out.stderr
    where, names, models = out.stdout.splitlines()
    assert str(ROOT) not in where and str(ROOT) not in models  # the installed copy, not the checkout
    shipped = sorted(p.name.split(".safetensors")[0] for p in (ROOT / "colorlib" / "models").glob("*.safetensors.gz"))
    assert names.split() == shipped and "miniplaces-full" in shipped
    assert all((Path(models) / f"{n}.md").is_file() for n in shipped)


def test_readme_commands_work_after_a_plain_install(installed, tmp_path):
    gray = np.asarray(Image.fromarray(skimage.data.coffee()).convert("L"))
    Image.fromarray(gray).save(tmp_path / "coffee.png")
    done = run(installed, tmp_path, "colorlib", "colorize", "coffee.png", "--model", "miniplaces-full",
               "-o", "coffee-color.png")
    assert done.returncode == 0, done.stderr
    result = np.asarray(Image.open(tmp_path / "coffee-color.png").convert("RGB")).astype(int)
    assert result.shape == (*gray.shape, 3)
    assert np.abs(result[..., 0] - result[..., 2]).mean() > 2  # colour, not gray
    classified = run(installed, tmp_path, "colorlib", "classify", "coffee.png", "--json")
    assert classified.returncode == 0, classified.stderr
    assert '"top5"' in classified.stdout
    info = run(installed, tmp_path, "colorlib", "info", "--model", "miniplaces-full")
    assert info.returncode == 0 and "miniplaces-full" in info.stdout and "validation" in info.stdout

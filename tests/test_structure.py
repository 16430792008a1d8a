"""The package's shape: no import circle, the library never imports the command line, short
functions, a public API that loads no notebook or plotting package."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "colorlib"
# The longest function allowed (issue 12: "no function longer than about 60 lines"); the training
# loop itself has its own, tighter bound below.
MAX_FUNCTION_LINES = 60
MAX_TRAIN_LOOP_LINES = 40


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every colorlib module ``name`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            submodules = [f"{stem}.{a.name}" for a in node.names if f"{stem}.{a.name}" in known]
            targets = submodules if len(submodules) == len(node.names) else [stem, *submodules]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_import_resolution_sees_relative_and_function_imports(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from .lab import rgb_to_lab\ndef g():\n    from . import model\n    from .cli import main\n"
                 "from . import __version__\n")
    known = {"colorlib", "colorlib.lab", "colorlib.model", "colorlib.cli", "colorlib.cli.common"}
    # `from . import model` is the submodule; `from . import __version__` reads the package itself
    assert imports_of("colorlib.infer", f, known) == {"colorlib.lab", "colorlib.model", "colorlib.cli",
                                                      "colorlib"}
    g = tmp_path / "y.py"
    g.write_text("from .. import model\nfrom . import common\n")
    assert imports_of("colorlib.cli.colorize", g, known) == {"colorlib.model", "colorlib.cli.common"}


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_library_never_imports_the_command_line():
    graph = import_graph()
    offenders = {m: sorted(i for i in deps if i == "colorlib.cli" or i.startswith("colorlib.cli."))
                 for m, deps in graph.items() if not (m == "colorlib.cli" or m.startswith("colorlib.cli."))
                 and m != "colorlib.__main__"}
    assert not {m: d for m, d in offenders.items() if d}


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno - node.lineno + 1


def test_no_long_functions():
    long = [f"{p.relative_to(PACKAGE.parent)}:{line} {name} ({n} lines)"
            for p in modules().values() for name, line, n in _functions(p) if n > MAX_FUNCTION_LINES]
    assert not long, "functions over about 60 lines:\n" + "\n".join(long)


def test_the_training_loop_fits_one_screen():
    sizes = {name: n for name, _, n in _functions(PACKAGE / "train.py")}
    assert sizes["train"] <= MAX_TRAIN_LOOP_LINES, f"train() is {sizes['train']} lines"


@pytest.mark.parametrize("heavy", ["matplotlib", "IPython", "ipywidgets", "sklearn", "jupyter_client",
                                   "colorlib.book", "colorlib.cli"])
def test_import_colorlib_loads_no_notebook_or_plotting_package(heavy):
    code = f"import sys, colorlib; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


#: The core of the package: the paper's pipeline, which PyTorch runs by default (issue 22).
CORE = ("colorlib.lab", "colorlib.colorspace", "colorlib.model", "colorlib.data", "colorlib.train",
        "colorlib.infer", "colorlib.metrics", "colorlib.evaluate", "colorlib.checkpoint")


def test_no_core_module_imports_the_onnx_wing():
    """ONNX is an explicit wing (colorlib.onnx): no core module imports it, at the top or in a
    function, directly or through another colorlib module."""
    graph = import_graph()

    def reach(name: str, seen: set[str]) -> set[str]:
        for dep in graph.get(name, ()):
            if dep not in seen:
                seen.add(dep)
                reach(dep, seen)
        return seen

    offenders = {m: sorted(d for d in reach(m, set()) if d == "colorlib.onnx" or d.startswith("colorlib.onnx."))
                 for m in CORE}
    assert not {m: d for m, d in offenders.items() if d}
    assert all(m in graph for m in CORE) and "colorlib.onnx.runtime" in graph  # the names are real


def test_colorize_loads_no_onnx_and_sets_no_environment(photos):
    """`import colorlib` and a whole colorize load neither onnx nor onnxruntime, and change no
    environment variable."""
    code = ("import os, sys, numpy as np, skimage.data, colorlib; before = dict(os.environ); "
            "m = colorlib.load_model('miniplaces-full'); colorlib.colorize(m, skimage.data.coffee()[::8, ::8]); "
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('onnx', 'onnxruntime', 'onnxscript') "
            "or n.startswith('colorlib.onnx')), dict(os.environ) == before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"


def test_no_stale_path_a_changed_network_changes_the_output(tmp_path, photos):
    """A learner who changes the network sees the effect at once: in a copy of the package, the
    output layer's sigmoid is changed, and `colorlib colorize` run again in a new process with
    the same environment (home, cache folders) gives other pixels."""
    import numpy as np
    from PIL import Image

    copy = tmp_path / "pkg" / "colorlib"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "models"))
    (copy / "models").symlink_to(PACKAGE / "models")
    Image.fromarray(photos["astronaut"][::4, ::4]).save(tmp_path / "a.png")
    env = {**os.environ, "PYTHONPATH": str(copy.parent), "HOME": str(tmp_path / "home"),
           "COLORLIB_CACHE": str(tmp_path / "cache")}

    def colorize(out: str) -> np.ndarray:
        run = subprocess.run([sys.executable, "-m", "colorlib", "colorize", str(tmp_path / "a.png"), "-o",
                              str(tmp_path / out), "-q"], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        return np.asarray(Image.open(tmp_path / out)).astype(int)

    before = colorize("before.png")
    model_py = copy / "model.py"
    source = model_py.read_text()
    assert source.count("return torch.sigmoid(self.output(") == 1
    model_py.write_text(source.replace("return torch.sigmoid(self.output(", "return torch.sigmoid(0.25 * self.output("))
    after = colorize("after.png")
    assert np.abs(after - before).max() > 5  # issue 22 saw up to 27 levels move


#: The colour spaces' names (colorlib.colorspace.SPACES, issue 22): only colorspace.py spells them.
SPACE_NAMES = {"lab", "yuv", "rgb"}


def space_switches(source: str) -> list[int]:
    """Lines of ``source`` that switch on a colour space by name: a comparison with a name (``==
    "lab"``, ``in ("yuv", "rgb")``), a name as a mapping key or in a list or tuple (a hard-coded
    ``choices``), or the word yuv anywhere (code, comments, docstrings)."""
    def named(node) -> bool:
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(named(e) for e in node.elts)
        return isinstance(node, ast.Constant) and node.value in SPACE_NAMES

    lines = {i for i, text in enumerate(source.splitlines(), 1) if re.search(r"\byuv\b", text)}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(named(n) for n in (node.left, *node.comparators)):
            lines.add(node.lineno)
        elif isinstance(node, ast.Dict) and any(k is not None and named(k) for k in node.keys):
            lines.add(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and named(node):
            lines.add(node.lineno)
    return sorted(lines)


def test_the_switch_finder_finds_planted_switches():
    planted = ('if space == "lab":\n    pass\nx = {"rgb": 3}\nchoices = ["lab", "other"]\n'
               '# a yuv model\nok = check(rgb, "rgb")\nsame = name in SPACES\n')
    assert space_switches(planted) == [1, 3, 4, 5]


def test_colour_spaces_are_named_only_in_colorspace_py():
    """Adding a colour space is one entry of colorspace.SPACES and its tests: no other module
    compares, lists or maps the names (the model's channels, the training target, the inference
    join, the evaluation and the command line's choices all read the table)."""
    found = {f"{p.relative_to(PACKAGE.parent)}:{line}" for p in modules().values() if p.name != "colorspace.py"
             or p.parent != PACKAGE for line in space_switches(p.read_text(encoding="utf-8"))}
    assert not found, sorted(found)

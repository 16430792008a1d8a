"""Model files and checkpoints are data, never code; a file that does not fit gets one line (issue 11).

Every bad file is made here, in tmp_path: nothing binary is committed.
"""

import errno
import gzip
import json
import pickle
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save as safetensors_bytes

from colorlib.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint, save_model
from colorlib.model import Colorizer, ModelConfig

REPO = Path(__file__).resolve().parents[1]
TINY = ModelConfig.preset("tiny", num_classes=4).to_dict()


class CreatesFile:
    """A pickle payload: unpickling it the unsafe way creates ``marker`` (``os.system`` could run
    anything just as well)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_payload_really_runs_when_unpickled(tmp_path):
    """The refusals below mean something: this payload does create its file when unpickled."""
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(CreatesFile(proof))).close()
    assert proof.exists()


def tiny_state(**cfg) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return Colorizer(ModelConfig(**{**TINY, **cfg})).state_dict()


def weights_file(path: Path, state: dict, model_cfg: dict | None = None, gz: bool = False, **extra) -> None:
    """A ``.safetensors[.gz]`` file as :func:`save_model` writes it, with any state, config and
    further metadata (``saturation=``, ``classes=``)."""
    meta = {"model": TINY if model_cfg is None else model_cfg, **extra}
    blob = safetensors_bytes({k: v.contiguous() for k, v in state.items()},
                             metadata={"colorlib": json.dumps(meta)})
    path.write_bytes(gzip.compress(blob) if gz else blob)


def poisoned(value: float, *names: str) -> dict:
    state = tiny_state()
    for name in names:
        state[name].view(-1)[1] = value
    return state


NAMES = list(tiny_state())  # the tensors in the network's order
FLOATS = [k for k, v in tiny_state().items() if v.is_floating_point() and v.numel() > 1]
FIRST_CONV = "low_level.layers.0.layer.weight"
COUNTER = next(k for k, v in tiny_state().items() if not v.is_floating_point())  # batch norm's step count
assert NAMES[0] == FIRST_CONV


def _evil_pt(path: Path, marker: Path) -> None:
    torch.save({"step": 1, "meta": {"model": TINY}, "model": CreatesFile(marker)}, path)


def _evil_raw(protocol: int):
    def make(path: Path, marker: Path) -> None:  # a bare pickle named .pt (torch's legacy format)
        path.write_bytes(pickle.dumps(CreatesFile(marker), protocol=protocol))

    return make


def _inf_checkpoint(path: Path, marker: Path) -> None:
    torch.save({"step": 3, "meta": {"model": TINY}, "model": poisoned(float("inf"), FLOATS[4])}, path)


def _cut(gz: bool):
    def make(path: Path, marker: Path) -> None:
        weights_file(path, tiny_state(), gz=gz)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    return make


def _meta(**extra):
    """A good tiny weights file whose metadata holds ``extra`` (JSON writes NaN as ``NaN``)."""
    return lambda p, m: weights_file(p, tiny_state(), **extra)


def _retyped(dtype: torch.dtype, name: str = FIRST_CONV):
    """A good tiny weights file with one tensor stored as ``dtype``."""
    def make(path: Path, marker: Path) -> None:
        state = tiny_state()
        state[name] = state[name].to(dtype)
        weights_file(path, state)

    return make


def _checkpoint_meta(path: Path, marker: Path) -> None:
    """A run's checkpoint.pt whose meta names 3 classes for a 4-class network."""
    torch.save({"step": 3, "meta": {"model": TINY, "classes": ["a", "b", "c"]}, "model": tiny_state()}, path)


def _drop(path: Path, marker: Path) -> None:
    state = tiny_state()
    del state[NAMES[7]]
    weights_file(path, state)


# (case, file name, how to make it, what the one line must say besides the file's name)
BAD_FILES = [
    ("pickle payload", "evil.pt", _evil_pt, r"is refused: unpickling it would call \S*open"),
    ("pickle payload, bare pickle", "evil-raw.pt", _evil_raw(2), r"is refused: unpickling it would call \S*open"),
    ("pickle payload, protocol 5", "evil-5.pt", _evil_raw(5), r"is refused: unpickling it would call \S*open"),
    ("NaN weights", "nan.safetensors",
     lambda p, m: weights_file(p, poisoned(float("nan"), FLOATS[2], FLOATS[7])),
     rf"tensor {re.escape(FLOATS[2])} holds non-finite values"),
    ("Inf weights", "inf.pt", _inf_checkpoint, rf"tensor {re.escape(FLOATS[4])} holds non-finite values"),
    ("unknown config key", "newer.safetensors", lambda p, m: weights_file(p, tiny_state(), {**TINY, "attention": 2}),
     r"config has the key 'attention', which this version of colorlib does not know"),
    ("wrong width", "wide.safetensors", lambda p, m: weights_file(p, tiny_state(width=0.25)),
     rf"tensor {re.escape(FIRST_CONV)} has shape \(16, 1, 3, 3\) in the file but \(8, 1, 3, 3\)"),
    ("missing tensor", "missing.safetensors", _drop, rf"tensor {re.escape(NAMES[7])} is missing"),
    ("extra tensor", "extra.safetensors",
     lambda p, m: weights_file(p, {**tiny_state(), "attention.weight": torch.ones(3)}),
     r"unexpected tensor attention\.weight"),
    ("truncated .safetensors", "cut.safetensors", _cut(gz=False), r"cannot read weights .*damaged"),
    ("truncated .safetensors.gz", "cut.safetensors.gz", _cut(gz=True), r"cannot read weights .*damaged"),
    ("empty file", "empty.safetensors", lambda p, m: p.write_bytes(b""), r"cannot read weights .*empty"),
    ("empty .pt", "empty.pt", lambda p, m: p.write_bytes(b""), r"cannot read .*empty"),
    ("text file named .pt", "notes.pt", lambda p, m: p.write_text("my model, trained last week\n"),
     r"cannot read .*not a PyTorch checkpoint"),
    # metadata that inference would trip over later and blame on --saturation or on the photo
    ("saturation a list", "s-list.safetensors", _meta(saturation=[1.2]), r"saturation is \[1\.2\]; .* \[0, 4\]"),
    ("saturation a string", "s-str.safetensors", _meta(saturation="1.2"), r"saturation is '1\.2'; .* \[0, 4\]"),
    ("saturation a bool", "s-bool.safetensors", _meta(saturation=True), r"saturation is True; .* \[0, 4\]"),
    ("saturation NaN", "s-nan.safetensors", _meta(saturation=float("nan")), r"saturation is nan; .* \[0, 4\]"),
    ("saturation too large", "s-big.safetensors", _meta(saturation=4.5), r"saturation is 4\.5; .* \[0, 4\]"),
    ("saturation negative", "s-neg.safetensors", _meta(saturation=-1), r"saturation is -1; .* \[0, 4\]"),
    ("classes too few", "c-few.safetensors", _meta(classes=["a", "b", "c"]),
     r"names 3 classes, but its network has 4"),
    ("classes too many", "c-many.pt", _checkpoint_meta, r"names 3 classes, but its network has 4"),
    ("classes a string", "c-str.safetensors", _meta(classes="abcd"), r"classes are 'abcd'; .* \(strings\)"),
    ("classes not strings", "c-int.safetensors", _meta(classes=[1, 2, 3, 4]), r"classes are \[1, 2, 3, 4\]"),
    ("complex weights", "complex.safetensors", _retyped(torch.complex64),
     rf"tensor {re.escape(FIRST_CONV)} is complex64, but the network needs real numbers"),
    ("bool weights", "bool.safetensors", _retyped(torch.bool),
     rf"tensor {re.escape(FIRST_CONV)} is bool, but the network needs real numbers"),
    ("integer weights", "int.safetensors", _retyped(torch.int32),
     rf"tensor {re.escape(FIRST_CONV)} is int32, but the network needs real numbers"),
    ("float step counter", "count.safetensors", _retyped(torch.float32, COUNTER),
     rf"tensor {re.escape(COUNTER)} is float32, but the network needs whole numbers"),
]


@pytest.fixture(params=BAD_FILES, ids=[case[0] for case in BAD_FILES])
def bad_file(request, tmp_path):
    _, name, make, says = request.param
    path, marker = tmp_path / name, tmp_path / "marker"
    make(path, marker)
    assert not marker.exists()
    return path, marker, says


def test_a_bad_model_file_is_one_line_naming_it(bad_file):
    path, marker, says = bad_file
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message and re.search(says, message), message
    assert not marker.exists()


def test_colorlib_info_says_the_same_one_line(bad_file, cli):
    path, marker, says = bad_file
    status, out, err = cli("info", "--model", path)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and str(path) in err and re.search(says, err), err
    assert not marker.exists()


@pytest.fixture
def evil(tmp_path, monkeypatch, photos):
    """evil.pt and x.png in the current folder; evil.pt would create ``marker`` when unpickled."""
    monkeypatch.chdir(tmp_path)
    _evil_pt(tmp_path / "evil.pt", tmp_path / "marker")
    Image.fromarray(photos["camera"][:64, :64]).save(tmp_path / "x.png")
    return tmp_path / "marker"


def test_colorize_with_a_pickle_model_refuses_it_and_runs_nothing(evil, cli, tmp_path):
    status, out, err = cli("colorize", "--model", "evil.pt", "x.png")
    assert status == 2
    assert len(err.splitlines()) == 1 and "evil.pt" in err and "refused" in err, err
    assert not evil.exists() and not (tmp_path / "x-color.png").exists()


def test_info_with_a_pickle_model_refuses_it_and_runs_nothing(evil, cli):
    status, out, err = cli("info", "--model", "evil.pt")
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and "evil.pt" in err and "refused" in err, err
    assert not evil.exists()


def test_resuming_a_run_whose_checkpoint_is_a_pickle_payload_is_refused(tmp_path, cli):
    run = tmp_path / "run"
    run.mkdir()
    _evil_pt(run / "checkpoint.pt", tmp_path / "marker")
    status, out, err = cli("train", "--out", run, "--resume", "--device", "cpu", "-q")
    assert status == 2 and len(err.splitlines()) == 1 and "checkpoint.pt is refused" in err, err
    assert not (tmp_path / "marker").exists() and sorted(p.name for p in run.iterdir()) == ["checkpoint.pt"]
    with pytest.raises(CheckpointError, match="is refused"):  # and through the library
        read_checkpoint(run / "checkpoint.pt")
    assert not (tmp_path / "marker").exists()


def test_a_good_file_of_each_kind_loads_exactly(tmp_path):
    """The checks refuse only what is wrong: float32 weights, float16 and gzipped files load."""
    torch.manual_seed(0)
    model = Colorizer(ModelConfig(**TINY)).eval()
    save_model(model, tmp_path / "m.safetensors", {"classes": list("abcd")}, half=False)
    save_model(model, tmp_path / "m.safetensors.gz", {"classes": list("abcd")})
    exact = load_model(tmp_path / "m.safetensors")
    assert exact.meta["classes"] == list("abcd") and not exact.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), exact.state_dict().values()))
    half = load_model(tmp_path / "m.safetensors.gz")
    assert all(p.dtype == torch.float32 for p in half.parameters())
    assert all(torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-3)
               for a, b in zip(model.state_dict().values(), half.state_dict().values()))
    # a run trained on a folder of unlabelled photos names no classes; saturation as an int is fine
    save_model(model, tmp_path / "unlabelled.safetensors", {"classes": [], "saturation": 1})
    assert load_model(tmp_path / "unlabelled.safetensors").meta["classes"] == []


def test_a_checkpoint_holds_only_plain_data(tmp_path):
    """save_checkpoint refuses, before writing, state that weights_only loading would refuse."""
    model = Colorizer(ModelConfig(**TINY))
    opt = torch.optim.Adadelta(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    with pytest.raises(CheckpointError, match=r"checkpoint\['meta'\]\['when'\] is a numpy\.float64") as e:
        save_checkpoint(tmp_path / "c.pt", model, opt, sched, 1, {"model": TINY, "when": np.float64(1.5)})
    assert "\n" not in str(e.value) and not (tmp_path / "c.pt").exists()
    save_checkpoint(tmp_path / "c.pt", model, opt, sched, 1, {"model": TINY, "when": 1.5})
    state = read_checkpoint(tmp_path / "c.pt")
    assert state["step"] == 1 and state["meta"]["when"] == 1.5 and set(state) == {
        "step", "meta", "model", "optimizer", "scheduler"}


def test_a_failed_model_write_keeps_the_previous_file(tmp_path, monkeypatch):
    model = Colorizer(ModelConfig(**TINY))
    target = tmp_path / "m.safetensors"
    save_model(model, target)
    before = target.read_bytes()

    def full_disk(self, data):
        with open(self, "wb") as f:
            f.write(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(CheckpointError) as e:
        save_model(Colorizer(ModelConfig(**{**TINY, "width": 0.25})), target)
    monkeypatch.undo()
    assert str(e.value) == (f"could not write {target}: no space left on the device. The previous file is "
                            "intact. Free some space and retry.")
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


# -- no load of a pickle that could run code, anywhere in the repository-----------------------
_LOAD = re.compile(r"\btorch(?:\.serialization)?\.load\b|\bfrom\s+torch(?:\.serialization)?\s+import\s[^\n]*\bload\b")


def unsafe_loads(text: str) -> list[str]:
    """Every use of torch's load in ``text`` that is not a call with ``weights_only=True``."""
    bad = []
    for m in _LOAD.finditer(text):
        rest = text[m.end():]
        if m.group().startswith("from") or not rest.lstrip().startswith("("):
            bad.append(m.group())  # imported or aliased: its calls cannot be checked here
            continue
        depth, end = 0, len(rest)
        for i, ch in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if ch == ")" and depth == 0:
                end = i + 1
                break
        call = m.group() + rest[:end]
        if not re.search(r"\bweights_only\s*=\s*True\b", call):
            bad.append(call)
    return bad


def test_the_scan_finds_every_unsafe_form():
    load = "torch." + "load"  # split, so this file does not hold what it looks for
    assert unsafe_loads(f"{load}(f)") == [f"{load}(f)"]
    assert unsafe_loads(f"x = {load}(f,\n   weights_only=False)\n") == [f"{load}(f,\n   weights_only=False)"]
    assert unsafe_loads(f"read = {load}\n") == [load]
    assert unsafe_loads("from torch " + "import nn, load\n") == ["from torch " + "import nn, load"]
    assert unsafe_loads(f"{load}(open(p, 'rb'), map_location=dev(0), weights_only=True)") == []
    assert unsafe_loads(f'"{load}(p,\\n", "    weights_only=True)"') == []  # a notebook cell's lines
    assert unsafe_loads("model.load_state_dict(state)") == []


def _repository_files() -> list[Path]:
    """The repository's tracked (and new, not ignored) .py, .md, .ipynb and .sh files."""
    suffixes = (".py", ".md", ".ipynb", ".sh")
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO, capture_output=True, check=True, timeout=60).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):  # not a git checkout (an unpacked archive)
        skip = {"node_modules", "_build", "__pycache__"}
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if not any(part.startswith(".") or part in skip for part in p.relative_to(REPO).parts)]
    return [REPO / n for n in names if n.endswith(suffixes) and (REPO / n).is_file()]


def test_no_file_in_the_repository_loads_with_torch_load_unsafely():
    files = _repository_files()
    assert any(f.name == "checkpoint.py" for f in files)  # the scan sees the package
    found = {str(f.relative_to(REPO)): unsafe_loads(f.read_text(errors="replace")) for f in files}
    assert {k: v for k, v in found.items() if v} == {}


def test_files_with_the_old_name_of_the_global_network_load(tmp_path):
    """colorlib 0.1 named the global features network's tensors global_features.*; the shipped
    files still do, and load under today's name (global_network.*) with every weight in place."""
    from safetensors.torch import load as load_safetensors

    from colorlib.checkpoint import _read_bytes, resolve_model_path

    path = resolve_model_path("miniplaces-full")
    raw = load_safetensors(_read_bytes(path))
    old = [k for k in raw if k.startswith("global_features.")]
    model = load_model("miniplaces-full")
    assert old, "the shipped file no longer has old names: drop this test and the upgrade"
    for k in old:
        new = model.state_dict()["global_network." + k[len("global_features."):]]
        assert torch.equal(new, raw[k].float())


@pytest.mark.parametrize("field, value", [("num_classes", 3.5), ("num_classes", True), ("num_classes", 10**11),
                                          ("global_size", 64.0), ("global_size", 32_000_000), ("width", "wide")])
def test_config_values_of_the_wrong_type_or_size_are_one_line(tmp_path, field, value):
    """A model file whose config has a value of the wrong type or an absurd size: one line naming
    the file (not a traceback from deep inside torch, nor an attempt to allocate terabytes)."""
    from safetensors.torch import save_file

    from colorlib.model import Colorizer, ModelConfig

    cfg = ModelConfig.preset("tiny").to_dict()
    state = {k: v.contiguous() for k, v in Colorizer(ModelConfig.preset("tiny")).state_dict().items()}
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path), metadata={"colorlib": json.dumps({"model": cfg | {field: value}})})
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    assert str(path) in str(e.value) and field in str(e.value) and "\n" not in str(e.value)


def test_a_config_naming_a_huge_network_is_refused_before_any_allocation(tmp_path, monkeypatch):
    """Every config value within its bounds, yet width 4 and global_size 4096 would allocate
    hundreds of GB: the tensors are compared with a shape-only (meta-device) network first, so
    the file is refused in one line and no real network of that size is ever built."""
    from colorlib import checkpoint
    from colorlib.model import Colorizer

    model = load_model("miniplaces-baseline")
    meta = dict(model.meta)
    meta["model"] = {**meta["model"], "width": 4, "global_size": 4096}
    save_model(model, tmp_path / "huge.safetensors", meta, half=False)
    built = []

    class Watched(Colorizer):
        def __init__(self, cfg):
            built.append(torch.empty(0).device.type)  # the device a network is built on
            super().__init__(cfg)

    monkeypatch.setattr(checkpoint, "Colorizer", Watched)
    with pytest.raises(CheckpointError, match=r"huge.safetensors: tensor low_level.layers.0.layer.weight "
                                              r"has shape \(32, 1, 3, 3\) in the file but \(256, 1, 3, 3\)"):
        load_model(tmp_path / "huge.safetensors")
    assert built == ["meta"]

"""ONNX export (colorlib.export) and the ONNX Runtime engine (colorlib.engine).

The contract (issue 14): every shipped model's graphs agree with PyTorch, max |difference| in
normalised a*b* below 1e-4, at 128x128, 300x451 and 37x1000; the baseline exports a colorizer
that takes only L*; the engine returns what colorlib.infer.predict_ab returns.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from colorlib.checkpoint import available_models, load_model  # noqa: E402

#: what exports to ONNX: the L*a*b* models (the colour-space comparison's YUV and RGB ones do not)
LAB_MODELS = [n for n in available_models() if load_model(n).cfg.color_space == "lab"]
from colorlib.engine import OnnxColorizer, onnx_engine  # noqa: E402
from colorlib.export import OPSET, export_onnx, read_manifest  # noqa: E402
from colorlib.infer import colorize, default_saturation, predict_ab, resolve_engine  # noqa: E402
from colorlib.io import WriteError  # noqa: E402
from colorlib.lab import rgb_to_lab  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(128, 128), (300, 451), (37, 1000)]
TOL = 1e-4  # normalised a*b* (the network's [0, 1] output)


def photo_L(photo: np.ndarray, H: int, W: int) -> torch.Tensor:
    """L* in [0, 100], (1, 1, H, W), of a real photo resized to H x W."""
    rgb = np.array(Image.fromarray(photo).convert("RGB").resize((W, H), Image.Resampling.BICUBIC))
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)[:, :1]


def session(path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a shared CPU: no busy waits
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """Every shipped model exported once: name -> (model, folder, manifest)."""
    out = {}
    for name in LAB_MODELS:
        model = load_model(name)
        folder = tmp_path_factory.mktemp(name)
        out[name] = (model, folder, export_onnx(model, folder))
    return out


@pytest.mark.parametrize("name", LAB_MODELS)
def test_export_agrees_with_pytorch(exports, photos, name):
    model, folder, manifest = exports[name]
    colorizer = session(folder / "colorizer.onnx")
    full = model.cfg.variant == "full"
    for H, W in SIZES:
        x = photo_L(photos["astronaut"], H, W) / 100
        with torch.no_grad():
            want = model(x)
        feeds = {"L": x.numpy()}
        if full:
            feeds["global_features"] = want.global_features.numpy()
        (ab,) = colorizer.run(None, feeds)
        assert ab.shape == (1, 2, (H + 1) // 2, (W + 1) // 2)
        assert np.abs(ab - want.ab.numpy()).max() < TOL, (name, H, W)
    names = [i.name for i in colorizer.get_inputs()]
    assert names == (["L", "global_features"] if full else ["L"])
    assert (folder / "global.onnx").exists() == full
    assert set(manifest["graphs"]) == ({"global", "colorizer"} if full else {"colorizer"})


@pytest.mark.parametrize("name", ["miniplaces-full", "sweep-alpha-0"])
def test_global_graph_and_the_two_graphs_chained(exports, photos, name):
    model, folder, _ = exports[name]
    s = model.cfg.global_size
    x = torch.cat([photo_L(photos[p], s, s) for p in ("chelsea", "camera", "coffee")]) / 100
    g, probs = session(folder / "global.onnx").run(None, {"L": x.numpy()})
    with torch.no_grad():
        want_g, logits = model.global_branch(x)
    assert np.abs(g - want_g.numpy()).max() < TOL
    assert np.abs(probs - logits.softmax(1).numpy()).max() < TOL
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    # Figure 2 end to end: the global graph on the rescaled copy feeds the colorizer graph
    L = photo_L(photos["astronaut"], 300, 451) / 100
    small = model.resize_for_global(L)
    (g,) = session(folder / "global.onnx").run(["global_features"], {"L": small.numpy()})
    (ab,) = session(folder / "colorizer.onnx").run(None, {"L": L.numpy(), "global_features": g})
    with torch.no_grad():
        assert np.abs(ab - model(L).ab.numpy()).max() < TOL


def test_manifest(exports):
    model, folder, manifest = exports["miniplaces-full"]
    assert read_manifest(folder) == manifest == json.loads((folder / "manifest.json").read_text())
    for g in manifest["graphs"].values():
        assert g["sha256"] == hashlib.sha256((folder / g["file"]).read_bytes()).hexdigest()
    assert manifest["config"] == model.cfg.to_dict()
    assert manifest["classes"] == model.meta["classes"] and len(manifest["classes"]) == 100
    assert manifest["saturation"] == default_saturation(model) == 1.2
    assert manifest["opset"] == OPSET
    import onnx

    proto = onnx.load(folder / "colorizer.onnx")
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == \
        ["N", 1, "H", "W"]
    # batch norm folded: no BatchNormalization node, and nothing of the training graph
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node}
    text = json.dumps(manifest)
    assert str(folder) not in text and model.source not in text  # no paths of this machine
    base = exports["miniplaces-baseline"][2]
    assert base["classes"] is None and list(base["graphs"]["colorizer"]["inputs"]) == ["L"]


def test_read_manifest_refuses_a_changed_graph(exports, tmp_path):
    folder = shutil.copytree(exports["miniplaces-baseline"][1], tmp_path / "copy")
    data = bytearray((folder / "colorizer.onnx").read_bytes())
    data[-1] ^= 1
    (folder / "colorizer.onnx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="colorizer.onnx: its sha256 does not match"):
        read_manifest(folder)
    (folder / "colorizer.onnx").unlink()
    with pytest.raises(ValueError, match="colorizer.onnx: missing"):
        read_manifest(folder)


def test_export_into_a_file_is_one_line_error(exports, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError) as e:
        export_onnx(exports["miniplaces-baseline"][0], tmp_path / "file" / "out")
    assert "file" in str(e.value) and "\n" not in str(e.value)


def test_engine_is_predict_ab(exports, photos, tmp_path):
    model = exports["miniplaces-full"][0]
    engine = OnnxColorizer(model, cache=tmp_path)
    L = photo_L(photos["astronaut"], 300, 451)
    other = photo_L(photos["coffee"], 200, 260)
    mix = torch.lerp(model.encode_global(model.resize_for_global(L / 100)),
                     model.encode_global(model.resize_for_global(other / 100)), 0.5).detach()
    outs = []
    with torch.inference_mode():
        for kw in ({}, {"global_L": other}, {"global_features": mix}):
            want, got = predict_ab(model, L, **kw), engine.predict_ab(L, **kw)
            assert got.shape == want.shape == (1, 2, 300, 451) and got.dtype == torch.float32
            assert (got - want).abs().max() < TOL * 255, kw
            outs.append(got)
        assert (outs[0] - outs[1]).abs().max() > 1  # the other photo's global features are used
        g, probs = engine.global_branch(L)
        want_g, logits = model.global_branch(model.resize_for_global(L / 100))
    assert torch.allclose(engine.encode_global(L), want_g, atol=TOL) and torch.allclose(g, want_g, atol=TOL)
    assert torch.allclose(probs, logits.softmax(1), atol=TOL)
    assert engine.folder.parent == tmp_path and read_manifest(engine.folder)["name"] == "miniplaces-full"


def test_engine_baseline_and_batches(exports, photos, tmp_path):
    model = exports["miniplaces-baseline"][0]
    engine = OnnxColorizer(model, cache=tmp_path)
    L = torch.cat([photo_L(photos[p], 37, 100) for p in ("astronaut", "coffee", "chelsea")])
    with torch.inference_mode():
        assert (engine.predict_ab(L) - predict_ab(model, L)).abs().max() < TOL * 255
    with pytest.raises(ValueError, match="baseline"):
        engine.encode_global(L)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        engine.predict_ab(L[:, 0])
    # Sessions never busy-wait between runs: a spinning pool takes the cores the next session
    # (or torch) needs, which made predict_ab about twice as slow on a 2-core CPU.
    opts = engine._colorizer.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_engine_cache_reused_and_fallback(exports, photos, tmp_path, monkeypatch):
    import colorlib.engine

    model = exports["miniplaces-baseline"][0]
    first = OnnxColorizer(model, cache=tmp_path)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds the graphs")

    monkeypatch.setattr(colorlib.engine, "export_onnx", no_export)
    second = OnnxColorizer(model, cache=tmp_path)
    assert second.folder == first.folder and second.manifest == first.manifest
    monkeypatch.undo()
    (tmp_path / "not-a-folder").write_text("")  # the cache cannot be written: a temporary export
    engine = OnnxColorizer(model, cache=tmp_path / "not-a-folder")
    L = photo_L(photos["camera"], 64, 80)
    assert engine.folder is None
    with torch.inference_mode():
        assert (engine.predict_ab(L) - predict_ab(model, L)).abs().max() < TOL * 255


def test_onnx_engine_kept_until_weights_change(exports, tmp_path, monkeypatch):
    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path))
    model = load_model("miniplaces-baseline")
    engine = onnx_engine(model)
    assert onnx_engine(model) is engine and engine.folder.parent == tmp_path / "onnx"
    with torch.no_grad():
        model.colorization.output.bias.data += 0.5
    changed = onnx_engine(model)
    assert changed is not engine and changed.folder != engine.folder
    L = torch.full((1, 1, 16, 16), 50.0)
    with torch.inference_mode():
        assert (changed.predict_ab(L) - predict_ab(model, L)).abs().max() < TOL * 255


@pytest.mark.parametrize(("missing", "module"), [("onnxruntime", "colorlib.engine"),
                                                 ("onnx", "colorlib.export")])
def test_import_without_the_extra_is_one_line(monkeypatch, missing, module):
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    monkeypatch.delitem(sys.modules, module)
    if module == "colorlib.export":
        monkeypatch.delitem(sys.modules, "colorlib.engine")
    with pytest.raises(ImportError) as e:
        importlib.import_module(module)
    assert 'pip install "colorlib[onnx]"' in str(e.value) and "\n" not in str(e.value)


def test_load_graphs_runs_the_given_files(exports, photos, tmp_path):
    model, _, _ = exports["miniplaces-full"]
    other, other_folder, _ = exports["sweep-alpha-0"]  # same config, other weights
    engine = OnnxColorizer(model, cache=tmp_path)
    engine.load_graphs(other_folder / "colorizer.onnx", other_folder / "global.onnx")
    L = photo_L(photos["chelsea"], 90, 120)
    with torch.inference_mode():
        assert (engine.predict_ab(L) - predict_ab(other, L)).abs().max() < TOL * 255
        assert (engine.predict_ab(L) - predict_ab(model, L)).abs().max() > 1
    with pytest.raises(ValueError, match="full variant needs a global graph"):
        engine.load_graphs(other_folder / "colorizer.onnx")
    base = OnnxColorizer(exports["miniplaces-baseline"][0], cache=tmp_path)
    with pytest.raises(ValueError, match="baseline variant needs no global graph"):
        base.load_graphs(other_folder / "colorizer.onnx", other_folder / "global.onnx")


def test_colorize_on_the_onnx_engine_matches_torch(photos, tmp_path, cli):
    """colorize(engine="onnx") and `colorlib colorize --engine onnx` give torch's picture: the
    a*b* agree to 1e-4 (normalised), so the 8-bit result differs by at most one level."""
    model = load_model("miniplaces-full")
    image = photos["chelsea"][::2, ::2]
    want = np.asarray(colorize(model, image, engine="torch")).astype(int)
    got = np.asarray(colorize(model, image, engine="onnx")).astype(int)
    assert np.abs(got - want).max() <= 1
    with pytest.raises(ValueError, match="engine must be one of auto, torch, onnx"):
        colorize(model, image, engine="tensorrt")
    Image.fromarray(image).save(tmp_path / "cat.png")
    status, _, err = cli("colorize", tmp_path / "cat.png", "-o", tmp_path / "cat-onnx.png", "--engine", "onnx")
    assert status == 0, err
    assert np.abs(np.asarray(Image.open(tmp_path / "cat-onnx.png")).astype(int) - want).max() <= 1


# -- the default engine: "auto" -----------------------------------------------------------------
def test_auto_engine_is_onnx_only_where_it_can_run_the_model(monkeypatch):
    """auto: ONNX Runtime for an L*a*b* model as loaded (or its folded copy), on the CPU, in
    float32, folded; PyTorch for anything else, and everywhere when the extra is missing."""
    import colorlib.infer
    from colorlib.model import Colorizer, fold_batchnorm

    model = load_model("miniplaces-full")
    assert resolve_engine(model) == "onnx" and resolve_engine(fold_batchnorm(model), "auto") == "onnx"
    assert resolve_engine(load_model("miniplaces-baseline")) == "onnx"
    assert resolve_engine(model, fold=False) == "torch"  # the export is folded; unfolded is torch's
    assert resolve_engine(load_model("colorspace-yuv")) == "torch"  # the export is L*a*b* only
    assert resolve_engine(load_model("miniplaces-full").to(torch.bfloat16)) == "torch"
    assert resolve_engine(Colorizer(model.cfg).eval()) == "torch"  # never loaded: weights may change
    assert [resolve_engine(model, e) for e in ("torch", "onnx")] == ["torch", "onnx"]
    with pytest.raises(ValueError, match="engine must be one of auto, torch, onnx, got 'gpu'"):
        resolve_engine(model, "gpu")
    monkeypatch.setattr(colorlib.infer, "_onnx_installed", lambda: False)
    assert resolve_engine(model) == "torch" and resolve_engine(model, "onnx") == "onnx"


def test_auto_engine_follows_the_weights():
    """A loaded model whose weights change (a training step, load_state_dict, an edit through
    .data) is no longer run on ONNX Runtime by auto: each change would mean a new export."""
    model = load_model("miniplaces-baseline")
    assert model.is_as_loaded
    with torch.no_grad():
        model.colorization.output.bias.data += 0.5  # bypasses the version counters: seen by the sums
    assert not model.is_as_loaded and resolve_engine(model) == "torch"
    model = load_model("miniplaces-baseline")
    model.load_state_dict(model.state_dict())
    assert not model.is_as_loaded
    model = load_model("miniplaces-baseline").train()
    optim = torch.optim.SGD(model.parameters(), lr=1e-3)
    model(torch.rand(2, 1, 32, 32)).ab.mean().backward()
    optim.step()
    assert not model.is_as_loaded and resolve_engine(model) == "torch"
    model.mark_as_loaded()  # e.g. after saving and loading it again
    assert model.is_as_loaded
    w = model.colorization.output.weight.data
    w.copy_(w[[1, 0]].clone())  # a*b* swapped behind autograd's back: same values, same sums
    assert not model.is_as_loaded


def test_auto_engine_sees_weights_moved_behind_its_back(photos, tmp_path, monkeypatch):
    """An engine already made is not reused after the weights change through .data, even when
    only their order does: colorize gives the new weights' colours."""
    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path))
    model = load_model("miniplaces-baseline")
    image = photos["coffee"][::4, ::4]
    before = np.asarray(colorize(model, image, engine="onnx")).astype(int)
    for p in (model.colorization.output.weight, model.colorization.output.bias):
        p.data.copy_(p.data[[1, 0]].clone())
    after = np.asarray(colorize(model, image, engine="onnx")).astype(int)
    want = np.asarray(colorize(model, image, engine="torch")).astype(int)
    assert np.abs(after - want).max() <= 1 and np.abs(after - before).max() > 10


def test_auto_engine_and_the_cache(photos, tmp_path, monkeypatch):
    """A model and its folded copy share one export; a cache that cannot be written means
    PyTorch (one warning) rather than an export on every call; a damaged manifest is exported
    again; from a thread other than the main one, auto runs PyTorch until the graphs are cached."""
    import threading

    from colorlib.engine import is_cached
    from colorlib.model import fold_batchnorm

    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path / "cache"))
    model = load_model("miniplaces-baseline")
    image = photos["camera"][::4, ::4]
    torch_ = np.asarray(colorize(model, image, engine="torch")).astype(int)
    got = {}
    worker = threading.Thread(target=lambda: got.setdefault("thread", colorize(model, image)))
    worker.start()
    worker.join()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("manifest.json"))
    assert np.array_equal(np.asarray(got["thread"]), torch_.astype(np.uint8))
    colorize(model, image)  # the main thread exports
    assert is_cached(model) and is_cached(fold_batchnorm(model))
    assert len(list((tmp_path / "cache" / "onnx").iterdir())) == 1
    folder = next((tmp_path / "cache" / "onnx").iterdir())
    (folder / "manifest.json").write_text('{"graphs": []}')
    assert not is_cached(model)
    fresh = load_model("miniplaces-baseline")
    assert np.abs(np.asarray(colorize(fresh, image)).astype(int) - torch_).max() <= 1 and is_cached(fresh)

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path / "file"))
    other = load_model("miniplaces-baseline")
    with pytest.warns(RuntimeWarning, match=r"cannot be written; set COLORLIB_CACHE\)$"):
        assert np.array_equal(np.asarray(colorize(other, image)).astype(int), torch_)
    assert resolve_engine(other) == "torch"


def test_colorize_defaults_to_auto(photos, tmp_path, monkeypatch):
    """colorize's default runs a loaded model on ONNX Runtime: the picture of engine="onnx"
    exactly, within one 8-bit level of PyTorch's, with its graphs exported once into the cache."""
    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path))
    model = load_model("miniplaces-full")
    image = photos["coffee"][::2, ::2]
    auto = np.asarray(colorize(model, image))
    assert (tmp_path / "onnx").is_dir() and len(list((tmp_path / "onnx").iterdir())) == 1
    assert np.array_equal(auto, np.asarray(colorize(model, image, engine="onnx")))
    assert np.abs(auto.astype(int) - np.asarray(colorize(model, image, engine="torch"))).max() <= 1


def test_auto_falls_back_to_torch_when_onnx_fails(photos, tmp_path, monkeypatch):
    """When the export fails, auto colorizes with PyTorch after one RuntimeWarning, and does
    not try that model again; engine="onnx" raises the failure instead."""
    import warnings

    import colorlib.engine

    def broken_export(*args, **kwargs):
        raise RuntimeError("\x1b[96mexporter broke\x1b[0m\non two lines")  # one line, no colour codes

    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(colorlib.engine, "export_onnx", broken_export)
    model = load_model("miniplaces-baseline")
    image = photos["camera"][::4, ::4]
    with pytest.warns(RuntimeWarning, match=r"colorizing with PyTorch: ONNX Runtime could not run this "
                                            r"model \(exporter broke\)$"):
        got = np.asarray(colorize(model, image))
    assert np.array_equal(got, np.asarray(colorize(model, image, engine="torch")))
    assert resolve_engine(model) == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        colorize(model, image)  # no second warning, no second try
    with pytest.raises(RuntimeError, match="exporter broke"):
        colorize(model, image, engine="onnx")


def test_cli_colorize_defaults_to_auto(photos, tmp_path, monkeypatch, cli):
    """`colorlib colorize` runs auto by default: the first run of a model says, on one line of
    stderr, that it exports the graphs, later runs do not; a failed export is one note line and
    the photo is colorized all the same."""
    import colorlib.engine

    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path / "cache"))
    Image.fromarray(photos["chelsea"][::2, ::2]).save(tmp_path / "cat.png")
    outs = {}
    for run in ("first", "second", "torch"):
        engine = ["--engine", "torch"] if run == "torch" else []
        status, _, err = cli("colorize", tmp_path / "cat.png", "-o", tmp_path / f"{run}.png", *engine)
        assert status == 0, err
        assert ("exporting miniplaces-full for ONNX Runtime (once for this model" in err) == (run == "first"), err
        outs[run] = np.asarray(Image.open(tmp_path / f"{run}.png")).astype(int)
    assert np.array_equal(outs["first"], outs["second"]) and np.abs(outs["first"] - outs["torch"]).max() <= 1
    status, out, _ = cli("colorize", "--help")
    assert "auto (default)" in " ".join(out.split())

    def broken_export(*args, **kwargs):
        raise RuntimeError("no room")

    monkeypatch.setattr(colorlib.engine, "export_onnx", broken_export)
    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path / "other-cache"))
    status, _, err = cli("colorize", tmp_path / "cat.png", "-o", tmp_path / "fallback.png", "--model",
                         "miniplaces-baseline")
    assert status == 0, err
    notes = [line for line in err.splitlines() if "PyTorch" in line]
    assert notes == [f"colorlib colorize: note: {tmp_path / 'cat.png'}: colorizing with PyTorch: ONNX Runtime "
                     "could not run this model (no room)"], err
    assert (tmp_path / "fallback.png").is_file()


def test_default_engine_writes_only_its_cache(photos, tmp_path):
    """`colorlib colorize` in a fresh home folder: the export goes to ~/.cache/colorlib/onnx and
    nothing else is written there (ONNX Runtime's usage events are turned off); a second run
    with a damaged manifest exports again and succeeds."""
    import os
    import subprocess

    home = tmp_path / "home"
    home.mkdir()
    Image.fromarray(photos["astronaut"][::8, ::8]).save(tmp_path / "a.png")
    env = {k: v for k, v in os.environ.items() if k not in ("COLORLIB_CACHE", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    command = [sys.executable, "-m", "colorlib", "colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out")]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "exporting miniplaces-full for ONNX Runtime" in run.stderr, run.stderr
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert written and all(p.startswith(".cache/colorlib/onnx/") for p in written), written
    manifest = next(home.rglob("manifest.json"))
    manifest.write_text('{"graphs": {"colorizer": 1}}')
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "exporting miniplaces-full" in run.stderr, run.stderr
    assert json.loads(manifest.read_text())["graphs"]["colorizer"]["file"] == "colorizer.onnx"


def test_onnx_runtime_out_of_memory_is_one_line(photos, tmp_path, monkeypatch):
    """ONNX Runtime failing to allocate (its error derives from Exception only) reaches the
    caller as colorize's one-line MemoryError with the size and an estimate, as PyTorch's does;
    its other errors stay what they are."""
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    monkeypatch.setenv("COLORLIB_CACHE", str(tmp_path))
    model = load_model("miniplaces-full")
    colorize(model, photos["coffee"][:16, :16])  # the engine made (and exported) before the failure
    failure = {"error": RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status "
                                         "code returned while running Conv node. Failed to allocate "
                                         "memory for requested buffer of size 2415919104")}

    def fail(self, *args, **kwargs):
        raise failure["error"]

    monkeypatch.setattr(ort.InferenceSession, "run", fail)
    with pytest.raises(MemoryError, match=r"^not enough memory to colorize a 600x400 image .* about "
                                          r"[0-9.]+ GB; pass a smaller max_pixels$") as e:
        colorize(model, photos["coffee"], max_pixels=None)
    assert "\n" not in str(e.value)
    failure["error"] = RuntimeException("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad input")
    with pytest.raises(RuntimeException, match="INVALID_ARGUMENT"):
        colorize(model, photos["coffee"][:16, :16])


# -- float16 storage (the book's browser copies) ----------------------------------------------
def test_float16_weights_by_hand(tmp_path):
    """A graph y = x @ W + b built here: W (20 values) is stored as float16 and cast back, b (5
    values) and a W beyond float16's range keep float32; the output is numpy's x @ W16 + b."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from colorlib.export import float16_weights

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    W = rng.standard_normal((4, 5)).astype(np.float32) / 3
    b = np.array([0.1, -0.2, 0.3, 0.0, 1.0], np.float32)  # a few-value constant: kept float32
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xW"]), helper.make_node("Add", ["xW", "b"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    half = float16_weights(proto)
    types = {t.name: t.data_type for t in half.graph.initializer}
    assert types == {"W.float16": TensorProto.FLOAT16, "b": TensorProto.FLOAT}
    assert [(n.op_type, list(n.input), list(n.output)) for n in half.graph.node][0] == \
        ("Cast", ["W.float16"], ["W"])
    assert [n.op_type for n in half.graph.node][1:] == ["MatMul", "Add"]  # arithmetic untouched
    assert proto.graph.initializer[0].data_type == TensorProto.FLOAT  # the original is not changed
    path = tmp_path / "half.onnx"
    onnx.save(half, path)
    (y,) = session(path).run(None, {"x": x})
    assert y.dtype == np.float32
    want = x.astype(np.float64) @ W.astype(np.float16).astype(np.float64) + b
    assert np.abs(y - want).max() < 1e-5  # float32 arithmetic on the float16-rounded W
    assert np.abs(y - (x @ W + b)).max() > 0  # and W was rounded

    W[0, 0] = 1e5  # beyond float16 (65504): stays float32
    graph.initializer[0].CopyFrom(numpy_helper.from_array(W, "W"))
    kept = float16_weights(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]))
    assert [t.data_type for t in kept.graph.initializer] == [TensorProto.FLOAT] * 2
    assert [n.op_type for n in kept.graph.node] == ["MatMul", "Add"]


def test_export_float16_halves_the_bytes_and_agrees_with_pytorch(exports, photos, tmp_path):
    """The browser's copy (scripts/build_book.py): every weight float16, each graph at most 51%
    of its float32 size, inputs and outputs float32, and the chained graphs close to PyTorch:
    float16's rounding of the weights moves normalised a*b* by at most 2.5e-3 (0.6 in a*b*;
    measured 1.2e-3 here, up to 2.1e-3 on chelsea and coffee, 6e-5 on average; the float32
    graphs: 6e-7) and a class probability by at most 1e-3 (measured up to 7.8e-4)."""
    import onnx

    from colorlib.export import export_float16

    model, folder, manifest = exports["miniplaces-full"]
    half = export_float16(folder, tmp_path / "half")
    assert read_manifest(tmp_path / "half") == half  # hashes of the new files
    assert half["weights_storage"].startswith("float16") and half["dtype"] == "float32"
    assert {k: v for k, v in half.items() if k not in ("graphs", "weights_storage")} == \
        {k: v for k, v in manifest.items() if k != "graphs"}
    for kind, g in half["graphs"].items():
        assert g["bytes"] <= 0.51 * manifest["graphs"][kind]["bytes"], kind
        proto = onnx.load(tmp_path / "half" / g["file"])
        big = [t for t in proto.graph.initializer if np.prod(t.dims) > 16]
        assert big and all(t.data_type == onnx.TensorProto.FLOAT16 for t in big)
        io = [*proto.graph.input, *proto.graph.output]
        assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in io)
        # published: none of the exporter's stack traces, which name this machine's folders
        assert not any(n.metadata_props or n.doc_string for n in proto.graph.node)
        assert str(ROOT).encode() not in (tmp_path / "half" / g["file"]).read_bytes()

    L = photo_L(photos["astronaut"], 300, 451) / 100
    g, probs = session(tmp_path / "half" / "global.onnx").run(None, {"L": model.resize_for_global(L).numpy()})
    (ab,) = session(tmp_path / "half" / "colorizer.onnx").run(None, {"L": L.numpy(), "global_features": g})
    with torch.no_grad():
        want = model(L)
        _, logits = model.global_branch(model.resize_for_global(L))
    assert np.abs(ab - want.ab.numpy()).max() < 2.5e-3
    assert np.abs(ab - want.ab.numpy()).mean() < 2e-4
    assert np.abs(probs - logits.softmax(1).numpy()).max() < 1e-3


def test_exported_graphs_carry_no_path_of_the_machine(exports):
    """torch's exporter attaches each node's Python stack trace, with the folders of the machine
    that exported it; export_onnx drops them (they would be published with the book)."""
    here = str(Path(__file__).resolve().parents[1]).encode()
    for name, (_, folder, _) in exports.items():
        for f in folder.glob("*.onnx"):
            data = f.read_bytes()
            assert here not in data and b"site-packages" not in data, (name, f.name)

"""``colorlib export-onnx`` (issue 14, item 1): the shipped models exported through the command
line, their files and manifest, what it prints, and its exit statuses (0 done, 1 an export that
failed, 2 a usage mistake found before any work: the extra missing, a bad place, an export
already there without --force)."""

from __future__ import annotations

import contextlib
import io
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import colorlib
from colorlib.checkpoint import load_model
from colorlib.cli import main
from colorlib.io import WriteError
from colorlib.lab import rgb_to_lab


def run_cli(*args) -> tuple[int, str, str]:
    """``colorlib ARGS`` in this process, for module-scoped fixtures (the ``cli`` fixture is per test)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            status = 0
        except SystemExit as e:
            status = e.code
    return status, out.getvalue(), err.getvalue()


def files_under(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def needs_onnx():
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """miniplaces-full exported into a new folder: (folder, status, stdout, stderr)."""
    needs_onnx()
    folder = tmp_path_factory.mktemp("export") / "full"
    return (folder, *run_cli("export-onnx", "--model", "miniplaces-full", "-o", folder))


@pytest.fixture(scope="module")
def baseline(full, tmp_path_factory):
    """miniplaces-baseline exported with --force over a copy of the full model's export (refused
    first without it): (folder, status, stdout, stderr, the refusal's (status, stdout, stderr))."""
    folder = shutil.copytree(full[0], tmp_path_factory.mktemp("export") / "baseline")
    refused = run_cli("export-onnx", "--model", "miniplaces-baseline", "-o", folder)
    return (folder, *run_cli("export-onnx", "--model", "miniplaces-baseline", "-o", folder, "--force"), refused)


def colorizer_agrees(folder, name: str, photo: np.ndarray) -> None:
    """The exported colorizer graph is ``name``'s network: its a*b* within 1e-4 of PyTorch's."""
    import onnxruntime as ort  # optional (the onnx extra): the test is skipped without it

    model = load_model(name)
    rgb = np.array(Image.fromarray(photo).convert("RGB").resize((60, 45), Image.Resampling.BICUBIC))
    x = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[:, :1] / 100
    with torch.no_grad():
        want = model(x)
    feeds = {"L": x.numpy()}
    if model.global_network is not None:
        feeds["global_features"] = want.global_features.numpy()
    session = ort.InferenceSession(str(folder / "colorizer.onnx"), providers=["CPUExecutionProvider"])
    (ab,) = session.run(None, feeds)
    assert np.abs(ab - want.ab.numpy()).max() < 1e-4


def test_full_model_two_graphs_and_a_manifest(full, photos):
    from colorlib.onnx.manifest import read_manifest

    folder, status, out, err = full
    assert status == 0 and err == "", err
    assert files_under(folder) == ["colorizer.onnx", "global.onnx", "manifest.json"]
    manifest = read_manifest(folder)  # every graph's sha256 checked
    cfg = load_model("miniplaces-full").cfg
    assert manifest["name"] == "miniplaces-full" and manifest["config"] == cfg.to_dict()
    assert set(manifest["graphs"]) == {"global", "colorizer"}
    s, c = cfg.global_size, cfg.channels(256)
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"wrote {folder / 'global.onnx'} (") and lines[0].endswith(
        f"the global graph: L (N, 1, {s}, {s}) -> global_features (N, {c}), probabilities (N, {cfg.num_classes})")
    assert lines[1].startswith(f"wrote {folder / 'colorizer.onnx'} (") and lines[1].endswith(
        f"the colorizer graph: L (N, 1, H, W), global_features (N, {c}) -> ab (N, 2, ceil(H/2), ceil(W/2))")
    assert lines[2] == (f"wrote {folder / 'manifest.json'} (model miniplaces-full, opset {manifest['opset']}, "
                        "saturation 1.2)")
    mb = (folder / "global.onnx").stat().st_size / 1e6
    assert f"({mb:.1f} MB)" in lines[0]
    colorizer_agrees(folder, "miniplaces-full", photos["astronaut"])


def test_an_export_is_replaced_only_with_force(full, baseline, photos):
    from colorlib.onnx.manifest import read_manifest

    folder, status, out, err, (refused, refused_out, refused_err) = baseline
    # without --force: one line, exit 2, the full model's export left as it was
    assert refused == 2 and refused_out == ""
    assert refused_err == (f"colorlib export-onnx: error: {folder} already holds an export (global.onnx, "
                           "colorizer.onnx, manifest.json); pass --force to replace it\n")
    # with --force: the baseline's one graph, and the full model's global graph removed
    assert status == 0 and err == "", err
    assert files_under(folder) == ["colorizer.onnx", "manifest.json"]
    manifest = read_manifest(folder)
    assert manifest["name"] == "miniplaces-baseline" and manifest["classes"] is None
    assert list(manifest["graphs"]) == ["colorizer"]
    assert list(manifest["graphs"]["colorizer"]["inputs"]) == ["L"]
    lines = out.splitlines()
    assert lines[0].endswith("the colorizer graph: L (N, 1, H, W) -> ab (N, 2, ceil(H/2), ceil(W/2))")
    assert lines[1] == (f"removed {folder / 'global.onnx'} (from the export this one replaces; a baseline "
                        "model has no such graph)")
    assert lines[2].startswith(f"wrote {folder / 'manifest.json'} (model miniplaces-baseline,")
    colorizer_agrees(folder, "miniplaces-baseline", photos["coffee"])
    assert read_manifest(full[0])["name"] == "miniplaces-full"  # the copy was changed, not the original


def test_usage_mistakes_are_one_line_exit_2_before_any_work(tmp_path, cli):
    needs_onnx()
    (tmp_path / "a-file").write_text("a file where a folder is expected\n")
    status, out, err = cli("export-onnx", "--model", "no-such-model", "-o", tmp_path / "out")
    assert status == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith("colorlib export-onnx: error: no model 'no-such-model'") and "miniplaces-full" in err
    status, out, err = cli("export-onnx", "--model", "miniplaces-baseline", "-o", tmp_path / "a-file")
    assert status == 2 and out == ""
    assert err == (f"colorlib export-onnx: error: could not write {tmp_path / 'a-file' / 'global.onnx'}: "
                   f"{tmp_path / 'a-file'} is not a folder\n")
    status, out, err = cli("export-onnx", "--model", "miniplaces-baseline")
    assert status == 2 and err.endswith("error: the following arguments are required: -o/--output\n")
    assert files_under(tmp_path) == ["a-file"]


def test_without_the_extra_one_line_naming_it(tmp_path, cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    for m in [m for m in sys.modules if m.startswith("colorlib.onnx")]:
        monkeypatch.delitem(sys.modules, m)
    monkeypatch.delattr(colorlib, "onnx", raising=False)  # put back as it was afterwards
    status, out, err = cli("export-onnx", "--model", "miniplaces-baseline", "-o", tmp_path / "out")
    assert (status, out) == (2, "")
    assert err == 'colorlib export-onnx: error: exporting to ONNX needs the onnx extra: pip install "colorlib[onnx]"\n'
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("kind", ["export", "write"])
def test_an_export_that_fails_is_one_line_exit_1(kind, tmp_path, cli, monkeypatch):
    needs_onnx()
    import colorlib.onnx.export

    out = tmp_path / "out"
    exc = (colorlib.onnx.export.ExportError("torch.onnx could not export the colorizer graph: unsupported operator")
           if kind == "export" else WriteError(f"could not write {out / 'colorizer.onnx'}: no space left on the device"))

    def fails(*args, **kwargs):
        raise exc

    monkeypatch.setattr(colorlib.onnx.export, "export_onnx", fails)
    status, stdout, err = cli("export-onnx", "--model", "miniplaces-baseline", "-o", out)
    assert (status, stdout) == (1, "") and err == f"colorlib export-onnx: error: {exc}\n"
    assert files_under(tmp_path) == []


def test_help_says_what_the_two_graphs_are():
    status, out, _ = run_cli("export-onnx", "--help")
    text = " ".join(out.split())
    assert status == 0
    assert "global.onnx the global branch (Figure 2, lower path): L*/100 at global_size x global_size" in text
    assert "the global feature vector and the scene-class probabilities" in text
    assert "colorizer.onnx the colorizer: L*/100 of any size" in text and "normalised a*b*" in text
    assert "section 4.5" in text and 'pip install "colorlib[onnx]"' in text
    assert "export-onnx" in run_cli("--help")[1]

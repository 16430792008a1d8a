"""The network's output colour space (paper section 4.8): L*a*b*, YUV or RGB.

Expectations come from outside colorlib where they can: scikit-image's YUV (BT.601) and
L*a*b*, and the photo itself (a prediction equal to the truth must give the photo back).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2yuv, yuv2rgb

import colorlib
from colorlib import colorspace as C
from colorlib.checkpoint import load_model, save_model
from colorlib.data import lab_batch
from colorlib.evaluate import score
from colorlib.model import Colorizer, ModelConfig
from colorlib.onnx.export import ExportError, export_graphs
from colorlib.train import TrainConfig, train

SPACES = ("lab", "yuv", "rgb")


def as_tensor(rgb8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb8)).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def photo(photos) -> np.ndarray:
    return photos["coffee"][::4, ::4]  # 100 x 150, strong colours


def test_yuv_is_scikit_images_bt601(photo):
    x = as_tensor(photo)
    ours = C.rgb_to_yuv(x)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, rgb2yuv(photo / 255.0), atol=1e-5)
    back = C.yuv_to_rgb(torch.from_numpy(rgb2yuv(photo / 255.0)).permute(2, 0, 1)[None])
    np.testing.assert_allclose(back[0].permute(1, 2, 0).numpy(), yuv2rgb(rgb2yuv(photo / 255.0)), atol=1e-5)
    np.testing.assert_allclose(back[0].permute(1, 2, 0).numpy(), photo / 255.0, atol=1e-4)


def test_every_srgb_colour_normalises_into_the_sigmoids_range():
    """Section 4.8: every target in [0, 1]. The sRGB cube's corners are the extremes of the
    linear spaces; a 17^3 grid covers L*a*b*'s curved edges."""
    g = torch.linspace(0, 1, 17)
    cube = torch.stack(torch.meshgrid(g, g, g, indexing="ij")).reshape(3, 1, -1)[None]
    for space in SPACES:
        t = C.SPACES[space].target(cube)
        assert t.shape[1] == ModelConfig(color_space=space).out_channels
        assert float(t.min()) >= 0 and float(t.max()) <= 1, space
    uv = C.SPACES["yuv"].target(cube)  # blue and red reach the ends of U and V
    assert float(uv[:, 0].max()) == pytest.approx(1, abs=1e-6)
    assert float(uv[:, 1].max()) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("space", SPACES)
def test_the_true_prediction_gives_the_photo_back(photo, space):
    """Joining the photo's own luminance with its own chrominance is the photo (within 8-bit
    rounding), so the test-time step of section 4.8 adds nothing of its own."""
    x = as_tensor(photo)
    pred = C.SPACES[space].denormalize(C.SPACES[space].target(x))
    out = C.SPACES[space].to_rgb(C.SPACES[space].luminance(x), pred)
    assert float((out - x).abs().max()) < 1.5 / 255


def test_rgb_predictions_keep_the_photos_y_not_their_own(photo):
    """For RGB the prediction is converted to YUV and its Y replaced by the input's (4.8)."""
    x = as_tensor(photo)
    wrong = (x * 0.5 + 0.25)  # another lightness, the same hues roughly
    out = C.SPACES["rgb"].to_rgb(C.SPACES["rgb"].luminance(x), wrong)
    y_out, y_in = C.rgb_to_yuv(out)[:, :1], C.rgb_to_yuv(x)[:, :1]
    inside = (out > 0.01).all(1, keepdim=True) & (out < 0.99).all(1, keepdim=True)  # not clipped
    assert float((y_out - y_in)[inside].abs().max()) < 1e-5
    assert float((C.rgb_to_yuv(out)[:, 1:] - C.rgb_to_yuv(wrong)[:, 1:]).abs()[inside.expand(-1, 2, -1, -1)].max()) < 1e-5


def test_saturation_scales_the_chrominance_of_every_space(photo):
    x = as_tensor(photo)
    for space in ("yuv", "rgb"):
        pred = C.SPACES[space].denormalize(C.SPACES[space].target(x))
        gray = C.SPACES[space].to_rgb(C.SPACES[space].luminance(x), pred, saturation=0.0)
        assert float((gray.max(1).values - gray.min(1).values).max()) < 1e-5  # R = G = B


def test_a_model_predicts_three_channels_for_rgb_and_refuses_other_spaces():
    for space, channels in (("rgb", 3), ("yuv", 2), ("lab", 2)):
        net = Colorizer(ModelConfig.preset("tiny", color_space=space)).eval()
        assert net(torch.rand(1, 1, 64, 96)).ab.shape == (1, channels, 32, 48)
    with pytest.raises(ValueError, match="color_space must be one of"):
        ModelConfig(color_space="hsv")
    with pytest.raises(ValueError, match="color_space"):
        TrainConfig(color_space="HSV")


def test_training_targets_are_the_spaces_own_at_half_size(photo):
    x = as_tensor(photo[:64, :64])
    for space in SPACES:
        L, t = lab_batch(x, space)
        assert L.shape == (1, 1, 64, 64) and t.shape[-2:] == (32, 32)
        expect = torch.nn.functional.avg_pool2d(C.SPACES[space].target(x), 2)
        assert float((t - expect).abs().max()) < 1e-6
        np.testing.assert_allclose(L[0, 0].numpy() * 100, colorlib.lab.rgb_to_L(x)[0, 0].numpy(), atol=1e-3)


@pytest.mark.parametrize("space", ("yuv", "rgb"))
def test_a_yuv_or_rgb_model_trains_saves_loads_and_colorizes_keeping_y(tiny_data_folderless, tmp_path, photo, space):
    """Train a few steps, reload from the run folder, colorize: the output's Y is the input's
    (section 4.8: "the output images of all the models have the same luminance")."""
    tc = TrainConfig(config="tiny", batch_size=16, steps=4, log_every=2, checkpoint_every=4, seed=1,
                     optimizer="adamw", device="cpu", color_space=space)
    train(tc, tmp_path / "run", data=tiny_data_folderless, progress=False)
    model = load_model(tmp_path / "run")
    assert model.cfg.color_space == space
    out = np.asarray(colorlib.colorize(model, photo))
    y_out, y_in = C.rgb_to_yuv(as_tensor(out))[0, 0], C.rgb_to_yuv(as_tensor(photo))[0, 0]
    inside = torch.from_numpy(((out > 3) & (out < 252)).all(-1))
    assert float((y_out - y_in)[inside].abs().max()) <= 1.0 / 255  # 8-bit rounding only
    # the same through save_model's half-precision file and colorize_batch (what evaluate uses)
    save_model(model, tmp_path / "m.safetensors")
    again = load_model(tmp_path / "m.safetensors")
    batch = colorlib.infer.colorize_batch(again, as_tensor(photo))
    assert batch.shape == (1, 3, *photo.shape[:2]) and float((C.rgb_to_yuv(batch)[:, 0] - y_in).abs().max()) < 0.02
    s = score(again, torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None])
    assert 5 < float(s["psnr"][0]) < 60


@pytest.fixture(scope="module")
def tiny_data_folderless(photos):
    """32 real 64x64 crops of two photos, labelled by photo, and 8 for validation."""
    from colorlib.data import DecodedImages

    crops, labels = [], []
    for label, name in enumerate(["astronaut", "chelsea"]):
        img = photos[name][::4, ::4]
        for k in range(20):
            y, x = (k * 7) % (img.shape[0] - 64), (k * 11) % (img.shape[1] - 64)
            crops.append(img[y : y + 64, x : x + 64])
            labels.append(label)
    pixels = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor(labels)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    pixels, y = pixels[order], y[order]
    return DecodedImages(pixels[:32], y[:32], ["a", "b"]), DecodedImages(pixels[32:], y[32:], ["a", "b"])


def test_only_lab_models_export_to_onnx(cli, tmp_path):
    model = Colorizer(ModelConfig.preset("tiny", color_space="yuv"))
    with pytest.raises(ExportError, match="only L\\*a\\*b\\* models export"):
        export_graphs(model)
    save_model(model, tmp_path / "yuv.safetensors")
    code, out, err = cli("export-onnx", "--model", str(tmp_path / "yuv.safetensors"), "-o", str(tmp_path / "x"))
    assert code != 0 and len(err.strip().splitlines()) == 1 and "L*a*b*" in err
    assert not (tmp_path / "x" / "manifest.json").exists()


@pytest.mark.parametrize("space", ("yuv", "rgb"))
def test_out_of_gamut_colours_keep_y_and_hue(photo, space):
    """Found by the break test: clipping each channel changed Y by up to 18 levels at saturation
    4. Chroma is now reduced at constant Y (as L*a*b* does at constant L*), keeping the UV
    direction; in-gamut pixels are untouched."""
    x = as_tensor(photo)
    Y = C.SPACES[space].luminance(x)
    pred = C.SPACES[space].denormalize(C.SPACES[space].target(x))
    for s in (1.0, 2.0, 4.0):
        out = C.SPACES[space].to_rgb(Y, pred, saturation=s)
        assert float(out.min()) >= 0 and float(out.max()) <= 1
        assert float((C.rgb_to_yuv(out)[:, :1] - Y).abs().max()) < 1e-5, s
        uv_out, uv_want = C.rgb_to_yuv(out)[:, 1:], C.rgb_to_yuv(x)[:, 1:] * s
        cross = uv_out[:, 0] * uv_want[:, 1] - uv_out[:, 1] * uv_want[:, 0]  # parallel: same hue
        assert float(cross.abs().max()) < 1e-5 and float((uv_out * uv_want).sum(1).min()) >= -1e-7


def test_colour_space_functions_check_their_arguments(photo):
    x = as_tensor(photo)
    for space in SPACES:  # one photo without its batch axis gives the same as with it
        assert torch.allclose(C.SPACES[space].target(x[0]), C.SPACES[space].target(x)[0], atol=1e-6)
        assert torch.allclose(C.SPACES[space].luminance(x[0]), C.SPACES[space].luminance(x)[0], atol=1e-4)
        with pytest.raises(TypeError, match="floating"):
            C.SPACES[space].target((x * 255).to(torch.uint8))
        with pytest.raises(ValueError, match="3, H, W"):
            C.SPACES[space].luminance(torch.rand(1, 4, 8, 8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        C.rgb_to_yuv(photo)
    with pytest.raises(ValueError, match="rgb prediction has 3 channels"):
        C.SPACES["rgb"].to_rgb(C.SPACES["rgb"].luminance(x), torch.rand(1, 2, *x.shape[-2:]))
    with pytest.raises(ValueError, match="colour space must be one of"):
        C.SPACES["hsv"].target(x)


def test_the_cli_says_what_a_shipped_colour_space_model_predicts_and_refuses_onnx(cli, tmp_path, photo):
    code, out, err = cli("info", "--model", "colorspace-yuv")
    assert code == 0 and "predicts U, V (YUV)" in out and "validation (1,919 colour images" in out
    from PIL import Image

    Image.fromarray(photo).save(tmp_path / "p.png")
    code, out, err = cli("export-onnx", "--model", "colorspace-rgb", "-o", str(tmp_path / "graphs"))
    assert code == 1 and err.count("\n") == 1 and "only L*a*b* models export to ONNX" in err, err
    assert not (tmp_path / "graphs" / "manifest.json").exists()

import pytest
import torch

from colorlib.checkpoint import load_model
from colorlib.model import (
    Colorizer,
    ModelConfig,
    describe_layers,
    fold_batchnorm,
    mix_global,
    weight_count,
)

# Table 1 of the paper, layer by layer: (kernel area, inputs, outputs) of every conv and FC.
TABLE_1 = (
    # low-level features
    [(9, 1, 64), (9, 64, 128), (9, 128, 128), (9, 128, 256), (9, 256, 256), (9, 256, 512)]
    # global features: 4 convs, FC 1024 (7x7x512 in), 512, 256
    + [(9, 512, 512)] * 4 + [(1, 7 * 7 * 512, 1024), (1, 1024, 512), (1, 512, 256)]
    # mid-level features
    + [(9, 512, 512), (9, 512, 256)]
    # fusion: W is 256 x 512 (Eq. 5)
    + [(1, 512, 256)]
    # colorization network
    + [(9, 256, 128), (9, 128, 64), (9, 64, 64), (9, 64, 32), (9, 32, 2)]
    # classification network: 512 -> 256 -> 205
    + [(1, 512, 256), (1, 256, 205)]
)


def trained_like(model: Colorizer) -> Colorizer:
    """Give batch norm real running statistics (a few forward passes in train mode)."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 64, 64))
    return model.eval()


@pytest.fixture(scope="module")
def paper():
    torch.manual_seed(0)
    return Colorizer(ModelConfig()).eval()


def test_paper_weight_count_matches_table_1(paper):
    expected = sum(k * i * o for k, i, o in TABLE_1)
    assert expected == 42_346_880
    assert weight_count(paper) == expected
    assert len(describe_layers()) == len(TABLE_1)


def test_output_shapes_at_many_sizes(paper):
    with torch.no_grad():
        for H, W in [(224, 224), (300, 451), (1000, 37)]:
            out = paper(torch.rand(1, 1, H, W))
            assert out.ab.shape == (1, 2, (H + 1) // 2, (W + 1) // 2)
            assert out.logits.shape == (1, 205) and out.global_features.shape == (1, 256)
            assert 0 <= out.ab.min() and out.ab.max() <= 1


def test_2048_square_on_cpu():
    cfg = ModelConfig()
    model = fold_batchnorm(Colorizer(cfg))
    with torch.inference_mode():
        out = model(torch.rand(1, 1, 2048, 2048).contiguous(memory_format=torch.channels_last))
    assert out.ab.shape == (1, 2, 1024, 1024)


@pytest.mark.parametrize("H, W", [(224, 224), (256, 320)])
def test_feature_maps_have_the_sizes_of_section_3(paper, H, W):
    """Section 3.2 and Table 1: low-level features H/8 x W/8 x 512 (three stride-2 convolutions);
    global convolutions 7 x 7 x 512 on the 224 x 224 copy, then a 512-d layer and the 256-d vector;
    mid-level H/8 x W/8 x 256; fusion H/8 x W/8 x 256; the colorization network's two x2
    upsamplings give a*b* at H/2 x W/2 before any cropping; 205 scene logits."""
    L = torch.rand(1, 1, H, W)
    with torch.no_grad():
        low = paper.low_level(L)
        assert low.shape == (1, 512, H // 8, W // 8)
        low_global = paper.low_level(paper.resize_for_global(L))
        assert low_global.shape == (1, 512, 28, 28)
        assert paper.global_network.convs(low_global).shape == (1, 512, 7, 7)
        g, hidden = paper.global_network(low_global)
        assert g.shape == (1, 256) and hidden.shape == (1, 512)
        assert paper.classifier(hidden).shape == (1, 205)
        mid = paper.mid_level(low)
        assert mid.shape == (1, 256, H // 8, W // 8)
        fused = paper.fusion(mid, g)
        assert fused.shape == (1, 256, H // 8, W // 8)
        ab = paper.colorization(fused)
        assert ab.shape == (1, 2, H // 2, W // 2)
        assert torch.equal(paper(L).ab, ab)  # a multiple of 8: nothing padded, nothing cropped


def test_global_size_input_shares_low_level_features(paper, monkeypatch):
    calls = []
    orig = paper.low_level.forward
    monkeypatch.setattr(paper.low_level, "forward", lambda x: calls.append(x.shape) or orig(x))
    with torch.no_grad():
        paper(torch.rand(2, 1, 224, 224))
        assert len(calls) == 1
        paper(torch.rand(2, 1, 256, 320))
        assert calls[1:] == [(2, 1, 256, 320), (2, 1, 224, 224)]


def test_baseline_variant():
    base = Colorizer(ModelConfig(variant="baseline"))
    assert base.global_network is None and base.classifier is None
    names = [m.__class__.__name__ for m in base.modules()]
    assert "FusionLayer" not in names and "GlobalFeatures" not in names
    assert base.fusion.layer.kernel_size == (3, 3)
    out = base.eval()(torch.rand(1, 1, 64, 96))
    assert out.logits is None and out.ab.shape == (1, 2, 32, 48)


def test_fusion_is_eq5_concatenation(paper):
    """The split implementation equals relu(b + W [global; mid]) computed literally."""
    fusion = paper.fusion
    mid, g = torch.rand(2, 256, 5, 7), torch.rand(2, 256)
    cat = torch.cat([g[:, :, None, None].expand(-1, -1, 5, 7), mid], dim=1)
    literal = fusion.act(fusion.bn(torch.nn.functional.conv2d(cat, fusion.layer.weight)))
    assert torch.allclose(fusion(mid, g), literal, atol=1e-5)


def test_style_transfer_wiring_and_mixing():
    """Global features from image B reach the output; (trained-model version: test_infer.py)."""
    torch.manual_seed(0)
    model = trained_like(Colorizer(ModelConfig.preset("tiny")))
    a, b = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 96, 80)
    with torch.no_grad():
        own = model(a)
        g_a, g_b = model.encode_global(a), model.encode_global(b)
        assert torch.allclose(own.global_features, g_a, atol=1e-6)
        other = model(a, global_L=b)
        assert torch.allclose(other.global_features, g_b, atol=1e-6)
        assert torch.allclose(model(a, global_features=g_b).ab, other.ab, atol=1e-6)
        far = model(a, global_features=torch.randn_like(g_a) * 10)
        assert (far.ab - own.ab).abs().max() > 1e-3
        assert torch.allclose(model(a, global_features=mix_global(g_a, g_b, 0.0)).ab, own.ab, atol=1e-6)
        assert torch.allclose(mix_global(g_a, g_b, 0.5), (g_a + g_b) / 2)
        assert torch.allclose(mix_global(g_a, g_b, 1.0), g_b)


def test_fold_batchnorm_is_equivalent():
    torch.manual_seed(0)
    for variant in ("full", "baseline"):
        model = trained_like(Colorizer(ModelConfig.preset("tiny", variant=variant)))
        folded = fold_batchnorm(model)
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
        x = torch.rand(2, 1, 72, 88)
        with torch.no_grad():
            a, b = model(x), folded(x.contiguous(memory_format=torch.channels_last))
        # measured: 6e-8 for a*b* (outputs spread 0.02), 1.5e-8 for the logits; forgetting batch
        # norm's eps in the fold moves them by more than 1e-6
        assert (a.ab - b.ab).abs().max() < 1e-6
        if variant == "full":
            assert (a.logits - b.logits).abs().max() < 1e-6
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # original untouched


@pytest.mark.parametrize("name", ["miniplaces-full", "miniplaces-baseline"])
def test_fold_batchnorm_is_equivalent_on_the_shipped_models(name):
    """Real running statistics (variances down to 2.3e-4): folding must keep eps. Measured: a*b*
    within 1.2e-7, logits within 3.8e-6; forgetting eps moves them by 1e-3 and 0.08."""
    torch.manual_seed(0)
    model = load_model(name)
    x = torch.rand(2, 1, 72, 88)
    with torch.no_grad():
        a, b = model(x), fold_batchnorm(model)(x.contiguous(memory_format=torch.channels_last))
    assert (a.ab - b.ab).abs().max() < 1e-6
    if a.logits is not None:
        assert (a.logits - b.logits).abs().max() < 2e-5


def test_config_checks():
    with pytest.raises(ValueError, match="variant"):
        ModelConfig(variant="nope")
    with pytest.raises(ValueError, match="multiple of 32"):
        ModelConfig(global_size=100)
    with pytest.raises(ValueError, match="unknown config"):
        ModelConfig.preset("huge")
    assert ModelConfig.preset("miniplaces").num_classes == 100


def test_bad_input_shape(paper):
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        paper(torch.rand(1, 3, 64, 64))


def test_reduced_precision_models_resize_for_the_global_branch():
    """Antialiased resizing has no bfloat16 kernel: a bf16 model must still shrink a large input
    for its global branch (a crash here once stopped colorize for every photo above global_size)."""
    model = Colorizer(ModelConfig.preset("tiny")).to(torch.bfloat16).eval()
    L = torch.rand(1, 1, 100, 90, dtype=torch.bfloat16)
    with torch.no_grad():
        out = model(L)
    assert out.ab.dtype == torch.bfloat16 and out.ab.shape == (1, 2, 50, 45)
    small = model.resize_for_global(L)
    assert small.dtype == torch.bfloat16 and small.shape[-2:] == (64, 64)

"""The network of "Let there be Color!" (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2016).

One module per component of the paper's Figure 2, named as in the paper; with Table 1 open,
every row is one line of ``__init__`` below. :class:`Colorizer` wires them:

    L* ──> LowLevelFeatures ──> MidLevelFeatures ──> FusionLayer ──> ColorizationNetwork ──> a*b*
             (shared)                                   ^
    L* at global_size ──> LowLevelFeatures ──> GlobalFeatures ──> 256-d ┘
                                                   └─ 512-d ──> ClassificationHead ──> scene logits

Every convolution is 3x3 with padding 1 followed by batch normalisation and ReLU, as in the
paper; the output layer is a sigmoid. The network sees L* / 100 (in ``[0, 1]``) and predicts
normalised a*b* in ``[0, 1]`` at half the input resolution (see :mod:`colorlib.lab`).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .colorspace import DEFAULT_SPACE, SPACES

VARIANTS = ("full", "baseline")


@dataclass
class ModelConfig:
    """Everything that varies between the paper's network (Table 1, :meth:`paper`) and ours.

    The network takes L*/100 shaped ``(N, 1, H, W)``, any H and W, and predicts normalised a*b*
    at half resolution; its global branch sees a ``global_size`` square copy. Values are checked
    when the config is made (``ValueError``: ``global_size`` not a positive multiple of 32,
    ``width`` outside (0, 4], ``num_classes`` below 1, ``dropout`` outside [0, 1), an unknown
    ``variant`` or ``color_space``). Presets: :meth:`preset` (``paper``, ``miniplaces``, ``tiny``).
    """

    num_classes: int = 205  # scene classes of the classification head (Places205: 205, MiniPlaces: 100)
    global_size: int = 224  # side of the square copy the global network sees; multiple of 32
    width: float = 1.0  # channel multiplier for every layer; 1.0 is Table 1
    variant: str = "full"  # "full" (Figure 2) or "baseline" (no global features, 3x3 conv as fusion)
    dropout: float = 0.0  # dropout before the global FC layers; not in the paper (0.0 = paper)
    color_space: str = DEFAULT_SPACE  # what the network predicts: a key of colorspace.SPACES (section 4.8)

    def __post_init__(self) -> None:
        for name, top in (("num_classes", 100_000), ("global_size", 4096)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
                raise ValueError(f"{name} must be a whole number from 1 to {top:,}, got {v!r}")
        for name in ("width", "dropout"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), (int, float)):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.color_space not in SPACES:
            raise ValueError(f"color_space must be one of {tuple(SPACES)}, got {self.color_space!r}")
        if self.global_size % 32 or self.global_size < 32:
            raise ValueError(f"global_size must be a positive multiple of 32, got {self.global_size}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {self.num_classes}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def channels(self, n: int) -> int:
        """Table 1's channel count ``n`` scaled by ``width``."""
        return max(2, round(n * self.width))

    @property
    def out_channels(self) -> int:
        """Channels the network predicts: its colour space's (2 for a*b*, section 4.8)."""
        return SPACES[self.color_space].channels

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def paper(cls, **overrides) -> ModelConfig:
        """The paper's network (Table 1): full width, global features from a 224 x 224 copy, a
        classification head over the 205 Places scene classes (section 4.1)."""
        return cls.preset("paper", **overrides)

    @classmethod
    def preset(cls, name: str, **overrides) -> ModelConfig:
        """``paper`` (Table 1, Places205 at 224), ``miniplaces`` (100 classes at 128) or ``tiny``."""
        if name not in PRESETS:
            raise ValueError(f"unknown config {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


#: The named configurations of :meth:`ModelConfig.preset` (``colorlib train --config``).
PRESETS = {
    "paper": dict(num_classes=205, global_size=224, width=1.0),
    "miniplaces": dict(num_classes=100, global_size=128, width=0.5, dropout=0.3),
    "tiny": dict(num_classes=100, global_size=64, width=0.125),
}

# oneDNN's convolution with the ReLU applied inside it (what Inductor emits on CPU): one pass
# over the output instead of two. Used only by batch-norm-folded copies, on CPU, in inference.
_CONV_RELU = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)


class ConvBlock(nn.Module):
    """3x3 convolution (stride 1 or 2, padding 1) + batch norm + ReLU: one row of Table 1."""

    fused = False  # set by fold_batchnorm: conv + ReLU in one oneDNN call where possible

    def __init__(self, c_in: int, c_out: int, stride: int = 1, kernel: int = 3):
        super().__init__()
        self.layer = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.fused and x.device.type == "cpu" and x.dtype == self.layer.weight.dtype == torch.float32
                and not torch.is_grad_enabled()):
            c = self.layer
            return _CONV_RELU(x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, "relu", [], "")
        return self.act(self.bn(self.layer(x)))


class FCBlock(nn.Module):
    """Fully-connected layer + batch norm + ReLU (Table 1, global network)."""

    def __init__(self, c_in: int, c_out: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.layer = nn.Linear(c_in, c_out, bias=False)
        self.bn = nn.BatchNorm1d(c_out)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.layer(self.drop(x))))


class LowLevelFeatures(nn.Module):
    """Table 1 (a): six convolutions, three of stride 2, so the output is H/8 x W/8 x 512."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.layers = nn.Sequential(
            ConvBlock(1, c(64), stride=2),
            ConvBlock(c(64), c(128)),
            ConvBlock(c(128), c(128), stride=2),
            ConvBlock(c(128), c(256)),
            ConvBlock(c(256), c(256), stride=2),
            ConvBlock(c(256), c(512)),
        )

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return self.layers(L)


class GlobalFeatures(nn.Module):
    """Table 1 (b): four convolutions (two of stride 2) and FC 1024 -> 512 -> 256.

    Needs a fixed input size (``global_size``): the first FC layer flattens a
    ``global_size/32`` squared map. Returns the 256-d global feature vector and the
    512-d layer that feeds the classification head.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.convs = nn.Sequential(
            ConvBlock(c(512), c(512), stride=2),
            ConvBlock(c(512), c(512)),
            ConvBlock(c(512), c(512), stride=2),
            ConvBlock(c(512), c(512)),
        )
        side = cfg.global_size // 32
        self.fc1 = FCBlock(c(512) * side * side, c(1024), cfg.dropout)
        self.fc2 = FCBlock(c(1024), c(512), cfg.dropout)
        self.fc3 = FCBlock(c(512), c(256))

    def forward(self, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.fc2(self.fc1(self.convs(low).flatten(1)))
        return self.fc3(hidden), hidden


class MidLevelFeatures(nn.Module):
    """Table 1 (c): two convolutions giving the H/8 x W/8 x 256 local features."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.layers = nn.Sequential(ConvBlock(c(512), c(512)), ConvBlock(c(512), c(256)))

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return self.layers(low)


class FusionLayer(nn.Module):
    """Eq. 5: ``y(u,v) = relu(b + W [global; mid(u,v)])`` with W of size 256 x 512.

    Concatenating the global vector to every location and applying W equals applying
    the mid-level part of W as a 1x1 convolution and adding the global part once per
    image, which is what ``forward`` does (no H x W copy of the global vector).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.global_channels = c(256)
        self.layer = nn.Conv2d(c(256) + c(256), c(256), 1, bias=False)  # W = [W_global, W_mid]
        self.bn = nn.BatchNorm2d(c(256))
        self.act = nn.ReLU(inplace=True)

    def forward(self, mid: torch.Tensor, global_features: torch.Tensor) -> torch.Tensor:
        w = self.layer.weight.flatten(1)
        w_global, w_mid = w[:, : self.global_channels], w[:, self.global_channels :]
        y = F.conv2d(mid, w_mid[:, :, None, None], self.layer.bias)
        y = y + F.linear(global_features.to(y.dtype), w_global.to(y.dtype))[:, :, None, None]
        return self.act(self.bn(y))


class ColorizationNetwork(nn.Module):
    """Table 1 (d): convolutions and nearest-neighbour x2 upsampling, sigmoid a*b* at H/2 x W/2
    (``cfg.out_channels`` outputs in [0, 1]: U, V or R, G, B for the other colour spaces, 4.8)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        up = nn.Upsample(scale_factor=2, mode="nearest")
        self.layers = nn.Sequential(
            ConvBlock(c(256), c(128)),
            up,
            ConvBlock(c(128), c(64)),
            ConvBlock(c(64), c(64)),
            up,
            ConvBlock(c(64), c(32)),
        )
        self.output = nn.Conv2d(c(32), cfg.out_channels, 3, padding=1)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.output(self.layers(fused)))


class ClassificationHead(nn.Module):
    """Section 3.3: FC 512 -> 256 -> N scene classes, fed by the 512-d global layer."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c = cfg.channels
        self.hidden = FCBlock(c(512), c(256))
        self.output = nn.Linear(c(256), cfg.num_classes)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.hidden(hidden))


class ColorizerOutput(NamedTuple):
    ab: torch.Tensor  # normalised a*b* in [0, 1], (N, 2, ceil(H/2), ceil(W/2))
    logits: torch.Tensor | None  # scene-class logits (N, num_classes); None for the baseline
    global_features: torch.Tensor | None  # the 256-d vector fused into every location


class Colorizer(nn.Module):
    """Figure 2: the whole model. Takes L*/100 shaped ``(N, 1, H, W)``, any H and W.

    The full-size image goes through the low-level, mid-level and colorization networks;
    a copy rescaled to ``global_size`` goes through the low-level and global networks
    (section 3.2). When the input already is ``global_size`` square, the low-level
    features are computed once and shared, as in training.
    """

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ModelConfig()
        self.low_level = LowLevelFeatures(cfg)
        self.mid_level = MidLevelFeatures(cfg)
        self.colorization = ColorizationNetwork(cfg)
        if cfg.variant == "full":
            self.global_network = GlobalFeatures(cfg)
            self.fusion = FusionLayer(cfg)
            self.classifier = ClassificationHead(cfg)
        else:  # the paper's baseline: a 3x3 convolution stands where fusion was
            self.global_network = None
            self.fusion = ConvBlock(cfg.channels(256), cfg.channels(256))
            self.classifier = None

    # -- the global branch -------------------------------------------------------------
    def resize_for_global(self, L: torch.Tensor) -> torch.Tensor:
        """Rescale L* to the fixed ``global_size`` square the global network needs
        (:func:`resize_for_global`)."""
        return resize_for_global(L, self.cfg.global_size)

    @property
    def is_folded(self) -> bool:
        """Whether batch norm is folded into the weights (:func:`fold_batchnorm`): no batch-norm
        layer is left, so the model is ready for inference as it is."""
        return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules())

    def global_branch(
        self, L: torch.Tensor, low: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The 256-d global features and scene logits of ``L`` (N, 1, H, W) in [0, 1]."""
        if self.global_network is None:
            raise ValueError("the baseline variant has no global features")
        if low is None:
            low = self.low_level(self.resize_for_global(L))
        g, hidden = self.global_network(low)
        return g, self.classifier(hidden)

    def encode_global(self, L: torch.Tensor) -> torch.Tensor:
        """The global feature vector (N, 256*width) of ``L`` in [0, 1] (style transfer, 4.5)."""
        return self.global_branch(L)[0]

    # -- the whole model ---------------------------------------------------------------
    def forward(
        self,
        L: torch.Tensor,
        global_L: torch.Tensor | None = None,
        global_features: torch.Tensor | None = None,
    ) -> ColorizerOutput:
        """Colorize ``L`` (N, 1, H, W), L*/100 in [0, 1].

        ``global_L``: take the global features from these images instead (style transfer,
        section 4.5). ``global_features``: use this (N or 1, 256*width) vector directly,
        e.g. a mix ``(1 - t) g_A + t g_B``. Returns normalised a*b* at half resolution.
        """
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"expected L shaped (N, 1, H, W), got {tuple(L.shape)}")
        H, W = L.shape[-2:]
        pad_h, pad_w = -H % 8, -W % 8
        x = F.pad(L, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else L
        low = self.low_level(x)
        logits = g = None
        if self.global_network is None:
            fused = self.fusion(self.mid_level(low))
        else:
            if global_features is not None:
                g = global_features.expand(L.shape[0], -1)
            else:
                s = self.cfg.global_size
                shared = global_L is None and L.shape[-2:] == (s, s)
                source = L if global_L is None else global_L
                g, logits = self.global_branch(source, low if shared else None)
            fused = self.fusion(self.mid_level(low), g)
        ab = self.colorization(fused)
        ab = ab[..., : (H + 1) // 2, : (W + 1) // 2]
        return ColorizerOutput(ab, logits, g)


# Tensor names that changed: colorlib 0.1 called the global features network's module
# ``global_features``, the name its output vector keeps. Files written then load under today's name.
_RENAMED_PREFIXES = {"global_features.": "global_network."}


def upgrade_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict written by an earlier colorlib, with its tensors under today's names."""
    def rename(k: str) -> str:
        for old, new in _RENAMED_PREFIXES.items():
            if k.startswith(old):
                return new + k[len(old):]
        return k

    return {rename(k): v for k, v in state.items()}


def resize_for_global(L: torch.Tensor, size: int) -> torch.Tensor:
    """L* ``(N, 1, H, W)`` (any scale) -> ``(N, 1, size, size)``, the fixed square the global
    network sees (section 3.2.2): bilinear, antialiased when shrinking, in ``L``'s dtype."""
    if L.shape[-2:] == (size, size):
        return L
    shrink = L.shape[-2] > size or L.shape[-1] > size
    # antialiased resizing has no bfloat16/float16 kernel: resize in float32, then back
    small = F.interpolate(L.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return small.to(L.dtype)


def upsample_ab(ab01: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The network's half-resolution output ``(N, 2, ceil(H/2), ceil(W/2))`` -> float
    ``(N, 2, H, W)`` (section 3.2.5): bilinear x2, then cropped, so each output pixel stays
    centred on the two input pixels it came from (also for odd H or W, where resizing to H would
    drift). Also applied to the ONNX graphs' output (:mod:`colorlib.onnx.runtime`)."""
    up = F.interpolate(ab01.float(), scale_factor=2, mode="bilinear", align_corners=False)
    return up[..., : size[0], : size[1]]


def mix_global(g_a: torch.Tensor, g_b: torch.Tensor, t: float) -> torch.Tensor:
    """``(1 - t) * g_a + t * g_b``: t = 0 is image A's global features, t = 1 image B's."""
    return torch.lerp(g_a, g_b, float(t))


def weight_count(model: nn.Module) -> int:
    """Number of convolution and fully-connected weights (no biases, no batch norm): Table 1."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def fold_batchnorm(model: Colorizer) -> Colorizer:
    """An equivalent copy for inference, batch norm folded into the weights (section 3.4).

    Each ``layer -> bn`` pair becomes ``layer`` with ``W' = W * gamma / sigma`` and
    ``b' = (b - mu) * gamma / sigma + beta``; the copy is in eval mode, channels-last, and on
    CPU its convolutions apply their ReLU inside oneDNN. Same outputs to about 1e-5. Raises
    ``TypeError`` for anything but a :class:`Colorizer`.

    This is the step that makes a loaded model ready for inference, and it is explicit:
    :func:`colorlib.colorize` and :func:`colorlib.classify` fold a copy on each call unless the
    model they are given is already folded (:attr:`Colorizer.is_folded`), and keep nothing. A
    copy costs a few tens of milliseconds for the shipped models on a 2-core CPU, so for many
    photos fold once and pass the folded model. The copy is for inference only, not training.
    """
    if not isinstance(model, Colorizer):
        raise TypeError(f"fold_batchnorm takes a colorlib Colorizer, got {type(model).__name__}")
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for m in folded.modules():
            bn = getattr(m, "bn", None)
            if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
                continue
            layer = m.layer
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
            layer.weight.mul_(scale.view(-1, *([1] * (layer.weight.dim() - 1))))
            layer.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
            m.bn = nn.Identity()
            if isinstance(m, ConvBlock) and _CONV_RELU is not None and torch.backends.mkldnn.is_available():
                m.fused = True
    return folded.to(memory_format=torch.channels_last)


def describe_layers(cfg: ModelConfig | None = None) -> list[dict]:
    """Table 1 generated from the code: one row per conv/FC layer with kernel, stride, outputs."""
    rows = []
    for name, m in Colorizer(cfg).named_modules():
        if isinstance(m, nn.Conv2d):
            rows.append(dict(layer=name, type="conv", kernel="x".join(map(str, m.kernel_size)),
                             stride=m.stride[0], outputs=m.out_channels, weights=m.weight.numel()))
        elif isinstance(m, nn.Linear):
            rows.append(dict(layer=name, type="FC", kernel="-", stride="-", outputs=m.out_features,
                             weights=m.weight.numel()))
    return rows

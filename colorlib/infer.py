"""Colorizing photographs: pre-processing, the network, post-processing (paper section 3.2).

The split follows the usual colorization pipeline: the input's full-resolution L* is kept;
the network sees L*/100 (any size; the global branch a rescaled copy); its a*b* output at
half resolution is upsampled to full size and joined with the original L*. Only a*b*
come from the network, so the output's lightness is the input's.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# The image readers live in colorlib.imageio; older code imports them from here, which still works.
from .imageio import ImageLike, over_white, rgb_and_alpha, to_rgb_array
from .lab import denormalize_ab, join_lab, lab_to_rgb, normalize_L, rgb_to_lab, srgb8_to_L
from .model import Colorizer, fold_batchnorm

_FOLDED: weakref.WeakKeyDictionary[Colorizer, tuple[tuple, Colorizer]] = weakref.WeakKeyDictionary()


def _uint8_tensor(rgb: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> uint8 ``(1, 3, H, W)`` (a read-only array, e.g. from PIL, is copied)."""
    if not rgb.flags.writeable:
        rgb = rgb.copy()
    return torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None]


def rgb_tensor(rgb: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float ``(1, 3, H, W)`` in [0, 1]."""
    return _uint8_tensor(rgb, device).float() / 255.0


def luminance(image: ImageLike, device="cpu") -> torch.Tensor:
    """L* in [0, 100] of any image, ``(1, 1, H, W)``. Colour input keeps only its L*."""
    rgb = to_rgb_array(image)
    return srgb8_to_L(_uint8_tensor(rgb, device))


def network_input(net: Colorizer, L: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] -> the network's input L*/100, in its dtype, channels-last."""
    dtype = next(net.parameters()).dtype
    return normalize_L(L).to(dtype=dtype, memory_format=torch.channels_last)


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Batch norm on its running statistics (and no dropout) inside, the caller's mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def predict_ab(
    model: Colorizer,
    L: torch.Tensor,
    global_L: torch.Tensor | None = None,
    global_features: torch.Tensor | None = None,
) -> torch.Tensor:
    """a*b* (in about [-128, 127]) for L* ``(N, 1, H, W)`` in [0, 100], at full size H x W.

    The network's half-resolution output is upsampled bilinearly (paper section 3.2.5).
    """
    x = network_input(model, L)
    g = None if global_L is None else network_input(model, global_L)
    if global_features is not None:
        global_features = global_features.to(x.dtype)
    ab01 = model(x, global_L=g, global_features=global_features).ab
    return denormalize_ab(upsample_ab(ab01, L.shape[-2:]))


def upsample_ab(ab01: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The network's half-resolution output ``(N, 2, ceil(H/2), ceil(W/2))`` -> float
    ``(N, 2, H, W)``: bilinear x2, then cropped, so each output pixel stays centred on the two
    input pixels it came from (also for odd H or W, where resizing to H would drift)."""
    up = F.interpolate(ab01.float(), scale_factor=2, mode="bilinear", align_corners=False)
    return up[..., : size[0], : size[1]]


def _weights_key(model: Colorizer) -> tuple:
    """Changes when the weights do: autograd's version counters see every ordinary in-place
    update (optimizer steps, ``load_state_dict``, ``p.mul_()`` under ``no_grad``); edits made
    through ``p.data`` bypass them, and each tensor's sum catches those that change it (scaling,
    zeroing, adding noise; not, say, a swap of two values). One pass over the weights: about
    1.5 ms for the shipped models on a 2-core CPU, far less than folding."""
    tensors = list(model.state_dict().values())
    with torch.no_grad():
        sums = torch.stack([t.sum(dtype=torch.float32) for t in tensors]) if tensors else torch.zeros(0)
    return sum(t._version for t in tensors), tuple(sums.nan_to_num().tolist())  # NaN != NaN


def _ready(model: Colorizer) -> Colorizer:
    """The model with batch norm folded (section 3.4), cached on it until its weights change."""
    key = _weights_key(model)
    cached = _FOLDED.get(model)
    if cached is None or cached[0] != key:
        cached = _FOLDED[model] = (key, fold_batchnorm(model))
    return cached[1]


@torch.inference_mode()
def colorize(
    model: Colorizer,
    image: ImageLike,
    global_image: ImageLike | None = None,
    global_features: torch.Tensor | None = None,
    saturation: float | None = None,
    fold: bool = True,
) -> Image.Image:
    """Colorize ``image`` (PIL, array or path, any mode and size) -> RGB PIL image, same size.

    Transparent input gives RGBA with the input's alpha: the network sees the image as it
    looks over white, and every pixel keeps its own L*, so the output blends as the input did.

    The output's L* is the input's luminance; only a*b* come from the network.
    ``global_image``: take the global features from another photo (style transfer, paper
    section 4.5); ``global_features``: a given global vector (e.g. a mix of two).
    ``saturation``: multiply the predicted a*b* by this gain; None uses the model's own
    (:func:`default_saturation`), 1.0 gives the network's raw output.
    """
    net = _ready(model) if fold else model
    device = next(net.parameters()).device
    own, alpha = rgb_and_alpha(image)
    L = luminance(own, device)
    seen = L if alpha is None else luminance(over_white(own, alpha), device)
    gL = None if global_image is None else luminance(global_image, device)
    with eval_mode(net):
        ab = predict_ab(net, seen, gL, global_features) * output_gain(model, saturation)
    rgb = lab_to_rgb(join_lab(L, ab))[0].permute(1, 2, 0)
    out = (rgb * 255).round().clamp(0, 255).byte().cpu().numpy()
    return Image.fromarray(out if alpha is None else np.dstack([out, alpha]))


def default_saturation(model: Colorizer) -> float:
    """The a*b* gain a shipped model was calibrated with (1.0 when it has none).

    A network trained with the MSE of Eq. 6 predicts the mean of the plausible colours, so
    its colours come out duller than real ones; ``scripts/calibrate_saturation.py`` picks a
    gain on training images (never on validation images) and stores it in the model file.
    """
    return float(getattr(model, "meta", {}).get("saturation", 1.0))


def output_gain(model: Colorizer, saturation: float | None) -> float:
    """The a*b* gain to apply: ``saturation``, or the model's own when it is None; checked."""
    g = default_saturation(model) if saturation is None else float(saturation)
    if not 0 <= g <= 4:
        raise ValueError(f"saturation must be in [0, 4], got {g}")
    return g


@torch.inference_mode()
def global_features_of(model: Colorizer, image: ImageLike) -> torch.Tensor:
    """The 256-d global feature vector ``(1, 256*width)`` of a photo (section 4.5)."""
    net = _ready(model)
    return net.encode_global(network_input(net, luminance(image, next(net.parameters()).device)))


@torch.inference_mode()
def colorize_batch(model: Colorizer, rgb: torch.Tensor, saturation: float | None = 1.0) -> torch.Tensor:
    """Colorize the grayscale versions of float RGB ``(N, 3, H, W)`` in [0, 1]; returns
    float RGB in [0, 1] with each input's own L*. ``saturation`` as in :func:`colorize`."""
    L = rgb_to_lab(rgb)[:, :1]
    with eval_mode(model):
        ab = predict_ab(model, L) * output_gain(model, saturation)
    return lab_to_rgb(join_lab(L, ab))


@torch.inference_mode()
def classify(model: Colorizer, image: ImageLike, top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` most likely scene classes of ``image`` from its L* alone (the classification
    head of paper section 3.3, on the global branch's rescaled copy of the image), best first,
    as ``(class name, probability in [0, 1])``. Batch norm is folded (section 3.4) and the
    network runs in eval mode. Names come from ``model.meta["classes"]``, else ``"0"``, ``"1"``, ...
    ``top`` larger than the number of classes gives every class.

    Raises ``ValueError`` for a model without a classifier (the baseline, no global features),
    for ``top < 1``, and for an image :func:`colorlib.imageio.rgb_and_alpha` refuses.
    """
    if model.classifier is None:
        raise ValueError("this is a baseline model: it has no classifier (no global features); "
                         "use miniplaces-full or a sweep-alpha-* model")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    classes = getattr(model, "meta", {}).get("classes") or [str(i) for i in range(model.cfg.num_classes)]
    net = _ready(model)
    L = luminance(image, next(net.parameters()).device)
    with eval_mode(net):
        probs = net.global_branch(network_input(net, L))[1].float().softmax(1)[0]
    best = probs.topk(min(top, len(classes)))
    return [(classes[i], float(p)) for p, i in zip(best.values.tolist(), best.indices.tolist())]

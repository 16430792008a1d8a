"""Colorizing photographs: pre-processing, the network, post-processing (paper section 3.2).

The split follows the usual colorization pipeline: the input's full-resolution L* is kept;
the network sees L*/100 (any size; the global branch a rescaled copy); its a*b* output at
half resolution is upsampled to full size and joined with the original L*. Only a*b*
come from the network, so the output's lightness is the input's.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# The image readers live in colorlib.imageio; older code imports them from here, which still works.
from .imageio import ImageLike, over_white, rgb_and_alpha, to_rgb_array
from .lab import denormalize_ab, join_lab, lab_to_rgb_in_gamut, normalize_L, rgb_to_lab, srgb8_to_L
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
    """L* in [0, 100] of any image, float32 ``(1, 1, H, W)`` on ``device``. Colour input keeps
    only its L*; transparent pixels count as seen over white. How each PIL mode and array type
    is read, and what is refused: :mod:`colorlib.imageio`."""
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


def predict(
    model: Colorizer,
    L: torch.Tensor,
    global_L: torch.Tensor | None = None,
    global_features: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """a*b* (in about [-128, 127]) for L* ``(N, 1, H, W)`` in [0, 100], at full size H x W, and
    the scene logits ``(N, num_classes)`` of the same forward pass (None for the baseline, and
    when the global features come from elsewhere: ``global_L`` or ``global_features``).

    The network's half-resolution output is upsampled bilinearly (paper section 3.2.5).
    """
    x = network_input(model, L)
    g = None if global_L is None else network_input(model, global_L)
    if global_features is not None:
        global_features = global_features.to(x.dtype)
    out = model(x, global_L=g, global_features=global_features)
    logits = out.logits if global_L is None and global_features is None else None
    return denormalize_ab(upsample_ab(out.ab, L.shape[-2:])), logits


def predict_ab(
    model: Colorizer,
    L: torch.Tensor,
    global_L: torch.Tensor | None = None,
    global_features: torch.Tensor | None = None,
) -> torch.Tensor:
    """The a*b* of :func:`predict` alone."""
    return predict(model, L, global_L, global_features)[0]


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


#: The most pixels :func:`colorize` runs the network on by default: 2048 x 2048, the largest size
#: of the paper's Table 3. Bigger photos are colorized from a copy scaled down to this many
#: pixels (their a*b* upsampled, their own full-resolution L* kept), which bounds the memory.
DEFAULT_MAX_PIXELS = 2048 * 2048

# Peak memory per pixel, measured with benchmarks/peak_memory.py (RSS high-water marks of fresh
# processes colorizing a 6000x4000 JPEG with miniplaces-full, float32, 2 CPU threads): 94 bytes
# per pixel the network sees (the slope between max_pixels 2**20 and no bound; width 0.5, so it
# scales with the width and the dtype's size) and 11 bytes per pixel of the photo for the
# full-resolution work around it (the photo, its L*, the block-wise a*b* -> RGB, the output).
_NETWORK_BYTES_PER_PIXEL = 94
_FULL_BYTES_PER_PIXEL = 11
# Rows of the full-resolution image are converted to RGB this many pixels at a time.
_BLOCK_PIXELS = 1 << 19


def network_size(H: int, W: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """The size ``(h, w)`` the network sees for an ``H x W`` image: ``(H, W)`` itself when
    ``H * W <= max_pixels`` (or ``max_pixels`` is None), else the same aspect ratio scaled down
    so that ``h * w <= max_pixels`` (each side at least 1). Raises ``ValueError`` for
    ``max_pixels < 1``."""
    if max_pixels is not None and max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1 (or None for no bound), got {max_pixels}")
    if max_pixels is None or H * W <= max_pixels:
        return H, W
    scale = math.sqrt(max_pixels / (H * W))
    h, w = max(1, int(H * scale)), max(1, int(W * scale))
    while h * w > max_pixels:  # int() already rounds down; this only guards float rounding
        h, w = (h - 1, w) if h >= w else (h, w - 1)
    return h, w


def estimate_memory(model: Colorizer, H: int, W: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> int:
    """About how many bytes :func:`colorize` needs for an ``H x W`` image (network and
    full-resolution work; the Python process itself takes a few hundred MB more), from the
    per-pixel figures measured for the shipped models, scaled by the model's width and dtype."""
    h, w = network_size(H, W, max_pixels)
    dtype = next(model.parameters()).dtype
    factor = getattr(getattr(model, "cfg", None), "width", 0.5) / 0.5 * dtype.itemsize / 4
    return int(h * w * _NETWORK_BYTES_PER_PIXEL * factor + H * W * _FULL_BYTES_PER_PIXEL)


@torch.inference_mode()
def colorize(
    model: Colorizer,
    image: ImageLike,
    global_image: ImageLike | None = None,
    global_features: torch.Tensor | None = None,
    saturation: float | None = None,
    fold: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    engine: str = "torch",
) -> Image.Image:
    """Colorize ``image`` (PIL image, array, path or binary file object; any mode and size) ->
    RGB PIL image of the same size (RGBA for transparent input).

    The output's L* is the input's on every pixel (to within 8-bit rounding): only a*b* come
    from the network, and colours outside sRGB are brought in at constant L* and hue
    (:func:`colorlib.lab.lab_to_rgb_in_gamut`), not clipped per channel. How each PIL mode and
    array type is read: :mod:`colorlib.imageio` (multi-frame files: the first frame, with a
    ``UserWarning``). Transparent input gives RGBA with the input's alpha: the network sees the
    image over white, and every pixel keeps its own L*, so the output blends as the input did.

    ``global_image``: take the global features from another photo (style transfer, paper
    section 4.5); ``global_features``: a given global vector (e.g. a mix of two).
    ``saturation``: multiply the predicted a*b* by this gain in [0, 4]; None uses the model's
    own (:func:`default_saturation`), 1.0 gives the network's raw output.
    ``max_pixels``: run the network on at most this many pixels (:func:`network_size`: larger
    images are scaled down with area averaging, keeping the aspect ratio; their a*b* come back
    upsampled bilinearly to full size and join the full-resolution L*, which bounds the memory
    to about :func:`estimate_memory`); None runs it on every pixel.

    ``engine``: ``"torch"``, or ``"onnx"``: ONNX Runtime on the CPU (:mod:`colorlib.engine`, extra
    ``colorlib[onnx]``; a model's first call exports its graphs, cached on disk); same a*b* to 1e-4.

    Raises ``ValueError`` for unreadable or unsupported images (see
    :func:`colorlib.imageio.rgb_and_alpha`), a bad ``saturation`` or ``max_pixels``;
    ``FileNotFoundError`` for a missing file; ``MemoryError`` (one line: the image size and an
    estimate of what it needs) when memory runs out anyway.
    """
    gain = output_gain(model, saturation)
    _check_max_pixels(max_pixels)
    _check_engine(engine)
    own, alpha = rgb_and_alpha(image)  # first: an unreadable image fails before any model work
    net = _ready(model) if fold else model
    device = next(net.parameters()).device
    H, W = own.shape[:2]
    h, w = network_size(H, W, max_pixels)
    try:
        L = luminance(own, device)
        seen = L if alpha is None else luminance(over_white(own, alpha), device)
        del own
        if (h, w) != (H, W):
            seen = F.interpolate(seen, size=(h, w), mode="area")
        gL = None if global_image is None else luminance(global_image, device)
        ab = _predict_with(engine, model, net, seen, gL, global_features) * gain
        del seen
        out = _to_rgb8(L, ab)
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        raise _memory_error(net, (H, W), (h, w), max_pixels) from None
    return Image.fromarray(out if alpha is None else np.dstack([out, alpha]))


ENGINES = ("torch", "onnx")


def _predict_with(engine: str, model: Colorizer, net: Colorizer, L: torch.Tensor, global_L: torch.Tensor | None,
                  global_features: torch.Tensor | None) -> torch.Tensor:
    """:func:`predict_ab` on ``engine``: PyTorch (``net``, batch norm folded or not) or ONNX Runtime."""
    if engine == "onnx":
        from .engine import onnx_engine  # the optional extra colorlib[onnx]; its ImportError names it

        return onnx_engine(model).predict_ab(L.cpu(), global_L, global_features).to(L.device)
    with eval_mode(net):
        return predict_ab(net, L, global_L, global_features)


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def _check_max_pixels(max_pixels: int | None) -> None:
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer))
                                   or max_pixels < 1):
        raise ValueError(f"max_pixels must be a whole number of at least 1 (or None for no bound), "
                         f"got {max_pixels!r}")


def _memory_error(net: Colorizer, size: tuple[int, int], seen: tuple[int, int],
                  max_pixels: int | None) -> MemoryError:
    """One line: the image size, what the network ran on, and an estimate of what it needs."""
    (H, W), (h, w) = size, seen
    need = estimate_memory(net, H, W, max_pixels)
    hint = "pass a smaller max_pixels" if max_pixels is None or max_pixels > 1 << 20 else "free some memory"
    return MemoryError(f"not enough memory to colorize a {W}x{H} image (the network on {w}x{h} "
                       f"pixels): it needs about {need / 1e9:.1f} GB; {hint}")


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocator running out of memory (CPU or GPU), not another error."""
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    text = str(e)
    return any(s in text for s in ("not enough memory", "DefaultCPUAllocator", "out of memory"))


def _to_rgb8(L: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """Full-resolution L* ``(1, 1, H, W)`` and a*b* ``(1, 2, h, w)`` (any size; upsampled
    bilinearly to H x W as :func:`torch.nn.functional.interpolate` would) -> uint8 sRGB
    ``(H, W, 3)``, in gamut at constant L*. Converted a block of rows at a time, so the float
    temporaries stay a few tens of MB however large the photo."""
    H, W = L.shape[-2:]
    h, w = ab.shape[-2:]
    out = np.empty((H, W, 3), dtype=np.uint8)
    rows = max(1, _BLOCK_PIXELS // W)
    xs = (torch.arange(W, device=L.device, dtype=torch.float32) + 0.5) * (2 / W) - 1
    for top in range(0, H, rows):
        n = min(rows, H - top)
        if (h, w) == (H, W):
            ab_rows = ab[..., top : top + n, :]
        else:  # pixel centres of these rows in [-1, 1], as interpolate(align_corners=False) maps them
            ys = (torch.arange(top, top + n, device=L.device, dtype=torch.float32) + 0.5) * (2 / H) - 1
            grid = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), dim=-1)[None]
            ab_rows = F.grid_sample(ab.float(), grid, mode="bilinear", padding_mode="border",
                                    align_corners=False)
        rgb = lab_to_rgb_in_gamut(join_lab(L[..., top : top + n, :], ab_rows))[0]
        out[top : top + n] = (rgb * 255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return out


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
    float RGB in [0, 1] with each input's own L* on every pixel (out-of-gamut colours reduced
    in chroma at constant L*, as in :func:`colorize`). ``saturation`` as in :func:`colorize`.
    Raises ``ValueError`` for NaN or infinite input and a bad ``saturation``."""
    gain = output_gain(model, saturation)
    if not bool(torch.isfinite(rgb).all()):
        raise ValueError("rgb has NaN or infinite values; colorize_batch takes RGB in [0, 1]")
    L = rgb_to_lab(rgb)[:, :1]
    with eval_mode(model):
        ab = predict_ab(model, L) * gain
    return lab_to_rgb_in_gamut(join_lab(L, ab))


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

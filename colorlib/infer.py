"""Colorizing photographs: pre-processing, the network, post-processing (paper section 3.2).

The split follows the usual colorization pipeline: the input's full-resolution L* is kept;
the network sees L*/100 (any size; the global branch a rescaled copy); its a*b* output at
half resolution is upsampled to full size and joined with the original L*. Only a*b*
come from the network, so the output's lightness is the input's. Models of the colour-space
comparison (section 4.8, :mod:`colorlib.colorspace`) predict U and V, or R, G and B, and keep the
input's Y instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .colorspace import DEFAULT_SPACE, SPACES, ColorSpace
from .imageio import ImageLike, over_white, rgb_and_alpha, to_rgb_array
from .lab import normalize_L, rgb_to_L
from .model import Colorizer, fold_batchnorm, upsample_ab


def _uint8_tensor(rgb: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> uint8 ``(1, 3, H, W)`` (a read-only array, e.g. from PIL, is copied)."""
    if not rgb.flags.writeable:
        rgb = rgb.copy()
    return torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None]


def rgb_tensor(rgb: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float ``(1, 3, H, W)`` in [0, 1]."""
    return _uint8_tensor(rgb, device).float() / 255.0


def lightness(image: ImageLike, device="cpu") -> torch.Tensor:
    """CIE lightness L* in [0, 100] of any image (file, PIL image, array), float32 ``(1, 1, H, W)``
    on ``device`` (:func:`colorlib.lab.rgb_to_L` of its 8-bit sRGB). Colour input keeps only its
    L*; transparent pixels count as seen over white. How each PIL mode and array type is read,
    and what is refused: :mod:`colorlib.imageio`."""
    rgb = to_rgb_array(image)
    return rgb_to_L(_uint8_tensor(rgb, device))


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

    The network's half-resolution output is upsampled bilinearly (paper section 3.2.5). A model
    of another colour space (``model.cfg.color_space``, section 4.8) gives its own prediction
    instead: U and V, or R, G, B in [0, 1] (:attr:`colorlib.colorspace.ColorSpace.denormalize`).
    """
    x = network_input(model, L)
    g = None if global_L is None else network_input(model, global_L)
    if global_features is not None:
        global_features = global_features.to(x.dtype)
    out = model(x, global_L=g, global_features=global_features)
    logits = out.logits if global_L is None and global_features is None else None
    return SPACES[model.cfg.color_space].denormalize(upsample_ab(out.ab, L.shape[-2:])), logits


def predict_ab(
    model: Colorizer,
    L: torch.Tensor,
    global_L: torch.Tensor | None = None,
    global_features: torch.Tensor | None = None,
) -> torch.Tensor:
    """The a*b* of :func:`predict` alone."""
    return predict(model, L, global_L, global_features)[0]


def inference_model(model: Colorizer) -> Colorizer:
    """The model :func:`colorize`, :func:`classify` and :func:`global_features_of` run:
    ``model`` itself when batch norm is already folded (:attr:`Colorizer.is_folded`) or when it
    is not a PyTorch network (a folder of ONNX graphs, :class:`colorlib.onnx.OnnxColorizer`), else
    a folded copy made for this call (:func:`colorlib.model.fold_batchnorm`, section 3.4; same
    outputs, faster). Nothing is cached: to colorize many photos, fold once and pass the copy."""
    return fold_batchnorm(model) if isinstance(model, Colorizer) and not model.is_folded else model


def _device(net) -> torch.device:
    """Where ``net`` computes: its weights' device (the CPU for ONNX graphs)."""
    weights = next(net.parameters(), None) if isinstance(net, Colorizer) else None
    return torch.device("cpu") if weights is None else weights.device


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
    dtype = next(model.parameters()).dtype if isinstance(model, Colorizer) else torch.float32
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
) -> Image.Image:
    """Colorize ``image`` (PIL image, array, path or binary file object; any mode and size) ->
    RGB PIL image of the same size (RGBA for transparent input).

    The output's L* is the input's on every pixel (to within 8-bit rounding): only a*b* come
    from the network, and colours outside sRGB are brought in at constant L* and hue
    (:func:`colorlib.lab.lab_to_rgb_in_gamut`), not clipped per channel. How each PIL mode and
    array type is read: :mod:`colorlib.imageio` (multi-frame files: the first frame, with a
    ``UserWarning``). Transparent input gives RGBA with the input's alpha: the network sees the
    image over white, and every pixel keeps its own L*, so the output blends as the input did.

    ``model``: a :class:`Colorizer`, or a folder of its ONNX graphs opened with
    :class:`colorlib.onnx.OnnxColorizer` (the same steps around the network, ONNX Runtime for it).
    ``global_image``: take the global features from another photo (style transfer, paper
    section 4.5); ``global_features``: a given global vector ``(1, 256*width)`` (e.g. a mix).
    ``saturation``: the factor the predicted a*b* are multiplied by, in [0, 4] (chroma scales
    with it at constant L* and hue); None uses the model's own (:func:`default_saturation`),
    1.0 gives the network's raw output.
    ``fold``: run batch norm folded (:func:`inference_model`: ``model`` as it is when already
    folded, else a folded copy for this call); False runs ``model`` unfolded, in eval mode.
    ``max_pixels``: run the network on at most this many pixels (:func:`network_size`; larger
    images are area-averaged down, their a*b* upsampled to join the full-size L*, which bounds
    memory, :func:`estimate_memory`); None runs it on every pixel.

    Raises ``TypeError`` for another kind of model; ``ValueError`` for unreadable or unsupported
    images (:func:`colorlib.imageio.rgb_and_alpha`), a bad ``saturation``, ``max_pixels`` or
    ``global_features``; ``FileNotFoundError`` for a missing file; ``MemoryError`` (one line: the
    image size and an estimate of what it needs).
    """
    saturation = resolve_saturation(model, saturation)
    _check_max_pixels(max_pixels)
    global_features = _check_model_and_global(model, global_image, global_features)
    own, alpha = rgb_and_alpha(image)  # first: an unreadable image fails before any model work
    net = inference_model(model) if fold else model
    device = _device(net)
    (H, W), (h, w) = own.shape[:2], network_size(*own.shape[:2], max_pixels)
    try:
        L = lightness(own, device)
        seen = L if alpha is None else lightness(over_white(own, alpha), device)
        space, luma = _joined_luminance(model, own, L)
        del own
        if (h, w) != (H, W):
            seen = F.interpolate(seen, size=(h, w), mode="area")
        gL = None if global_image is None else lightness(global_image, device)
        out = _to_rgb8(luma, _predict_with(net, seen, gL, global_features), space, saturation)
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        raise _memory_error(net, (H, W), (h, w), max_pixels) from None
    return Image.fromarray(out if alpha is None else np.dstack([out, alpha]))


def _joined_luminance(model: Colorizer, rgb: np.ndarray, L: torch.Tensor) -> tuple[ColorSpace, torch.Tensor]:
    """The model's output colour space and the luminance its prediction joins: the photo's L*
    (``L``) for L*a*b*, else its Y from the uint8 ``rgb`` (section 4.8, :mod:`colorlib.colorspace`)."""
    space = SPACES[model.cfg.color_space]
    return space, space.luminance(_uint8_tensor(rgb, L.device), L)


def _predict_with(net, L: torch.Tensor, global_L: torch.Tensor | None,
                  global_features: torch.Tensor | None) -> torch.Tensor:
    """:func:`predict_ab` on ``net``: a :class:`Colorizer` (PyTorch, batch norm folded or not) or
    ONNX graphs (:class:`colorlib.onnx.OnnxColorizer`, same arguments). Raises ``ValueError`` when
    the a*b* are not all finite (weights that overflow), so that no image of NaN is ever written."""
    if not isinstance(net, Colorizer):
        ab = net.predict_ab(L, global_L, global_features)
    else:
        with eval_mode(net):
            ab = predict_ab(net, L, global_L, global_features)
    if not bool(torch.isfinite(ab).all()):
        raise ValueError("the network's a*b* for this image are not numbers (NaN or infinite): "
                         "the model's weights overflow; nothing written")
    return ab


def _check_model_and_global(model: Colorizer, global_image, global_features: torch.Tensor | None):
    """:func:`colorize`'s model (:func:`check_model`) and where its global features come from
    (:func:`check_global_features`; a baseline has none to take from ``global_image`` either:
    ``ValueError``)."""
    check_model(model)
    if global_image is not None and model.cfg.variant != "full":
        raise ValueError("this is a baseline model: it has no global features to take from global_image")
    return check_global_features(model, global_features)


def check_model(model) -> None:
    """Raise ``TypeError`` unless ``model`` is a :class:`Colorizer` or ONNX graphs that stand in
    for one (:class:`colorlib.onnx.OnnxColorizer`: a ``cfg``, a ``meta`` and ``predict_ab``)."""
    if not (isinstance(model, Colorizer) or all(hasattr(model, a) for a in ("cfg", "meta", "predict_ab"))):
        raise TypeError(f"model must be a colorlib Colorizer (colorlib.load_model gives one) or "
                        f"colorlib.onnx.OnnxColorizer, got {type(model).__name__}")


def check_global_features(model: Colorizer, g: torch.Tensor | None) -> torch.Tensor | None:
    """``g`` as a float tensor ``(1, 256*width)`` (a 1-d vector of that length is taken as one
    row); None stays None. Raises ``ValueError`` for another type, shape or size, NaN or
    infinite values, and for a baseline model (it has no global features to replace)."""
    if g is None:
        return None
    if model.cfg.variant != "full":
        raise ValueError("this is a baseline model: it has no global features to replace")
    if not isinstance(g, torch.Tensor) or not g.is_floating_point():
        raise ValueError(f"global_features must be a float tensor, got {type(g).__name__}"
                         + (f" of {g.dtype}" if isinstance(g, torch.Tensor) else ""))
    size = model.cfg.channels(256)
    if g.dim() == 1:
        g = g[None]
    if g.dim() != 2 or g.shape != (1, size) or g.device.type == "meta":
        raise ValueError(f"global_features must be shaped (1, {size}), got {tuple(g.shape)}")
    if not bool(torch.isfinite(g).all()):
        raise ValueError("global_features has NaN or infinite values")
    return g


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


def _to_rgb8(L: torch.Tensor, ab: torch.Tensor, space: ColorSpace = SPACES[DEFAULT_SPACE],
             saturation: float = 1.0) -> np.ndarray:
    """Full-resolution L* ``(1, 1, H, W)`` and a*b* ``(1, 2, h, w)`` (any size; upsampled
    bilinearly to H x W as :func:`torch.nn.functional.interpolate` would) -> uint8 sRGB
    ``(H, W, 3)``, in gamut at constant L*, the a*b* times ``saturation``. For another colour
    ``space``, its luminance and prediction instead (:meth:`colorlib.colorspace.ColorSpace.to_rgb`).
    Converted a block of rows at a time, so the float temporaries stay a few tens of MB however
    large the photo."""
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
        rgb = space.to_rgb(L[..., top : top + n, :], ab_rows, saturation)[0]
        out[top : top + n] = (rgb * 255).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return out


def default_saturation(model: Colorizer) -> float:
    """The saturation a shipped model was calibrated with: the factor :func:`colorize`
    multiplies its predicted a*b* by (1.0 when it has none).

    A network trained with the MSE of Eq. 6 predicts the mean of the plausible colours, so
    its colours come out duller than real ones; ``scripts/calibrate_saturation.py`` picks a
    saturation on training images (never on validation images) and stores it in the model file.
    """
    return float(getattr(model, "meta", {}).get("saturation", 1.0))


def resolve_saturation(model: Colorizer, saturation: float | None) -> float:
    """The saturation to apply: ``saturation``, or the model's own (:func:`default_saturation`)
    when it is None. Raises ``ValueError`` unless it is a real number in [0, 4] (not a bool or
    a string)."""
    s = default_saturation(model) if saturation is None else saturation
    if isinstance(s, bool) or not isinstance(s, (int, float, np.integer, np.floating)) or not 0 <= s <= 4:
        raise ValueError(f"saturation must be a number in [0, 4], got {s!r}")
    return float(s)


@torch.inference_mode()
def global_features_of(model: Colorizer, image: ImageLike) -> torch.Tensor:
    """The global feature vector ``(1, 256*width)`` of a photo (section 4.5), from a
    :class:`Colorizer` or its ONNX graphs (:class:`colorlib.onnx.OnnxColorizer`)."""
    check_model(model)
    net = inference_model(model)
    L = lightness(image, _device(net))
    return net.encode_global(network_input(net, L) if isinstance(net, Colorizer) else L)


@torch.inference_mode()
def colorize_batch(model: Colorizer, rgb: torch.Tensor, saturation: float | None = 1.0) -> torch.Tensor:
    """Colorize the grayscale versions of float RGB ``(N, 3, H, W)`` in [0, 1]; returns
    float RGB in [0, 1] with each input's own L* on every pixel (out-of-gamut colours reduced
    in chroma at constant L*, as in :func:`colorize`; a model of another colour space keeps
    each input's Y, section 4.8). ``saturation`` as in :func:`colorize`.
    Raises ``ValueError`` for NaN or infinite input and a bad ``saturation``."""
    saturation = resolve_saturation(model, saturation)
    if not bool(torch.isfinite(rgb).all()):
        raise ValueError("rgb has NaN or infinite values; colorize_batch takes RGB in [0, 1]")
    L = rgb_to_L(rgb)
    with eval_mode(model):
        pred = predict_ab(model, L)
    space = SPACES[model.cfg.color_space]
    return space.to_rgb(space.luminance(rgb, L), pred, saturation)


@torch.inference_mode()
def classify(model: Colorizer, image: ImageLike, top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` most likely scene classes of ``image`` from its L* alone (the classification
    head of paper section 3.3, on the global branch's rescaled copy of the image), best first,
    as ``(class name, probability in [0, 1])``. Batch norm is folded (section 3.4) and the
    network runs in eval mode. Names come from ``model.meta["classes"]``, else ``"0"``, ``"1"``, ...
    ``top`` larger than the number of classes gives every class. ``model``: as in :func:`colorize`.

    Raises ``ValueError`` for a model without a classifier (the baseline, no global features),
    for a ``top`` that is not a whole number >= 1, and for an image :func:`colorlib.imageio.rgb_and_alpha` refuses.
    """
    check_model(model)
    if model.cfg.variant != "full":
        raise ValueError("this is a baseline model: it has no classifier (no global features); "
                         "use miniplaces-full or a sweep-alpha-* model")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be a whole number of at least 1, got {top!r}")
    classes = getattr(model, "meta", {}).get("classes") or [str(i) for i in range(model.cfg.num_classes)]
    net = inference_model(model)
    L = lightness(image, _device(net))
    if isinstance(net, Colorizer):
        with eval_mode(net):
            probs = net.global_branch(network_input(net, L))[1].float().softmax(1)[0]
    else:
        probs = net.global_branch(L)[1][0]
    best = probs.topk(min(top, len(classes)))
    return [(classes[i], float(p)) for p, i in zip(best.values.tolist(), best.indices.tolist())]

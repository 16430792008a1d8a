"""Widgets that work without a kernel: images encoded into the page, and controls linked in the
browser (``jslink``), so the static HTML of the book responds as a live notebook does."""

from __future__ import annotations

import io
from collections.abc import Sequence

import ipywidgets as W
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

from .images import ImageData, to_pil


def encode(img: ImageData, fmt: str = "jpeg", quality: int = 88) -> bytes:
    """An image (anything :func:`~colorlib.book.images.to_pil` takes) as JPEG bytes (RGB,
    ``quality`` 1-95), or in another PIL format named by ``fmt`` (``"png"``), for an
    ``ipywidgets.Image``."""
    buf = io.BytesIO()
    im = to_pil(img)
    if fmt == "jpeg":
        im.convert("RGB").save(buf, "JPEG", quality=quality)
    else:
        im.save(buf, fmt.upper())
    return buf.getvalue()


def image_widget(img: ImageData, width: int | None = None, fmt: str = "jpeg") -> W.Image:
    """An ``ipywidgets.Image`` showing ``img`` (:func:`encode`), ``width`` pixels wide (default:
    the image's own width)."""
    im = to_pil(img)
    return W.Image(value=encode(im, fmt), format=fmt, width=width or im.width)


def figure_widget(fig: Figure, width: int | None = None) -> W.Image:
    """A matplotlib figure as a PNG ``ipywidgets.Image`` (``width``: default the PNG's own);
    closes the figure so the page does not show it a second time."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    png = buf.getvalue()
    return W.Image(value=png, format="png", width=width or Image.open(io.BytesIO(png)).width)


def linked_stack(control: W.Widget, children: Sequence[W.Widget], attr: str = "index") -> W.Stack:
    """An ``ipywidgets.Stack`` showing ``children[control.<attr>]``.

    The link is a ``jslink``, made in the browser: it works in the static HTML of the book,
    where no kernel runs, as well as in a live notebook.
    """
    stack = W.Stack(list(children), selected_index=int(getattr(control, attr) or 0))
    W.jslink((control, attr), (stack, "selected_index"))
    return stack


def caption(text: str) -> W.HTML:
    """A small HTML caption widget; ``text`` is HTML (escape what a reader typed)."""
    return W.HTML(f"<div style='font-size: 0.85em; line-height: 1.3'>{text}</div>")

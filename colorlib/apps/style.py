"""Style transfer through the global features as a Voila app (:mod:`colorlib.apps`; the paper's
section 4.5 and Figure 7, chapter 8 of the book): pick photo A, whose local features are
kept, and photo B, which lends its global features, from a gallery, and move ``t``; the page
shows A colorized with ``(1 - t) g_A + t g_B`` (:func:`colorlib.infer.mix_global`), computed by
the kernel each time a control moves.

The gallery is the chapter's: MiniPlaces validation scenes whose typical colours differ when the
data folder is there, else the photos shipped in the installed packages.
"""

from __future__ import annotations

import html

from PIL import Image

from ..infer import colorize, global_features_of
from ..model import Colorizer, fold_batchnorm, mix_global
from . import INSTALL_APPS

try:
    import ipywidgets as W

    from .. import book
except ImportError as e:  # optional packages: the apps extra brings them
    raise ImportError(f"colorlib.apps.style needs ipywidgets and matplotlib: {INSTALL_APPS}") from e

#: The chapter's gallery: scenes whose typical colours differ (found in MiniPlaces val).
WANTED = ("golf_course", "desert/sand", "coast", "ski_slope", "volcano", "bamboo_forest")
#: Side of the images shown, pixels.
SIZE = 256


def gallery(env: book.BookEnv, n: int = 6) -> dict[str, Image.Image]:
    """``n`` photos by name: the first validation photo of each scene of :data:`WANTED`, then
    others (as chapter 8 picks them); without the data folder, the package photos."""
    photos = book.validation_photos(env, n=400)
    first: dict[str, int] = {}
    for i in range(len(photos)):
        first.setdefault(photos.label(i), i)
    index = [first[c] for c in WANTED if c in first]
    index += [i for i in range(len(photos)) if i not in index][: n - len(index)]
    return {photos.label(i): photos.image(i) for i in index}


class StylePage:
    """Two dropdowns over a gallery of thumbnails, a slider for ``t``, and the colorization."""

    def __init__(self, model: Colorizer, photos: dict[str, Image.Image]) -> None:
        self.model, self.photos = model, photos
        self.g = {name: global_features_of(model, im) for name, im in photos.items()}
        names = list(photos)
        wide = {"description_width": "initial"}
        self.local_pick = W.Dropdown(options=names, index=0, description="colorize A:", style=wide)
        self.global_pick = W.Dropdown(options=names, index=min(1, len(names) - 1), description="global from B:",
                                      style=wide)
        self.t = W.FloatSlider(value=0.5, min=-0.5, max=1.5, step=0.05, description="t",
                               continuous_update=False, readout_format=".2f")
        self.result = W.Image(format="jpeg", width=SIZE, height=SIZE)
        self.caption = W.HTML()
        for control in (self.local_pick, self.global_pick, self.t):
            control.observe(lambda _: self.update(), names="value")
        thumbs = [W.VBox([book.image_widget(book.fit(im, 96)), W.HTML(f"<small>{html.escape(n)}</small>")])
                  for n, im in photos.items()]
        self.widget = W.VBox([
            W.HTML("<h3>Style transfer through global features</h3><p>Photo A keeps its local "
                   "features; photo B lends its global features (both are seen in gray only). "
                   "t = 0 is A's own colorization, t = 1 takes all of B's global features; "
                   "beyond 0 and 1 the mix is extrapolated.</p>"),
            W.HBox(thumbs), W.HBox([self.local_pick, self.global_pick]), self.t, self.caption, self.result])
        self.update()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def update(self) -> None:
        """Colorize A with the mix of the global features the controls say."""
        a, b, t = self.local_pick.value, self.global_pick.value, self.t.value
        out = colorize(self.model, self.photos[a], global_features=mix_global(self.g[a], self.g[b], t))
        self.result.value = book.encode(out.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
        self.caption.value = (f"<b>{html.escape(a)}</b> colorized with (1 - t) g<sub>A</sub> + t g<sub>B</sub>, "
                              f"B = <b>{html.escape(b)}</b>, t = {t:.2f}")


def style_page() -> StylePage:
    """The app as the notebook shows it: the shipped full model (batch norm folded once) and the
    chapter's gallery."""
    env = book.setup(seed=0)
    return StylePage(fold_batchnorm(book.model("miniplaces-full", env)), gallery(env))

"""A Sphinx extension for the book's build (listed in ``_config.yml``): the paper's equations
keep the paper's numbers, and the pages log no error in the browser's console (an inline script
is written once, and the widgets' MathJax 2 call works with the MathJax 3 the book loads).

An equation labelled with a key of :data:`PAPER_EQUATIONS` (``:label: eq-fusion``) shows the
paper's number, and ``{eq}`eq-fusion``` anywhere in the book becomes the link "Eq. 5" (with
``math_numfig: false`` and ``math_eqref_format: "Eq. {number}"`` in ``_config.yml``).

Only the book's build imports this module (``sphinx: extra_extensions`` in ``_config.yml``).
"""

from __future__ import annotations

from typing import Any

from docutils import nodes

#: Label of an equation in the book -> its number in the paper.
PAPER_EQUATIONS = {"eq-fusion": 5, "eq-joint-loss": 6}


def number_paper_equations(app: Any, doctree: nodes.document) -> None:
    """``doctree-read`` handler: give each equation labelled in :data:`PAPER_EQUATIONS` the
    paper's number, on the page and in the math domain that resolves ``{eq}`` references."""
    objects = app.env.get_domain("math").data["objects"]
    for node in doctree.findall(nodes.math_block):
        number = PAPER_EQUATIONS.get(node.get("label"))
        if number is not None:
            node["number"] = number
            objects[node["label"]] = (app.env.docname, number)


#: ipywidgets' HTML manager (``@jupyter-widgets/html-manager``, which renders the widgets of a
#: static page) typesets widget text with MathJax 2's ``MathJax.Hub.Queue(["Typeset", MathJax.Hub,
#: element])`` whenever ``window.MathJax`` exists (ipywidgets' ``typeset`` in
#: ``controls/src/utils.ts``; jupyter-widgets/ipywidgets#3829, still open). The book loads
#: MathJax 3, which has no ``Hub``, so every widget page logged "Cannot read properties of
#: undefined (reading 'Queue')". This script, run before any other, gives each object the page
#: assigns to ``window.MathJax`` (the configuration first, then MathJax 3 itself) a
#: non-enumerable ``Hub`` whose ``Queue`` typesets the element with MathJax 3's
#: ``typesetPromise`` once MathJax has started.
MATHJAX2_HUB_JS = """(function () {
  "use strict";
  var hub = {
    Queue: function (job) {
      var element = Array.isArray(job) ? job[2] : null;
      function typeset() {
        var mj = window.MathJax;
        if (!element || !mj || typeof mj.typesetPromise !== "function") return;
        var started = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
        started.then(function () { return mj.typesetPromise([element]); });
      }
      if (document.readyState === "complete") typeset();
      else window.addEventListener("load", typeset, {once: true});
    }
  };
  function withHub(value) {
    if (value && typeof value === "object" && !("Hub" in value)) {
      Object.defineProperty(value, "Hub", {value: hub, configurable: true});
    }
    return value;
  }
  var current = withHub(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (value) { current = withHub(value); }
  });
})();"""


def inline_scripts_once(app: Any) -> None:
    """Make ``app.add_js_file(None, body=...)`` write its inline script once per page.

    Sphinx 7.4 keeps such a script in its registry under the file name ``''`` and, when it is
    added after the HTML builder started, in the builder under ``None``; before writing, the
    builder adds the registry's scripts again and, ``'' != None``, keeps both. Every page then
    declared sphinx-thebe's ``const THEBE_JS_URL`` twice, a SyntaxError in the console. This is
    the fix Sphinx made upstream (sphinx-doc/sphinx#13402: pass ``''`` for ``None``), applied to
    this build's ``app`` for the scripts extensions add after this one is set up.
    """
    add_js_file = app.add_js_file

    def add(filename: str | None, *args: Any, **kwargs: Any) -> None:
        add_js_file("" if filename is None else filename, *args, **kwargs)

    app.add_js_file = add


def setup(app: Any) -> dict:
    """Register :func:`number_paper_equations`, :func:`inline_scripts_once` and
    :data:`MATHJAX2_HUB_JS` (first on every page)."""
    app.connect("doctree-read", number_paper_equations)
    inline_scripts_once(app)
    app.add_js_file(None, body=MATHJAX2_HUB_JS, priority=1)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

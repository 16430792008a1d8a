"""A Sphinx extension for the book's build (listed in ``_config.yml``): the paper's equations
keep the paper's numbers.

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


def setup(app: Any) -> dict:
    """Register :func:`number_paper_equations`."""
    app.connect("doctree-read", number_paper_equations)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

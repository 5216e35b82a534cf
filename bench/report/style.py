"""How a method looks in every figure: one colour and one line style per method, and its one name
(:func:`bench.report.paper.method_name`), the same in every panel, figure and report, so that a curve,
a point and a table row of one method are matched by colour and name alone.

An augmentation and its ISDA combination share a colour, solid without ISDA and dashed with it; a
method with dropout takes its base method's colour, dash-dotted. A method this module does not list
(a plugin's loss) gets a colour of its own from its name, stable between reports. Variants of one
method in one panel (several λ0, say) keep its colour and line style and add a marker each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bench.report import paper

# A panel shows at most this many series; figures split a panel with more (by method, in
# paper.METHOD_ORDER, which groups them into losses, augmentations and ISDA's combinations).
MAX_SERIES = 6

_COLOURS: dict[str, str] = {
    "ce": "#222222",
    "isda": "#d62728",
    "focal": "#ff7f0e",
    "large_margin": "#8c564b",
    "disturblabel": "#e377c2",
    "center": "#bcbd22",
    "lq": "#17becf",
    "dropout": "#7f7f7f",
    "explicit": "#393b79",
    "cutout": "#1f77b4",
    "autoaugment": "#2ca02c",
    "randaugment": "#9467bd",
}
# For methods not listed above: colours none of them uses.
_SPARE = ("#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1",
          "#636363", "#ad494a")
_MARKERS = ("", "o", "s", "^", "v", "D", "P", "X")
PAPER_COLOUR = "#000000"  # the paper's numbers: open black markers


@dataclass(frozen=True)
class Look:
    name: str
    colour: str
    linestyle: str
    marker: str = ""


def _colour(method: str) -> str:
    if method in _COLOURS:
        return _COLOURS[method]
    digest = hashlib.sha256(method.encode()).digest()
    return _SPARE[digest[0] % len(_SPARE)]


def look(method: object, variant: int = 0) -> Look:
    """The look of ``method`` (a run's method name); ``variant``: its index among the variants of the
    method drawn in one panel (0 for the first or only one)."""
    method = str(method)
    parts = method.split("+")
    base, linestyle = method, "-"
    if len(parts) == 2 and "isda" in parts and method not in _COLOURS:
        other = parts[1] if parts[0] == "isda" else parts[0]
        base, linestyle = (parts[0] if other == "dropout" else other), ("-." if other == "dropout" else "--")
    elif len(parts) == 2 and parts[1] == "dropout":
        base, linestyle = parts[0], "-."
    marker = _MARKERS[variant % len(_MARKERS)]
    return Look(paper.method_name(method), _colour(base), linestyle, marker)

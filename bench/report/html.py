"""The HTML report: one self-contained page (inline CSS, figures embedded as base64 PNG), so it can
be mailed, attached to an issue or opened from a cluster's scratch disk without its folder."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from bench.report.figures import Figure
from bench.report.model import Table
from bench.report.render import to_html

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em auto; max-width: 1400px;
       padding: 0 1em; color: #222; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table.results { border-collapse: collapse; margin: 0.8em 0; font-size: 0.8em; }
table.results caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
table.results th, table.results td { padding: 0.25em 0.4em; border-bottom: 1px solid #e3e3e3; }
table.results th { font-weight: 600; }
table.results thead th { border-bottom: 2px solid #444; background: #f4f4f4; }
table.results td .nb { white-space: nowrap; }
table.results td.num { text-align: right; font-variant-numeric: tabular-nums; }
.notes p, .howto, .summary { font-size: 0.85em; color: #444; margin: 0.2em 0; }
.summary.warn { color: #8a4b00; }
sup.dagger { color: #b00; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #444; }
.scroll { overflow-x: auto; }
"""


def _img(fig: Figure) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    alt = html.escape(fig.title)
    return (
        f'<figure id="figure-{html.escape(fig.key)}"><img alt="{alt}" src="data:image/png;base64,{data}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


def render_page(
    title: str,
    howto: str,
    summary: Sequence[tuple[str, bool]],
    tables: Sequence[Table],
    figures: Sequence[Figure],
) -> str:
    """``summary`` holds (line, is_warning) pairs shown at the top."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="howto">{html.escape(howto)}</p>',
    ]
    parts += [
        f'<p class="summary{" warn" if warn else ""}">{html.escape(line)}</p>' for line, warn in summary
    ]
    parts.append("<h2>Tables</h2>")
    parts += [f'<div class="scroll">{to_html(t)}</div>' for t in tables]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [_img(f) for f in figures]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"

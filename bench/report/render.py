"""Markdown and HTML for a :class:`~bench.report.model.Table` (LaTeX: :mod:`bench.report.latex`).

Every format renders the same cells, so they cannot disagree about a number; each translates
the cells' plain Unicode (``±``, ``†``, ``Δ``, ``λ0``) in its own way.
"""

from __future__ import annotations

import html
import re

from bench.report.model import DAGGER, Cell, Table
from bench.results import stats


def _md_text(cell: Cell) -> str:
    text = cell.text.replace("|", "\\|")
    if cell.bold and text:
        text = f"**{text}**"
    return text + (DAGGER if cell.dagger else "")


def to_markdown(table: Table) -> str:
    header = list(table.header)
    if table.groups:
        # Markdown has no spanning headers: prefix each column with its group.
        labels = [g for g, span in table.groups for _ in range(span)]
        header = [f"{g}: {h}" if g else h for g, h in zip(labels, header)]
    align = [":---"] * table.label_cols + ["---:"] * (len(header) - table.label_cols)
    lines = [
        f"### {table.title}",
        "",
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(_md_text(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines += [""] + [f"*{n}*  " for n in table.notes]
    return "\n".join(lines) + "\n"


def html_text(text: str) -> str:
    """Plain text as HTML; `code` (Markdown's backticks, as notes name a config key) as <code>."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick is text
        return html.escape(text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts))


def _html_cell(cell: Cell, tag: str = "td", cls: str = "") -> str:
    # A cell wraps only before a parenthesis: "9.61 ± 0.50" over "(n=5)", "Shake-Shake" over
    # "(26 2x112d)", never inside either (nor at a hyphen).
    pieces = [html_text(p) for p in re.split(r" (?=\()", cell.text)]
    text = " ".join(f'<span class="nb">{p}</span>' for p in pieces) if cell.text else ""
    if cell.bold and text:
        text = f"<strong>{text}</strong>"
    if cell.dagger:
        text += f'<sup class="dagger" title="n &lt; {stats.SMALL_N}">{DAGGER}</sup>'
    attr = f' class="{cls}"' if cls else ""
    return f"<{tag}{attr}>{text}</{tag}>"


def to_html(table: Table) -> str:
    out = [
        f'<table class="results" id="table-{html.escape(table.key)}">',
        f"<caption>{html.escape(table.title)}</caption>",
        "<thead>",
    ]
    if table.groups:
        out.append(
            "<tr>"
            + "".join(f'<th colspan="{span}">{html.escape(label)}</th>' for label, span in table.groups)
            + "</tr>"
        )
    # A header may also break after "+" (AutoAugment+ISDA): it need not be wider than its numbers.
    out.append("<tr>" + "".join(f"<th>{html.escape(h).replace('+', '+<wbr>')}</th>" for h in table.header) + "</tr>")
    out += ["</thead>", "<tbody>"]
    for row in table.rows:
        out.append(
            "<tr>"
            + "".join(
                _html_cell(c, cls="label" if i < table.label_cols else "num") for i, c in enumerate(row)
            )
            + "</tr>"
        )
    out += ["</tbody>", "</table>"]
    if table.notes:
        out.append(
            '<div class="notes">' + "".join(f"<p>{html_text(n)}</p>" for n in table.notes) + "</div>"
        )
    return "\n".join(out) + "\n"

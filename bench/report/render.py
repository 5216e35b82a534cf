"""Markdown, LaTeX and HTML for a :class:`~bench.report.model.Table`.

Every format renders the same cells, so the three cannot disagree about a number; each translates
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


_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_TEX_UNICODE = {
    "±": r"$\pm$",
    "−": r"$-$",
    "Δ": r"$\Delta$",
    "λ": r"$\lambda$",
    "γ": r"$\gamma$",
    DAGGER: r"$^\dagger$",
    "–": "--",
    "×": r"$\times$",
    "<": r"$<$",
    ">": r"$>$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "∞": r"$\infty$",
    "→": r"$\to$",
}


def tex_escape(text: str) -> str:
    out = "".join(_TEX_SPECIAL.get(ch, _TEX_UNICODE.get(ch, ch)) for ch in text)
    # A minus sign before a number, not a hyphen.
    return re.sub(r"(?<![\w$])-(?=\d)", r"$-$", out)


def _tex_cell(cell: Cell) -> str:
    text = tex_escape(cell.text)
    if cell.bold and text:
        text = rf"\textbf{{{text}}}"
    return text + (r"$^\dagger$" if cell.dagger else "")


def to_latex(table: Table) -> str:
    """A booktabs table (``\\toprule``/``\\midrule``/``\\bottomrule``), shrunk to the text width if wider."""
    ncol = len(table.header)
    spec = "l" * table.label_cols + "r" * (ncol - table.label_cols)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        rf"\caption{{{tex_escape(table.title)}}}",
        rf"\label{{tab:{table.key}}}",
        r"\resizebox{\ifdim\width>\textwidth\textwidth\else\width\fi}{!}{%",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
    ]
    if table.groups:
        parts, rules, col = [], [], 1
        for label, span in table.groups:
            parts.append(
                rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(label)}}}" if label else " & ".join([""] * span)
            )
            if label:
                rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines += [" & ".join(parts) + r" \\", " ".join(rules)]
    lines.append(" & ".join(tex_escape(h) for h in table.header) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(_tex_cell(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}}"]
    if table.notes:
        lines.append(r"\par\smallskip\footnotesize " + r" \\ ".join(tex_escape(n) for n in table.notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _html_cell(cell: Cell, tag: str = "td", cls: str = "") -> str:
    # A cell may wrap, but never inside "mean ± std".
    text = html.escape(cell.text).replace(" ± ", "\u00a0±\u00a0")
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
    out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header) + "</tr>")
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
            '<div class="notes">' + "".join(f"<p>{html.escape(n)}</p>" for n in table.notes) + "</div>"
        )
    return "\n".join(out) + "\n"

"""The LaTeX report: each :class:`~bench.report.model.Table` as booktabs tables that fit the page at a
readable size, and the document around them.

A table is never scaled down. It is set in 8 pt type where it fits the text width, else in 7 pt;
where even that is too wide it is split into parts that each repeat the row labels and keep a
spanning header's columns (a dataset) and a "paper" column with the column it follows. The parts
share one table number ("continued"); the notes follow the last part. A table of more rows than a
page holds is set in parts of rows too. Widths are estimated from Computer Modern's character widths,
generously, so that an estimate that fits does fit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report.model import DAGGER, Cell, Table

# Landscape US letter with 1.5 cm margins, as the preamble sets it.
PREAMBLE = (
    r"\documentclass[10pt]{article}",
    r"\usepackage[utf8]{inputenc}",
    r"\usepackage[letterpaper,landscape,margin=1.5cm]{geometry}",
    r"\usepackage{booktabs}",
    r"\usepackage{graphicx}",
)
TEXT_WIDTH_PT = 11 * 72.27 - 2 * 1.5 / 2.54 * 72.27
TABCOLSEP_PT = 4.0
# LaTeX's size commands in a 10 pt article, largest first: the first whose table fits is taken.
SIZES: tuple[tuple[str, float], ...] = (("footnotesize", 8.0), ("scriptsize", 7.0))
SMALLEST_PT = SIZES[-1][1]
# Rows of one part: with its caption, a header of up to three lines and the notes under the last part,
# one landscape page holds them in 8 pt (about 10 pt a row out of 525 pt of text height).
ROWS_PER_PART = 30

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
    "|": r"$|$",
    '"': "''",
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
    "·": r"$\cdot$",
}


def _escape_plain(text: str) -> str:
    out = "".join(_TEX_SPECIAL.get(ch, _TEX_UNICODE.get(ch, ch)) for ch in text)
    # A minus sign before a number, not a hyphen.
    return re.sub(r"(?<![\w$])-(?=\d)", r"$-$", out)


def tex_escape(text: str) -> str:
    """Plain text as LaTeX; `code` (Markdown's backticks, as notes name a config key) in typewriter type."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick is text
        return _escape_plain(text)
    return "".join(rf"\texttt{{{_escape_plain(p)}}}" if i % 2 else _escape_plain(p) for i, p in enumerate(parts))


# --------------------------------------------------------------------------- widths

# Widths in em of Computer Modern Roman (cmr10; the math symbols as set in text), rounded up.
_EM = {" ": 0.34, ".": 0.28, ",": 0.28, ":": 0.28, ";": 0.28, "(": 0.39, ")": 0.39, "=": 0.78, "+": 0.78,
       "-": 0.34, "±": 0.78, "−": 0.78, "Δ": 0.84, "–": 0.5, "%": 0.84, "/": 0.5, "<": 0.78, ">": 0.78,
       "×": 0.78, "·": 0.28, "λ": 0.59, "γ": 0.52, DAGGER: 0.45, "→": 1.0, "∞": 1.0, "≥": 0.78, "≤": 0.78,
       "i": 0.28, "l": 0.28, "j": 0.31, "t": 0.39, "f": 0.31, "r": 0.40, "m": 0.84, "w": 0.73, "M": 0.92,
       "W": 1.03, "I": 0.37, "_": 0.5, "'": 0.28}
_BOLD = 1.15  # bold extended is about 10 % wider
# Small sizes use Computer Modern's own designs for them (cmr7, cmr8), wider for their size than cmr10.
_OPTICAL = {7.0: 1.12, 8.0: 1.06}


def text_width(text: str, size_pt: float, bold: bool = False) -> float:
    """An upper estimate of ``text``'s width in pt, set in Computer Modern at ``size_pt`` (checked
    against pdflatex's own widths: at most 16 % over, never under)."""
    em = sum(_EM.get(ch, 0.0) or (0.5 if ch.isdigit() else 0.75 if ch.isupper() else 0.55) for ch in text)
    return em * size_pt * _OPTICAL.get(size_pt, 1.0) * (_BOLD if bold else 1.0) * 1.06


def _header_lines(text: str, width: float, size_pt: float) -> list[str]:
    """``text`` broken at spaces into as few lines as keep it within ``width`` (at most three)."""
    words = text.split(" ")
    for n in range(1, min(3, len(words)) + 1):
        lines, line = [], ""
        target = text_width(text, size_pt) / n
        for word in words:
            if line and text_width(f"{line} {word}", size_pt) > max(width, target):
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        if len(lines) <= n and all(text_width(ln, size_pt) <= width for ln in lines):
            return lines
    return lines


def _column_widths(table: Table, size_pt: float) -> list[float]:
    """Each column's width in pt at ``size_pt``: its widest cell, the header allowed two or three lines."""
    out = []
    for i, head in enumerate(table.header):
        cells = [row[i] for row in table.rows if i < len(row)]
        body = max((text_width(c.text + (DAGGER if c.dagger else ""), size_pt, c.bold) for c in cells), default=0.0)
        words = max((text_width(w, size_pt) for w in head.split(" ")), default=0.0)
        heads = _header_lines(head, max(body, words), size_pt)
        out.append(max([body] + [text_width(h, size_pt) for h in heads]) + 2 * TABCOLSEP_PT)
    return out


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class Part:
    columns: tuple[int, ...]  # indices of the table's columns after the labels
    size: str


def _units(table: Table) -> list[list[int]]:
    """Runs of columns a part keeps together: a spanning header's, and a paper column with the one before."""
    first = table.label_cols
    if table.blocks:
        starts = [first + sum(table.blocks[:i]) for i in range(len(table.blocks))]
        return [list(range(a, a + n)) for a, n in zip(starts, table.blocks)]
    if table.groups:
        out, col = [], 0
        for _, span in table.groups:
            cols = [c for c in range(col, col + span) if c >= first]
            if cols:
                out.append(cols)
            col += span
        return out
    return _paired(table, range(first, len(table.header)))


def _paired(table: Table, cols: Sequence[int]) -> list[list[int]]:
    """``cols`` one by one, but a paper column with the column before it."""
    out: list[list[int]] = []
    for c in cols:
        if out and table.header[c].startswith("paper"):
            out[-1].append(c)
        else:
            out.append([c])
    return out


def layout(table: Table) -> list[Part]:
    """The parts ``table`` is set in: one, in the largest size that fits, else as few as fit in 7 pt."""
    for size, pt in SIZES:
        if sum(_column_widths(table, pt)) <= TEXT_WIDTH_PT:
            return [Part(tuple(range(table.label_cols, len(table.header))), size)]
    size, pt = SIZES[-1]
    widths = _column_widths(table, pt)
    room = TEXT_WIDTH_PT - sum(widths[: table.label_cols])
    units: list[list[int]] = []
    for unit in _units(table):  # a unit too wide for a part is split, its paper columns kept with ours
        units += [unit] if sum(widths[c] for c in unit) <= room else _paired(table, unit)
    # As few parts as fit, then as even as they can be: the narrowest width that still needs no more.
    fewest = len(_pack(units, widths, room))
    width = max(max(sum(widths[c] for c in u) for u in units), sum(widths[c] for u in units for c in u) / fewest)
    while len(_pack(units, widths, width)) > fewest:
        width += 4.0
    return [Part(tuple(p), size) for p in _pack(units, widths, min(width, room))]


def _pack(units: list[list[int]], widths: list[float], room: float) -> list[list[int]]:
    """``units`` in order, into parts no wider than ``room`` (a unit wider than that gets one to itself)."""
    parts: list[list[int]] = [[]]
    for unit in units:
        if parts[-1] and sum(widths[c] for c in parts[-1] + unit) > room:
            parts.append([])
        parts[-1] += unit
    return parts


# --------------------------------------------------------------------------- rendering


def _tex_cell(cell: Cell) -> str:
    text = tex_escape(cell.text)
    if cell.bold and text:
        text = rf"\textbf{{{text}}}"
    return text + (r"$^\dagger$" if cell.dagger else "")


def _tex_header(text: str, width: float, size_pt: float) -> str:
    lines = [tex_escape(ln) for ln in _header_lines(text, width, size_pt)]
    return lines[0] if len(lines) == 1 else r"\begin{tabular}[b]{@{}c@{}}" + r"\\".join(lines) + r"\end{tabular}"


def _groups_of(table: Table, cols: Sequence[int]) -> list[tuple[str, int]]:
    """The spanning header over ``cols`` (label columns first), merged where a group continues."""
    assert table.groups is not None
    owner = [label for label, span in table.groups for _ in range(span)]
    out: list[tuple[str, int]] = []
    for c in list(range(table.label_cols)) + list(cols):
        if out and out[-1][0] == owner[c] and c >= table.label_cols:
            out[-1] = (owner[c], out[-1][1] + 1)
        else:
            out.append((owner[c] if c >= table.label_cols else "", 1))
    merged: list[tuple[str, int]] = []
    for label, span in out:  # the label columns: one blank span
        if merged and not label and not merged[-1][0]:
            merged[-1] = ("", merged[-1][1] + span)
        else:
            merged.append((label, span))
    return merged


def _part_latex(table: Table, part: Part, rows: range, index: int, count: int) -> list[str]:
    pt = dict(SIZES)[part.size]
    cols = list(range(table.label_cols)) + list(part.columns)
    widths = _column_widths(table, pt)
    spec = "l" * table.label_cols + "r" * len(part.columns)
    title = tex_escape(table.title) + (f" (part {index} of {count})" if count > 1 else "")
    lines = [r"\begin{table}[!htbp]", r"\centering"]
    if index > 1:
        lines.append(r"\addtocounter{table}{-1}")  # the same number as part 1
    lines += [rf"\caption{{{title}}}"]
    if index == 1:
        lines.append(rf"\label{{tab:{table.key}}}")
    lines += [rf"\{part.size}", rf"\setlength{{\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}",
              rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if table.groups:
        parts, rules, col = [], [], 1
        for label, span in _groups_of(table, part.columns):
            parts.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(label)}}}" if label else " & ".join([""] * span))
            if label:
                rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines += [" & ".join(parts) + r" \\", " ".join(rules)]
    lines.append(" & ".join(_tex_header(table.header[c], widths[c] - 2 * TABCOLSEP_PT, pt) for c in cols) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(_tex_cell(table.rows[r][c]) for c in cols) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes and index == count:
        lines.append(r"\par\smallskip{\footnotesize\raggedright " + r"\\ ".join(tex_escape(n) for n in table.notes)
                     + r"\par}")
    lines.append(r"\end{table}")
    return lines


def to_latex(table: Table) -> str:
    """``table`` as one or more booktabs tables (see the module's docstring), never scaled; a table of more
    rows than a page holds continues in parts of ``ROWS_PER_PART`` rows (a float longer than its page
    would run off it)."""
    n = len(table.rows)
    chunks = [range(i, min(i + ROWS_PER_PART, n)) for i in range(0, n, ROWS_PER_PART)] or [range(0)]
    parts = [(part, rows) for part in layout(table) for rows in chunks]
    return "\n".join(line for i, (part, rows) in enumerate(parts, 1)
                     for line in _part_latex(table, part, rows, i, len(parts))) + "\n"


def document(title: str, howto: str, summary: Sequence[str], tables: Sequence[Table],
             figures: Sequence[tuple[str, Path]]) -> str:
    """The whole report.tex: the guide and run accounting, every table, then (from a new page, so that
    no table floats behind them) every figure; ``figures``: (title, path of its PDF relative to the .tex)."""
    parts = [*PREAMBLE, rf"\title{{{tex_escape(title)}}}", r"\date{}", r"\begin{document}", r"\maketitle",
             r"\noindent " + tex_escape(howto), ""]
    parts += [r"\noindent " + tex_escape(line) + r"\par" for line in summary]
    parts += ["", r"\section*{Tables}"] + [to_latex(t) for t in tables]
    if figures:
        parts += [r"\clearpage", r"\section*{Figures}"]
    for fig_title, pdf in figures:
        parts += [
            r"\begin{figure}[!htbp]",
            r"\centering",
            rf"\includegraphics[width=\textwidth,height=0.8\textheight,keepaspectratio]{{{pdf.as_posix()}}}",
            rf"\caption{{{tex_escape(fig_title)}}}",
            r"\end{figure}",
        ]
    parts.append(r"\end{document}")
    return "\n".join(parts) + "\n"

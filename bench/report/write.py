"""Turn a sweep's runs into a report: tables (Markdown, LaTeX, HTML), statistics and figures.

The report never trains and never reads run directories itself; it takes the DataFrames that
:mod:`bench.results.collect` builds. What ``isda-bench report SWEEP [--format md,tex,html] [--paper]`` does::

    from pathlib import Path
    from bench.report import write as report
    from bench.results import collect as results

    sweep_dir = Path("results") / "smoke"
    runs = results.collect(sweep_dir, planned=planned_configs)   # planned: the sweep plan, optional
    results.write_runs(runs, sweep_dir)                          # results/smoke/runs.{parquet,csv}
    curves = results.load_curves(sweep_dir, runs["run_id"])
    report.write_report(runs, curves, Path("reports") / "smoke", formats=("md", "tex", "html"), paper=True)

Output in ``out_dir``: ``report.md`` (always), ``report.tex`` and ``report.html`` on request, and
``figures/*.png|pdf``. Tables: :mod:`bench.report.tables` (cells: :mod:`bench.report.model`; rendered
by :mod:`bench.report.render`); figures: :mod:`bench.report.figures` and :mod:`bench.report.param_figures`;
the HTML page: :mod:`bench.report.html`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bench.common.errors import ConfigError
from bench.common.files import atomic_write_text
from bench.report.figures import Figure, curves_figure, gap_figure
from bench.report.html import render_page
from bench.report.method_code import mixed_code_lines
from bench.report.model import Table
from bench.report.param_figures import explicit_figure, lambda_figure
from bench.report.render import tex_escape, to_latex, to_markdown
from bench.report.tables import build_tables
from bench.results import stats
from bench.rundir.state import RunState

FORMATS: tuple[str, ...] = ("md", "tex", "html")
FIGURE_KEYS = ("curves", "lambda", "explicit", "gap")
FIGURES_DIR = "figures"

HOW_TO_READ = (
    "How to read: errors are test errors in percent (lower is better). A cell of ours is the mean over "
    "the last 10 epochs of a run's test error (the paper's convention), given as mean ± sample std "
    "(n − 1) over seeds, with n the number of completed runs; bold = lowest of ours in its row (in its "
    f"column where the rows are methods or settings); † = n < {stats.SMALL_N}, where std and intervals "
    "are not meaningful. Runs that are missing, running, diverged or failed are counted in their cell, "
    "never averaged. Each table says which precision its cells trained in (bf16 autocast, the GPU "
    "default, or fp32). Paper values are the published numbers; their source (table and version) is "
    "listed under each table; – where a number is not available here."
)


def parse_formats(formats: Iterable[str] | str) -> list[str]:
    """``("md", "html")`` or ``"md,html"`` → validated list; ``md`` is always produced."""
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        fmt = str(item).strip().lower()
        if fmt not in FORMATS:
            raise ConfigError("format", item, list(FORMATS))
        if fmt not in out:
            out.append(fmt)
    return out


def _default_title(runs: pd.DataFrame) -> str:
    sweeps = sorted({str(s) for s in runs.get("sweep", pd.Series(dtype=object)).dropna()})
    return f"ISDA benchmark: {', '.join(sweeps)}" if sweeps else "ISDA benchmark report"


def build_figures(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Every figure the sweep has data for, written into ``out_dir``."""
    out_dir = Path(out_dir)
    figs = [curves_figure(runs, curves, out_dir), lambda_figure(runs, out_dir), explicit_figure(runs, out_dir),
            gap_figure(runs, out_dir)]
    return [f for f in figs if f is not None]


def summary_lines(runs: pd.DataFrame, curves: pd.DataFrame | None = None) -> list[tuple[str, bool]]:
    """The run accounting at the top of every report: (line, is_warning)."""
    counts = runs["status"].astype(str).value_counts() if len(runs) else pd.Series(dtype=int)
    order = list(RunState) + sorted(s for s in counts.index if s not in list(RunState))
    parts = [f"{int(counts[s])} {s}" for s in order if s in counts.index]
    lines = [(f"Runs: {len(runs)} in total ({', '.join(parts) if parts else 'none'}).", False)]
    not_done = len(runs) - int(counts.get(RunState.COMPLETED, 0))
    if not_done:
        lines.append(
            (
                f"Partial sweep: {not_done} of {len(runs)} runs have no usable result yet; "
                "each cell counts its runs that have not completed, by state.",
                True,
            )
        )
    unreadable = list(runs.attrs.get("unreadable", []))
    if curves is not None:
        unreadable += [p for p in curves.attrs.get("unreadable", []) if p not in unreadable]
    if unreadable:
        lines.append((f"Unreadable files (their runs are left out): {', '.join(unreadable)}.", True))
    return lines + mixed_code_lines(runs)


def _markdown(
    title: str, summary: list[tuple[str, bool]], tables: list[Table], figures: list[Figure], out_dir: Path
) -> str:
    parts = [f"# {title}", "", HOW_TO_READ, ""]
    parts += [("**" + line + "**" if warn else line) + "  " for line, warn in summary]
    parts += ["", "## Tables", ""]
    for table in tables:
        parts += [to_markdown(table), ""]
    if figures:
        parts += ["## Figures", ""]
        for fig in figures:
            png, pdf = fig.png.relative_to(out_dir).as_posix(), fig.pdf.relative_to(out_dir).as_posix()
            parts += [f"![{fig.title}]({png})", "", f"{fig.title} ([PDF]({pdf}))", ""]
    return "\n".join(parts).rstrip() + "\n"


def _latex(
    title: str, summary: list[tuple[str, bool]], tables: list[Table], figures: list[Figure], out_dir: Path
) -> str:
    parts = [
        r"\documentclass[10pt]{article}",
        r"\usepackage[utf8]{inputenc}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage[margin=1.5cm,landscape]{geometry}",
        r"\usepackage{booktabs}",
        r"\usepackage{graphicx}",
        rf"\title{{{tex_escape(title)}}}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        r"\noindent " + tex_escape(HOW_TO_READ),
        "",
    ]
    parts += [r"\noindent " + tex_escape(line) + r"\par" for line, _ in summary]
    parts.append("")
    parts += [to_latex(t) for t in tables]
    for fig in figures:
        parts += [
            r"\begin{figure}[htbp]",
            r"\centering",
            rf"\includegraphics[width=\textwidth,height=0.8\textheight,keepaspectratio]{{{fig.pdf.relative_to(out_dir).as_posix()}}}",
            rf"\caption{{{tex_escape(fig.title)}}}",
            r"\end{figure}",
        ]
    parts.append(r"\end{document}")
    return "\n".join(parts) + "\n"


def write_report(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    out_dir: Path,
    formats: Iterable[str] = ("md", "html"),
    paper: bool = True,
    title: str = "",
) -> list[Path]:
    """Write ``report.md`` (always) and ``report.tex`` / ``report.html`` if asked, plus the figures;
    return every path written. ``paper`` adds the paper's numbers beside ours. An unknown format
    raises :class:`ConfigError` before anything is written."""
    wanted = parse_formats(formats)
    out_dir = Path(out_dir)
    title = title or _default_title(runs)
    tables = build_tables(runs, with_paper=paper)
    fig_dir = out_dir / FIGURES_DIR
    figures = build_figures(runs, curves, fig_dir)
    # A figure the sweep no longer supports must not linger from an earlier report.
    for key in set(FIGURE_KEYS) - {f.key for f in figures}:
        for ext in ("png", "pdf"):
            (fig_dir / f"{key}.{ext}").unlink(missing_ok=True)
    summary = summary_lines(runs, curves)

    written: list[Path] = [p for f in figures for p in (f.png, f.pdf)]
    written.append(
        atomic_write_text(out_dir / "report.md", _markdown(title, summary, tables, figures, out_dir))
    )
    if "tex" in wanted:
        written.append(
            atomic_write_text(out_dir / "report.tex", _latex(title, summary, tables, figures, out_dir))
        )
    if "html" in wanted:
        written.append(
            atomic_write_text(
                out_dir / "report.html", render_page(title, HOW_TO_READ, summary, tables, figures)
            )
        )
    return written

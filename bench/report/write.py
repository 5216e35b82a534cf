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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.common.errors import ConfigError
from bench.common.files import atomic_write_text
from bench.report import verdict
from bench.report.figures import Figure, curves_figure, gap_figure
from bench.report.html import render_page
from bench.report.latex import document
from bench.report.method_code import mixed_code_lines
from bench.report.model import BOLD_RULE, Table
from bench.report.param_figures import explicit_figure, lambda_figure
from bench.report.render import to_markdown
from bench.report.tables import build_tables
from bench.results import stats
from bench.results.folders import damage_line
from bench.rundir.state import RunState

FORMATS: tuple[str, ...] = ("md", "tex", "html")
FIGURE_KEYS = ("curves", "lambda", "explicit", "gap")
FIGURES_DIR = "figures"

HOW_TO_READ = (
    "How to read: errors are test errors in percent (lower is better). A cell of ours is the mean over "
    "the last 10 epochs of a run's test error (the paper's convention), given as mean ± sample std "
    "(n − 1) over seeds, with n the number of completed runs; every figure draws the same runs with the "
    f"same n. {BOLD_RULE[0].upper()}{BOLD_RULE[1:]}. † = n < {stats.SMALL_N}: no interval, test or "
    "probability of improvement is given. Intervals are Welch's t intervals, consistent with Welch's "
    "test. An outlier run is counted in its cell (\"1 outlier\") and named under its table with the rule. "
    "Runs that are missing, running, diverged or failed are counted in their cell, "
    "never averaged or drawn. Each table says which precision its cells trained in (bf16 autocast, the GPU "
    "default, or fp32). CE is plain cross-entropy (the paper's Basic)."
)
PAPER_HOW_TO_READ = (
    " Paper values are the published numbers; their source (table and version) is listed under each "
    "table; – where a number is not available here."
)


def how_to_read(paper: bool = True) -> str:
    """The reading guide at the top of a report; it speaks of the paper's numbers only where they are shown."""
    return HOW_TO_READ + (PAPER_HOW_TO_READ if paper else "")


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


DAMAGED_HEAD = ("Damaged run folders: each is counted once, in the state shown; nothing a damaged file holds is "
                "used (a run whose result.json is damaged has no result in any cell, one whose metrics.csv is "
                "damaged no curve):")


def summary_lines(runs: pd.DataFrame) -> list[tuple[str, bool]]:
    """The run accounting at the top of every report, and what ``isda-bench report`` prints:
    (line, is_warning). Each damaged run folder is named once, with what is wrong in it."""
    counts = runs["status"].astype(str).value_counts() if len(runs) else pd.Series(dtype=int)
    order = list(RunState) + sorted(s for s in counts.index if s not in list(RunState))
    parts = [f"{int(counts[s])} {s}" for s in order if s in counts.index]
    lines = [(f"Runs: {len(runs)} in total ({', '.join(parts) if parts else 'none'}).", False)]
    not_done = len(runs) - int(counts.get(RunState.COMPLETED, 0))
    if not_done and not_done == int(counts.get(RunState.PENDING, 0)) == len(runs):
        lines.append((f"No run has started yet: all {len(runs)} planned runs are pending.", True))
    elif not_done:
        lines.append(
            (
                f"Partial sweep: {not_done} of {len(runs)} runs have no usable result yet; "
                "each cell counts its runs that have not completed, by state.",
                True,
            )
        )
    damaged: dict[str, list[str]] = dict(runs.attrs.get("damaged", {}))
    state = dict(zip(runs["run_id"].astype(str), runs["status"].astype(str))) if len(runs) else {}
    if damaged:
        lines.append((DAMAGED_HEAD, True))
        lines += [(f"- {damage_line(r, state.get(r, '?'), what)}", True) for r, what in damaged.items()]
    return lines + mixed_code_lines(runs)


def _markdown(
    title: str, summary: list[tuple[str, bool]], tables: list[Table], figures: list[Figure], out_dir: Path, howto: str
) -> str:
    parts = [f"# {title}", "", howto, ""]
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


@dataclass(frozen=True)
class Contents:
    """What a report says, before it is written in any format."""

    title: str
    howto: str
    summary: list[tuple[str, bool]]  # (line, is_warning): the verdict and the run accounting
    tables: list[Table]


def contents(runs: pd.DataFrame, paper: bool = True, title: str = "") -> Contents:
    """The report's tables and the lines above them; ``paper`` adds the paper's numbers beside ours."""
    tables = build_tables(runs, with_paper=paper)
    # The reproduction verdict comes first: its line above the run accounting, its table above the others.
    judgements = verdict.judge(tables)
    verdict_table, verdict_line = verdict.table(judgements), verdict.line(judgements)
    summary = ([(verdict_line, False)] if verdict_line else []) + summary_lines(runs)
    return Contents(title or _default_title(runs), how_to_read(paper), summary,
                    ([verdict_table] if verdict_table else []) + tables)


def write_figures(runs: pd.DataFrame, curves: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Every figure the sweep has data for, in ``out_dir/figures``; one it no longer has is removed."""
    fig_dir = Path(out_dir) / FIGURES_DIR
    figures = build_figures(runs, curves, fig_dir)
    for key in set(FIGURE_KEYS) - {f.key for f in figures}:
        for ext in ("png", "pdf"):
            (fig_dir / f"{key}.{ext}").unlink(missing_ok=True)
    return figures


def write_documents(c: Contents, figures: list[Figure], out_dir: Path, formats: Iterable[str]) -> list[Path]:
    """``report.md`` (always) and ``report.tex`` / ``report.html`` if asked; the paths written."""
    wanted = parse_formats(formats)
    written = [atomic_write_text(out_dir / "report.md", _markdown(c.title, c.summary, c.tables, figures, out_dir,
                                                                   c.howto))]
    if "tex" in wanted:
        written.append(atomic_write_text(out_dir / "report.tex", document(
            c.title, c.howto, [line for line, _ in c.summary], c.tables,
            [(f.title, f.pdf.relative_to(out_dir)) for f in figures])))
    if "html" in wanted:
        written.append(atomic_write_text(out_dir / "report.html",
                                         render_page(c.title, c.howto, c.summary, c.tables, figures)))
    return written


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
    parse_formats(formats)
    out_dir = Path(out_dir)
    c = contents(runs, paper, title)
    figures = write_figures(runs, curves, out_dir)
    return [p for f in figures for p in (f.png, f.pdf)] + write_documents(c, figures, out_dir, formats)

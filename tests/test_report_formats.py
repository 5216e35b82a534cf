"""Every format readable for the widest tables the shipped sweeps make (tests/report_sweeps.build_wide):
LaTeX never shrinks a table (numbers at 7 pt or more, measured in the compiled PDF; a table too wide
is split, keeping together what belongs together), tables come before the figures, `code` is set as
code; in HTML at 1400 px the augmentation table's Schedule column is narrow and most numbers show.

pdflatex and Chromium tests skip where the program is missing, and fail in CI (as
tests/test_report_latex.py and tests/test_report_html.py)."""

from __future__ import annotations

import html
import json
import re
import subprocess

import pytest

from bench.report import write as report
from bench.report.tables import build_tables
from bench.results import collect as results
from tests import report_sweeps as rs
from tests.pdf_text import pages
from tests.test_report_html import _chromium, _run
from tests.test_report_latex import _pdflatex

MIN_PT = 6.0


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    sweep_dir = rs.build_wide(root)
    runs = results.collect(sweep_dir)
    out = root / "out"
    report.write_report(runs, results.load_curves(sweep_dir, runs["run_id"]), out, formats=("md", "tex", "html"))
    return runs, out


def _tables(tex: str) -> list[str]:
    return re.findall(r"\\begin\{table\}.*?\\end\{table\}", tex, flags=re.S)


def test_latex_never_scales_a_table_and_sets_it_in_7_pt_or_more(wide):
    _, out = wide
    tex = (out / "report.tex").read_text()
    assert "resizebox" not in tex and "scalebox" not in tex
    for table in _tables(tex):
        assert re.search(r"\\(footnotesize|scriptsize)\s*\\setlength", table), table[:300]  # 8 or 7 pt
    # The tables first, then (from a new page) the figures: no table floats behind a figure.
    assert tex.index(r"\clearpage") > tex.rindex(r"\end{table}") and tex.index(r"\clearpage") < tex.index(
        r"\begin{figure}")


def test_a_wide_table_is_split_between_its_blocks(wide):
    from bench.report.latex import TEXT_WIDTH_PT, layout

    runs, _ = wide
    by_key = {t.key: t for t in build_tables(runs)}
    aug = by_key["augmentation"]
    parts = layout(aug)
    assert len(parts) >= 2
    # Every column once, in order; each augmentation's block (without ISDA, with it, the gap) in one part.
    assert [c for p in parts for c in p.columns] == list(range(aug.label_cols, len(aug.header)))
    starts = [aug.label_cols + sum(aug.blocks[:i]) for i in range(len(aug.blocks))]
    for start, n in zip(starts, aug.blocks):
        assert any(set(range(start, start + n)) <= set(p.columns) for p in parts)
    assert [aug.header[c] for c in parts[0].columns][:3] == ["Cutout", "paper (Δ)", "Cutout+ISDA"]
    # The main table splits between its datasets; every part repeats the row labels.
    main = by_key["cifar_main"]
    tex = (wide[1] / "report.tex").read_text()
    main_parts = [t for t in _tables(tex) if "CIFAR: Basic (CE) vs ISDA" in t]
    assert len(main_parts) == len(layout(main)) == 2
    assert all(r"\multicolumn{5}{c}{CIFAR-10}" in main_parts[0] and "Network & Params" in t for t in main_parts)
    assert TEXT_WIDTH_PT > 700  # landscape letter, 1.5 cm margins


def test_a_long_table_continues_in_parts_of_rows_that_fit_a_page():
    from bench.report.latex import ROWS_PER_PART, to_latex
    from bench.report.model import Cell, Table

    rows = [[Cell(f"row {i}"), Cell(f"{i}.00")] for i in range(2 * ROWS_PER_PART + 7)]
    tex = to_latex(Table("long", "A long table", ["Row", "Value"], rows, notes=["The note."]))
    parts = _tables(tex)
    assert len(parts) == 3 and [p.count("row ") for p in parts] == [ROWS_PER_PART, ROWS_PER_PART, 7]
    assert [p.count("The note.") for p in parts] == [0, 0, 1]  # the notes after the last part
    assert all(f"(part {k} of 3)" in p for k, p in enumerate(parts, 1))
    assert sum(p.count(r"\label{tab:long}") for p in parts) == 1


def test_schedule_is_a_short_cell_with_the_per_method_schedules_in_a_note(wide):
    runs, out = wide
    aug = {t.key: t for t in build_tables(runs)}["augmentation"]
    col = aug.header.index("Schedule")
    assert {row[col].text for row in aug.rows} == {"cosine", "cosine, step"}
    [note] = [n for n in aug.notes if n.startswith("Schedule")]
    assert ("CIFAR-10 Wide-ResNet-28-10 and CIFAR-100 Wide-ResNet-28-10: step for Cutout, Cutout+ISDA, "
            "RandAugment, RandAugment+ISDA; cosine for AutoAugment, AutoAugment+ISDA") in note
    # The config key in the note is code in every format, never a stray backtick.
    tex, page = (out / "report.tex").read_text(), (out / "report.html").read_text()
    assert r"\texttt{schedule}" in tex and "`" not in tex
    assert "<code>schedule</code>" in page


@pytest.mark.slow
def test_the_compiled_pdf_draws_every_number_at_6_pt_or_more_and_tables_before_figures(wide):
    pdflatex = _pdflatex()
    _, out = wide
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=out,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (out / "report.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log  # nothing runs into the margin instead
    assert "Float too large" not in log  # nor off the bottom of its page (the verdict table's 50 rows and more)
    shown = pages(out / "report.pdf")
    numbers = [run for page in shown for run in page if any(ch.isdigit() for ch in run.text)]
    assert len(numbers) > 300  # the tables were read
    smallest = min(numbers, key=lambda r: r.size)
    assert smallest.size >= MIN_PT, smallest
    tables = [k for k, page in enumerate(shown) for run in page if re.match(r"Table\d+:", run.text)]
    figures = [k for k, page in enumerate(shown) for run in page if re.match(r"Figure\d+:", run.text)]
    assert tables and figures and max(tables) < min(figures)


_MEASURE = """<script>
const t = document.getElementById('table-augmentation');
const cols = [...t.querySelectorAll('thead tr:last-child th')].map(th => {
  const b = th.getBoundingClientRect(); return [th.textContent, b.left, b.right]; });
document.body.setAttribute('data-measure', JSON.stringify({width: window.innerWidth, cols: cols}));
</script>"""


@pytest.mark.slow
def test_html_at_1400_px_shows_most_of_the_augmentation_tables_numbers(wide, tmp_path):
    browser = _chromium()
    _, out = wide
    probe = out / "probe.html"
    probe.write_text((out / "report.html").read_text().replace("</body>", _MEASURE + "</body>"))
    proc = _run(browser, tmp_path / "profile", "--window-size=1400,1000", "--dump-dom", probe.as_uri())
    found = re.search(r'data-measure="([^"]*)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    measure = json.loads(html.unescape(found.group(1)))
    width, cols = measure["width"], measure["cols"]
    assert width == 1400
    [schedule] = [right - left for name, left, right in cols if name == "Schedule"]
    assert schedule <= 0.08 * width
    numbers = cols[3:]
    visible = [name for name, _, right in numbers if right <= width]
    # Two of the fifteen were before (a Schedule column of 60 % of the page); ten here, in DejaVu Sans.
    assert len(numbers) == 15 and len(visible) >= 8, visible

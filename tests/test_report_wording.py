"""The small print a reader trips over: no "-0.00", p-values written once ("p<0.001", not "p=<0.001"),
an empty sweep folder not called a partial sweep, a report without the paper's numbers that does not
describe them, and one cost unit in the explicit table whatever its runs recorded."""

from __future__ import annotations

import json

import numpy as np
from scipy import stats as sps

from bench.report import write as report
from bench.report.citation import PaperValue
from bench.report.model import Group, gap_text_cell, paper_delta_cell
from bench.report.sensitivity import explicit_table
from bench.results import collect as results
from tests import report_sweeps as rs
from tests.test_report import fx


def _group(values) -> Group:
    return Group(values=np.asarray(values, dtype=float), wall=np.array([]), not_done={})


def test_a_difference_that_rounds_to_zero_has_no_sign():
    ours = _group([6.755, 6.757, 6.756])  # mean 6.756: 0.004 below the paper's 6.76
    cell = paper_delta_cell(ours, PaperValue(6.76, 0.34, "x", ("x",)))
    assert cell.text == "6.76 ± 0.34 (Δ 0.00)"
    gap = gap_text_cell(_group([7.001, 7.002, 7.003]), _group([7.003, 7.004, 7.002]))
    assert gap.text.startswith("0.00 (")


def test_a_small_p_value_is_written_p_less_than():
    treat, control = [5.0, 5.1, 5.05, 4.95], [9.0, 9.1, 9.05, 8.95]
    assert sps.ttest_ind(treat, control, equal_var=False).pvalue < 0.001
    text = gap_text_cell(_group(treat), _group(control)).text
    assert "(p<0.001, " in text and "p=<" not in text
    assert "(p=0.0" in gap_text_cell(_group([5.0, 5.4, 4.8]), _group([5.6, 5.9, 5.3])).text


def _planned(sweep: str) -> list[dict]:
    return [fx.make_config(sweep, "cifar10", "resnet32", m, s) for m in ("ce", "isda") for s in range(3)]


def test_an_empty_sweep_folder_says_no_run_has_started(tmp_path):
    sweep_dir = tmp_path / "results" / "empty"
    sweep_dir.mkdir(parents=True)
    runs = results.collect(sweep_dir, planned=_planned("empty"))
    lines = [line for line, _ in report.summary_lines(runs)]
    assert not any("Partial sweep" in line for line in lines)
    assert any(line.startswith("No run has started yet: all 6 planned runs are pending") for line in lines)
    # One finished run: now it is partial.
    planned = _planned("empty")
    fx.write_run(sweep_dir, planned[0], 7.0)
    lines = [line for line, _ in report.summary_lines(results.collect(sweep_dir, planned=planned))]
    assert any(line.startswith("Partial sweep: 5 of 6 runs") for line in lines)


def test_without_the_papers_numbers_the_guide_does_not_describe_them(tmp_path):
    sweep_dir, planned = fx.build_sweep(tmp_path)
    runs = results.collect(sweep_dir, planned=planned)
    curves = results.load_curves(sweep_dir, runs["run_id"])
    for paper in (True, False):
        out = tmp_path / f"out-{paper}"
        report.write_report(runs, curves, out, formats=("md", "html"), paper=paper)
        for name in ("report.md", "report.html"):
            text = (out / name).read_text()
            assert ("Paper values are the published numbers" in text) is paper
            assert ("source (table and version)" in text) is paper


def test_the_explicit_tables_cost_keeps_its_unit_when_a_run_recorded_no_throughput(tmp_path):
    sweep_dir = rs.build_explicit(tmp_path, seeds=2, nets=rs.NETS[:1])
    [one] = [p for p in sweep_dir.glob("*explicit*s0/result.json")][:1]
    result = json.loads(one.read_text())
    del result["images_per_s"]
    one.write_text(json.dumps(result))
    runs = results.collect(sweep_dir)
    table = explicit_table(runs)
    assert table.groups[-1][0] == "ms per training step"
    # The cell of the run without a throughput averages the other seeds only.
    done = runs[(runs["method"] == "explicit") & (runs["status"] == "completed")]
    m = float(done.loc[done["run_id"] == one.parent.name, "explicit_samples"].iloc[0])
    same = done[(done["explicit_samples"] == m) & (done["run_id"] != one.parent.name)]
    cost = 1000 * same["batch_size"].astype(float) / same["images_per_s"].astype(float)
    [row] = [r for r in table.rows if r[0].text == f"Explicit, M = {m:g}"]
    assert row[-1].text == f"{cost.mean():.{max(0, 2 - int(np.floor(np.log10(cost.mean()))))}f}"

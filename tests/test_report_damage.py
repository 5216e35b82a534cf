"""Damaged run folders: one reader names each damaged run once, in the same words on the console of
`isda-bench report` and at the top of the report, counts it in the state `status` shows, and uses
nothing a damaged file holds. Run folders are written as the engine writes them, then damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.report.figures import draw_curves
from bench.results import collect as results
from bench.rundir.state import RunState, run_state
from bench.sweep.spec import load_sweep
from tests.test_report import fx, md_table

SWEEP = {"name": "dmg", "grid": {"dataset": ["digits"], "arch": ["resnet32"], "method": ["ce", "isda"],
                                 "seed": [0, 1, 2]}, "overrides": {"epochs": 12}}


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A sweep file and its six runs, completed, in a scratch working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ISDA_BENCH_RESULTS", raising=False)
    (tmp_path / "dmg.yaml").write_text(yaml.safe_dump(SWEEP))
    sweep = load_sweep(tmp_path / "dmg.yaml")
    rng = np.random.default_rng(2)
    dirs = {}
    for cfg in sweep.runs:
        flat = {"run_id": cfg.run_id, **cfg.to_dict()}
        dirs[cfg.method, cfg.seed] = fx.write_run(tmp_path / "results" / "dmg", flat,
                                                  (3.0 if cfg.method == "ce" else 2.5) + rng.normal(0, 0.1), rng=rng)
    return tmp_path, dirs


def _report(capsys) -> tuple[str, str]:
    capsys.readouterr()
    assert main(["report", "dmg.yaml", "--format", "md"]) == 0
    out = capsys.readouterr()
    return out.out + out.err, (Path("reports") / "dmg" / "report.md").read_text()


def _damage_lines(text: str) -> list[str]:
    return [ln.strip().strip("*").rstrip("*").strip() for ln in text.splitlines() if "): " in ln and "- " in ln]


def test_a_completed_result_with_text_errors_is_failed_everywhere_and_named_once(scratch, capsys):
    root, dirs = scratch
    run_dir = dirs["isda", 1]
    result = json.loads((run_dir / "result.json").read_text())
    result.update(final_test_error="n/a", best_test_error="n/a", last10_test_error="n/a")
    (run_dir / "result.json").write_text(json.dumps(result))
    assert run_state(run_dir) == RunState.FAILED  # what `status` shows, and what --retry-failed retrains
    console, md = _report(capsys)
    top = md.split("## Tables")[0]
    assert "6 in total (5 completed, 1 failed)" in top and "6 in total (5 completed, 1 failed)" in console
    assert "1 not completed" in console
    line = f"{run_dir.name} (failed): result.json's final_test_error is 'n/a', not a number"
    assert line in top and line in console
    # Once, and in the same words in both.
    assert [d for d in _damage_lines(console) if run_dir.name in d] == [d for d in _damage_lines(top)
                                                                         if run_dir.name in d]
    assert len([d for d in _damage_lines(console) if run_dir.name in d]) == 1
    header, rows = md_table(md, "All runs")
    assert "(n=2, 1 failed)" in rows[0][header.index("ISDA")]


def test_text_values_in_metrics_csv_are_named_and_not_drawn(scratch, capsys):
    root, dirs = scratch
    run_dir = dirs["ce", 2]
    metrics = pd.read_csv(run_dir / "metrics.csv", dtype=str)
    metrics.loc[3, "test_error"] = "abc"  # the header is right, a value is text
    metrics.to_csv(run_dir / "metrics.csv", index=False)
    console, md = _report(capsys)
    line = f"{run_dir.name} (completed): metrics.csv's test_error on line 5 is 'abc', not a number"
    assert line in console and line in md.split("## Tables")[0]
    runs = results.collect(root / "results" / "dmg")
    curves = results.load_curves(root / "results" / "dmg", runs["run_id"])
    assert run_dir.name not in set(curves["run_id"]) and curves.attrs["damaged"] == [run_dir.name]
    assert pd.api.types.is_float_dtype(curves["test_error"])
    # The run's result is whole, so its cell keeps it; its curve is left out, and the legend says so.
    header, rows = md_table(md, "All runs")
    assert "(n=3)" in rows[0][header.index("CE")]
    fig = draw_curves(runs, curves)
    assert "CE (n=3, 1 without a readable curve)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_a_corrupt_config_keeps_its_run_in_the_plan_and_is_named(scratch, capsys):
    root, dirs = scratch
    run_dir = dirs["ce", 0]
    (run_dir / "config.yaml").write_text("dataset: [digits\n")
    console, md = _report(capsys)
    top = md.split("## Tables")[0]
    assert "6 in total (6 completed)" in top
    assert f"{run_dir.name} (completed): config.yaml cannot be read" in console
    assert f"{run_dir.name} (completed): config.yaml cannot be read" in top
    header, rows = md_table(md, "All runs")
    assert "(n=3)" in rows[0][header.index("CE")]

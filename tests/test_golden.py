"""Behaviour that a change of the code's layout must leave as it is, compared with recorded files in
tests/golden/: the runs every shipped sweep plans (run ids, readable names and resolved configs), the
reports of fabricated sweeps (report.md, report.tex, runs.csv), and the files a run writes.

An intended change of behaviour updates the record: ``ISDA_BENCH_UPDATE_GOLDEN=1 pytest
tests/test_golden.py`` rewrites it, and the diff of tests/golden/ shows what changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from bench.experiment.resolve import resolve
from bench.report import write as report
from bench.results import collect as results
from bench.sweep.spec import load_sweep
from bench.train.trainer import run
from tests import report_sweeps
from tests.helpers import TIMING
from tests.test_report import build_rich, fx

GOLDEN = Path(__file__).with_name("golden")
SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
UPDATE = os.environ.get("ISDA_BENCH_UPDATE_GOLDEN") == "1"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"no record {path}: run with ISDA_BENCH_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"{name} differs from its record (ISDA_BENCH_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_sweep_plans_the_recorded_runs(path):
    runs = {cfg.run_id: {"slug": cfg.slug, **cfg.to_dict()} for cfg in load_sweep(path).runs}
    _check(f"sweeps/{path.stem}.json", json.dumps(runs, indent=1, sort_keys=True) + "\n")


FABRICATED = {"basic": lambda root: fx.build_sweep(root)[0], "rich": build_rich,
              "ablation": report_sweeps.build_ablation, "regularizers": report_sweeps.build_regularizers,
              "explicit": report_sweeps.build_explicit, "lambda": report_sweeps.build_lambda,
              "imagenet": report_sweeps.build_imagenet}


@pytest.mark.parametrize("name", sorted(FABRICATED))
def test_reports_of_fabricated_sweeps_are_the_recorded_ones(tmp_path, name):
    sweep_dir = FABRICATED[name](tmp_path)
    runs = results.collect(sweep_dir)
    results.write_runs(runs, sweep_dir)
    out = tmp_path / "reports" / name
    report.write_report(runs, results.load_curves(sweep_dir, runs["run_id"]), out, formats=("md", "tex"))
    for file in (out / "report.md", out / "report.tex", sweep_dir / "runs.csv"):
        # A report names the files it could not read by their path, which is this test's own folder.
        text = file.read_text()
        for form in (str(tmp_path), str(tmp_path).replace("_", "\\_")):  # as written, as LaTeX escapes it
            text = text.replace(form, "TMP")
        _check(f"reports/{name}/{file.name}", text)


def test_a_run_writes_the_recorded_files(tmp_path):
    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "isda", "epochs": 2, "seed": 3,
                   "threads": 1, "tracking": "disabled", "device": "cpu"})
    result = run(cfg, tmp_path / "run", progress=False)
    assert result["status"] == "completed"
    # Its keys, and the values that do not depend on the machine: errors and losses are bit-identical
    # on one kind of CPU only, timings and provenance never are.
    measured = TIMING | {"device", "git_sha", "versions", "torch_version"}
    kept = {k: (v if k not in measured and not isinstance(v, float) else type(v).__name__)
            for k, v in result.items()}
    _check("run/result.json", json.dumps(kept, indent=1, sort_keys=True) + "\n")
    _check("run/config.yaml", (tmp_path / "run" / "config.yaml").read_text())
    header, *rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2
    _check("run/metrics_header.csv", header + "\n")
    assert sorted(yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())) == sorted(
        {"run_id", *cfg.to_dict()})

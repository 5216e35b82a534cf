"""examples/plugin, installed as a user installs it, through a sweep end to end: plan → launch → report."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLI = [str(Path(sys.executable).with_name("isda-bench"))]  # the console script, as a user runs it


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLI + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_the_example_plugin_installs_and_runs_a_sweep_with_its_own_axis(tmp_path):
    # A copy, so that the build's files stay out of the checkout. No index: nothing is downloaded.
    source, site = tmp_path / "plugin", tmp_path / "site"
    shutil.copytree(REPO / "examples" / "plugin", source)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(site), str(source)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr
    assert list(site.glob("isda_bench_label_smoothing-0.1.0.dist-info/entry_points.txt"))

    sweep = tmp_path / "smoothing.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "smoothing", "grid": {"dataset": ["digits"], "arch": ["resnet32"], "seed": [0],
                                      "method": ["ce", "label_smoothing", "ema_centres"], "smoothing": [0.0, 0.2]},
        "overrides": {"epochs": 1, "batch_size": 256}}))
    results, reports = tmp_path / "results", tmp_path / "reports"
    common = ["--results", str(results)]
    base = {**os.environ, "WANDB_MODE": "disabled"}
    without = {**base, "PYTHONPATH": str(REPO)}
    env = {**base, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}

    # Not installed: the method is unknown. Installed: its entry point registers it, with no --plugin.
    refused = _run(["plan", str(sweep), *common], without, tmp_path)
    assert refused.returncode == 2 and "grid.smoothing" in refused.stderr, refused.stderr
    plan = _run(["plan", str(sweep), *common], env, tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "4 runs" in plan.stdout and "pending: 4" in plan.stdout, plan.stdout
    for slug in ("digits-resnet32-ce-s0", "label_smoothing-smoothing=0-s0", "label_smoothing-smoothing=0.2-s0",
                 "ema_centres-ema_weight=0.01-ema_momentum=0.9-s0"):
        assert slug in plan.stdout, plan.stdout
    # Listed with where they come from, their parameters and the names reports give them.
    listed = _run(["methods"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert ("label_smoothing  [package isda-bench-label-smoothing 0.1.0 (module isda_label_smoothing)]  shown as "
            "'Label smoothing'") in listed.stdout, listed.stdout
    assert "--set ema_momentum=…  default 0.9; a number >= 0 and < 1; how slowly the centres move" in listed.stdout

    launch = _run(["launch", str(sweep), "--cluster", "local", *common], env, tmp_path)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    results_by_smoothing = {}
    for run_dir in (results / "smoothing").iterdir():
        if not (run_dir / "result.json").exists():
            continue
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "completed", result.get("reason")
        # The local subprocess loaded the entry point as the launching command did, and says which.
        assert result["plugins"] == [{"module": "isda_label_smoothing", "package": "isda-bench-label-smoothing",
                                      "version": "0.1.0", "losses": ["label_smoothing", "ema_centres"]}]
        assert result.get("method_code") == (None if result["method"] == "ce" else "isda-bench-label-smoothing 0.1.0")
        if result["method"] == "ema_centres":  # its state is checkpointed with the run
            import torch

            state = torch.load(run_dir / "checkpoint.pt", weights_only=False)["loss"]
            assert state["seen"].all() and state["centres"].abs().sum() > 0
            continue
        results_by_smoothing[result.get("smoothing")] = result
    assert set(results_by_smoothing) == {None, 0.0, 0.2}
    assert results_by_smoothing[0.2]["method"] == "label_smoothing"

    report = _run(["report", str(sweep), *common, "--reports", str(reports), "--format", "md"], env, tmp_path)
    assert report.returncode == 0, report.stderr
    assert "4 runs, 0 not completed" in report.stdout
    assert "Label smoothing" in (reports / "smoothing" / "report.md").read_text()  # the name it declares
    with open(results / "smoothing" / "runs.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((r["method"], r["smoothing"], r["status"]) for r in rows) == [
        ("ce", "", "completed"), ("ema_centres", "", "completed"), ("label_smoothing", "0.0", "completed"),
        ("label_smoothing", "0.2", "completed")]
    # A report of the sweep where the plugin is not installed names it, from what its runs recorded.
    gone = _run(["report", str(sweep), *common, "--reports", str(reports)], without, tmp_path)
    assert gone.returncode == 2 and len(gone.stderr.strip().splitlines()) == 1, gone.stderr
    assert "trained with isda_label_smoothing (isda-bench-label-smoothing 0.1.0)" in gone.stderr, gone.stderr

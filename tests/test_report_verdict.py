"""The reproduction verdict (bench.report.verdict): its tests against scipy on raw samples, and the
line and table a report opens with, recomputed here from the run folders' result.json and the paper's
numbers (TPAMI Table 2, whose caption states five runs) with scipy directly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from bench.experiment.recipes import recipe_for
from bench.report import verdict
from bench.report import write as report
from bench.report.tables import build_tables
from bench.results import collect as results
from bench.results import stats
from tests import report_sweeps as rs
from tests.test_report import fx, md_table

# TPAMI Table 2 (mean, std; five runs per its caption), transcribed from the paper, not read from bench.
PAPER = {("cifar10", "resnet110", "ce"): (6.76, 0.34), ("cifar10", "resnet110", "isda"): (6.33, 0.19),
         ("cifar100", "resnet110", "ce"): (28.67, 0.44), ("cifar100", "resnet110", "isda"): (27.57, 0.46),
         ("cifar10", "wrn28_10", "ce"): (3.82, 0.15), ("cifar10", "wrn28_10", "isda"): (3.58, 0.15)}
PAPER_RUNS = 5
NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "resnet110": "ResNet-110", "wrn28_10": "Wide-ResNet-28-10"}


def _sample(rng: np.random.Generator, n: int, mean: float, std: float) -> np.ndarray:
    """n values with exactly this mean and sample std."""
    x = rng.normal(size=n)
    return mean + std * (x - x.mean()) / x.std(ddof=1)


@pytest.mark.parametrize("seed", range(6))
def test_welch_and_one_sample_match_scipy_on_raw_samples(seed):
    rng = np.random.default_rng(seed)
    n1, n2 = int(rng.integers(3, 8)), int(rng.integers(3, 8))
    a = rng.normal(10, rng.uniform(0.05, 1.0), n1)
    b = _sample(rng, n2, 10 + rng.normal(0, 0.5), rng.uniform(0.05, 1.0))
    got = stats.welch_summary(a.mean(), a.std(ddof=1), n1, b.mean(), b.std(ddof=1), n2)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert got.p == pytest.approx(ref.pvalue, rel=1e-9)
    assert got.t == pytest.approx(ref.statistic, rel=1e-9) and got.df == pytest.approx(ref.df, rel=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert (got.low, got.high) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    for alternative in ("less", "greater"):
        one = stats.welch_summary(a.mean(), a.std(ddof=1), n1, b.mean(), b.std(ddof=1), n2, alternative)
        assert one.p == pytest.approx(sps.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue, rel=1e-9)
    mu = 10 + rng.normal(0, 0.5)
    got = stats.one_sample_summary(a.mean(), a.std(ddof=1), n1, mu)
    ref = sps.ttest_1samp(a, mu)
    assert got.p == pytest.approx(ref.pvalue, rel=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert (got.low + mu, got.high + mu) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))


def _build(root: Path) -> tuple[Path, list[dict]]:
    """CIFAR-10 ResNet-110 near the paper (5 seeds), CIFAR-100 ResNet-110 far from it (3 seeds), and
    WRN-28-10 on CIFAR-10 with CE at two completed runs and a diverged one, each with the paper's recipe:
    a run's last-10-epoch error is its level plus noise (tests/test_results.py's writer)."""
    rng = np.random.default_rng(7)
    sweep_dir = root / "results" / "verdict"
    plan = [("cifar10", "resnet110", "ce", 6.76, 5), ("cifar10", "resnet110", "isda", 6.33, 5),
            ("cifar100", "resnet110", "ce", 30.5, 3), ("cifar100", "resnet110", "isda", 30.6, 3),
            ("cifar10", "wrn28_10", "ce", 3.9, 3), ("cifar10", "wrn28_10", "isda", 3.6, 3)]
    planned = []
    for ds, arch, method, level, seeds in plan:
        for seed in range(seeds):
            recipe = recipe_for(ds, arch)  # the paper's training budget: a run trained otherwise is not judged
            cfg = fx.make_config("verdict", ds, arch, method, seed, epochs=recipe.epochs, batch_size=recipe.batch_size)
            status = "diverged" if (arch, method, seed) == ("wrn28_10", "ce", 2) else "completed"
            fx.write_run(sweep_dir, cfg, level + rng.normal(0, 0.2), rng=rng, status=status)
            planned.append(cfg)
    return sweep_dir, planned


def _values(sweep_dir: Path) -> dict[tuple[str, str, str], np.ndarray]:
    out: dict[tuple[str, str, str], list[float]] = {}
    for run_dir in sweep_dir.iterdir():
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        result = json.loads((run_dir / "result.json").read_text())
        if result["status"] == "completed":
            out.setdefault((cfg["dataset"], cfg["arch"], cfg["method"]), []).append(result["last10_test_error"])
    return {k: np.array(v) for k, v in out.items()}


def _expected(values: dict[tuple[str, str, str], np.ndarray]) -> dict[tuple[str, str], str]:
    """(experiment, result) → outcome, by the README's rule, with scipy."""
    out = {}
    for (ds, arch, method), (mean, std) in PAPER.items():
        ours = values[ds, arch, method]
        experiment = f"{NAMES[ds]}, {NAMES[arch]}"
        if ours.size < 3:
            outcome = "too few runs"
        else:
            p = sps.ttest_ind_from_stats(ours.mean(), ours.std(ddof=1), ours.size, mean, std, PAPER_RUNS,
                                         equal_var=False).pvalue
            outcome = "reproduced" if p >= 0.05 else "not reproduced"
        out[experiment, "CE" if method == "ce" else "ISDA"] = outcome
        if method == "isda":
            ce, paper_gap = values[ds, arch, "ce"], mean - PAPER[ds, arch, "ce"][0]
            if min(ce.size, ours.size) < 3:
                outcome = "too few runs"
            else:
                p = sps.ttest_ind(ours, ce, equal_var=False, alternative="less" if paper_gap < 0 else "greater").pvalue
                same_sign = np.sign(ours.mean() - ce.mean()) == np.sign(paper_gap)
                outcome = "reproduced" if same_sign and p < 0.05 else "not reproduced"
            out[experiment, "gain ISDA − CE"] = outcome
    return out


def test_the_verdict_opens_every_format_and_follows_its_rule(tmp_path):
    sweep_dir, planned = _build(tmp_path)
    runs = results.collect(sweep_dir, planned=planned)
    out = tmp_path / "report"
    report.write_report(runs, pd.DataFrame(), out, formats=("md", "tex", "html"))
    expected = _expected(_values(sweep_dir))
    assert set(expected.values()) == {"reproduced", "not reproduced", "too few runs"}  # every outcome occurs

    md = (out / "report.md").read_text()
    header, rows = md_table(md, "Reproduction verdict")
    assert header[:3] == ["Experiment", "Result", "Verdict"]
    assert {(r[0], r[1]): r[2] for r in rows} == expected
    k = sum(v == "reproduced" for v in expected.values())
    j = sum(v == "not reproduced" for v in expected.values())
    line = (f"Reproduction: {k} of {len(expected)} paper results reproduced, {j} not, the rest "
            f"({len(expected) - k - j}) too few runs")
    # At the top: before the run accounting and before any table, in every format.
    top = md.split("## Tables")[0]
    assert line in top and top.index(line) < top.index("Runs: ")
    assert "two-sided Welch t-test" in top and "one-sided Welch t-test" in top  # the rule is stated
    tex = (out / "report.tex").read_text()
    assert line in tex and tex.index(line) < tex.index(r"\begin{table}")
    page = (out / "report.html").read_text()
    assert line in page and page.index(line) < page.index("<table")
    assert page.index('id="table-verdict"') < page.index('id="table-generic"')


def test_the_paper_number_rows_show_the_test_scipy_gives(tmp_path):
    sweep_dir, _ = _build(tmp_path)
    ours = _values(sweep_dir)["cifar10", "resnet110", "isda"]
    judged = {(j.experiment, j.what): j for j in verdict.judge(build_tables(results.collect(sweep_dir)))}
    # The paper's side as a sample with its mean and std over its five runs.
    ref = sps.ttest_ind(ours, _sample(np.random.default_rng(0), PAPER_RUNS, 6.33, 0.19), equal_var=False)
    lo, hi = ref.confidence_interval(0.95)
    p = "p<0.001" if ref.pvalue < 0.001 else f"p={ref.pvalue:.3f}"
    assert judged["CIFAR-10, ResNet-110", "ISDA"].test == (
        f"Δ {ours.mean() - 6.33:+.2f} [{lo:+.2f}, {hi:+.2f}], Welch {p}")


def test_a_number_two_tables_compare_is_judged_once(tmp_path):
    """The ablation's Basic and ISDA rerun the main table's experiments with the same runs."""
    sweep_dir = rs.build_ablation(tmp_path)
    out = tmp_path / "report"
    report.write_report(results.collect(sweep_dir), pd.DataFrame(), out, formats=("md",))
    md = (out / "report.md").read_text()
    _, rows = md_table(md, "Reproduction verdict")
    assert len(rows) == 4 * 3  # four network × dataset columns: Basic, ISDA and the gain
    assert {r[-1] for r in rows} == {"main, ablation"}
    assert re.search(r"Reproduction: \d+ of 12 paper results reproduced", md)


def test_numbers_without_a_spread_are_tested_one_sample(tmp_path):
    """TPAMI's ImageNet table prints single numbers: ours are tested against its mean."""
    sweep_dir = rs.build_imagenet(tmp_path, seeds=3, paper_budget=True)
    judged = {(j.experiment, j.what): j for j in verdict.judge(build_tables(results.collect(sweep_dir)))}
    ce = []
    for run_dir in sweep_dir.iterdir():
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        if cfg["method"] == "ce" and cfg["recipe"] == "tpami":
            ce.append(json.loads((run_dir / "result.json").read_text())["last10_test_error"])
    assert len(ce) == 3
    j = judged["ImageNet, ResNet-50", "CE top-1"]
    p = sps.ttest_1samp(ce, 23.0).pvalue
    assert "one-sample t" in j.test and j.outcome == ("reproduced" if p >= 0.05 else "not reproduced")
    assert j.paper == "23.00 (TPAMI Table 1)"


def test_without_paper_numbers_there_is_no_verdict(tmp_path):
    sweep_dir, planned = _build(tmp_path)
    out = tmp_path / "report"
    report.write_report(results.collect(sweep_dir, planned=planned), pd.DataFrame(), out, formats=("md",),
                        paper=False)
    md = (out / "report.md").read_text()
    assert "Reproduction" not in md


def test_cells_trained_otherwise_than_the_paper_are_listed_not_judged(tmp_path):
    """Five seeds far from the paper's number, but trained 12 epochs instead of the recipe's: the verdict
    names how they trained and judges neither the number nor the gain."""
    rng = np.random.default_rng(3)
    sweep_dir = tmp_path / "results" / "short"
    planned = []
    for method, level in (("ce", 40.0), ("isda", 41.0)):
        for seed in range(5):
            cfg = fx.make_config("short", "cifar10", "resnet110", method, seed, epochs=12,
                                 batch_size=recipe_for("cifar10", "resnet110").batch_size)
            fx.write_run(sweep_dir, cfg, level + rng.normal(0, 0.2), rng=rng)
            planned.append(cfg)
    judged = verdict.judge(build_tables(results.collect(sweep_dir, planned=planned)))
    epochs = recipe_for("cifar10", "resnet110").epochs
    assert {(j.what, j.outcome) for j in judged} == {("CE", verdict.OTHER_TRAINING), ("ISDA", verdict.OTHER_TRAINING),
                                                      ("ISDA − CE", verdict.OTHER_TRAINING)}
    assert all(j.test == f"epochs 12 (paper: {epochs})" for j in judged)
    line = verdict.line(judged)
    assert line is not None and line.startswith(
        "Reproduction: 0 of 3 paper results reproduced, 0 not, 0 with too few runs, 3 trained otherwise than the paper")

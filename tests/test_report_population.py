"""One population per cell: every table and figure of a report draws a cell from the same runs (the
completed ones with an error, bench.report.model.group_of) and shows the same n; failed, diverged and
interrupted runs are counted in the cell and never drawn. Run folders are written as the engine
writes them (tests/test_results.py's writer)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report import write as report  # noqa: E402
from bench.report.figures import draw_curves, draw_gap  # noqa: E402
from bench.report.param_figures import draw_lambda  # noqa: E402
from bench.results import collect as results  # noqa: E402
from tests.test_report import fx, md_table  # noqa: E402


def _legend(fig: plt.Figure) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def build_mixed(root):
    """Digits ResNet-32: CE three completed seeds; Focal two completed, one failed after 4 epochs with a
    low error (a partial curve whose end would drop the mean like an lr step), one diverged, one
    interrupted; ISDA three completed, at three λ0, and one corrupt result.json."""
    rng = np.random.default_rng(8)
    sweep_dir = root / "results" / "mixed"
    for seed in range(3):
        fx.write_run(sweep_dir, fx.make_config("mixed", "digits", "resnet32", "ce", seed), 3.0 + rng.normal(0, .1),
                     rng=rng)
        for lam in (0.25, 0.5, 1.0):
            cfg = fx.make_config("mixed", "digits", "resnet32", "isda", seed, lambda0=lam)
            fx.write_run(sweep_dir, cfg, 2.5 + lam + rng.normal(0, .1), rng=rng)
    for seed, status in enumerate(("completed", "completed", "failed", "diverged", "interrupted")):
        cfg = fx.make_config("mixed", "digits", "resnet32", "focal", seed)
        partial = {"failed": 4, "interrupted": 6}.get(status)
        fx.write_run(sweep_dir, cfg, -30.0 if status == "failed" else 3.4, rng=rng, status=status,
                     epochs_done=partial)
    cfg = fx.make_config("mixed", "digits", "resnet32", "isda", 3, lambda0=0.5)
    fx.write_run(sweep_dir, cfg, 3.0, rng=rng, corrupt_result=True)
    return sweep_dir


def test_curves_draw_only_the_runs_the_table_counts_with_its_n(tmp_path):
    sweep_dir = build_mixed(tmp_path)
    runs = results.collect(sweep_dir)
    curves = results.load_curves(sweep_dir, runs["run_id"])
    report.write_report(runs, curves, tmp_path / "out", formats=("md",))
    md = (tmp_path / "out" / "report.md").read_text()
    header, rows = md_table(md, "All runs")
    focal = rows[0][header.index("Focal Loss")]
    assert "(n=2, 1 diverged, 1 failed, 1 interrupted)" in focal
    fig = draw_curves(runs, curves)
    labels = _legend(fig)
    assert "Focal Loss (n=2)" in labels and "ISDA (λ0=0.5) (n=3)" in labels
    [ax] = [a for a in fig.axes if a.get_visible()]
    line = ax.get_lines()[labels.index("Focal Loss (n=2)")]
    done = runs[(runs["method"] == "focal") & (runs["status"] == "completed")]["run_id"]
    expected = curves[curves["run_id"].isin(done)].groupby("epoch")["test_error"].mean()
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())  # no failed run's partial curve in it
    plt.close(fig)
    # The run with a corrupt result.json: one run, counted once, failed, in the table and the summary.
    assert "Runs: 18 in total (14 completed, 1 diverged, 2 failed, 1 interrupted)." in md
    assert "(n=3, 1 failed)" in rows[0][header.index("ISDA (λ0=0.5)")]


def test_a_network_whose_only_isda_run_failed_has_no_isda_line_and_no_gap(tmp_path):
    rng = np.random.default_rng(9)
    sweep_dir = tmp_path / "results" / "inet"
    for seed in range(3):
        cfg = fx.make_config("inet", "imagenet", "resnet101", "ce", seed)
        fx.write_run(sweep_dir, cfg, 22.0 + rng.normal(0, .1), rng=rng)
    cfg = fx.make_config("inet", "imagenet", "resnet101", "isda", 0)
    fx.write_run(sweep_dir, cfg, 21.0, rng=rng, status="failed", epochs_done=3)
    runs = results.collect(sweep_dir)
    fig = draw_curves(runs, results.load_curves(sweep_dir, runs["run_id"]))
    assert _legend(fig) == ["CE (n=3)"]
    [ax] = [a for a in fig.axes if a.get_visible()]
    assert len(ax.get_lines()) == 1
    plt.close(fig)
    assert draw_gap(runs) is None


def test_table_gap_figure_and_lambda_points_share_each_cells_n(tmp_path):
    sweep_dir = build_mixed(tmp_path)
    runs = results.collect(sweep_dir)
    md = "\n".join(report.to_markdown(t) for t in report.build_tables(runs))
    header, rows = md_table(md, "All runs")
    n_table = {h: c.split("(n=")[1].split(",")[0].split(")")[0] for h, c in zip(header[2:], rows[0][2:])}
    assert rows[0][header.index("ISDA (λ0=0.5)")].endswith("(n=3, 1 failed)")  # the corrupt result.json
    fig = draw_lambda(runs)
    assert "ISDA (n=3 per point)" in _legend(fig)
    assert n_table["CE"] == "3" and any("CE" in t and "n=3" in t for t in _legend(fig))
    plt.close(fig)
    fig = draw_gap(runs)
    [ax] = fig.axes
    [label] = [t.get_text() for t in ax.get_yticklabels()]
    assert f"n={n_table['ISDA (λ0=0.5)']} ISDA, {n_table['CE']} CE" in label
    plt.close(fig)


def test_curves_of_runs_of_unequal_length_stop_where_one_ends(tmp_path):
    """A mean over fewer runs from some epoch on steps there as a learning-rate decay does: the line
    ends at the last epoch every drawn run has."""
    rng = np.random.default_rng(4)
    sweep_dir = tmp_path / "results" / "len"
    for seed in range(3):
        run_dir = fx.write_run(sweep_dir, fx.make_config("len", "digits", "resnet32", "ce", seed), 3.0, rng=rng)
    metrics = pd.read_csv(run_dir / "metrics.csv")
    metrics.iloc[:8].to_csv(run_dir / "metrics.csv", index=False)
    runs = results.collect(sweep_dir)
    fig = draw_curves(runs, results.load_curves(sweep_dir, runs["run_id"]))
    [ax] = [a for a in fig.axes if a.get_visible()]
    assert list(ax.get_lines()[0].get_xdata()) == list(range(1, 9))
    plt.close(fig)

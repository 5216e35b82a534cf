"""What a reader sees of a report: one table when the sweep has only what the generic table shows,
one curve per method and variant (never per value of metrics.csv's per-epoch lr), legends outside
every panel, numbers as people write them; and the λ0 and explicit-vs-M figures' series."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bench.report import tables as report_tables  # noqa: E402
from bench.report import write as report  # noqa: E402
from bench.report.figures import draw_curves  # noqa: E402
from bench.report.param_figures import draw_explicit, draw_lambda  # noqa: E402
from bench.results import collect as results  # noqa: E402
from tests import report_sweeps as rs  # noqa: E402
from tests.test_report import fx, md_table  # noqa: E402


def smoke_like(root):
    """sweeps/smoke.yaml's shape: digits, ResNet-32, CE / Focal / AutoAugment / ISDA, three seeds."""
    rng = np.random.default_rng(3)
    sweep_dir, planned = root / "results" / "smoke", []
    for method, level in (("ce", 2.4), ("focal", 3.2), ("autoaugment", 12.0), ("isda", 2.1)):
        for seed in range(3):
            cfg = fx.make_config("smoke", "digits", "resnet32", method, seed, epochs=20, milestones=[10, 15])
            fx.write_run(sweep_dir, cfg, level + rng.normal(0, 0.3), rng=rng)
            planned.append(cfg)
    return sweep_dir, planned


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    sweep_dir, planned = smoke_like(root)
    runs = results.collect(sweep_dir, planned=planned)
    curves = results.load_curves(sweep_dir, runs["run_id"])
    assert curves["lr"].nunique() == 3  # the per-epoch lr the curves used to be split by
    return root, runs, curves


def _legend_outside(fig: plt.Figure) -> None:
    fig.canvas.draw()
    [legend] = fig.legends
    box = legend.get_window_extent()
    for ax in fig.axes:
        if ax.get_visible():
            assert not box.overlaps(ax.get_window_extent()), "the legend covers a panel"
    assert not any(ax.get_legend() for ax in fig.axes)  # no legend inside a panel


def test_smoke_report_has_one_table_and_no_duplicate(smoke):
    root, runs, curves = smoke
    tables = report_tables.build_tables(runs)
    assert [t.key for t in tables] == ["generic"]  # no "Baselines" twin, no one-column augmentation table
    report.write_report(runs, curves, root / "out", formats=("md",))
    md = (root / "out" / "report.md").read_text()
    assert md.count("\n### ") == 1
    header, rows = md_table(md, "All runs")
    assert header == ["Dataset", "Architecture", "CE", "Focal Loss", "AutoAugment", "ISDA"] and len(rows) == 1


def test_curves_one_series_per_method_and_legend_outside(smoke):
    _, runs, curves = smoke
    fig = draw_curves(runs, curves)
    [ax] = [a for a in fig.axes if a.get_visible()]
    assert len(ax.get_lines()) == 4
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["CE (n=3)", "Focal Loss (n=3)", "AutoAugment (n=3)", "ISDA (n=3)"]
    # Each line is the mean over its method's three seeds, epoch by epoch.
    for line, method in zip(ax.get_lines(), ("ce", "focal", "autoaugment", "isda")):
        ids = runs.loc[runs["method"] == method, "run_id"]
        expected = curves[curves["run_id"].isin(ids)].groupby("epoch")["test_error"].mean()
        np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())
    _legend_outside(fig)
    plt.close(fig)


def test_variant_values_are_printed_as_people_write_them(tmp_path):
    rng = np.random.default_rng(4)
    sweep_dir = tmp_path / "results" / "lr"
    for lr in (0.1 * 0.01, 0.1 * 0.1):  # 0.0010000000000000002 and 0.010000000000000002
        for seed in range(2):
            cfg = fx.make_config("lr", "digits", "resnet32", "ce", seed, lr=lr)
            cfg["run_id"] += f"-{lr}"
            fx.write_run(sweep_dir, cfg, 3.0, rng=rng)
    runs = results.collect(sweep_dir)
    curves = results.load_curves(sweep_dir, runs["run_id"])
    header, _ = md_table(_md(runs), "All runs")
    assert header[2:] == ["CE (lr=0.001)", "CE (lr=0.01)"]
    fig = draw_curves(runs, curves)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["CE (lr=0.001) (n=2)", "CE (lr=0.01) (n=2)"]
    plt.close(fig)


def _md(runs: pd.DataFrame) -> str:
    from bench.report.render import to_markdown

    return "\n".join(to_markdown(t) for t in report_tables.build_tables(runs))


def test_curves_colour_a_variant_alike_in_every_panel(tmp_path):
    sweep_dir = rs.build_ablation(tmp_path, seeds=2)
    runs = results.collect(sweep_dir)
    curves = results.load_curves(sweep_dir, runs["run_id"])
    fig = draw_curves(runs, curves)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 4 and all(len(a.get_lines()) == 6 for a in axes)  # CE + five ISDA settings
    looks = [[(line.get_color(), line.get_linestyle(), line.get_marker()) for line in a.get_lines()] for a in axes]
    # One look per series in every panel; the five ISDA settings share ISDA's colour, a marker each.
    assert all(c == looks[0] for c in looks) and len(set(looks[0])) == 6
    assert len({colour for colour, _, _ in looks[0]}) == 2
    assert len(fig.legends[0].get_texts()) == 6
    _legend_outside(fig)
    plt.close(fig)


def test_lambda_figure_shows_zero_and_ce_as_a_band(tmp_path):
    sweep_dir = rs.build_lambda(tmp_path, seeds=2, nets=rs.NETS[:2])
    runs = results.collect(sweep_dir)
    fig = draw_lambda(runs)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 2
    done = runs[runs["status"] == "completed"]
    for ax, (ds, arch, _) in zip(axes, rs.NETS[:2]):
        assert ax.get_xscale() == "symlog"
        ticks = list(ax.get_xticks()) + list(ax.get_xticks(minor=True))
        assert sorted(ticks) == list(rs.LAMBDAS)  # every λ0 has its tick, 0 included
        lo, hi = ax.get_xlim()
        assert lo < 0 < rs.LAMBDAS[1] and hi > rs.LAMBDAS[-1]
        [series] = [c for c in ax.containers]  # one ISDA line with error bars
        xs, ys = (np.asarray(v, dtype=float) for v in series.lines[0].get_data())
        isda = done[(done["dataset"] == ds) & (done["arch"] == arch) & (done["method"] == "isda")]
        mean = isda.groupby("lambda0")["last10_test_error"].mean()
        np.testing.assert_allclose(xs, mean.index.to_numpy())
        np.testing.assert_allclose(ys, mean.to_numpy())
        ce = done[(done["dataset"] == ds) & (done["arch"] == arch) & (done["method"] == "ce")]["last10_test_error"]
        [band] = ax.patches
        y0, y1 = band.get_path().vertices[:, 1].min(), band.get_path().vertices[:, 1].max()
        band_y = band.get_transform().transform([[0, y0], [0, y1]])
        data_y = ax.transData.transform([[0, ce.mean() - ce.std()], [0, ce.mean() + ce.std()]])
        np.testing.assert_allclose(band_y[:, 1], data_y[:, 1], atol=1e-6)
    _legend_outside(fig)
    plt.close(fig)


def test_explicit_figure_error_and_cost_against_m_with_isda_as_a_line(tmp_path):
    sweep_dir = rs.build_explicit(tmp_path, seeds=2, nets=rs.NETS[:1])
    runs = results.collect(sweep_dir)
    fig = draw_explicit(runs)
    err_ax, cost_ax = [a for a in fig.axes if a.get_visible()]
    done = runs[runs["status"] == "completed"]
    exp = done[done["method"] == "explicit"]
    isda = done[done["method"] == "isda"]
    cost = 1000 * exp["batch_size"].astype(float) / exp["images_per_s"]
    for ax, per_m, flat in ((err_ax, exp.groupby("explicit_samples")["last10_test_error"].mean(),
                             isda["last10_test_error"].mean()),
                            (cost_ax, cost.groupby(exp["explicit_samples"]).mean(),
                             (1000 * isda["batch_size"].astype(float) / isda["images_per_s"]).mean())):
        assert ax.get_xscale() == "log"
        [series] = ax.containers
        xs, ys = (np.asarray(v, dtype=float) for v in series.lines[0].get_data())
        np.testing.assert_allclose(xs, list(rs.EXPLICIT_M))
        np.testing.assert_allclose(ys, per_m.to_numpy())
        [line] = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]  # ISDA: a horizontal line
        np.testing.assert_allclose(line.get_ydata(), [flat, flat])
    assert "ms per training step" in cost_ax.get_ylabel()
    _legend_outside(fig)
    plt.close(fig)


def test_curves_keep_a_zero_error(tmp_path):
    """A small test set can be classified without error: 0 % is drawn (a symmetric-log axis, linear
    below 1 %), not dropped as a log axis would."""
    sweep_dir = tmp_path / "results" / "zero"
    for seed in range(2):
        run_dir = fx.write_run(sweep_dir, fx.make_config("zero", "digits", "resnet32", "ce", seed), 1.0)
        metrics = pd.read_csv(run_dir / "metrics.csv")
        metrics.loc[metrics.index[-3:], "test_error"] = 0.0
        metrics.to_csv(run_dir / "metrics.csv", index=False)
    runs = results.collect(sweep_dir)
    fig = draw_curves(runs, results.load_curves(sweep_dir, runs["run_id"]))
    [ax] = [a for a in fig.axes if a.get_visible()]
    assert ax.get_yscale() == "symlog" and ax.get_ylim()[0] == 0
    [line] = ax.get_lines()
    assert list(line.get_ydata()[-3:]) == [0.0, 0.0, 0.0]
    plt.close(fig)

"""Claims only where the data carry them: bold marks a winner only among comparable cells with enough
runs and a difference Welch's test supports; no p, P or interval from fewer than 3 runs a side; the
gap figure's interval is Welch's, so it excludes 0 exactly where the table's p < 0.05; an outlier run
is flagged in its cell and named under the table. Run folders are written as the engine writes them,
each run's last-10-epoch error set to a chosen value."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats as sps  # noqa: E402

from bench.report.figures import draw_gap  # noqa: E402
from bench.report.render import to_markdown  # noqa: E402
from bench.report.tables import build_tables  # noqa: E402
from bench.results import collect as results  # noqa: E402
from tests.test_report import fx, md_table  # noqa: E402


def write_cells(sweep_dir, cells: dict[tuple, list[float]], dataset: str = "cifar10") -> None:
    """``cells``: (arch, method, extra fields...) → the last-10-epoch error of each seed."""
    rng = np.random.default_rng(0)
    for (arch, method, *extra), errors in cells.items():
        for seed, err in enumerate(errors):
            cfg = fx.make_config(sweep_dir.name, dataset, arch, method, seed, **dict(extra))
            cfg["run_id"] += "".join(f"-{k}{v}" for k, v in extra)
            fx.write_run(sweep_dir, cfg, err, rng=rng, extra_result={"last10_test_error": err})


def tables_md(sweep_dir) -> str:
    return "\n".join(to_markdown(t) for t in build_tables(results.collect(sweep_dir)))


def bold_cells(md: str, title: str) -> list[tuple[str, str]]:
    header, rows = md_table(md, title)
    return [(r[0] + " " + r[1], h) for r in rows for h, c in zip(header, r) if c.startswith("**")]


def test_no_bold_on_single_runs_or_a_cell_with_nothing_to_compare(tmp_path):
    sweep_dir = tmp_path / "results" / "few"
    write_cells(sweep_dir, {("resnet32", "ce"): [8.0], ("resnet32", "isda"): [7.0],  # one run against one
                            ("resnet110", "isda"): [6.0]})  # ISDA n = 1 beside CE with no run
    md = tables_md(sweep_dir)
    assert bold_cells(md, "All runs") == [] and bold_cells(md, "CIFAR: Basic") == []
    assert "**" not in md


def test_no_bold_where_welch_does_not_support_the_difference_and_bold_where_it_does(tmp_path):
    sweep_dir = tmp_path / "results" / "noisy"
    write_cells(sweep_dir, {("resnet32", "ce"): [8.0, 8.6, 7.4], ("resnet32", "isda"): [7.9, 8.5, 7.3],
                            ("resnet110", "ce"): [6.8, 6.9, 6.7], ("resnet110", "isda"): [6.3, 6.4, 6.2]})
    md = tables_md(sweep_dir)
    assert bold_cells(md, "All runs") == [("CIFAR-10 ResNet-110", "ISDA")]


def test_bold_compares_only_cells_of_one_training_set(tmp_path):
    """A 5,000-image run does not 'beat' the 1,000-image runs: each training set has its own winner."""
    sweep_dir = tmp_path / "results" / "sizes"
    write_cells(sweep_dir, {("resnet32", "ce", ("train_size", 1000)): [20.0, 20.2, 19.8],
                            ("resnet32", "isda", ("train_size", 1000)): [18.0, 18.2, 17.8],
                            ("resnet32", "ce", ("train_size", 5000)): [12.0, 12.1, 11.9],
                            ("resnet32", "isda", ("train_size", 5000)): [11.0, 11.1, 10.9]}, dataset="fashion_mnist")
    md = tables_md(sweep_dir)
    assert bold_cells(md, "All runs") == [("Fashion-MNIST ResNet-32", "ISDA (train_size=1000)"),
                                          ("Fashion-MNIST ResNet-32", "ISDA (train_size=5000)")]


def test_no_probability_of_improvement_from_fewer_than_three_runs_and_p_beside_counted_pairs(tmp_path):
    sweep_dir = tmp_path / "results" / "p"
    isda, ce = [3.0, 4.0, 5.1], [5.2, 5.25, 5.3]  # every ISDA run beats every CE run, yet p = 0.18
    write_cells(sweep_dir, {("resnet32", "ce"): [8.0], ("resnet32", "isda"): [6.93],
                            ("resnet110", "ce"): ce, ("resnet110", "isda"): isda})
    header, rows = md_table(tables_md(sweep_dir), "CIFAR: Basic")
    gap = header.index("CIFAR-10: ISDA − CE (p, P)")
    one = next(r for r in rows if r[0] == "ResNet-32")[gap]
    assert one == "-1.07†" and "P=" not in one and "p=" not in one
    three = next(r for r in rows if r[0] == "ResNet-110")[gap]
    p = sps.ttest_ind(isda, ce, equal_var=False).pvalue
    assert three == f"{np.mean(isda) - np.mean(ce):+.2f} (p={p:.3f}, P=9/9)" and p > 0.05


def _intervals(fig: plt.Figure) -> dict[str, tuple[float, float] | None]:
    """Per y tick label of the gap figure: the drawn interval (from the error bars), or None."""
    [ax] = fig.axes
    labels = {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels()}
    out: dict[str, tuple[float, float] | None] = dict.fromkeys(labels.values())
    for container in ax.containers:
        for seg in container.lines[2][0].get_segments():
            (x0, y0), (x1, _) = seg
            out[labels[round(y0)]] = (min(x0, x1), max(x0, x1))
    return out


def test_gap_interval_is_welchs_and_agrees_with_the_tables_p_and_small_n_rule(tmp_path):
    sweep_dir = tmp_path / "results" / "gap"
    isda, ce = [1.0, 1.6, 2.6], [2.5, 2.8, 3.1]  # a percentile bootstrap excludes 0 here; Welch's p = 0.14
    write_cells(sweep_dir, {("resnet110", "ce"): ce, ("resnet110", "isda"): isda,
                            ("resnet32", "ce"): [8.0, 8.1], ("resnet32", "isda"): [7.0, 7.1]})
    runs = results.collect(sweep_dir)
    fig = draw_gap(runs)
    drawn = _intervals(fig)
    plt.close(fig)
    [two] = [v for k, v in drawn.items() if "ResNet-32" in k]
    assert two is None  # n = 2 a side: a point, no interval
    [three] = [v for k, v in drawn.items() if "ResNet-110" in k]
    ref = sps.ttest_ind(isda, ce, equal_var=False).confidence_interval(0.95)
    np.testing.assert_allclose(three, (ref.low, ref.high), rtol=1e-9)
    assert three[0] < 0 < three[1]
    header, rows = md_table("\n".join(to_markdown(t) for t in build_tables(runs)), "CIFAR: Basic")
    assert "(p=0.138," in next(r for r in rows if r[0] == "ResNet-110")[header.index("CIFAR-10: ISDA − CE (p, P)")]


def test_an_outlier_is_flagged_in_its_cell_and_named_under_the_table(tmp_path):
    sweep_dir = tmp_path / "results" / "out"
    write_cells(sweep_dir, {("resnet110", "ce"): [27.1, 27.3, 90.0], ("resnet110", "isda"): [26.5, 26.4, 26.6]},
                dataset="cifar100")
    runs = results.collect(sweep_dir)
    md = tables_md(sweep_dir)
    header, rows = md_table(md, "All runs")
    ce = rows[0][header.index("CE")]
    assert ce.endswith("(n=3, 1 outlier)")
    run_id = runs.loc[(runs["method"] == "ce") & (runs["seed"] == 2), "run_id"].item()
    note = next(line for line in md.splitlines() if line.startswith("*Outlier: "))
    assert f"{run_id} (90.00; its cell's median 27.30)" in note and "median absolute deviation" in note
    fig = draw_gap(runs)
    [label] = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    plt.close(fig)
    assert "1 outlier" in label

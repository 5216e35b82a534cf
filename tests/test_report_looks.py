"""What a reader matches across a report: one name and one colour per method in every table and
figure; at most six series in a panel; each experiment of a network (two train sizes) drawn apart."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from bench.report.figures import draw_curves, draw_gap  # noqa: E402
from bench.report.param_figures import draw_explicit, draw_lambda  # noqa: E402
from bench.report.tables import build_tables  # noqa: E402
from bench.results import collect as results  # noqa: E402
from tests.report_sweeps import cfg_of  # noqa: E402
from tests.test_report import fx  # noqa: E402

FASHION_METHODS = ("ce", "focal", "autoaugment", "isda", "large_margin", "disturblabel", "center", "lq",
                   "ce+dropout", "isda+dropout")  # sweeps/fashion_small.yaml's
SIZES = (1000, 5000)


def _collect(sweep_dir):
    runs = results.collect(sweep_dir)
    return runs, results.load_curves(sweep_dir, runs["run_id"])


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """CE, Focal, ISDA at three λ0 and explicit augmentation at two M, on one network."""
    sweep_dir = tmp_path_factory.mktemp("mixed") / "results" / "mixed"
    rng = np.random.default_rng(8)
    plan = [("ce", {}), ("focal", {})] + [("isda", {"lambda0": lam, "cov_mode": "full"}) for lam in (0.1, 0.5, 1.0)]
    plan += [("explicit", {"lambda0": 0.5, "cov_mode": "full", "explicit_samples": m}) for m in (1, 5)]
    for method, fields in plan:
        for seed in range(2):
            cfg = cfg_of("mixed", "cifar10", "resnet110", method, seed, **fields)
            fx.write_run(sweep_dir, cfg, 7.0 + rng.normal(0, 0.3), rng=rng)
    return _collect(sweep_dir)


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("fashion") / "results" / "fashion_small"
    rng = np.random.default_rng(9)
    for size in SIZES:
        for i, method in enumerate(FASHION_METHODS):
            for seed in range(3):  # n ≥ 3 a side: the gap figure draws intervals
                cfg = cfg_of("fashion_small", "fashion_mnist", "resnet32", method, seed, train_size=size)
                level = (14.0 if size == 1000 else 9.0) - 0.1 * i - (0.8 if method == "isda" else 0.0)
                fx.write_run(sweep_dir, cfg, level + rng.normal(0, 0.2), rng=rng)
    return _collect(sweep_dir)


def _name(text: str) -> str:
    """A label's method name: what precedes its parameters, n or description."""
    return re.split(r" \(|, ", text, maxsplit=1)[0]


def _legend(fig) -> dict[str, set[str]]:
    [legend] = fig.legends
    out: dict[str, set[str]] = {}
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        colour = handle.get_color()
        colour = to_hex(colour[0] if np.ndim(colour) == 2 else colour)
        out.setdefault(_name(text.get_text()), set()).add(colour)
    plt.close(fig)
    return out


def test_one_name_and_one_colour_per_method_in_every_table_and_figure(mixed):
    runs, curves = mixed
    names = {"CE", "Focal Loss", "ISDA", "Explicit"}
    used: dict[str, set[str]] = {}
    for table in build_tables(runs):
        # Methods are a table's rows, or its columns where the rows are networks.
        by_row = table.header[0] not in ("Network", "Dataset")
        labels = [row[0].text for row in table.rows] if by_row else []
        heads = [h for h in table.header[table.label_cols:] if not h.startswith(("paper", "ISDA − CE", "CIFAR"))]
        for text in labels + ([] if by_row else heads):
            used.setdefault(table.key, set()).add(_name(text.replace(" (ours)", "")))
    assert set().union(*used.values()) == names, used  # "Focal" in one table and "Focal Loss" in another
    colours: dict[str, set[str]] = {}
    for fig in (draw_curves(runs, curves), draw_lambda(runs), draw_explicit(runs)):
        for name, cs in _legend(fig).items():
            if name != "paper" and not name.startswith("open marker"):
                colours.setdefault(name, set()).update(cs)
    assert set(colours) == names
    assert all(len(cs) == 1 for cs in colours.values()), colours  # ISDA one colour in every figure
    assert len({c for cs in colours.values() for c in cs}) == len(names)  # and no two methods alike


def test_a_panel_holds_at_most_six_series_and_each_train_size_its_own(fashion):
    runs, curves = fashion
    fig = draw_curves(runs, curves)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert all(len(ax.get_lines()) <= 6 for ax in axes)
    for size in SIZES:
        mine = [ax for ax in axes if f"train_size={size}" in ax.get_title()]
        assert mine and all(f"train_size={5000 if size == 1000 else 1000}" not in ax.get_title() for ax in mine)
        # Every method of the experiment is drawn, CE and ISDA beside each group for comparison.
        assert sum(len(ax.get_lines()) for ax in mine) >= len(FASHION_METHODS)
        assert all({"#222222", "#d62728"} <= {to_hex(ln.get_color()) for ln in ax.get_lines()} for ax in mine)
    assert len(_legend(fig)) == len(FASHION_METHODS)  # one entry per method, not one per method and size


def test_the_gap_figure_shows_every_experiment_of_a_network_by_name(fashion):
    runs, _ = fashion
    fig = draw_gap(runs)
    [ax] = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 2 and all(any(f"train_size={s}" in label for label in labels) for s in SIZES)
    done = runs[runs["status"] == "completed"]
    x = ax.containers[0].lines[0].get_xdata()
    ys = ax.containers[0].lines[0].get_ydata()
    for label, y in zip(labels, sorted(ys, reverse=True)):  # labels run top-down
        size = 1000 if "train_size=1000" in label else 5000
        sel = done[done["train_size"] == size].groupby("method")["last10_test_error"].mean()
        np.testing.assert_allclose(x[list(ys).index(y)], sel["isda"] - sel["ce"])
    plt.close(fig)

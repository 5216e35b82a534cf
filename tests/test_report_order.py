"""Rows, columns and panels follow the paper's own order of networks (its tables' row order, in
bench/reference/*.csv), in every table and figure: ResNet-50, 101, 152 on ImageNet; Wide-ResNet-28-10,
Shake-Shake 2x32d, 2x112d in the augmentation table; ResNet-32 before ResNet-110."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bench.report import paper  # noqa: E402
from bench.report.figures import draw_curves, draw_gap  # noqa: E402
from bench.report.tables import build_tables  # noqa: E402
from bench.results import collect as results  # noqa: E402
from tests.report_sweeps import cfg_of  # noqa: E402
from tests.test_report import fx  # noqa: E402

IMAGENET = ("resnet152", "resnet50", "resnet101")  # written out of order on purpose
AUGMENT = ("shake_shake26_2x112d", "wrn28_10", "shake_shake26_2x32d")
CIFAR = ("resnet110", "resnet32")


def _paper_order(table: str, dataset: str) -> list[str]:
    """The paper's row order, read from its CSV (independent of bench's ordering code)."""
    df = pd.read_csv(f"bench/reference/{table}.csv")
    return list(dict.fromkeys(df.loc[df["dataset"] == dataset, "arch"]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("order")
    sweep_dir = root / "results" / "order"
    rng = np.random.default_rng(5)
    plan = [("imagenet", a, m) for a in IMAGENET for m in ("ce", "isda")]
    plan += [("cifar10", a, m) for a in AUGMENT for m in ("cutout", "isda+cutout")]
    plan += [("cifar100", a, m) for a in CIFAR for m in ("ce", "isda")]
    for ds, arch, method in plan:
        for seed in range(2):
            fx.write_run(sweep_dir, cfg_of("order", ds, arch, method, seed), 20.0 + rng.normal(), rng=rng)
    runs = results.collect(sweep_dir)
    return runs, results.load_curves(sweep_dir, runs["run_id"])


def _column(tables, key: str, col: int) -> list[str]:
    [table] = [t for t in tables if t.key == key]
    return [row[col].text for row in table.rows]


@pytest.mark.parametrize("with_paper", [True, False])
def test_tables_list_networks_in_the_papers_order(runs, with_paper):
    tables = build_tables(runs[0], with_paper=with_paper)
    imagenet = [a for a in _paper_order("imagenet", "ImageNet") if a in {paper.arch_name(x) for x in IMAGENET}]
    assert imagenet == ["ResNet-50", "ResNet-101", "ResNet-152"]
    assert _column(tables, "imagenet", 0) == imagenet
    augment = [a for a in _paper_order("cifar_augmentation", "CIFAR-10") if a in {paper.arch_name(x) for x in AUGMENT}]
    assert augment == ["Wide-ResNet-28-10", "Shake-Shake (26 2x32d)", "Shake-Shake (26 2x112d)"]
    assert _column(tables, "augmentation", 1) == augment
    main = [r for r in _column(tables, "cifar_main", 0) if r in ("ResNet-32", "ResNet-110")]
    assert main == ["ResNet-32", "ResNet-110"]
    generic = [(d, a) for d, a in zip(_column(tables, "generic", 0), _column(tables, "generic", 1))]
    assert [a for d, a in generic if d == "ImageNet"] == imagenet
    assert [a for d, a in generic if d == "CIFAR-10"] == augment
    assert [a for d, a in generic if d == "CIFAR-100"] == ["ResNet-32", "ResNet-110"]


def test_figures_draw_networks_in_the_tables_order(runs):
    done, curves = runs
    expected = [f"CIFAR-10 / {a}" for a in ("Wide-ResNet-28-10", "Shake-Shake (26 2x32d)", "Shake-Shake (26 2x112d)")]
    expected += ["CIFAR-100 / ResNet-32", "CIFAR-100 / ResNet-110"]
    expected += [f"ImageNet / ResNet-{d}" for d in (50, 101, 152)]
    fig = draw_curves(done, curves)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [t for t in dict.fromkeys(t.split(":")[0].split(",")[0] for t in titles)] == expected
    plt.close(fig)
    fig = draw_gap(done)
    [ax] = fig.axes
    labels = [t.get_text().split("\n")[0] for t in ax.get_yticklabels()]
    ys = [t.get_position()[1] for t in ax.get_yticklabels()]
    top_down = [label for _, label in sorted(zip(ys, labels), reverse=True)]
    assert top_down == [e for e in expected if "CIFAR-10 /" not in e]  # the gap needs CE and ISDA
    plt.close(fig)

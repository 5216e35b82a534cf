"""The paper beside ours in every table that reruns a paper experiment: the main table's numbers in
the smaller tables that rerun its experiments, the paper table and version each number comes from,
no rows or columns the sweep did not plan, and the λ0 figure's paper points and small-n points.
Run folders are written as the engine writes them (tests/test_results.py's writer)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.report import paper  # noqa: E402
from bench.report.param_figures import draw_lambda  # noqa: E402
from bench.results import collect as results  # noqa: E402
from tests import report_sweeps as rs  # noqa: E402
from tests.test_report import build_rich, fx, md_table  # noqa: E402
from tests.test_report_paper_csv import _md  # noqa: E402
from tests.test_report_paper_tables import read_runs  # noqa: E402

# TPAMI Table 2 (= NeurIPS 2019 Table 1 for these networks), as the issue and the paper give them.
MAIN = {("resnet110", "cifar10"): ("6.76 ± 0.34", "6.33 ± 0.19"),
        ("resnet110", "cifar100"): ("28.67 ± 0.44", "27.57 ± 0.46"),
        ("wrn28_10", "cifar10"): ("3.82 ± 0.15", "3.58 ± 0.15"),
        ("wrn28_10", "cifar100"): ("18.53 ± 0.07", "17.98 ± 0.15")}



def _delta(number: str, values) -> str:
    return f"{number} (Δ {np.mean(values) - float(number.split()[0]):+.2f})"


def test_regularizer_and_explicit_tables_show_the_main_tables_basic_and_isda(tmp_path):
    sweep_dir = rs.build_regularizers(tmp_path, seeds=2)
    df = read_runs(sweep_dir)
    md = _md(sweep_dir)
    header, rows = md_table(md, "Comparison with other regularisers")
    by_label = {r[0]: r for r in rows}
    for (arch, ds), (ce, isda) in MAIN.items():
        col = header.index(f"{paper.arch_name(arch)}: {paper.dataset_name(ds)}: paper (Δ)")
        sel = df[(df["dataset"] == ds) & (df["arch"] == arch)]
        assert by_label["CE"][col] == _delta(ce, sel[sel["method"] == "ce"]["last10_test_error"])
        assert by_label["ISDA"][col] == _delta(isda, sel[sel["method"] == "isda"]["last10_test_error"])
        assert by_label["Focal Loss"][col] == "–"  # its own number is not available here
    assert "Paper numbers for CE, ISDA: TPAMI Table 2 (mean ± std over 5 runs), the main table's" in md

    sweep_dir = rs.build_explicit(tmp_path, seeds=2, nets=rs.NETS[:1])
    df = read_runs(sweep_dir)
    header, rows = md_table(_md(sweep_dir), "Explicit vs implicit")
    assert rows[0][0] == "ISDA (implicit, M → ∞)"
    assert rows[0][2] == _delta(MAIN["resnet110", "cifar10"][1], df[df["method"] == "isda"]["last10_test_error"])
    assert all(r[2] == "–" for r in rows[1:])


def test_each_table_names_the_paper_table_and_version_of_its_numbers(tmp_path, reference):
    md = _md(build_rich(tmp_path))
    assert "Reproduces: TPAMI Table 2" in md and "Reproduces: TPAMI Table 4" in md
    assert "Paper numbers: TPAMI Table 4 (mean ± std over 5 runs)" in md
    assert "Reproduces: TPAMI Table 1" in md and "Paper numbers: TPAMI Table 1 (single numbers, no ±)" in md
    assert "Reproduces: the paper's comparison with other regularisers; its table number and numbers are not " \
           "available here" in md
    # A user's numbers name their version in their source; a table mixing sources says which rows are whose.
    (reference / "regularizers.csv").write_text("dataset,arch,method,error_mean,error_std,source\n"
                                                "CIFAR-100,Wide-ResNet-28-10,focal,18.22,0.08,NeurIPS Table 3\n")
    md = _md(build_rich(tmp_path / "again"))
    assert ("Paper numbers for Focal Loss: NeurIPS 2019 Table 3 (runs per number not stated); "
            "source: NeurIPS Table 3") in md
    assert "Paper numbers for CE, ISDA: TPAMI Table 2 (mean ± std over 5 runs)" in md
    # The one number of the main table that only the conference printed is known as such.
    dense = paper.lookup("cifar_main", "cifar10", "DenseNet-BC-190-40", method="ce")
    assert dense is not None and dense.version == "NeurIPS 2019" and dense.runs == 3 and dense.std is None
    wrn = paper.lookup("cifar_main", "cifar100", "wrn28_10", method="isda")
    assert wrn is not None and (wrn.version, wrn.runs, wrn.mean, wrn.std) == ("TPAMI", 5, 17.98, 0.15)


def test_rows_and_columns_the_sweep_did_not_plan_are_left_out(tmp_path, reference):
    """A planned network without a finished run is a row (its runs pending); the paper's other
    networks, and columns of a paper table the sweep has no run for, are not."""
    rng = np.random.default_rng(4)
    sweep_dir = tmp_path / "results" / "plan"
    planned = []
    for method in ("ce", "isda"):
        for seed in range(2):
            cfg = rs.cfg_of("plan", "cifar10", "resnet110", method, seed)
            fx.write_run(sweep_dir, cfg, 7.0, rng=rng)
            planned.append(cfg)
            planned.append(rs.cfg_of("plan", "cifar10", "wrn28_10", method, seed))  # never started
    cfg = rs.cfg_of("plan", "cifar10", "resnet110", "isda", 0, cov_mode="identity")
    fx.write_run(sweep_dir, cfg, 7.2, rng=rng)
    planned.append(cfg)
    # The paper's numbers for a column the sweep does not have.
    (reference / "ablation.csv").write_text(
        "dataset,arch,setting,error_mean,error_std,source\nCIFAR-100,ResNet-110,identity,28.0,0.3,ablation\n")
    md = _md_planned(sweep_dir, planned)
    header, rows = md_table(md, "CIFAR: Basic")
    assert [r[0] for r in rows] == ["ResNet-110", "Wide-ResNet-28-10"]
    assert rows[1][header.index("CIFAR-10: CE (ours)")] == "– (2 pending)"
    assert "DenseNet-BC-190-40, in the paper's table, is no network of this project." in md
    header, rows = md_table(md, "Ablation of ISDA")
    assert header == ["Setting", "ResNet-110: CIFAR-10: ours", "ResNet-110: CIFAR-10: paper (Δ)"]
    # Settings the sweep did not run are no rows.
    assert [r[0] for r in rows] == ["CE", "Identity matrix", "ISDA"]


def _md_planned(sweep_dir, planned) -> str:
    from bench.report.render import to_markdown
    from bench.report.tables import build_tables

    return "\n".join(to_markdown(t) for t in build_tables(results.collect(sweep_dir, planned=planned)))


def test_lambda_figure_draws_every_paper_point_and_tells_small_n_apart(tmp_path, reference):
    (reference / "lambda_sensitivity.csv").write_text(
        "dataset,arch,lambda0,error_mean,error_std,source\n"
        "CIFAR-10,ResNet-110,0.1,6.60,0.20,sensitivity figure\n"
        "CIFAR-10,ResNet-110,0.5,6.33,0.19,sensitivity figure\n"
        "CIFAR-10,ResNet-110,10,7.20,,sensitivity figure\n")
    rng = np.random.default_rng(8)
    sweep_dir = tmp_path / "results" / "lam"
    seeds = {0.25: 3, 0.5: 3, 1.0: 1, 5.0: 2}
    for lam, n in seeds.items():
        for seed in range(n):
            cfg = rs.cfg_of("lam", "cifar10", "resnet110", "isda", seed, lambda0=lam, cov_mode="full")
            fx.write_run(sweep_dir, cfg, 6.5, rng=rng)
    fig = draw_lambda(results.collect(sweep_dir))
    [ax] = [a for a in fig.axes if a.get_visible()]
    [marks] = [ln for ln in ax.get_lines() if ln.get_marker() == "s"]
    # Every λ0 the paper gives, the ones the sweep did not run included.
    assert list(marks.get_xdata()) == [0.1, 0.5, 10.0] and list(marks.get_ydata()) == [6.60, 6.33, 7.20]
    lo, hi = ax.get_xlim()
    assert lo < 0.1 and hi > 10.0
    # Points of fewer than 3 runs: open markers and no error bar; the others: filled, with a bar.
    [open_pts] = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and ln.get_markerfacecolor() == "white"]
    assert list(open_pts.get_xdata()) == [1.0, 5.0]
    drawn = [float(seg[0][0]) for c in ax.collections for seg in c.get_segments()
             if len(seg) and np.isfinite(np.asarray(seg)).all()]
    assert drawn == [0.25, 0.5]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "open marker: n < 3 runs, no std bar" in legend
    plt.close(fig)

"""The paper's numbers that do not ship: a CSV in the layout the README gives (bench.report.paper.OPTIONAL_LAYOUTS),
put where the report looks ($ISDA_BENCH_REFERENCE here), fills the table's paper cells; without it
they are "–". A CSV without the layout's columns is one clear error, before anything is written."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bench.common.errors import ConfigError  # noqa: E402
from bench.report import paper  # noqa: E402
from bench.report import write as report  # noqa: E402
from bench.report.param_figures import draw_lambda  # noqa: E402
from bench.report.render import to_markdown  # noqa: E402
from bench.report.tables import build_tables  # noqa: E402
from bench.results import collect as results  # noqa: E402
from tests import report_sweeps as rs  # noqa: E402
from tests.test_report import md_table  # noqa: E402
from tests.test_report_paper_tables import read_runs  # noqa: E402


def _md(sweep_dir) -> str:
    return "\n".join(to_markdown(t) for t in build_tables(results.collect(sweep_dir)))



def test_the_readme_names_every_layout():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name, columns in paper.OPTIONAL_LAYOUTS.items():
        assert f"bench/reference/{name}.csv" in readme
        assert ",".join(columns) in readme, name


def test_ablation_csv(tmp_path, reference):
    sweep_dir = rs.build_ablation(tmp_path, seeds=2)
    header, rows = md_table(_md(sweep_dir), "Ablation of ISDA")
    assert all(r[2] == "–" for r in rows if r[0] not in ("CE", "ISDA"))  # those two: the main table's
    (reference / "ablation.csv").write_text(
        "dataset,arch,setting,error_mean,error_std,source\n"
        "CIFAR-10,ResNet-110,identity,6.71,0.12,TPAMI ablation table\n"
        "cifar10,resnet110,constant_lambda,6.55,,TPAMI ablation table\n")
    md = _md(sweep_dir)
    header, rows = md_table(md, "Ablation of ISDA")
    df = read_runs(sweep_dir)
    identity = df[(df["dataset"] == "cifar10") & (df["arch"] == "resnet110") & (df["cov_mode"] == "identity")]
    by_label = {r[0]: r for r in rows}
    assert by_label["Identity matrix"][2] == f"6.71 ± 0.12 (Δ {identity['last10_test_error'].mean() - 6.71:+.2f})"
    assert by_label["Constant λ0"][2].startswith("6.55 (Δ ")
    assert by_label["Diagonal covariance"][2] == "–"
    assert "Paper numbers for Identity matrix, Constant λ0: TPAMI (table not named)" in md
    assert "source: TPAMI ablation table" in md and "ablation.csv adds them" not in md


def test_regularizers_csv_adds_the_generator_rows(tmp_path, reference):
    sweep_dir = rs.build_regularizers(tmp_path, seeds=2)
    (reference / "regularizers.csv").write_text(
        "dataset,arch,method,error_mean,error_std,source\n"
        "CIFAR-10,Wide-ResNet-28-10,focal,3.62,0.07,NeurIPS Table 3\n"
        "CIFAR-10,Wide-ResNet-28-10,wgan,3.81,0.08,NeurIPS Table 3\n"
        "CIFAR-100,ResNet-110,infogan,27.64,0.14,NeurIPS Table 3\n")
    md = _md(sweep_dir)
    header, rows = md_table(md, "Comparison with other regularisers")
    by_label = {r[0]: r for r in rows}
    col = header.index("Wide-ResNet-28-10: CIFAR-10: paper (Δ)")
    df = read_runs(sweep_dir)
    focal = df[(df["dataset"] == "cifar10") & (df["arch"] == "wrn28_10") & (df["method"] == "focal")]
    assert by_label["Focal Loss"][col] == f"3.62 ± 0.07 (Δ {focal['last10_test_error'].mean() - 3.62:+.2f})"
    assert by_label["WGAN"][col] == "3.81 ± 0.08" and by_label["WGAN"][col - 1] == "not run"
    assert by_label["infoGAN"][header.index("ResNet-110: CIFAR-100: paper (Δ)")] == "27.64 ± 0.14"
    assert "CGAN" not in by_label and "ACGAN" not in by_label  # no number, never run: no row
    assert [r[0] for r in rows].index("WGAN") < [r[0] for r in rows].index("ISDA")  # the paper's order
    assert "not run: generator-based augmentation is not trained here" in md


def test_lambda_csv_fills_the_table_and_the_figure(tmp_path, reference):
    sweep_dir = rs.build_lambda(tmp_path, seeds=2, nets=rs.NETS[:1])
    (reference / "lambda_sensitivity.csv").write_text(
        "dataset,arch,lambda0,error_mean,error_std,source\n"
        "CIFAR-10,ResNet-110,0.5,6.33,0.19,sensitivity figure\n"
        "CIFAR-10,ResNet-110,7.5,6.90,,sensitivity figure\n")
    header, rows = md_table(_md(sweep_dir), "ISDA's sensitivity to λ0")
    by_label = {r[0]: r for r in rows}
    assert by_label["ISDA, λ0 = 0.5"][2].startswith("6.33 ± 0.19 (Δ ")
    assert by_label["ISDA, λ0 = 7.5"][2].startswith("6.90 (Δ ")
    assert by_label["ISDA, λ0 = 1"][2] == "–"
    fig = draw_lambda(results.collect(sweep_dir))
    [ax] = [a for a in fig.axes if a.get_visible()]
    [marks] = [ln for ln in ax.get_lines() if ln.get_marker() == "s"]
    assert list(marks.get_xdata()) == [0.5, 7.5] and list(marks.get_ydata()) == [6.33, 6.90]
    plt.close(fig)


def test_explicit_csv(tmp_path, reference):
    sweep_dir = rs.build_explicit(tmp_path, seeds=2, nets=rs.NETS[:1])
    (reference / "explicit.csv").write_text(
        "dataset,arch,method,explicit_samples,error_mean,error_std,source\n"
        "CIFAR-10,ResNet-110,isda,,6.33,0.19,explicit comparison\n"
        "CIFAR-10,ResNet-110,explicit,5,6.80,0.20,explicit comparison\n")
    header, rows = md_table(_md(sweep_dir), "Explicit vs implicit")
    by_label = {r[0]: r for r in rows}
    assert by_label["ISDA (implicit, M → ∞)"][2].startswith("6.33 ± 0.19 (Δ ")
    assert by_label["Explicit, M = 5"][2].startswith("6.80 ± 0.20 (Δ ")
    assert by_label["Explicit, M = 1"][2] == "–"


def test_imagenet_neurips_csv(tmp_path, reference):
    sweep_dir = rs.build_imagenet(tmp_path)
    header, rows = md_table(_md(sweep_dir), "ImageNet (NeurIPS")
    assert rows[0][header.index("CE top-1") + 1] == "–"
    (reference / "imagenet_neurips.csv").write_text(
        "arch,method,top1_error,top5_error,source\n"
        "ResNet-50,ce,23.68,7.05,NeurIPS ImageNet table\n"
        "resnet50,isda,23.28,6.82,NeurIPS ImageNet table\n")
    md = _md(sweep_dir)
    header, rows = md_table(md, "ImageNet (NeurIPS")
    assert rows[0][header.index("CE top-1") + 1] == "23.7" and rows[0][header.index("ISDA top-1") + 1] == "23.3"
    assert rows[0][header.index("ISDA top-5") + 1] == "6.8"
    # The journal's table keeps the journal's numbers.
    header, rows = md_table(md, "ImageNet (TPAMI")
    assert rows[0][header.index("CE top-1") + 1] == "23.0"


def test_a_csv_without_its_columns_is_one_clear_error(tmp_path, reference):
    sweep_dir = rs.build_ablation(tmp_path, seeds=1)
    (reference / "ablation.csv").write_text("dataset,arch,method,error_mean\nCIFAR-10,ResNet-110,isda,6.1\n")
    runs = results.collect(sweep_dir)
    with pytest.raises(ConfigError) as info:
        report.write_report(runs, pd.DataFrame(), tmp_path / "out", formats=("md",))
    message = str(info.value)
    assert str(reference / "ablation.csv") in message and "setting" in message
    assert "dataset,arch,setting,error_mean,error_std,source" in message and "\n" not in message
    assert not (tmp_path / "out").exists()

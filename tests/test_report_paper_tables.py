"""The paper-style tables a report builds from fabricated sweeps: ablation, regularisers, λ0,
explicit augmentation, augmentation (schedule, extension rows), ImageNet per recipe; the variant a
table compares (the recipe's defaults on a tie); the precision every cell of ours names. Expected
cells are computed here from the run folders' config.yaml and result.json, independently of bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.report.render import to_markdown
from bench.report.tables import build_tables
from bench.results import collect as results
from tests import report_sweeps as rs
from tests.test_report import fx, md_table


def read_runs(sweep_dir: Path) -> pd.DataFrame:
    rows = []
    for run_dir in sorted(p for p in sweep_dir.iterdir() if (p / "result.json").is_file()):
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        rows.append({**cfg, **json.loads((run_dir / "result.json").read_text())})
    return pd.DataFrame(rows)


def cell(values: pd.Series) -> str:
    v = values.to_numpy(dtype=float)
    return f"{v.mean():.2f} (n=1" if v.size == 1 else f"{v.mean():.2f} ± {v.std(ddof=1):.2f} (n={v.size}"


def report_md(sweep_dir: Path, planned=None) -> str:
    runs = results.collect(sweep_dir, planned=planned)
    return "\n".join(to_markdown(t) for t in build_tables(runs))


def keys_of(sweep_dir: Path) -> list[str]:
    return [t.key for t in build_tables(results.collect(sweep_dir))]


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    sweep_dir = rs.build_ablation(tmp_path_factory.mktemp("abl"))
    return sweep_dir, report_md(sweep_dir), read_runs(sweep_dir)


def test_ablation_table_laid_out_like_the_paper(ablation):
    sweep_dir, md, df = ablation
    header, rows = md_table(md, "Ablation of ISDA")
    assert [r[0] for r in rows] == ["CE", "Identity matrix", "Diagonal covariance",
                                    "Single covariance matrix", "Constant λ0", "ISDA"]
    [table] = [t for t in build_tables(results.collect(sweep_dir)) if t.key == "ablation"]
    assert table.groups == [("", 1), ("ResNet-110", 4), ("Wide-ResNet-28-10", 4)]  # a network spans its datasets
    # Markdown writes the spanning network header in front of each of its columns.
    assert header[1:] == [f"{net}: {ds}: {w}" for net in ("ResNet-110", "Wide-ResNet-28-10")
                          for ds in ("CIFAR-10", "CIFAR-100") for w in ("ours", "paper (Δ)")]
    cols = [(a, d) for a in ("resnet110", "wrn28_10") for d in ("cifar10", "cifar100")]
    # Basic and ISDA rerun the main table's experiments: its numbers (TPAMI Table 2) are theirs.
    main = {("ce", "resnet110"): ("6.76 ± 0.34", "28.67 ± 0.44"),
            ("isda", "resnet110"): ("6.33 ± 0.19", "27.57 ± 0.46"),
            ("ce", "wrn28_10"): ("3.82 ± 0.15", "18.53 ± 0.07"),
            ("isda", "wrn28_10"): ("3.58 ± 0.15", "17.98 ± 0.15")}
    for row, (method, fields, _) in zip(rows, rs.ABLATION):
        paper_row = row[0] in ("CE", "ISDA")
        for i, (arch, ds) in enumerate(cols):
            sel = df[(df["dataset"] == ds) & (df["arch"] == arch) & (df["method"] == method)]
            for key, value in fields.items():
                sel = sel[sel[key] == value]
            assert cell(sel["last10_test_error"]) in row[1 + 2 * i], (row[0], arch, ds)
            if paper_row:
                mean = sel["last10_test_error"].mean()
                number = main[method, arch][ds == "cifar100"]
                assert row[2 + 2 * i] == f"{number} (Δ {mean - float(number.split()[0]):+.2f})"
            else:
                assert row[2 + 2 * i] == "–"  # no ablation.csv ships
    # The main table compares the paper's ISDA (full covariance, linear λ), not another setting.
    header, rows = md_table(md, "CIFAR: Basic")
    r110 = next(r for r in rows if r[0] == "ResNet-110")
    full = df[(df["dataset"] == "cifar10") & (df["arch"] == "resnet110") & (df["method"] == "isda")
              & (df["cov_mode"] == "full") & (df["lambda_schedule"] == "linear")]
    assert cell(full["last10_test_error"]) in r110[header.index("CIFAR-10: ISDA (ours)")]
    assert "bench/reference/ablation.csv adds them" in md


def test_tie_break_prefers_the_recipes_defaults_over_alphabetical_order(tmp_path):
    """Equal completed runs: λ0 nearest the recipe's (7.5 for ResNet-50 on ImageNet), and the
    paper's ISDA among ablation settings ("constant" sorts before "linear")."""
    sweep_dir = rs.build_imagenet(tmp_path)
    df = read_runs(sweep_dir)
    header, rows = md_table(report_md(sweep_dir), "ImageNet (TPAMI")
    isda = df[(df["method"] == "isda") & (df["recipe"] == "tpami")]
    assert set(isda["lambda0"]) == {0.5, 7.5} and (isda["lambda0"] == 0.5).sum() == (isda["lambda0"] == 7.5).sum()
    assert cell(isda[isda["lambda0"] == 7.5]["last10_test_error"]) in rows[0][header.index("ISDA top-1")]

    rng = np.random.default_rng(0)
    sweep_dir = tmp_path / "results" / "tie"
    for schedule, level in (("constant", 9.0), ("linear", 8.0)):
        for seed in range(2):
            cfg = rs.cfg_of("tie", "cifar10", "resnet110", "isda", seed, lambda_schedule=schedule)
            fx.write_run(sweep_dir, cfg, level, rng=rng)
    df = read_runs(sweep_dir)
    header, rows = md_table(report_md(sweep_dir), "CIFAR: Basic")
    row = next(r for r in rows if r[0] == "ResNet-110")
    linear = df[df["lambda_schedule"] == "linear"]["last10_test_error"]
    assert cell(linear) in row[header.index("CIFAR-10: ISDA (ours)")]


def test_regularizers_table(tmp_path):
    sweep_dir = rs.build_regularizers(tmp_path, seeds=2)
    md = report_md(sweep_dir)
    df = read_runs(sweep_dir)
    header, rows = md_table(md, "Comparison with other regularisers")
    assert [r[0] for r in rows] == ["CE", "Large Margin", "Disturb Label", "Focal Loss", "Center Loss",
                                    "Lq Loss", "CE+Dropout", "ISDA", "ISDA+Dropout"]
    cols = [(a, d) for a in ("resnet110", "wrn28_10") for d in ("cifar10", "cifar100")]
    for row, (method, _) in zip(rows, [m for m in rs.REGULARIZERS if m[0] != "ce+dropout"][:6]):
        for i, (arch, ds) in enumerate(cols):
            sel = df[(df["dataset"] == ds) & (df["arch"] == arch) & (df["method"] == method)]
            assert cell(sel["last10_test_error"]) in row[1 + 2 * i]
    # No bold: two runs per cell carry no claim of a winner.
    assert not any(c.startswith("**") for r in rows for c in r)
    assert "WGAN" not in md  # the generator rows come only from the paper's CSV
    assert "extension: no counterpart in the paper's table" not in md  # every row is one of the paper's


def test_lambda_and_explicit_tables(tmp_path):
    sweep_dir = rs.build_lambda(tmp_path, seeds=2, nets=rs.NETS[:1])
    df = read_runs(sweep_dir)
    header, rows = md_table(report_md(sweep_dir), "ISDA's sensitivity to λ0")
    assert [r[0] for r in rows] == ["CE"] + [f"ISDA, λ0 = {v:g}" for v in rs.LAMBDAS]
    assert cell(df[df["method"] == "ce"]["last10_test_error"]) in rows[0][1]
    assert rows[0][2].startswith("6.76 ± 0.34")  # CE's paper number: the main table's Basic
    for row, lam in zip(rows[1:], rs.LAMBDAS):
        sel = df[(df["method"] == "isda") & (df["lambda0"] == lam)]
        assert cell(sel["last10_test_error"]) in row[1] and row[2] == "–"

    sweep_dir = rs.build_explicit(tmp_path, seeds=3, nets=rs.NETS[:1])
    df = read_runs(sweep_dir)
    md = report_md(sweep_dir)
    header, rows = md_table(md, "Explicit vs implicit")
    assert [r[0] for r in rows] == ["ISDA (implicit, M → ∞)"] + [f"Explicit, M = {m}" for m in rs.EXPLICIT_M]
    cost = 1000 * df["batch_size"] / df["images_per_s"]
    for row, m in zip(rows, (None, *rs.EXPLICIT_M)):
        sel = df[df["method"] == "isda"] if m is None else df[df["explicit_samples"] == m]
        assert cell(sel["last10_test_error"]) in row[1]
        c = cost[sel.index]
        assert row[-1] == f"{c.mean():.{max(0, 2 - int(np.floor(np.log10(c.mean()))))}f} ± " \
                          f"{c.std(ddof=1):.{max(0, 2 - int(np.floor(np.log10(c.mean()))))}f}"
    assert "ms per training step: ResNet-110 · CIFAR-10" in header[-1]


def test_augmentation_table_schedule_extension_and_randaugment_note(tmp_path):
    rng = np.random.default_rng(2)
    sweep_dir = tmp_path / "results" / "aug"
    for arch, schedule in (("wrn28_10", "cosine"), ("resnet110", "step")):
        for method in ("cutout", "isda+cutout", "randaugment", "isda+randaugment"):
            for seed in range(2):
                fx.write_run(sweep_dir, fx.make_config("aug", "cifar100", arch, method, seed, schedule=schedule),
                             18.0, rng=rng)
    header, rows = md_table(report_md(sweep_dir), "Augmentation")
    assert header[:3] == ["Dataset", "Architecture", "Schedule"]
    by_arch = {r[1]: r for r in rows}
    assert by_arch["Wide-ResNet-28-10"][2] == "cosine"
    assert by_arch["ResNet-110 (extension)"][2] == "step"  # the paper's table has no ResNet-110 row
    md = report_md(sweep_dir)
    assert "RandAugment (N, M): the authors did not publish theirs; ours are an assumption" in md

    # One augmentation without its ISDA twin and without a paper number: no table (the generic one shows it).
    lone = tmp_path / "results" / "lone"
    for seed in range(2):
        fx.write_run(lone, fx.make_config("lone", "cifar10", "resnet110", "autoaugment", seed), 5.0, rng=rng)
    assert keys_of(lone) == ["generic"]


def test_imagenet_recipes_are_separate_tables(tmp_path):
    sweep_dir = rs.build_imagenet(tmp_path)
    assert keys_of(sweep_dir) == ["generic", "imagenet", "imagenet_neurips"]
    md = report_md(sweep_dir)
    df = read_runs(sweep_dir)
    for title, recipe in (("ImageNet (TPAMI", "tpami"), ("ImageNet (NeurIPS", "neurips")):
        header, rows = md_table(md, title)
        ce = df[(df["method"] == "ce") & (df["recipe"] == recipe)]
        assert cell(ce["last10_test_error"]) in rows[0][header.index("CE top-1")]
    header, rows = md_table(md, "ImageNet (NeurIPS")
    assert rows[0][header.index("CE top-1") + 1] == "–" and "paper (8×V100)" not in header
    header, _ = md_table(md, "All runs")
    assert "CE (recipe=neurips)" in header and "CE (recipe=tpami)" in header


def test_every_cell_names_its_precision(tmp_path):
    rng = np.random.default_rng(5)
    sweep_dir = tmp_path / "results" / "prec"
    # CE: all fp32; ISDA: two bf16 runs and one fp32 run in one cell.
    for method, precisions in (("ce", ("fp32",) * 3), ("isda", ("bf16", "bf16", "fp32"))):
        for seed, precision in enumerate(precisions):
            fx.write_run(sweep_dir, fx.make_config("prec", "cifar10", "resnet32", method, seed), 7.0, rng=rng,
                         extra_result={"precision": precision})
    md = report_md(sweep_dir)
    header, rows = md_table(md, "All runs")
    assert rows[0][header.index("CE")].endswith("(n=3; fp32)")
    assert rows[0][header.index("ISDA")].rstrip("*").endswith("(n=3; 2 bf16, 1 fp32)")
    assert "Precision differs between cells" in md
    # A table whose cells share one precision says it once.
    uniform = tmp_path / "results" / "uniform"
    for seed in range(2):
        fx.write_run(uniform, fx.make_config("u", "cifar10", "resnet32", "ce", seed), 7.0, rng=rng,
                     extra_result={"precision": "bf16"})
    md = report_md(uniform)
    header, rows = md_table(md, "All runs")
    assert rows[0][2].replace("*", "").endswith("(n=2)†")
    assert "Precision: bf16 (bfloat16 autocast) in every cell of ours" in md


def test_a_field_the_code_does_not_know_still_makes_its_own_cells(tmp_path):
    """A plugin's parameter whose plugin is not imported here: its values come from config.yaml,
    and runs that differ in it are never averaged into one cell."""
    rng = np.random.default_rng(6)
    sweep_dir = tmp_path / "results" / "plugin"
    for smoothing, level in ((0.1, 7.0), (0.2, 9.0)):
        for seed in range(2):
            cfg = rs.cfg_of("plugin", "cifar10", "resnet32", "label_smoothing", seed, smoothing=smoothing)
            fx.write_run(sweep_dir, cfg, level, rng=rng)
    runs = results.collect(sweep_dir)
    assert "smoothing" in runs.attrs["config_keys"]
    df = read_runs(sweep_dir)
    header, rows = md_table(report_md(sweep_dir), "All runs")
    for smoothing in (0.1, 0.2):
        column = header.index(f"label_smoothing (smoothing={smoothing:g})")
        assert cell(df[df["smoothing"] == smoothing]["last10_test_error"]) in rows[0][column]

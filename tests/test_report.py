"""bench.report.write: tables, figures and the three output formats, checked against independent
pandas/scipy computations on fixture run directories (written like the training engine does)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from importlib import resources
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from bench.common.errors import ConfigError
from bench.report import write as report
from bench.results import collect as results


def _load_fixtures():
    # The run-directory writer lives in test_results.py; load it by path so this works under any
    # pytest import mode and whether or not tests/ is a package.
    spec = importlib.util.spec_from_file_location(
        "_run_fixtures", Path(__file__).with_name("test_results.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


fx = _load_fixtures()


def build_rich(root: Path) -> Path:
    """CIFAR-100 WRN-28-10 with every baseline and a two-value λ0 sweep, plus ImageNet ResNet-50."""
    rng = np.random.default_rng(99)
    sweep_dir = root / "results" / "rich"
    levels = {
        "ce": 19.0,
        "focal": 18.8,
        "cutout": 18.2,
        "isda+cutout": 17.3,
        "randaugment": 17.4,
        "isda+randaugment": 16.2,
        "isda": 18.1,
    }
    for method, level in levels.items():
        for seed in range(3):
            cfg = fx.make_config("rich", "cifar100", "wrn28_10", method, seed)
            fx.write_run(sweep_dir, cfg, level + rng.normal(0, 0.2), rng=rng)
    for seed in range(2):
        cfg = fx.make_config("rich", "cifar100", "wrn28_10", "isda", seed, lambda0=0.25)
        fx.write_run(sweep_dir, cfg, 18.4 + rng.normal(0, 0.2), rng=rng)
    for method, level, wall in (("ce", 23.0, 1000.0), ("isda", 22.0, 1080.0)):
        for seed in range(2):
            cfg = fx.make_config("rich", "imagenet", "resnet50", method, seed)
            fx.write_run(
                sweep_dir,
                cfg,
                level + rng.normal(0, 0.2),
                rng=rng,
                extra_result={
                    "last10_top5_test_error": level / 3.5 + rng.normal(0, 0.05),
                    "wall_time_s": wall + seed,
                },
            )
    return sweep_dir


def _report(root: Path, sweep_dir: Path, planned=None, **kw):
    runs = results.collect(sweep_dir, planned=planned)
    curves = results.load_curves(sweep_dir, runs["run_id"])
    out = root / "reports" / sweep_dir.name
    paths = report.write_report(runs, curves, out, **kw)
    return runs, out, paths


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    root = tmp_path_factory.mktemp("basic")
    sweep_dir, planned = fx.build_sweep(root)
    runs, out, paths = _report(root, sweep_dir, planned, formats=("md", "tex", "html"))
    return runs, out, paths


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    root = tmp_path_factory.mktemp("rich")
    sweep_dir = build_rich(root)
    runs, out, paths = _report(root, sweep_dir, formats=("md", "tex", "html"))
    return runs, out, paths


def md_table(md: str, title_start: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the Markdown table under the '### <title>' heading."""
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("### " + title_start))
    body = []
    for ln in lines[start + 1 :]:
        if ln.startswith("|"):
            body.append([c.strip() for c in ln.strip().strip("|").split(" | ")])
        elif body:
            break
    return body[0], body[2:]


def expected_cells(runs_dir: Path) -> pd.DataFrame:
    """Independent of bench: read every result.json, group completed runs."""
    rows = []
    for path in runs_dir.glob("*/result.json"):
        try:
            rows.append(pd.read_json(path, typ="series"))
        except ValueError:
            continue  # the corrupt fixture
    df = pd.DataFrame(rows)
    done = df[df["status"] == "completed"]
    return (
        done.groupby(["dataset", "arch", "method"])["last10_test_error"]
        .agg(mean="mean", std=lambda s: s.std(ddof=1), n="count")
        .reset_index()
    )


def _fmt_cell(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} (n=1" if n == 1 else f"{mean:.2f} ± {std:.2f} (n={n}"


def test_files_written(basic):
    _, out, paths = basic
    names = {p.relative_to(out).as_posix() for p in paths}
    assert {
        "report.md",
        "report.tex",
        "report.html",
        "figures/curves.png",
        "figures/curves.pdf",
        "figures/gap.png",
        "figures/gap.pdf",
    } <= names
    assert all(p.stat().st_size > 0 for p in paths)
    assert not list(out.rglob(".*.tmp"))


def test_generic_table_matches_groupby(basic):
    runs, out, _ = basic
    md = (out / "report.md").read_text()
    header, rows = md_table(md, "All runs")
    assert header[:2] == ["Dataset", "Architecture"]
    exp = expected_cells(out.parent.parent / "results" / out.name)
    names = {
        "cifar10": "CIFAR-10",
        "cifar100": "CIFAR-100",
        "resnet32": "ResNet-32",
        "ce": "CE",
        "isda": "ISDA",
    }
    checked = 0
    for _, e in exp.iterrows():
        row = next(r for r in rows if r[0] == names[e["dataset"]] and r[1] == names[e["arch"]])
        cell = row[header.index(names[e["method"]])]
        assert _fmt_cell(e["mean"], e["std"], int(e["n"])) in cell
        checked += 1
    assert checked == 4
    # Bold on the lower mean of a row whose cells both have n >= 3 (and differ by Welch's p < 0.05), and only there.
    for (ds, _arch), grp in exp.groupby(["dataset", "arch"]):
        best = grp.loc[grp["mean"].idxmin(), "method"] if (grp["n"] >= 3).all() else None
        row = next(r for r in rows if r[0] == names[ds])
        for method in grp["method"]:
            assert row[header.index(names[method])].startswith("**") == (method == best)
    assert any(r[0] == "CIFAR-10" and any(c.startswith("**") for c in r) for r in rows)


def test_partial_sweep_counts(basic):
    _, out, _ = basic
    md = (out / "report.md").read_text()
    header, rows = md_table(md, "All runs")
    c100 = next(r for r in rows if r[0] == "CIFAR-100")
    assert "1 diverged" in c100[header.index("CE")]
    assert "1 interrupted" in c100[header.index("ISDA")] and "1 pending" in c100[header.index("ISDA")]
    top = md.split("## Tables")[0]
    assert "13 in total" in top and "1 pending" in top and "1 interrupted" in top and "1 diverged" in top
    assert "1 failed" in top and "1 failed" in c100[header.index("CE")]  # the corrupt result.json: counted once
    assert "cifar100-resnet32-ce-lNone-s3 (failed): result.json cannot be read" in top  # and named
    assert "How to read" in top and "percent" in top
    # n < 3 is flagged with a dagger and a footnote.
    assert "†" in c100[header.index("CE")]
    assert "n < 3" in md


def _paper_rows() -> pd.DataFrame:
    with resources.as_file(resources.files("bench") / "reference" / "cifar_main.csv") as path:
        return pd.read_csv(path)


def test_main_table_paper_beside_ours(basic):
    runs, out, _ = basic
    md = (out / "report.md").read_text()
    header, rows = md_table(md, "CIFAR: Basic")
    row = next(r for r in rows if r[0] == "ResNet-32")
    assert row[1] == "0.5M"
    paper = _paper_rows()
    done = runs[(runs["status"] == "completed") & (runs["dataset"] == "cifar10")]
    ce = done[done["method"] == "ce"]["last10_test_error"].to_numpy()
    isda = done[done["method"] == "isda"]["last10_test_error"].to_numpy()
    for label, ours, method in (("CE (ours)", ce, "Basic (CE)"), ("ISDA (ours)", isda, "ISDA")):
        col = header.index(f"CIFAR-10: {label}")
        assert f"{ours.mean():.2f} ± {ours.std(ddof=1):.2f} (n=3)" in row[col]
        p = paper[
            (paper["dataset"] == "CIFAR-10") & (paper["arch"] == "ResNet-32") & (paper["method"] == method)
        ].iloc[0]
        # The paper's value sits in the next column, with Δ = ours − paper.
        assert (
            row[col + 1]
            == f"{p['error_mean']:.2f} ± {p['error_std']:.2f} (Δ {ours.mean() - p['error_mean']:+.2f})"
        )
    gap = row[header.index("CIFAR-10: ISDA − CE (p, P)")]
    p_welch = sps.ttest_ind(isda, ce, equal_var=False).pvalue
    won = sum((x < y) + 0.5 * (x == y) for x in isda for y in ce)
    assert gap.startswith(f"{isda.mean() - ce.mean():+.2f} (p={p_welch:.3f}, P={won:g}/{len(isda) * len(ce)})")
    # The paper's other networks are named under the table, not shown as rows of runs to come.
    assert [r[0] for r in rows] == ["ResNet-32"]
    assert "The paper's table also has ResNet-110," in md and "not in this sweep." in md
    assert "Paper numbers: TPAMI Table 2 (mean ± std over 5 runs)" in md


def test_latex(basic):
    _, out, _ = basic
    tex = (out / "report.tex").read_text()
    for token in (
        r"\documentclass",
        r"\usepackage{booktabs}",
        r"\toprule",
        r"\midrule",
        r"\bottomrule",
        r"\pm",
        r"\begin{document}",
        r"\end{document}",
        r"\includegraphics",
    ):
        assert token in tex
    # Three tables (the verdict, all runs, the main table), the main one in parts (bench.report.latex
    # splits a table too wide for the page).
    assert tex.count(r"\label{tab:") == 3 and tex.count(r"\begin{table}") == tex.count(r"\end{table}") > 3
    body = tex.replace(r"\{", "").replace(r"\}", "")
    assert body.count("{") == body.count("}")
    assert "±" not in tex and "†" not in tex  # translated to TeX
    assert re.search(r"\\textbf\{[0-9.]+ \$\\pm\$", tex)


def test_html(basic):
    _, out, _ = basic
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<img alt=") == 2 and 'src="data:image/png;base64,' in page
    assert "<strong>" in page and "<table" in page
    assert 'src="figures/' not in page  # self-contained


def test_figures_are_real_images(basic):
    _, out, _ = basic
    for name in ("curves.png", "gap.png"):
        img = mpimg.imread(out / "figures" / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert float(img[..., :3].var()) > 1e-3
    assert (out / "figures" / "curves.pdf").read_bytes().startswith(b"%PDF")
    md = (out / "report.md").read_text()
    assert "](figures/curves.png)" in md and "](figures/gap.pdf)" in md


def test_bad_format(tmp_path, basic):
    runs, _, _ = basic
    with pytest.raises(ConfigError) as info:
        report.write_report(runs, pd.DataFrame(), tmp_path / "r", formats=("md", "docx"))
    assert info.value.key == "format" and info.value.value == "docx"
    assert not (tmp_path / "r").exists()  # nothing written
    assert report.parse_formats("md, TEX") == ["md", "tex"]


def test_rich_tables(rich):
    runs, out, paths = rich
    md = (out / "report.md").read_text()
    done = runs[runs["status"] == "completed"]
    # λ0 varies for ISDA: the generic table splits it, the paper tables pick λ0=0.5 (most runs).
    header, rows = md_table(md, "All runs")
    assert "ISDA (λ0=0.25)" in header and "ISDA (λ0=0.5)" in header
    assert "ISDA uses the runs with λ0=0.5" in md
    # The regularisers' table: methods as rows; Focal has no paper value (no regularizers.csv ships).
    header, rows = md_table(md, "Comparison with other regularisers")
    assert [r[0] for r in rows] == ["CE", "Focal Loss", "ISDA"]  # augmentations are not regularisers
    focal = done[(done["method"] == "focal") & (done["dataset"] == "cifar100")]["last10_test_error"]
    assert rows[1][1:] == [f"{focal.mean():.2f} ± {focal.std(ddof=1):.2f} (n=3)", "–"]
    # Cutout's paper value (TPAMI augmentation table) sits beside ours in the augmentation table.
    header, rows = md_table(md, "Augmentation")
    row = next(r for r in rows if r[1] == "Wide-ResNet-28-10")
    cut = done[(done["method"] == "cutout") & (done["dataset"] == "cifar100")]["last10_test_error"]
    assert row[header.index("Cutout") + 1] == f"18.05 ± 0.25 (Δ {cut.mean() - 18.05:+.2f})"
    # Augmentation table: each augmentation without and with ISDA, and the gap.
    header, rows = md_table(md, "Augmentation")
    assert {"RandAugment", "RandAugment+ISDA", "RandAugment+ISDA − RandAugment"} <= set(header)
    ra = done[done["method"] == "randaugment"]["last10_test_error"].to_numpy()
    ra_isda = done[done["method"] == "isda+randaugment"]["last10_test_error"].to_numpy()
    gap = rows[0][header.index("RandAugment+ISDA − RandAugment")]
    assert gap.startswith(
        f"{ra_isda.mean() - ra.mean():+.2f} (p={sps.ttest_ind(ra_isda, ra, equal_var=False).pvalue:.3f}"
    )
    # ImageNet: top-1, top-5 and the time overhead, beside the paper's.
    header, rows = md_table(md, "ImageNet")
    row = rows[0]
    assert row[0] == "ResNet-50"
    inet = done[done["dataset"] == "imagenet"]
    wall = inet.groupby("method")["wall_time_s"].mean()
    assert row[header.index("ISDA time overhead")] == f"{100 * (wall['isda'] / wall['ce'] - 1):+.1f}%"
    assert row[header.index("paper (8×V100)")] == "+7.6%"
    top5 = inet[inet["method"] == "isda"]["last10_top5_test_error"]
    assert f"{top5.mean():.2f} ± {top5.std(ddof=1):.2f} (n=2)" in row[header.index("ISDA top-5")]
    assert "†" in row[header.index("ISDA top-1")]  # n = 2 < 3
    # The λ0 figure appears because one architecture ran two λ0 values.
    assert (out / "figures" / "lambda.png").exists()
    img = mpimg.imread(out / "figures" / "lambda.png")
    assert float(img[..., :3].var()) > 1e-3


def test_without_paper(tmp_path, rich):
    runs, _, _ = rich
    report.write_report(runs, pd.DataFrame(), tmp_path / "np", formats=("md",), paper=False)
    md = (tmp_path / "np" / "report.md").read_text()
    assert "paper (Δ)" not in md and "Paper source" not in md
    assert not (tmp_path / "np" / "report.html").exists()
    # No curves → no learning-curve figure, but the tables are still there.
    assert not (tmp_path / "np" / "figures" / "curves.png").exists()
    assert "### All runs" in md


def test_empty_sweep(tmp_path):
    runs = results.collect(tmp_path / "none")
    paths = report.write_report(runs, pd.DataFrame(), tmp_path / "out", formats=("md", "html", "tex"))
    assert {p.name for p in paths} == {"report.md", "report.tex", "report.html"}
    assert "### All runs" in (tmp_path / "out" / "report.md").read_text()


def test_every_architecture_has_the_paper_name_its_tables_use():
    """The paper's numbers are joined on these names: one missing leaves a row without them."""
    from bench.experiment.archs import ARCHS
    from bench.report import paper

    # paper_params finds a table row through the architecture's display name only: a name the tables
    # do not use leaves None.
    assert {a: paper.paper_params(a) for a in ARCHS} == {a: info.paper_params for a, info in ARCHS.items()}
    imagenet = paper.paper_imagenet("densenet264", "isda")
    assert imagenet is not None and paper.paper_params("densenet264") == "33.3M"


def test_runs_differing_in_any_experiment_field_are_never_averaged_into_one_cell(tmp_path):
    """An lr axis (or isda_sync, epochs, ...) splits the cells; a value that differs only between
    architectures, as recipes' lr does, does not."""
    rng = np.random.default_rng(5)
    sweep_dir = tmp_path / "results" / "axes"
    level = {("ce", 0.1): 30.0, ("ce", 0.01): 34.0, ("isda", 0.1): 29.0, ("isda", 0.01): 33.0}
    for (method, lr), mean in level.items():
        for seed in range(3):
            cfg = fx.make_config("axes", "cifar100", "resnet32", method, seed, lr=lr)
            cfg["run_id"] += f"-lr{lr}"
            fx.write_run(sweep_dir, cfg, mean + rng.normal(0, 0.1), rng=rng)
    _, out, _ = _report(tmp_path, sweep_dir, formats=("md",))
    header, rows = md_table((out / "report.md").read_text(), "All runs")
    for method, lr in level:
        errors = [json.loads((d / "result.json").read_text())["last10_test_error"] for d in sweep_dir.iterdir()
                  if yaml.safe_load((d / "config.yaml").read_text())["lr"] == lr and f"-{method}-" in d.name]
        cell = rows[0][header.index(f"{'CE' if method == 'ce' else 'ISDA'} (lr={lr})")]
        assert len(errors) == 3 and _fmt_cell(np.mean(errors), np.std(errors, ddof=1), 3) in cell, cell

    plain = tmp_path / "results" / "recipes"
    for arch, lr in (("resnet32", 0.1), ("wrn28_10", 0.2)):
        for method in ("ce", "isda"):
            for seed in range(2):
                fx.write_run(plain, fx.make_config("recipes", "cifar100", arch, method, seed, lr=lr), 20.0, rng=rng)
    _, out, _ = _report(tmp_path, plain, formats=("md",))
    header, _ = md_table((out / "report.md").read_text(), "All runs")
    assert header[2:4] == ["CE", "ISDA"]

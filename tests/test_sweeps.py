"""The paper's experiments as sweep files: the right matrix, the paper's recipes, a named table."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.experiment.recipes import AUGMENT_SCHEDULES, CIFAR
from bench.launch.profiles import load_profile
from bench.methods import parse_method
from bench.sweep.spec import load_sweep

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
NINE = {"resnet32", "resnet110", "se_resnet110", "wrn16_8", "wrn28_10", "resnext29_8x64d",
        "densenet_bc_100_12", "shake_shake26_2x32d", "shake_shake26_2x112d"}
PAPER_SWEEPS = {"cifar_main": 180, "cifar_baselines": 140, "cifar_augmentation": 156,
                "lambda_sensitivity": 220, "ablation": 120, "explicit": 120}


@pytest.mark.parametrize("name, n", sorted(PAPER_SWEEPS.items()))
def test_paper_sweeps_load_use_the_recipes_and_name_their_table(name, n):
    path = SWEEPS / f"{name}.yaml"
    sweep = load_sweep(path)
    assert sweep.name == name and len(sweep.runs) == n
    comment = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    assert re.search(r"Table \d|sensitivity|ablation study|comparison of explicit", comment), \
        "each file says which paper table it reproduces"
    for cfg in sweep.runs:
        recipe = CIFAR[cfg.arch]
        assert cfg.dataset in ("cifar10", "cifar100")
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay) == (
            recipe.epochs, recipe.batch_size, recipe.lr, recipe.weight_decay), cfg.slug
        assert cfg.drop_rate == recipe.drop_rate
        row = AUGMENT_SCHEDULES.get((cfg.arch, parse_method(cfg.method).augment))
        if row is not None and row.schedule == "cosine":  # the augmentation table's own schedule
            assert cfg.schedule == "cosine" and cfg.milestones == (), cfg.slug
        else:
            assert (cfg.schedule, tuple(cfg.milestones)) == (recipe.schedule, recipe.milestones), cfg.slug
    prof = load_profile(sweep.profile, sweep.path)
    assert sweep.cluster == "slurm" and prof.gpus_per_node == 1  # one GPU per run, whatever the batch


def test_cifar_main_is_nine_archs_two_datasets_ce_and_isda_five_seeds():
    sweep = load_sweep(SWEEPS / "cifar_main.yaml")
    assert {c.arch for c in sweep.runs} == NINE
    cells = Counter((c.dataset, c.arch, c.method, c.lambda0) for c in sweep.runs)
    assert len(cells) == 9 * 2 * 2 and set(cells.values()) == {5}
    assert {(c.method, c.lambda0) for c in sweep.runs} == {("ce", None), ("isda", 0.5)}
    assert {c.batch_size for c in sweep.runs if c.arch == "densenet_bc_100_12"} == {64}


def test_baselines_methods():
    sweep = load_sweep(SWEEPS / "cifar_baselines.yaml")
    assert {c.arch for c in sweep.runs} == {"resnet110", "wrn28_10"}
    assert {c.method for c in sweep.runs} == {"ce", "focal", "cutout", "autoaugment", "isda", "isda+cutout",
                                              "isda+autoaugment"}
    assert {(c.focal_gamma, c.param("focal_alpha")) for c in sweep.runs if c.method == "focal"} == {(1.0, 0.5)}


def test_augmentation_table_seeds_five_except_the_unique_cifar10_numbers_of_the_largest_shake_shake():
    sweep = load_sweep(SWEEPS / "cifar_augmentation.yaml")
    seeds = {(c.dataset, c.arch): set() for c in sweep.runs}
    for c in sweep.runs:
        seeds[(c.dataset, c.arch)].add(c.seed)
    # The paper gives a std (five runs) everywhere but for Shake-Shake 2x112d on CIFAR-10.
    assert seeds.pop(("cifar10", "shake_shake26_2x112d")) == {0}
    assert all(s == set(range(5)) for s in seeds.values()) and len(seeds) == 5
    assert {c.method for c in sweep.runs} == {"cutout", "isda+cutout", "autoaugment", "isda+autoaugment",
                                              "randaugment", "isda+randaugment"}


@pytest.mark.parametrize("name", ["cifar_augmentation", "cifar_baselines"])
def test_every_augmentation_row_runs_the_schedule_the_table_gives_it(name):
    sweep = load_sweep(SWEEPS / f"{name}.yaml")
    rows = 0
    for cfg in sweep.runs:
        row = AUGMENT_SCHEDULES.get((cfg.arch, parse_method(cfg.method).augment))
        if row is not None:
            rows += 1
            assert cfg.schedule == row.schedule, cfg.slug
    assert rows == (156 if name == "cifar_augmentation" else 40)
    text = (SWEEPS / f"{name}.yaml").read_text()
    assert "cosine" in text and "--cos_lr" in text  # the file says which schedule and why


def test_randaugment_rows_take_the_randaugment_papers_values_and_the_file_says_so():
    sweep = load_sweep(SWEEPS / "cifar_augmentation.yaml")
    got = {(c.dataset, c.arch, c.randaugment_n, c.randaugment_m) for c in sweep.runs if "randaugment" in c.method}
    assert got == {("cifar10", "wrn28_10", 3, 5), ("cifar100", "wrn28_10", 2, 14),
                   *{(d, a, 3, 9) for d in ("cifar10", "cifar100")
                     for a in ("shake_shake26_2x32d", "shake_shake26_2x112d")}}
    assert "Cubuk et al. 2020" in (SWEEPS / "cifar_augmentation.yaml").read_text()


def test_baselines_label_the_rows_without_a_paper_counterpart_as_extensions():
    sweep = load_sweep(SWEEPS / "cifar_baselines.yaml")
    assert "extension" in sweep.description.lower()
    assert re.search(r"Extensions.*ResNet-110 with Cutout, AutoAugment", (SWEEPS / "cifar_baselines.yaml").read_text())


def test_ablation_rows_share_ce_and_full_isda_with_cifar_main():
    sweep = load_sweep(SWEEPS / "ablation.yaml")
    rows = Counter((c.method, c.cov_mode, c.param("lambda_schedule")) for c in sweep.runs)
    assert rows == {("ce", None, None): 20, ("isda", "identity", "linear"): 20, ("isda", "diagonal", "linear"): 20,
                    ("isda", "shared", "linear"): 20, ("isda", "full", "linear"): 20, ("isda", "full", "constant"): 20}
    assert {c.arch for c in sweep.runs} == {"resnet110", "wrn28_10"} and {c.seed for c in sweep.runs} == set(range(5))
    main = {c.run_id for c in load_sweep(SWEEPS / "cifar_main.yaml").runs}
    same = {c.run_id for c in sweep.runs if c.method == "ce" or (c.cov_mode, c.param("lambda_schedule")) == (
        "full", "linear")}
    assert len(same) == 40 and same <= main


def test_explicit_sweep_compares_isda_with_explicit_at_five_sample_counts():
    sweep = load_sweep(SWEEPS / "explicit.yaml")
    rows = Counter((c.method, c.param("explicit_samples")) for c in sweep.runs)
    assert rows == {("isda", None): 20, **{("explicit", m): 20 for m in (1, 2, 5, 10, 20)}}
    explicit = [c for c in sweep.runs if c.method == "explicit"]
    assert {(c.lambda0, c.cov_mode, c.param("lambda_schedule")) for c in explicit} == {(0.5, "full", "linear")}


def test_lambda_sensitivity_values():
    sweep = load_sweep(SWEEPS / "lambda_sensitivity.yaml")
    assert {c.lambda0 for c in sweep.runs if c.method == "isda"} == {0, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
    assert {c.arch for c in sweep.runs} == {"resnet110", "wrn28_10"} and len(sweep.runs) == 220
    # The CE baseline runs are the same experiments as cifar_main's: same run ids.
    main = {c.run_id for c in load_sweep(SWEEPS / "cifar_main.yaml").runs}
    assert {c.run_id for c in sweep.runs if c.method == "ce" or c.lambda0 == 0.5} <= main


def test_imagenet_neurips_is_the_conference_protocol_beside_the_journals():
    neurips, tpami = load_sweep(SWEEPS / "imagenet_neurips.yaml"), load_sweep(SWEEPS / "imagenet.yaml")
    assert {(c.arch, c.method) for c in neurips.runs} == {(c.arch, c.method) for c in tpami.runs}
    for c in neurips.runs:
        assert (c.recipe, c.epochs, c.batch_size, c.lr, c.schedule, c.milestones, c.world_size) == (
            "neurips", 120, 256, 0.1, "step", (30, 60, 90), 8)
    assert {c.recipe for c in tpami.runs} == {"tpami"}
    assert not {c.run_id for c in neurips.runs} & {c.run_id for c in tpami.runs}


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.yaml")), ids=lambda p: p.stem)
def test_plan_prints_every_sweep_with_its_gpu_hours(path, capsys):
    from bench.cli import main

    assert main(["plan", str(path), "--results", "/nonexistent-isda-bench-results"]) == 0
    out = capsys.readouterr().out
    assert f"pending: {len(load_sweep(path).runs)}" in out and "estimated GPU-hours still to go" in out


def test_regularizers_is_the_comparison_table_on_the_paper_recipes():
    path = SWEEPS / "regularizers.yaml"
    sweep = load_sweep(path)
    assert sweep.name == "regularizers" and len(sweep.runs) == 160 and "Table 3" in path.read_text()
    cells = Counter((c.dataset, c.arch, c.method) for c in sweep.runs)
    methods = {"ce", "large_margin", "disturblabel", "focal", "center", "lq", "ce+dropout", "isda", "isda+dropout"}
    # WRN-28-10 has dropout 0.3 of its own: its +dropout runs would be its ce and isda runs again.
    assert set(cells) == {(d, a, m) for d in ("cifar10", "cifar100") for a in ("resnet110", "wrn28_10")
                          for m in methods if a == "resnet110" or not m.endswith("+dropout")}
    assert set(cells.values()) == {5}
    for cfg in sweep.runs:
        recipe = CIFAR[cfg.arch]
        # +dropout: the supplement's 0.3 where the recipe has no dropout (ResNet-110), in the network's blocks.
        drop_rate = recipe.drop_rate or (0.3 if cfg.method.endswith("+dropout") else 0.0)
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, tuple(cfg.milestones), cfg.drop_rate) == (
            recipe.epochs, recipe.batch_size, recipe.lr, recipe.weight_decay, recipe.milestones, drop_rate)
    rate = {(c.dataset, c.arch): c.param("disturb_rate") for c in sweep.runs if c.method == "disturblabel"}
    assert rate == {("cifar10", "resnet110"): 0.05, ("cifar100", "resnet110"): 0.1,
                    ("cifar10", "wrn28_10"): 0.05, ("cifar100", "wrn28_10"): 0.05}
    assert {c.focal_gamma for c in sweep.runs if c.method == "focal"} == {1.0}
    assert {c.param("lq_q") for c in sweep.runs if c.method == "lq"} == {0.4}
    assert {c.param("center_lr") for c in sweep.runs if c.method == "center"} == {0.5}
    assert {c.lambda0 for c in sweep.runs if c.method.startswith("isda")} == {0.5}
    # The CE and ISDA runs are the same experiments as cifar_main's: same run ids.
    main = {c.run_id for c in load_sweep(SWEEPS / "cifar_main.yaml").runs}
    assert {c.run_id for c in sweep.runs if c.method in ("ce", "isda")} <= main
    prof = load_profile(sweep.profile, sweep.path)
    assert sweep.cluster == "slurm" and prof.gpus_per_node == 1

def test_the_regularizers_sweep_and_its_report_agree_on_the_papers_rows():
    # The supplement sets dropout 0.3 "for comparison" among the baselines: Basic + Dropout is a row of
    # the paper's table, as the sweep says; the report must not mark it as our addition.
    from bench.report.regularizers import ROWS

    trained = {c.method for c in load_sweep(SWEEPS / "regularizers.yaml").runs}
    assert trained == {r.method for r in ROWS if r.trained and r.in_paper}
    assert "ce+dropout" in trained


@pytest.mark.parametrize("name, sizes", [("fashion", (None,)), ("fashion_small", (1000, 5000))])
def test_fashion_sweeps_are_resnet32_with_its_recipe_four_methods_five_seeds(name, sizes):
    sweep = load_sweep(SWEEPS / f"{name}.yaml")
    assert sweep.name == name
    assert {(c.dataset, c.arch) for c in sweep.runs} == {("fashion_mnist", "resnet32")}
    methods = ("ce", "focal", "autoaugment", "isda", "large_margin", "disturblabel", "center", "lq", "ce+dropout",
               "isda+dropout")
    assert Counter((c.method, c.train_size) for c in sweep.runs) == {(m, s): 5 for m in methods for s in sizes}
    recipe = CIFAR["resnet32"]
    for cfg in sweep.runs:
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, tuple(cfg.milestones)) == (
            recipe.epochs, recipe.batch_size, recipe.lr, recipe.weight_decay, recipe.milestones), cfg.slug
        assert cfg.lambda0 in (None, 0.5) and cfg.focal_gamma in (None, 1.0)
    assert len({c.run_id for c in sweep.runs}) == len(sweep.runs)


def test_reading_the_shipped_sweeps_imports_neither_torch_nor_timm():
    # A fresh interpreter: this one has imported torch long ago. Reading and checking a sweep (every
    # run resolved: architecture, image size, dropout, train_size) needs only the tables of facts.
    code = ("import sys\nfrom pathlib import Path\nfrom bench.sweep.spec import load_sweep\n"
            f"runs = sum(len(load_sweep(p).runs) for p in sorted(Path({str(SWEEPS)!r}).glob('*.yaml')))\n"
            "print(runs, sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) >= sum(PAPER_SWEEPS.values())  # every shipped sweep was read
    assert out[1:] == ["[]"], out

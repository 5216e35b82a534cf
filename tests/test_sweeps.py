"""The paper's experiments as sweep files: the right matrix, the paper's recipes, a named table."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from bench.recipes import CIFAR
from bench.slurm import load_profile
from bench.sweep import load_sweep

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
NINE = {"resnet32", "resnet110", "se_resnet110", "wrn16_8", "wrn28_10", "resnext29_8x64d",
        "densenet_bc_100_12", "shake_shake26_2x32d", "shake_shake26_2x112d"}
PAPER_SWEEPS = {"cifar_main": 180, "cifar_baselines": 140, "cifar_augmentation": 132,
                "lambda_sensitivity": 120}


@pytest.mark.parametrize("name, n", sorted(PAPER_SWEEPS.items()))
def test_paper_sweeps_load_use_the_recipes_and_name_their_table(name, n):
    path = SWEEPS / f"{name}.yaml"
    sweep = load_sweep(path)
    assert sweep.name == name and len(sweep.runs) == n
    comment = "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))
    assert re.search(r"Table \d|sensitivity", comment), "each file says which paper table it reproduces"
    for cfg in sweep.runs:
        recipe = CIFAR[cfg.arch]
        assert cfg.dataset in ("cifar10", "cifar100")
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay) == (
            recipe.epochs, recipe.batch_size, recipe.lr, recipe.weight_decay), cfg.slug
        assert tuple(cfg.milestones) == recipe.milestones and cfg.drop_rate == recipe.drop_rate
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
    assert {c.focal_gamma for c in sweep.runs if c.method == "focal"} == {2.0}


def test_augmentation_table_single_seed_for_the_largest_shake_shake():
    sweep = load_sweep(SWEEPS / "cifar_augmentation.yaml")
    seeds = {a: {c.seed for c in sweep.runs if c.arch == a} for a in {c.arch for c in sweep.runs}}
    assert seeds == {"wrn28_10": set(range(5)), "shake_shake26_2x32d": set(range(5)),
                     "shake_shake26_2x112d": {0}}
    assert {c.method for c in sweep.runs} == {"cutout", "isda+cutout", "autoaugment", "isda+autoaugment",
                                              "randaugment", "isda+randaugment"}


def test_lambda_sensitivity_values():
    sweep = load_sweep(SWEEPS / "lambda_sensitivity.yaml")
    assert {c.lambda0 for c in sweep.runs if c.method == "isda"} == {0.1, 0.25, 0.5, 0.75, 1.0}
    assert {c.arch for c in sweep.runs} == {"resnet110", "wrn28_10"}
    # The CE baseline runs are the same experiments as cifar_main's: same run ids.
    main = {c.run_id for c in load_sweep(SWEEPS / "cifar_main.yaml").runs}
    assert {c.run_id for c in sweep.runs if c.method == "ce"} <= main


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
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, tuple(cfg.milestones), cfg.drop_rate) == (
            recipe.epochs, recipe.batch_size, recipe.lr, recipe.weight_decay, recipe.milestones, recipe.drop_rate)
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

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


@pytest.mark.parametrize("name, sizes", [("fashion", (None,)), ("fashion_small", (1000, 5000))])
def test_fashion_sweeps_are_resnet32_with_its_recipe_four_methods_five_seeds(name, sizes):
    sweep = load_sweep(SWEEPS / f"{name}.yaml")
    assert sweep.name == name
    assert {(c.dataset, c.arch) for c in sweep.runs} == {("fashion_mnist", "resnet32")}
    methods = ("ce", "focal", "autoaugment", "isda")
    assert Counter((c.method, c.train_size) for c in sweep.runs) == {(m, s): 5 for m in methods for s in sizes}
    recipe = CIFAR["resnet32"]
    for cfg in sweep.runs:
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, tuple(cfg.milestones)) == (
            recipe.epochs, recipe.batch_size, recipe.lr, recipe.weight_decay, recipe.milestones), cfg.slug
        assert cfg.lambda0 in (None, 0.5) and cfg.focal_gamma in (None, 2.0)
    assert len({c.run_id for c in sweep.runs}) == len(sweep.runs)

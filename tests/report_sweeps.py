"""Fabricated sweeps for the paper-style report tables and figures, written as the training engine
writes run folders (tests/test_results.py's writer): the ablation, the regularisers' comparison,
explicit augmentation against M, λ0 sensitivity and ImageNet under two recipes. Levels are chosen
so that each table's cells differ; tests compute the expected cells from the written result.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from bench.experiment.recipes import recipe_for
from tests.test_report import fx

NETS = (("cifar10", "resnet110", 6.5), ("cifar10", "wrn28_10", 4.0), ("cifar100", "resnet110", 28.0),
        ("cifar100", "wrn28_10", 19.0))


def cfg_of(sweep: str, dataset: str, arch: str, method: str, seed: int, **fields) -> dict:
    """A run config with ``fields`` set (None removes nothing: it records the field as null)."""
    cfg = fx.make_config(sweep, dataset, arch, method, seed)
    cfg.update(fields)
    tag = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:6]
    cfg["run_id"] = f"{dataset}-{arch}-{method}-{tag}-s{seed}".replace("+", "_")
    return cfg


def _write(sweep_dir: Path, cfg: dict, level: float, rng: np.random.Generator, **result) -> None:
    fx.write_run(sweep_dir, cfg, level + rng.normal(0, 0.15), rng=rng, extra_result=result or None)


ABLATION = (  # (method, fields, offset from the network's CE level)
    ("ce", {}, 0.0),
    ("isda", {"cov_mode": "identity", "lambda_schedule": "linear"}, -0.1),
    ("isda", {"cov_mode": "diagonal", "lambda_schedule": "linear"}, -0.3),
    ("isda", {"cov_mode": "shared", "lambda_schedule": "linear"}, -0.2),
    ("isda", {"cov_mode": "full", "lambda_schedule": "constant"}, -0.4),
    ("isda", {"cov_mode": "full", "lambda_schedule": "linear"}, -0.8),
)


def build_ablation(root: Path, seeds: int = 3) -> Path:
    rng = np.random.default_rng(11)
    sweep_dir = root / "results" / "ablation"
    for ds, arch, level in NETS:
        for method, fields, offset in ABLATION:
            for seed in range(seeds):
                _write(sweep_dir, cfg_of("ablation", ds, arch, method, seed, **fields), level + offset, rng)
    return sweep_dir


REGULARIZERS = (("ce", 0.0), ("large_margin", -0.1), ("disturblabel", -0.15), ("focal", -0.05), ("center", -0.2),
                ("lq", 0.1), ("ce+dropout", -0.05), ("isda", -0.8), ("isda+dropout", -0.9))


def build_regularizers(root: Path, seeds: int = 3) -> Path:
    rng = np.random.default_rng(12)
    sweep_dir = root / "results" / "regularizers"
    for ds, arch, level in NETS:
        for method, offset in REGULARIZERS:
            for seed in range(seeds):
                fields = {"lambda0": 0.5, "cov_mode": "full"} if method.startswith("isda") else {}
                _write(sweep_dir, cfg_of("regularizers", ds, arch, method, seed, **fields), level + offset, rng)
    return sweep_dir


EXPLICIT_M = (1, 2, 5, 10, 20)


def build_explicit(root: Path, seeds: int = 3, nets: tuple = NETS[:2]) -> Path:
    """ISDA and explicit augmentation at each M; explicit's error falls towards ISDA's as M grows,
    its cost (throughput) rises with M; every run trained in bf16."""
    rng = np.random.default_rng(13)
    sweep_dir = root / "results" / "explicit"
    for ds, arch, level in nets:
        for seed in range(seeds):
            cfg = cfg_of("explicit", ds, arch, "isda", seed, lambda0=0.5, cov_mode="full")
            _write(sweep_dir, cfg, level - 0.8, rng, precision="bf16", images_per_s=4000.0)
            for m in EXPLICIT_M:
                cfg = cfg_of("explicit", ds, arch, "explicit", seed, lambda0=0.5, cov_mode="full", explicit_samples=m)
                throughput = 4000.0 / (1 + 0.4 * m)
                _write(sweep_dir, cfg, level - 0.8 + 1.5 / m, rng, precision="bf16", images_per_s=throughput)
    return sweep_dir


LAMBDAS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def build_lambda(root: Path, seeds: int = 3, nets: tuple = NETS) -> Path:
    rng = np.random.default_rng(14)
    sweep_dir = root / "results" / "lambda_sensitivity"
    for ds, arch, level in nets:
        for seed in range(seeds):
            _write(sweep_dir, cfg_of("lambda_sensitivity", ds, arch, "ce", seed), level, rng)
            for lam in LAMBDAS:
                cfg = cfg_of("lambda_sensitivity", ds, arch, "isda", seed, lambda0=lam, cov_mode="full")
                _write(sweep_dir, cfg, level - 0.8 + 0.25 * abs(np.log((lam + 0.05) / 0.55)), rng)
    return sweep_dir


def build_imagenet(root: Path, seeds: int = 2, paper_budget: bool = False) -> Path:
    """ResNet-50 under the journal's recipe (λ0 7.5, and 0.5 as a variant) and the conference's;
    ``paper_budget``: each recipe's epochs and batch size (else 12 epochs of 128 images)."""
    rng = np.random.default_rng(15)
    sweep_dir = root / "results" / "imagenet"
    for recipe, base in (("tpami", 23.5), ("neurips", 24.5)):
        for seed in range(seeds):
            for method, lam, level in (("ce", None, base), ("isda", 7.5, base - 1.0), ("isda", 0.5, base - 0.3)):
                if recipe == "neurips" and lam == 0.5:
                    continue
                fields = {"recipe": recipe, "lambda0": lam, "cov_mode": "diagonal" if lam else None}
                if paper_budget:
                    budget = recipe_for("imagenet", "resnet50", recipe)
                    fields.update(epochs=budget.epochs, batch_size=budget.batch_size)
                cfg = cfg_of("imagenet", "imagenet", "resnet50", method, seed, **fields)
                _write(sweep_dir, cfg, level, rng, precision="bf16", last10_top5_test_error=level / 3.5)
    return sweep_dir


AUGMENT_METHODS = ("cutout", "isda+cutout", "autoaugment", "isda+autoaugment", "randaugment", "isda+randaugment")
AUGMENT_ARCHS = ("wrn28_10", "shake_shake26_2x32d", "shake_shake26_2x112d")
FASHION_SMALL_METHODS = ("ce", "focal", "autoaugment", "isda", "large_margin", "disturblabel", "center", "lq",
                         "ce+dropout", "isda+dropout")


def build_wide(root: Path, seeds: int = 2) -> Path:
    """The widest tables of the shipped sweeps in one report: the augmentation table (its three networks
    on both datasets, six methods; Wide-ResNet-28-10's AutoAugment rows on a cosine schedule and its
    others on step, as sweeps/cifar_augmentation.yaml plans them), the main table's CE and ISDA on three
    networks, and fashion_small's ten methods at two train sizes (a generic table of some thirty columns)."""
    rng = np.random.default_rng(16)
    sweep_dir = root / "results" / "wide"
    for ds, level in (("cifar10", 3.0), ("cifar100", 17.0)):
        for arch in AUGMENT_ARCHS:
            for i, method in enumerate(AUGMENT_METHODS):
                cosine = arch != "wrn28_10" or "autoaugment" in method
                for seed in range(seeds):
                    cfg = cfg_of("wide", ds, arch, method, seed, schedule="cosine" if cosine else "step")
                    _write(sweep_dir, cfg, level - 0.1 * i, rng)
        for arch in ("resnet32", "resnet110", "wrn28_10"):
            for method in ("ce", "isda"):
                for seed in range(seeds):
                    _write(sweep_dir, cfg_of("wide", ds, arch, method, seed), level + 3 - (method == "isda"), rng)
    for size in (1000, 5000):
        for method in FASHION_SMALL_METHODS:
            for seed in range(seeds):
                cfg = cfg_of("wide", "fashion_mnist", "resnet32", method, seed, train_size=size)
                _write(sweep_dir, cfg, 14.0 if size == 1000 else 9.0, rng)
    return sweep_dir

"""Run fields that pin the paper's protocol: RandAugment (N, M), the recipe, the schedule, precision."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from bench.common.errors import ConfigError
from bench.experiment.recipes import AUGMENT_SCHEDULES, lr_at
from bench.experiment.resolve import resolve
from bench.sweep.spec import parse_sweep
from bench.train.device import uses_bf16
from bench.train.engine import Run
from bench.train.trainer import run


@pytest.mark.parametrize("dataset, arch, n, m", [
    ("cifar10", "wrn28_10", 3, 5), ("cifar100", "wrn28_10", 2, 14),
    ("cifar10", "shake_shake26_2x32d", 3, 9), ("cifar10", "shake_shake26_2x112d", 3, 9),
    ("cifar100", "shake_shake26_2x112d", 3, 9), ("cifar10", "resnet110", 2, 9), ("imagenet", "resnet50", 2, 9),
])
def test_randaugment_takes_the_randaugment_papers_values_per_network(dataset, arch, n, m):
    for method in ("randaugment", "isda+randaugment"):
        cfg = resolve({"dataset": dataset, "arch": arch, "method": method})
        assert (cfg.randaugment_n, cfg.randaugment_m) == (n, m)
    plain = resolve({"dataset": dataset, "arch": arch, "method": "isda+cutout"})
    assert (plain.randaugment_n, plain.randaugment_m) == (None, None)


def test_randaugment_settings_are_run_fields_that_reach_the_loader(tmp_path):
    cfg = resolve({"method": "randaugment", "randaugment_n": 3, "randaugment_m": 14})
    default = resolve({"method": "randaugment"})
    assert cfg.run_id != default.run_id and "N3M14" in cfg.slug
    policy = Run(cfg, tmp_path).train.dataset.transform.transforms[-1]
    assert (policy.num_ops, policy.magnitude, policy.num_magnitude_bins) == (3, 14, 31)
    assert resolve(cfg.to_dict()) == cfg


@pytest.mark.parametrize("spec, key", [
    ({"method": "ce", "randaugment_m": 9}, "randaugment_m"),
    ({"method": "isda+autoaugment", "randaugment_n": 2}, "randaugment_n"),
    ({"method": "randaugment", "randaugment_m": 31}, "randaugment_m"),
    ({"method": "randaugment", "randaugment_n": 0}, "randaugment_n"),
    ({"recipe": "neurips"}, "recipe"),  # digits: both papers' recipes are the same
    ({"dataset": "imagenet", "arch": "resnet50", "recipe": "iclr"}, "recipe"),
])
def test_bad_protocol_values_name_the_key(spec, key):
    with pytest.raises(ConfigError) as info:
        resolve(spec)
    assert info.value.key == key


def test_neurips_imagenet_recipe_is_120_epochs_step_decay_every_30_batch_256():
    tpami = resolve({"dataset": "imagenet", "arch": "resnet50", "method": "isda"})
    neurips = resolve({"dataset": "imagenet", "arch": "resnet50", "method": "isda", "recipe": "neurips"})
    assert (tpami.epochs, tpami.batch_size, tpami.lr, tpami.schedule) == (300, 512, 0.2, "cosine")
    assert (neurips.epochs, neurips.batch_size, neurips.lr, neurips.schedule, neurips.milestones) == (
        120, 256, 0.1, "step", (30, 60, 90))
    assert (neurips.weight_decay, neurips.momentum, neurips.lambda0, neurips.cov_mode) == (1e-4, 0.9, 7.5, "diagonal")
    lrs = [lr_at(e, lr=neurips.lr, epochs=neurips.epochs, schedule=neurips.schedule, milestones=neurips.milestones,
                 gamma=neurips.gamma, schedule_offset=neurips.schedule_offset) for e in range(120)]
    for e, lr in enumerate(lrs):  # divided by 10 every 30 epochs, the first 30 at 0.1
        assert lr == pytest.approx(0.1 * 0.1 ** (e // 30))
    # The journal's recipe is every run's default: naming it changes no run id.
    assert resolve({**tpami.to_dict(), "recipe": "tpami"}).run_id == tpami.run_id
    assert neurips.run_id != tpami.run_id and neurips.slug.endswith("neurips-s0")


def test_a_cosine_schedule_has_no_decay_points_and_the_augmentation_table_names_its_source():
    cfg = resolve({"dataset": "cifar10", "arch": "wrn28_10", "method": "autoaugment", "schedule": "cosine"})
    assert cfg.milestones == () and cfg.epochs == 240 and cfg.lr == 0.1
    assert AUGMENT_SCHEDULES[("wrn28_10", "autoaugment")].schedule == "cosine"
    assert "--cos_lr" in AUGMENT_SCHEDULES[("wrn28_10", "autoaugment")].source
    assert {s.schedule for (arch, _), s in AUGMENT_SCHEDULES.items() if arch.startswith("shake")} == {"cosine"}


def test_bf16_only_where_asked_or_automatic_on_a_gpu():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert uses_bf16("auto", cuda) and uses_bf16("bf16", cpu) and uses_bf16("bf16", cuda)
    assert not uses_bf16("fp32", cuda) and not uses_bf16("auto", cpu) and not uses_bf16("fp32", cpu)


def test_a_sweep_pins_fp32_through_its_overrides_and_the_run_records_it(tmp_path):
    sweep = parse_sweep({"grid": {"method": ["ce", "isda"]},
                         "overrides": {"precision": "fp32", "epochs": 1, "batch_size": 512}}, "pinned")
    auto = parse_sweep({"grid": {"method": ["ce", "isda"]}, "overrides": {"epochs": 1, "batch_size": 512}}, "auto")
    assert {c.precision for c in sweep.runs} == {"fp32"}
    # fp32 is another experiment than auto (bf16 on a GPU): another run id.
    assert {c.run_id for c in sweep.runs}.isdisjoint({c.run_id for c in auto.runs})
    cfg = sweep.runs[1]
    result = run(cfg, tmp_path / cfg.run_id, progress=False)
    written = yaml.safe_load((tmp_path / cfg.run_id / "config.yaml").read_text())
    assert written["precision"] == "fp32" and result["precision"] == "fp32"
    assert json.loads((tmp_path / cfg.run_id / "result.json").read_text())["precision"] == "fp32"


def test_a_run_written_before_a_field_existed_takes_the_planned_value_in_the_results(tmp_path):
    # An ISDA run's config.yaml from before recipe, lambda_schedule and the RandAugment fields: the
    # same run id is the same experiment, so the table gets the plan's values, not blanks that would
    # make it a variant of its own.
    from bench.results.collect import collect

    cfg = resolve({"method": "isda", "epochs": 1, "batch_size": 512, "sweep": "old"})
    run(cfg, tmp_path / "old" / cfg.run_id, progress=False)
    path = tmp_path / "old" / cfg.run_id / "config.yaml"
    old = {k: v for k, v in yaml.safe_load(path.read_text()).items()
           if k not in ("recipe", "lambda_schedule", "randaugment_n", "randaugment_m")}
    path.write_text(yaml.safe_dump(old))
    twin = resolve({**cfg.to_dict(), "seed": 1})
    df = collect(tmp_path / "old", planned=[cfg, twin])
    got = df.set_index("run_id")
    assert got.loc[cfg.run_id, "recipe"] == "tpami" and got.loc[cfg.run_id, "lambda_schedule"] == "linear"
    assert got.loc[cfg.run_id, "status"] == "completed" and got.loc[twin.run_id, "status"] == "pending"
    assert got.loc[cfg.run_id, "recipe"] == got.loc[twin.run_id, "recipe"]

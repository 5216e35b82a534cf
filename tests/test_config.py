import math

import pytest

from bench.common.errors import ConfigError
from bench.experiment.recipes import CIFAR, lr_at
from bench.experiment.resolve import resolve
from bench.experiment.runconfig import EXPERIMENT_FIELDS


def test_recipe_defaults_follow_the_paper_table():
    cfg = resolve({"dataset": "cifar100", "arch": "wrn28_10", "method": "isda"})
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.milestones, cfg.gamma, cfg.weight_decay) == (
        240, 128, 0.1, (60, 120, 160, 200), 0.2, 5e-4)
    assert cfg.lambda0 == 0.5 and cfg.cov_mode == "full" and cfg.nesterov and cfg.drop_rate == 0.3
    dense = resolve({"dataset": "cifar10", "arch": "densenet_bc_100_12"})
    assert (dense.batch_size, dense.epochs, dense.milestones) == (64, 300, (150, 200, 250))
    assert dense.lambda0 is None and dense.focal_gamma is None
    shake = resolve({"dataset": "cifar10", "arch": "shake_shake26_2x32d"})
    assert (shake.schedule, shake.epochs, shake.batch_size) == ("cosine", 1800, 64)


def test_step_schedule_decays_at_the_listed_one_based_epochs():
    r = CIFAR["resnet110"]
    lrs = [lr_at(e, lr=0.1, epochs=160, schedule="step", milestones=r.milestones, gamma=0.1, schedule_offset=1)
           for e in range(160)]
    # 0-based epoch 78 is the 79th epoch: still 0.1; the 80th (e = 79) is the first at 0.01.
    assert lrs[78] == 0.1 and math.isclose(lrs[79], 0.01) and math.isclose(lrs[118], 0.01)
    assert math.isclose(lrs[119], 0.001) and math.isclose(lrs[159], 0.001)


def test_cosine_schedule_formula():
    for e in (0, 1, 899, 1799):
        expected = 0.5 * 0.1 * (1 + math.cos(math.pi * (e + 1) / 1800))
        got = lr_at(e, lr=0.1, epochs=1800, schedule="cosine", milestones=(), gamma=0.1, schedule_offset=1)
        assert math.isclose(got, expected)
    assert lr_at(0, lr=0.2, epochs=300, schedule="cosine", milestones=(), gamma=1, schedule_offset=0) == 0.2


def test_milestones_in_any_order_are_one_experiment():
    a = resolve({"dataset": "cifar10", "arch": "resnet110", "milestones": [250, 150]})
    b = resolve({"dataset": "cifar10", "arch": "resnet110", "milestones": [150, 250]})
    assert a.milestones == (150, 250) and a.run_id == b.run_id
    assert [lr_at(e, lr=0.1, epochs=300, schedule="step", milestones=[250, 150], gamma=0.1, schedule_offset=0)
            for e in (149, 150, 249, 250)] == pytest.approx([0.1, 0.01, 0.01, 0.001])


def test_overriding_epochs_scales_milestones_unless_given():
    cfg = resolve({"dataset": "cifar10", "arch": "resnet110", "epochs": 16})
    assert cfg.milestones == (8, 12)
    cfg = resolve({"dataset": "cifar10", "arch": "resnet110", "epochs": 16, "milestones": [5]})
    assert cfg.milestones == (5,)


@pytest.mark.parametrize("arch", sorted(a for a, r in CIFAR.items() if r.schedule == "step"))
def test_scaled_milestones_never_decay_the_first_epoch(arch):
    for epochs in range(1, 25):
        cfg = resolve({"dataset": "cifar10", "arch": arch, "epochs": epochs})
        lrs = [lr_at(e, lr=cfg.lr, epochs=epochs, schedule=cfg.schedule, milestones=cfg.milestones, gamma=cfg.gamma,
                     schedule_offset=cfg.schedule_offset) for e in range(epochs)]
        assert lrs[0] == cfg.lr, (epochs, cfg.milestones, lrs)
        assert lrs == sorted(lrs, reverse=True)


def test_drop_rate_is_refused_for_a_network_without_dropout_and_kept_where_there_is_one():
    with pytest.raises(ConfigError, match="drop_rate.*shake_shake26_2x32d.*no dropout.*wrn28_10"):
        resolve({"dataset": "cifar10", "arch": "shake_shake26_2x32d", "drop_rate": 0.2})
    assert resolve({"dataset": "cifar10", "arch": "shake_shake26_2x32d", "drop_rate": 0.0}).drop_rate == 0.0
    assert resolve({"arch": "resnet32", "drop_rate": 0.2}).drop_rate == 0.2
    assert resolve({"dataset": "cifar100", "arch": "wrn28_10"}).drop_rate == 0.3
    assert resolve({"dataset": "imagenet", "arch": "resnet50", "drop_rate": 0.2}).drop_rate == 0.2


def test_run_id_is_stable_and_ignores_scheduling_fields():
    a = resolve({"method": "isda", "seed": 1})
    assert a.run_id == resolve({"method": "isda", "seed": 1, "device": "cpu", "threads": 2, "sweep": "x"}).run_id
    assert a.run_id != resolve({"method": "isda", "seed": 2}).run_id
    assert a.run_id == resolve(a.to_dict()).run_id
    assert "seed" in EXPERIMENT_FIELDS and "device" not in EXPERIMENT_FIELDS


@pytest.mark.parametrize("spec, key", [
    ({"dataset": "mnist"}, "dataset"),
    ({"arch": "vgg"}, "arch"),
    ({"method": "mixup"}, "method"),
    ({"method": "isda", "lambda0": -0.5}, "lambda0"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": "10"}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"nesterov": 1}, "nesterov"),
    ({"lr": float("nan")}, "lr"),
    ({"method": "ce", "lambda0": 0.5}, "lambda0"),
    ({"method": "isda", "focal_gamma": 2.0}, "focal_gamma"),
    ({"colour": "red"}, "colour"),
    ({"sweep": "../escape"}, "sweep"),
    ({"cov_mode": "half", "method": "isda"}, "cov_mode"),
    ({"momentum": 1.5}, "momentum"),
    ({"momentum": 1.0}, "momentum"),
    ({"milestones": [10, -1]}, "milestones"),
    ({"seed": 2**31}, "seed"),  # epoch and rank seeds derived from it would overflow torch's int64
    ({"threads": 10**6}, "threads"),  # torch crashes
    ({"workers": 10**4}, "workers"),
    ({"drop_rate": 0.1, "arch": "resnext29_8x64d"}, "drop_rate"),
])
def test_bad_values_name_the_key(spec, key):
    with pytest.raises(ConfigError) as info:
        resolve(spec)
    assert info.value.key == key
    assert key in str(info.value)

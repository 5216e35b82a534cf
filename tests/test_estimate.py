import json

import pytest

from bench.experiment.resolve import resolve
from bench.sweep.estimate import (
    MODELLED,
    RECORDED,
    estimate_run,
    forward_cost,
    measured_throughput,
    modelled_throughput,
)


def test_estimate_from_recorded_throughput_is_device_hours_whatever_the_device_count():
    cfg = resolve({"dataset": "imagenet", "arch": "resnet50", "method": "ce"})
    one = estimate_run(cfg, 1, {})
    eight = estimate_run(cfg, 8, {})
    ips = RECORDED[("imagenet", "resnet50")][0]  # one device's
    assert one.hours == pytest.approx(cfg.epochs * (1_281_167 + 50_000 / 3) / ips / 3600, rel=1e-12)
    # Eight devices: an eighth of the wall time, so the same device-hours.
    assert eight.hours == one.hours and eight.devices == 8


def test_measured_throughput_beats_recorded_and_unknown_is_none(tmp_path):
    # images_per_s is a whole run's: 6000 over two processes is 3000 per device.
    for i, (ips, world) in enumerate(((1000.0, 1), (6000.0, 2))):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "result.json").write_text(json.dumps({"dataset": "cifar100", "arch": "resnet110",
                                                   "images_per_s": ips, "world_size": world}))
    for name, text in (("broken", "{not json"), ("partial", '{"status": "failed", "images_per_s": 100.0}'),
                       ("list", "[1, 2]")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(text)
    measured = measured_throughput(tmp_path)
    assert measured == {("cifar", "resnet110"): 2000.0}
    cfg = resolve({"dataset": "cifar10", "arch": "resnet110", "method": "isda"})
    est = estimate_run(cfg, 1, measured)
    assert est.hours == pytest.approx(160 * (50_000 + 10_000 / 3) / 2000.0 / 3600) and "finished runs" in est.source
    assert estimate_run(resolve({"dataset": "digits", "arch": "resnet32"}), 1, measured).hours is None


def test_plan_prints_gpus_per_run_and_hours(tmp_path, capsys, monkeypatch):
    from bench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["plan", str(__import__("pathlib").Path(__file__).parent.parent / "sweeps" / "imagenet.yaml")]) == 0
    out = capsys.readouterr().out
    assert "14 runs, 8 GPU(s) per run" in out
    assert "estimated GPU-hours still to go" in out and MODELLED in out  # 6 of the 7 networks are modelled


def test_forward_cost_counts_the_published_multiply_adds():
    # Published counts: ResNet-50 4.09 G multiply-adds at 224² (torchvision's weights table),
    # ResNet-32 on CIFAR about 69 M, WRN-28-10 5.25 G.
    assert forward_cost("resnet50", "imagenet")[0] == pytest.approx(4.09e9, rel=0.01)
    assert forward_cost("resnet32", "cifar")[0] == pytest.approx(0.069e9, rel=0.02)
    assert forward_cost("wrn28_10", "cifar")[0] == pytest.approx(5.25e9, rel=0.01)
    # 31 convolutions and their BatchNorms, two 1×1 projection shortcuts with theirs, the head
    assert forward_cost("resnet32", "cifar")[1] == 31 * 2 + 2 * 2 + 1


def test_modelled_throughput_reproduces_the_recordings_and_orders_the_others():
    for fam, arch in RECORDED:
        assert modelled_throughput(arch, fam) == pytest.approx(RECORDED[(fam, arch)][0], rel=1e-9)
    cifar = {a: modelled_throughput(a, "cifar") for a in ("resnet32", "resnet110", "se_resnet110", "wrn28_10")}
    assert cifar["resnet32"] > cifar["resnet110"] > cifar["se_resnet110"]  # more layers, slower
    assert modelled_throughput("resnet101", "imagenet") < modelled_throughput("resnet50", "imagenet")
    assert modelled_throughput("resnet50", "cifar") > 0  # an ImageNet network on CIFAR-sized images
    est = estimate_run(resolve({"dataset": "cifar10", "arch": "resnet32", "method": "ce"}), 1, {})
    assert est.source == MODELLED and est.hours == pytest.approx(160 * (50_000 + 10_000 / 3) / cifar["resnet32"] / 3600)


def test_fashion_mnist_is_timed_as_cifar_and_a_subset_counts_its_own_images():
    from bench.sweep.estimate import modelled_throughput as model

    ips = model("resnet32", "cifar")
    full = estimate_run(resolve({"dataset": "fashion_mnist", "arch": "resnet32", "method": "isda"}), 1, {})
    assert full.hours == pytest.approx(160 * (60_000 + 10_000 / 3) / ips / 3600) and "timed as cifar" in full.source
    small = estimate_run(resolve({"dataset": "fashion_mnist", "arch": "resnet32", "train_size": 1000}), 1, {})
    assert small.hours == pytest.approx(160 * (1000 + 10_000 / 3) / ips / 3600)
    recorded = estimate_run(resolve({"dataset": "fashion_mnist", "arch": "resnet110"}), 1, {})
    assert recorded.hours == pytest.approx(160 * (60_000 + 10_000 / 3) / RECORDED[("cifar", "resnet110")][0] / 3600)
    # Its own finished runs come first; CIFAR's do not stand for it.
    measured = {("fashion_mnist", "resnet32"): 5000.0, ("cifar", "resnet110"): 1.0}
    assert estimate_run(resolve({"dataset": "fashion_mnist", "arch": "resnet32"}), 1, measured).hours == \
        pytest.approx(160 * (60_000 + 10_000 / 3) / 5000.0 / 3600)
    assert recorded.hours == estimate_run(resolve({"dataset": "fashion_mnist", "arch": "resnet110"}), 1, measured).hours


@pytest.mark.parametrize("sweep, runs", [("fashion.yaml", 50), ("fashion_small.yaml", 100)])
def test_plan_estimates_the_fashion_sweeps(tmp_path, capsys, monkeypatch, sweep, runs):
    from pathlib import Path

    from bench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["plan", str(Path(__file__).parent.parent / "sweeps" / sweep)]) == 0
    out = capsys.readouterr().out
    assert f"{runs} runs" in out and f"pending: {runs}" in out and "without a throughput" not in out
    assert " ?  " not in out

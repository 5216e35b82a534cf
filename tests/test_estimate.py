import json

from bench.config import resolve
from bench.estimate import RECORDED, estimate_run, measured_throughput


def test_estimate_from_recorded_throughput_counts_every_device():
    cfg = resolve({"dataset": "imagenet", "arch": "resnet50", "method": "ce"})
    one = estimate_run(cfg, 1, {})
    eight = estimate_run(cfg, 8, {})
    ips = RECORDED[("imagenet", "resnet50")][0]
    assert one.hours == cfg.epochs * 1_281_167 / ips / 3600
    assert eight.hours == 8 * one.hours and eight.devices == 8


def test_measured_throughput_beats_recorded_and_unknown_is_none(tmp_path):
    for i, ips in enumerate((1000.0, 3000.0)):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "result.json").write_text(json.dumps({"dataset": "cifar100", "arch": "resnet110",
                                                   "images_per_s": ips, "world_size": 1}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text("{not json")
    measured = measured_throughput(tmp_path)
    assert measured == {("cifar", "resnet110"): 2000.0}
    cfg = resolve({"dataset": "cifar10", "arch": "resnet110", "method": "isda"})
    est = estimate_run(cfg, 1, measured)
    assert est.hours == 160 * 50_000 / 2000.0 / 3600 and "finished runs" in est.source
    assert estimate_run(resolve({"dataset": "cifar10", "arch": "resnet32"}), 1, measured).hours is None


def test_plan_prints_gpus_per_run_and_hours(tmp_path, capsys, monkeypatch):
    from bench.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["plan", str(__import__("pathlib").Path(__file__).parent.parent / "sweeps" / "imagenet.yaml")]) == 0
    out = capsys.readouterr().out
    assert "14 runs, 8 GPU(s) per run" in out
    assert "estimated GPU-hours still to go" in out and "runs without a throughput measurement" in out

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from bench.common.errors import ConfigError
from bench.experiment.recipes import lr_at
from bench.experiment.resolve import resolve
from bench.methods.isda import lambda_at
from bench.rundir.lock import RunLock
from bench.train.trainer import run
from tests.helpers import metric_rows, result_json

SPEC = {"dataset": "digits", "arch": "resnet32", "method": "isda", "lambda0": 0.5, "epochs": 5,
        "batch_size": 128, "seed": 3, "threads": 1}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    run(resolve(SPEC), out, progress=False)
    return out


@pytest.mark.slow
def test_run_directory_layout_and_result(reference):
    cfg = resolve(SPEC)
    assert sorted(p.name for p in reference.iterdir()) == [".lock", "checkpoint.pt", "config.yaml",
                                                           "metrics.csv", "result.json"]
    saved = yaml.safe_load((reference / "config.yaml").read_text())
    assert saved["run_id"] == cfg.run_id and resolve({k: v for k, v in saved.items() if k != "run_id"}) == cfg
    res = json.loads((reference / "result.json").read_text())
    errors = [float(r["test_error"]) for r in metric_rows(reference)]
    assert res["status"] == "completed" and res["epochs_done"] == 5
    assert res["final_test_error"] == errors[-1] and res["best_test_error"] == min(errors)
    assert res["last10_test_error"] == pytest.approx(sum(errors) / len(errors))  # < 10 epochs: all of them
    assert res["torch_version"] == torch.__version__ and res["git_sha"]
    # Which kernels a CPU run used (AVX2, AVX512…) decides its rounding: it is recorded.
    assert f"{torch.backends.cpu.get_cpu_capability()}, 1 threads)" in res["device"]
    for r in metric_rows(reference):
        e = int(r["epoch"])
        assert float(r["lambda"]) == lambda_at(0.5, e, 5)
        assert float(r["lr"]) == lr_at(e, lr=cfg.lr, epochs=5, schedule="step", milestones=cfg.milestones,
                                       gamma=cfg.gamma, schedule_offset=1)
    assert float(metric_rows(reference)[-1]["test_error"]) < 30  # it learned something in 5 epochs
    # Top-5 error (for the ImageNet table): never above top-1, and reported like it.
    assert 0 <= res["final_top5_test_error"] <= res["final_test_error"]
    assert 0 <= res["last10_top5_test_error"] <= res["last10_test_error"]


@pytest.mark.slow
def test_repeat_is_bit_identical_on_cpu(reference, tmp_path):
    run(resolve(SPEC), tmp_path / "again", progress=False)
    assert metric_rows(tmp_path / "again") == metric_rows(reference)
    assert result_json(tmp_path / "again") == result_json(reference)
    a = torch.load(reference / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "again" / "checkpoint.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert torch.equal(a["isda"]["stats.scatter"], b["isda"]["stats.scatter"])


def test_finished_run_is_not_trained_again(reference):
    before = (reference / "result.json").stat().st_mtime_ns
    assert run(resolve(SPEC), reference, progress=False)["status"] == "completed"
    assert (reference / "result.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_uninterrupted(reference, tmp_path):
    out = tmp_path / "killed"
    code = ("import sys; from bench.experiment.resolve import resolve; from bench.train.trainer import run; "
            f"run(resolve({SPEC!r}), sys.argv[1], progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], cwd=Path(__file__).parent.parent)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / "metrics.csv").exists() and len((out / "metrics.csv").read_text().splitlines()) >= 3:
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists()
    epoch = torch.load(out / "checkpoint.pt", weights_only=True)["epoch"]
    assert 2 <= epoch < 5
    run(resolve(SPEC), out, progress=False)
    assert metric_rows(out) == metric_rows(reference)
    assert result_json(out) == result_json(reference)


def test_a_kill_after_the_last_checkpoint_before_its_metrics_still_ends_with_every_row(reference, tmp_path):
    """save() writes checkpoint.pt, then metrics.csv: a kill between the two at the last epoch
    leaves a finished checkpoint beside metrics.csv one row short, and no result.json."""
    out = tmp_path / "late"
    shutil.copytree(reference, out)
    (out / "result.json").unlink()
    lines = (out / "metrics.csv").read_text().splitlines(keepends=True)
    (out / "metrics.csv").write_text("".join(lines[:-1]))
    run(resolve(SPEC), out, progress=False)
    assert metric_rows(out) == metric_rows(reference) and len(metric_rows(out)) == SPEC["epochs"]
    assert result_json(out) == result_json(reference)


@pytest.mark.slow
def test_corrupt_checkpoint_is_reported_and_the_run_restarts(reference, tmp_path, capsys):
    out = tmp_path / "corrupt"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    run(resolve(SPEC), out, progress=False)
    assert "checkpoint" in capsys.readouterr().err and (out / "checkpoint.pt.corrupt").exists()
    assert metric_rows(out) == metric_rows(reference)


@pytest.mark.parametrize("finished", [True, False])
def test_a_folder_of_another_experiment_is_refused_and_left_as_it_was(reference, tmp_path, finished):
    """Reusing --out for other settings must neither report the old run's result as the new one's
    nor resume from it and overwrite it."""
    out = tmp_path / "other"
    shutil.copytree(reference, out)
    if not finished:
        (out / "result.json").unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = resolve({**SPEC, "lambda0": 0.25})
    with pytest.raises(ConfigError) as exc:
        run(other, out, progress=False)
    assert exc.value.key == "out" and resolve(SPEC).run_id in str(exc.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_folder_that_another_process_trains_is_refused(tmp_path):
    out = tmp_path / "busy"
    holder = RunLock(out)  # as a first `isda-bench train` on this folder holds it
    assert holder.acquire()
    try:
        with pytest.raises(ConfigError) as exc:
            run(resolve(SPEC), out, progress=False)
        assert exc.value.key == "out" and ".lock" in str(exc.value)
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written beside it
    finally:
        holder.release()
    assert run(resolve({**SPEC, "epochs": 1}), out, progress=False)["status"] == "completed"


@pytest.mark.parametrize("arch,drop_rate", [("wrn16_8", 0.0), ("wrn16_8", 0.3), ("densenet_bc_100_12", 0.0)])
def test_the_network_drops_exactly_as_configured(tmp_path, arch, drop_rate):
    """drop_rate 0 is no dropout: two training forwards of one batch agree only then."""
    from bench.train.engine import Run

    r = Run(resolve({"dataset": "digits", "arch": arch, "drop_rate": drop_rate, "threads": 1}), tmp_path)
    r.model.train()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        same = torch.equal(r.model(x), r.model(x))
    assert same == (drop_rate == 0)


def test_divergence_ends_the_run_with_its_epoch_and_reason(tmp_path):
    spec = {**SPEC, "method": "ce", "lambda0": None, "lr": 1e30, "epochs": 4}
    res = run(resolve(spec), tmp_path / "div", progress=False)
    assert res["status"] == "diverged" and res["failed_epoch"] == 0
    assert "non-finite" in res["reason"]
    assert res["final_test_error"] is None and res["last10_test_error"] is None
    # The diverged epoch is recorded; the checkpoint on disk is not overwritten by it.
    assert len(metric_rows(tmp_path / "div")) == 1 and not (tmp_path / "div" / "checkpoint.pt").exists()


def test_focal_and_augmented_methods_train(tmp_path):
    for method in ("focal", "isda+cutout"):
        spec = {**SPEC, "method": method, "lambda0": None, "epochs": 1}
        res = run(resolve(spec), tmp_path / method, progress=False)
        assert res["status"] == "completed" and res["method"] == method


def test_imagenet_track_trains_from_a_folder_with_diagonal_isda(tmp_path):
    from tests.test_data import write_image_folder

    write_image_folder(tmp_path / "data")
    cfg = resolve({"dataset": "imagenet", "arch": "resnet50", "method": "isda", "epochs": 1, "batch_size": 3,
                   "data_root": str(tmp_path / "data"), "threads": 2})
    assert cfg.cov_mode == "diagonal" and cfg.lambda0 == 7.5 and cfg.schedule == "cosine"
    res = run(cfg, tmp_path / "run", progress=False)
    assert res["status"] == "completed"
    stats = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["isda"]
    assert stats["stats.scatter"].shape == (2, 2048) and float(stats["stats.count"].sum()) == 6


def test_top5_error_equals_a_brute_force_count_with_the_final_model(reference):
    from bench.data.sources import load_dataset
    from bench.models import create_model

    _, test, info = load_dataset("digits")
    model = create_model("resnet32", num_classes=10, in_chans=1)
    model.load_state_dict(torch.load(reference / "checkpoint.pt", weights_only=True)["model"])
    model.eval()
    x = (test.x.float() / 255 - info.mean[0]) / info.std[0]
    with torch.no_grad():
        logits = model(x)
    misses = 0
    for row, label in zip(logits.tolist(), test.y.tolist()):
        best5 = sorted(range(10), key=lambda j: -row[j])[:5]
        misses += label not in best5
    res = json.loads((reference / "result.json").read_text())
    assert res["final_top5_test_error"] == pytest.approx(100.0 * misses / len(test.y))


@pytest.mark.slow
def test_synthetic_dataset_is_learnt_in_a_few_epochs_despite_crops_and_flips(tmp_path):
    # Chance is 90 %; the dataset exists to smoke-test CIFAR-shaped training without files.
    spec = {"dataset": "synthetic", "arch": "resnet32", "method": "ce", "epochs": 4, "seed": 0, "threads": 2}
    res = run(resolve(spec), tmp_path / "syn", progress=False)
    assert res["status"] == "completed" and res["final_test_error"] < 40.0


@pytest.mark.slow
def test_compiled_run_repeats_bit_identically_and_tracks_the_eager_run(tmp_path):
    spec = {**SPEC, "epochs": 2, "threads": 2, "lr": 0.02}  # a stable regime: rounding is not amplified
    eager = run(resolve(spec), tmp_path / "eager", progress=False)
    cfg = resolve({**spec, "compile": "default"})
    assert cfg.run_id == resolve(spec).run_id  # how it runs, not what it computes
    first = run(cfg, tmp_path / "a", progress=False)
    again = run(cfg, tmp_path / "b", progress=False)
    assert first["status"] == again["status"] == "completed"
    assert metric_rows(tmp_path / "a") == metric_rows(tmp_path / "b")
    assert result_json(tmp_path / "a") == result_json(tmp_path / "b")
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["compile"] == "default"
    # Other kernels, other rounding, amplified by training: near the eager run, not equal to it.
    for a, e in zip(metric_rows(tmp_path / "a"), metric_rows(tmp_path / "eager"), strict=True):
        assert float(a["train_loss"]) == pytest.approx(float(e["train_loss"]), rel=0.05)
    assert abs(first["final_test_error"] - eager["final_test_error"]) < 15.0


@pytest.mark.slow
def test_each_compiled_run_in_a_process_is_compiled_not_silently_eager(tmp_path):
    # Runs one after another in a process (perf accuracy, launch --cluster debug) compile the same
    # code object; past dynamo's recompile limit (8; 1 here) later ones would quietly run eagerly.
    from torch._dynamo.utils import counters

    from bench.train.engine import Run

    # dynamo's own patch, not monkeypatch: undoing monkeypatch's setattr deletes the config entry.
    with torch._dynamo.config.patch(recompile_limit=1):
        for seed in (0, 1):
            cfg = resolve({**SPEC, "seed": seed, "compile": "cudagraphs"})  # on the CPU: no code generation
            r = Run(cfg, tmp_path)
            x, y = next(iter(r.train.epoch(torch.Generator().manual_seed(0))))
            counters.clear()
            r.loss_fn(x, y, torch.tensor(0.1))
            assert counters["frames"]["ok"] == 1, f"run {seed} was not compiled"

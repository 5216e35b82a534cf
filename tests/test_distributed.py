"""Multi-process training on the CPU: 2 processes, gloo on 127.0.0.1, one thread each.

The references are independent of the code under test where possible: a single process fed the
ranks' batches put together, numpy's covariance, the single-process data order.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from bench.common.errors import ConfigError
from bench.data.batches import Batches, make_batches
from bench.data.sharding import batch_sizes, max_shard, shard
from bench.data.sources import Split, load_dataset
from bench.experiment.resolve import resolve
from bench.methods import parse_method
from bench.methods.covariance import ClassCovariance
from bench.methods.isda import ISDALoss
from tests.helpers import LATER_FIELDS, TIMING, metric_rows, result_json

REPO = Path(__file__).resolve().parents[1]
WORLD = 2
DIGITS = {"dataset": "digits", "arch": "resnet32", "method": "isda", "epochs": 3, "batch_size": 128,
          "seed": 5, "threads": 1, "device": "cpu", "world_size": WORLD}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dist_env(rank: int, port: int) -> dict[str, str]:
    return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(WORLD),
            "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"}


def _entry(rank: int, port: int, fn, args) -> None:
    os.environ.update(dist_env(rank, port))
    torch.set_num_threads(1)
    from bench.train import distributed

    info = distributed.init_from_env("cpu")
    assert (info.rank, info.world_size, info.device.type) == (rank, WORLD, "cpu")
    try:
        fn(rank, *args)
    finally:
        distributed.shutdown()


def spawn(fn, *args, timeout: float = 150.0) -> None:
    """Run ``fn(rank, *args)`` in WORLD fresh processes of one gloo group; fail on error or hang."""
    ctx = mp.start_processes(_entry, args=(free_port(), fn, args), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1.0):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"{fn.__name__} did not finish within {timeout:.0f}s")


# ----------------------------------------------------------------------------- sharding


def test_shards_are_balanced_and_cover_each_batch():
    for size in (1, 2, 5, 64, 143, 512):
        for world in (1, 2, 3, 8):
            parts = [shard(size, r, world) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == size
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
            lens = [hi - lo for lo, hi in parts]
            assert max(lens) - min(lens) <= 1 and lens[0] == max(lens) == max_shard(size, world)
    assert batch_sizes(1437, 128, 2) == [128] * 11 + [29]
    assert batch_sizes(257, 128, 2) == [128, 128]  # a last batch of 1 cannot feed 2 ranks: dropped
    assert batch_sizes(257, 128, 1) == [128, 128, 1]
    assert batch_sizes(257, 128, 2, train=False) == [128, 128, 1]  # evaluation keeps every sample


def test_rank_shards_put_together_are_the_single_process_batches():
    train, _, info = load_dataset("digits")
    train = Split(train.x[:301], train.y[:301])  # 3 batches of 100 and one of 1 (dropped for 3 ranks)
    loader = Batches(train, info, 100, torch.device("cpu"), parse_method("cutout"))
    single = list(loader.epoch(torch.Generator().manual_seed(7)))
    ranks = [list(loader.epoch(torch.Generator().manual_seed(7), r, 3)) for r in range(3)]
    assert [len(r) for r in ranks] == [3, 3, 3] and len(single) == 4
    for step in range(3):
        assert torch.equal(torch.cat([ranks[r][step][0] for r in range(3)]), single[step][0])
        assert torch.equal(torch.cat([ranks[r][step][1] for r in range(3)]), single[step][1])
    # Evaluation (no method): shards of every batch, the last one included.
    plain = Batches(train, info, 100, torch.device("cpu"), None)
    got = torch.cat([y for r in range(3) for _, y in plain.epoch(None, r, 3)])
    assert torch.equal(got.sort().values, train.y.sort().values)


def test_worker_loader_shards_follow_the_shared_permutation():
    train, _, info = load_dataset("digits")
    train = Split(train.x[:250], train.y[:250])
    loader = make_batches(train, info, 64, torch.device("cpu"), parse_method("autoaugment"))
    perm = torch.randperm(250, generator=torch.Generator().manual_seed(3))  # what every rank draws first
    ys = [[y for _, y in loader.epoch(torch.Generator().manual_seed(3), r, WORLD)] for r in range(WORLD)]
    for step, b in enumerate(batch_sizes(250, 64, WORLD)):
        got = torch.cat([ys[r][step] for r in range(WORLD)])
        assert torch.equal(got, train.y[perm[step * 64:step * 64 + b]]), step
    other = torch.cat([y for _, y in loader.epoch(torch.Generator().manual_seed(4), 0, WORLD)])
    assert not torch.equal(other, torch.cat(ys[0]))  # a new epoch seed reshuffles


# ----------------------------------------------------------------------------- ISDA statistics

C, A = 4, 3
# Local batch sizes per step, (rank 0, rank 1), and the pad_to the caller passes (None: ask).
STEPS = [((6, 6), 6), ((7, 5), 7), ((3, 6), 6), ((0, 4), None), ((5, 4), 9)]


def step_data(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s batch at ``step``: every process can make every rank's."""
    g = torch.Generator().manual_seed(1000 * step + rank)
    n = STEPS[step][0][rank]
    y = torch.randint(0, C, (n,), generator=g)
    x = torch.randn(n, A, generator=g, dtype=torch.float64) * (1 + y[:, None]) + y[:, None].double()
    return x, y


def _stats_worker(rank: int, out: str) -> None:
    results = {}
    for mode in ("full", "diagonal"):
        for sync in ("global", "local"):
            stats = ClassCovariance(C, A, mode, sync=sync).double()
            for step, (_, pad_to) in enumerate(STEPS):
                stats.update(*step_data(step, rank), pad_to=pad_to)
            results[f"{mode}-{sync}"] = {k: v.clone() for k, v in stats.state_dict().items()}
        if mode == "full":  # the pooled within-class covariance, from padded global batches
            pooled = ClassCovariance(C, A, mode, sync="global", pooled=True).double()
            for step, (_, pad_to) in enumerate(STEPS):
                pooled.update(*step_data(step, rank), pad_to=pad_to)
            results["pooled-global"] = {k: v.clone() for k, v in pooled.state_dict().items()}
        # The loss part under global sync: statistics from all ranks, gradient from the local batch.
        torch.manual_seed(0)
        fc = torch.nn.Linear(A, C).double()
        crit = ISDALoss(C, A, mode, sync="global").double()
        x, y = step_data(1, rank)
        x.requires_grad_(True)
        loss, _ = crit(x, fc, y, 0.7, pad_to=STEPS[1][1])
        loss.backward()
        results[f"{mode}-grad"] = {"loss": loss.detach(), "x": x.grad, "w": fc.weight.grad,
                                   "stats": crit.stats.state_dict()}
    torch.save(results, Path(out) / f"rank{rank}.pt")


def single_process(mode: str, batches) -> ClassCovariance:
    stats = ClassCovariance(C, A, mode).double()
    for x, y in batches:
        stats.update(x, y)
    return stats


@pytest.fixture(scope="module")
def stats_runs(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("stats")
    spawn(_stats_worker, str(out))
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_global_statistics_equal_one_process_fed_the_concatenated_batches(stats_runs, mode):
    got = stats_runs[0][f"{mode}-global"]
    concat = [tuple(torch.cat(t) for t in zip(*(step_data(s, r) for r in range(WORLD))))
              for s in range(len(STEPS))]
    ref = single_process(mode, concat)
    assert torch.equal(got["count"], ref.count)
    torch.testing.assert_close(got["mean"], ref.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got["scatter"], ref.scatter, rtol=1e-12, atol=1e-12)
    # And against numpy: the biased covariance of every feature of each class, all steps and ranks.
    xs = torch.cat([x for x, _ in concat]).numpy()
    ys = torch.cat([y for _, y in concat]).numpy()
    for c in range(C):
        feats = xs[ys == c]
        cov = np.cov(feats, rowvar=False, bias=True)
        expect = cov if mode == "full" else np.diag(cov)
        assert got["count"][c] == len(feats)
        np.testing.assert_allclose(got["mean"][c].numpy(), feats.mean(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got["scatter"][c].numpy() / len(feats), expect, rtol=1e-11, atol=1e-12)


def test_global_pooled_statistics_equal_the_within_class_covariance_of_every_rank_and_step(stats_runs):
    concat = [tuple(torch.cat(t) for t in zip(*(step_data(s, r) for r in range(WORLD))))
              for s in range(len(STEPS))]
    xs = torch.cat([x for x, _ in concat]).numpy()
    ys = torch.cat([y for _, y in concat]).numpy()
    within = sum((ys == c).sum() * np.cov(xs[ys == c], rowvar=False, bias=True) for c in range(C))
    for rank in range(WORLD):
        got = stats_runs[rank]["pooled-global"]
        assert got["count"].tolist() == [float((ys == c).sum()) for c in range(C)]
        np.testing.assert_allclose(got["scatter"][0].numpy(), within, rtol=1e-11, atol=1e-11)
        for key, value in stats_runs[0]["pooled-global"].items():
            assert torch.equal(got[key], value), key


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_global_statistics_are_identical_on_every_rank(stats_runs, mode):
    for key, value in stats_runs[0][f"{mode}-global"].items():
        assert torch.equal(value, stats_runs[1][f"{mode}-global"][key]), key


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_local_statistics_equal_per_rank_single_processes(stats_runs, mode):
    for rank in range(WORLD):
        ref = single_process(mode, [step_data(s, rank) for s in range(len(STEPS))])
        got = stats_runs[rank][f"{mode}-local"]
        for key, value in ref.state_dict().items():
            assert torch.equal(got[key], value), (rank, key)
    assert not torch.equal(stats_runs[0][f"{mode}-local"]["count"], stats_runs[1][f"{mode}-local"]["count"])


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_global_sync_loss_and_gradient_use_the_local_batch_only(stats_runs, mode):
    x_all = [step_data(1, r) for r in range(WORLD)]
    for rank in range(WORLD):
        got = stats_runs[rank][f"{mode}-grad"]
        torch.manual_seed(0)
        fc = torch.nn.Linear(A, C).double()
        crit = ISDALoss(C, A, mode).double()
        crit.stats.update(torch.cat([x for x, _ in x_all]), torch.cat([y for _, y in x_all]))
        torch.testing.assert_close(got["stats"]["scatter"], crit.stats.scatter, rtol=1e-12, atol=1e-12)
        x, y = x_all[rank]
        x = x.clone().requires_grad_(True)
        loss, _ = crit(x, fc, y, 0.7, update=False)
        loss.backward()
        torch.testing.assert_close(got["loss"], loss.detach(), rtol=1e-12, atol=1e-12)
        assert got["x"].shape == (STEPS[1][0][rank], A)
        torch.testing.assert_close(got["x"], x.grad, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got["w"], fc.weight.grad, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- training


def _record_runs(train) -> list:
    """Make every bench.train.trainer.Run built from now on append itself to the returned list."""
    runs = []

    class Recorded(train.Run):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            runs.append(self)

    train.Run = Recorded
    return runs


def _train_worker(rank: int, specs: list[dict], dirs: list[str], out: str) -> None:
    import bench.train.trainer as train

    writes: list[str] = []
    if rank != 0:  # record any file rank 1 would write, instead of writing it, whichever module writes it
        def record(path, *args, **kwargs):
            writes.append(str(path))
        for module in [m for name, m in sys.modules.items() if name.startswith("bench.")]:
            for writer in ("atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json"):
                if hasattr(module, writer):
                    setattr(module, writer, record)
    runs = _record_runs(train)
    results = []
    for spec, run_dir in zip(specs, dirs):
        results.append(train.run(resolve(spec), run_dir, progress=False))
    isda = [{k: v.clone() for k, v in r.crit.state_dict().items()} for r in runs]
    torch.save({"results": results, "writes": writes, "isda": isda,
                "params": [[p.detach().clone() for p in r.model.parameters()] for r in runs]},
               Path(out) / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> tuple[Path, list[dict], list[Path]]:
    root = tmp_path_factory.mktemp("ddp")
    specs = [DIGITS, {**DIGITS, "isda_sync": "local", "epochs": 2}]
    dirs = [root / "global", root / "local"]
    spawn(_train_worker, specs, [str(d) for d in dirs], str(root))
    return root, [torch.load(root / f"rank{r}.pt", weights_only=False) for r in range(WORLD)], dirs


@pytest.mark.slow
def test_ddp_run_rank0_writes_the_run_directory_and_rank1_nothing(ddp_runs):
    _, ranks, dirs = ddp_runs
    assert ranks[1]["writes"] == []
    for run_dir in dirs:
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "checkpoint.pt", "config.yaml",
                                                              "metrics.csv", "result.json"]
    res = result_json(dirs[0])
    assert res["status"] == "completed" and res["world_size"] == 2 and res["isda_sync"] == "global"
    assert res["epochs_done"] == 3 and len(metric_rows(dirs[0])) == 3
    # Every rank computed the same, global, numbers; rank 0's are the ones on disk.
    strip = [{k: v for k, v in r["results"][0].items() if k not in TIMING} for r in ranks]
    assert strip[0] == strip[1] == res


def test_ddp_ranks_hold_identical_models_and_global_statistics(ddp_runs):
    _, ranks, _ = ddp_runs
    for p0, p1 in zip(ranks[0]["params"][0], ranks[1]["params"][0]):
        assert torch.equal(p0, p1)
    s0, s1 = ranks[0]["isda"][0], ranks[1]["isda"][0]
    for key in s0:
        assert torch.equal(s0[key], s1[key]), key
    # Each rank's statistics saw the whole training set every epoch, not its half of it.
    assert float(s0["stats.count"].sum()) == 3 * 1437
    digits_train, _, _ = load_dataset("digits")
    assert torch.equal(s0["stats.count"], 3 * torch.bincount(digits_train.y, minlength=10).float())


def test_ddp_local_sync_keeps_per_rank_statistics_in_the_checkpoint(ddp_runs):
    _, ranks, dirs = ddp_runs
    s0, s1 = ranks[0]["isda"][1], ranks[1]["isda"][1]
    assert float(s0["stats.count"].sum()) + float(s1["stats.count"].sum()) == 2 * 1437
    assert not torch.equal(s0["stats.count"], s1["stats.count"])
    state = torch.load(dirs[1] / "checkpoint.pt", weights_only=True)
    assert len(state["isda_ranks"]) == 2
    for rank, own in enumerate((s0, s1)):
        for key in own:
            assert torch.equal(state["isda_ranks"][rank][key], own[key]), (rank, key)


def test_ddp_checkpoint_loads_into_a_single_process_run(ddp_runs, tmp_path):
    from bench.train.engine import Run

    _, ranks, dirs = ddp_runs
    state = torch.load(dirs[0] / "checkpoint.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state["model"]) and state["world_size"] == 2
    single = Run(resolve({**DIGITS, "world_size": 1}), tmp_path)
    single.load_state_dict(state)
    for p, q in zip(single.model.parameters(), ranks[0]["params"][0]):
        assert torch.equal(p, q)
    assert single.epoch == 3


def _launch(spec: dict, run_dir: Path, port: int) -> list[subprocess.Popen]:
    code = ("import sys; from bench.experiment.resolve import resolve; from bench.train.trainer import run; "
            "from bench.train.distributed import init_from_env, shutdown; init_from_env('cpu'); "
            f"run(resolve({spec!r}), sys.argv[1], progress=False); shutdown()")
    return [subprocess.Popen([sys.executable, "-c", code, str(run_dir)], cwd=REPO,
                             env={**os.environ, **dist_env(r, port)}) for r in range(WORLD)]


def _wait(procs: list[subprocess.Popen], timeout: float = 120.0) -> None:
    try:
        for p in procs:
            assert p.wait(timeout=timeout) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


@pytest.mark.slow
def test_ddp_sigkill_then_relaunch_equals_uninterrupted(ddp_runs, tmp_path):
    _, _, dirs = ddp_runs
    out = tmp_path / "killed"
    procs = _launch(DIGITS, out, free_port())
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (out / "metrics.csv").exists() and len((out / "metrics.csv").read_text().splitlines()) >= 2:
                break
            assert all(p.poll() is None for p in procs), "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        for p in procs:  # a preempted job loses all its processes at once
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    assert not (out / "result.json").exists()
    assert 1 <= torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] < 3
    _wait(_launch(DIGITS, out, free_port()))
    assert metric_rows(out) == metric_rows(dirs[0])
    assert result_json(out) == result_json(dirs[0])


@pytest.mark.slow
def test_a_dead_rank_fails_the_run_at_once_instead_of_leaving_the_other_waiting(tmp_path):
    out = tmp_path / "run"
    procs = _launch({**DIGITS, "epochs": 5}, out, free_port())
    try:
        deadline = time.time() + 120
        while not (out / "metrics.csv").exists():
            assert time.time() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.05)
        os.kill(procs[1].pid, signal.SIGKILL)  # e.g. its GPU ran out of memory
        procs[1].wait()
        # Not the 30-minute collective timeout: gloo sees the closed connection at the next step.
        assert procs[0].wait(timeout=60) != 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    res = result_json(out)
    assert res["status"] == "failed" and "RuntimeError" in res["reason"] and res["epochs_done"] >= 1


def _imagenet_worker(rank: int, data: str, run_dir: str, out: str) -> None:
    import bench.train.trainer as train

    runs = _record_runs(train)
    cfg = resolve({"dataset": "imagenet", "arch": "resnet50", "method": "isda", "epochs": 2, "batch_size": 4,
                   "data_root": data, "threads": 1, "device": "cpu", "world_size": WORLD})
    res = train.run(cfg, run_dir, progress=False)
    torch.save({"result": res, "isda": runs[0].crit.state_dict()}, Path(out) / f"imagenet{rank}.pt")


@pytest.mark.slow
def test_imagenet_folder_trains_two_epochs_on_two_processes(tmp_path):
    from tests.test_data import write_image_folder

    write_image_folder(tmp_path / "data")  # 2 classes × 3 training images, 2 × 2 validation images
    spawn(_imagenet_worker, str(tmp_path / "data"), str(tmp_path / "run"), str(tmp_path))
    ranks = [torch.load(tmp_path / f"imagenet{r}.pt", weights_only=False) for r in range(WORLD)]
    res = result_json(tmp_path / "run")
    assert res["status"] == "completed" and res["epochs_done"] == 2 and res["world_size"] == 2
    assert res["cov_mode"] == "diagonal" and res["isda_sync"] == "global"
    for key, value in ranks[0]["isda"].items():
        assert torch.equal(value, ranks[1]["isda"][key]), key
    assert ranks[0]["isda"]["stats.count"].tolist() == [6.0, 6.0]  # 2 epochs × 3 images per class


# ----------------------------------------------------------------------------- configuration


def test_isda_sync_option_validates_and_keeps_existing_run_ids():
    default = resolve({"method": "isda", "seed": 1})
    assert default.isda_sync == "global"
    assert default.run_id == resolve({"method": "isda", "seed": 1, "isda_sync": "global"}).run_id
    local = resolve({"method": "isda", "seed": 1, "isda_sync": "local"})
    assert local.run_id != default.run_id and local.slug.endswith("-local-s1")
    assert resolve({"method": "ce"}).isda_sync is None
    # The id of a run from before the option (and world_size, and the fields added since at the values
    # every earlier run had) existed: the experiment hashed without them.
    import hashlib

    before = {k: v for k, v in default.experiment.items() if k not in LATER_FIELDS}
    blob = json.dumps(before, sort_keys=True, separators=(",", ":"))
    assert default.run_id == hashlib.sha256(blob.encode()).hexdigest()[:12]
    for spec in ({"method": "isda", "isda_sync": "all"}, {"method": "ce", "isda_sync": "local"}):
        with pytest.raises(ConfigError) as info:
            resolve(spec)
        assert info.value.key == "isda_sync"


def test_imagenet_sweep_is_the_paper_table_on_eight_gpus():
    from bench.sweep.spec import load_sweep

    sweep = load_sweep(REPO / "sweeps" / "imagenet.yaml")
    assert sweep.resources == {"nodes": 1, "gpus_per_node": 8}
    assert {c.world_size for c in sweep.runs} == {8} and all(c.slug.endswith("-w8-s0") for c in sweep.runs)
    archs = {"resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d", "densenet121",
             "densenet264"}
    assert {(c.arch, c.method) for c in sweep.runs} == {(a, m) for a in archs for m in ("ce", "isda")}
    assert len(sweep.runs) == 14 and {c.seed for c in sweep.runs} == {0}
    for c in sweep.runs:
        assert (c.dataset, c.epochs, c.batch_size, c.lr, c.schedule, c.nesterov) == (
            "imagenet", 300, 512, 0.2, "cosine", False)
        if c.method == "isda":
            assert c.cov_mode == "diagonal" and c.isda_sync == "global"
            assert c.lambda0 == {"resnet101": 5.0, "densenet121": 1.0, "densenet264": 1.0}.get(c.arch, 7.5)


def test_world_size_names_multi_process_runs_only_and_must_match_the_processes(tmp_path, capsys):
    import hashlib

    from bench.cli import main
    from bench.sweep.spec import parse_sweep

    one = resolve({"method": "isda", "seed": 1})
    before = {k: v for k, v in one.experiment.items() if k not in LATER_FIELDS}
    blob = json.dumps(before, sort_keys=True, separators=(",", ":"))
    assert one.world_size == 1 and one.run_id == hashlib.sha256(blob.encode()).hexdigest()[:12]
    eight = resolve({"method": "isda", "seed": 1, "world_size": 8})
    assert eight.run_id != one.run_id and eight.slug.endswith("-w8-s1")
    for bad in (0, True, "2"):
        with pytest.raises(ConfigError) as info:
            resolve({"world_size": bad})
        assert info.value.key == "world_size"
    # A sweep's runs take their process count from its resources, and an explicit other one is refused.
    runs = parse_sweep({"include": [{"seed": 0}], "resources": {"nodes": 2, "gpus_per_node": 4}}, "s").runs
    assert [c.world_size for c in runs] == [8]
    with pytest.raises(ConfigError) as info:
        parse_sweep({"include": [{"seed": 0, "world_size": 4}], "resources": {"gpus_per_node": 2}}, "s")
    assert info.value.key == "world_size" and "nodes × gpus_per_node" in info.value.allowed
    # Started with another number of processes (here one), a run refuses before writing anything.
    out = tmp_path / "run"
    assert main(["train", "--set", "world_size=2", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "isda-bench: error: world_size: 2 is not allowed; 1, the number of processes this run was " \
                  "started with" and not out.exists()

"""bench.launch without a cluster (TrainJob, the local and debug executors, devices, what to train) and the run
directory parts it relies on (run locks, job.json, run states, retrying failed runs), and the CLI's refusals
(exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.common.errors import ConfigError
from bench.experiment.resolve import resolve
from bench.launch import devices, local
from bench.launch import job as launch_job
from bench.launch.devices import visible_gpus
from bench.launch.job import TrainJob
from bench.launch.todo import plan_todo
from bench.rundir.job import read_job_file, record_signal, record_start
from bench.rundir.lock import RunLock, lock_held
from bench.rundir.retry import reset_failed, restore_failed
from bench.rundir.state import RunState, run_state
from bench.sweep.spec import parse_sweep

FAST = {"dataset": "digits", "arch": "resnet32", "method": "ce", "epochs": 1}


def _sweep(n: int = 2):
    return parse_sweep({"name": "t", "include": [{**FAST, "seed": s} for s in range(n)]}, "t")


def test_lock_is_exclusive_and_probe_creates_nothing(tmp_path):
    run_dir = tmp_path / "run"
    assert not lock_held(run_dir) and not run_dir.exists()  # a probe writes nothing
    first = RunLock(run_dir)
    assert first.acquire()
    assert lock_held(run_dir)
    assert not RunLock(run_dir).acquire(wait_s=0.0)
    first.release()
    assert not lock_held(run_dir)
    assert RunLock(run_dir).acquire()


def test_lock_held_by_another_process_is_seen(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from bench.rundir.lock import RunLock
        assert RunLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert lock_held(tmp_path)
        assert run_state(tmp_path) == "running"
    finally:
        proc.kill()
        proc.wait()
    assert not lock_held(tmp_path)  # the kernel drops a dead holder's lock


def test_duplicate_task_does_not_train(tmp_path, monkeypatch):
    """A second job for a run that is being trained exits at once and writes nothing."""
    monkeypatch.setattr(launch_job, "LOCK_WAIT_S", 0.1)
    cfg = resolve({**FAST, "seed": 0})
    run_dir = tmp_path / cfg.run_id
    holder = RunLock(run_dir)
    assert holder.acquire()
    try:
        out = TrainJob(cfg.to_dict(), str(run_dir))()
    finally:
        holder.release()
    assert out["status"] == "duplicate"
    assert not (run_dir / "result.json").exists() and not (run_dir / "job.json").exists()


def test_trainjob_records_its_attempts_and_a_done_run_is_not_retrained(tmp_path):
    cfg = resolve({**FAST, "seed": 0})
    run_dir = tmp_path / cfg.run_id
    result = TrainJob(cfg.to_dict(), str(run_dir))()
    assert result["status"] == "completed"
    job = read_job_file(run_dir)
    assert job["attempt"] == 1 and job["cluster"] == "debug" and job["pid"] > 0
    mtime = (run_dir / "result.json").stat().st_mtime_ns
    assert TrainJob(cfg.to_dict(), str(run_dir))() == result  # the done-marker
    assert (run_dir / "result.json").stat().st_mtime_ns == mtime


def test_attempt_count_and_signal_survive_a_requeue(tmp_path):
    record_start(tmp_path)
    record_signal(tmp_path, "preempted")
    assert read_job_file(tmp_path)["signal"] == "preempted"
    rec = record_start(tmp_path)
    assert rec["attempt"] == 2 and rec["signal"] is None
    assert rec["history"][-1]["signal"] == "preempted"


def test_checkpoint_carries_no_state_and_marks_the_preemption(tmp_path):
    job = TrainJob({**FAST, "seed": 0}, str(tmp_path), timeout_min=60)
    job.extra = "in-memory state"  # anything a process accumulated must not travel with the requeue
    record_start(tmp_path)
    delayed = job.checkpoint()
    fresh = delayed.function
    assert isinstance(fresh, TrainJob) and fresh is not job and not hasattr(fresh, "extra")
    assert (fresh.config, fresh.run_dir, fresh.timeout_min) == (job.config, job.run_dir, 60)
    assert read_job_file(tmp_path)["signal"] == "preempted"


def test_plan_todo_skips_done_and_running_runs_and_retry_changes_nothing_on_disk(tmp_path):
    sweep = _sweep(3)
    root = tmp_path
    done, failed, busy = (sweep.run_dir(root, c) for c in sweep.runs)
    for d, status in ((done, "completed"), (failed, "failed")):
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({"status": status}))
    lock = RunLock(busy)
    assert lock.acquire()
    try:
        assert plan_todo(sweep, root) == []
        assert [c.run_id for c in plan_todo(sweep, root, retry_failed=True)] == [failed.name]
        assert (failed / "result.json").exists()
    finally:
        lock.release()
    assert reset_failed(failed) and not reset_failed(done)
    assert run_state(failed) == RunState.PENDING and (failed / "result.failed.json").exists()
    restore_failed(failed)  # the launch did not go ahead after all
    assert run_state(failed) == RunState.FAILED and not (failed / "result.failed.json").exists()


def test_visible_gpus_follow_the_parents_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr(devices, "_gpu_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]  # not 0 and 1: a child reads them against the physical list
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,GPU-bbbb")
    assert visible_gpus() == ["GPU-aaaa", "GPU-bbbb"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus() == ["0", "1"]


def test_local_launch_gives_each_run_one_gpu(tmp_path, monkeypatch):
    """Spread over the visible GPUs, one each, by CUDA_VISIBLE_DEVICES (the executor is faked)."""
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["4", "GPU-x"])
    submitted = []

    class FakeJob:
        def done(self):
            return True

        def exception(self):
            return None

    class FakeExecutor:
        def __init__(self, folder):
            self.folder, self.params = folder, {}

        def update_parameters(self, **kw):
            self.params.update(kw)

        def submit(self, fn):
            submitted.append((self.folder, dict(self.params), fn))
            return FakeJob()

    monkeypatch.setattr(local.submitit, "LocalExecutor", FakeExecutor)
    sweep = _sweep(3)
    assert local.launch_local(sweep, sweep.runs, tmp_path) == 0
    gpus = [fn.cuda_device for _, _, fn in submitted]
    assert gpus[:2] == ["4", "GPU-x"] and gpus[2] in ("4", "GPU-x")
    assert submitted[0][1]["visible_gpus"] == (4,)  # an index: submitit exports it itself
    assert "visible_gpus" not in submitted[1][1]  # a UUID: TrainJob exports it before CUDA starts
    folders = [folder for folder, _, _ in submitted]
    assert folders == [sweep.run_dir(tmp_path, c) / "logs" for c in sweep.runs]  # logs in each run's folder


def _sweep_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "s.yaml"
    run = "{dataset: digits, arch: resnet32, method: ce, epochs: 1, seed: 0}"
    path.write_text(f"name: t\ninclude:\n  - {run}\n{extra}")
    return path


@pytest.mark.parametrize("argv, key", [
    (["--cluster", "slurm", "--profile", "nope"], "profile"),
    (["--cluster", "local", "--profile", "gpu"], "--profile"),
    (["--cluster", "moon"], "--cluster"),
    (["--poll", "0"], "--poll"),
])
def test_launch_refusals_exit_2_and_write_nothing(tmp_path, capsys, argv, key):
    sweep = _sweep_file(tmp_path)
    res = tmp_path / "res"
    assert main(["launch", str(sweep), "--results", str(res), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"isda-bench: error: {key}")
    assert not res.exists()


def test_bad_profile_in_the_sweep_is_refused_before_failed_results_are_touched(tmp_path, capsys):
    prof = tmp_path / "p.yaml"
    prof.write_text("partition: gpu\ngpu_count: 2\n")
    sweep = _sweep_file(tmp_path, f"profile: {prof}\n")
    res = tmp_path / "res"
    cfg = resolve({**FAST, "seed": 0})
    failed = res / "t" / cfg.run_id
    failed.mkdir(parents=True)
    (failed / "result.json").write_text('{"status": "failed"}')
    assert main(["launch", str(sweep), "--results", str(res), "--cluster", "slurm", "--retry-failed"]) == 2
    err = capsys.readouterr().err
    assert "profile.gpu_count" in err and "valid profile keys: name, description, partition" in err
    assert (failed / "result.json").exists() and not (res / "t" / ".jobs.json").exists()


def test_debug_launch_then_status(tmp_path, capsys):
    sweep = _sweep_file(tmp_path)
    res = tmp_path / "res"
    assert main(["launch", str(sweep), "--results", str(res), "--cluster", "debug"]) == 0
    capsys.readouterr()
    assert main(["status", str(sweep), "--results", str(res)]) == 0
    out = capsys.readouterr().out
    assert "completed" in out and out.strip().endswith("1 runs: completed 1")
    assert main(["launch", str(sweep), "--results", str(res), "--cluster", "debug"]) == 0
    assert "0 to run" in capsys.readouterr().out


def test_a_failing_run_of_a_debug_launch_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    from bench.train.engine import Run

    step = Run.step_epoch

    def fail_seed_0(self, bar=None):
        if self.cfg.seed == 0:
            raise RuntimeError("simulated out of memory")
        return step(self, bar)

    monkeypatch.setattr(Run, "step_epoch", fail_seed_0)
    sweep = tmp_path / "t.yaml"
    sweep.write_text(yaml.safe_dump({"name": "t", "grid": {**{k: [v] for k, v in FAST.items()}, "seed": [0, 1]}}))
    res = tmp_path / "res"
    assert main(["launch", str(sweep), "--results", str(res), "--cluster", "debug"]) == 1
    err = capsys.readouterr().err
    assert "failed: RuntimeError: simulated out of memory" in err
    states = sorted(json.loads(p.read_text())["status"] for p in (res / "t").glob("*/result.json"))
    assert states == ["completed", "failed"]


@pytest.mark.slow
def test_multi_process_run_one_lock_one_bookkeeper(tmp_path):
    """A run with several processes (sweep `resources`: one task per GPU; gloo on CPU here): every
    rank trains, rank 0 alone takes the run lock and writes job.json, and all agree on the result."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = textwrap.dedent("""
        import sys
        from bench.launch.job import TrainJob
        cfg = {"dataset": "digits", "arch": "resnet32", "method": "isda", "epochs": 1, "seed": 0,
               "device": "cpu", "threads": 1, "world_size": 2}
        print(TrainJob(cfg, sys.argv[1])()["status"], flush=True)
    """)
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-1500:] for _, e in outs]
    assert [o.strip() for o, _ in outs] == ["completed", "completed"]
    assert read_job_file(tmp_path)["attempt"] == 1 and not lock_held(tmp_path)
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "completed"


def test_a_job_whose_processes_are_not_its_runs_world_size_is_refused_before_anything_is_written(tmp_path,
                                                                                                  monkeypatch):
    """The run config is the one source of world_size: a job started with another number of processes
    (here the environment of a 2-process launch around a 1-process run) stops with one clear line."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = resolve({**FAST, "seed": 0})
    with pytest.raises(ConfigError) as exc:
        TrainJob(cfg.to_dict(), str(tmp_path / cfg.run_id))()
    assert exc.value.key == "world_size" and "2, the number of processes this job started" in str(exc.value)
    assert not (tmp_path / cfg.run_id).exists()


def test_multi_process_runs_are_refused_where_they_cannot_have_their_processes(tmp_path, capsys, monkeypatch):
    sweep = _sweep_file(tmp_path, "resources: {gpus_per_node: 2}\n")
    res = tmp_path / "res"
    assert main(["launch", str(sweep), "--results", str(res), "--cluster", "debug"]) == 2
    assert capsys.readouterr().err.strip().startswith("isda-bench: error: --cluster: 'debug'")
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["0"])
    assert main(["launch", str(sweep), "--results", str(res), "--cluster", "local"]) == 2
    assert "world_size: 2 is not allowed; at most 1 here" in capsys.readouterr().err
    assert not res.exists()


def test_local_launch_gives_a_multi_process_run_one_task_and_one_gpu_per_process(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["0", "1", "2", "3"])
    submitted = []

    class FakeExecutor:
        def __init__(self, folder):
            self.params = {}

        def update_parameters(self, **kw):
            self.params.update(kw)

        def submit(self, fn):
            submitted.append((dict(self.params), fn))
            return type("Done", (), {"done": lambda self: True, "exception": lambda self: None})()

    monkeypatch.setattr(local.submitit, "LocalExecutor", FakeExecutor)
    sweep = parse_sweep({"name": "t", "include": [{**FAST, "seed": s} for s in range(3)],
                         "resources": {"gpus_per_node": 2}}, "t")
    assert local.launch_local(sweep, sweep.runs, tmp_path) == 0
    assert [p["tasks_per_node"] for p, _ in submitted] == [2, 2, 2]
    assert [p["visible_gpus"] for p, _ in submitted[:2]] == [(0, 1), (2, 3)]
    assert [fn.cuda_device for _, fn in submitted[:2]] == ["0,1", "2,3"]
    assert submitted[2][0]["visible_gpus"] in ((0, 1), (2, 3), (1, 0), (3, 2))  # freed ones, reused
    assert all(fn.master_port for _, fn in submitted) and len({fn.master_port for _, fn in submitted[:2]}) == 2

    # --parallel beyond the GPUs: devices are shared between runs, never twice within one run.
    submitted.clear()
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["0", "1", "2"])
    FakeExecutor.submit = lambda self, fn: submitted.append((dict(self.params), fn)) or type(
        "Running", (), {"done": lambda self: False, "exception": lambda self: None})()
    class Stop(Exception):
        pass

    def stop(seconds):
        raise Stop

    monkeypatch.setattr(local.time, "sleep", stop)
    with pytest.raises(Stop):  # stop at the first wait: all three are running by then
        local.launch_local(sweep, sweep.runs, tmp_path, parallel=3)
    held = [p["visible_gpus"] for p, _ in submitted]
    assert held[:2] == [(0, 1), (2, 0)] and all(len(set(h)) == 2 for h in held)
    assert held[2] == (1, 2)  # the least used: 0 is held twice already


def test_cpu_runs_of_several_processes_need_no_gpus(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["0"])
    sweep = parse_sweep({"name": "t", "include": [{**FAST, "device": "cpu"}], "resources": {"gpus_per_node": 2}},
                        "t")
    devices.check_fits("local", sweep.runs)  # gloo on the CPU: the one GPU does not limit it
    with pytest.raises(ConfigError):
        devices.check_fits("local", [replace(sweep.runs[0], device="auto")])


@pytest.mark.slow
def test_local_launch_trains_a_two_process_run_on_the_cpu(tmp_path, capsys):
    """The real thing: submitit's local executor starts two tasks, which form a gloo group."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: t\ninclude:\n  - {dataset: digits, arch: resnet32, method: isda, epochs: 1, seed: 0, "
                     "device: cpu}\nresources: {gpus_per_node: 2}\n")
    res = tmp_path / "res"
    assert main(["launch", str(sweep), "--results", str(res), "--cluster", "local"]) == 0
    (run_dir,) = [p for p in (res / "t").iterdir() if p.is_dir()]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and result["world_size"] == 2
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["world_size"] == 2

"""SLURM launches (bench.launch: profiles, slurm, scheduler, status, wait): profiles, array chunking, job-state
merging, double-submit refusal (unit tests), and a
digits sweep on the real SLURM cluster with one preempted and one externally requeued run (marked
``slurm``: skipped without a cluster, a failure under CI=true; see tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.common.errors import ConfigError
from bench.launch import scheduler, slurm
from bench.launch.jobs import write_jobs
from bench.launch.profiles import PROFILE_KEYS, Profile, load_profile, parse_profile
from bench.launch.scheduler import parse_state_lines
from bench.launch.slurm import chunks, split_active
from bench.launch.status import RunStatus, merge_state, sweep_status
from bench.launch.wait import wait_sweep
from bench.rundir.job import record_signal, record_start
from bench.rundir.lock import RunLock
from bench.rundir.state import RunState
from bench.sweep.spec import load_sweep, parse_sweep
from tests.helpers import metric_rows, result_json

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "bench.cli"]


# ---------------------------------------------------------------- profiles

def test_unknown_profile_key_is_refused_with_the_valid_list():
    with pytest.raises(ConfigError) as exc:
        parse_profile({"partition": "gpu", "gpus": 1})
    assert exc.value.key == "profile.gpus"
    assert all(k in exc.value.allowed for k in PROFILE_KEYS)


@pytest.mark.parametrize("data, key", [
    ({"gpus_per_node": 2}, "profile.gpus_per_node"),  # one run, one GPU
    ({"cpus_per_task": 0}, "profile.cpus_per_task"),
    ({"mem_gb": "lots"}, "profile.mem_gb"),
    ({"mem_gb": float("nan")}, "profile.mem_gb"),  # used to be a traceback at submission
    ({"mem_gb": float("inf")}, "profile.mem_gb"),
    ({"mem_gb": 0.0004}, "profile.mem_gb"),  # --mem=0MB: SLURM gives the whole node
    ({"setup": [1]}, "profile.setup"),
    ({"timeout_min": 1, "signal_delay_s": 120}, "profile.signal_delay_s"),
    ({"max_array_size": True}, "profile.max_array_size"),
    ([1, 2], "profile"),
])
def test_bad_profile_values_name_the_key(data, key):
    with pytest.raises(ConfigError) as exc:
        parse_profile(data)
    assert exc.value.key == key


def test_profile_maps_onto_submitit_parameters():
    prof = parse_profile({"partition": "gpu", "account": "proj", "qos": "high", "constraint": "a100",
                          "gpus_per_node": 1, "cpus_per_task": 6, "mem_gb": 2.5, "timeout_min": 90,
                          "setup": "module load cuda", "array_parallelism": 3, "signal_delay_s": 150,
                          "max_num_timeout": 4, "sbatch": {"mail-type": "END"}})
    params = prof.executor_parameters("isda-x")
    assert params["partition"] == "gpu" and params["account"] == "proj" and params["qos"] == "high"
    assert params["constraint"] == "a100" and params["gpus_per_node"] == 1 and params["cpus_per_task"] == 6
    assert params["mem"] == "2560MB" and params["time"] == 90 and params["setup"] == ["module load cuda"]
    assert params["array_parallelism"] == 3 and params["signal_delay_s"] == 150
    assert params["additional_parameters"] == {"requeue": True, "mail-type": "END"}
    from submitit.slurm.slurm import _make_sbatch_string  # the sbatch script, without needing srun

    script = _make_sbatch_string(command="run", folder="/tmp/x/%j", map_count=5, **params)
    assert "#SBATCH --array=0-4%3" in script and "#SBATCH --signal=USR2@150" in script
    assert "#SBATCH --requeue" in script and "module load cuda" in script


def test_a_runs_processes_give_one_task_per_gpu():
    """ImageNet-style runs (world_size 8, from the sweep's `resources`) override the profile's one device per run."""
    params = Profile(gpus_per_node=1, cpus_per_task=8, mem_gb=32).executor_parameters("isda-imagenet", 8)
    assert params["gpus_per_node"] == 8 and params["ntasks_per_node"] == 8 and params["nodes"] == 1
    assert params["cpus_per_task"] == 8 and params["mem"] == "256GB"  # per node: 8 processes × 32 GB
    # One dead process ends the step rather than leaving seven waiting in a collective.
    from submitit.slurm.slurm import _make_sbatch_string

    script = _make_sbatch_string(command="run", folder="/tmp/x/%j", map_count=2, **params)
    assert "srun --unbuffered" in script and "--kill-on-bad-exit=1" in script
    single = Profile().executor_parameters("x")
    assert "ntasks_per_node" not in single and single["gpus_per_node"] == 1


def test_defaults_and_shipped_profiles():
    default = load_profile(None)
    assert default.signal_delay_s >= 120 and default.gpus_per_node == 1 and default.max_array_size == 1000
    for path in sorted((REPO / "slurm" / "profiles").glob("*.yaml")):
        prof = load_profile(str(path))
        assert prof.gpus_per_node in (0, 1) and prof.signal_delay_s >= 120, path
    assert load_profile("local-cluster").gpus_per_node == 0  # a bare name finds slurm/profiles/NAME.yaml
    with pytest.raises(ConfigError) as exc:
        load_profile("no-such-profile")
    assert "gpu" in exc.value.allowed and "local-cluster" in exc.value.allowed


# ---------------------------------------------------------------- arrays

@pytest.mark.parametrize("n, size, shape", [(0, 3, []), (3, 3, [3]), (7, 3, [3, 3, 1]),
                                            (2500, 1000, [1000, 1000, 500])])
def test_chunks_by_max_array_size(n, size, shape):
    parts = chunks(list(range(n)), size)
    assert [len(p) for p in parts] == shape
    assert [x for p in parts for x in p] == list(range(n))


def test_arrays_are_chained_so_parallelism_holds_for_the_sweep(tmp_path, monkeypatch):
    """Three chunks → three arrays, the 2nd and 3rd depending on the one before; records written."""
    calls = []

    class FakeJob:
        def __init__(self, job_id):
            self.job_id = job_id
            self.paths = type("P", (), {"folder": tmp_path, "stdout": tmp_path / "o",
                                        "stderr": tmp_path / "e"})

    class FakeExecutor:
        def __init__(self):
            self.params = {}

        def update_parameters(self, **kw):
            self.params.update(kw)

        def submit_array(self, fns):
            array = str(100 + len(calls))
            calls.append((dict(self.params), fns))
            return [FakeJob(f"{array}_{i}") for i in range(len(fns))]

    monkeypatch.setattr(slurm, "_executor", lambda folder, prof, name, world_size=1, nodes=1: FakeExecutor())
    sweep = parse_sweep({"name": "t", "grid": {"dataset": "digits", "seed": list(range(5))}}, "t")
    records = {}
    prof = Profile(max_array_size=2, cpus_per_task=3)
    ids = slurm.submit_arrays(sweep, sweep.runs, tmp_path, prof, records)
    assert ids == ["100", "101", "102"] and [len(f) for _, f in calls] == [2, 2, 1]
    assert "dependency" not in calls[0][0]
    assert calls[1][0]["dependency"] == "afterany:100" and calls[2][0]["dependency"] == "afterany:101"
    assert calls[0][1][0].config["threads"] == 3  # the run's CPU threads follow the allocation
    saved = json.loads((tmp_path / "t" / ".jobs.json").read_text())["runs"]
    assert {r["job_id"] for r in saved.values()} == {"100_0", "100_1", "101_0", "101_1", "102_0"}


def test_a_runs_tasks_come_from_its_config_and_its_nodes_from_the_sweep(tmp_path, monkeypatch):
    """world_size has one source, the run config: SLURM does not count processes from the sweep again."""
    seen = []

    class FakeExecutor:
        def update_parameters(self, **kw):
            pass

        def submit_array(self, fns):
            paths = type("P", (), {"folder": tmp_path, "stdout": tmp_path / "o", "stderr": tmp_path / "e"})
            return [type("J", (), {"job_id": f"5_{i}", "paths": paths})() for i in range(len(fns))]

    def executor(folder, prof, name, world_size=1, nodes=1):
        seen.append((world_size, nodes))
        return FakeExecutor()

    monkeypatch.setattr(slurm, "_executor", executor)
    spread = parse_sweep({"name": "t", "include": [{"dataset": "digits"}],
                          "resources": {"nodes": 2, "gpus_per_node": 2}}, "t")
    assert spread.runs[0].world_size == 4
    slurm.submit_arrays(spread, spread.runs, tmp_path, Profile(), {})
    assert seen == [(4, 2)]
    params = Profile().executor_parameters("x", 4, 2)
    assert (params["nodes"], params["ntasks_per_node"], params["gpus_per_node"]) == (2, 2, 2)
    # A sweep without `resources` whose run says 2 processes: 2 tasks, as the run will check when it starts.
    plain = parse_sweep({"name": "u", "include": [{"dataset": "digits"}]}, "u")
    two = dataclasses.replace(plain, runs=[dataclasses.replace(plain.runs[0], world_size=2)])
    seen.clear()
    slurm.submit_arrays(two, two.runs, tmp_path, Profile(), {})
    assert seen == [(2, 1)]
    with pytest.raises(ConfigError) as exc:
        Profile().executor_parameters("x", 3, 2)
    assert exc.value.key == "resources.nodes"


# ---------------------------------------------------------------- states

def test_parse_state_lines_expands_pending_array_ranges():
    text = "12_[3-5%2]|PENDING\n12_0|RUNNING\n12_1|CANCELLED by 0\n12_1.batch|COMPLETED\n13|REQUEUED\n"
    assert parse_state_lines(text) == {"12_3": "PENDING", "12_4": "PENDING", "12_5": "PENDING",
                                       "12_0": "RUNNING", "12_1": "CANCELLED", "13": "REQUEUED"}


@pytest.mark.parametrize("args, state, active", [
    (("completed", True, None, "RUNNING", 5.0), "completed", False),  # result.json wins
    (("diverged", True, None, None, None), "diverged", False),
    (("failed", True, None, "COMPLETED", 5.0), "failed", False),
    (("running", True, None, "PENDING", 5.0), "running", True),  # a live process holds the run lock
    (("pending", False, None, "PENDING", 5.0), "pending", True),
    (("pending", False, None, None, 5.0), "pending", True),  # just submitted, not yet in squeue/sacct
    (("interrupted", True, None, None, 10_000.0), "interrupted", False),  # the job is gone
    (("pending", False, None, None, None), "pending", False),  # never submitted
    (("interrupted", True, None, "RUNNING", 5.0), "running", True),
    (("interrupted", True, "preempted", "PENDING", 5.0), "preempted", True),
    (("interrupted", True, "preempted", "REQUEUED", 5.0), "preempted", True),
    (("interrupted", True, None, "PENDING", 5.0), "requeued", True),  # scontrol requeue: no signal
    (("interrupted", True, "timeout", "PENDING", 5.0), "requeued", True),
    (("interrupted", True, None, "PREEMPTED", 5.0), "preempted", False),  # not a failure
    (("interrupted", True, None, "FAILED", 5.0), "failed", False),
    (("pending", True, None, "CANCELLED", 5.0), "failed", False),
    (("interrupted", True, None, "OUT_OF_MEMORY", 5.0), "failed", False),
])
def test_merge_state(args, state, active):
    got, got_active, _ = merge_state(*args)
    assert (got, got_active) == (state, active)


def _fake_runs(tmp_path):
    sweep = parse_sweep({"name": "t", "grid": {"dataset": "digits", "seed": [0, 1, 2, 3]}}, "t")
    ids = [f"7_{i}" for i in range(4)]
    write_jobs(tmp_path / "t", {c.run_id: {"job_id": j, "submitted_unix": time.time() - 60}
                                for c, j in zip(sweep.runs, ids)})
    return sweep, ids


def test_sweep_status_merges_run_dirs_with_slurm_states(tmp_path, monkeypatch):
    sweep, ids = _fake_runs(tmp_path)
    dirs = [sweep.run_dir(tmp_path, c) for c in sweep.runs]
    for d in dirs[1:]:
        d.mkdir(parents=True)
        (d / "checkpoint.pt").write_bytes(b"x")
    for i in (1, 2):  # started by their recorded array task, as TrainJob does under SLURM
        monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "7")
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(i))
        record_start(dirs[i])
    record_signal(dirs[1], "preempted")
    (dirs[3] / "result.json").write_text('{"status": "completed"}')
    states = {ids[0]: "PENDING", ids[1]: "PENDING", ids[2]: "PENDING", ids[3]: "COMPLETED"}
    got = sweep_status(sweep, tmp_path, query=lambda jobs: {j: states[j] for j in jobs})
    assert [s.state for s in got] == ["pending", "preempted", "requeued", "completed"]
    assert [s.active for s in got] == [True, True, True, False]
    preempted_final = sweep_status(sweep, tmp_path, query=lambda jobs: {j: "PREEMPTED" for j in jobs})
    assert preempted_final[1].state == "preempted" and not preempted_final[1].active


def test_queued_or_running_runs_are_not_submitted_twice(tmp_path):
    sweep, ids = _fake_runs(tmp_path)
    states = {ids[0]: "PENDING", ids[1]: "RUNNING", ids[2]: "FAILED", ids[3]: "PREEMPTED"}
    statuses = sweep_status(sweep, tmp_path, query=lambda jobs: {j: states[j] for j in jobs})
    submit, busy = split_active(sweep.runs, statuses)
    assert [s.job_id for s in busy] == ids[:2]
    assert submit == sweep.runs[2:]  # a failed job and a final PREEMPTED are submitted again


def test_launch_slurm_refuses_active_runs_and_submits_the_rest(tmp_path, monkeypatch, capsys):
    sweep, ids = _fake_runs(tmp_path)
    monkeypatch.setattr(scheduler, "query_states",
                        lambda jobs: {j: ("RUNNING" if j == ids[0] else "FAILED") for j in jobs})
    submitted = []
    monkeypatch.setattr(slurm, "submit_arrays",
                        lambda sw, runs, root, prof, rec: submitted.extend(runs) or ["9"])
    assert slurm.launch_slurm(sweep, sweep.runs, tmp_path, profile=Profile()) == 0
    out = capsys.readouterr().out
    assert submitted == sweep.runs[1:]
    assert "not submitting 1 runs again" in out and ids[0] in out and "status: isda-bench status" in out


def test_a_running_local_process_counts_as_active(tmp_path):
    sweep, _ = _fake_runs(tmp_path)
    lock = RunLock(sweep.run_dir(tmp_path, sweep.runs[2]))
    assert lock.acquire()
    try:
        got = sweep_status(sweep, tmp_path, query=lambda jobs: {j: "FAILED" for j in jobs})
    finally:
        lock.release()
    assert got[2].state == "running" and got[2].active


def test_wait_stops_when_a_run_can_no_longer_finish(tmp_path, capsys):
    sweep, ids = _fake_runs(tmp_path)
    rc = wait_sweep(sweep, tmp_path, poll_s=0.01, stall_polls=2,
                          query=lambda jobs: {j: "CANCELLED" for j in jobs})
    assert rc == 1


def test_status_run_statuses_are_typed():
    s = RunStatus(cfg=None, state=RunState.COMPLETED, active=False)  # type: ignore[arg-type]
    assert s.ended and not RunStatus(cfg=None, state=RunState.PREEMPTED, active=True).ended  # type: ignore[arg-type]


# ---------------------------------------------------------------- the real cluster

LONG_EPOCHS = 12
# Hang guards: how long a wait may last before the test calls it a hang. Generous, since a busy
# 2-core machine is slow, not broken; nothing in these tests depends on how fast it is.
HANG_S = 900
SWEEP = f"""
name: slurmit
include:   # order = array task order: the short runs take the first two slots (2 cores)
  - {{dataset: digits, arch: resnet32, method: ce, epochs: 2, seed: 2}}
  - {{dataset: digits, arch: resnet32, method: ce, epochs: 2, seed: 3}}
  - {{dataset: digits, arch: resnet32, method: isda, lambda0: 0.5, epochs: {LONG_EPOCHS}, seed: 0}}
  - {{dataset: digits, arch: resnet32, method: ce, epochs: {LONG_EPOCHS}, seed: 1}}
"""


def _cli(*args: str, timeout: float = HANG_S) -> subprocess.CompletedProcess[str]:  # a hang guard, not a limit
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          check=False)


def _epochs(run_dir: Path) -> int:
    try:
        return max(0, len((run_dir / "metrics.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0


def _wait_for(what, cond, timeout: float = HANG_S, poll: float = 0.25):
    """``what``: a description, or a function giving one when the wait fails (what was seen by then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")
        time.sleep(poll)


def _suspend(job_id: str) -> None:
    """Stop a running job's processes (SIGSTOP) where they are, so that it is interrupted mid-run
    however fast the machine trains; `_resume` lets it go on."""
    subprocess.run(["scontrol", "suspend", job_id], check=True, timeout=60)


def _resume(job_id: str) -> None:
    subprocess.run(["scontrol", "resume", job_id], check=True, timeout=60)


def _communicate(proc: subprocess.Popen, what: str) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=HANG_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what} did not end within {HANG_S} s")


def _partition(state: str) -> None:
    """Set the local cluster's partition UP or DOWN. DOWN keeps running jobs running and queues
    new and requeued ones without starting them, as a full cluster would."""
    name = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=30,
                          check=True).stdout.split()[0]
    subprocess.run(["scontrol", "update", f"PartitionName={name}", f"State={state}"], check=True, timeout=30)


@pytest.mark.slurm
def test_a_request_sbatch_refuses_is_one_line_and_a_failed_run_stays_failed(tmp_path):
    sweep_file = tmp_path / "refused.yaml"
    sweep_file.write_text("include:\n  - {dataset: digits, arch: resnet32, method: ce, epochs: 1, seed: 0}\n")
    root = tmp_path / "results"
    (cfg,) = load_sweep(sweep_file).runs
    run_dir = root / "refused" / cfg.run_id
    run_dir.mkdir(parents=True)
    failed = json.dumps({"run_id": cfg.run_id, "status": "failed", "reason": "RuntimeError: earlier"})
    (run_dir / "result.json").write_text(failed)
    profile = tmp_path / "nosuch.yaml"
    profile.write_text((REPO / "slurm" / "profiles" / "local-cluster.yaml").read_text()
                       .replace("partition: debug", "partition: nosuch"))
    r = _cli("launch", str(sweep_file), "--cluster", "slurm", "--profile", str(profile), "--results", str(root),
             "--retry-failed")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("isda-bench: error: profile:"), r.stderr
    assert "sbatch said:" in r.stderr and "partition" in r.stderr.lower() and "Traceback" not in r.stderr
    assert (run_dir / "result.json").read_text() == failed and not (run_dir / "result.failed.json").exists()


@pytest.mark.slurm
def test_sweep_on_slurm_survives_preemption_and_external_requeue(tmp_path):
    """Four digits runs as one array on the real cluster; one running task is preempted through
    submitit (job._interrupt(): TERM then USR2 → checkpoint() → requeue), another is requeued from
    outside with `scontrol requeue` (TERM only, then killed: no checkpoint() call). Both resume
    from their epoch checkpoint and end equal to uninterrupted runs of the same seeds, every
    column compared except the timing ones (epoch_time_s, wall_time_s, images_per_s), which
    cannot be identical between two runs."""
    import submitit

    sweep_file = tmp_path / "slurmit.yaml"
    sweep_file.write_text(SWEEP)
    root = tmp_path / "results"
    sweep = load_sweep(sweep_file)
    short_a, short_b, preempt, requeue = sweep.runs
    sweep_dir = root / sweep.name

    # The uninterrupted references, trained beside the cluster's jobs with the same thread count.
    refs = tmp_path / "refs"
    ref_procs = [subprocess.Popen(
        [*CLI, "train", "--dataset", "digits", "--arch", "resnet32", "--method", c.method,
         "--seed", str(c.seed), "--epochs", str(c.epochs), "--threads", "1", "--set", f"sweep={sweep.name}",
         *(["--lambda0", str(c.lambda0)] if c.lambda0 is not None else []), "--out", str(refs / c.run_id)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in (preempt, requeue)]

    launch = [*CLI, "launch", str(sweep_file), "--cluster", "slurm", "--profile", "local-cluster",
              "--results", str(root)]
    waiter = subprocess.Popen([*launch, "--wait", "--poll", "1"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        jobs_file = sweep_dir / ".jobs.json"
        _wait_for("the submission record", jobs_file.exists)
        records = json.loads(jobs_file.read_text())["runs"]
        assert len(records) == 4 and len({r["array_job_id"] for r in records.values()}) == 1  # one array

        # A relaunch while the runs are queued or running submits nothing.
        again = _cli("launch", str(sweep_file), "--cluster", "slurm", "--profile", "local-cluster",
                     "--results", str(root))
        assert again.returncode == 0, again.stderr
        assert "nothing submitted" in again.stdout
        assert json.loads(jobs_file.read_text())["runs"] == records

        # Each long run is held where it is once it has an epoch on disk, so that both are interrupted
        # mid-run whichever starts first and however fast they train.
        pre_dir, req_dir = sweep.run_dir(root, preempt), sweep.run_dir(root, requeue)
        pre_id, req_id = records[preempt.run_id]["job_id"], records[requeue.run_id]["job_id"]
        held = {}
        for run_dir, job_id in ((pre_dir, pre_id), (req_dir, req_id)):
            _wait_for(f"an epoch of job {job_id} on disk", lambda d=run_dir: _epochs(d) >= 1, poll=0.1)
            _suspend(job_id)
            held[job_id] = _epochs(run_dir)
        assert max(held.values()) < LONG_EPOCHS - 1, held
        # The requeued jobs wait until the partition is up again, so that status is sure to see
        # them waiting; on an idle cluster they would restart within seconds, and a poll under load
        # could miss that window. A job is signalled only once it trains again after its resume
        # (an epoch more on disk): signals sent while it wakes up are lost.
        _partition("DOWN")
        for run_dir, job_id in ((pre_dir, pre_id), (req_dir, req_id)):
            _resume(job_id)
            _wait_for(f"job {job_id} to train again", lambda d=run_dir, j=job_id: _epochs(d) > held[j], poll=0.1)
            if job_id == pre_id:
                submitit.SlurmJob(folder=sweep_dir / ".slurm" / "%j", job_id=pre_id)._interrupt()
            else:
                subprocess.run(["scontrol", "requeue", req_id], check=True, timeout=60)

        # status tells the truth during: preempted / requeued (not failed), then running again.
        seen: dict[str, set[str]] = {preempt.run_id: set(), requeue.run_id: set()}

        def observe() -> bool:
            for s in sweep_status(sweep, root):
                if s.cfg.run_id in seen:
                    seen[s.cfg.run_id].add(s.state)
                assert s.state != "failed", s
            return "preempted" in seen[preempt.run_id] and "requeued" in seen[requeue.run_id]

        _wait_for(lambda: f"status to show preempted and requeued (seen: {seen})", observe, poll=0.3)
        mid = _cli("status", str(sweep_file), "--results", str(root), "-v")
        assert mid.returncode == 0 and "failed" not in mid.stdout, mid.stdout
        assert "preempted" in mid.stdout and "requeued" in mid.stdout, mid.stdout  # still waiting
        _partition("UP")

        out, err = _communicate(waiter, "launch --wait")
        assert waiter.returncode == 0, err[-2000:]
    finally:
        _partition("UP")
        if waiter.poll() is None:
            waiter.kill()
            subprocess.run(["scancel", "--name", f"isda-{sweep.name}"], check=False)
        ref_errors = [_communicate(p, "a reference run trained by hand")[1] for p in ref_procs]
    assert "finished" in err and "completed 4" in out

    # Every result arrived; the two interrupted runs really were restarted.
    for cfg in sweep.runs:
        assert json.loads((sweep.run_dir(root, cfg) / "result.json").read_text())["status"] == "completed"
    pre_job = json.loads((pre_dir / "job.json").read_text())
    req_job = json.loads((req_dir / "job.json").read_text())
    assert pre_job["attempt"] >= 2 and pre_job["history"][-1]["signal"] == "preempted"
    assert req_job["attempt"] >= 2 and req_job["history"][-1]["signal"] is None
    assert pre_job["job_id"] == records[preempt.run_id]["job_id"]  # the same array task, requeued
    assert any((pre_dir / "logs").glob("slurm-*.out"))

    # Equal to the uninterrupted runs, timings aside.
    for p, stderr in zip(ref_procs, ref_errors):
        assert p.returncode == 0, stderr[-2000:]
    for cfg, run_dir in ((preempt, pre_dir), (requeue, req_dir)):
        ref = refs / cfg.run_id
        assert metric_rows(run_dir) == metric_rows(ref)
        assert len(metric_rows(run_dir)) == LONG_EPOCHS
        assert result_json(run_dir) == result_json(ref)

    # status after: all completed; a relaunch submits nothing.
    after = _cli("status", str(sweep_file), "--results", str(root))
    assert after.returncode == 0 and after.stdout.strip().endswith("4 runs: completed 4"), after.stdout
    before = (sweep_dir / ".jobs.json").read_text()
    relaunch = _cli("launch", str(sweep_file), "--cluster", "slurm", "--profile", "local-cluster",
                    "--results", str(root))
    assert relaunch.returncode == 0 and "0 to run" in relaunch.stdout, relaunch.stdout
    assert (sweep_dir / ".jobs.json").read_text() == before


@pytest.mark.slurm
def test_a_two_process_run_on_slurm_survives_preemption_and_equals_the_same_run_started_by_hand(tmp_path):
    """One run of two processes (`resources: {gpus_per_node: 2}` on the CPU-only profile: two
    gloo tasks, no GPU requested) as a real SLURM job: srun starts both tasks, they find each
    other through submitit's environment; preempted after its first epoch, the job is requeued
    and both tasks resume from the checkpoint; the result equals that of the same two processes
    started by hand with RANK/WORLD_SIZE set (every column but the timing ones)."""
    import submitit

    from tests.test_distributed import _launch, _wait, free_port

    epochs = 6
    sweep_file = tmp_path / "ddp.yaml"
    sweep_file.write_text(f"name: ddp\ninclude:\n  - {{dataset: digits, arch: resnet32, method: isda, "
                          f"epochs: {epochs}, seed: 4, device: cpu}}\nresources: {{gpus_per_node: 2}}\n")
    root = tmp_path / "results"
    (cfg,) = load_sweep(sweep_file).runs
    assert cfg.world_size == 2
    run_dir = root / "ddp" / cfg.run_id
    waiter = subprocess.Popen([*CLI, "launch", str(sweep_file), "--cluster", "slurm", "--profile", "local-cluster",
                               "--results", str(root), "--wait", "--poll", "1"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for("the first epoch", lambda: _epochs(run_dir) >= 1, poll=0.1)
        record = json.loads((root / "ddp" / ".jobs.json").read_text())["runs"][cfg.run_id]
        _suspend(record["job_id"])  # held mid-run however fast it trains
        held = _epochs(run_dir)
        assert held < epochs - 1
        _resume(record["job_id"])  # signalled once it trains again: signals sent while it wakes up are lost
        _wait_for("the job to train again", lambda: _epochs(run_dir) > held, poll=0.1)
        submitit.SlurmJob(folder=root / "ddp" / ".slurm" / "%j", job_id=record["job_id"])._interrupt()
        out, err = _communicate(waiter, "launch --wait")
        assert waiter.returncode == 0, err[-2000:]
    finally:
        if waiter.poll() is None:
            waiter.kill()
            subprocess.run(["scancel", "--name", "isda-ddp"], check=False)
    job = json.loads((run_dir / "job.json").read_text())
    assert job["attempt"] >= 2 and job["history"][-1]["signal"] == "preempted" and job["cluster"] == "slurm"

    by_hand = tmp_path / "by-hand"
    _wait(_launch({**cfg.to_dict(), "threads": 1}, by_hand, free_port()), timeout=HANG_S)
    assert metric_rows(run_dir) == metric_rows(by_hand)
    assert result_json(run_dir) == result_json(by_hand)
    assert result_json(run_dir)["world_size"] == 2

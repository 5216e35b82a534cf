"""SLURM: cluster profiles, job-array submission, job-state tracking, and the merged run status.

A profile (slurm/profiles/*.yaml) is a flat mapping of PROFILE_KEYS; see slurm/profiles/README
comments in the shipped files. Every run becomes one array task; arrays hold at most
``max_array_size`` tasks and are chained so that at most ``array_parallelism`` tasks of a sweep
run at once. ``results/<sweep>/.jobs.json`` maps run_id → the job that was last submitted for it;
the state of a run merges what its directory says (result.json, the run lock, job.json) with what
SLURM says about that job (squeue while the controller knows it, sacct after).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench.common.errors import ConfigError
from bench.common.files import atomic_write_json
from bench.common.shipped import shipped_dir, shipped_file, shipped_names
from bench.experiment.runconfig import RunConfig
from bench.launch.local import DONE_STATES, TrainJob, epochs_done, now_iso, read_job_file, run_state
from bench.sweep.spec import Sweep, read_yaml

REPO_PROFILES = shipped_dir("profiles")  # the shipped profiles; slurm/profiles/ in a checkout links here
JOBS_FILE = ".jobs.json"
LOG_DIR = ".slurm"

# ---------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """Where and how each run of a sweep is scheduled; one run = one array task = at most one GPU."""

    name: str = "default"
    description: str = ""
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: float | None = 32
    timeout_min: int = 24 * 60
    setup: tuple[str, ...] = ()
    array_parallelism: int = 64
    max_array_size: int = 1000  # SLURM's default MaxArraySize is 1001 (indices 0..1000)
    # Seconds between the warning signal and the kill: time to requeue. train.py checkpoints after
    # every epoch, so the signal only has to be heard, not to trigger a long save.
    signal_delay_s: int = 120
    max_num_timeout: int = 10  # time-limit requeues per run (preemptions do not count)
    sbatch: Mapping[str, Any] = field(default_factory=dict)  # any other #SBATCH option, verbatim
    source: str | None = None  # the file it came from

    def executor_parameters(self, job_name: str,
                            resources: Mapping[str, int] | None = None) -> dict[str, Any]:
        """submitit SlurmExecutor parameters (its native names).

        ``resources``: a sweep's per-run needs ({nodes, gpus_per_node}, e.g. ImageNet's 8 GPUs), which
        override the profile's one device per run: then one task (process) per GPU, and cpus_per_task
        and mem_gb count per process. On a profile of CPU nodes (``gpus_per_node: 0``) the same number
        of processes is started and no GPU is requested."""
        resources = dict(resources or {})
        nodes = resources.get("nodes", 1)
        gpus = resources.get("gpus_per_node", self.gpus_per_node)
        tasks = max(1, gpus) if resources else 1
        params: dict[str, Any] = {
            "job_name": job_name, "time": self.timeout_min, "cpus_per_task": self.cpus_per_task,
            "signal_delay_s": self.signal_delay_s, "array_parallelism": self.array_parallelism,
            # Explicit, so `scontrol requeue` and submitit's own requeue work where JobRequeue=0.
            "additional_parameters": {"requeue": True, **dict(self.sbatch)},
        }
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if gpus and self.gpus_per_node:  # a profile of CPU nodes (gpus_per_node: 0) asks for none:
            params["gpus_per_node"] = gpus  # the run's processes are CPU processes (gloo)
        if nodes > 1 or tasks > 1:
            # A process that dies would leave the others waiting in a collective until its timeout
            # (30 min): srun ends the whole step instead, and the job fails at once.
            params.update(nodes=nodes, ntasks_per_node=tasks, srun_args=["--kill-on-bad-exit=1"])
        if self.mem_gb is not None:
            mem = self.mem_gb * tasks  # --mem is per node
            params["mem"] = f"{int(mem)}GB" if mem == int(mem) else f"{int(mem * 1024)}MB"
        if self.setup:
            params["setup"] = list(self.setup)
        return params


PROFILE_KEYS = tuple(f.name for f in fields(Profile) if f.name != "source")
_OPTIONAL_STR = ("partition", "account", "qos", "constraint")
_POSITIVE_INT = ("cpus_per_task", "timeout_min", "array_parallelism", "max_array_size", "signal_delay_s")


def _int(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, value, f"an integer >= {low}")
    return value


def parse_profile(data: Any, name: str = "default", source: str | None = None) -> Profile:
    """Validate a profile mapping; unknown keys are refused with the list of valid ones."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("profile", data, "a mapping with keys " + ", ".join(PROFILE_KEYS))
    unknown = sorted(set(data) - set(PROFILE_KEYS))
    if unknown:
        raise ConfigError(f"profile.{unknown[0]}", data[unknown[0]],
                          f"valid profile keys: {', '.join(PROFILE_KEYS)}")
    values: dict[str, Any] = {"name": name}
    for key, value in data.items():
        where = f"profile.{key}"
        if key in ("name", "description") + _OPTIONAL_STR:
            if value is not None and not isinstance(value, str):
                raise ConfigError(where, value, "a string")
            if key == "name" and value is None:
                continue
        elif key in _POSITIVE_INT:
            value = _int(where, value, 1)
        elif key == "max_num_timeout":
            value = _int(where, value, 0)
        elif key == "gpus_per_node":
            value = _int(where, value, 0)
            if value > 1:
                # train.py trains on one device; a bigger batch (DenseNet: 64) is still one GPU.
                raise ConfigError(where, value, "0 or 1 (a run trains on one device unless its sweep's "
                                  "`resources` ask for more; one array task per run)")
        elif key == "mem_gb":
            # Under 1 MB the request would round to --mem=0, which SLURM reads as the whole node.
            bad = (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                   or value * 1024 < 1)
            if value is not None and bad:
                raise ConfigError(where, value, "a number of GB >= 1/1024 (1 MB), or null for the cluster's "
                                  "default")
        elif key == "setup":
            value = [value] if isinstance(value, str) else value
            if value is None:
                value = []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(where, value, "a list of shell lines (e.g. 'module load cuda/12.4')")
            value = tuple(value)
        elif key == "sbatch":
            value = value or {}
            plain = isinstance(value, dict) and all(isinstance(v, (str, int, bool)) for v in value.values())
            if not plain:
                raise ConfigError(where, value, "a mapping of sbatch option → string, number or true")
        values[key] = value
    prof = replace(Profile(), source=source, **values)
    if prof.signal_delay_s >= prof.timeout_min * 60:
        raise ConfigError("profile.signal_delay_s", prof.signal_delay_s,
                          f"fewer seconds than timeout_min ({prof.timeout_min} min)")
    return prof


def find_profile(ref: str, sweep_path: Path | None = None) -> Path:
    """A profile path as given, relative to the sweep file, in ./slurm/profiles/, or a shipped one's name."""
    candidates = [Path(ref)]
    if sweep_path is not None:
        candidates.append(Path(sweep_path).parent / ref)
    if "/" not in ref:
        stem = ref if ref.endswith((".yaml", ".yml")) else f"{ref}.yaml"
        candidates += [p for p in (Path("slurm/profiles") / stem, shipped_file("profiles", ref)) if p is not None]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError("profile", ref,
                      "a profile YAML file or one of: " + (", ".join(shipped_names("profiles")) or "(none found)"))


def load_profile(ref: str | Path | Profile | None, sweep_path: Path | None = None) -> Profile:
    """The profile named by ``--profile`` or the sweep; None gives the built-in defaults."""
    if isinstance(ref, Profile):
        return ref
    if ref is None:
        return Profile()
    path = find_profile(str(ref), sweep_path)
    return parse_profile(read_yaml(path, "profile"), name=path.stem, source=str(path))


# ---------------------------------------------------------------- job records


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """Consecutive slices of at most ``size`` items (one SLURM array each)."""
    if size < 1:
        raise ValueError("size must be >= 1")
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def read_jobs(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    import json

    try:
        data = json.loads((Path(sweep_dir) / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    runs = data.get("runs", {}) if isinstance(data, dict) else {}
    return {k: v for k, v in runs.items() if isinstance(v, dict)}


def write_jobs(sweep_dir: Path, records: Mapping[str, Mapping[str, Any]]) -> None:
    atomic_write_json(Path(sweep_dir) / JOBS_FILE, {"version": 1, "runs": dict(records)})


@contextlib.contextmanager
def sweep_lock(sweep_dir: Path) -> Iterator[None]:
    """One launch of a sweep at a time: two racing launches must not both submit a run."""
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(sweep_dir) / ".launch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError("launch", str(sweep_dir), "no other launch of this sweep in progress "
                              "(another isda-bench launch holds .launch.lock)") from exc
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------- SLURM job states

# Job states in which SLURM will still run (or is running) the job.
ACTIVE_SLURM = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
                          "SUSPENDED", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "STOPPED",
                          "RESV_DEL_HOLD", "SPECIAL_EXIT"})
RUNNING_SLURM = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING"})
# A fresh submission can be missing from both squeue and sacct for a moment; after this it is lost.
UNKNOWN_GRACE_S = 600


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _expand(job_id: str) -> list[str]:
    """'12_[3-5,7%2]' → ['12_3', '12_4', '12_5', '12_7']; plain ids unchanged."""
    m = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job_id)
    if not m:
        return [job_id]
    out = []
    for part in m.group(2).split(","):
        low, _, high = part.partition("-")
        out += [f"{m.group(1)}_{i}" for i in range(int(low), int(high or low) + 1)]
    return out


def parse_state_lines(text: str) -> dict[str, str]:
    """'JobID|State' lines (squeue or sacct) → {job_id: STATE}; 'CANCELLED by 0' → 'CANCELLED'."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        job_id, sep, state = line.strip().partition("|")
        if not sep or "." in job_id or not state.strip():
            continue
        for jid in _expand(job_id.strip()):
            states[jid] = state.split()[0].rstrip("+")
    return states


def query_states(job_ids: Sequence[str]) -> dict[str, str]:
    """SLURM's current state of each job id ('123' or '123_4'); missing ids are unknown.

    squeue first: it is immediate and knows requeued jobs as PENDING; sacct (accounting lags a
    few seconds) for jobs the controller has forgotten.
    """
    wanted = sorted(set(job_ids))
    if not wanted or shutil.which("squeue") is None:
        return {}
    bases = sorted({j.split("_")[0] for j in wanted})
    states: dict[str, str] = {}
    proc = _run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(bases)])
    if proc is not None and proc.returncode == 0:
        states.update(parse_state_lines(proc.stdout))
    missing = sorted({j.split("_")[0] for j in wanted if j not in states})
    if missing and shutil.which("sacct"):
        proc = _run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(missing)])
        if proc is not None and proc.returncode == 0:
            for jid, state in parse_state_lines(proc.stdout).items():
                states.setdefault(jid, state)
    return {j: states[j] for j in wanted if j in states}


# ---------------------------------------------------------------- merged status

STATES = ("pending", "running", "preempted", "requeued", "interrupted", "completed", "diverged", "failed")


@dataclass(frozen=True)
class RunStatus:
    cfg: RunConfig
    state: str  # one of STATES
    active: bool  # SLURM or a live process still owns the run: do not submit it again
    job_id: str | None = None
    slurm_state: str | None = None
    epochs_done: int = 0
    detail: str = ""

    @property
    def ended(self) -> bool:
        return self.state in DONE_STATES


def merge_state(disk_state: str, started: bool, signal: str | None, slurm_state: str | None,
                record_age_s: float | None = None) -> tuple[str, bool, str]:
    """(state, active, detail) of one run from its directory and its job's SLURM state.

    ``disk_state``: run_state() of the directory; ``started``: a job has started it before (job.json);
    ``signal``: "preempted" | "timeout" when the last attempt ended on submitit's signal;
    ``slurm_state``: squeue/sacct state of its last job (None: no job or unknown);
    ``record_age_s``: seconds since that job was submitted (None: no job record).
    """
    if disk_state in DONE_STATES:
        return disk_state, False, ""
    if disk_state == "running":  # a live process holds the run lock: the truth, whatever SLURM says
        return "running", True, ""
    if slurm_state is None:
        if record_age_s is not None and record_age_s < UNKNOWN_GRACE_S:
            return "pending", True, "just submitted; not yet visible to SLURM"
        return disk_state, False, "no live job" if record_age_s is not None else ""
    if slurm_state in RUNNING_SLURM:
        return "running", True, ""
    if slurm_state in ACTIVE_SLURM:
        if not started:
            return "pending", True, "queued"
        if signal == "preempted":
            return "preempted", True, "checkpointed on the preemption signal; requeued, waiting to resume"
        why = "time limit" if signal == "timeout" else "requeued from outside (no signal)"
        return "requeued", True, f"{why}; will resume from its epoch checkpoint"
    if slurm_state == "PREEMPTED":
        # Not a failure: the next launch resumes it from its checkpoint.
        return "preempted", False, "preempted and not requeued by SLURM; relaunch to resume"
    return "failed", False, f"job ended {slurm_state} without result.json"


def sweep_status(sweep: Sweep, results_root: Path, query: Any = None) -> list[RunStatus]:
    """Every run of the sweep with its merged state (one squeue/sacct call for the whole sweep).

    ``query``: job ids → SLURM states; default ``query_states`` (tests pass a fake)."""
    sweep_dir = Path(results_root) / sweep.name
    records = read_jobs(sweep_dir)
    ids = [records[c.run_id]["job_id"] for c in sweep.runs if c.run_id in records]
    slurm = (query or query_states)(ids) if ids else {}
    now = time.time()
    out = []
    for cfg in sweep.runs:
        run_dir = sweep.run_dir(results_root, cfg)
        disk = run_state(run_dir)
        rec = records.get(cfg.run_id)
        job = read_job_file(run_dir)
        job_id = rec.get("job_id") if rec else None
        # Only the attempts of the recorded job count: a run resubmitted after a failure restarts
        # the story (job.json of an older job does not make the new one "requeued").
        started = bool(job.get("started_at")) and (rec is None or job.get("job_id") == job_id)
        signal = job.get("signal") if started else None
        age = now - float(rec.get("submitted_unix", 0)) if rec else None
        state, active, detail = merge_state(disk, started, signal, slurm.get(job_id) if job_id else None, age)
        out.append(RunStatus(cfg, state, active, job_id, slurm.get(job_id) if job_id else None,
                             epochs_done(run_dir), detail))
    return out


def count_states(statuses: Sequence[RunStatus]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    return {k: counts[k] for k in STATES if k in counts}


def format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "no runs"


# ---------------------------------------------------------------- submission


def split_active(todo: Sequence[RunConfig], statuses: Sequence[RunStatus]) -> tuple[list[RunConfig],
                                                                                    list[RunStatus]]:
    """(runs to submit, runs refused because a job of theirs is queued or running)."""
    by_id = {s.cfg.run_id: s for s in statuses}
    submit, busy = [], []
    for cfg in todo:
        s = by_id.get(cfg.run_id)
        if s is not None and s.active:
            busy.append(s)
        else:
            submit.append(cfg)
    return submit, busy


def _executor(folder: Path, prof: Profile, job_name: str, resources: Mapping[str, int] | None = None) -> Any:
    from submitit import SlurmExecutor

    ex = SlurmExecutor(folder=folder / "%j", max_num_timeout=prof.max_num_timeout)
    ex.update_parameters(**prof.executor_parameters(job_name, resources))
    return ex


def submit_arrays(sweep: Sweep, runs: Sequence[RunConfig], results_root: Path, prof: Profile,
                  records: dict[str, dict[str, Any]]) -> list[str]:
    """Submit one array task per run; returns the array job ids. ``records`` is updated and saved
    after each array, so a failure halfway keeps the record of what was submitted."""
    sweep_dir = Path(results_root) / sweep.name
    ex = _executor(sweep_dir / LOG_DIR, prof, f"isda-{sweep.name}", getattr(sweep, "resources", None))
    array_ids: list[str] = []
    for chunk in chunks(list(runs), prof.max_array_size):
        if array_ids:
            # Chained arrays: the sweep never has more than array_parallelism tasks running.
            ex.update_parameters(dependency=f"afterany:{array_ids[-1]}")
        fns = []
        for cfg in chunk:
            # CPU threads follow the allocation (threads is a scheduling field: same run id).
            cfg = replace(cfg, threads=cfg.threads or prof.cpus_per_task)
            run_dir = str(sweep.run_dir(results_root, cfg))
            fns.append(TrainJob(cfg.to_dict(), run_dir, timeout_min=prof.timeout_min))
        jobs = ex.submit_array(fns)
        # submitit submits a single function as a plain job (id "123"), more as an array ("123_4").
        array_id = jobs[0].job_id.split("_")[0]
        array_ids.append(array_id)
        for cfg, job in zip(chunk, jobs):
            task = job.job_id.partition("_")[2]
            old = records.get(cfg.run_id, {})
            history = (list(old.get("history", [])) + [old["job_id"]])[-20:] if old.get("job_id") else []
            records[cfg.run_id] = {
                "job_id": job.job_id, "array_job_id": array_id, "array_task_id": int(task) if task else None,
                "slug": cfg.slug, "submitted_at": now_iso(), "submitted_unix": time.time(),
                "log_dir": str(job.paths.folder), "stdout": str(job.paths.stdout),
                "stderr": str(job.paths.stderr), "profile": prof.source or prof.name, "history": history,
            }
        write_jobs(sweep_dir, records)
    return array_ids


def status_command(sweep: Sweep, results_root: Path) -> str:
    cmd = f"isda-bench status {sweep.path or sweep.name}"
    if Path(results_root) != Path("results"):
        cmd += f" --results {results_root}"
    return cmd


def _sbatch_said(exc: Exception) -> str:
    """sbatch's own error lines, as one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return "; ".join(errors or lines[:1]) or type(exc).__name__


def launch_slurm(sweep: Sweep, todo: list[RunConfig], results_root: Path, profile: Any = None,
                 wait: bool = False, poll_s: float = 10.0, on_submit: Any = None, on_refused: Any = None) -> int:
    """Submit the runs of ``todo`` that no job already owns; print job ids, logs, status command.

    ``on_submit(runs)`` is called once the set to submit is known (the CLI resets failed runs there);
    if sbatch then refuses the request, ``on_refused(runs)`` gets the runs left unsubmitted and a
    ConfigError names the profile with sbatch's words. Returns 0, or with ``wait`` the exit status
    of ``wait_sweep``.
    """
    from submitit.core.utils import FailedJobError

    prof = load_profile(profile, sweep.path)
    root = Path(results_root)
    sweep_dir = root / sweep.name
    with sweep_lock(sweep_dir):
        records = read_jobs(sweep_dir)
        statuses = sweep_status(sweep, root)
        submit, busy = split_active(todo, statuses)
        if busy:
            ids = ", ".join(sorted({s.job_id or "local" for s in busy})[:10])
            print(f"not submitting {len(busy)} runs again: already queued or running (jobs {ids})")
        if submit:
            if on_submit is not None:
                on_submit(submit)
            before = {cfg.run_id: records.get(cfg.run_id, {}).get("job_id") for cfg in submit}
            try:
                # submitit prints a refusing sbatch's stderr itself; the error below says it in one line.
                with contextlib.redirect_stderr(io.StringIO()):
                    arrays = submit_arrays(sweep, submit, root, prof, records)
            except FailedJobError as exc:
                left = [cfg for cfg in submit if records.get(cfg.run_id, {}).get("job_id") == before[cfg.run_id]]
                if on_refused is not None:
                    on_refused(left)
                done = len(submit) - len(left)
                submitted = f"{done} runs were submitted before, " if done else ""
                raise ConfigError("profile", prof.source or prof.name, f"a request sbatch accepts ({submitted}"
                                  f"sbatch said: {_sbatch_said(exc)})") from exc
            n_arrays = len(arrays)
            print(f"submitted {len(submit)} runs as {n_arrays} job array{'s' * (n_arrays > 1)} "
                  f"(profile {prof.source or prof.name}): job ids {', '.join(arrays)} "
                  f"(tasks {arrays[0]}_0..; at most {prof.array_parallelism} running)")
            print(f"logs: {sweep_dir / LOG_DIR} (linked from each run's logs/)")
        else:
            print("nothing submitted")
        print(f"status: {status_command(sweep, root)}")
    if wait:
        return wait_sweep(sweep, root, poll_s=poll_s)
    return 0


def wait_sweep(sweep: Sweep, results_root: Path, poll_s: float = 10.0, stall_polls: int = 3,
               query: Any = None) -> int:
    """Follow the sweep until every run has ended; 1 if any failed or some run can no longer end.

    A run that is neither finished nor owned by a live job for ``stall_polls`` polls in a row
    (e.g. cancelled outside, or never submitted) would keep us waiting forever: we stop instead.
    """
    from tqdm import tqdm

    total = len(sweep.runs)
    stalled = 0
    last_line = ""
    with tqdm(total=total, desc=f"sweep {sweep.name}", unit="run", file=sys.stderr, disable=None,
              bar_format="{desc}: {n}/{total} finished |{bar}| {elapsed}{postfix}") as bar:
        while True:
            statuses = sweep_status(sweep, results_root, query=query)
            counts = count_states(statuses)
            finished = sum(s.ended for s in statuses)
            bar.n = finished
            bar.set_postfix_str(format_counts(counts), refresh=False)
            bar.refresh()
            line = f"sweep {sweep.name}: {finished}/{total} finished, {format_counts(counts)}"
            if bar.disable and line != last_line:  # not a terminal: one plain line per change
                print(line, file=sys.stderr, flush=True)
                last_line = line
            if finished == total:
                break
            orphans = [s for s in statuses if not s.ended and not s.active]
            stalled = stalled + 1 if orphans else 0
            if stalled >= stall_polls:
                bar.close()
                print(f"sweep {sweep.name}: {len(orphans)} runs are neither finished nor queued "
                      f"({format_counts(count_states(orphans))}); relaunch to resubmit them", file=sys.stderr)
                return 1
            time.sleep(poll_s)
    failed = counts.get("failed", 0)
    print(f"sweep {sweep.name}: {format_counts(counts)}; results in {Path(results_root) / sweep.name}")
    return 1 if failed else 0



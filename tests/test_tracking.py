"""W&B tracking (bench/tracking/): offline runs read back from their .wandb files, resume after a
kill, no secrets on disk, and a missing or failing wandb never breaking a training run.

Everything runs offline, with every wandb directory (and HOME) under a temporary path.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from bench.experiment.resolve import resolve
from bench.tracking.guard import TrackingWarning
from bench.tracking.modes import has_api_key, resolve_mode
from bench.tracking.naming import group_name, wandb_id
from bench.tracking.reader import logged_steps, read_history, read_records, run_files
from bench.tracking.report_run import log_report
from bench.tracking.sync import offline_run_dirs, sync_sweep
from bench.tracking.tracker import Tracker, make_tracker
from bench.train.trainer import run

FAKE_KEY = "fakekey0123456789abcdef0123456789abcdef01"
DIGITS = {"dataset": "digits", "arch": "resnet32", "method": "isda", "seed": 0, "threads": 1}


@pytest.fixture(scope="module", autouse=True)
def wandb_sandbox(tmp_path_factory: pytest.TempPathFactory):
    """Keep wandb (and anything reading HOME) inside a temporary directory, offline and quiet."""
    root = tmp_path_factory.mktemp("wandb-home")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_PROJECT", "WANDB_ENTITY",
                    "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_SERVICE", "WANDB_IDENTITY_TOKEN_FILE",
                    "WANDB_INIT_TIMEOUT", "WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL", "RANK"):
            mp.delenv(var, raising=False)
        mp.setenv("HOME", str(root))
        mp.setenv("NETRC", str(root / ".netrc"))
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("WANDB_DIR", str(root / "wandb"))
        mp.setenv("WANDB_CACHE_DIR", str(root / "cache"))
        mp.setenv("WANDB_CONFIG_DIR", str(root / "config"))
        mp.setenv("WANDB_DATA_DIR", str(root / "data"))
        mp.setenv("WANDB_X_DISABLE_STATS", "true")  # no system-metrics sampler process in tests
        yield root


def _metrics(run_dir: Path) -> list[dict[str, float]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _wait_for_exit(path: Path, timeout: float = 30.0) -> None:
    """run.finish() returns before wandb's service has flushed the .wandb file: wait for its exit record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and any(r.WhichOneof("record_type") == "exit" for r in read_records(path)):
            return
        time.sleep(0.1)
    pytest.fail(f"no exit record in {path} after {timeout} s")


def _wandb_services_of(pid: int) -> list[int]:
    """The wandb-core processes serving ``pid``: each runs in its own session with ``--pid <pid>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a == b"--pid" and b == str(pid).encode() for a, b in zip(argv, argv[1:])):
            found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _kill_job(proc: subprocess.Popen) -> None:
    """SIGKILL a training process and its wandb service together, as SLURM kills a job's whole cgroup.

    Killing only the trainer leaves its wandb-core alive; it notices the parent's death and flushes
    late, so a resumed run could read the log before the killed run's last epochs reach it."""
    services = _wandb_services_of(proc.pid)
    assert services, f"no wandb service serves the training process {proc.pid}"
    for pid in [proc.pid, *services]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.monotonic() + 30
    while not all(_gone(pid) for pid in services):
        assert time.monotonic() < deadline, f"wandb service {services} still alive 30 s after SIGKILL"
        time.sleep(0.05)


def _history(run_dir: Path, tracking_id: str) -> list[dict]:
    files = run_files(run_dir, tracking_id)
    if files:
        _wait_for_exit(files[-1])
    return [row for path in files for row in read_history(path)]


# ----------------------------------------------------------------------------- mode and naming


def test_resolve_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert resolve_mode("offline") == "offline" and resolve_mode("disabled") == "disabled"
    assert resolve_mode("auto") == "offline"  # no key anywhere
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert resolve_mode("auto") == "offline"  # the entry is for another host
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("auto") == "disabled"
    with pytest.raises(ValueError, match="valid modes"):
        resolve_mode("cloud")


def test_make_tracker_disabled_and_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_tracker("disabled") is None
    assert make_tracker("offline", rank=1) is None
    assert isinstance(make_tracker("offline", rank=0), Tracker)
    monkeypatch.setenv("RANK", "3")
    assert make_tracker("offline") is None
    assert isinstance(make_tracker("offline", rank=0), Tracker)


def test_names() -> None:
    a = resolve({**DIGITS, "seed": 1})
    b = resolve({**DIGITS, "seed": 2})
    c = resolve({**DIGITS, "lambda0": 0.25})
    assert group_name(a) == group_name(b) != group_name(c)
    assert group_name(a).startswith("digits-resnet32-isda-l0.5-")


# ----------------------------------------------------------------------------- a real offline run


@pytest.mark.slow
def test_offline_run_logs_every_epoch(tmp_path: Path) -> None:
    cfg = resolve({**DIGITS, "epochs": 3, "tracking": "offline", "sweep": "unit"})
    run_dir = tmp_path / cfg.run_id
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        result = run(cfg, run_dir, progress=False, tracker=make_tracker("offline"))
    assert result["status"] == "completed"
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["tracking_id"] == wandb_id(cfg)

    files = run_files(run_dir, wandb_id(cfg))
    assert len(files) == 1 and files[0].parent.parent == run_dir / "wandb"
    _wait_for_exit(files[0])
    records = list(read_records(files[0]))
    kinds = [r.WhichOneof("record_type") for r in records]
    assert kinds[0] == "header" and "exit" in kinds

    # Every epoch once, at step = epoch, equal to metrics.csv.
    history = read_history(files[0])
    metrics = _metrics(run_dir)
    assert [h["_step"] for h in history] == [0, 1, 2]
    for h, m in zip(history, metrics):
        for key in ("epoch", "lr", "lambda", "train_loss", "train_error", "test_loss", "test_error"):
            assert h[key] == m[key], key

    # Naming, config and summary.
    rec = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert rec.run_id == wandb_id(cfg) and rec.run_id.startswith(cfg.run_id + "-")
    assert (rec.display_name, rec.project) == (cfg.slug, "isda-bench-unit")
    assert (rec.run_group, rec.job_type) == (group_name(cfg), "isda")
    assert list(rec.tags) == ["digits", "resnet32", "isda", "unit"]
    config = {item.key: json.loads(item.value_json) for r in records
              if r.WhichOneof("record_type") == "config" for item in r.config.update}
    config.update({item.key: json.loads(item.value_json) for item in rec.config.update})
    assert config["run_id"] == cfg.run_id and config["lambda0"] == 0.5 and config["epochs"] == 3
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update({item.key: json.loads(item.value_json) for item in r.summary.update})
    assert summary["status"] == "completed"
    assert summary["final_test_error"] == result["final_test_error"] == metrics[-1]["test_error"]
    assert summary["last10_test_error"] == result["last10_test_error"]
    exit_record = next(r.exit for r in records if r.WhichOneof("record_type") == "exit")
    assert exit_record.exit_code == 0

    # wandb-core's own reader agrees (`wandb leet inspect --json`).
    leet = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(files[0])],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if leet.returncode == 0 and leet.stdout.strip():
        core = [json.loads(line) for line in leet.stdout.splitlines() if line.startswith("{")]
        core_hist = [r for r in core if r.get("type") == "history"]
        assert len(core_hist) == 3


@pytest.mark.slow
def test_killed_run_resumes_the_same_wandb_run_and_no_secret(tmp_path: Path) -> None:
    spec = {**DIGITS, "epochs": 6, "tracking": "offline"}
    cfg = resolve(spec)
    run_dir = tmp_path / cfg.run_id
    code = ("import sys; from bench.experiment.resolve import resolve; from bench.train.trainer import run; "
            "from bench.tracking.tracker import make_tracker; "
            f"run(resolve({spec!r}), sys.argv[1], progress=False, tracker=make_tracker('offline'))")
    # A fresh process tree, as for a requeued job: not this process's wandb service (WANDB_SERVICE),
    # which would still hold the killed run open.
    # The job has an API key in its environment: it must never land in a file.
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env["WANDB_API_KEY"] = FAKE_KEY
    env["WANDB_X_TRANSACTION_LOG_FLUSH_INTERVAL"] = "0.25"  # so that the killed log holds some epochs
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (run_dir / "metrics.csv").exists() and len(_metrics(run_dir)) >= 3:
                break
            time.sleep(0.05)
        else:
            tail = proc.stderr.read().decode()[-2000:]
            pytest.fail(f"the training subprocess did not reach epoch 3: {tail}")
    finally:
        _kill_job(proc)
    assert not (run_dir / "result.json").exists()
    killed_at = len(_metrics(run_dir))

    tracker = make_tracker("offline")
    result = run(cfg, run_dir, progress=False, tracker=tracker)
    assert result["status"] == "completed"
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["tracking_id"] == wandb_id(cfg)

    # A resumed offline run is a second folder with the same W&B run id; together they hold each
    # epoch exactly once, equal to metrics.csv.
    files = run_files(run_dir, wandb_id(cfg))
    assert len(files) == 2, files
    _wait_for_exit(files[1])
    # The killed process's log holds what it had flushed (a prefix); the rest of the epochs done
    # before the kill are logged again from metrics.csv when the run resumes.
    first = [h["_step"] for h in read_history(files[0])]
    assert first == list(range(len(first)))
    assert tracker.backfilled == list(range(len(first), killed_at))
    history = _history(run_dir, wandb_id(cfg))
    steps = [h["_step"] for h in history]
    assert steps == list(range(cfg.epochs)), steps
    for h, m in zip(history, _metrics(run_dir)):
        assert h["epoch"] == m["epoch"] and h["test_error"] == m["test_error"] and h["lr"] == m["lr"]
    assert tracker.skipped == [e for e in first if e >= killed_at]

    # No secret anywhere in the run directory, W&B's files included.
    assert len(list(run_dir.rglob("*"))) > 10
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_resume_skips_epochs_already_logged(tmp_path: Path) -> None:
    cfg = resolve({**DIGITS, "epochs": 5, "seed": 11})
    first = make_tracker("offline")
    tid = first.start(cfg, None, tmp_path)
    for epoch in range(3):
        first.log({"epoch": epoch, "test_error": 10.0 - epoch})
    first.finish({"status": "failed"})
    _history(tmp_path, tid)  # wait for the first log to be complete
    assert logged_steps(tmp_path, tid) == [0, 1, 2]

    second = make_tracker("offline")
    assert second.start(cfg, tid, tmp_path) == tid and second.next_step == 3
    for epoch in range(2, 5):  # epoch 2 was logged, but the checkpoint had not been written
        second.log({"epoch": epoch, "test_error": 10.0 - epoch})
    second.finish({"status": "completed"})
    assert second.skipped == [2]
    assert [h["_step"] for h in _history(tmp_path, tid)] == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------- wandb missing or failing


def _tracking_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, TrackingWarning)]


def test_missing_wandb_warns_once_and_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    cfg = resolve({**DIGITS, "epochs": 2, "tracking": "offline", "seed": 12})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = run(cfg, tmp_path, progress=False)  # train.py makes the tracker from cfg.tracking
    assert result["status"] == "completed" and len(_metrics(tmp_path)) == 2
    messages = _tracking_warnings(record)
    assert len(messages) == 1 and "cannot be imported" in messages[0]
    assert not (tmp_path / "wandb").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_a_wandb_that_breaks_on_import_warns_and_trains(tmp_path: Path, mode: str) -> None:
    """A broken install (protobuf out of step raises TypeError) used to stop every command at
    timm's own import of wandb, which survives only an ImportError."""
    fake = tmp_path / "site" / "wandb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise TypeError("Descriptors cannot be created directly.")\n')
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{Path(__file__).parent.parent}"}
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "train", "--epochs", "1", "--set", "threads=1",
                           "--wandb", mode, "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "result.json").read_text())["status"] == "completed"
    warned = "W&B tracking is off: wandb cannot be imported (TypeError: Descriptors" in proc.stderr
    assert warned == (mode == "offline") and "Traceback" not in proc.stderr


def test_failing_init_warns_once_and_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    def broken(*args, **kwargs):
        raise RuntimeError("service crashed")

    monkeypatch.setattr(wandb, "init", broken)
    cfg = resolve({**DIGITS, "epochs": 2, "tracking": "offline", "seed": 13})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = run(cfg, tmp_path, progress=False, tracker=make_tracker("offline"))
    assert result["status"] == "completed"
    messages = _tracking_warnings(record)
    assert len(messages) == 1 and "service crashed" in messages[0]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["tracking_id"] is None


def test_failing_log_warns_once(tmp_path: Path) -> None:
    cfg = resolve({**DIGITS, "epochs": 3, "seed": 14})
    tracker = make_tracker("offline")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert tracker.start(cfg, None, tmp_path) == wandb_id(cfg)

        def broken(*args, **kwargs):
            raise OSError("disk full")

        tracker.run.log = broken
        for epoch in range(3):
            tracker.log({"epoch": epoch, "test_error": 1.0})
        tracker.finish({"status": "completed"})
    messages = _tracking_warnings(record)
    assert len(messages) == 1 and "disk full" in messages[0] and tracker.run is None


def test_online_without_key_falls_back_to_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "5")  # were a key configured, the network attempt ends soon
    cfg = resolve({**DIGITS, "epochs": 1, "seed": 15})
    tracker = make_tracker("online")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        tid = tracker.start(cfg, None, tmp_path)
        tracker.log({"epoch": 0, "test_error": 5.0})
        tracker.finish({"status": "completed"})
    messages = _tracking_warnings(record)
    assert len(messages) == 1 and "offline instead" in messages[0]
    assert tid == wandb_id(cfg) and tracker.mode == "offline"
    assert [h["test_error"] for h in _history(tmp_path, tid)] == [5.0]


# ----------------------------------------------------------------------------- report and sync


def test_log_report(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from bench.report.model import Cell, Table

    fig_path = tmp_path / "curves.png"
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(fig_path)
    plt.close(fig)
    runs = pd.DataFrame({"run_id": ["a", "b"], "last10_test_error": [1.5, float("nan")],
                         "milestones": [[1, 2], None], "status": ["completed", "failed"]})
    table = Table(key="main", title="t", header=["method", "error"],
                  rows=[[Cell("ISDA"), Cell("1.50 ± 0.10", bold=True)]])
    sweep_dir = tmp_path / "sweep"
    run_id = log_report("unit", {"runs": runs, "main": table}, [fig_path, tmp_path / "curves.pdf"], "offline",
                        dir=sweep_dir)
    assert run_id
    [path] = (sweep_dir / "wandb").glob(f"offline-run-*/run-{run_id}.wandb")
    _wait_for_exit(path)
    [row] = read_history(path)
    assert row["tables/runs"]["_type"] == "table-file" and row["tables/runs"]["nrows"] == 2
    assert row["tables/main"]["_type"] == "table-file" and row["figures/curves"]["_type"] == "image-file"
    assert "figures/curves.pdf" not in row
    files = path.parent / "files"
    assert (files / row["figures/curves"]["path"]).exists()
    saved = json.loads((files / row["tables/main"]["path"]).read_text())
    assert saved["columns"] == ["method", "error"] and saved["data"] == [["ISDA", "1.50 ± 0.10"]]
    assert offline_run_dirs(sweep_dir) == [path.parent]


def test_sync_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep_dir = tmp_path / "unit"
    sweep_dir.mkdir()
    assert sync_sweep(sweep_dir) == 0
    assert "nothing to sync" in capsys.readouterr().out

    cfg = resolve({**DIGITS, "epochs": 1, "sweep": "unit", "seed": 16})
    tracker = make_tracker("offline")
    tracker.start(cfg, None, sweep_dir / cfg.run_id)
    tracker.log({"epoch": 0, "test_error": 3.0})
    tracker.finish({"status": "completed"})
    [folder] = offline_run_dirs(sweep_dir)

    capfd_out = subprocess.run(
        [sys.executable, "-c", f"import sys; from bench.tracking.sync import sync_sweep; "
                               f"sys.exit(sync_sweep({str(sweep_dir)!r}, dry_run=True))"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "WANDB_SILENT": "false"})
    assert capfd_out.returncode == 0, capfd_out.stderr
    out = capfd_out.stdout + capfd_out.stderr
    assert "would sync 1 offline run folder" in out and str(folder) in out
    assert "Would sync 1 run(s)" in out  # wandb's own dry run saw the folder

    assert sync_sweep(sweep_dir) == 1  # no API key: says so instead of prompting
    assert "not logged in" in capsys.readouterr().err

    for f in folder.glob("run-*.wandb"):
        f.with_name(f.name + ".synced").touch()
    assert sync_sweep(sweep_dir) == 0
    out = capsys.readouterr().out
    assert "nothing to sync" in out and "1 already synced" in out


def test_reader_stops_at_a_damaged_tail(tmp_path: Path) -> None:
    cfg = resolve({**DIGITS, "epochs": 3, "seed": 17})
    tracker = make_tracker("offline")
    tid = tracker.start(cfg, None, tmp_path)
    for epoch in range(3):
        tracker.log({"epoch": epoch, "test_error": float(epoch)})
    tracker.finish({"status": "completed"})
    [path] = run_files(tmp_path, tid)
    _wait_for_exit(path)
    whole = path.read_bytes()
    full = len(list(read_records(path)))
    path.write_bytes(whole[: len(whole) - 5])  # a write cut short by a kill
    assert 0 < len(list(read_records(path))) < full
    path.write_bytes(b"not a log")
    with pytest.raises(ValueError):
        list(read_records(path))
    assert logged_steps(tmp_path, tid) == []
    assert has_api_key() is False

"""bench.rundir, the run-directory contract: one state vocabulary (RunState) that status, results, reports and
launch all speak, one rule for epochs done, metrics.csv written and read back exactly, the records' readers,
and the file names defined in one place."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.launch.status import merge_state, sweep_status
from bench.launch.todo import plan_todo, to_train
from bench.report.write import summary_lines
from bench.results import collect as results
from bench.rundir import files
from bench.rundir.lock import RunLock
from bench.rundir.metrics import METRIC_COLUMNS, metrics_text, read_metrics, rows_written, write_metrics
from bench.rundir.owner import owner
from bench.rundir.state import ENDED, RunState, epochs_done, run_state
from bench.sweep.spec import parse_sweep

REPO = Path(__file__).resolve().parents[1]
FAST = {"dataset": "digits", "arch": "resnet32", "method": "ce", "epochs": 4}


def _sweep(n: int):
    return parse_sweep({"name": "t", "include": [{**FAST, "seed": s} for s in range(n)]}, "t")


def _result(run_dir: Path, status: str, epochs: int = 4) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / files.RESULT_FILE).write_text(json.dumps({"run_id": run_dir.name, "status": status,
                                                         "epochs_done": epochs}))


def _metrics(run_dir: Path, rows: int, trailing_blank: bool = False) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    text = ",".join(METRIC_COLUMNS) + "\n" + "".join(f"{e},0.1,0,1,2,3,4,5\n" for e in range(rows))
    (run_dir / files.METRICS_FILE).write_text(text + ("\n" if trailing_blank else ""))


def test_run_state_reads_the_directory_as_its_table_says(tmp_path):
    cases = {
        "completed": lambda d: _result(d, "completed"),
        "diverged": lambda d: _result(d, "diverged"),
        "failed": lambda d: _result(d, "failed"),
        "unknown-status": lambda d: _result(d, "duplicate"),  # not an ended state: counts as failed
        "damaged": lambda d: (d.mkdir(), (d / files.RESULT_FILE).write_text('{"status": "compl')),
        "checkpoint": lambda d: (d.mkdir(), (d / files.CHECKPOINT_FILE).write_bytes(b"x")),
        "config-only": lambda d: (d.mkdir(), (d / files.CONFIG_FILE).write_text("run_id: x\n")),
        "no-folder": lambda d: None,
    }
    want = {"completed": RunState.COMPLETED, "diverged": RunState.DIVERGED, "failed": RunState.FAILED,
            "unknown-status": RunState.FAILED, "damaged": RunState.FAILED, "checkpoint": RunState.INTERRUPTED,
            "config-only": RunState.PENDING, "no-folder": RunState.PENDING}
    for name, make in cases.items():
        make(tmp_path / name)
        got = run_state(tmp_path / name)
        assert type(got) is RunState and got == want[name], name
    lock = RunLock(tmp_path / "checkpoint")
    assert lock.acquire()
    try:
        assert run_state(tmp_path / "checkpoint") == RunState.RUNNING
    finally:
        lock.release()
    assert {s for s in RunState if s.ended} == ENDED == {RunState.COMPLETED, RunState.DIVERGED, RunState.FAILED}


def test_status_results_reports_and_launch_all_speak_run_state(tmp_path, capsys):
    """Every state that `status` prints, that results and reports count, and that launch decides on, is a
    member of RunState, whatever the directories and the scheduler say."""
    sweep = _sweep(7)
    root = tmp_path / "res"
    dirs = [sweep.run_dir(root, c) for c in sweep.runs]
    _result(dirs[0], "completed")
    _result(dirs[1], "diverged")
    _result(dirs[2], "failed")
    _result(dirs[3], "something else")
    _metrics(dirs[4], 2)
    (dirs[4] / files.CHECKPOINT_FILE).write_bytes(b"x")
    _metrics(dirs[5], 1)  # and its lock held below: a live run; dirs[6] never started
    members = {s.value for s in RunState}
    lock = RunLock(dirs[5])
    assert lock.acquire()
    try:
        collected = results.collect(root / "t", planned=[{"run_id": c.run_id, **c.to_dict()} for c in sweep.runs])
        statuses = sweep_status(sweep, root)
        states = [run_state(d) for d in dirs]
        todo = [c.run_id for c in plan_todo(sweep, root)]
        sweep_file = tmp_path / "t.yaml"
        sweep_file.write_text(json.dumps({"name": "t", "include": [{**FAST, "seed": s} for s in range(7)]}))
        assert main(["status", str(sweep_file), "--results", str(root)]) == 0
        printed = capsys.readouterr().out
    finally:
        lock.release()
    assert set(collected["status"]) <= members
    assert dict(zip(collected["run_id"], collected["status"])) == {c.run_id: s.value for c, s in
                                                                   zip(sweep.runs, states)}
    assert all(type(s.state) is RunState for s in statuses)
    assert [s.state for s in statuses] == states == [
        RunState.COMPLETED, RunState.DIVERGED, RunState.FAILED, RunState.FAILED, RunState.INTERRUPTED,
        RunState.RUNNING, RunState.PENDING]
    table = [ln.split() for ln in printed.splitlines()[1:-1]]
    assert [row[1] for row in table] == [s.value for s in states]
    counts = printed.splitlines()[-1].split("runs: ")[1]
    assert [part.split()[0] for part in counts.split(", ")] == [s.value for s in RunState if s in states]
    # A report lists the same states, in RunState's order.
    line = summary_lines(collected)[0][0]
    named = re.findall(r"\d+ (\w+)", line.split("(", 1)[1])
    assert named == [s.value for s in RunState if s in states]
    # Launch decides on each member; only these are trained again.
    assert todo == [c.run_id for c in sweep.runs[4:5] + sweep.runs[6:]]
    assert {s for s in RunState if to_train(s)} == {RunState.PREEMPTED, RunState.REQUEUED, RunState.INTERRUPTED,
                                                      RunState.PENDING}
    assert {s for s in RunState if to_train(s, retry_failed=True)} - {s for s in RunState if to_train(s)} == {
        RunState.FAILED}


@pytest.mark.parametrize("disk", list(RunState))
@pytest.mark.parametrize("slurm_state", [None, "PENDING", "RUNNING", "REQUEUED", "PREEMPTED", "FAILED", "CANCELLED",
                                         "OUT_OF_MEMORY", "COMPLETED"])
def test_merged_states_are_run_states(disk, slurm_state):
    for started, signal, age in ((False, None, 5.0), (True, "preempted", 5.0), (True, "timeout", 5.0),
                                 (True, None, 10_000.0), (False, None, None)):
        state, _, _ = merge_state(disk, started, signal, slurm_state, age)
        assert type(state) is RunState


def test_epochs_done_has_one_rule_that_status_and_results_share(tmp_path):
    """metrics.csv's rows while a run goes on (a blank line is no epoch), result.json's count once it ended."""
    sweep = _sweep(2)
    root = tmp_path / "res"
    going, ended = (sweep.run_dir(root, c) for c in sweep.runs)
    _metrics(going, 3, trailing_blank=True)
    (going / files.CHECKPOINT_FILE).write_bytes(b"x")
    _metrics(ended, 2)
    _result(ended, "diverged", epochs=3)  # the diverging epoch is counted in result.json
    assert rows_written(going) == 3 and epochs_done(going) == 3
    assert epochs_done(ended) == 3
    by_status = {s.cfg.run_id: s.epochs_done for s in sweep_status(sweep, root)}
    by_results = dict(zip(*(results.collect(root / "t")[k] for k in ("run_id", "epochs_done"))))
    assert by_status == by_results == {going.name: 3, ended.name: 3}
    assert rows_written(tmp_path / "nowhere") == 0 and epochs_done(tmp_path / "nowhere") == 0


def test_metrics_are_written_as_the_trainer_promises_and_read_back_exactly(tmp_path):
    rows = [{"epoch": e, "lr": 0.1 / 3 ** e, "lambda": e / 7, "train_loss": 2.0 / 3, "train_error": 50.0,
             "test_loss": float("nan"), "test_error": 1e-17 * (e + 1), "epoch_time_s": 1.25,
             "test_top5_error": 9.0}  # not a metrics.csv column: left out
            for e in range(3)]
    write_metrics(tmp_path, rows)
    text = (tmp_path / files.METRICS_FILE).read_text()
    assert text == metrics_text(rows)
    lines = text.split("\n")
    assert lines[0] == "epoch,lr,lambda,train_loss,train_error,test_loss,test_error,epoch_time_s"
    assert lines[1] == "0,0.1,0.0,0.6666666666666666,50.0,nan,1e-17,1.25" and lines[-1] == ""
    back = read_metrics(tmp_path)
    assert len(back) == 3 and all(set(r) == set(METRIC_COLUMNS) for r in back)
    for row, got in zip(rows, back):
        for key in METRIC_COLUMNS:
            same = got[key] == row[key] or (got[key] != got[key] and row[key] != row[key])  # nan
            assert same, (key, got[key], row[key])
    assert read_metrics(tmp_path / "nowhere") == []


def test_records_are_read_as_objects_and_damage_is_an_error(tmp_path):
    assert files.read_result(tmp_path) is None and files.read_config(tmp_path) is None
    (tmp_path / files.RESULT_FILE).write_text("[1, 2]")
    (tmp_path / files.CONFIG_FILE).write_text("- a\n")
    with pytest.raises(ValueError):
        files.read_result(tmp_path)
    with pytest.raises(ValueError):
        files.read_config(tmp_path)
    assert owner(tmp_path) is None
    (tmp_path / files.CONFIG_FILE).write_text("run_id: abc\n")
    assert owner(tmp_path) == "abc"
    (tmp_path / files.RESULT_FILE).write_text('{"run_id": "def"}')
    assert owner(tmp_path) == "def"


def test_the_run_directorys_file_names_are_written_only_in_bench_rundir_files():
    names = [v for k, v in vars(files).items() if k.endswith("_FILE") and isinstance(v, str)]
    assert {"config.yaml", "metrics.csv", "checkpoint.pt", "result.json", "job.json", ".lock"} <= set(names)
    found = []
    for path in (REPO / "bench").rglob("*.py"):
        if path == REPO / "bench" / "rundir" / "files.py":
            continue
        text = path.read_text()
        found += [f"{path.relative_to(REPO)}: {name}" for name in names if f'"{name}"' in text or f"'{name}'" in text]
    assert found == []


def test_a_job_record_keeps_its_attempts(tmp_path, monkeypatch):
    from bench.rundir.job import read_job_file, record_signal, record_start

    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    first = record_start(tmp_path)
    assert first["job_id"] == "12_3" and first["array_task_id"] == 3 and first["attempt"] == 1
    record_signal(tmp_path, "timeout")
    assert read_job_file(tmp_path)["signal"] == "timeout" and read_job_file(tmp_path)["signal_unix"] <= time.time()
    second = record_start(tmp_path)
    assert second["attempt"] == 2 and second["history"][-1]["signal"] == "timeout"
    (tmp_path / files.JOB_FILE).write_text("not json")
    assert read_job_file(tmp_path) == {}


def test_a_damaged_job_record_reads_without_its_damaged_fields(tmp_path):
    """A job.json edited by hand must not make the next attempt fail (TypeError in record_start) nor
    the signal handler (started_unix "x")."""
    from bench.rundir.job import read_job_file, record_signal, record_start

    (tmp_path / files.JOB_FILE).write_text('{"history": 5, "attempt": "x", "started_at": "2024", "host": "h", '
                                           '"started_unix": "x", "job_id": 7}')
    assert read_job_file(tmp_path) == {"started_at": "2024", "host": "h"}
    rec = record_start(tmp_path)
    assert rec["attempt"] == 1 and rec["history"] == [{"job_id": None, "host": "h", "started_at": "2024",
                                                        "signal_at": None, "signal": None}]
    (tmp_path / files.JOB_FILE).write_text('{"attempt": true, "history": [1, {"job_id": "9"}]}')
    assert read_job_file(tmp_path) == {"history": [{"job_id": "9"}]}
    record_signal(tmp_path, "preempted")
    assert read_job_file(tmp_path)["signal"] == "preempted"

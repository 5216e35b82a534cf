"""The command line end to end: what a user types, in a scratch working directory."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.cli import main

TINY = {"name": "tiny", "grid": {"dataset": ["digits"], "arch": ["resnet32"], "method": ["ce", "isda"],
                                 "seed": [0]},
        "overrides": {"epochs": 2, "batch_size": 256}}


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ISDA_BENCH_RESULTS", raising=False)
    return tmp_path


@pytest.mark.parametrize("argv, needle", [
    (["train", "--dataset", "mnist"], "dataset: 'mnist'"),
    (["train", "--method", "isda", "--lambda0", "-1"], "lambda0: -1.0"),
    (["train", "--epochs", "-3"], "epochs: -3"),
    (["train", "--epochs", "x"], "--epochs"),
    (["train", "--set", "colour=red"], "colour"),
    (["train", "--arch", "resnet9000"], "arch: 'resnet9000'"),
    (["train", "--arch", "shake_shake26_2x32d", "--set", "drop_rate=0.2"],
     "drop_rate: 0.2 is not allowed; 0 for shake_shake26_2x32d"),
    (["train", "--seed", "18446688733644"], "seed: 18446688733644"),
    (["plan", "missing.yaml"], "missing.yaml"),
    (["launch", "bad.yaml"], "name"),
    (["launch", "tiny.yaml", "--cluster", "moon"], "--cluster: 'moon'"),
    (["report", "tiny.yaml", "--format", "docx"], "format: 'docx'"),
    (["train", "--set", "lr=[0.1"], "--set: 'lr=[0.1'"),
    (["plan", "binary.yaml"], "UTF-8"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--profile", "broken.yaml"], "parse error at line 2"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--profile", "binary.yaml"], "profile: 'binary.yaml'"),
    (["train", "--epochs", "1", "--out", "/proc/isda-bench-cannot-be-here"], "out: '/proc/isda-bench-cannot"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "/proc/isda-bench"], "--results: '/proc/isda-bench"),
    (["report", "tiny.yaml", "--reports", "/proc/isda-bench"], "--reports: '/proc/isda-bench/tiny'"),
    (["train", "--dataset", "imagenet", "--arch", "resnet50", "--data-root", "empty"], "images in every class"),
    (["perf", "isda", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(scratch, capsys, argv, needle):
    (scratch / "bad.yaml").write_text("name: ../outside\ngrid: {method: [ce]}\n")
    (scratch / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (scratch / "broken.yaml").write_text("partition: [gpu\n")
    (scratch / "binary.yaml").write_bytes(bytes(range(128, 256)))
    for split in ("train", "val"):  # an ImageFolder root whose class folder holds no image
        (scratch / "empty" / split / "cat").mkdir(parents=True)
    before = files_under(scratch)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert files_under(scratch) == before


@pytest.mark.slow
def test_console_script_exit_status(scratch):
    out = subprocess.run([sys.executable, "-m", "bench.cli", "train", "--dataset", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and not (scratch / "results").exists()


def test_train_command_writes_one_run(scratch, capsys):
    assert main(["train", "--dataset", "digits", "--arch", "resnet32", "--method", "isda", "--lambda0", "0.5",
                 "--epochs", "2", "--seed", "0", "--batch-size", "256", "--out", "run1"]) == 0
    assert "completed" in capsys.readouterr().out
    res = json.loads((scratch / "run1" / "result.json").read_text())
    assert res["method"] == "isda" and res["lambda0"] == 0.5 and res["epochs_done"] == 2


def test_debug_sweep_then_relaunch_then_report(scratch, capsys):
    (scratch / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    assert main(["launch", "tiny.yaml", "--cluster", "debug"]) == 0
    runs = sorted((scratch / "results" / "tiny").glob("*/result.json"))
    assert len(runs) == 2
    stamps = [p.stat().st_mtime_ns for p in runs]
    capsys.readouterr()
    assert main(["launch", "tiny.yaml", "--cluster", "debug"]) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in runs] == stamps
    assert main(["plan", "tiny.yaml"]) == 0
    assert "completed: 2" in capsys.readouterr().out
    assert main(["report", "tiny.yaml", "--format", "md,tex,html"]) == 0
    for name in ("report.md", "report.tex", "report.html"):
        assert (scratch / "reports" / "tiny" / name).stat().st_size > 0
    assert (scratch / "results" / "tiny" / "runs.parquet").exists()
    text = (scratch / "reports" / "tiny" / "report.md").read_text()
    assert "| Digits | ResNet-32 |" in text and "(n=1)" in text


@pytest.mark.slow
def test_local_cluster_runs_subprocesses_with_logs(scratch):
    (scratch / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "grid": {**TINY["grid"], "method": ["ce"],
                                                                         "seed": [0, 1]}}))
    assert main(["launch", "tiny.yaml", "--cluster", "local", "--parallel", "2"]) == 0
    run_dirs = sorted(p for p in (scratch / "results" / "tiny").iterdir() if p.is_dir())
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        assert json.loads((run_dir / "result.json").read_text())["status"] == "completed"
        assert list((run_dir / "logs").glob("*_log.err")), "stderr of the run is kept in its folder"


@pytest.mark.slow
def test_status_retry_failed_resubmits_only_failed_runs(scratch, capsys):
    spec = {**TINY, "grid": {**TINY["grid"], "method": ["ce"], "seed": [0, 1, 2]}}
    (scratch / "tiny.yaml").write_text(yaml.safe_dump(spec))
    from bench.sweep.spec import load_sweep

    sweep = load_sweep(scratch / "tiny.yaml")
    failed, pending, done = sweep.runs
    assert main(["launch", "tiny.yaml", "--cluster", "debug"]) == 0
    # One run failed, one was never started, one is complete.
    fdir = scratch / "results" / "tiny" / failed.run_id
    (fdir / "result.json").write_text(json.dumps({"status": "failed", "reason": "node died"}))
    import shutil

    shutil.rmtree(scratch / "results" / "tiny" / pending.run_id)
    done_stamp = (scratch / "results" / "tiny" / done.run_id / "result.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["status", "tiny.yaml", "--retry-failed", "--cluster", "debug"]) == 0
    out = capsys.readouterr().out
    assert "failed 1" in out and "1 to run on debug" in out
    assert json.loads((fdir / "result.json").read_text())["status"] == "completed"
    assert not (scratch / "results" / "tiny" / pending.run_id).exists()
    assert (scratch / "results" / "tiny" / done.run_id / "result.json").stat().st_mtime_ns == done_stamp


def test_every_command_in_the_readme_parses():
    """The README's commands are accepted by the parsers as written (the synopsis with its optional
    flags given, the first of each a|b|c and 1 for placeholders such as N), so a renamed or removed
    flag cannot leave the README behind."""
    import re
    import shlex

    from bench.cli.commands import build_parser
    from bench.perf import commands as perf

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "README.md").read_text()
    commands = re.findall(r"`(isda-bench [^`]+)`", text.replace("\n", " "))  # inline, as in the README's prose
    for doc in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]:  # code blocks (indented lines)
        commands += [line.split("#")[0].strip() for line in doc.read_text().splitlines()
                     if line.startswith("    ") and line.strip().startswith("isda-bench ")]
    assert len(commands) >= 20
    for command in commands:
        command = re.sub(r"(\S+?)(\|[^\s\]]+)+", r"\1", command.replace("…", "")).replace("[", "").replace("]", "")
        argv = ["1" if re.fullmatch(r"[A-Z]+", a) else a for a in shlex.split(command)[1:]]  # placeholders
        parser = perf.build_parser() if argv[0] == "perf" else build_parser()
        try:
            parser.parse_args(argv[1:] if argv[0] == "perf" else argv)
        except SystemExit:
            pytest.fail(f"README command does not parse: {command}")

"""Bad input, tried as a new user would across every command: each case ends with one line on
stderr, exit status 2, and the folder tree exactly as it was (no file, no folder, no lock written).

The scratch folder holds what a user's working folder might: a sweep, a file and a link to nothing
where folders are expected, sweeps and profiles with YAML that reads other than it looks, a results
root whose run folder holds another experiment, one whose run folder is a file, a folder with no
CIFAR in it. Permissions are tried in ``test_permission_denied_is_one_line``, as a plain user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from bench.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = {"name": "tiny", "grid": {"dataset": ["digits"], "arch": ["resnet32"], "method": ["ce", "isda"],
                                 "seed": [0]},
        "overrides": {"epochs": 1, "batch_size": 256}}


def tree(root: Path) -> dict[str, int]:
    """Every file, folder and link under ``root`` with its size (folders and links: -1)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.lstat().st_size if p.is_file() and not p.is_symlink() else -1
    return out


def _write(root: Path, name: str, text: str) -> None:
    (root / name).write_text(text)


def make_scratch(root: Path) -> None:
    from bench.sweep.spec import load_sweep

    _write(root, "tiny.yaml", yaml.safe_dump(TINY))
    _write(root, "afile", "not a folder\n")
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "empty").mkdir()
    # YAML that does not read as it looks
    _write(root, "on-key.yaml", "on: 1\nfoo: 2\ngrid: {method: [ce]}\n")  # on → True: sorted([True, 'foo'])
    _write(root, "int-key.yaml", "grid: {method: [ce]}\noverrides: {1: 2, epochs: 3}\n")
    _write(root, "deep-key.yaml", "grid: {method: [ce]}\ninclude: [{method: isda, no: 1}]\n")
    _write(root, "dup-top.yaml", "grid: {method: [ce]}\nname: a\ngrid: {method: [isda]}\n")
    _write(root, "dup-deep.yaml", "grid:\n  method: [ce]\n  seed: [0]\n  seed: [1]\n")
    _write(root, "nul.yaml", "grid: {method: [ce]}\x00\n")
    _write(root, "tab.yaml", "grid:\n  method: [ce]\n\tseed: [1]\n")
    _write(root, "quote.yaml", "name: 'tiny\ngrid: {method: [ce]}\n")
    _write(root, "deep.yaml", "grid: " + "[" * 3000 + "]" * 3000 + "\n")
    _write(root, "two-docs.yaml", "grid: {method: [ce]}\n---\ngrid: {method: [isda]}\n")
    # sizes past the bounds, in sweeps
    _write(root, "nodes.yaml", "grid: {method: [ce]}\nresources: {nodes: 100000}\n")
    _write(root, "parallel.yaml", "grid: {method: [ce]}\nparallel: 100000\n")
    _write(root, "workers.yaml", "grid: {method: [ce]}\noverrides: {workers: 100000}\n")
    _write(root, "huge.yaml", "grid: {method: [ce], " + ", ".join(f"{k}: [{', '.join(str(i + 2) for i in range(10))}]"
                              for k in ("seed", "epochs", "batch_size", "threads", "workers", "schedule_offset",
                                        "milestones")) + "}\n")  # 10**7 runs
    _write(root, "both.yaml", "grid: {method: [ce], epochs: [1, 2]}\noverrides: {epochs: 5}\n")
    _write(root, "repeat.yaml", "grid: {method: [ce, isda], seed: [0, 1, 0]}\n")
    _write(root, "batch.yaml", "grid: {method: [ce]}\noverrides: {batch_size: 10000000}\n")
    _write(root, "cifar.yaml", "name: c\ngrid: {dataset: [cifar10], method: [ce]}\n"
                               "overrides: {epochs: 1, data_root: empty}\n")
    _write(root, "profiled.yaml", "name: tiny\ngrid: {method: [ce]}\nprofile: typo-profile.yaml\n")
    # profiles
    _write(root, "typo-profile.yaml", "partitoin: gpu\n")
    _write(root, "dup-profile.yaml", "partition: a\ncpus_per_task: 2\npartition: b\n")
    _write(root, "yes-profile.yaml", "partition: a\nyes: 1\n")
    # a results root whose folder for the sweep's second run holds another experiment
    sweep = load_sweep(root / "tiny.yaml")
    taken = root / "taken" / "tiny" / sweep.runs[1].run_id
    taken.mkdir(parents=True)
    _write(taken, "config.yaml", "run_id: 0123456789ab\ndataset: digits\n")
    # a results root where the first run's folder is a file
    (root / "filled" / "tiny").mkdir(parents=True)
    _write(root / "filled" / "tiny", sweep.runs[0].run_id, "x")
    # a run folder of another experiment, for train --out
    (root / "other").mkdir()
    _write(root / "other", "result.json", '{"run_id": "0123456789ab", "status": "completed"}\n')
    # sweeps that leave something blank, or set what no run uses
    _write(root, "null-axis.yaml", "grid: {method: [ce], seed: }\n")  # `seed:` reads as null
    _write(root, "null-in-list.yaml", "grid: {method: [ce], seed: [0, null]}\n")
    _write(root, "null-include.yaml", "grid: {method: [ce]}\ninclude: [{method: isda, lambda0: }]\n")
    _write(root, "empty-grid.yaml", "grid: {}\n")
    _write(root, "empty-include.yaml", "include: [{}]\n")
    _write(root, "description.yaml", "grid: {method: [ce]}\ndescription: [a, b]\n")
    _write(root, "unused-param.yaml", "grid: {method: [ce, focal]}\noverrides: {epochs: 1, lambda0: 3}\n")
    _write(root, "margin.yaml", "grid: {method: [large_margin], lsoftmax_margin: [5]}\n")
    _write(root, "slurm.yaml", "grid: {method: [ce]}\ncluster: slurm\n")
    # the sweep's launch records, damaged: `runs` a list, a record without a job id
    (root / "jobs-list" / "tiny").mkdir(parents=True)
    _write(root / "jobs-list" / "tiny", ".jobs.json", '{"version": 1, "runs": ["a", "b"]}\n')
    (root / "jobs-id" / "tiny").mkdir(parents=True)
    _write(root / "jobs-id" / "tiny", ".jobs.json", json.dumps({"version": 1, "runs": {sweep.runs[0].run_id:
                                                                                      {"job_id": 12}}}))
    # two of Fashion-MNIST's four files (their content is not read before the check)
    (root / "half").mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        _write(root / "half", name, "")


CPU = ["--device", "cpu"]
CASES = [
    # train
    (["train", "--out", "afile"], "--out: 'afile'"),
    (["train", "--out", "dangling"], "link to"),
    (["train", "--out", "afile/run"], "afile is a file"),
    (["train", "--results", "afile"], "--results: 'afile"),
    (["train", "--out", "run", "--results", "res"], "--results: 'res' is not allowed; only without --out"),
    (["train", "--out", "other"], "holds run 0123456789ab"),
    (["train", "--out", "/proc/isda-bench-run"], "--out: '/proc/isda-bench-run'"),
    (["train", "--dataset", "cifar10", "--data-root", "afile"], "data_root: 'afile'"),
    (["train", "--dataset", "cifar10", "--data-root", "dangling"], "data_root: 'dangling'"),
    (["train", "--dataset", "cifar10", "--data-root", "empty"], "cifar-10-batches-py"),
    # A named data folder is checked whatever the dataset: Fashion-MNIST would read the system's copy
    # instead (where the package is installed), and digits read none.
    (["train", "--dataset", "fashion_mnist", "--data-root", "nothing"],
     "data_root: 'nothing' is not allowed; an existing"),
    (["train", "--dataset", "fashion_mnist", "--data-root", "afile"], "data_root: 'afile' is not allowed; a folder"),
    (["train", "--dataset", "digits", "--data-root", "nothing"], "data_root: 'nothing'"),
    (["train", "--set", "lr={on: 1}"], "key 'on' is read as a boolean"),
    (["train", "--set", "milestones=[1, 2"], "--set: 'milestones=[1, 2'"),
    (["train", "--set", "batch_size=1000000"], "batch_size: 1000000 is not allowed; a value from 2 to 65536"),
    (["train", "--set", "workers=100000"], "workers: 100000"),
    (["train", "--set", "threads=5000"], "threads: 5000"),
    (["train", "--set", "epochs=10000000"], "epochs: 10000000"),
    (["train", "--set", "=3"], "--set: '=3'"),
    (["train", "--seed", "-1"], "seed: -1"),
    (["train", "--set", "lr=0.1", "--set", "lr=0.2"], "--set: 'lr=0.2' is not allowed; each key once"),
    (["train", "--lr", "0.1", "--set", "lr=0.2"], "(lr is 0.1 by a flag as well)"),
    (["train", "--set", "a\nb=1"], "'a\\nb': 1 is not allowed; valid keys"),
    ([], "the following arguments are required: command"),
    (["perf"], "the following arguments are required: subcommand"),
    # plan
    (["plan", "tiny.yaml", "--results", "afile"], "--results: 'afile' is not allowed; a folder (this is a file)"),
    (["plan", "tiny.yaml", "--results", "dangling"], "--results: 'dangling'"),
    (["plan", "missing.yaml"], "sweep: 'missing.yaml'"),
    (["plan", "afile/tiny.yaml"], "afile is a file"),
    (["plan", "empty"], "sweep: 'empty' is not allowed; a file (this is a folder)"),
    (["plan", "dangling"], "sweep: 'dangling'"),
    (["plan", "on-key.yaml"], "line 1, column 1: key 'on' is read as a boolean"),
    (["plan", "int-key.yaml"], "line 2, column 13: key '1' is read as an integer"),
    (["plan", "deep-key.yaml"], "line 2, column 26: key 'no' is read as a boolean"),
    (["plan", "dup-top.yaml"], "line 3, column 1: key 'grid' is written twice in one mapping (first at line 1)"),
    (["plan", "dup-deep.yaml"], "line 4, column 3: key 'seed' is written twice"),
    (["plan", "nul.yaml"], "line 1: character #x0000"),
    (["plan", "tab.yaml"], "line 3"),
    (["plan", "quote.yaml"], "sweep: 'quote.yaml'"),
    (["plan", "deep.yaml"], "nested too deeply"),
    (["plan", "two-docs.yaml"], "line 2"),
    (["plan", "repeat.yaml"], "grid.seed: [0, 1, 0] is not allowed; a list without repeats (0 is given twice)"),
    (["plan", "nodes.yaml"], "resources.nodes: 100000"),
    (["plan", "parallel.yaml"], "parallel: 100000"),
    (["plan", "workers.yaml"], "workers: 100000"),
    (["plan", "batch.yaml"], "batch_size: 10000000"),
    (["plan", "both.yaml"], "overrides.epochs: 5 is not allowed; a field the grid does not vary"),
    (["plan", "huge.yaml"], "a grid of at most 100,000 runs (this one makes up to 10,000,000"),
    # launch
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "afile"], "--results: 'afile'"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "dangling"], "--results: 'dangling'"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "taken"], "holds run 0123456789ab"),
    (["launch", "tiny.yaml", "--cluster", "local", "--results", "taken"], "holds run 0123456789ab"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "filled"], "a folder (this is a file)"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "/proc/isda-bench"], "--results: '/proc/isda-bench"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--parallel", "2"], "--parallel: 2 is not allowed; only with"),
    (["launch", "tiny.yaml", "--cluster", "local", "--parallel", "100000"], "--parallel: 100000"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--poll", "inf"], "--poll: inf"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--profile", "dup-profile.yaml"], "'partition' is written twice"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--profile", "yes-profile.yaml"], "key 'yes' is read as a boolean"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--profile", "dangling"], "profile: 'dangling'"),
    (["launch", "cifar.yaml", "--cluster", "debug"], "data_root: 'empty'"),
    (["launch", "on-key.yaml", "--cluster", "debug"], "key 'on'"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--results", "taken"], "holds run 0123456789ab"),
    (["launch", "profiled.yaml", "--cluster", "local"], "profile.partitoin"),
    # status
    (["status", "tiny.yaml", "--results", "afile"], "--results: 'afile'"),
    (["status", "tiny.yaml", "--results", "filled"], "a folder (this is a file)"),
    (["status", "tiny.yaml", "--retry-failed", "--cluster", "moon"], "--cluster: 'moon'"),
    (["status", "tiny.yaml", "--cluster", "debug"], "--cluster: 'debug' is not allowed; only with --retry-failed"),
    (["status", "tiny.yaml", "--retry-failed", "--cluster", "debug", "--profile", "gpu"], "--profile: 'gpu'"),
    (["status", "tiny.yaml", "--retry-failed", "--cluster", "slurm", "--profile", "dup-profile.yaml"], "twice"),
    # report
    (["report", "tiny.yaml", "--reports", "afile"], "--reports: 'afile/tiny'"),
    (["report", "tiny.yaml", "--reports", "dangling"], "--reports: 'dangling/tiny'"),
    (["report", "tiny.yaml", "--reports", "/proc/isda-bench"], "--reports: '/proc/isda-bench/tiny'"),
    (["report", "tiny.yaml", "--results", "afile"], "--results: 'afile'"),
    (["report", "tiny.yaml", "--format", "md,docx"], "format: 'docx'"),
    (["report", "dup-deep.yaml"], "written twice"),
    # wandb sync
    (["wandb", "sync", "tiny.yaml", "--results", "afile"], "--results: 'afile/tiny'"),
    (["wandb", "sync", "tiny.yaml"], "--results: 'results/tiny'"),
    (["wandb", "sync", "int-key.yaml"], "key '1'"),
    # perf
    (["perf", "step", *CPU, "--batch", "100000000000", "--out", "o"], "--batch: '100000000000'"),
    (["perf", "step", *CPU, "--batch", "abc", "--out", "o"], "--batch: 'abc' is not allowed; an integer from 2"),
    (["perf", "step", *CPU, "--steps", "0", "--out", "o"], "--steps: '0'"),
    (["perf", "step", *CPU, "--out", "afile"], "--out: 'afile'"),
    (["perf", "loader", *CPU, "--workers", "1,100000", "--out", "o"], "--workers: '100000'"),
    (["perf", "loader", *CPU, "--images", "10000000000", "--out", "o"], "--images: '10000000000'"),
    (["perf", "epoch", *CPU, "--workers", "100000", "--out", "o"], "--workers: '100000'"),
    (["perf", "epoch", *CPU, "--out", "dangling/x"], "--out: 'dangling/x'"),
    (["perf", "isda", *CPU, "--shape", "100000000,10,64,full", "--out", "o"], "--shape N: 100000000"),
    (["perf", "isda", *CPU, "--repeats", "0", "--out", "o"], "--repeats: '0'"),
    (["perf", "isda", *CPU, "--out", "afile"], "--out: 'afile'"),
    (["perf", "isda-ops", "--repeats", "-1", "--out", "o"], "--repeats: '-1'"),
    (["perf", "isda-ops", "--out", "dangling"], "--out: 'dangling'"),
    (["perf", "accuracy", *CPU, "--seeds", "0,99999999999", "--epochs", "1", "--out", "o"], "--seeds: 99999999999"),
    (["perf", "accuracy", *CPU, "--seeds", "0,1", "--epochs", "100000000", "--out", "o"], "--epochs: '100000000'"),
    (["perf", "accuracy", *CPU, "--seeds", "0,1", "--epochs", "1", "--out", "afile"], "--out: 'afile'"),
    (["perf", "accuracy", *CPU, "--dataset", "cifar10", "--data-root", "empty", "--epochs", "1", "--out", "o"],
     "data_root: 'empty'"),
    (["perf", "report", "--sweep", "nosuchsweep", "--out", "o"], "nosuchsweep"),
    (["perf", "report", "--runs", "181", "--out", "o"], "--runs: '181' is not allowed; at most the 180 runs"),
    (["perf", "report", "--runs", "0", "--out", "o"], "--runs: '0'"),
    (["perf", "report", "--format", "md,pdf", "--out", "o"], "format: 'pdf'"),
    (["perf", "report", "--repeat", "0", "--out", "o"], "--repeat: '0'"),
    (["perf", "report", "--budget", "-1", "--out", "o"], "--budget: -1.0"),
    (["perf", "report", "--budget", "soon", "--out", "o"], "--budget: 'soon'"),
    (["perf", "report", "--out", "afile"], "--out: 'afile'"),
    # A data folder is checked by perf accuracy as by train, whatever the dataset.
    (["perf", "accuracy", *CPU, "--data-root", "nowhere", "--seeds", "0,1", "--epochs", "1", "--train-size", "10",
      "--out", "o"], "data_root: 'nowhere' is not allowed; an existing folder"),
    # A Fashion-MNIST data root with some of the files: named, never completed from the system's copy.
    (["train", "--dataset", "fashion_mnist", "--data-root", "half", "--set", "train_size=10", "--epochs", "1"],
     "data_root: 'half' is not allowed; a folder holding all four of Fashion-MNIST's files (half lacks "
     "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])"),
    # Options the chosen path would not use (bench.cli.plans.OPTION_PATHS, bench.perf.plans.OPTION_PATHS).
    (["train", "--download", "--epochs", "1"],
     "--download: True is not allowed; only with --dataset cifar10 or cifar100 (the dataset is digits)"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--wait"],
     "--wait: True is not allowed; only with --cluster slurm (the cluster is debug)"),
    (["launch", "tiny.yaml", "--cluster", "local", "--wait", "--results", "filled"], "--wait: True"),
    (["launch", "tiny.yaml", "--cluster", "local", "--poll", "5", "--results", "filled"],
     "--poll: 5.0 is not allowed; only with --cluster slurm --wait (the cluster is local)"),
    (["perf", "step", *CPU, "--methods", "ce", "--cov-mode", "diagonal", "--out", "afile"],
     "--cov-mode: 'diagonal' is not allowed; only with --methods holding isda or reference"),
    (["perf", "isda", *CPU, "--grid", "quick", "--shape", "8,4,2,full", "--out", "afile"],
     "--grid: 'quick' is not allowed; only without --shape"),
    # Blanks and repeats: a value left empty, a list that names one thing twice.
    (["plan", "null-axis.yaml"], "grid.seed: None is not allowed; a value (an entry left empty reads as null"),
    (["plan", "null-in-list.yaml"], "grid.seed: [0, None] is not allowed; a value"),
    (["plan", "null-include.yaml"], "include.lambda0: None is not allowed; a value"),
    (["train", "--set", "epochs=", "--out", "afile"], "--set epochs: None is not allowed; a value"),
    (["plan", "empty-grid.yaml"], "grid: {} is not allowed; a mapping of run fields to their values"),
    (["plan", "empty-include.yaml"], "include: {} is not allowed; mappings of run fields, each with at least one"),
    (["plan", "description.yaml"], "description: ['a', 'b'] is not allowed; a text"),
    (["train", "--out", "", "--epochs", "1"], "argument --out: '' is not allowed; a path"),
    (["plan", "tiny.yaml", "--results", ""], "argument --results: '' is not allowed; a path"),
    (["launch", "tiny.yaml", "--cluster", "", "--results", "filled"], "--cluster: '' is not allowed; one of: local"),
    (["perf", "accuracy", *CPU, "--out", "", "--data-root", "afile"], "argument --out: '' is not allowed; a path"),
    (["perf", "accuracy", *CPU, "--seeds", "0,1,0", "--out", "afile"],
     "--seeds: '0,1,0' is not allowed; a list of seeds without repeats (0 is given twice)"),
    (["perf", "loader", *CPU, "--workers", "", "--out", "afile"], "--workers: '' is not allowed; a comma-separated"),
    (["perf", "loader", *CPU, "--workers", "2,2", "--out", "afile"], "--workers: '2,2' is not allowed; a list"),
    (["perf", "step", *CPU, "--methods", "ce,ce", "--out", "afile"], "--methods: 'ce,ce' is not allowed; a list"),
    (["perf", "isda", *CPU, "--shape", "8,4,2,full", "--shape", "8,4,2,full", "--out", "afile"],
     "--shape: '8,4,2,full' is not allowed; each shape once"),
    # Nonsense set where no run uses it, or past what the method is defined for.
    (["plan", "unused-param.yaml"], "overrides.lambda0: 3 is not allowed; a parameter of a method of this sweep "
     "(no method of this sweep takes lambda0"),
    (["plan", "margin.yaml"], "lsoftmax_margin: 5 is not allowed; an integer >= 1 and <= 4"),
    # A damaged launch record: one line, before any file, on every command that reads it.
    (["status", "tiny.yaml", "--results", "jobs-list"], "jobs-list/tiny/.jobs.json' is not allowed; a launch "
     "record as launch writes it (its runs is [\"a\", \"b\"], not a mapping of run ids to records)"),
    (["status", "tiny.yaml", "--results", "jobs-id"], "'s job_id is 12, not a job id"),
    (["status", "tiny.yaml", "-q", "-v", "--results", "afile"], "--verbose: True is not allowed; only without --quiet"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--results", "jobs-list"], "jobs-list/tiny/.jobs.json'"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "jobs-id"], "jobs-id/tiny/.jobs.json'"),
]
# Cases of the environment: (variables, argv, what the line says).
ENV_CASES = [
    ({"ISDA_BENCH_DATA": "nowhere"}, ["perf", "accuracy", *CPU, "--seeds", "0,1", "--epochs", "1", "--train-size",
                                      "10", "--out", "o"], "ISDA_BENCH_DATA: 'nowhere' is not allowed"),
    ({"ISDA_BENCH_DATA": "half"}, ["train", "--dataset", "fashion_mnist", "--set", "train_size=10", "--epochs", "1"],
     "ISDA_BENCH_DATA: 'half' is not allowed; a folder holding all four"),
    ({"ISDA_BENCH_RESULTS": "jobs-list"}, ["status", "tiny.yaml"], "jobs-list/tiny/.jobs.json'"),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pristine")
    make_scratch(root)
    return root


@pytest.mark.parametrize("argv, needle", CASES, ids=[" ".join(a)[:60] or "(nothing)" for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(pristine, tmp_path, monkeypatch, capsys, argv, needle):
    _refused(pristine, tmp_path, monkeypatch, capsys, argv, needle, {})


@pytest.mark.parametrize("env, argv, needle", ENV_CASES, ids=[f"{e} {' '.join(a)}"[:60] for e, a, _ in ENV_CASES])
def test_bad_environment_is_one_line_exit_2_and_writes_nothing(pristine, tmp_path, monkeypatch, capsys, env, argv,
                                                                needle):
    _refused(pristine, tmp_path, monkeypatch, capsys, argv, needle, env)


def _refused(pristine: Path, tmp_path: Path, monkeypatch, capsys, argv: list[str], needle: str,
             env: dict[str, str]) -> None:
    scratch = tmp_path / "w"
    shutil.copytree(pristine, scratch, symlinks=True)
    os.unlink(scratch / "dangling")  # a copy of the link points into the pristine folder's
    (scratch / "dangling").symlink_to(scratch / "nowhere")
    monkeypatch.chdir(scratch)
    monkeypatch.delenv("ISDA_BENCH_RESULTS", raising=False)
    monkeypatch.delenv("ISDA_BENCH_DATA", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    before = tree(scratch)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
    assert tree(scratch) == before


def test_there_are_enough_cases_on_every_command():
    commands = [argv[0] if argv[:1] != ["perf"] else " ".join(argv[:2]) for argv, _ in CASES if argv]
    assert len(CASES) >= 40
    for command in ("train", "plan", "launch", "status", "report", "wandb", "perf step", "perf loader",
                    "perf epoch", "perf isda", "perf isda-ops", "perf accuracy"):
        assert commands.count(command) >= 2, command


# ---------------------------------------------------------------- permissions, as a plain user
PERMISSION_CASES = [
    (["plan", "tiny.yaml", "--results", "locked"], "--results: 'locked/tiny' is not allowed; a folder"),
    (["launch", "tiny.yaml", "--cluster", "debug", "--results", "readonly"], "--results: 'readonly/tiny'"),
    (["status", "tiny.yaml", "--results", "locked"], "--results: 'locked/tiny'"),
    (["report", "tiny.yaml", "--reports", "readonly"], "--reports: 'readonly/tiny'"),
    (["report", "tiny.yaml", "--results", "readonly"], "--results: 'readonly/tiny'"),
    (["plan", "secret.yaml"], "sweep: 'secret.yaml' is not allowed; a file you may read (permission denied)"),
    (["train", "--out", "readonly/run"], "--out: 'readonly/run'"),
    (["perf", "isda-ops", "--out", "readonly/perf"], "--out: 'readonly/perf'"),
    (["launch", "tiny.yaml", "--cluster", "slurm", "--profile", "secret.yaml"], "profile: 'secret.yaml'"),
    (["train", "--dataset", "cifar10", "--data-root", "locked/tiny"], "data_root: 'locked/tiny' is not allowed; a "
     "folder you may read"),
    (["wandb", "sync", "tiny.yaml", "--results", "locked"], "--results: 'locked/tiny'"),
]


def _plain_user() -> list[str]:
    """A command prefix that runs as a user without root's override of permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be denied to this process")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import bench.cli"], cwd="/", capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if probe.returncode != 0:  # e.g. a checkout inside a folder only root may enter (mktemp -d makes one)
        pytest.skip(f"the plain user (uid 65534) cannot run {sys.executable} with this checkout: "
                    f"{probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else probe.returncode}")
    return prefix


@pytest.mark.slow
@pytest.mark.parametrize("argv, needle", PERMISSION_CASES, ids=[" ".join(a)[:60] for a, _ in PERMISSION_CASES])
def test_permission_denied_is_one_line(argv, needle):
    prefix = _plain_user()
    scratch = Path(tempfile.mkdtemp(prefix="isda-bench-perm-"))
    home = Path(tempfile.mkdtemp(prefix="isda-bench-home-"))  # caches of the libraries land outside scratch
    os.chmod(home, 0o777)
    try:
        os.chmod(scratch, 0o777)
        _write(scratch, "tiny.yaml", yaml.safe_dump(TINY))
        _write(scratch, "secret.yaml", yaml.safe_dump(TINY))
        (scratch / "locked" / "tiny").mkdir(parents=True)
        (scratch / "readonly").mkdir()
        os.chmod(scratch / "tiny.yaml", 0o644)
        os.chmod(scratch / "secret.yaml", 0o000)
        os.chmod(scratch / "locked" / "tiny", 0o000)
        os.chmod(scratch / "readonly", 0o555)
        if prefix:  # the plain user owns what it may write: the folder itself
            os.chown(scratch, 65534, 65534)
        before = tree(scratch)
        env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "HOME": str(home),
               "MPLCONFIGDIR": str(home)}
        env.pop("ISDA_BENCH_RESULTS", None)
        out = subprocess.run([*prefix, sys.executable, "-m", "bench.cli", *argv], cwd=scratch, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 2, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr, out.stderr
        assert tree(scratch) == before
    finally:
        for p in (scratch / "locked" / "tiny", scratch / "readonly"):
            os.chmod(p, 0o755)
        shutil.rmtree(scratch)
        shutil.rmtree(home)


def test_a_perf_batch_the_device_cannot_hold_is_refused_before_allocating(tmp_path, monkeypatch, capsys):
    """Bounds allow ImageNet-sized batches; whether the input fits is asked of the memory free now."""
    from bench.perf import plans

    monkeypatch.setattr(plans, "available_bytes", lambda device: 2**30)
    monkeypatch.chdir(tmp_path)
    argv = ["perf", "step", *CPU, "--arch", "resnet32", "--dataset", "imagenet", "--batch", "2048", "--out", "o"]
    assert main(argv) == 2  # 2048 × 3 × 224 × 224 float32: 1.2 GB
    err = capsys.readouterr().err
    assert "--batch: 2048 is not allowed; a size whose data fits in the memory free on cpu now (1.2 GB needed, " \
           "1.1 GB free)" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("argv", [["launch", "cuda.yaml", "--cluster", "debug"],
                                  ["launch", "cuda.yaml", "--cluster", "local"],
                                  ["train", "--device", "cuda"]])
def test_a_cuda_run_without_cuda_is_refused_before_any_file(tmp_path, monkeypatch, capsys, argv):
    """A local or debug launch checks the device of its runs as train does, before .lock or job.json."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "cuda.yaml", "grid: {method: [ce]}\noverrides: {device: cuda, epochs: 1}\n")
    before = tree(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "device: 'cuda' is not allowed; cpu or auto (no CUDA device is visible)" in err and err.count("\n") == 1
    assert tree(tmp_path) == before


# ---------------------------------------------------------------- a machine without SLURM
def _path_with(tmp_path: Path, commands: tuple[str, ...]) -> str:
    """A PATH whose only folder holds executables named ``commands`` (that would fail if run)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in commands:
        (folder / name).write_text("#!/bin/sh\nexit 1\n")
        (folder / name).chmod(0o755)
    return str(folder)


@pytest.mark.parametrize("commands, missing", [((), "sbatch and srun"), (("sbatch",), "srun"), (("srun",), "sbatch")])
@pytest.mark.parametrize("argv, key", [(["launch", "tiny.yaml", "--cluster", "slurm"], "--cluster"),
                                       (["launch", "slurm.yaml"], "cluster"),
                                       (["launch", "tiny.yaml", "--cluster", "slurm", "--wait"], "--cluster"),
                                       (["status", "tiny.yaml", "--retry-failed", "--cluster", "slurm"], "--cluster")])
def test_a_slurm_launch_without_slurm_is_one_line_before_any_file(pristine, tmp_path, monkeypatch, capsys, commands,
                                                                  missing, argv, key):
    """submitit would say 'Could not detect srun' as a traceback, once the sweep's folder, sweep.yaml and
    .launch.lock were made: the SLURM commands are looked for on PATH with the rest of the input."""
    monkeypatch.setenv("PATH", _path_with(tmp_path, commands))
    _refused(pristine, tmp_path, monkeypatch, capsys, argv,
             f"{key}: 'slurm' is not allowed; a cluster this machine can submit to ({missing} not found on PATH: "
             "no SLURM here); local or debug", {})


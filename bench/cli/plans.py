"""What each command of the command line will do, resolved and checked before it writes anything.

Every command runs in two phases: ``check_<command>(args)`` reads the arguments, the sweep, the
profile and the folders (every run of the sweep, every option, whichever path the command then
takes) and returns a plan, or raises ConfigError; only then does ``bench.cli.commands`` act on the plan and
write. Bad input therefore ends as one line and exit status 2 with nothing written, whatever
it is and wherever it is found.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.common import bounds
from bench.common.errors import ConfigError
from bench.common.option_paths import Uses, check_option_paths
from bench.common.paths import input_folder, output_folder, path_text
from bench.common.shipped import shipped_names
from bench.common.yamlio import YamlProblem, parse_yaml
from bench.experiment.datasets import DOWNLOADS
from bench.experiment.resolve import resolve
from bench.experiment.runconfig import RunConfig, run_field_names
from bench.sweep.spec import Sweep, check_blank, find_sweep, load_sweep

CLUSTERS = ("local", "debug", "slurm")
DEFAULT_POLL_S = 10.0  # launch --wait: seconds between checks
WANDB_MODES = ("auto", "online", "offline", "disabled")
SWEEP_HELP = "a sweep YAML file, or the name of a shipped sweep (e.g. smoke, cifar_main)"
PROFILE_HELP = f"a cluster profile YAML file, or the name of a shipped one ({', '.join(shipped_names('profiles'))})"
PLUGIN_HELP = ("a module that registers losses (bench.methods.register_loss), or its .py file, imported first; "
               "repeatable. Installed packages' isda_bench.methods entry points load by themselves")


# Which options each path of a command uses (bench.common.option_paths): given where the command then
# goes another way, they are refused, not ignored, whether or not there is anything to do.
OPTION_PATHS: Mapping[str, Mapping[str, Uses]] = {
    "train": {"download": Uses({"dataset": DOWNLOADS}, "with --dataset " + " or ".join(DOWNLOADS))},
    "launch": {"parallel": Uses({"cluster": ("local",)}, "with --cluster local"),
               "profile": Uses({"cluster": ("slurm",)}, "with --cluster slurm"),
               "wait": Uses({"cluster": ("slurm",)}, "with --cluster slurm"),
               "poll": Uses({"cluster": ("slurm",), "wait": (True,)}, "with --cluster slurm --wait")},
    "status": {"cluster": Uses({"retry_failed": (True,)}, "with --retry-failed"),
               "profile": Uses({"retry_failed": (True,)}, "with --retry-failed"),
               "verbose": Uses({"quiet": (False,)}, "without --quiet (which prints the counts alone)")},
}


def results_root(args: argparse.Namespace) -> Path:
    return Path(args.results or os.environ.get("ISDA_BENCH_RESULTS") or "results")


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as run fields; the values are read by the loader sweeps use."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--set", item, "KEY=VALUE with a run field as KEY")
        if key in out:  # as in a YAML mapping: a key given twice would drop its first value
            raise ConfigError("--set", item, f"each key once ({key} is set twice)")
        try:
            out[key] = parse_yaml(value)
        except YamlProblem as exc:
            raise ConfigError("--set", item, f"KEY=VALUE with VALUE a YAML scalar or list, e.g. lr=0.1 or "
                              f"milestones=[150,225] ({exc})") from None
        if key in run_field_names():  # an unknown key is named with the valid ones when the run resolves
            check_blank(f"--set {key}", key, out[key])
    return out


def _load(args: argparse.Namespace) -> Sweep:
    """The sweep file of a sweep command, with the plugins given on the command line."""
    return load_sweep(args.sweep, plugins=getattr(args, "plugin", None) or ())


def _sweep_folders(sweep: Sweep, root: Path, *, owned: bool) -> None:
    """The results root and every run folder of ``sweep`` that exists: folders this process may
    read; with ``owned``, each also holds its own run or nothing (bench.rundir.owner)."""
    input_folder(root, "--results", missing_ok=True)
    input_folder(root / sweep.name, "--results", missing_ok=True)
    if owned:
        from bench.rundir.owner import check_run_dir

        for cfg in sweep.runs:
            check_run_dir(sweep.run_dir(root, cfg), cfg.run_id, "--results")
    else:
        for cfg in sweep.runs:
            input_folder(sweep.run_dir(root, cfg), "--results", missing_ok=True)


def _check_methods(runs: list[RunConfig]) -> None:
    """Every plugin method of the runs, built once on dummy sizes and run on one batch: a factory or a
    forward that breaks the method contract is refused here, before anything is written."""
    from bench.methods import parse_method
    from bench.methods.contract import probe_runs

    probe_runs((parse_method(cfg.method).loss, dict(cfg.params), cfg.world_size) for cfg in runs)


def _check_data(runs: list[RunConfig]) -> None:
    """The data and the device the runs will use on this machine."""
    from bench.data.sources import check_source
    from bench.train.device import pick_device

    for dataset, root, download in dict.fromkeys((cfg.dataset, cfg.data_root, cfg.download) for cfg in runs):
        check_source(dataset, root, download)
    for device in dict.fromkeys(cfg.device for cfg in runs):
        pick_device(device)


# ---------------------------------------------------------------- train
TRAIN_FLAGS: dict[str, Callable[[str], Any]] = {
    "dataset": str, "arch": str, "method": str, "lambda0": float, "seed": int, "epochs": int, "lr": float,
    "batch_size": int, "cov_mode": str, "focal_gamma": float, "device": str, "threads": int, "data_root": path_text,
    "precision": str, "weight_decay": float, "compile": str}


@dataclass(frozen=True)
class TrainPlan:
    cfg: RunConfig
    out: Path
    # The run folder holds a result that is not to stand: "failed" (trained again from its last
    # checkpoint) or "recorded → now", its method's code (trained again from its first epoch).
    redo: str | None = None


def check_train(args: argparse.Namespace) -> TrainPlan:
    from bench.rundir.files import LOCK_FILE
    from bench.rundir.lock import lock_held
    from bench.rundir.owner import check_run_dir

    spec = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None}
    if args.plugin:
        from bench.methods.plugins import load

        # First, so that a bad one is named as the --plugin it came from; the run keeps module names.
        spec["plugins"] = [info.module for info in load(args.plugin)]
    if args.download:
        spec["download"] = True
    if args.wandb:
        spec["tracking"] = args.wandb
    for key, value in parse_set(args.set).items():
        if key in spec:
            raise ConfigError("--set", f"{key}={value}", f"a field no flag sets too ({key} is {spec[key]!r} by a "
                              "flag as well)")
        spec[key] = value
    cfg = resolve(spec)
    check_option_paths(OPTION_PATHS["train"], args, {"dataset": cfg.dataset})
    _check_methods([cfg])
    if args.out and args.results:
        raise ConfigError("--results", args.results, "only without --out (--out names the run folder itself)")
    key = "--out" if args.out else "--results"
    out = Path(args.out) if args.out else results_root(args) / cfg.sweep / cfg.run_id
    output_folder(out, key)
    check_run_dir(out, cfg.run_id, key)
    if lock_held(out):
        raise ConfigError(key, str(out), f"a run folder no other process is training (one holds its {LOCK_FILE}: "
                          "wait for it, or stop it)")
    _check_data([cfg])
    return TrainPlan(cfg, out, _redo(cfg, out))


def _redo(cfg: RunConfig, out: Path) -> str | None:
    """Why ``train`` trains a run that has ended again (see TrainPlan.redo), or None."""
    from bench.launch.todo import changed_method
    from bench.rundir.state import RunState, run_state

    state = run_state(out)
    return changed_method(cfg, out, state) or ("failed" if state == RunState.FAILED else None)


# ---------------------------------------------------------------- plan, status, wandb sync
@dataclass(frozen=True)
class ReadPlan:
    """A sweep and where its results are, for the commands that only read them."""

    sweep: Sweep
    root: Path


def check_plan(args: argparse.Namespace) -> ReadPlan:
    sweep, root = _load(args), results_root(args)
    _check_methods(sweep.runs)
    _sweep_folders(sweep, root, owned=False)
    return ReadPlan(sweep, root)


def check_wandb_sync(args: argparse.Namespace) -> ReadPlan:
    sweep, root = _load(args), results_root(args)
    input_folder(root / sweep.name, "--results")  # nothing to upload without it
    return ReadPlan(sweep, root)


# ---------------------------------------------------------------- launch
@dataclass(frozen=True)
class LaunchPlan:
    sweep: Sweep
    root: Path
    cluster: str
    profile: Any  # bench.launch.profiles.Profile on slurm, else None
    todo: list[RunConfig]
    finished: int  # runs done: completed or diverged, under the code of their method installed now
    parallel: int | None
    retry_failed: bool
    wait: bool
    poll: float
    failed: int = 0  # failed runs left as they are (without --retry-failed)
    # run id → "recorded → now": runs that ended under other code of their method, trained again
    superseded: dict[str, str] = field(default_factory=dict)


def _launch_options(args: argparse.Namespace, sweep: Sweep) -> tuple[str, Any]:
    """The cluster and the profile, each option checked against the cluster whatever there is to do."""
    from bench.launch.profiles import load_profile
    from bench.launch.scheduler import missing_commands

    cluster = args.cluster
    if cluster is None:  # "" is a cluster given, and refused below
        cluster = sweep.cluster or ("local" if missing_commands() else "slurm")
    if cluster not in CLUSTERS:
        raise ConfigError("--cluster", cluster, CLUSTERS)
    check_option_paths(OPTION_PATHS["launch"], args, {"cluster": cluster, "wait": args.wait})
    if args.parallel is not None:
        bounds.check("parallel", "--parallel", args.parallel, "an integer")
    if args.poll is not None:
        bounds.check("poll_s", "--poll", args.poll, "a number of seconds")
    # The sweep's own profile is read whatever the cluster: a mistake in it shows on the first launch.
    profile = load_profile(args.profile or sweep.profile, sweep.path)
    return cluster, profile if cluster == "slurm" else None


def _check_slurm(args: argparse.Namespace) -> None:
    """SLURM's commands on this machine, checked last: what else is wrong with the launch is said first,
    as on a machine with SLURM."""
    from bench.launch.scheduler import missing_commands

    missing = missing_commands()
    if missing:  # submitit would refuse only once the sweep's folder and its lock are made
        raise ConfigError("--cluster" if args.cluster else "cluster", "slurm", f"a cluster this machine can submit "
                          f"to ({' and '.join(missing)} not found on PATH: no SLURM here); local or debug")


def check_launch(args: argparse.Namespace, sweep: Sweep | None = None) -> LaunchPlan:
    from bench.launch.devices import check_fits
    from bench.launch.jobs import read_jobs
    from bench.launch.todo import changed_method, plan_todo
    from bench.rundir.state import RunState, run_state

    sweep = sweep or _load(args)
    _check_methods(sweep.runs)
    cluster, profile = _launch_options(args, sweep)
    root = results_root(args)
    _sweep_folders(sweep, root, owned=True)
    states = [run_state(sweep.run_dir(root, cfg)) for cfg in sweep.runs]
    changed = {cfg.run_id: text for cfg, state in zip(sweep.runs, states, strict=True)
               if (text := changed_method(cfg, sweep.run_dir(root, cfg), state))}
    todo = plan_todo(sweep, root, retry_failed=args.retry_failed, states=states, superseded=set(changed))
    if args.wandb:  # a scheduling field: run ids stay the same
        todo = [replace(cfg, tracking=args.wandb) for cfg in todo]
    check_fits(cluster, todo)
    read_jobs(root / sweep.name)  # the sweep's launch record, read by SLURM launches and by --wait
    if todo:
        output_folder(root / sweep.name, "--results")
        if cluster != "slurm":  # on SLURM the compute nodes have their own devices and may mount other paths
            _check_data(todo)
    if cluster == "slurm":
        _check_slurm(args)
    kept = [s for cfg, s in zip(sweep.runs, states, strict=True) if cfg.run_id not in changed]
    finished = sum(s in (RunState.COMPLETED, RunState.DIVERGED) for s in kept)
    failed = 0 if args.retry_failed else sum(s == RunState.FAILED for s in kept)
    return LaunchPlan(sweep, root, cluster, profile, todo, finished, args.parallel or sweep.parallel,
                      args.retry_failed, args.wait, DEFAULT_POLL_S if args.poll is None else args.poll, failed,
                      changed)


# ---------------------------------------------------------------- status
@dataclass(frozen=True)
class StatusPlan:
    sweep: Sweep
    root: Path
    statuses: list[Any]  # bench.launch.status.RunStatus
    retry: LaunchPlan | None  # with --retry-failed: the launch of the failed runs (maybe none)


def check_status(args: argparse.Namespace) -> StatusPlan:
    from bench.launch.status import sweep_status
    from bench.rundir.state import RunState

    sweep, root = _load(args), results_root(args)
    check_option_paths(OPTION_PATHS["status"], args, {"retry_failed": args.retry_failed, "quiet": args.quiet})
    _sweep_folders(sweep, root, owned=False)
    statuses = sweep_status(sweep, root)
    retry = None
    if args.retry_failed:
        failed = [s.cfg for s in statuses if s.state == RunState.FAILED]
        # The launch path with the sweep narrowed to its failed runs (pending ones stay untouched),
        # checked as a launch even when nothing failed, so that its options are checked on every path.
        launch_args = argparse.Namespace(**{**vars(args), "retry_failed": True, "parallel": None, "wait": False,
                                            "poll": None, "wandb": None})
        retry = check_launch(launch_args, replace(sweep, runs=failed))
    return StatusPlan(sweep, root, statuses, retry)


# ---------------------------------------------------------------- report
@dataclass(frozen=True)
class ReportPlan:
    sweep: Sweep
    sweep_dir: Path
    out_dir: Path
    formats: list[str]
    paper: bool
    wandb: str


def check_report(args: argparse.Namespace) -> ReportPlan:
    from bench.report.write import parse_formats

    formats = parse_formats(args.format)
    root = results_root(args)
    try:
        sweep = _load(args)
    except ConfigError as exc:
        _name_missing_plugins(args, root, exc)
        raise
    _sweep_folders(sweep, root, owned=False)
    sweep_dir = output_folder(root / sweep.name, "--results")  # runs.csv and runs.parquet go there
    out_dir = output_folder(Path(args.reports or "reports") / sweep.name, "--reports")
    mode = args.wandb or sweep.raw.get("tracking") or "disabled"
    if mode not in WANDB_MODES:
        raise ConfigError("tracking", mode, WANDB_MODES)
    return ReportPlan(sweep, sweep_dir, out_dir, formats, args.paper, mode)



def _name_missing_plugins(args: argparse.Namespace, root: Path, exc: ConfigError) -> None:
    """A sweep that does not resolve here, whose runs were trained with plugins that are not
    installed here (an entry point the sweep file does not name): say which, in one line."""
    from bench.common.yamlio import read_yaml
    from bench.methods.plugins import recorded_missing

    try:
        path = find_sweep(args.sweep)
        data = read_yaml(path, "sweep")
    except ConfigError:
        return
    name = data.get("name", path.stem) if isinstance(data, dict) else path.stem
    if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
        return
    missing = recorded_missing(root / name)
    if missing:
        raise ConfigError("sweep", str(path), f"a sweep whose plugins load: its runs were trained with "
                          f"{', '.join(missing)}, which cannot be imported here (install it, or give --plugin; "
                          f"without it the sweep's {exc.key} {exc.value!r} is unknown)") from exc

"""The command line: parses arguments and calls the modules; bad input is one line and exit status 2."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from bench.config import load_yaml
from bench.errors import ConfigError, OneLineParser
from bench.fsutil import atomic_write_text, make_dir

WANDB_MODES = ("auto", "online", "offline", "disabled")
PLUGIN_HELP = ("a module that registers losses (bench.methods.register_loss), imported first; repeatable. "
               "Installed packages' isda_bench.methods entry points load by themselves")


def _results_root(args: argparse.Namespace) -> Path:
    return Path(args.results or os.environ.get("ISDA_BENCH_RESULTS") or "results")


def _parse_set(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", item, "KEY=VALUE with a run field as KEY")
        try:
            out[key.strip()] = load_yaml(value)
        except yaml.YAMLError as exc:
            raise ConfigError("--set", item, "KEY=VALUE with VALUE a YAML scalar or list, e.g. lr=0.1 "
                              "or milestones=[150,225]") from exc
    return out


# ---------------------------------------------------------------- train
_TRAIN_FLAGS = {"dataset": str, "arch": str, "method": str, "lambda0": float, "seed": int, "epochs": int,
                "lr": float, "batch_size": int, "cov_mode": str, "focal_gamma": float, "device": str,
                "threads": int, "data_root": str, "precision": str, "weight_decay": float, "compile": str}


def cmd_train(args: argparse.Namespace) -> int:
    from bench.config import resolve
    from bench.train import run

    spec = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None}
    if args.plugin:
        from bench.plugins import load

        load(args.plugin)  # first, so that a bad one is named as the --plugin it came from
        spec["plugins"] = args.plugin
    if args.download:
        spec["download"] = True
    if args.wandb:
        spec["tracking"] = args.wandb
    spec.update(_parse_set(args.set))
    cfg = resolve(spec)
    out = Path(args.out) if args.out else _results_root(args) / cfg.sweep / cfg.run_id
    result = run(cfg, out)
    err = result.get("last10_test_error")
    shown = f"{err:.2f} %" if isinstance(err, float) else "n/a"
    print(f"{cfg.slug}: {result['status']}, last-10-epoch test error {shown}; run directory {out}")
    return 0 if result["status"] == "completed" else 1


# ---------------------------------------------------------------- sweeps
def _load(args: argparse.Namespace):
    from bench.sweep import load_sweep

    return load_sweep(args.sweep, plugins=args.plugin or ())


def cmd_plan(args: argparse.Namespace) -> int:
    from bench.estimate import estimate_run, measured_throughput
    from bench.launch import DONE_STATES, run_state
    from bench.sweep import processes_per_run

    sweep = _load(args)
    root = _results_root(args)
    devices = processes_per_run(sweep.resources)
    measured = measured_throughput(root / sweep.name)
    counts: dict[str, int] = {}
    todo_hours, unknown, sources = 0.0, 0, set()
    print(f"sweep {sweep.name}: {len(sweep.runs)} runs, {devices} GPU(s) per run → {root / sweep.name}")
    print(f"{'run_id':<13} {'state':<12} {'epochs':>6} {'GPUs':>4} {'GPU-h':>7}  run")
    for cfg in sweep.runs:
        state = run_state(sweep.run_dir(root, cfg))
        counts[state] = counts.get(state, 0) + 1
        est = estimate_run(cfg, devices, measured)
        hours = f"{est.hours:.2f}" if est.hours is not None else "?"
        print(f"{cfg.run_id:<13} {state:<12} {cfg.epochs:>6} {devices:>4} {hours:>7}  {cfg.slug}")
        if state not in DONE_STATES:
            if est.hours is None:
                unknown += 1
            else:
                todo_hours += est.hours
                sources.add(est.source)
    print("; ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    text = f"estimated GPU-hours still to go: {todo_hours:.1f}"
    if sources:
        text += f" (throughput from {', '.join(sorted(sources))})"
    if unknown:
        text += f"; {unknown} runs without a throughput measurement yet (not counted)"
    print(text)
    return 0


def cmd_launch(args: argparse.Namespace, sweep=None) -> int:
    from bench.launch import (
        DONE_STATES,
        check_fits,
        launch_debug,
        launch_local,
        plan_todo,
        reset_failed,
        restore_failed,
        run_state,
    )

    sweep = sweep or _load(args)
    cluster = args.cluster or sweep.cluster or ("slurm" if _has_slurm() else "local")
    if cluster not in ("local", "debug", "slurm"):
        raise ConfigError("--cluster", cluster, ["local", "debug", "slurm"])
    if args.parallel is not None and args.parallel < 1:
        raise ConfigError("--parallel", args.parallel, "a positive integer")
    if not args.poll > 0:
        raise ConfigError("--poll", args.poll, "a number of seconds > 0")
    if args.profile and cluster != "slurm":
        raise ConfigError("--profile", args.profile, f"only with --cluster slurm (the cluster is {cluster})")
    profile = None
    if cluster == "slurm":
        from bench.slurm import load_profile

        # A bad profile ends here, before anything is written or submitted.
        profile = load_profile(args.profile or sweep.profile, sweep.path)
    root = _results_root(args)
    states = [run_state(sweep.run_dir(root, cfg)) for cfg in sweep.runs]
    todo = plan_todo(sweep, root, retry_failed=args.retry_failed, states=states)
    if args.wandb:  # a scheduling field: run ids stay the same
        todo = [replace(cfg, tracking=args.wandb) for cfg in todo]
    check_fits(cluster, todo)
    if todo:  # an unusable --results ends here, before anything is submitted
        make_dir(root / sweep.name, "--results")
    finished = sum(s in DONE_STATES and not (args.retry_failed and s == "failed") for s in states)
    busy = len(sweep.runs) - finished - len(todo)
    busy_text = f", {busy} being trained by a live process" if busy else ""
    print(f"sweep {sweep.name}: {len(sweep.runs)} runs, {finished} already done{busy_text}, "
          f"{len(todo)} to run on {cluster}")

    was_reset: set[str] = set()

    def reset(runs) -> None:  # only now: a launch refused earlier leaves failed results alone
        if args.retry_failed:
            was_reset.update(cfg.run_id for cfg in runs if reset_failed(sweep.run_dir(root, cfg)))

    def unreset(runs) -> None:  # sbatch refused them: they are failed runs still
        for cfg in runs:
            if cfg.run_id in was_reset:
                restore_failed(sweep.run_dir(root, cfg))

    if not todo:
        print("nothing submitted")
        if cluster == "slurm" and args.wait:
            from bench.slurm import wait_sweep

            return wait_sweep(sweep, root, poll_s=args.poll)
        return 0
    if sweep.path is not None:
        atomic_write_text(root / sweep.name / "sweep.yaml", sweep.path.read_text())
    if cluster == "slurm":
        from bench.slurm import launch_slurm

        return launch_slurm(sweep, todo, root, profile=profile, wait=args.wait, poll_s=args.poll,
                            on_submit=reset, on_refused=unreset)
    reset(todo)
    if cluster == "debug":
        failed = launch_debug(sweep, todo, root)
    else:
        failed = launch_local(sweep, todo, root, parallel=args.parallel or sweep.parallel)
    print(f"sweep {sweep.name}: {len(todo) - failed} runs finished, {failed} failed; "
          f"results in {root / sweep.name}")
    return 1 if failed else 0


def _has_slurm() -> bool:
    import shutil

    return shutil.which("sbatch") is not None


def cmd_status(args: argparse.Namespace) -> int:
    from bench.slurm import count_states, format_counts, sweep_status

    sweep = _load(args)
    root = _results_root(args)
    statuses = sweep_status(sweep, root)
    if not args.quiet:
        print(f"{'run_id':<13} {'state':<11} {'job':<12} {'epochs':>9}  run")
        for s in statuses:
            line = (f"{s.cfg.run_id:<13} {s.state:<11} {s.job_id or '-':<12} "
                    f"{f'{s.epochs_done}/{s.cfg.epochs}':>9}  {s.cfg.slug}")
            if args.verbose and (s.detail or s.slurm_state):
                line += f"  [{s.slurm_state or 'no job'}]" + (f" {s.detail}" if s.detail else "")
            print(line)
    print(f"sweep {sweep.name}: {len(statuses)} runs: {format_counts(count_states(statuses))}")
    if args.retry_failed:
        failed = [s.cfg for s in statuses if s.state == "failed"]
        if not failed:
            print("no failed runs to resubmit")
            return 0
        # The launch path with the sweep narrowed to its failed runs: pending ones stay untouched.
        launch_args = argparse.Namespace(**{**vars(args), "retry_failed": True, "parallel": None, "wait": False,
                                            "poll": 10.0, "wandb": None})
        return cmd_launch(launch_args, replace(sweep, runs=failed))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import parse_formats, write_report
    from bench.results import collect, load_curves, write_runs

    formats = parse_formats(args.format)  # refuse a bad format before anything is written
    root = _results_root(args)
    try:
        sweep = _load(args)
    except ConfigError as exc:
        _name_missing_plugins(args, root, exc)
        raise
    planned = [{"run_id": cfg.run_id, **cfg.to_dict()} for cfg in sweep.runs]
    sweep_dir = root / sweep.name
    runs = collect(sweep_dir, planned)
    curves = load_curves(sweep_dir, list(runs["run_id"]))
    out_dir = Path(args.reports or "reports") / sweep.name
    make_dir(sweep_dir, "--results")
    make_dir(out_dir, "--reports")
    written = write_runs(runs, sweep_dir)
    written += write_report(runs, curves, out_dir, formats=formats, paper=args.paper,
                            title=f"isda-bench report: {sweep.name}")
    mode = args.wandb or sweep.raw.get("tracking") or "disabled"
    if mode != "disabled":
        from bench.report_tables import build_tables
        from bench.tracking import log_report

        tables = {"runs": runs, **{t.key: t for t in build_tables(runs, with_paper=args.paper)}}
        log_report(sweep.name, tables, [p for p in written if p.suffix == ".png"], mode, dir=sweep_dir)
    missing = int((runs["status"] != "completed").sum()) if "status" in runs else 0
    print(f"report for sweep {sweep.name} ({len(runs)} runs, {missing} not completed): {out_dir / 'report.md'}")
    return 0


def _name_missing_plugins(args: argparse.Namespace, root: Path, exc: ConfigError) -> None:
    """A sweep that does not resolve here, whose runs were trained with plugins that are not
    installed here (an entry point the sweep file does not name): say which, in one line."""
    from bench.plugins import recorded_missing
    from bench.sweep import read_yaml

    path = Path(args.sweep)
    try:
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


def cmd_wandb_sync(args: argparse.Namespace) -> int:
    from bench.tracking import sync_sweep

    return sync_sweep(_results_root(args) / _load(args).name, dry_run=args.dry_run,
                      include_synced=args.include_synced)


def cmd_perf(args: argparse.Namespace) -> int:
    from bench import perf

    return perf.main(args.rest)


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="isda-bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    t = sub.add_parser("train", help="train one run into a run directory")
    for flag, kind in _TRAIN_FLAGS.items():
        t.add_argument("--" + flag.replace("_", "-"), dest=flag, type=kind)
    t.add_argument("--download", action="store_true", help="let torchvision download CIFAR into --data-root")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other run field (YAML value)")
    t.add_argument("--out", help="run directory (default: results/adhoc/<run_id>)")
    t.add_argument("--wandb", choices=WANDB_MODES, help="W&B tracking (default auto: online if logged in, "
                   "else offline)")
    t.add_argument("--results", help="results root (default: results, or $ISDA_BENCH_RESULTS)")
    t.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    t.set_defaults(func=cmd_train)

    def sweep_cmd(name: str, func, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("sweep", help="sweep YAML file")
        s.add_argument("--results", help="results root (default: results, or $ISDA_BENCH_RESULTS)")
        s.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
        s.set_defaults(func=func)
        return s

    sweep_cmd("plan", cmd_plan, "show the job matrix, what is done and what is pending")
    la = sweep_cmd("launch", cmd_launch, "run every pending run of a sweep")
    la.add_argument("--cluster", help="local (default without SLURM) | debug (in-process) | slurm")
    la.add_argument("--parallel", type=int, help="local: runs at once (default: one per GPU, or per core)")
    la.add_argument("--profile", help="slurm: a cluster profile YAML (slurm/profiles/*.yaml)")
    la.add_argument("--wandb", choices=WANDB_MODES, help="W&B tracking for the runs launched now")
    la.add_argument("--retry-failed", action="store_true",
                    help="also run failed runs again (from their last checkpoint); diverged runs stay")
    la.add_argument("--wait", action="store_true",
                    help="slurm: follow the sweep with a progress bar until every run has ended; "
                         "exit 1 if any failed")
    la.add_argument("--poll", type=float, default=10.0,
                    help="slurm --wait: seconds between checks (default 10)")
    st = sweep_cmd("status", cmd_status, "per run: pending | running | preempted | requeued | interrupted | "
                   "completed | diverged | failed")
    st.add_argument("-v", "--verbose", action="store_true", help="add SLURM's state and the reason")
    st.add_argument("-q", "--quiet", action="store_true", help="only the counts per state")
    st.add_argument("--retry-failed", action="store_true", help="resubmit the failed runs, and only those")
    st.add_argument("--cluster", help="with --retry-failed: local | debug | slurm (as for launch)")
    st.add_argument("--profile", help="with --retry-failed on slurm: a cluster profile")
    rp = sweep_cmd("report", cmd_report, "collect results and write tables and figures")
    rp.add_argument("--format", default="md,html", help="comma-separated: md, tex, html (default md,html)")
    rp.add_argument("--paper", action=argparse.BooleanOptionalAction, default=True,
                    help="put the paper's numbers beside ours (default on)")
    rp.add_argument("--reports", help="reports root (default: reports)")
    rp.add_argument("--wandb", choices=WANDB_MODES, help="also log the tables and figures as one W&B `report` run")
    wb = sub.add_parser("wandb", help="W&B utilities: `wandb sync SWEEP` uploads a sweep's offline runs")
    wsub = wb.add_subparsers(dest="wandb_command", required=True, parser_class=OneLineParser)
    ws = wsub.add_parser("sync", help="upload a sweep's offline W&B runs (wraps `wandb sync`)")
    ws.add_argument("sweep", help="sweep YAML file")
    ws.add_argument("--results", help="results root (default: results, or $ISDA_BENCH_RESULTS)")
    ws.add_argument("--dry-run", action="store_true", help="list what would be synced")
    ws.add_argument("--include-synced", action="store_true", help="sync folders already synced again")
    ws.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    ws.set_defaults(func=cmd_wandb_sync)

    pf = sub.add_parser("perf", help="benchmarks: isda | isda-ops | step | loader | epoch | accuracy "
                        "(see `isda-bench perf isda -h`)",
                        add_help=False)
    pf.add_argument("rest", nargs=argparse.REMAINDER)
    pf.set_defaults(func=cmd_perf)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["perf"]:
        # Everything after `perf` is the benchmark's own command line, `-h` included, which
        # argparse.REMAINDER would not pass on when it comes first.
        args = argparse.Namespace(func=cmd_perf, rest=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"isda-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("isda-bench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `isda-bench plan … | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

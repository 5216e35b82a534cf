"""The command line: parses arguments and calls the modules; bad input is one line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.plans import (
    DEFAULT_POLL_S,
    PLUGIN_HELP,
    PROFILE_HELP,
    SWEEP_HELP,
    TRAIN_FLAGS,
    WANDB_MODES,
    LaunchPlan,
    check_launch,
    check_plan,
    check_report,
    check_status,
    check_train,
    check_wandb_sync,
)
from bench.common.errors import ConfigError, OneLineParser
from bench.common.files import atomic_write_text, make_dir
from bench.common.paths import path_text
from bench.rundir.state import RunState


# Each command checks all of its input first (bench.cli.plans: a plan, or one ConfigError line), then acts.
def cmd_train(args: argparse.Namespace) -> int:
    from bench.train.trainer import run

    plan = check_train(args)
    cfg, out = plan.cfg, plan.out
    if plan.redo == "failed":
        from bench.rundir.retry import reset_failed

        reset_failed(out)
        print(f"{cfg.slug}: it had failed; training it again from its last checkpoint")
    elif plan.redo is not None:
        from bench.rundir.retry import set_aside

        print(f"{cfg.slug}: its method's code has changed ({plan.redo}); training it again from the first "
              f"epoch, the earlier records moved to {set_aside(out)}")
    result = run(cfg, out)
    err = result.get("last10_test_error")
    shown = f"{err:.2f} %" if isinstance(err, float) else "n/a"
    print(f"{cfg.slug}: {result['status']}, last-10-epoch test error {shown}; run directory {out}")
    return 0 if result["status"] == RunState.COMPLETED else 1


def cmd_plan(args: argparse.Namespace) -> int:
    from bench.launch.todo import changed_method
    from bench.rundir.state import run_state
    from bench.sweep.estimate import estimate_run, measured_throughput

    plan = check_plan(args)
    sweep, root = plan.sweep, plan.root
    processes = "/".join(str(n) for n in sorted({cfg.world_size for cfg in sweep.runs}))
    measured = measured_throughput(root / sweep.name)
    counts: dict[str, int] = {}
    todo_hours, unknown, sources, changed = 0.0, 0, set(), []
    print(f"sweep {sweep.name}: {len(sweep.runs)} runs, {processes} GPU(s) per run → {root / sweep.name}")
    print(f"{'run_id':<13} {'state':<12} {'epochs':>6} {'GPUs':>4} {'GPU-h':>7}  run")
    for cfg in sweep.runs:
        state = run_state(sweep.run_dir(root, cfg))
        counts[state] = counts.get(state, 0) + 1
        est = estimate_run(cfg, cfg.world_size, measured)
        hours = f"{est.hours:.2f}" if est.hours is not None else "?"
        print(f"{cfg.run_id:<13} {state:<12} {cfg.epochs:>6} {cfg.world_size:>4} {hours:>7}  {cfg.slug}")
        if text := changed_method(cfg, sweep.run_dir(root, cfg), state):
            changed.append(text)
        if not state.ended or text:
            if est.hours is None:
                unknown += 1
            else:
                todo_hours += est.hours
                sources.add(est.source)
    print("; ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    if changed:
        print(f"{len(changed)} of them ended under other code of their method ({', '.join(sorted(set(changed)))}): "
              "launch trains them again from the first epoch")
    text = f"estimated GPU-hours still to go: {todo_hours:.1f}"
    if sources:
        text += f" (throughput from {', '.join(sorted(sources))})"
    if unknown:
        text += f"; {unknown} runs without a throughput measurement yet (not counted)"
    print(text)
    return 0


def cmd_launch(args: argparse.Namespace) -> int:
    return launch(check_launch(args))


def launch(plan: LaunchPlan) -> int:
    """Act on a checked launch: the first write is here."""
    from bench.launch.local import launch_debug, launch_local
    from bench.rundir.retry import reset_failed, restore_aside, restore_failed, set_aside

    sweep, root, todo, cluster = plan.sweep, plan.root, plan.todo, plan.cluster
    busy = len(sweep.runs) - plan.finished - plan.failed - len(todo)
    extra = [f"{plan.failed} failed (trained again with --retry-failed)" if plan.failed else "",
             f"{len(plan.superseded)} ended under other code of their method (trained again from the first epoch: "
             f"{', '.join(sorted(set(plan.superseded.values())))})" if plan.superseded else "",
             f"{busy} being trained by a live process" if busy else ""]
    print(f"sweep {sweep.name}: {len(sweep.runs)} runs, {plan.finished} already done"
          f"{''.join(', ' + e for e in extra if e)}, {len(todo)} to run on {cluster}")

    was_reset: set[str] = set()
    aside: dict[str, Path] = {}

    def reset(runs) -> None:  # only now: a launch refused earlier leaves earlier results alone
        for cfg in runs:
            run_dir = sweep.run_dir(root, cfg)
            if cfg.run_id in plan.superseded:
                folder = set_aside(run_dir)
                if folder is not None:
                    aside[cfg.run_id] = folder
            elif plan.retry_failed and reset_failed(run_dir):
                was_reset.add(cfg.run_id)

    def unreset(runs) -> None:  # sbatch refused them: they are what they were
        for cfg in runs:
            if cfg.run_id in was_reset:
                restore_failed(sweep.run_dir(root, cfg))
            if cfg.run_id in aside:
                restore_aside(sweep.run_dir(root, cfg), aside.pop(cfg.run_id))

    if not todo:
        print("nothing submitted")
        if cluster == "slurm" and plan.wait:
            from bench.launch.wait import wait_sweep

            return wait_sweep(sweep, root, poll_s=plan.poll)
        return 0
    make_dir(root / sweep.name, "--results")
    if sweep.path is not None:
        atomic_write_text(root / sweep.name / "sweep.yaml", sweep.path.read_text())
    if cluster == "slurm":
        from bench.launch.slurm import launch_slurm

        return launch_slurm(sweep, todo, root, profile=plan.profile, wait=plan.wait, poll_s=plan.poll,
                            on_submit=reset, on_refused=unreset)
    reset(todo)
    if cluster == "debug":
        failed = launch_debug(sweep, todo, root)
    else:
        failed = launch_local(sweep, todo, root, parallel=plan.parallel)
    print(f"sweep {sweep.name}: {len(todo) - failed} runs finished, {failed} failed; "
          f"results in {root / sweep.name}")
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from bench.launch.status import count_states, format_counts

    plan = check_status(args)
    statuses = plan.statuses
    if not args.quiet:
        print(f"{'run_id':<13} {'state':<11} {'job':<12} {'epochs':>9}  run")
        for s in statuses:
            line = (f"{s.cfg.run_id:<13} {s.state:<11} {s.job_id or '-':<12} "
                    f"{f'{s.epochs_done}/{s.cfg.epochs}':>9}  {s.cfg.slug}")
            if args.verbose and (s.detail or s.slurm_state):
                line += f"  [{s.slurm_state or 'no job'}]" + (f" {s.detail}" if s.detail else "")
            print(line)
    print(f"sweep {plan.sweep.name}: {len(statuses)} runs: {format_counts(count_states(statuses))}")
    if plan.retry is None:
        return 0
    if not plan.retry.sweep.runs:
        print("no failed runs to resubmit")
        return 0
    return launch(plan.retry)


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report.write import contents, summary_lines, write_documents, write_figures
    from bench.results.collect import collect, load_curves, write_runs

    plan = check_report(args)
    sweep, sweep_dir, out_dir = plan.sweep, plan.sweep_dir, plan.out_dir
    planned = [cfg.record() for cfg in sweep.runs]
    runs = collect(sweep_dir, planned)
    curves = load_curves(sweep_dir, list(runs["run_id"]))
    make_dir(sweep_dir, "--results")
    make_dir(out_dir, "--reports")
    written = write_runs(runs, sweep_dir)
    report = contents(runs, paper=plan.paper, title=f"isda-bench report: {sweep.name}")
    figures = write_figures(runs, curves, out_dir)
    written += [p for f in figures for p in (f.png, f.pdf)] + write_documents(report, figures, out_dir, plan.formats)
    if plan.wandb != "disabled":
        from bench.tracking.report_run import log_report

        tables = {"runs": runs, **{t.key: t for t in report.tables}}
        log_report(sweep.name, tables, [p for p in written if p.suffix == ".png"], plan.wandb, dir=sweep_dir)
    # The report's own accounting, in its words: a damaged run is named here as under the report's title.
    for line, _ in summary_lines(runs):
        print(line)
    missing = int((runs["status"] != RunState.COMPLETED).sum()) if "status" in runs else 0
    print(f"report for sweep {sweep.name} ({len(runs)} runs, {missing} not completed): {out_dir / 'report.md'}")
    return 0


def cmd_wandb_sync(args: argparse.Namespace) -> int:
    from bench.tracking.sync import sync_sweep

    plan = check_wandb_sync(args)
    return sync_sweep(plan.root / plan.sweep.name, dry_run=args.dry_run, include_synced=args.include_synced)


def cmd_methods(args: argparse.Namespace) -> int:
    from bench.methods.listing import listing
    from bench.methods.plugins import load

    load(args.plugin or ())
    print(listing())
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from bench.perf import commands as perf

    return perf.main(args.rest)


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="isda-bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    t = sub.add_parser("train", help="train one run into a run directory")
    for flag, kind in TRAIN_FLAGS.items():
        t.add_argument("--" + flag.replace("_", "-"), dest=flag, type=kind)
    t.add_argument("--download", action="store_true", help="let torchvision download CIFAR into --data-root")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other run field (YAML value)")
    t.add_argument("--out", type=path_text, help="run directory (default: results/adhoc/<run_id>)")
    t.add_argument("--wandb", choices=WANDB_MODES, help="W&B tracking (default auto: online if logged in, "
                   "else offline)")
    t.add_argument("--results", type=path_text, help="results root (default: results, or $ISDA_BENCH_RESULTS)")
    t.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    t.set_defaults(func=cmd_train)

    def sweep_cmd(name: str, func, help: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help)
        s.add_argument("sweep", type=path_text, help=SWEEP_HELP)
        s.add_argument("--results", type=path_text, help="results root (default: results, or $ISDA_BENCH_RESULTS)")
        s.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
        s.set_defaults(func=func)
        return s

    sweep_cmd("plan", cmd_plan, "show the job matrix, what is done and what is pending")
    la = sweep_cmd("launch", cmd_launch, "run every pending run of a sweep")
    la.add_argument("--cluster", help="local (default without SLURM) | debug (in-process) | slurm")
    la.add_argument("--parallel", type=int, help="local: runs at once (default: one per GPU, or per core)")
    la.add_argument("--profile", type=path_text, help="slurm: " + PROFILE_HELP)
    la.add_argument("--wandb", choices=WANDB_MODES, help="W&B tracking for the runs launched now")
    la.add_argument("--retry-failed", action="store_true",
                    help="also run failed runs again (from their last checkpoint); diverged runs stay")
    la.add_argument("--wait", action="store_true",
                    help="slurm: follow the sweep with a progress bar until every run has ended; "
                         "exit 1 if any failed")
    la.add_argument("--poll", type=float, help=f"slurm --wait: seconds between checks (default {DEFAULT_POLL_S:g})")
    st = sweep_cmd("status", cmd_status, "per run: " + " | ".join(RunState))
    st.add_argument("-v", "--verbose", action="store_true", help="add SLURM's state and the reason")
    st.add_argument("-q", "--quiet", action="store_true", help="only the counts per state")
    st.add_argument("--retry-failed", action="store_true", help="resubmit the failed runs, and only those")
    st.add_argument("--cluster", help="with --retry-failed: local | debug | slurm (as for launch)")
    st.add_argument("--profile", type=path_text, help="with --retry-failed on slurm: " + PROFILE_HELP)
    rp = sweep_cmd("report", cmd_report, "collect results and write tables and figures")
    rp.add_argument("--format", default="md,html", help="comma-separated: md, tex, html (default md,html)")
    rp.add_argument("--paper", action=argparse.BooleanOptionalAction, default=True,
                    help="put the paper's numbers beside ours (default on)")
    rp.add_argument("--reports", type=path_text, help="reports root (default: reports)")
    rp.add_argument("--wandb", choices=WANDB_MODES, help="also log the tables and figures as one W&B `report` run")
    wb = sub.add_parser("wandb", help="W&B utilities: `wandb sync SWEEP` uploads a sweep's offline runs")
    wsub = wb.add_subparsers(dest="wandb_command", required=True, parser_class=OneLineParser)
    ws = wsub.add_parser("sync", help="upload a sweep's offline W&B runs (wraps `wandb sync`)")
    ws.add_argument("sweep", type=path_text, help=SWEEP_HELP)
    ws.add_argument("--results", type=path_text, help="results root (default: results, or $ISDA_BENCH_RESULTS)")
    ws.add_argument("--dry-run", action="store_true", help="list what would be synced")
    ws.add_argument("--include-synced", action="store_true", help="sync folders already synced again")
    ws.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    ws.set_defaults(func=cmd_wandb_sync)

    me = sub.add_parser("methods", help="list every method: its parameters with defaults and bounds, and where it "
                        "comes from (built-in, package, file)")
    me.add_argument("--plugin", action="append", metavar="MODULE", help=PLUGIN_HELP)
    me.set_defaults(func=cmd_methods)

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

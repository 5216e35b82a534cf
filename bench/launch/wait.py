"""``launch --wait``: follow a sweep's merged status until every run has ended, or until some run no longer can."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from bench.launch.status import count_states, format_counts, sweep_status
from bench.rundir.state import RunState
from bench.sweep.spec import Sweep


def wait_sweep(sweep: Sweep, results_root: Path, poll_s: float = 10.0, stall_polls: int = 3,
               query: Callable[[Sequence[str]], Mapping[str, str]] | None = None) -> int:
    """Follow the sweep until every run has ended; 1 if any failed or some run can no longer end.

    A run that is neither finished nor owned by a live job for ``stall_polls`` polls in a row
    (e.g. cancelled outside, or never submitted) would keep us waiting forever: we stop instead.
    """
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
    failed = counts.get(RunState.FAILED, 0)
    print(f"sweep {sweep.name}: {format_counts(counts)}; results in {Path(results_root) / sweep.name}")
    return 1 if failed else 0

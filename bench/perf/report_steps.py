"""The steps of ``isda-bench report``, each timed in CPU seconds, for ``isda-bench perf report``.

Run as ``python -m bench.perf.report_steps SWEEP RESULTS REPORTS FORMATS`` in a fresh process: it
imports nothing of the project before its clock starts, so that the imports a report needs count as
they do for the command, and prints the steps as one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STEPS = ("imports", "read", "tables", "figures", "documents")


def steps(sweep_ref: str, results: str, reports: str, formats: str) -> dict[str, float]:
    """CPU seconds of each step of ``isda-bench report``, in this process (which has imported nothing
    of the report yet): the same calls as the command, one after the other."""
    clock = time.process_time
    t0 = clock()
    from bench.common.files import make_dir
    from bench.report.write import contents, write_documents, write_figures
    from bench.results.collect import collect, load_curves, write_runs
    from bench.sweep.spec import load_sweep

    t1 = clock()
    sweep = load_sweep(sweep_ref)
    sweep_dir, out_dir = Path(results) / sweep.name, Path(reports) / sweep.name
    runs = collect(sweep_dir, [cfg.record() for cfg in sweep.runs])
    curves = load_curves(sweep_dir, list(runs["run_id"]))
    write_runs(runs, sweep_dir)
    t2 = clock()
    c = contents(runs)
    t3 = clock()
    make_dir(out_dir, "--reports")
    figures = write_figures(runs, curves, out_dir)
    t4 = clock()
    write_documents(c, figures, out_dir, formats)
    t5 = clock()
    return dict(zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)))


if __name__ == "__main__":
    print(json.dumps(steps(*sys.argv[1:5])))

"""A sweep's report (its tables and figures) logged to W&B as one new run, a snapshot of the sweep."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.tracking.guard import import_wandb, warn
from bench.tracking.modes import resolve_mode
from bench.tracking.naming import project_name


def _as_frame(table: Any) -> Any:
    """A pandas DataFrame from a DataFrame or a bench.report.model.Table (header + rows of cells)."""
    import pandas as pd

    if isinstance(table, pd.DataFrame):
        df = table
        if not isinstance(df.index, pd.RangeIndex):
            df = df.reset_index()
    else:
        header = list(table.header)
        if getattr(table, "groups", None):
            labels = [g for g, span in table.groups for _ in range(span)]
            header = [f"{g}: {h}" if g else h for g, h in zip(labels, header)]
        df = pd.DataFrame([[getattr(c, "text", c) for c in row] for row in table.rows], columns=header)
    df = df.copy()
    df.columns = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in df.columns]
    # wandb.Table wants one type per column: anything that is not a plain number becomes text.
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                                  else v if isinstance(v, str) else json.dumps(v, default=str)
                                  if isinstance(v, (list, dict, tuple)) else str(v))
    return df


def log_report(sweep_name: str, tables: Mapping[str, Any], figures: list[Path], mode: str, *,
               dir: Path | str | None = None, project: str | None = None) -> str | None:
    """Log a sweep's report as one new W&B run (name, group and job_type ``report``): ``tables`` as
    ``wandb.Table`` (DataFrames or bench.report.model.Table), ``figures`` (PNG/JPEG; others are
    skipped) as images. Each call is a new run, a snapshot of the sweep at that time. Its files go to
    ``dir/wandb/`` (pass the sweep's results directory, where ``sync_sweep`` looks). Never raises;
    returns the W&B run id, or None when tracking is off or failed."""
    mode = resolve_mode(mode)
    if mode == "disabled":
        return None
    run = None
    try:
        wandb = import_wandb()
        if dir is not None:
            Path(dir, "wandb").mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(console="off", save_code=False, quiet=True, x_disable_stats=True)
        project = project or os.environ.get("WANDB_PROJECT") or project_name(sweep_name)
        run = wandb.init(mode=mode, project=project,
                         name="report", group="report", job_type="report", tags=[sweep_name, "report"],
                         config={"sweep": sweep_name}, dir=str(dir) if dir is not None else None,
                         reinit="create_new", settings=settings)
        data: dict[str, Any] = {}
        for key, table in tables.items():
            data[f"tables/{key}"] = wandb.Table(dataframe=_as_frame(table))
        for path in map(Path, figures):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                data[f"figures/{path.stem}"] = wandb.Image(str(path), caption=path.stem)
        run.log(data, commit=True)
        run_id = str(run.id)
        run.finish()
        return run_id
    except Exception as exc:  # noqa: BLE001
        warn(f"W&B report logging failed ({type(exc).__name__}: {exc}); the report files are unaffected")
        if run is not None:
            try:
                run.finish(exit_code=1, quiet=True)
            except Exception:  # noqa: BLE001
                pass
        return None

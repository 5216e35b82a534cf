"""Collect run directories into one table: one row per run, whatever state the run is in.

A run directory (``results/<sweep>/<run_id>/``, its files named in bench.rundir.files) holds
``config.yaml`` (written first), ``metrics.csv`` (one row per finished epoch), ``checkpoint.pt`` and,
written last and atomically, ``result.json``. The row's ``status`` is the run's state
(bench.rundir.state.RunState, as ``plan`` and ``launch`` read it from the directory):

- the ``status`` of ``result.json`` (``completed`` | ``diverged`` | ``failed``) when it exists;
- ``running`` while a process holds the run's lock, ``interrupted`` when it stopped with a
  checkpoint to resume from, ``pending`` before its first checkpoint, and for a planned run that
  has no directory at all; ``epochs_done`` (bench.rundir.state.epochs_done) shows how far it got.

Nothing is dropped silently, and nothing damaged is used: every run folder is one row, read by
:func:`bench.results.folders.read_folder`. A run with a damaged file keeps its row, in the state its
folder reads (a result.json that cannot be read, or "completed" without its error: ``failed``), with
what is wrong in its ``damage`` column and in ``df.attrs["damaged"]``; the report names each such run
once, on the console and under its title (bench.report.write.summary_lines).

Typical flow (what ``isda-bench report`` does)::

    from pathlib import Path
    from bench.results import collect as results
    from bench.report import write as report

    sweep_dir = Path("results/smoke")
    runs = results.collect(sweep_dir, planned=[cfg.to_dict() for cfg in plan])  # planned optional
    results.write_runs(runs, sweep_dir)                       # runs.parquet + runs.csv
    curves = results.load_curves(sweep_dir, runs["run_id"])
    report.write_report(runs, curves, Path("reports/smoke"), formats=("md", "tex", "html"))
"""

from __future__ import annotations

import dataclasses
import io
import math
import numbers
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bench.common.files import atomic_write_bytes, atomic_write_text
from bench.results.folders import flatten, read_curve, read_folder
from bench.rundir.files import is_run_dir
from bench.rundir.state import RunState

# Always present, in this order, so that downstream code can rely on them; any other key of
# config.yaml or result.json follows as an extra column.
CORE_COLUMNS: tuple[str, ...] = (
    "run_id",
    "sweep",
    "dataset",
    "arch",
    "method",
    "lambda0",
    "focal_gamma",
    "cov_mode",
    "seed",
    "epochs",
    "status",
    "epochs_done",
    "final_test_error",
    "best_test_error",
    "last10_test_error",
    "wall_time_s",
    "images_per_s",
    "device",
    "torch_version",
    "git_sha",
    "failed_epoch",
    "reason",
    "damage",
)
NUMERIC_COLUMNS: tuple[str, ...] = (
    "lambda0",
    "focal_gamma",
    "final_test_error",
    "best_test_error",
    "last10_test_error",
    "wall_time_s",
    "images_per_s",
    "failed_epoch",
)
SORT_COLUMNS: tuple[str, ...] = (
    "dataset",
    "arch",
    "method",
    "lambda0",
    "focal_gamma",
    "cov_mode",
    "seed",
    "run_id",
)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def _as_mapping(cfg: Any) -> dict[str, Any]:
    # The planner may hand over RunConfig objects rather than dicts; their run_id is a property,
    # which neither to_dict() nor dataclasses.asdict() includes.
    if isinstance(cfg, Mapping):
        out = dict(cfg)
    elif callable(getattr(cfg, "to_dict", None)):
        out = dict(cfg.to_dict())
    elif dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        out = dataclasses.asdict(cfg)
    else:
        raise TypeError(f"planned run config must be a mapping, got {type(cfg).__name__}")
    if "run_id" not in out and getattr(cfg, "run_id", None) is not None:
        out["run_id"] = cfg.run_id
    return out


def _run_dirs(sweep_dir: Path) -> list[Path]:
    if not sweep_dir.is_dir():
        return []
    return sorted(d for d in sweep_dir.iterdir() if is_run_dir(d))


def _sort_key(value: Any) -> tuple[int, float, str]:
    # Numbers sort numerically (seed 10 after seed 2), text alphabetically, blanks last.
    if value is None or (isinstance(value, numbers.Real) and math.isnan(float(value))):
        return (2, 0.0, "")
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _finish(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    # Text columns as Python objects rather than pandas' Arrow-backed strings: a report selects the
    # runs of each cell thousands of times, and each selection of an Arrow column costs a conversion.
    df = df.astype({c: object for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)})
    for col in CORE_COLUMNS:
        if col not in df.columns:
            df[col] = None
    for col in NUMERIC_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["epochs_done"] = pd.to_numeric(df["epochs_done"], errors="coerce").fillna(0).astype("int64")
    extra = sorted(c for c in df.columns if c not in CORE_COLUMNS)
    df = df[list(CORE_COLUMNS) + extra]
    if len(df):
        keys = [tuple(_sort_key(v) for v in rec) for rec in df[list(SORT_COLUMNS)].itertuples(index=False)]
        order = sorted(range(len(df)), key=keys.__getitem__)
        df = df.iloc[order].reset_index(drop=True)
    # One block per dtype (a copy consolidates them): selecting rows then takes a few arrays, not one
    # per column.
    return df.copy()


class _Shared(list[str]):
    """A list held in ``DataFrame.attrs``, never changed once made: pandas deep-copies attrs into every
    frame an operation returns, and a report's tables make tens of thousands of them."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self


class _SharedMap(dict[str, list[str]]):
    """A mapping held in ``DataFrame.attrs``, never changed once made (see :class:`_Shared`)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedMap:
        return self


def collect(sweep_dir: Path, planned: list[dict] | None = None) -> pd.DataFrame:
    """One row per run found under ``sweep_dir``, plus one ``pending`` row per planned run not found.

    With ``planned``, folders of runs the plan does not hold (left by an earlier version of the
    sweep, with other settings) are left out, in a warning: a table cell is one experiment.
    Columns: :data:`CORE_COLUMNS` first, then every other config/result key (nested keys dotted,
    lists as JSON text). ``df.attrs["damaged"]`` maps the id of each run with a damaged file to what
    is damaged (the ``damage`` column, as a list), and ``df.attrs["config_keys"]`` lists the keys of
    the runs' configs (what makes up an experiment, including parameters of methods whose plugin is
    not imported here).
    """
    sweep_dir = Path(sweep_dir)
    damaged: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    config_keys: set[str] = set()
    run_dirs = _run_dirs(sweep_dir)
    if planned is not None:
        wanted = {str(_as_mapping(cfg).get("run_id")) for cfg in planned}
        stray = [d.name for d in run_dirs if d.name not in wanted]
        if stray:
            _warn(f"{len(stray)} run folder(s) under {sweep_dir} are not runs of the sweep as it is now "
                  f"(other settings; left out): {', '.join(stray[:5])}{', …' if len(stray) > 5 else ''}")
        run_dirs = [d for d in run_dirs if d.name in wanted]
    plan = {str(flat.get("run_id")): flat for flat in (flatten(_as_mapping(cfg)) for cfg in planned or [])}
    for run_dir in run_dirs:
        folder = read_folder(run_dir)
        row = folder.row
        config_keys |= folder.config_keys
        # A run written before a field existed lacks it in its config.yaml, and a run whose config.yaml
        # is damaged lacks them all; its run id says it is the planned experiment, so the plan's value
        # (the one it implicitly had) fills it.
        for key, value in plan.get(str(row["run_id"]), plan.get(run_dir.name, {})).items():
            row.setdefault(key, value)
        if folder.damage:
            row["damage"] = "; ".join(folder.damage)
            damaged[str(row["run_id"])] = folder.damage
        rows.append(row)
        seen |= {run_dir.name, str(row["run_id"])}
    for cfg in planned or []:
        flat = flatten(_as_mapping(cfg))
        config_keys.update(flat)
        if "run_id" not in flat:
            raise ValueError("a planned run config has no 'run_id'")
        if str(flat["run_id"]) in seen:
            continue
        seen.add(str(flat["run_id"]))
        rows.append({**flat, "status": RunState.PENDING.value, "epochs_done": 0})
    df = _finish(rows)
    df.attrs["damaged"] = _SharedMap(damaged)
    df.attrs["config_keys"] = _Shared(sorted(config_keys))
    return df


def load_curves(sweep_dir: Path, run_ids: Iterable[str]) -> pd.DataFrame:
    """``metrics.csv`` of the given runs in long format: ``run_id`` and metrics.csv's columns, one row per
    (run, epoch); a run's config is its row of the table of runs (:func:`collect`), joined on ``run_id``
    where needed. Runs without metrics are skipped (a missing run has none), and so are damaged ones:
    :func:`collect` names them, and ``attrs["damaged"]`` lists their ids."""
    sweep_dir = Path(sweep_dir)
    frames: list[pd.DataFrame] = []
    damaged: list[str] = []
    for run_id in dict.fromkeys(str(r) for r in run_ids):
        metrics, problem = read_curve(sweep_dir / run_id)
        if problem:
            damaged.append(run_id)
        if metrics is not None:
            frames.append(metrics.assign(run_id=run_id))
    curves = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["run_id", "epoch", "test_error"])
    )
    curves = curves[["run_id", *(c for c in curves.columns if c != "run_id")]]
    curves.attrs["damaged"] = _Shared(damaged)
    return curves


def _storable(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix types (a config key that is a bool in one run and text in another)
    are stored as text: parquet needs one type per column."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        kinds = {type(v) for v in out[col] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if len(kinds) > 1:
            out[col] = out[col].map(
                lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            )
    out.attrs = {}
    return out


def write_runs(df: pd.DataFrame, sweep_dir: Path) -> list[Path]:
    """Write ``runs.parquet`` and ``runs.csv`` into ``sweep_dir`` (each atomically); return both paths."""
    sweep_dir = Path(sweep_dir)
    table = _storable(df)
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    parquet = atomic_write_bytes(sweep_dir / "runs.parquet", buf.getvalue())
    csv = atomic_write_text(sweep_dir / "runs.csv", table.to_csv(index=False))
    return [parquet, csv]

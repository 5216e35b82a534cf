"""Reading one run folder for the table of runs, and naming what is damaged in it.

This is the one reader of run folders that reports use (:mod:`bench.results.collect` calls it for the
runs and their curves). A file is *damaged* when it cannot be read, or holds what the engine never
writes: a result.json that is not a JSON object, whose ``status`` is not a state, or whose numbers are
text; a config.yaml that is not a mapping; a metrics.csv without its ``epoch`` and ``test_error``
columns or with a value that is not a number. Nothing a damaged file holds is used: a run keeps its
row, in the state :mod:`bench.rundir.state` reads from its folder (a damaged result.json reads
``failed``, as ``status`` shows it), and :func:`damage_line` names it with what is wrong, in the words
the report and the console both print.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.rundir.files import CONFIG_FILE, METRICS_FILE, RESULT_FILE, read_config, read_result
from bench.rundir.state import ENDED, RESULT_ERROR_KEY, RunState, epochs_done, result_state, run_state

# result.json's keys that hold numbers (or null): text there is damage.
RESULT_NUMBERS: tuple[str, ...] = (
    "final_test_error", "best_test_error", "last10_test_error", "final_top5_test_error",
    "last10_top5_test_error", "wall_time_s", "images_per_s", "epochs_done", "failed_epoch",
)
CURVE_COLUMNS = ("epoch", "test_error")


def flatten(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted columns; lists become JSON text, so one column has one type
    and the table survives both parquet and CSV unchanged."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(list(value))
        else:
            flat[name] = value
    return flat


@dataclass
class Folder:
    """One run folder as the table of runs holds it: its row, and one phrase per damaged file or value."""

    row: dict[str, Any]
    damage: list[str] = field(default_factory=list)
    config_keys: set[str] = field(default_factory=set)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _result_damage(result: dict[str, Any]) -> list[str]:
    out = []
    status = result.get("status")
    if status not in ENDED:
        out.append(f"{RESULT_FILE}'s status {status!r} is none of {', '.join(s.value for s in RunState if s in ENDED)}")
    for key in RESULT_NUMBERS:
        value = result.get(key)
        if value is not None and not _is_number(value):
            out.append(f"{RESULT_FILE}'s {key} is {value!r}, not a number")
    if status == RunState.COMPLETED:
        value = result.get(RESULT_ERROR_KEY)
        if RESULT_ERROR_KEY not in result:
            out.append(f"{RESULT_FILE} says completed but has no {RESULT_ERROR_KEY}")
        elif value is None or (_is_number(value) and not math.isfinite(float(value))):
            out.append(f"{RESULT_FILE} says completed but its {RESULT_ERROR_KEY} is {value!r}")
    return out


def read_folder(run_dir: Path) -> Folder:
    """The row of the run in ``run_dir`` (config.yaml's keys, then result.json's, which win), its state
    and epochs done, and what is damaged in it (metrics.csv included)."""
    run_dir = Path(run_dir)
    folder = Folder(row={})
    try:
        config = read_config(run_dir)
    except (OSError, ValueError) as exc:
        folder.damage.append(f"{CONFIG_FILE} cannot be read ({exc})")
        config = None
    if config is not None:
        folder.row.update(flatten(config))
        folder.config_keys = set(folder.row)
    try:
        result = read_result(run_dir)
    except (OSError, ValueError) as exc:
        folder.damage.append(f"{RESULT_FILE} cannot be read ({exc})")
        result = None
        folder.row["status"] = run_state(run_dir).value
    else:
        if result is not None:
            folder.damage += _result_damage(result)
            # result.json is the later, authoritative record: its keys win over the config's, except
            # a number that is text, which is left out rather than read as another value.
            folder.row.update({k: v for k, v in flatten(result).items()
                               if not (k in RESULT_NUMBERS and v is not None and not _is_number(v))})
            folder.row["status"] = result_state(result).value
        else:
            folder.row["status"] = run_state(run_dir).value
    folder.row.setdefault("run_id", run_dir.name)
    folder.row["epochs_done"] = epochs_done(run_dir, result)
    _, curve_damage = read_curve(run_dir)
    if curve_damage:
        folder.damage.append(curve_damage)
    return folder


def _bad_value(col: str, values: pd.Series) -> str | None:
    """The first value of ``values`` (metrics.csv's text) that is not a number, named with its line."""
    coerced = pd.to_numeric(values, errors="coerce")
    for index in values.index[coerced.isna().to_numpy()]:
        text = values[index]
        try:
            float(text)  # "nan" and "inf" are numbers the engine may write (a diverged run's loss)
        except (TypeError, ValueError):
            return f"{METRICS_FILE}'s {col} on line {int(index) + 2} is {text!r}, not a number"
    return None


def read_curve(run_dir: Path) -> tuple[pd.DataFrame | None, str | None]:
    """metrics.csv of ``run_dir`` as numbers, or (None, what is damaged); (None, None) without the file."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None, None
    try:
        text = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        return None, f"{METRICS_FILE} cannot be read ({str(exc).strip()})"
    missing = [c for c in CURVE_COLUMNS if c not in text.columns]
    if missing:
        return None, f"{METRICS_FILE} has no {' or '.join(missing)} column"
    for col in text.columns:
        bad = _bad_value(col, text[col])
        if bad:
            return None, bad
    numbers_ = text.apply(lambda s: s.astype(float))
    epochs = numbers_["epoch"]
    if not (epochs.map(float.is_integer).all() and (epochs >= 0).all()):
        return None, f"{METRICS_FILE}'s epoch column holds a value that is not a whole number"
    return numbers_.assign(epoch=epochs.astype("int64")), None


def damage_line(run_id: str, state: str, damage: list[str]) -> str:
    """How a report and the console name a damaged run: its id, the state it is counted in, what is wrong."""
    return f"{run_id} ({state}): {'; '.join(damage)}"

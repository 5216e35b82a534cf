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

import csv
import functools
import json
import math
import numbers
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
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


def read_curve(run_dir: Path) -> tuple[pd.DataFrame | None, str | None]:
    """metrics.csv of ``run_dir`` as numbers, or (None, what is damaged); (None, None) without the file.

    A report reads each curve twice (for damage when the runs are collected, then to draw it): the
    file is parsed once, and read again only when it has changed (another inode, size or time)."""
    path = Path(run_dir) / METRICS_FILE
    try:
        st = path.stat()
    except OSError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, None
    return _parse_curve(str(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1024)
def _parse_curve(path: str, _ino: int, _size: int, _mtime_ns: int) -> tuple[pd.DataFrame | None, str | None]:
    """metrics.csv split by the csv module and its values parsed by numpy: a report reads every run's
    curve, and pandas' reader costs far more per small file than the parsing itself. Callers must not
    change the frame."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return None, f"{METRICS_FILE} cannot be read ({str(exc).strip()})"
    if not lines or not any(lines[0]):
        return None, f"{METRICS_FILE} cannot be read (it has no header)"
    header, body = lines[0], [row for row in lines[1:] if row]
    missing = [c for c in CURVE_COLUMNS if c not in header]
    if missing:
        return None, f"{METRICS_FILE} has no {' or '.join(missing)} column"
    try:
        table = np.array(body, dtype=float).reshape(len(body), len(header))  # every value parsed in C
    except ValueError:
        return None, _first_damage(header, body)
    numbers_ = {col: table[:, i] for i, col in enumerate(header)}
    epochs = numbers_["epoch"]
    if not (np.all(epochs >= 0) and np.all(np.mod(epochs, 1.0) == 0.0)):
        return None, f"{METRICS_FILE}'s epoch column holds a value that is not a whole number"
    frame = pd.DataFrame(numbers_)
    return frame.assign(epoch=frame["epoch"].astype("int64")), None


def _first_damage(header: list[str], body: list[list[str]]) -> str:
    """What is wrong first in metrics.csv's ``body`` rows, which numpy would not read as numbers."""
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            return f"{METRICS_FILE}'s line {number} has {len(row)} values, not {len(header)}"
        for col, text in zip(header, row):
            try:
                float(text)  # "nan" and "inf" are numbers the engine may write (a diverged run's loss)
            except ValueError:
                return f"{METRICS_FILE}'s {col} on line {number} is {text!r}, not a number"
    return f"{METRICS_FILE} cannot be read as numbers"


def damage_line(run_id: str, state: str, damage: list[str]) -> str:
    """How a report and the console name a damaged run: its id, the state it is counted in, what is wrong."""
    return f"{run_id} ({state}): {'; '.join(damage)}"

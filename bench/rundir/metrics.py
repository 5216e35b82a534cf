"""metrics.csv: its columns, the exact text the trainer writes for a run's epoch rows, and reading them back.

One row per finished epoch, in epoch order, under a header of METRIC_COLUMNS; ``epoch`` is an integer,
every other value ``repr(float)`` (so that a number read back is the number written, bit for bit);
lines end in "\\n". The file is rewritten whole, atomically, after every epoch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common.files import atomic_write_text
from bench.rundir.files import METRICS_FILE

METRIC_COLUMNS = ("epoch", "lr", "lambda", "train_loss", "train_error", "test_loss", "test_error", "epoch_time_s")


def metrics_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """metrics.csv's content for ``rows`` (keys beyond METRIC_COLUMNS are left out)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (row[k] if k == "epoch" else repr(float(row[k]))) for k in METRIC_COLUMNS})
    return buf.getvalue()


def write_metrics(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    return atomic_write_text(Path(run_dir) / METRICS_FILE, metrics_text(rows))


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """metrics.csv's rows as numbers; empty when the file is missing or unreadable."""
    try:
        with open(Path(run_dir) / METRICS_FILE, newline="") as fh:
            return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    except (OSError, ValueError, TypeError, csv.Error):
        return []


def rows_written(run_dir: Path) -> int:
    """The epoch rows in metrics.csv: its non-blank lines after the header (0 without the file)."""
    try:
        data = (Path(run_dir) / METRICS_FILE).read_bytes()
    except OSError:
        return 0
    return max(0, sum(1 for line in data.splitlines() if line.strip()) - 1)

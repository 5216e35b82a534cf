"""The files of a run directory (``results/<sweep>/<run_id>/``), by name, and the writer and readers of
its records.

Every module that reads or writes a run directory takes the names from here:

    config.yaml         the resolved run config with its run_id, written before the first epoch
    metrics.csv         one row per finished epoch (bench.rundir.metrics), rewritten after each
    checkpoint.pt       the newest epoch's full state, rewritten after each; a damaged one is set
                        aside as checkpoint.pt.corrupt and the run starts again
    result.json         written last, once: the run has ended, and its ``status`` says how
    result.failed.json  a failed run's result.json, set aside so that it trains again (bench.rundir.retry)
    superseded/<n>/     the records of a run whose method changed, set aside so that it trains afresh
    job.json            who runs it: the job record (bench.rundir.job)
    .lock               held by the one process that trains it (bench.rundir.lock)
    logs/               the launcher's stdout/stderr, or links to SLURM's log files
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bench.common.files import atomic_write_text

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINT_FILE = "checkpoint.pt"
CORRUPT_SUFFIX = ".corrupt"
RESULT_FILE = "result.json"
FAILED_RESULT_FILE = "result.failed.json"
JOB_FILE = "job.json"
LOCK_FILE = ".lock"
LOG_DIR = "logs"
SUPERSEDED_DIR = "superseded"

# A folder holding any of these is a run directory (a run that has at least begun).
RUN_MARKERS = (CONFIG_FILE, METRICS_FILE, RESULT_FILE, CHECKPOINT_FILE)


def is_run_dir(path: Path) -> bool:
    return Path(path).is_dir() and any((Path(path) / name).exists() for name in RUN_MARKERS)


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """result.json's object, or None while the run has not ended.

    A result.json that cannot be read or is not a JSON object raises OSError or ValueError."""
    path = Path(run_dir) / RESULT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


# libyaml's parser where PyYAML has it (a report reads every run's config.yaml), with the safe constructor.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def write_config(run_dir: Path, config: Mapping[str, Any]) -> Path:
    """config.yaml: the resolved run config, its run id first (RunConfig.record), written whole or not at all."""
    return atomic_write_text(Path(run_dir) / CONFIG_FILE, yaml.safe_dump(dict(config), sort_keys=False))


def read_config(run_dir: Path) -> dict[str, Any] | None:
    """config.yaml's mapping, or None before the run has written it.

    A config.yaml that cannot be read or is not a mapping raises OSError or ValueError."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a SafeLoader: tags cannot construct objects
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError("not a mapping")
    return data

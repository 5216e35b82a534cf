"""Whose a run folder is: read before anything is written into it, by ``train`` and by ``launch``
for every run of a sweep, so that no run resumes into, or leaves files in, another experiment's folder."""

from __future__ import annotations

from pathlib import Path

from bench.common.errors import ConfigError
from bench.common.paths import input_folder
from bench.rundir.files import read_config, read_result


def owner(run_dir: Path) -> str | None:
    """The run id that run_dir's files belong to (result.json's, else config.yaml's), if any."""
    for read in (read_result, read_config):
        try:
            data = read(Path(run_dir))
        except (OSError, ValueError):  # damaged: says nothing about the owner
            continue
        if data is not None and data.get("run_id"):
            return str(data["run_id"])
    return None


def check_run_dir(run_dir: Path, run_id: str, key: str) -> Path:
    """``run_dir`` as a folder that run ``run_id`` may train into: new, or already its own."""
    run_dir = input_folder(run_dir, key, missing_ok=True)
    held = owner(run_dir)
    if held not in (None, run_id):
        raise ConfigError(key, str(run_dir), f"a folder of run {run_id} or a new one: this one holds run {held}, "
                          "another experiment, which resuming would overwrite")
    return run_dir

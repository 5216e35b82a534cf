"""checkpoint.pt: writing a run's epoch state, and reading it back on resume (every rank of a group the same
file); a damaged checkpoint, or one of another run, is set aside and the run starts again from epoch 0."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Protocol

import torch

from bench.common.files import atomic_write
from bench.rundir.files import CHECKPOINT_FILE, CORRUPT_SUFFIX
from bench.train import distributed


class Resumable(Protocol):
    world: int
    main: bool

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def write_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    return atomic_write(Path(run_dir) / CHECKPOINT_FILE, lambda fh: torch.save(state, fh))


def load_checkpoint(run_dir: Path, run_id: str) -> dict[str, Any] | None:
    """The run's checkpoint if it is whole and ours; a damaged one is set aside and None returned."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("run_id") != run_id:
            raise ValueError(f"it belongs to run {state.get('run_id')!r}, not {run_id!r}")
        return state
    except Exception as exc:  # noqa: BLE001 - any damage means: start again
        bad = path.with_name(path.name + CORRUPT_SUFFIX)
        path.replace(bad)
        print(f"warning: checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); "
              f"moved to {bad.name}, starting from epoch 0", file=sys.stderr)
        return None


def resume(run: Resumable, run_dir: Path, run_id: str) -> None:
    """Load the run's checkpoint into ``run`` if there is a sound one; in a group, on every rank.

    Rank 0 checks it (and sets a damaged one aside); the others then read the same file, which
    needs run_dir on a filesystem all ranks share (as a requeued job needs anyway).
    """
    if run.world == 1:
        state = load_checkpoint(run_dir, run_id)
        if state is not None:
            run.load_state_dict(state)
        return
    state = load_checkpoint(run_dir, run_id) if run.main else None
    if distributed.broadcast_object(state is not None):
        if state is None:
            state = torch.load(Path(run_dir) / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
        run.load_state_dict(state)

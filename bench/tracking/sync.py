"""Uploading a sweep's offline W&B runs with ``wandb sync`` (``isda-bench wandb sync``), for clusters
whose compute nodes have no internet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.tracking.modes import has_api_key


def offline_run_dirs(sweep_dir: Path | str) -> list[Path]:
    """Every offline W&B run folder of a sweep: ``<sweep>/*/wandb/offline-run-*`` (runs) and
    ``<sweep>/wandb/offline-run-*`` (the report), oldest first within a run."""
    sweep_dir = Path(sweep_dir)
    found = [*sweep_dir.glob("*/wandb/offline-run-*"), *sweep_dir.glob("wandb/offline-run-*")]
    return sorted((p for p in found if p.is_dir() and any(p.glob("run-*.wandb"))),
                  key=lambda p: (p.parent.parent.name, p.name))


def _is_synced(run_dir: Path) -> bool:
    return all(f.with_name(f.name + ".synced").exists() for f in run_dir.glob("run-*.wandb"))


def sync_sweep(sweep_dir: Path | str, *, dry_run: bool = False, include_synced: bool = False) -> int:
    """Upload a sweep's offline runs with ``wandb sync``; the folders of a resumed run are uploaded in
    order, as one W&B run. Returns the exit status: 0 when everything was synced or there was nothing
    to sync."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        print(f"wandb sync: no results directory {sweep_dir}", file=sys.stderr)
        return 2
    dirs = offline_run_dirs(sweep_dir)
    pending = dirs if include_synced else [d for d in dirs if not _is_synced(d)]
    if not pending:
        done = f" ({len(dirs)} already synced)" if dirs else ""
        print(f"wandb sync: nothing to sync in {sweep_dir}: no unsynced offline W&B runs{done}")
        return 0
    if not dry_run and not has_api_key():
        print("wandb sync: not logged in to W&B: run `wandb login` or set WANDB_API_KEY, then retry",
              file=sys.stderr)
        return 1
    skipped = f" ({len(dirs) - len(pending)} already synced)" if len(dirs) > len(pending) else ""
    print(f"wandb sync: {'would sync' if dry_run else 'syncing'} {len(pending)} offline run folder(s) "
          f"of {sweep_dir}{skipped}")
    for d in pending:
        print(f"  {d}")
    cmd = [sys.executable, "-m", "wandb", "sync", "--yes"]
    if dry_run:
        cmd.append("--dry-run")
    if include_synced:
        cmd.append("--include-synced")
    cmd += [str(d) for d in pending]
    sys.stdout.flush()
    try:
        return subprocess.run(cmd, check=False).returncode
    except OSError as exc:
        print(f"wandb sync: cannot run wandb ({exc})", file=sys.stderr)
        return 1

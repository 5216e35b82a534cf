"""How a run appears in W&B (one W&B run per run directory): project ``isda-bench-<sweep>``, the run id
(ours plus a short hash of the sweep), name (the slug), group (the config without its seed) and tags."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any


def project_name(sweep: str) -> str:
    return f"isda-bench-{sweep}"


def group_name(cfg: Any) -> str:
    """The run's config without its seed: readable prefix + a short hash of every other experiment field."""
    experiment = {k: v for k, v in cfg.experiment.items() if k != "seed"}
    digest = hashlib.sha256(json.dumps(experiment, sort_keys=True, default=str).encode()).hexdigest()[:6]
    slug = re.sub(r"-s\d+$", "", cfg.slug)
    return f"{slug}-{digest}"


def run_tags(cfg: Any) -> list[str]:
    return [str(t)[:64] for t in dict.fromkeys((cfg.dataset, cfg.arch, cfg.method, cfg.sweep))]


def wandb_id(cfg: Any) -> str:
    """The W&B run id of a run: our run id plus a short hash of the sweep (the same experiment in two
    sweeps is two W&B runs even in a shared project). Deterministic, so a requeued job finds its run."""
    return f"{cfg.run_id}-{hashlib.sha256(cfg.sweep.encode()).hexdigest()[:6]}"

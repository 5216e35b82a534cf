"""result.json's content: the summary of a run that has ended (its status, errors, timing and provenance).

A plugin method's run records the code that computed it (``method_code``: the plugin's package and
version, or a hash of its source; bench.methods.plugins.method_code), so that a run of a method changed
since is not counted as done (bench.launch.todo) and a report can tell runs of two versions apart.
A run that failed before its first epoch could start has a shorter one (``not_started``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bench.common.provenance import device_name, git_sha, versions
from bench.experiment.runconfig import ID_PARAMS, RunConfig
from bench.methods import parse_method, plugins
from bench.rundir.state import RunState
from bench.train.engine import Run


def _final_and_last10(values: list[Any]) -> tuple[float | None, float | None]:
    """Last value and mean of the last 10, each None unless every value it uses is a finite number."""
    def ok(v: Any) -> bool:
        return isinstance(v, float) and math.isfinite(v)

    last = values[-10:]
    final = values[-1] if values and ok(values[-1]) else None
    return final, (sum(last) / len(last) if last and all(map(ok, last)) else None)


def summarise(cfg: RunConfig, run: Run, status: RunState, **extra: Any) -> dict[str, Any]:
    """result.json of ``run``, which ended in ``status``; ``extra``: more keys (failed_epoch, reason)."""
    return record(cfg, run.rows, status, wall_time_s=run.elapsed,
                  images_per_s=(len(run.rows) * run.train.num_samples / run.train_time) if run.train_time else None,
                  device=device_name(run.device), precision="bf16" if run.bf16 else "fp32",
                  num_params=sum(p.numel() for p in run.model.parameters()), **extra)


def record(cfg: RunConfig, rows: list[dict[str, Any]], status: RunState, *, wall_time_s: float,
           images_per_s: float | None, device: str, precision: str, num_params: int, **extra: Any) -> dict[str, Any]:
    """result.json of a run of ``cfg`` whose epochs wrote ``rows`` (metrics.csv's) and that ended in ``status``."""
    epochs_done = len(rows)
    # A diverged run's errors are those of a broken network: no number to report.
    rows = rows if status != RunState.DIVERGED else []
    errors = [r["test_error"] for r in rows]
    finite = [e for e in errors if math.isfinite(e)]
    final, last10 = _final_and_last10(errors)
    final5, last10_5 = _final_and_last10([r.get("test_top5_error") for r in rows])
    result = {
        "run_id": cfg.run_id, "sweep": cfg.sweep, "dataset": cfg.dataset, "arch": cfg.arch,
        "method": cfg.method, **{k: cfg.param(k) for k in ID_PARAMS}, **dict(cfg.params), "world_size": cfg.world_size,
        # Only when set: result.json of a run on the whole training set keeps its keys.
        **({"train_size": cfg.train_size} if cfg.train_size is not None else {}),
        "seed": cfg.seed, "epochs": cfg.epochs, "epochs_done": epochs_done, "status": status.value,
        "final_test_error": final, "best_test_error": min(finite) if finite else None,
        "last10_test_error": last10, "final_top5_test_error": final5, "last10_top5_test_error": last10_5,
        "wall_time_s": wall_time_s, "images_per_s": images_per_s, "device": device, "precision": precision,
        "num_params": num_params, "torch_version": torch.__version__, "git_sha": git_sha(), "versions": versions(),
    }
    if plugins.loaded():
        result["plugins"] = plugins.loaded()
    code = plugins.method_code(parse_method(cfg.method).loss)
    if code is not None:  # built-in methods: isda-bench's own code, which git_sha and versions record
        result["method_code"] = code
    result.update(extra)
    return result


def not_started(config: dict[str, Any], run_id: str, reason: str, traceback: str) -> dict[str, Any]:
    """result.json of a run whose job failed before training began (its plugin, its loss, its data,
    its process group): what its config says of it, and why. Without it the run would read as pending."""
    result: dict[str, Any] = {"run_id": run_id, **{k: config.get(k) for k in ("sweep", "dataset", "arch", "method",
                                                                                "seed", "epochs")}}
    result.update({"epochs_done": 0, "status": RunState.FAILED.value, "failed_epoch": 0, "reason": reason,
                   "traceback": traceback, "torch_version": torch.__version__, "git_sha": git_sha(),
                   "versions": versions()})
    if plugins.loaded():
        result["plugins"] = plugins.loaded()
    return result

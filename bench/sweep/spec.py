"""Sweep files: YAML → the list of RunConfigs it stands for.

    name: smoke                 # optional; defaults to the file's stem; runs go to results/<name>/
    grid:                       # the cartesian product of these lists
      dataset: [digits]
      arch: [resnet32]
      method: [ce, focal, autoaugment, isda]
      lambda0: [0.5]            # method-specific axes multiply only the methods that take them
      seed: [0, 1, 2]
    overrides: {epochs: 20}     # any run field, for every run
    include: [{method: isda, lambda0: 1.0, seed: 0}]   # extra runs (overrides apply)
    exclude: [{method: focal, seed: 2}]                # drop the runs whose resolved config matches
    plugins: [my_losses]        # modules that register methods (bench.methods.plugins), imported first
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.common import bounds
from bench.common.errors import ConfigError
from bench.common.shipped import shipped_file, shipped_names
from bench.common.yamlio import read_yaml
from bench.experiment.resolve import NAME_RE, resolve
from bench.experiment.runconfig import RunConfig, run_field_names
from bench.methods import param_names, parse_method
from bench.methods.plugins import broken_note

SWEEP_KEYS = ("name", "description", "grid", "overrides", "include", "exclude", "cluster", "profile",
              "tracking", "parallel", "resources", "plugins")
# What one run needs, overriding the profile's: ``nodes`` × ``gpus_per_node`` GPUs, one process each.
RESOURCE_KEYS = ("nodes", "gpus_per_node")
# The run fields for which null is a value (train_size: the whole training set); for every other field
# a null is a blank (`seed:` with nothing after it) that would quietly stand for the default.
NULLABLE = tuple(f.name for f in fields(RunConfig) if f.default is None)


@dataclass
class Sweep:
    name: str
    path: Path | None
    runs: list[RunConfig]
    description: str = ""
    cluster: str | None = None
    profile: str | None = None
    parallel: int | None = None
    resources: dict[str, int] = field(default_factory=dict)  # RESOURCE_KEYS given by the sweep
    raw: dict[str, Any] = field(default_factory=dict)

    def run_dir(self, results_root: Path, cfg: RunConfig) -> Path:
        return Path(results_root) / self.name / cfg.run_id


def _mapping(key: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, value, "a mapping of run fields")
    return value


def _check_fields(section: str, mapping: dict[str, Any], allowed: tuple[str, ...] | None = None) -> None:
    """Every key of a sweep's ``section`` names a run field (``plugins`` is the sweep's own key), and
    gives it a value."""
    allowed = tuple(k for k in (allowed or run_field_names()) if k != "plugins")
    for key, value in mapping.items():
        if key not in allowed:
            raise ConfigError(f"{section}.{key}", value, f"valid keys: {', '.join(allowed)}{broken_note()}")
        check_blank(f"{section}.{key}", key, value)


def check_blank(where: str, key: str, value: Any) -> None:
    """Refuse a null (or a null in a list) given to run field ``key``, unless null is a value of it."""
    if key not in NULLABLE and any(v is None for v in (value if isinstance(value, list) else [value])):
        raise ConfigError(where, value, f"a value (an entry left empty reads as null, which {key} does not take; "
                          f"null is a value of {', '.join(NULLABLE)} only)")


def _unused_params(where: str, mapping: dict[str, Any], used: set[str]) -> None:
    """Refuse a method parameter that no method of the sweep takes: it would set or multiply no run."""
    for key in (k for k in param_names() if k in mapping and k not in used):
        raise ConfigError(f"{where}.{key}", mapping[key], "a parameter of a method of this sweep (no method of "
                          f"this sweep takes {key}: it would {'multiply' if where == 'grid' else 'set'} no run)")


def _runs_from_grid(grid: dict[str, Any], default_method: Any) -> list[dict[str, Any]]:
    """The grid's run specs; ``default_method`` (the overrides') for a grid without a method axis."""
    if not grid:  # the product of no axes is one run of defaults, which nobody writes `grid: {}` to mean
        raise ConfigError("grid", grid, "a mapping of run fields to their values, with at least one field")
    _check_fields("grid", grid)
    axes: dict[str, list[Any]] = {}
    for key, values in grid.items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ConfigError(f"grid.{key}", values, "a non-empty list")
        for i, value in enumerate(values):
            if value in values[:i]:  # the run it names would be planned once, and the list misread silently
                raise ConfigError(f"grid.{key}", values, f"a list without repeats ({value!r} is given twice)")
        axes[key] = values
    method_axes = param_names()  # the methods' parameters multiply only the methods that take them
    common = [k for k in axes if k not in method_axes]
    # Counted before the product is built: a few long axes would otherwise take the memory first.
    most = math.prod(len(v) for v in axes.values())
    if not bounds.BOUNDS["runs"].holds(most):
        sizes = " × ".join(f"{k} {len(v)}" for k, v in axes.items())
        raise ConfigError("grid", sizes, f"a grid of at most {bounds.BOUNDS['runs'].max:,.0f} runs (this one makes "
                          f"up to {most:,}; split it into several sweeps)")
    specs: list[dict[str, Any]] = []
    used: set[str] = set()
    for combo in itertools.product(*(axes[k] for k in common)):
        base = dict(zip(common, combo))
        method = parse_method(base.get("method", default_method))
        own = [k for k in method_axes if k in axes and k in method.params]
        used.update(own)
        for extra in itertools.product(*(axes[k] for k in own)):
            specs.append({**base, **dict(zip(own, extra))})
    _unused_params("grid", axes, used)
    return specs


def _excluded(have: dict[str, Any], pattern: dict[str, Any]) -> bool:
    """Whether a resolved run (``RunConfig.to_dict()``) matches every key of an ``exclude`` pattern."""
    for key, want in pattern.items():
        got = have.get(key)
        if key == "method":
            want = parse_method(want).name  # "Cutout+ISDA" is isda+cutout
        if isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)):
            got, want = tuple(got), tuple(want)
        if got != want:
            return False
    return True


def _plugins(value: Any, extra: tuple[str, ...], near: Path | None) -> tuple[str, ...]:
    """The sweep's ``plugins`` (looked for beside the sweep file too) and those given on the command
    line, imported (bench.methods.plugins); their module names."""
    from bench.methods.plugins import load

    if value is None:
        value = []
    if not isinstance(value, list):
        raise ConfigError("plugins", value, "a list of Python module names or .py files")
    infos = load(value, key="plugins", near=near) + load(extra, key="--plugin")
    return tuple(dict.fromkeys(info.module for info in infos))


def parse_sweep(data: Any, default_name: str, path: Path | None = None, plugins: tuple[str, ...] = ()) -> Sweep:
    """The sweep's runs; ``plugins``: modules given on the command line, loaded with the sweep's own."""
    if not isinstance(data, dict) or not data:
        raise ConfigError("sweep", data if not isinstance(data, dict) else "{}",
                          "a non-empty mapping with keys " + ", ".join(SWEEP_KEYS))
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise ConfigError(unknown[0], data[unknown[0]], f"valid sweep keys: {', '.join(SWEEP_KEYS)}")
    modules = _plugins(data.get("plugins"), tuple(plugins), path.parent if path is not None else None)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError("name", name, "letters, digits, '_', '.', '-', not starting with '.' or '-' "
                          "(it names folders under results/ and reports/)")
    overrides = _mapping("overrides", data.get("overrides"))
    _check_fields("overrides", overrides, tuple(k for k in run_field_names() if k != "sweep"))
    grid = data.get("grid")
    both = [k for k in _mapping("grid", grid) if k in overrides]
    if both:  # the grid's values would win: the override would be dropped without a word
        raise ConfigError(f"overrides.{both[0]}", overrides[both[0]], f"a field the grid does not vary (grid.{both[0]} "
                          "gives every run its value)")
    specs = _runs_from_grid(_mapping("grid", grid), overrides.get("method", "ce")) if grid is not None else []
    for key in ("include", "exclude"):
        items = data.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ConfigError(key, items, "a list of mappings of run fields")
    for item in data.get("include") or []:
        if not item:  # a run of defaults only: an entry whose fields were left out
            raise ConfigError("include", item, "mappings of run fields, each with at least one field")
        _check_fields("include", item)
    specs += list(data.get("include") or [])
    excludes: list[dict[str, Any]] = list(data.get("exclude") or [])
    for pattern in excludes:
        _check_fields("exclude", pattern)
    if not specs:
        raise ConfigError("grid", grid, "at least one run (a grid or an include list)")
    resources = _resources(data.get("resources"))
    world = processes_per_run(resources)
    runs: dict[str, RunConfig] = {}
    used: set[str] = set()  # the method parameters of the overrides that some run takes
    for spec in specs:
        method = parse_method(spec.get("method", overrides.get("method", "ce")))
        used.update(k for k in overrides if k in method.params)
        merged = {k: v for k, v in overrides.items() if k not in param_names() or k in method.params}
        merged.update(spec)
        merged["sweep"] = name
        if modules:  # the processes that train the runs import them too
            merged["plugins"] = list(modules)
        if data.get("tracking") is not None:
            merged.setdefault("tracking", data["tracking"])
        if merged.setdefault("world_size", world) != world:
            raise ConfigError("world_size", merged["world_size"], f"{world}: a sweep's runs have as many processes "
                              "as its `resources` give them (nodes × gpus_per_node; none: 1)")
        cfg = resolve(merged)
        runs.setdefault(cfg.run_id, cfg)  # the same experiment listed twice runs once
    _unused_params("overrides", overrides, used)
    resolved = {run_id: cfg.to_dict() for run_id, cfg in runs.items()}
    for pattern in excludes:  # matched against the resolved runs: overrides and recipe values count
        matched = [i for i in runs if _excluded(resolved[i], pattern)]
        if not matched:
            raise ConfigError("exclude", pattern, "a pattern that matches a run of the grid or include list "
                              "(this one matches none)")
        for run_id in matched:
            del runs[run_id]
    if not runs:
        raise ConfigError("exclude", excludes, "patterns that leave at least one run")
    cluster = data.get("cluster")
    if cluster is not None and cluster not in ("local", "debug", "slurm"):
        raise ConfigError("cluster", cluster, ["local", "debug", "slurm"])
    parallel = data.get("parallel")
    if parallel is not None:
        if isinstance(parallel, bool) or not isinstance(parallel, int):
            raise ConfigError("parallel", parallel, "a positive integer")
        bounds.check("parallel", "parallel", parallel, "an integer")
    description = data.get("description", "")
    if not isinstance(description, (str, type(None))):
        raise ConfigError("description", description, "a text")
    return Sweep(name=name, path=path, runs=list(runs.values()), description=str(description or ""),
                 cluster=cluster, profile=data.get("profile"), parallel=parallel,
                 resources=resources, raw=data)


def processes_per_run(resources: dict[str, int]) -> int:
    """Training processes (one per GPU) of each run, as the launchers start them for ``resources``."""
    return resources.get("nodes", 1) * max(1, resources.get("gpus_per_node", 1))


def _resources(value: Any) -> dict[str, int]:
    resources = _mapping("resources", value)
    for key, n in resources.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"resources.{key}", n, f"valid keys: {', '.join(RESOURCE_KEYS)}")
        if isinstance(n, bool) or not isinstance(n, int):
            raise ConfigError(f"resources.{key}", n, "a positive integer")
        bounds.check(key, f"resources.{key}", n, "an integer")
    return dict(resources)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a folder on the way that may not be searched: the path checks name it
        return False


def find_sweep(ref: Path | str) -> Path:
    """The sweep file ``ref`` names: a path to a file, or else the bare name of a shipped sweep
    (``cifar_main`` or ``cifar_main.yaml``, bench.common.shipped), found from any folder."""
    path = Path(ref)
    if _is_file(path):
        return path
    shipped = shipped_file("sweeps", str(ref))
    if shipped is not None:
        return shipped
    if len(path.parts) > 1 or os.path.lexists(path):  # the path checks say what is wrong with it
        return path
    raise ConfigError("sweep", str(ref), "a sweep file, or the name of a shipped sweep: "
                      + ", ".join(shipped_names("sweeps")))


def load_sweep(path: Path | str, plugins: tuple[str, ...] | list[str] = ()) -> Sweep:
    """The runs of a sweep file or of a shipped sweep named by ``path`` (find_sweep); ``plugins``:
    modules to import besides those the file names."""
    path = find_sweep(path)
    return parse_sweep(read_yaml(path, "sweep"), path.stem, path, plugins=tuple(plugins))

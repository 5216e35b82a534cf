"""Plugins: modules from outside the package that register losses (bench.methods.register_loss).

Three ways in:
- ``--plugin MODULE`` on train, plan, launch, status and report (repeatable);
- a sweep's ``plugins: [MODULE, ...]``;
- the entry-point group ``isda_bench.methods`` of installed packages, loaded by itself at the first
  look-up of a method; an entry point's value names the module to import.

A run keeps the modules it was resolved with in its config (``plugins``: a scheduling field, not part
of the run id), so the process that trains it (a local subprocess, a SLURM job, every DDP rank)
imports the same ones before it resolves the run. A module that is found only in the current
folder is looked for there too, and that folder travels with the job (bench.launch.job.TrainJob).
result.json lists every plugin the training process loaded, with its package and version.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.common.errors import ConfigError
from bench.methods import registry

GROUP = "isda_bench.methods"
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class PluginInfo:
    module: str
    package: str | None  # the distribution that installed it; None for a bare module
    version: str | None
    losses: tuple[str, ...]  # the losses it registered

    def record(self) -> dict[str, Any]:
        """What result.json keeps of it."""
        return {"module": self.module, "package": self.package, "version": self.version,
                "losses": list(self.losses)}


_LOADED: dict[str, PluginInfo] = {}
_SEARCH_PATHS: list[str] = []  # folders added to sys.path to find a plugin (the current one)
_ENTRY_POINTS_DONE = False


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split()) + _where(exc)


def _where(exc: BaseException) -> str:
    """`` at FILE:LINE``: the deepest line of the plugin's own code the error went through."""
    bench_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the bench package
    found, tb = "", exc.__traceback__
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        if not path.startswith(("<", bench_dir)) and "importlib" not in path:
            found = f" at {os.path.basename(path)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _import(name: str, key: str, what: str) -> Any:
    """Import plugin module ``name``; any failure is one ConfigError under ``key``."""
    try:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not _missing_itself(exc, name):
                raise
            # The console script does not put the current folder on sys.path, as `python -m` does:
            # a plugin next to the sweep file is looked for there, after everything installed.
            here = os.getcwd()
            if here in sys.path or os.path.abspath(here) in map(os.path.abspath, sys.path):
                raise
            sys.path.append(here)
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as again:
                sys.path.remove(here)
                if _missing_itself(again, name):
                    raise exc from None
                raise
            _SEARCH_PATHS.append(here)
            return module
    except ModuleNotFoundError as exc:
        if _missing_itself(exc, name):
            raise ConfigError(key, name, f"{what}: an importable Python module (none on sys.path or in "
                              f"{os.getcwd()}; install it, or set PYTHONPATH)") from None
        raise ConfigError(key, name, f"{what} that imports cleanly (it raised {_one_line(exc)})") from None
    except registry.RegistrationError as exc:
        raise ConfigError(key, name, f"{what} whose losses register (register_loss refused: "
                          f"{exc}{_where(exc)})") from None
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken plugin is the user's input: one line, exit 2
        raise ConfigError(key, name, f"{what} that imports cleanly (it raised {_one_line(exc)})") from None


def _missing_itself(exc: ModuleNotFoundError, name: str) -> bool:
    """Whether the module (or a package above it) is what was not found, not one it imports."""
    missing = exc.name or ""
    return bool(missing) and (name == missing or name.startswith(missing + "."))


def _distribution(name: str, module: Any) -> tuple[str | None, str | None]:
    top = name.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    version = getattr(module, "__version__", None)
    return None, str(version) if version is not None else None


def _register(name: str, module: Any, before: set[str], package: str | None, version: str | None) -> None:
    mine = [s.name for s in registry._LOSSES.values() if s.module == name or s.module.startswith(name + ".")]
    new = [n for n in registry._LOSSES if n not in before]
    losses = tuple(dict.fromkeys([*new, *mine]))
    _LOADED[name] = PluginInfo(name, package, version, losses)


def load(modules: Iterable[str], key: str = "--plugin") -> list[PluginInfo]:
    """Import each plugin module once, in order; bad names and broken modules are ConfigErrors."""
    load_entry_points()  # installed plugins first: a module given by name then clashes with them, not they with it
    out = []
    for name in modules:
        if not isinstance(name, str) or not MODULE_RE.match(name):
            raise ConfigError(key, name, "a Python module name (letters, digits and '_', dotted)")
        if name not in _LOADED:
            before = set(registry._LOSSES)
            module = _import(name, key, "a plugin")
            _register(name, module, before, *_distribution(name, module))
        out.append(_LOADED[name])
    return out


def load_entry_points() -> None:
    """Import the modules of the installed packages' ``isda_bench.methods`` entry points, once."""
    global _ENTRY_POINTS_DONE
    if _ENTRY_POINTS_DONE:
        return
    _ENTRY_POINTS_DONE = True
    points = sorted(metadata.entry_points(group=GROUP), key=lambda ep: (ep.value, ep.name))
    for ep in points:
        name = ep.value.partition(":")[0].strip()
        if name in _LOADED:
            continue
        dist = getattr(ep, "dist", None)
        package, version = (dist.name, dist.version) if dist is not None else (None, None)
        where = f"entry point {ep.name!r} of {package or 'an installed package'} {version or ''}".rstrip()
        if not MODULE_RE.match(name):
            raise ConfigError(GROUP, ep.value, f"{where}: a module name")
        before = set(registry._LOSSES)
        module = _import(name, GROUP, where)
        if package is None:
            package, version = _distribution(name, module)
        _register(name, module, before, package, version)


def loaded() -> list[dict[str, Any]]:
    """Every plugin this process loaded, as result.json records them."""
    return [info.record() for info in _LOADED.values()]


def search_paths() -> list[str]:
    """Folders this process added to sys.path to find its plugins."""
    return list(_SEARCH_PATHS)


def add_search_paths(paths: Iterable[str]) -> None:
    """Make the launching process's plugin folders importable here, after everything installed."""
    for path in paths:
        if path not in sys.path:
            sys.path.append(path)
            _SEARCH_PATHS.append(path)


registry._autoload = load_entry_points


def recorded_missing(sweep_dir: Any) -> list[str]:
    """The plugins that the runs in ``sweep_dir`` were trained with (their result.json and config.yaml
    say) and that this process can neither import nor has loaded, as ``module (package version)``."""
    import importlib.util
    from pathlib import Path

    from bench.rundir.files import read_config, read_result

    found: dict[str, str] = {}
    for run_dir in sorted(Path(sweep_dir).glob("*/")):
        try:
            records = (read_result(run_dir) or {}).get("plugins") or []
        except (OSError, ValueError):
            records = []
        for rec in records:
            if isinstance(rec, dict) and isinstance(rec.get("module"), str):
                what = " ".join(str(rec[k]) for k in ("package", "version") if rec.get(k))
                found.setdefault(rec["module"], f"{rec['module']} ({what})" if what else rec["module"])
        try:
            modules = (read_config(run_dir) or {}).get("plugins") or []
        except (OSError, ValueError):
            modules = []
        for name in modules:
            if isinstance(name, str):
                found.setdefault(name, name)

    def importable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    return [text for name, text in found.items()
            if name not in _LOADED and MODULE_RE.match(name) and not importable(name)]

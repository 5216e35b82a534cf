"""Plugins: modules from outside the package that register losses (bench.methods.register_loss).

Three ways in:
- ``--plugin MODULE`` on train, plan, launch, status, report and methods (repeatable), or
  ``--plugin path/to/file.py``;
- a sweep's ``plugins: [MODULE or FILE.py, ...]``, looked for beside the sweep file as well;
- the entry-point group ``isda_bench.methods`` of installed packages, loaded by itself at the first
  look-up of a method; an entry point's value names the module to import.

A module is looked for among the installed ones first, then beside the sweep file that names it,
then in the current folder; a folder found that way travels with the job
(bench.launch.job.TrainJob). A file is imported as the module its name gives, refused if an
installed module of that name would be imported in its place. A plugin must register at least one
loss. A run keeps the module names it was resolved with in its config (``plugins``: a scheduling
field, not part of the run id), so the process that trains it (a local subprocess, a SLURM job,
every DDP rank) imports the same ones before it resolves the run.

A broken entry point of an installed package does not stop the commands that do not need it: it is
named in the refusal of a method or a run field that only it could give, and by ``isda-bench methods``.
The code of each plugin's methods is known (``method_code``: the package's name and version, or a
hash of the module's source), so that a run records what computed it and a changed method is not
counted as done.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.metadata as metadata
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
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
    origin: str | None = None  # the file it was imported from
    code: str | None = None  # what computed its losses: "package version", or "sha256:…" of its source

    def record(self) -> dict[str, Any]:
        """What result.json keeps of it."""
        return {"module": self.module, "package": self.package, "version": self.version,
                "losses": list(self.losses)}


_LOADED: dict[str, PluginInfo] = {}
_SEARCH_PATHS: list[str] = []  # folders added to sys.path to find a plugin (beside a sweep, the current one)
_ENTRY_POINTS_DONE = False
_BROKEN: dict[str, str] = {}  # entry-point module → why it did not load


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


def _findable(top: str) -> bool:
    """Whether ``top`` (a top-level module) can be imported from sys.path; runs none of its code."""
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _add_path(folder: str) -> None:
    if os.path.abspath(folder) not in map(os.path.abspath, sys.path):
        sys.path.append(folder)
        importlib.invalidate_caches()
    if folder not in _SEARCH_PATHS:
        _SEARCH_PATHS.append(folder)


def _folders(near: Path | None) -> list[str]:
    """Where a plugin that is not installed is looked for: beside the sweep file, then here."""
    return list(dict.fromkeys(str(Path(f).resolve()) for f in ([near] if near is not None else []) + [Path.cwd()]))


def _locate(name: str, key: str, what: str, near: Path | None) -> str:
    """The module to import for ``name``, its folder put on sys.path where it is not installed;
    nothing of the plugin runs here, so a refusal comes before any of its code."""
    if name.endswith(".py") or "/" in name or os.sep in name:
        return _locate_file(name, key, what, near)
    if not MODULE_RE.match(name):
        raise ConfigError(key, name, "a Python module name (letters, digits and '_', dotted) or a .py file")
    top = name.split(".")[0]
    if not _findable(top):
        folders = _folders(near)
        found = [f for f in folders if importlib.machinery.PathFinder.find_spec(top, [f]) is not None]
        if not found:
            raise ConfigError(key, name, f"{what}: an importable Python module (none installed, nor in "
                              f"{' or '.join(folders)}; install it, or set PYTHONPATH)")
        _add_path(found[0])
    return name


def _locate_file(name: str, key: str, what: str, near: Path | None) -> str:
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [Path(f) / path for f in _folders(near)]
    found = next((c.resolve() for c in candidates if c.is_file()), None)
    if found is None:
        raise ConfigError(key, name, f"{what}: a Python file that exists (looked for "
                          f"{' and '.join(str(c) for c in candidates)}), or an installed module's name")
    module = found.stem
    if found.suffix != ".py" or not MODULE_RE.match(module) or "." in module:
        raise ConfigError(key, name, f"{what}: a .py file whose name is a Python module name (letters, digits, '_')")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    origin = getattr(spec, "origin", None)
    if spec is not None and (origin is None or Path(origin).resolve() != found):
        raise ConfigError(key, name, f"{what} file whose name no other importable module has (importing "
                          f"{module} would give {origin or 'a built-in module'}, here and in every job; rename "
                          "the file)")
    _add_path(str(found.parent))
    return module


def _import(name: str, key: str, what: str) -> Any:
    """Import plugin module ``name``; any failure is one ConfigError under ``key``."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise ConfigError(key, name, f"{what}: an importable Python module (none on sys.path; install it, "
                              "or set PYTHONPATH)") from None
        raise ConfigError(key, name, f"{what} that imports cleanly (it raised {_one_line(exc)})") from None
    except registry.RegistrationError as exc:
        raise ConfigError(key, name, f"{what} whose losses register (register_loss refused: "
                          f"{exc}{_where(exc)})") from None
    except ConfigError:
        raise
    except SystemExit as exc:  # a script's sys.exit() would otherwise end the command with nothing done
        raise ConfigError(key, name, f"{what} that imports cleanly (it called sys.exit({exc.code!r})"
                          f"{_where(exc)}: a plugin is imported, not run)") from None
    except Exception as exc:  # noqa: BLE001 - a broken plugin is the user's input: one line, exit 2
        raise ConfigError(key, name, f"{what} that imports cleanly (it raised {_one_line(exc)})") from None


def _distribution(name: str, module: Any) -> tuple[str | None, str | None]:
    top = name.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    version = getattr(module, "__version__", None)
    return None, str(version) if version is not None else None


def _source_hash(name: str) -> tuple[str | None, str | None]:
    """(the file ``name`` was imported from, "sha256:…" of the source of its top-level module: the
    file, or every .py file of the package's folder)."""
    top = sys.modules.get(name.split(".")[0])
    origin = getattr(sys.modules.get(name), "__file__", None)
    top_file = getattr(top, "__file__", None)
    if not top_file:
        return origin, None
    top_path = Path(top_file)
    files = sorted(top_path.parent.rglob("*.py")) if top_path.name == "__init__.py" else [top_path]
    digest = hashlib.sha256()
    for file in files:
        try:
            digest.update(str(file.relative_to(top_path.parent)).encode() + b"\0" + file.read_bytes())
        except OSError:
            continue
    return origin, "sha256:" + digest.hexdigest()[:12]


def _register(name: str, module: Any, before: set[str], package: str | None, version: str | None) -> PluginInfo:
    mine = [s.name for s in registry._LOSSES.values() if s.module == name or s.module.startswith(name + ".")]
    new = [n for n in registry._LOSSES if n not in before]
    losses = tuple(dict.fromkeys([*new, *mine]))
    origin, source = _source_hash(name)
    info = PluginInfo(name, package, version, losses, origin, f"{package} {version}" if package else source)
    _LOADED[name] = info
    return info


def _load_one(name: str, key: str, what: str, package: str | None = None, version: str | None = None) -> PluginInfo:
    """Import module ``name`` (located already) and record what it registered; on any refusal the
    registry is left as it was before."""
    saved = dict(registry._LOSSES), dict(registry._PARAMS)
    try:
        module = _import(name, key, what)
        if package is None:
            package, version = _distribution(name, module)
        info = _register(name, module, set(saved[0]), package, version)
        if not info.losses:
            del _LOADED[name]
            raise ConfigError(key, name, f"{what} that registers at least one loss (importing it registered none: "
                              "call bench.methods.register_loss, or decorate a factory with @register_loss)")
        return info
    except ConfigError:
        registry._LOSSES.clear()
        registry._LOSSES.update(saved[0])
        registry._PARAMS.clear()
        registry._PARAMS.update(saved[1])
        raise


def load(modules: Iterable[str], key: str = "--plugin", near: Path | None = None) -> list[PluginInfo]:
    """Import each plugin module once, in order; bad names and broken modules are ConfigErrors.

    ``near``: the folder of the sweep file that names them, searched before the current one."""
    load_entry_points()  # installed plugins first: a module given by name then clashes with them, not they with it
    out = []
    for given in modules:
        if not isinstance(given, str):
            raise ConfigError(key, given, "a Python module name or a .py file")
        name = _locate(given, key, "a plugin", near)
        if name not in _LOADED:
            _load_one(name, key, "a plugin")
        out.append(_LOADED[name])
    return out


def load_entry_points() -> None:
    """Import the modules of the installed packages' ``isda_bench.methods`` entry points, once.

    One that does not load is set aside: the commands that do not need it go on, and a refusal of a
    method or a run field that no loaded plugin gives names it (``broken_note``), as ``methods`` does."""
    global _ENTRY_POINTS_DONE
    if _ENTRY_POINTS_DONE:
        return
    _ENTRY_POINTS_DONE = True
    points = sorted(metadata.entry_points(group=GROUP), key=lambda ep: (ep.value, ep.name))
    for ep in points:
        name = ep.value.partition(":")[0].strip()
        if name in _LOADED or name in _BROKEN:
            continue
        dist = getattr(ep, "dist", None)
        package, version = (dist.name, dist.version) if dist is not None else (None, None)
        where = f"entry point {ep.name!r} of {package or 'an installed package'} {version or ''}".rstrip()
        try:
            if not MODULE_RE.match(name):
                raise ConfigError(GROUP, ep.value, f"{where}: a module name")
            _load_one(name, GROUP, where, package, version)
        except ConfigError as exc:  # named where a method or a field it might have given is refused
            _BROKEN[name] = exc.allowed


def broken_note() -> str:
    """What a refusal of an unknown method or run field adds while an installed plugin is broken."""
    if not _BROKEN:
        return ""
    return "; installed plugins that did not load, and may be what is missing: " + "; ".join(
        f"{name} ({reason})" for name, reason in _BROKEN.items())


def loaded() -> list[dict[str, Any]]:
    """Every plugin this process loaded, as result.json records them."""
    return [info.record() for info in _LOADED.values()]


def plugin_of(loss: str) -> PluginInfo | None:
    """The plugin that registered ``loss`` (the one that defines its factory, where a plugin imported
    another); None for a built-in one or one registered by a script."""
    found = [info for info in _LOADED.values() if loss in info.losses]
    module = registry._LOSSES[loss].module if loss in registry._LOSSES else ""
    own = [info for info in found if module == info.module or module.startswith(info.module + ".")]
    return (own or found)[0] if found else None


def method_code(loss: str) -> str | None:
    """What computes ``loss``: its plugin's package and version, or a hash of its source; None for a
    built-in loss, whose code is isda-bench's (the run's git sha and versions record it)."""
    spec = registry.get_loss(loss)
    if spec.builtin:
        return None
    info = plugin_of(loss)
    return info.code if info is not None else _source_hash(spec.module)[1]


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

"""Paths a user names (``--results``, ``--reports``, ``--out``, ``--data-root``, a sweep, a profile),
checked before a command writes anything.

Every shape a path can take on disk that the command cannot use is a ConfigError naming the option:
a file where a folder is wanted (or the reverse), a parent that is a file, a link to nothing, a link
loop, a folder without permission, a file system that refuses new folders. The checks create
nothing they leave behind: whether a folder can be made is tried with a hidden folder that is
removed at once (``os.access`` cannot tell, e.g. for root under /proc or on a read-only mount).
"""

from __future__ import annotations

import argparse
import os
import stat
import tempfile
from pathlib import Path

from bench.common.errors import ConfigError


def path_text(text: str) -> str:
    """An option's path as typed (argparse's ``type=``): an empty one is refused, as it would name the
    current folder, or stand for the default the option was given to replace."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; a path (an empty one names no file or folder)")
    return text


def _stat(path: Path) -> os.stat_result | None:
    """``path``'s stat through links; None when nothing is there (other OSErrors are the caller's)."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _problem(path: Path) -> tuple[Path, os.stat_result | None, str | None]:
    """(the nearest existing path at or above ``path``, its stat, why ``path`` cannot be reached or None)."""
    probe = path
    while True:
        try:
            st = _stat(probe)
        except NotADirectoryError:
            return probe, None, f"{_first_file(probe)} is a file, not a folder"
        except PermissionError:
            return probe, None, "a parent folder may not be searched (permission denied)"
        except OSError as exc:  # ELOOP, ENAMETOOLONG, EIO …
            return probe, None, exc.strerror or str(exc)
        if st is not None:
            return probe, st, None
        if probe.is_symlink():
            return probe, None, f"{probe} is a link to {os.readlink(probe)}, which does not exist"
        if probe.parent == probe:
            return probe, None, "no folder of it exists"
        probe = probe.parent


def _first_file(path: Path) -> Path:
    """The first component of ``path`` that exists and is not a folder."""
    for part in reversed((path, *path.parents)):
        try:
            if not stat.S_ISDIR(part.stat().st_mode):
                return part
        except OSError:
            return part
    return path


def _kind(st: os.stat_result) -> str:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def input_file(path: Path | str, key: str) -> Path:
    """``path`` as a regular file this process may read."""
    path = Path(path)
    found, st, why = _problem(path)
    if why is not None:
        raise ConfigError(key, str(path), f"a path to an existing file ({why})")
    if found != path or st is None:
        raise ConfigError(key, str(path), "a path to an existing file")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(key, str(path), f"a file (this is {_kind(st)})")
    if not os.access(path, os.R_OK):
        raise ConfigError(key, str(path), "a file you may read (permission denied)")
    return path


def input_folder(path: Path | str, key: str, *, missing_ok: bool = False) -> Path:
    """``path`` as a folder this process may list and read; with ``missing_ok`` it may also not exist
    yet (a results folder before the first run), as long as nothing in the way makes it impossible."""
    path = Path(path)
    found, st, why = _problem(path)
    if why is not None:
        raise ConfigError(key, str(path), f"a folder ({why})")
    assert st is not None
    if found != path:
        if missing_ok and stat.S_ISDIR(st.st_mode):
            return path
        what = "does not exist" if stat.S_ISDIR(st.st_mode) else f"{found} is {_kind(st)}"
        raise ConfigError(key, str(path), f"an existing folder ({what})")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(key, str(path), f"a folder (this is {_kind(st)})")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(key, str(path), "a folder you may read (permission denied)")
    return path


def output_folder(path: Path | str, key: str) -> Path:
    """``path`` as a folder this process can create, or write into if it exists. Nothing is left behind."""
    path = Path(path)
    found, st, why = _problem(path)
    if why is not None:
        raise ConfigError(key, str(path), f"a folder that can be created ({why})")
    assert st is not None
    if not stat.S_ISDIR(st.st_mode):
        where = "this" if found == path else str(found)
        raise ConfigError(key, str(path), f"a folder ({where} is {_kind(st)})")
    try:  # the one test every file system and permission model answers truly
        os.rmdir(tempfile.mkdtemp(prefix=".isda-bench-probe-", dir=found))
    except OSError as exc:
        verb = "you can write to" if found == path else f"that can be created in {found}"
        raise ConfigError(key, str(path), f"a folder {verb} ({exc.strerror or exc})") from exc
    return path

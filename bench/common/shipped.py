"""The YAML files that ship inside the package (bench/shipped/): the paper's sweeps and the SLURM
profiles, found by bare name from any folder, in a checkout or an installed wheel alike.

In a checkout, ``sweeps/`` and ``slurm/profiles/`` are links to these folders, so the paths the
README uses (``sweeps/smoke.yaml``) and the bare names (``smoke``) name the same files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Kind = Literal["sweeps", "profiles"]

SHIPPED = Path(__file__).resolve().parents[1] / "shipped"
SUFFIXES = (".yaml", ".yml")


def shipped_dir(kind: Kind) -> Path:
    """The folder holding the shipped files of ``kind``."""
    return SHIPPED / kind


def shipped_names(kind: Kind) -> list[str]:
    """The bare names (file stems) of the shipped files of ``kind``, sorted."""
    folder = shipped_dir(kind)
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SUFFIXES) if folder.is_dir() else []


def shipped_file(kind: Kind, ref: str) -> Path | None:
    """The shipped file that ``ref`` names (``gpu`` or ``gpu.yaml``), or None when ``ref`` is a path
    (it has a folder part) or names no shipped file."""
    if not ref or "/" in ref or "\\" in ref:
        return None
    stem = Path(ref).stem if Path(ref).suffix in SUFFIXES else ref
    for suffix in SUFFIXES:
        path = shipped_dir(kind) / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None

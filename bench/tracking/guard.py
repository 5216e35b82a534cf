"""Importing ``wandb`` (here only; the reader loads just its protobuf messages): a missing or broken
install becomes one warning (:class:`TrackingWarning`), never an error that stops a command."""

from __future__ import annotations

import sys
import warnings
from typing import Any


class TrackingWarning(RuntimeWarning):
    """W&B is unavailable or failed; the run continues with its local files only."""


_BROKEN: Exception | None = None  # what importing wandb raised, when it was not an ImportError


def guard_wandb_import() -> None:
    """Import wandb before a library that imports it optionally does (timm, at its own import).

    Such libraries catch ImportError only, and a broken install (protobuf out of step, say) raises
    other errors, which would stop every command, tracking disabled or not. The error is kept for
    the tracker's one warning, and wandb marked absent, so that those imports see an ImportError.
    """
    global _BROKEN
    if "wandb" in sys.modules:
        return
    try:
        import wandb  # noqa: F401, PLC0415 - one of the two places wandb is imported
    except ImportError:
        return
    except Exception as exc:  # noqa: BLE001
        _BROKEN = exc
        sys.modules["wandb"] = None  # type: ignore[assignment]


def import_wandb() -> Any:
    """The wandb module; raises what importing it raised (the guarded error of a broken install)."""
    if _BROKEN is not None:
        raise _BROKEN
    import wandb  # noqa: PLC0415 - the other place wandb is imported

    return wandb


def warn(message: str) -> None:
    """One tracking warning, attributed to the caller of the function that calls this."""
    warnings.warn(message, TrackingWarning, stacklevel=3)

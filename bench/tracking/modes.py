"""Which W&B mode a run uses: ``online``, ``offline`` (files under ``<run_dir>/wandb/``, uploaded later
with ``isda-bench wandb sync``), ``disabled``, or ``auto``, decided without network from the
credentials that are configured."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

MODES = ("auto", "online", "offline", "disabled")
DEFAULT_HOST = "https://api.wandb.ai"


def _netrc_has_key(host: str) -> bool:
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    netloc = urlsplit(host).netloc or host
    try:
        creds = netrc.netrc(str(path)).authenticators(netloc)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(creds and creds[2])


def has_api_key() -> bool:
    """Credentials are configured (``WANDB_API_KEY``, ``WANDB_IDENTITY_TOKEN_FILE`` or a ``.netrc`` entry
    for the W&B host, as ``wandb login`` writes); checked without network."""
    if os.environ.get("WANDB_API_KEY", "").strip() or os.environ.get("WANDB_IDENTITY_TOKEN_FILE", "").strip():
        return True
    return _netrc_has_key(os.environ.get("WANDB_BASE_URL") or DEFAULT_HOST)


def resolve_mode(mode: str) -> str:
    """``online`` | ``offline`` | ``disabled`` for a configured mode; ``auto`` decides without network:
    ``WANDB_MODE`` if set, else online when an API key is configured, else offline."""
    if mode not in MODES:
        raise ValueError(f"tracking mode {mode!r}: valid modes are {', '.join(MODES)}")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("online", "offline", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "online" if has_api_key() else "offline"

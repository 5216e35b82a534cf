"""One trainer per run directory: an exclusive ``flock`` on ``run_dir/.lock``.

The kernel drops the lock when its holder dies, even by SIGKILL, so a crashed run never leaves a
stale lock behind; a requeued or relaunched job simply takes it again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from bench.rundir.files import LOCK_FILE


class RunLock:
    """An exclusive flock on run_dir/.lock; the kernel drops it when the holder dies (even SIGKILL)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self, wait_s: float = 0.0) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                return False
            time.sleep(0.5)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def lock_held(run_dir: Path) -> bool:
    """True while some process trains this run. Creates nothing; the probe is a few microseconds."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)

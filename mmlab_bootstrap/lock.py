"""One run at a time per workspace: an OS file lock beside `.env` (a dead process frees it)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import BootstrapError

LOCK_FILE = ".mmlab-bootstrap.lock"
DEFAULT_WAIT = 5.0


class LockError(BootstrapError):
    """Another run holds the workspace."""

    rerun_helps = True


def lock_wait() -> float:
    """Seconds to wait for another run; MMLAB_LOCK_WAIT overrides the default."""
    try:
        return max(0.0, float(os.environ.get("MMLAB_LOCK_WAIT", DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


@contextlib.contextmanager
def workspace_lock(root: Path, task: str, wait: float | None = None) -> Iterator[None]:
    """Hold the workspace for the block; wait a little for another run, then give up."""
    path = root / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + (lock_wait() if wait is None else wait)
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = path.read_text(errors="replace").strip() or "pid unknown"
                    raise LockError(
                        f"another run ({holder}) is working on this workspace",
                        "wait for it to finish (or stop it), then run the same command again",
                    ) from None
                time.sleep(0.1)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}, task {task}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock

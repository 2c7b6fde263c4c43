"""One run at a time per workspace: an OS file lock beside `.env` (a dead process frees it)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.fs.files import FileRefused, open_own_file

LOCK_FILE = ".mmlab-bootstrap.lock"
DEFAULT_WAIT = 5.0
_HOLDER = r"pid (\d+), task ([A-Za-z0-9_-]+)"


class LockError(BootstrapError):
    """Another run holds the workspace."""

    rerun_helps = True


def lock_wait() -> float:
    """Seconds to wait for another run; MMLAB_LOCK_WAIT overrides the default."""
    try:
        return max(0.0, float(os.environ.get("MMLAB_LOCK_WAIT", DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def holder(descriptor: int) -> str:
    """Who holds the lock, as `pid N, task T` (what that run wrote), else `pid unknown`."""
    try:
        found = re.search(_HOLDER, os.pread(descriptor, 200, 0).decode("ascii", "replace"))
    except OSError:
        found = None
    return f"pid {found.group(1)}, task {found.group(2)}" if found else "pid unknown"


@contextlib.contextmanager
def workspace_lock(
    root: Path, task: str, wait: float | None = None, say: Callable[[str], None] = _say
) -> Iterator[None]:
    """Hold the workspace for the block.

    When another run holds it, say at once who (one line, `say`), wait up to `wait`
    seconds (MMLAB_LOCK_WAIT), then give up naming it.
    """
    path = root / LOCK_FILE
    try:
        descriptor = open_own_file(
            path, f"remove it (rm '{path}'; the tool makes its own), then run it again"
        )
    except FileRefused as error:
        raise LockError(
            f"the workspace lock: {error.message}", error.hint, rerun_helps=False
        ) from None
    try:
        start = time.monotonic()
        deadline = start + (lock_wait() if wait is None else wait)
        announced = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who, now = holder(descriptor), time.monotonic()
                if now >= deadline:
                    raise LockError(
                        f"another run ({who}) is working on this workspace",
                        "wait for it to finish (or stop it), then run the same command again",
                    ) from None
                if not announced and (who != "pid unknown" or now - start >= 0.3):
                    # The holder writes its name right after locking: give it a moment.
                    pid, _, name = who.partition(", task ")
                    say(f"waiting for {pid} (task {name})…" if name else "waiting for another run…")
                    announced = True
                time.sleep(0.05 if not announced else 0.1)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}, task {task}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock

"""The tool's own temporary files beside a file it replaces, and removing those a killed run
left behind (only when provably abandoned)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
from pathlib import Path

TEMPORARY = ".{name}.tmp-{token}"  # beside the file it replaces; see remove_stale_temporaries


_TOKEN = "[0-9a-f]{8}"


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporary files a killed write to `target` left beside it.

    Only names `write_atomically` makes for this very file (`.<name>.tmp-<8 hex digits>`),
    only regular files, and only when no live process holds them (a writer keeps its
    temporary file locked until it is renamed into place).
    """
    pattern = re.compile(re.escape(TEMPORARY.format(name=target.name, token="")) + _TOKEN)
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        if not pattern.fullmatch(name):
            continue
        leftover = target.parent / name
        with contextlib.suppress(OSError):
            if _remove_if_abandoned(leftover):
                removed.append(leftover)
    return removed


def _remove_if_abandoned(leftover: Path) -> bool:
    if not stat.S_ISREG(os.lstat(leftover).st_mode):
        return False
    descriptor = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live run is writing it
        opened = os.fstat(descriptor)
        now = os.lstat(leftover)
        if (opened.st_dev, opened.st_ino) != (now.st_dev, now.st_ino):
            return False
        os.unlink(leftover)
        return True
    finally:
        os.close(descriptor)

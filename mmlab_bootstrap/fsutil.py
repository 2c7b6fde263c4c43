"""Small filesystem helpers that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomically(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder, then rename.

    When `path` is a symlink, its final target is written and the link stays. An
    existing file keeps its mode; a new one gets 0666 less the umask. Returns the
    path actually written.
    """
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    temporary = target.with_name(f".{target.name}.tmp-{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_folder(target.parent)
    return target


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_inside(path: Path, other: Path) -> bool:
    """Whether `path` is `other` or lies below it, comparing fully resolved paths."""
    resolved, base = Path(os.path.realpath(path)), Path(os.path.realpath(other))
    return resolved == base or base in resolved.parents


def creatable_problem(path: Path) -> str | None:
    """Why the absent `path` cannot be created as a folder (with its parents), or None."""
    ancestor = path.parent
    while not os.path.lexists(ancestor):
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{str(ancestor)!r} is a file"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{str(ancestor)!r} is not writable"
    return None


def typo_problem(path: Path) -> str | None:
    """A path whose parent and grandparent are both missing is more likely a typo than a wish."""
    if os.path.isdir(path.parent) or os.path.isdir(path.parent.parent):
        return None
    return f"neither its parent {str(path.parent)!r} nor that folder's parent exists (a typo?)"

"""Checks of paths the user names: inside another, creatable, or likely a typo."""

from __future__ import annotations

import os
from pathlib import Path


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
        if ancestor.is_symlink():
            return (
                f"{str(ancestor)!r} is a symlink to {os.readlink(ancestor)!r}, which leads to"
                " no folder (it dangles, or loops)"
            )
        return f"{str(ancestor)!r} is a file"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{str(ancestor)!r} is not writable"
    return None


def typo_problem(path: Path) -> str | None:
    """A path whose parent and grandparent are both missing is more likely a typo than a wish."""
    if os.path.isdir(path.parent) or os.path.isdir(path.parent.parent):
        return None
    return f"neither its parent {str(path.parent)!r} nor that folder's parent exists (a typo?)"

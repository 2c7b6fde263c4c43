"""Bounded reads of dataset folders: at most a few entries of a small folder, the first entry
of a large one, and the symlinks among the entries read (dangling, or leading outside)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import shown
from .findings import ERROR, WARNING, Finding

LIST_LIMIT = 1000  # entries read from one small folder (data/, a dataset's top)


def entries(folder: Path, limit: int = LIST_LIMIT) -> list[os.DirEntry[str]]:
    """At most `limit` entries of a folder (none when it cannot be read)."""
    found: list[os.DirEntry[str]] = []
    try:
        with os.scandir(folder) as listing:
            for entry in listing:
                found.append(entry)
                if len(found) >= limit:
                    break
    except OSError:
        pass
    return found


def non_empty(folder: Path) -> bool:
    """Whether a folder holds anything: one entry read, never more."""
    try:
        with os.scandir(folder) as listing:
            return next(listing, None) is not None
    except OSError:
        return False


def symlink_findings(
    listed: list[os.DirEntry[str]], label: str, roots: tuple[str, ...], into: list[dict[str, Any]]
) -> list[Finding]:
    """A dangling symlink is an error; one leading outside the storage root (and outside the
    dataset's own folder, when that is a link already named) a warning."""
    findings = []
    for entry in listed:
        if not entry.is_symlink():
            continue
        path = Path(entry.path)
        destination = os.readlink(path)
        subject = f"{label}/{entry.name}"
        if not path.exists():
            into.append({"path": str(path), "destination": destination, "problem": "dangling"})
            findings.append(
                Finding(
                    ERROR,
                    subject,
                    f"dangling symlink to {shown(destination)}",
                    f"point it at the data (ln -sfn REAL_PATH '{path}') or remove it",
                )
            )
            continue
        real = os.path.realpath(path)
        if all(os.path.commonpath([real, root]) != root for root in roots):
            into.append({"path": str(path), "destination": destination, "problem": "outside"})
            findings.append(
                Finding(
                    WARNING,
                    subject,
                    f"symlink leads outside the storage root, to {shown(real)}",
                    f"mount this path too when you run in a container: {real}",
                )
            )
    return findings

"""Walking a tree without recursion and without following links: any depth, any names."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One thing found by `walk` that is not a real folder: a file, a symlink or a special."""

    path: str
    mode: int

    @property
    def special(self) -> bool:
        """A device, FIFO or socket: nothing that can be copied as bytes."""
        return not (stat.S_ISREG(self.mode) or stat.S_ISLNK(self.mode))


def walk(top: str | Path) -> Iterator[tuple[str, list[str], list[Entry]]]:
    """Like `os.walk` (top-down, never following symlinks), without recursion.

    Yields `(folder, real sub-folder names, other entries)`: symlinks (also to folders),
    regular files, devices, FIFOs and sockets are all entries, never folders. Removing a
    name from the list of folders keeps the walk out of it.
    """
    stack = [os.fspath(top)]
    while stack:
        folder = stack.pop()
        dirs: list[str] = []
        others: list[Entry] = []
        with os.scandir(folder) as scan:
            for item in scan:
                if item.is_dir(follow_symlinks=False):  # the folder's listing says so
                    dirs.append(item.name)
                    continue
                mode = item.stat(follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    dirs.append(item.name)
                else:
                    others.append(Entry(item.path, mode))
        dirs.sort()
        others.sort(key=lambda entry: entry.path)
        yield folder, dirs, others
        stack.extend(os.path.join(folder, name) for name in reversed(dirs))


def folders_bottom_up(top: str | Path) -> list[str]:
    """Every real folder under `top` (itself included), deepest first."""
    order = [folder for folder, _, _ in walk(top)]
    order.reverse()
    return order

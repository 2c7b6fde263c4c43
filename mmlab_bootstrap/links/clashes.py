"""Name clashes between what moves into a link's target and what is there already: the same name
with other content, a file where a folder must go, or the reverse. One listing per target
folder; the per-file check only where something blocks the way."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from mmlab_bootstrap.fs import same_file_content
from mmlab_bootstrap.links.location import Location, in_target
from mmlab_bootstrap.output import some_names

_DIR, _MISSING, _BLOCKED = "folder", "missing", "blocked"


def clashes_in_target(location: Location, files: tuple[str, ...]) -> list[str]:
    """Paths that cannot move into the target as they are: another file of the same name
    (the same content is no clash), or a file where a folder must go, or the reverse.

    Each folder of the target is listed once, and only where the location has a folder of
    that name: an empty target, or one whose top level shares no name with the location,
    costs one listing whatever the number of files."""
    target = _TargetView(os.fspath(location.target))
    link = location.link
    real_folder = link.is_dir() and not link.is_symlink()
    if not target.listing("") or (real_folder and not target.overlaps(os.fspath(link))):
        return []
    clashes = []
    prefix = location.leaf + "/"
    for relative in files:
        folder, _, name = relative[len(prefix) :].rpartition("/")
        state = target.state(folder) if relative.startswith(prefix) else _BLOCKED
        if state is _DIR:
            if name in target.listing(folder) and not same_file_content(
                location.project_dir / relative, Path(target.path(folder, name))
            ):
                clashes.append(relative)
        elif state is _BLOCKED and _clashes_one_by_one(location, relative):
            clashes.append(relative)
    if real_folder:
        clashes += _folder_clashes(location, target)
    return clashes


class _TargetView:
    """The target's folders as listed (each once), and what stands at a path below it: a real
    folder (with every folder above it), nothing (or nothing above), or something else."""

    def __init__(self, top: str) -> None:
        self.top = top
        self.listings: dict[str, dict[str, bool]] = {}
        self.states: dict[str, str] = {"": _DIR}

    def path(self, folder: str, name: str) -> str:
        return f"{self.top}/{folder}/{name}" if folder else f"{self.top}/{name}"

    def listing(self, folder: str) -> dict[str, bool]:
        """Names in a folder of the target (True for real folders); empty when absent."""
        found = self.listings.get(folder)
        if found is None:
            found = {}
            where = f"{self.top}/{folder}" if folder else self.top
            with contextlib.suppress(OSError), os.scandir(where) as scan:
                found = {item.name: item.is_dir(follow_symlinks=False) for item in scan}
            self.listings[folder] = found
        return found

    def state(self, folder: str) -> str:
        chain = []
        while folder not in self.states:
            chain.append(folder)
            folder = folder.rpartition("/")[0]
        state = self.states[folder]
        for below in reversed(chain):
            if state is _DIR:
                parent, _, name = below.rpartition("/")
                kind = self.listing(parent).get(name)
                state = _MISSING if kind is None else _DIR if kind else _BLOCKED
            self.states[below] = state
        return state

    def overlaps(self, link: str) -> bool:
        """Whether any name at the top of the location is at the top of the target."""
        names = self.listing("")
        with os.scandir(link) as scan:
            return any(item.name in names for item in scan)


def _clashes_one_by_one(location: Location, relative: str) -> bool:
    """The check for one path, where a file or symlink stands in the way above it."""
    source, destination = location.project_dir / relative, in_target(location, relative)
    if os.path.lexists(destination):
        return not same_file_content(source, destination)
    return blocked(destination.parent, location.target)


def _folder_clashes(location: Location, target: _TargetView) -> list[str]:
    """Folders of the location where the target has a file or symlink, in `walk`'s order;
    only folders the target has are looked into."""
    clashes = []
    stack: list[tuple[str, bool]] = [("", False)]  # (folder below the leaf, checked one by one)
    while stack:
        folder, slow = stack.pop()
        with os.scandir(os.path.join(location.link, folder)) as scan:
            names = sorted(item.name for item in scan if item.is_dir(follow_symlinks=False))
        below = []
        for name in names:
            relative = f"{folder}/{name}" if folder else name
            if slow:
                destination = os.path.join(location.target, relative)
                if os.path.lexists(destination) and (
                    os.path.islink(destination) or not os.path.isdir(destination)
                ):
                    clashes.append(f"{location.leaf}/{relative}/")
                below.append((relative, True))
                continue
            state = target.state(relative)
            if state is _BLOCKED:  # the parent is a real folder: this name is no folder
                clashes.append(f"{location.leaf}/{relative}/")
                below.append((relative, True))  # a symlink may lead to more below it
            elif state is _DIR:
                below.append((relative, False))
        stack.extend(reversed(below))
    return clashes


def blocked(folder: Path, target: Path) -> bool:
    """Whether a file (not a folder) stands at `folder` or between it and `target`."""
    top, path = os.fspath(target), os.fspath(folder)
    inside = top if top.endswith("/") else top + "/"
    while path != top and path.startswith(inside):
        try:
            mode = os.lstat(path).st_mode
        except (OSError, ValueError):
            pass
        else:
            if not stat.S_ISDIR(mode):  # a symlink (to anything) or a file
                return True
        path = os.path.dirname(path)
    return False


def clash_text(clashes: list[str]) -> str:
    return f"{len(clashes)} file(s) already in the target with other content: {some_names(clashes)}"

"""What a link location holds: its files, which of them git tracks, their size."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import LEFTOVER, kind, walk
from mmlab_bootstrap.git import Git, may_skip_worktree, read_only_run
from mmlab_bootstrap.links.location import Location, in_target
from mmlab_bootstrap.settings import LEAVES


class Inventory(NamedTuple):
    """What a real folder (or file) at a location holds."""

    files: tuple[str, ...] = ()
    tracked: tuple[str, ...] = ()
    size: int = 0
    specials: tuple[str, ...] = ()  # devices, FIFOs, sockets: "<path> (a FIFO)"
    symlinks: tuple[str, ...] = ()  # symlinks inside the location (user content, moved as links)
    # Tracked files no longer at the location but in the target: a killed run moved them there
    # before it could tell git to skip them; the next run finishes that.
    tracked_moved: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()  # of each regular file (what a copy must find room for)
    folders: int = 0  # below the location

    @property
    def untracked(self) -> tuple[str, ...]:
        tracked = set(self.tracked)
        return tuple(path for path in self.files if path not in tracked)


def take_inventory(location: Location, git: Git) -> Inventory:
    """Every file under a real folder (or the file itself), which of them git tracks, the size.

    Symlinks inside are files of their own (never followed); devices, FIFOs and sockets
    are listed apart so that planning can refuse them before anything moves.
    """
    link = location.link
    if not link.is_dir():
        mode = os.lstat(link).st_mode
        odd = (f"{shown(str(link))} ({kind(mode)})",) if _is_special(mode) else ()
        size = os.lstat(link).st_size
        regular = (size,) if stat.S_ISREG(mode) else ()
        return Inventory((location.leaf,), (), size, odd, sizes=regular)
    files: list[str] = []
    specials: list[tuple[str, int]] = []
    symlinks: list[str] = []
    sizes: list[int] = []
    folders = 0
    top = os.fspath(link)
    stack = [(top, location.leaf + "/")]  # one scandir a folder; a stat for each regular file
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as scan:
            for item in scan:
                if item.is_dir(follow_symlinks=False):
                    stack.append((item.path, f"{prefix}{item.name}/"))
                    folders += 1
                    continue
                relative = prefix + item.name
                files.append(relative)
                if item.is_symlink():
                    symlinks.append(relative)
                    continue
                status = item.stat(follow_symlinks=False)
                if stat.S_ISREG(status.st_mode):
                    sizes.append(status.st_size)
                elif stat.S_ISDIR(status.st_mode):  # became a folder since it was listed
                    files.pop()
                    stack.append((item.path, f"{relative}/"))
                    folders += 1
                else:
                    specials.append((relative, status.st_mode))
    files.sort()
    specials.sort(key=lambda special: _walk_order(special[0]))
    symlinks.sort(key=_walk_order)
    listed_odd = tuple(f"{shown(path)} ({kind(mode)})" for path, mode in specials)
    present = set(files)  # a tracked file deleted from the work tree is not there to adopt
    listed = tracked_files(git, location.project_dir, location.leaf)
    tracked = tuple(path for path in listed if path in present)
    moved = tuple(
        path
        for path in listed
        if path not in present and os.path.lexists(in_target(location, path))
    )
    return Inventory(
        tuple(files),
        tracked,
        sum(sizes),
        listed_odd,
        tuple(symlinks),
        moved,
        tuple(sizes),
        folders,
    )


def _walk_order(relative: str) -> list[tuple[int, str]]:
    """Sorts paths as `transfer.walk` meets them: a folder's entries, then its sub-folders'."""
    *folders, name = relative.split("/")
    return [(1, folder) for folder in folders] + [(0, name)]


def _is_special(mode: int) -> bool:
    return not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode))


def tracked_files(git: Git, project_dir: Path, leaf: str) -> tuple[str, ...]:
    """Files the sub-project's git tracks under `leaf` (paths relative to the project)."""
    listing = git_names(git, ["ls-files", "-z", "--", leaf], project_dir)
    return tuple(sorted(listing or ()))


def skipped_files(git: Git, location: Location) -> tuple[str, ...]:
    """Tracked files under the leaf that are marked skip-worktree (those linking adopted).
    One listing serves every leaf of the project (remembered until the next change), and
    none is needed when the project's index cannot hold such a mark."""
    if not may_skip_worktree(git, location.project_dir):
        return ()
    leaves = sorted({location.leaf, *LEAVES.values()})
    listing = git_names(git, ["ls-files", "-v", "-z", "--", *leaves], location.project_dir)
    inside = location.leaf + "/"
    return tuple(
        sorted(
            entry[2:]
            for entry in listing or ()
            if entry.startswith("S ")
            and (entry[2:] == location.leaf or entry[2:].startswith(inside))
        )
    )


def git_names(git: Git, args: Sequence[str], cwd: Path) -> list[str] | None:
    """The NUL-separated names a read-only git command lists (`-z`), or None if it failed.

    git gives names as bytes; they are decoded as the OS decodes file names (os.fsdecode:
    bytes that are not UTF-8 become surrogate escapes), so every name reaches the same file.
    The answer is remembered until the next change (see `git.Answers`).
    """
    key = ("names", str(cwd), *args)
    known = git.answers.get(key)
    if isinstance(known, _Listing):
        return None if known.names is None else list(known.names)
    done = read_only_run(git.command(args, cwd))  # read-only: no index refresh (--dry, status)
    names = (
        [os.fsdecode(name) for name in done.stdout.split(b"\0") if name]
        if done.returncode == 0
        else None
    )
    git.answers.put(key, _Listing(None if names is None else tuple(names)))
    return names


class _Listing(NamedTuple):
    """A remembered answer of `git_names`."""

    names: tuple[str, ...] | None


def stale_copies(git: Git, location: Location, tracked: list[str]) -> tuple[str, ...]:
    """Tracked files whose copy in the target is a regular file with bytes git holds as a
    blob: a version of that file the tool adopted before (then `unlink`, then an update).
    Replacing such a copy loses nothing; any other content is the user's and a clash."""
    stale = []
    for relative in tracked:
        stored = in_target(location, relative)
        if stored.is_symlink() or not stored.is_file():
            continue
        blob = file_blob_id(git, location.project_dir, relative, stored)
        if blob and git.probe(["cat-file", "-e", f"{blob}^{{blob}}"], cwd=location.project_dir).ok:
            stale.append(relative)
    return tuple(sorted(stale))


def file_blob_id(git: Git, project: Path, relative: str, stored: Path) -> str:
    """The blob id git would record at `relative` for the regular file `stored` (its
    attributes' filters applied); empty when git cannot hash it."""
    found = git.probe(["hash-object", f"--path={relative}", "--", str(stored)], cwd=project)
    return found.out.strip() if found.ok else ""


def files_of_user(
    old: Path, leaf: str, ours: set[str], limit: int | None = None
) -> tuple[tuple[str, ...], int, list[str]]:
    """The user's files in a target the link left (`<leaf>/…`), their size, and the devices,
    FIFOs and sockets there; `ours` (tracked files adopted into storage) and the tool's
    temporaries are not the user's. Stops after `limit` files when given."""
    files: list[str] = []
    specials: list[str] = []
    size = 0
    top = os.fspath(old)
    for folder, _, entries in walk(old):
        below = os.path.relpath(folder, top)
        prefix = leaf if below == "." else f"{leaf}/{below}"
        for entry in entries:
            name = os.path.basename(entry.path)
            relative = f"{prefix}/{name}"
            if relative in ours or (name[0] == "." and LEFTOVER.fullmatch(name)):
                continue
            if entry.special:
                specials.append(relative)
                continue
            files.append(relative)
            if stat.S_ISREG(entry.mode):
                size += os.lstat(entry.path).st_size
            if limit is not None and len(files) >= limit:
                return tuple(sorted(files)), size, specials
    return tuple(sorted(files)), size, specials

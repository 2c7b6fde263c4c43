"""Moving a tree into a target: renames on one filesystem (whole folders where the target has
none of that name), verified copies in batches across filesystems; each original removed only
once its copy is safe and it is still what was copied."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs.copy import identity, open_for_writing, sigio_ignored
from mmlab_bootstrap.fs.files import fsync_folder
from mmlab_bootstrap.fs.transfer import (
    COPY_ATTEMPTS,
    LEFTOVER,
    TransferError,
    changed_after,
    copy_once,
    copy_verified,
    discard,
    kept_changing,
    open_source,
    place_link,
    refuse_special,
    same_file_content,
)


def move_file(source: Path, destination: Path) -> None:
    """Copy verified, then remove the source only if it is still exactly what was copied."""
    copied = copy_verified(source, destination)
    remove_if_unchanged(source, copied)


def remove_if_unchanged(source: Path, copied: os.stat_result) -> None:
    """Unlink `source` when it is still the file that was copied and nobody is writing it."""
    now = os.lstat(source)
    busy = False
    if stat.S_ISREG(now.st_mode):
        descriptor = open_source(os.fspath(source))
        try:
            with sigio_ignored():
                busy = open_for_writing(descriptor)
            now = os.fstat(descriptor)
        finally:
            os.close(descriptor)
    if busy or identity(now) != identity(copied):
        raise changed_after(source)
    os.unlink(source)


def move_tree(source: Path, target: Path, *, same_device: bool) -> None:
    """Move everything under `source` into `target`, merging folders, never overwriting.

    On one filesystem entries are renamed (a whole folder at once where the target has no
    folder of that name); across filesystems each file is copied (verified, durable) and
    then removed, a folder's files in batches that share one fsync of their folder.
    Symlinks move as links, never followed. Each folder of the target is listed once (and
    cleared of this tool's leftovers): no per-file existence checks.
    """
    with sigio_ignored():
        stack = [(os.fspath(source), os.fspath(target), False)]
        while stack:
            origin, destination, made = stack.pop()
            present = {} if made else _listing(destination)
            with os.scandir(origin) as scan:
                items = sorted(scan, key=lambda item: item.name)
            files = []
            made_folders = False
            for item in items:
                name = item.name
                there = f"{destination}/{name}"
                if item.is_dir(follow_symlinks=False):
                    if name in present:
                        if not present[name]:
                            raise TransferError(
                                f"{shown(there)} is in the way of the folder {shown(item.path)}",
                                "move one of the two away, then run the same command again",
                            )
                        stack.append((item.path, there, False))
                    elif same_device:
                        os.rename(item.path, there)
                    else:
                        os.mkdir(there)
                        made_folders = True
                        stack.append((item.path, there, True))
                elif name in present:
                    if not same_file_content(Path(item.path), Path(there)):
                        raise TransferError(
                            f"{shown(there)} already exists with other content",
                            "move one of the two away, then run the same command again",
                        )
                    remove_if_unchanged(Path(item.path), os.lstat(item.path))  # bytes in target
                elif same_device:
                    os.rename(item.path, there)
                else:
                    files.append(item)
            if made_folders:
                fsync_folder(Path(destination))
            if files:
                _move_across(files, destination)


def _listing(folder: str) -> dict[str, bool]:
    """The names in a target folder (True for real folders), this tool's leftovers removed."""
    present: dict[str, bool] = {}
    try:
        scan = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return present
    with scan:
        for item in scan:
            name = item.name
            leftover = name[0] == "." and LEFTOVER.fullmatch(name)
            if leftover and (item.is_file(follow_symlinks=False) or item.is_symlink()):
                discard(item.path)
                continue
            present[name] = item.is_dir(follow_symlinks=False)
    return present


BATCH = 64


def _move_across(items: list[os.DirEntry[str]], destination: str) -> None:
    """Copy files (and symlinks) of one folder into `destination`, then remove the originals.

    In batches: each file is copied verified and fsynced under a temporary name, renamed into
    place; then one fsync of the folder makes the batch durable, and only then is each
    original removed, if it is still the file that was copied (one lstat of its name: same
    inode, size and time) and nobody holds it open for writing (asked on the descriptor
    kept open since the copy).
    """
    folder = os.open(destination, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for start in range(0, len(items), BATCH):
            pending: list[tuple[str, int, os.stat_result]] = []
            try:
                for item in items[start : start + BATCH]:
                    pending.append(_copy_across(item, f"{destination}/{item.name}"))
                os.fsync(folder)
                for path, reader, copied in pending:
                    busy = reader >= 0 and open_for_writing(reader)
                    if busy or identity(os.lstat(path)) != identity(copied):
                        raise changed_after(path)
                    os.unlink(path)
            finally:
                for _, reader, _ in pending:
                    if reader >= 0:
                        os.close(reader)
    finally:
        os.close(folder)


def _copy_across(item: os.DirEntry[str], destination: str) -> tuple[str, int, os.stat_result]:
    """Copy one file to `destination` (its folder not yet fsynced): its path, a descriptor
    open on it (-1 for a symlink) and its status as copied."""
    source = item.path
    if item.is_symlink():
        status = os.lstat(source)
        place_link(source, destination)
        return source, -1, status
    if not item.is_file(follow_symlinks=False):
        refuse_special(source, os.lstat(source).st_mode)
    for _ in range(COPY_ATTEMPTS):
        reader = open_source(source)
        try:
            copied = copy_once(reader, source, destination)
        except BaseException:
            os.close(reader)
            raise
        if copied is not None:
            return source, reader, copied
        os.close(reader)
    raise kept_changing(source)

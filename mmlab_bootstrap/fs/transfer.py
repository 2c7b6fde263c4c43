"""Walk, copy and move user files without losing a byte, at any depth.

Every walk here is iterative (an explicit stack), so a tree as deep as the filesystem
allows never hits Python's recursion limit. Copies go through temporary names that are
created exclusively and are unique per run, so they can never be a user's file; only
those temporaries are ever removed. A file is removed from where it was only after its
copy was verified, made durable (fsync of the file and its folder), and the original was
found unchanged and not open for writing by anyone.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs.copy import copy_bytes, identity, open_for_writing, sigio_ignored
from mmlab_bootstrap.fs.files import fsync_folder, kind
from mmlab_bootstrap.fs.temporaries import HELD, pattern_of, sweep, temporary_name
from mmlab_bootstrap.fs.walking import folders_bottom_up

COPY_ATTEMPTS = 3

TRANSFER_TEMPORARY = ".{name}.mmlab-bootstrap-{purpose}-{run}{call}"
"""A copy (`purpose` "copy"), a link (`link`) or upstream's file (`update`) being put in place:
unique per run and call, so never a user's file (see fs.temporaries)."""
PURPOSES = ("copy", "link", "update")

LEFTOVER = pattern_of(TRANSFER_TEMPORARY, purpose=PURPOSES)
"""A name TRANSFER_TEMPORARY makes: only this tool makes such names."""


class TransferError(BootstrapError):
    """A file could not be copied or moved safely; the original is where it was."""


def remove_leftovers(folder: Path, stem: str = "") -> list[Path]:
    """Remove the temporaries of copies, links and updates an interrupted run of this tool
    left in `folder` (only those made for the name `stem`, when given). The caller holds the
    workspace lock, which every run that makes them holds."""
    if stem:
        return sweep(folder, TRANSFER_TEMPORARY, rule=HELD, purpose=PURPOSES, name=stem)
    return sweep(folder, TRANSFER_TEMPORARY, rule=HELD, purpose=PURPOSES)


def make_folders(folder: Path) -> None:
    """Create `folder` and any missing parents (without recursion), each one made durable."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        fsync_folder(path.parent)


def remove_empty_tree(folder: Path) -> None:
    """Remove a folder holding only empty folders; `rmdir` fails on anything else."""
    if not os.path.lexists(folder) or not stat.S_ISDIR(os.lstat(folder).st_mode):
        return
    for path in folders_bottom_up(folder):
        os.rmdir(path)


def same_file_content(one: Path, other: Path) -> bool:
    """Whether two files (or two symlinks) hold the same bytes (or point to the same place)."""
    try:
        first, second = os.lstat(one), os.lstat(other)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(first.st_mode) or stat.S_ISLNK(second.st_mode):
        return (
            stat.S_ISLNK(first.st_mode)
            and stat.S_ISLNK(second.st_mode)
            and os.readlink(one) == os.readlink(other)
        )
    if not (stat.S_ISREG(first.st_mode) and stat.S_ISREG(second.st_mode)):
        return False
    if first.st_size != second.st_size:
        return False
    with open(one, "rb") as left, open(other, "rb") as right:
        while True:
            a, b = left.read(1 << 20), right.read(1 << 20)
            if a != b:
                return False
            if not a:
                return True


def refuse_special(source: Path | str, mode: int) -> None:
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise TransferError(
            f"{shown(str(source))} is {kind(mode)}, not a file: it cannot be copied",
            f"move it out of the way (mv '{source}' /somewhere/else), then run the same command"
            " again",
        )


def copy_verified(source: Path, destination: Path) -> os.stat_result:
    """Copy one file (or symlink, as a link) to `destination`, durable and checked.

    The copy is written to an exclusive temporary name, compared with the source by size,
    re-done when the source changed meanwhile (then refused), fsynced, renamed into place
    and its folder fsynced. Returns the source's status as it was copied, for `move_file`.
    An existing destination with the same content is accepted; other content is refused.
    Holes in a sparse file stay holes.
    """
    status = os.lstat(source)
    refuse_special(source, status.st_mode)
    if os.path.lexists(destination):
        if same_file_content(source, destination):
            return status
        raise TransferError(
            f"{shown(str(destination))} already exists with other content",
            "move one of the two away, then run the same command again",
        )
    make_folders(destination.parent)
    if stat.S_ISLNK(status.st_mode):
        place_link(os.fspath(source), os.fspath(destination))
        fsync_folder(destination.parent)
        return status
    with sigio_ignored():
        for _ in range(COPY_ATTEMPTS):
            reader = open_source(os.fspath(source))
            try:
                copied = copy_once(reader, os.fspath(source), os.fspath(destination), True)
            finally:
                os.close(reader)
            if copied is not None:
                fsync_folder(destination.parent)
                return copied
    raise kept_changing(source)


def kept_changing(source: Path | str) -> TransferError:
    return TransferError(
        f"{shown(str(source))} kept changing while it was copied (another program is writing"
        " it); it was left where it is",
        "let the other program finish (or stop it), then run the same command again",
    )


def changed_after(source: Path | str) -> TransferError:
    return TransferError(
        f"{shown(str(source))} changed after it was copied (another program is writing"
        " it); it was left where it is",
        "let the other program finish (or stop it), then run the same command again",
    )


def open_source(source: str) -> int:
    return os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)


def place_link(source: str, destination: str) -> None:
    """Make `destination` a symlink holding what `source` holds (not yet fsynced)."""
    temporary = temporary_name(destination, TRANSFER_TEMPORARY, purpose="link")
    os.symlink(os.readlink(source), temporary)  # fails rather than replace anything
    try:
        os.replace(temporary, destination)
    except BaseException:
        discard(temporary)
        raise


def copy_once(
    reader: int, source: str, destination: str, by_name: bool = False
) -> os.stat_result | None:
    """One attempt at copying the open `reader` to `destination` (its folder not yet
    fsynced): the source's status when the copy matches it, None when it changed (or, with
    `by_name`, when its name now holds another file: then that one is copied next)."""
    before = os.fstat(reader)
    if not stat.S_ISREG(before.st_mode):
        refuse_special(source, before.st_mode)
    if open_for_writing(reader):
        raise TransferError(
            f"{shown(source)} is open for writing in another program; it was left where it is",
            "let the other program finish (or stop it), then run the same command again",
        )
    temporary = temporary_name(destination, TRANSFER_TEMPORARY, purpose="copy")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    writer = os.open(temporary, flags, 0o600)
    try:
        try:
            written = copy_bytes(reader, writer, before)
            os.fchmod(writer, stat.S_IMODE(before.st_mode))
            os.utime(writer, ns=(before.st_atime_ns, before.st_mtime_ns))
            os.fsync(writer)
        finally:
            os.close(writer)
        after = os.fstat(reader)
        if identity(before) != identity(after) or (
            by_name and identity(after) != identity(os.lstat(source))
        ):
            discard(temporary)
            return None
        if written != after.st_size:
            discard(temporary)
            raise TransferError(
                f"copying {shown(source)} gave a file of another size (disk full?)",
                "free some space, then run the same command again",
            )
        os.replace(temporary, destination)
    except BaseException:
        discard(temporary)
        raise
    return after


def discard(temporary: Path | str) -> None:
    """Remove a temporary this run created (and nothing else)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)


"""Files copied into one folder before its one fsync makes their names durable."""

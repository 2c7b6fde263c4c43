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
import itertools
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .copying import copy_bytes, identity, open_for_writing, sigio_ignored
from .errors import BootstrapError, shown
from .fsutil import fsync_folder, kind

RUN_TOKEN = os.urandom(8).hex()  # (as secrets.token_hex, without its imports)
"""Part of every temporary name this run makes: no other run, and no user, has it."""

COPY_ATTEMPTS = 3

LEFTOVER = re.compile(
    r"\..+\.mmlab-bootstrap-(?:copy|link|update)-[0-9a-f]{24}", re.ASCII | re.DOTALL
)
"""A temporary name `temporary_name` makes: only this tool makes such names."""


class TransferError(BootstrapError):
    """A file could not be copied or moved safely; the original is where it was."""


_CALLS = itertools.count()


def temporary_name(path: Path, purpose: str) -> Path:
    """A hidden name beside `path` that only this run (and this call) uses."""
    return Path(_temporary(os.fspath(path), purpose))


def _temporary(path: str, purpose: str) -> str:
    folder, slash, name = path.rpartition("/")
    call = next(_CALLS) & 0xFFFFFFFF  # unique per call of this run
    return f"{folder}{slash}.{name}.mmlab-bootstrap-{purpose}-{RUN_TOKEN}{call:08x}"


def remove_leftovers(folder: Path, stem: str = "") -> None:
    """Remove temporaries an interrupted run of this tool left in `folder` (optionally only
    those made for the name `stem`); user files never have such names."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    prefix = f".{stem}.mmlab-bootstrap-" if stem else "."
    for name in names:
        if name.startswith(prefix) and LEFTOVER.fullmatch(name):
            path = folder / name
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
                _discard(path)


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


def _refuse_special(source: Path | str, mode: int) -> None:
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
    _refuse_special(source, status.st_mode)
    if os.path.lexists(destination):
        if same_file_content(source, destination):
            return status
        raise TransferError(
            f"{shown(str(destination))} already exists with other content",
            "move one of the two away, then run the same command again",
        )
    make_folders(destination.parent)
    if stat.S_ISLNK(status.st_mode):
        _place_link(os.fspath(source), os.fspath(destination))
        fsync_folder(destination.parent)
        return status
    with sigio_ignored():
        for _ in range(COPY_ATTEMPTS):
            reader = _open_source(os.fspath(source))
            try:
                copied = _copy_once(reader, os.fspath(source), os.fspath(destination), True)
            finally:
                os.close(reader)
            if copied is not None:
                fsync_folder(destination.parent)
                return copied
    raise _kept_changing(source)


def _kept_changing(source: Path | str) -> TransferError:
    return TransferError(
        f"{shown(str(source))} kept changing while it was copied (another program is writing"
        " it); it was left where it is",
        "let the other program finish (or stop it), then run the same command again",
    )


def _changed_after(source: Path | str) -> TransferError:
    return TransferError(
        f"{shown(str(source))} changed after it was copied (another program is writing"
        " it); it was left where it is",
        "let the other program finish (or stop it), then run the same command again",
    )


def _open_source(source: str) -> int:
    return os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)


def _place_link(source: str, destination: str) -> None:
    """Make `destination` a symlink holding what `source` holds (not yet fsynced)."""
    temporary = _temporary(destination, "link")
    os.symlink(os.readlink(source), temporary)  # fails rather than replace anything
    try:
        os.replace(temporary, destination)
    except BaseException:
        _discard(temporary)
        raise


def _copy_once(
    reader: int, source: str, destination: str, by_name: bool = False
) -> os.stat_result | None:
    """One attempt at copying the open `reader` to `destination` (its folder not yet
    fsynced): the source's status when the copy matches it, None when it changed (or, with
    `by_name`, when its name now holds another file: then that one is copied next)."""
    before = os.fstat(reader)
    if not stat.S_ISREG(before.st_mode):
        _refuse_special(source, before.st_mode)
    if open_for_writing(reader):
        raise TransferError(
            f"{shown(source)} is open for writing in another program; it was left where it is",
            "let the other program finish (or stop it), then run the same command again",
        )
    temporary = _temporary(destination, "copy")
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
            _discard(temporary)
            return None
        if written != after.st_size:
            _discard(temporary)
            raise TransferError(
                f"copying {shown(source)} gave a file of another size (disk full?)",
                "free some space, then run the same command again",
            )
        os.replace(temporary, destination)
    except BaseException:
        _discard(temporary)
        raise
    return after


def _discard(temporary: Path | str) -> None:
    """Remove a temporary this run created (and nothing else)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)


def move_file(source: Path, destination: Path) -> None:
    """Copy verified, then remove the source only if it is still exactly what was copied."""
    copied = copy_verified(source, destination)
    remove_if_unchanged(source, copied)


def remove_if_unchanged(source: Path, copied: os.stat_result) -> None:
    """Unlink `source` when it is still the file that was copied and nobody is writing it."""
    now = os.lstat(source)
    busy = False
    if stat.S_ISREG(now.st_mode):
        descriptor = _open_source(os.fspath(source))
        try:
            with sigio_ignored():
                busy = open_for_writing(descriptor)
            now = os.fstat(descriptor)
        finally:
            os.close(descriptor)
    if busy or identity(now) != identity(copied):
        raise _changed_after(source)
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
                _discard(item.path)
                continue
            present[name] = item.is_dir(follow_symlinks=False)
    return present


BATCH = 64
"""Files copied into one folder before its one fsync makes their names durable."""


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
                        raise _changed_after(path)
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
        _place_link(source, destination)
        return source, -1, status
    if not item.is_file(follow_symlinks=False):
        _refuse_special(source, os.lstat(source).st_mode)
    for _ in range(COPY_ATTEMPTS):
        reader = _open_source(source)
        try:
            copied = _copy_once(reader, source, destination)
        except BaseException:
            os.close(reader)
            raise
        if copied is not None:
            return source, reader, copied
        os.close(reader)
    raise _kept_changing(source)

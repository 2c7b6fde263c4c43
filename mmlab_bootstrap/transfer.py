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
import errno
import fcntl
import os
import re
import signal
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def temporary_name(path: Path, purpose: str) -> Path:
    """A hidden name beside `path` that only this run (and this call) uses."""
    return path.with_name(
        f".{path.name}.mmlab-bootstrap-{purpose}-{RUN_TOKEN}{os.urandom(4).hex()}"
    )


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


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def _open_for_writing(descriptor: int) -> bool:
    """Whether any process holds the file open for writing (a read lease is then refused).

    Where leases are not allowed (another owner, some network filesystems) this cannot be
    told and counts as no; the size and time checks still apply.
    """
    # A writer opening the file in the moment the lease is held sends SIGIO, which would
    # end this process: ignore it for that moment (the writer just waits a moment).
    quiet = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGIO, signal.SIG_IGN) if quiet else None
    try:
        try:
            fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError as error:
            return error.errno in (errno.EAGAIN, errno.EBUSY)
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        if quiet:
            signal.signal(signal.SIGIO, signal.SIG_DFL if previous is None else previous)


def _refuse_special(source: Path, mode: int) -> None:
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
        temporary = temporary_name(destination, "link")
        os.symlink(os.readlink(source), temporary)  # fails rather than replace anything
        try:
            os.replace(temporary, destination)
        except BaseException:
            _discard(temporary)
            raise
        fsync_folder(destination.parent)
        return status
    for _ in range(COPY_ATTEMPTS):
        copied = _copy_once(source, destination)
        if copied is not None:
            return copied
    raise TransferError(
        f"{shown(str(source))} kept changing while it was copied (another program is writing"
        " it); it was left where it is",
        "let the other program finish (or stop it), then run the same command again",
    )


def _copy_once(source: Path, destination: Path) -> os.stat_result | None:
    """One attempt: the source's status when the copy matches it, None when it changed."""
    temporary = temporary_name(destination, "copy")
    reader = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        before = os.fstat(reader)
        _refuse_special(source, before.st_mode)
        if _open_for_writing(reader):
            raise TransferError(
                f"{shown(str(source))} is open for writing in another program; it was left"
                " where it is",
                "let the other program finish (or stop it), then run the same command again",
            )
        writer = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            try:
                while True:
                    chunk = os.read(reader, 1 << 20)
                    if not chunk:
                        break
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(writer, view) :]
                os.fchmod(writer, stat.S_IMODE(before.st_mode))
                os.utime(writer, ns=(before.st_atime_ns, before.st_mtime_ns))
                os.fsync(writer)
                written = os.fstat(writer).st_size
            finally:
                os.close(writer)
            after = os.fstat(reader)
            now = os.lstat(source)
            if _identity(before) != _identity(after) or _identity(after) != _identity(now):
                _discard(temporary)
                return None
            if written != after.st_size:
                _discard(temporary)
                raise TransferError(
                    f"copying {shown(str(source))} gave a file of another size (disk full?)",
                    "free some space, then run the same command again",
                )
            os.replace(temporary, destination)
        except BaseException:
            _discard(temporary)
            raise
    finally:
        os.close(reader)
    fsync_folder(destination.parent)
    return after


def _discard(temporary: Path) -> None:
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
    if stat.S_ISREG(now.st_mode):
        descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            busy = _open_for_writing(descriptor)
            now = os.fstat(descriptor)
        finally:
            os.close(descriptor)
    else:
        busy = False
    if busy or _identity(now) != _identity(copied):
        raise TransferError(
            f"{shown(str(source))} changed after it was copied (another program is writing"
            " it); it was left where it is",
            "let the other program finish (or stop it), then run the same command again",
        )
    os.unlink(source)


def move_tree(source: Path, target: Path, *, same_device: bool) -> None:
    """Move everything under `source` into `target`, merging folders, never overwriting.

    On one filesystem entries are renamed; across filesystems each file is copied
    (verified, durable) and then removed. Symlinks move as links, never followed.
    """
    stack = [(source, target)]
    while stack:
        origin_folder, target_folder = stack.pop()
        remove_leftovers(target_folder)
        for name in sorted(os.listdir(origin_folder), reverse=True):
            origin, destination = origin_folder / name, target_folder / name
            is_folder = stat.S_ISDIR(os.lstat(origin).st_mode)
            if is_folder and os.path.lexists(destination):
                if not stat.S_ISDIR(os.lstat(destination).st_mode):
                    raise TransferError(
                        f"{shown(str(destination))} is in the way of the folder"
                        f" {shown(str(origin))}",
                        "move one of the two away, then run the same command again",
                    )
                stack.append((origin, destination))
            elif os.path.lexists(destination):
                if not same_file_content(origin, destination):
                    raise TransferError(
                        f"{shown(str(destination))} already exists with other content",
                        "move one of the two away, then run the same command again",
                    )
                remove_if_unchanged(origin, os.lstat(origin))  # the same bytes are in the target
            elif same_device:
                os.rename(origin, destination)
            elif is_folder:
                destination.mkdir()
                fsync_folder(target_folder)
                stack.append((origin, destination))
            else:
                move_file(origin, destination)

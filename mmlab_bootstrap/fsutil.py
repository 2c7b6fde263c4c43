"""Small filesystem helpers that never leave a half-written file behind, and that read and
write only regular files: never a device, a FIFO, a socket or a folder, and never through a
symlink where the tool's own files are concerned."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

from .errors import BootstrapError, shown
from .temporaries import TEMPORARY, remove_stale_temporaries


class FileRefused(BootstrapError):
    """A file the tool would read or write is not a plain file it may change."""


def kind(mode: int) -> str:
    """What an `st_mode` describes, for a message."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _refuse_kind(path: Path, found: os.stat_result, hint: str, *, follow: bool) -> FileRefused:
    if follow and os.path.islink(path):
        where = f"{shown(str(path))} links to {shown(os.path.realpath(path))}, which is"
    else:
        where = f"{shown(str(path))} is"
    return FileRefused(
        f"{where} {kind(found.st_mode)}, not a regular file; refusing to read or write it", hint
    )


def read_regular(
    path: Path, hint: str, *, own: bool = False, limit: int | None = None
) -> bytes | None:
    """The bytes of a regular file, or None when there is nothing at `path`.

    Anything else (a folder, device, FIFO, socket; for the tool's own files also a symlink)
    is refused before it is opened, and opening never blocks or follows a late-swapped link.
    A file of more than `limit` bytes is refused too (read no further than that).
    """
    follow = not own
    try:
        found = os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        if os.path.islink(path):
            raise FileRefused(
                f"{shown(str(path))} is a symlink to {shown(os.readlink(path))},"
                " which does not exist",
                hint,
            ) from None
        return None
    if not stat.S_ISREG(found.st_mode):
        raise _refuse_kind(path, found, hint, follow=follow)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise FileRefused(
                f"{shown(str(path))} is a symlink; refusing to follow it", hint
            ) from None
        raise
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):
            raise _refuse_kind(path, opened, hint, follow=False)
        chunks, count, most = [], 0, (1 << 62) if limit is None else limit
        while chunk := os.read(descriptor, min(1 << 20, most + 1 - count)):
            chunks.append(chunk)
            count += len(chunk)
            if count > most:
                raise FileRefused(
                    f"{shown(str(path))} holds more than {limit} bytes; refusing to read it",
                    hint,
                )
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def open_own_file(path: Path, hint: str) -> int:
    """Open (creating it 0644 if missing) one of the tool's own files for reading and writing.

    Never through a symlink, never anything but a regular file with no other hard links: a
    link planted at the name cannot make the tool truncate or create a file elsewhere.
    """
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(found.st_mode):
            raise _refuse_kind(path, found, hint, follow=False)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise FileRefused(
                f"{shown(str(path))} is a symlink; refusing to follow it", hint
            ) from None
        raise
    opened = os.fstat(descriptor)
    problem = None
    if not stat.S_ISREG(opened.st_mode):
        problem = _refuse_kind(path, opened, hint, follow=False)
    elif opened.st_nlink > 1:
        problem = FileRefused(
            f"{shown(str(path))} has {opened.st_nlink - 1} other hard link(s); refusing to"
            " write into a file that has other names",
            hint,
        )
    if problem is not None:
        os.close(descriptor)
        raise problem
    return descriptor


def writable_problem(path: Path, *, own: bool = False) -> tuple[str, str] | None:
    """Why `path` may not be replaced: (what is wrong, hint), or None.

    A user's file is followed through symlinks to its final target, which must be a regular
    file that is writable, has no other hard links and (unless running as root) is ours.
    One of the tool's own files (`own`) is never followed: a symlink there is refused.
    """
    if own:
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(found.st_mode):
            return None
        return (
            f"{shown(str(path))} is {kind(found.st_mode)}, not a regular file;"
            " refusing to write through it",
            f"move it aside (mv '{path}' '{path}.old'), then run the same command again",
        )
    target = Path(os.path.realpath(path))
    try:
        found = os.lstat(target)
    except FileNotFoundError:
        if os.path.islink(path):
            return (
                f"{shown(str(path))} is a symlink to {shown(os.readlink(path))},"
                " which does not exist",
                f"create the file it points to first (touch '{target}'), or remove the link",
            )
        return None
    if not stat.S_ISREG(found.st_mode):
        where = (
            f"{shown(str(path))} links to {shown(str(target))}, which is"
            if target != path
            else f"{shown(str(path))} is"
        )
        return (
            f"{where} {kind(found.st_mode)}, not a regular file; refusing to write it",
            f"replace it with a regular file (mv '{path}' '{path}.old'), then run it again",
        )
    if found.st_nlink > 1:
        return (
            f"{shown(str(target))} has {found.st_nlink - 1} other hard link(s); rewriting it"
            " would split it from them",
            f"give it a name of its own first (cp '{target}' '{target}.new' &&"
            f" mv '{target}.new' '{target}'), or leave it out",
        )
    if not found.st_mode & stat.S_IWUSR or not os.access(target, os.W_OK):
        return (
            f"{shown(str(target))} is read-only (mode {stat.S_IMODE(found.st_mode):04o})",
            f"if it may be changed, make it writable (chmod u+w '{target}'), then run it again",
        )
    if os.geteuid() != 0 and found.st_uid != os.geteuid():
        return (
            f"{shown(str(target))} belongs to another user (uid {found.st_uid}); rewriting it"
            " would make it yours",
            "run the command as the file's owner",
        )
    return None


def write_atomically(path: Path, text: str, *, own: bool = False) -> Path:
    """Write `text` to `path` through a temporary file in the same folder, then rename.

    A user's file: a symlink's final target is written and the link stays; only a regular
    file is replaced, never one that is read-only or has other hard links, and it keeps its
    mode, owner and group. One of the tool's own files (`own`): a symlink or anything but a
    regular file at `path` is refused. A new file gets 0666 less the umask. Returns the path
    actually written.
    """
    problem = writable_problem(path, own=own)
    if problem is not None:
        raise FileRefused(*problem)
    target = path if own else Path(os.path.realpath(path))
    try:
        found: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        found = None
    remove_stale_temporaries(target)
    temporary = target.with_name(TEMPORARY.format(name=target.name, token=os.urandom(4).hex()))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, 0o666)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # ours while this run lives; see below
        with os.fdopen(descriptor, "wb", closefd=False) as handle:
            handle.write(text.encode("utf-8", "surrogateescape"))
            handle.flush()
        if found is not None:
            _keep_owner(descriptor, found, target, strict=not own)
            os.fchmod(descriptor, stat.S_IMODE(found.st_mode))
        os.fsync(descriptor)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        os.close(descriptor)
    fsync_folder(target.parent)
    return target


def _keep_owner(descriptor: int, found: os.stat_result, target: Path, *, strict: bool) -> None:
    mine = os.fstat(descriptor)
    if (mine.st_uid, mine.st_gid) == (found.st_uid, found.st_gid):
        return
    try:
        os.fchown(descriptor, found.st_uid, found.st_gid)
    except PermissionError:
        if not strict:
            return
        raise FileRefused(
            f"cannot keep the owner and group of {shown(str(target))}"
            f" ({found.st_uid}:{found.st_gid}); refusing to rewrite it",
            "run the command as the file's owner",
        ) from None


def fsync_folder(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

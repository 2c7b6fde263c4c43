"""Small filesystem helpers that never leave a half-written file behind, and that read and
write only regular files: never a device, a FIFO, a socket or a folder, and never through a
symlink where the tool's own files are concerned."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs.temporaries import (
    TEMPORARY,
    hold,
    remove_stale_temporaries,
    temporary_beside,
)


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


def replace_atomically(
    target: Path,
    content: bytes | Path,
    *,
    template: str,
    mode: int = 0o666,
    prepare: Callable[[int], None] | None = None,
) -> None:
    """Replace `target` whole: `content` (bytes, or a file whose bytes are copied) goes into
    a temporary beside it named by `template` (see fs.temporaries; created new, never
    followed, `mode` less the umask, locked while this run lives so that a sweep leaves it
    alone; `prepare` gets its descriptor before the write: ownership, mode), which is fsynced
    and renamed over `target`; then the folder is fsynced. On any failure the temporary is
    removed. The one temporary-beside-a-file + atomic replace of the package."""
    temporary = temporary_beside(target, template)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, mode)
    try:
        hold(descriptor)  # ours while this run lives (see fs.temporaries.sweep)
        if prepare is not None:
            prepare(descriptor)
        with os.fdopen(descriptor, "wb", closefd=False) as handle:
            if isinstance(content, Path):
                with open(content, "rb") as source:
                    shutil.copyfileobj(source, handle)
            else:
                handle.write(content)
            handle.flush()
        os.fsync(descriptor)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        os.close(descriptor)
    fsync_folder(target.parent)


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

    def prepare(descriptor: int) -> None:
        if found is not None:
            _keep_owner(descriptor, found, target, strict=not own)
            os.fchmod(descriptor, stat.S_IMODE(found.st_mode))

    encoded = text.encode("utf-8", "surrogateescape")
    replace_atomically(target, encoded, template=TEMPORARY, prepare=prepare)
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


# What copying into a filesystem takes (see `room_for`): a share of it is kept to spare, for
# the filesystem's own records and for others writing to that disk meanwhile.
SPARE_SHARE = 64  # 1/64 (1.6 %) of the blocks and inodes, and at least:
SPARE_BLOCKS = 4
SPARE_INODES = 4
# A block size reported above this is a transfer size (NFS's wsize, GPFS's full block), not
# what a file takes there: files are counted in 4 KiB blocks instead (what most servers use).
LARGEST_BLOCK = 64 << 10
COMMON_BLOCK = 4 << 10


class Room(NamedTuple):
    """What a copy into a filesystem takes there, and what that filesystem has free."""

    needed: int  # bytes: each file rounded up to whole blocks, a block per entry, a spare
    free: int  # bytes available to this user
    inodes_needed: int
    inodes_free: int | None  # None where the filesystem sets no limit (btrfs, some NFS)
    block: int  # the block the files were counted in
    data: int  # the files' own bytes
    spare: int  # bytes of `needed` kept to spare
    spare_inodes: int

    @property
    def enough(self) -> bool:
        return self.needed <= self.free and (
            self.inodes_free is None or self.inodes_needed <= self.inodes_free
        )


def room_for(folder: Path, sizes: Iterable[int], *, entries: int = 0) -> Room:
    """What copying files of `sizes` bytes (and `entries` folders and symlinks, a block and
    an inode each) into `folder` takes on its filesystem, and what it has free (statvfs):
    each file takes whole blocks, so 1 500 files of 3 000 bytes take 5.9 MiB, not 4.3 MiB."""
    found = os.statvfs(folder)
    unit = found.f_frsize or found.f_bsize  # what f_bavail counts in
    block = unit if 0 < unit <= LARGEST_BLOCK else COMMON_BLOCK
    data = blocks = inodes = 0
    for size in sizes:
        data += size
        blocks += -(-size // block)
        inodes += 1
    blocks += entries
    inodes += entries
    spare_blocks = max(SPARE_BLOCKS, -(-blocks // SPARE_SHARE))
    spare_inodes = max(SPARE_INODES, -(-inodes // SPARE_SHARE))
    return Room(
        needed=(blocks + spare_blocks) * block,
        free=found.f_bavail * unit,
        inodes_needed=inodes + spare_inodes,
        inodes_free=found.f_favail if found.f_files else None,
        block=block,
        data=data,
        spare=spare_blocks * block,
        spare_inodes=spare_inodes,
    )


class AccessDenied(BootstrapError):
    """The OS refused the tool a file or folder (another user's, or one made read-only)."""


def _blocking(path: Path) -> Path:
    """Of `path` and the folders on the way to it, the one that refuses this user: the first
    folder that cannot be entered, else a parent where nothing can be created, else `path`."""
    path = Path(os.path.abspath(path))
    for folder in reversed(path.parents):
        if not os.access(folder, os.X_OK):
            return folder
    if not os.path.lexists(path) and not os.access(path.parent, os.W_OK | os.X_OK):
        return path.parent
    return path


def owner_of(path: Path) -> str | None:
    """The name of the user who owns `path` (None: it cannot be looked at)."""
    try:
        return _owner(os.lstat(path).st_uid)
    except OSError:
        return None


def _owner(uid: int) -> str:
    # startup: pwd/grp only when an owner is named
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    # startup: pwd/grp only when an owner is named
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def denied(error: PermissionError) -> AccessDenied:
    """The error for a file or folder the OS refused: which one (the folder on the way that
    blocks, when it is one of those), its owner and mode, and what to do. A re-run cannot
    help; a change of its permissions (or another place) does."""
    if not error.filename:
        return AccessDenied(
            f"{error.strerror or error}", "check the permissions of the files the task uses"
        )
    named = Path(os.fsdecode(error.filename))
    if error.filename2 and os.path.lexists(error.filename2):
        named = Path(os.fsdecode(error.filename2))  # a rename onto another user's file
    path = _blocking(named)
    what = f"{error.strerror or 'permission denied'}: {shown(str(named))}"
    try:
        found = os.lstat(path)
    except OSError:
        return AccessDenied(what, f"check the permissions of {shown(str(path))} and its folders")
    owner = _owner(found.st_uid)
    group = _group(found.st_gid)
    folder = stat.S_ISDIR(found.st_mode)
    where = "" if path == named else f" (blocked at {shown(str(path))})"
    message = (
        f"{what}{where}: {'a folder' if folder else 'a file'} of owner {owner}, group {group},"
        f" mode {stat.filemode(found.st_mode)}"
    )
    if found.st_uid == os.geteuid():
        hint = f"it is yours, closed to you: chmod u+rw{'x' if folder else ''} {shown(str(path))}"
    else:
        place = shown(str(path))
        share = (
            f"chgrp -R TEAM {place}; chmod -R g+rwX {place}; find {place} -type d -exec chmod"
            " g+s {} +"
            if folder
            else f"chgrp TEAM {place}; chmod g+rw {place}"
        )
        hint = (
            f"it belongs to {owner}: ask them to share it with your team (as its owner: {share};"
            ' see the README\'s "Sharing storage and the cache in a team"), or set the tool to'
            " a folder of your own"
        )
    return AccessDenied(message, hint, rerun_helps=False)


def shared_with_group(folder: Path) -> bool:
    """Whether `folder` is shared with a team the documented way: setgid and group-writable
    (what is made in it then belongs to its group, and is made group-writable too)."""
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_ISGID and mode & stat.S_IWGRP)


def share_like_folder(made: Path | int, folder: Path) -> None:
    """Give what was just made in `folder` (a path, or an open descriptor of a file) group
    read and write (and search, for a folder) when `folder` is shared with a team; the user's
    umask decides everything else. Nothing changes in a folder that is not shared."""
    if not shared_with_group(folder):
        return
    found = os.fstat(made) if isinstance(made, int) else os.lstat(made)
    wanted = found.st_mode | stat.S_IRGRP | stat.S_IWGRP
    if stat.S_ISDIR(found.st_mode):
        wanted |= stat.S_IXGRP | stat.S_ISGID
    elif not stat.S_ISREG(found.st_mode):
        return
    if stat.S_IMODE(wanted) != stat.S_IMODE(found.st_mode):
        if isinstance(made, int):
            os.fchmod(made, stat.S_IMODE(wanted))
        else:
            os.chmod(made, stat.S_IMODE(wanted))


def make_folders(path: Path) -> None:
    """`mkdir -p`, where each folder made in a team's shared folder is shared too (see
    `share_like_folder`)."""
    missing = []
    for folder in [path, *path.parents]:
        if os.path.isdir(folder):
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        share_like_folder(folder, folder.parent)


class NotRegularFile(OSError):
    """Something other than a regular file where one is read (a FIFO, a device, a folder)."""

    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(f"{path} is {kind(mode)}, not a regular file")
        self.mode = mode


def read_head(path: Path, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the regular file at `path` (a symlink to one is followed), and
    whether they are the whole file. Opening never blocks (a FIFO, a device or a folder is a
    NotRegularFile, a device not even opened); any other failure is the OSError it is."""
    found = os.stat(path)
    if not stat.S_ISREG(found.st_mode):
        raise NotRegularFile(path, found.st_mode)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        found = os.fstat(descriptor)  # it may have been swapped since
        if not stat.S_ISREG(found.st_mode):
            raise NotRegularFile(path, found.st_mode)
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(descriptor, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    return data[:limit], len(data) <= limit

"""The bytes of one file: copied with its holes kept, and the checks a safe move needs.

Only descriptors are used here (`transfer` opens and names the files): the data extents of
the source are copied (SEEK_DATA/SEEK_HOLE), so a sparse file stays sparse; whether anyone
holds a file open for writing is asked with a read lease.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import threading
from collections.abc import Iterator

CHUNK = 1 << 20
BLOCK = 512  # the unit of st_blocks


def identity(status: os.stat_result) -> tuple[int, int, int, int]:
    """What must not change between copying a file and removing it."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


@contextlib.contextmanager
def sigio_ignored() -> Iterator[None]:
    """While leases are taken: a writer opening a leased file sends SIGIO, which would end
    this process; ignored meanwhile (the writer just waits a moment). Main thread only, where
    signal handlers can be set; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGIO, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGIO, signal.SIG_DFL if previous is None else previous)


def open_for_writing(descriptor: int) -> bool:
    """Whether any process holds the file open for writing (a read lease is then refused).

    Call inside `sigio_ignored`. Where leases are not allowed (another owner, some network
    filesystems) this cannot be told and counts as no; the size and time checks still apply.
    """
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as error:
        return error.errno in (errno.EAGAIN, errno.EBUSY)
    fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    return False


def copy_bytes(reader: int, writer: int, status: os.stat_result) -> int:
    """Copy an open regular file (of `status`, from its start) into an empty one; returns the
    size the copy has. A file with holes has only its data extents copied and the copy is
    truncated to the full size, so the holes stay holes (they read as zeros either way)."""
    if status.st_blocks * BLOCK < status.st_size:
        copied = _copy_extents(reader, writer, status.st_size)
        if copied is not None:
            return copied
    written = 0
    want = min(status.st_size + 1, CHUNK)  # one read reaches the end of a small file
    while True:
        chunk = os.read(reader, want)
        if not chunk:
            return written
        done = os.write(writer, chunk)
        if done < len(chunk):  # a short write: the rest, then go on
            _write_all(writer, memoryview(chunk)[done:])
        written += len(chunk)
        if len(chunk) < want:  # a regular file reads short only at its end
            return written
        want = CHUNK


def _copy_extents(reader: int, writer: int, size: int) -> int | None:
    """Copy the data extents only; None (nothing written) where holes cannot be found."""
    position = 0
    while position < size:
        try:
            start = os.lseek(reader, position, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:  # no data after `position`: the rest is a hole
                break
            if position == 0 and error.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                return None
            raise
        end = min(os.lseek(reader, start, os.SEEK_HOLE), size)
        while start < end:
            chunk = os.pread(reader, min(CHUNK, end - start), start)
            if not chunk:  # shrunk meanwhile: the identity check refuses this copy
                end = start
                break
            done = 0
            while done < len(chunk):
                done += os.pwrite(writer, chunk[done:], start + done)
            start += len(chunk)
        position = max(end, position + 1)
    os.ftruncate(writer, size)
    return os.fstat(writer).st_size


def _write_all(writer: int, view: memoryview) -> None:
    while view:
        view = view[os.write(writer, view) :]

"""The partial file one download writes, and the sha256 of what it holds (see `ckptstore`
for how the file is named and claimed)."""

from __future__ import annotations

import ctypes
import functools
import os
import queue
import threading
from pathlib import Path
from typing import Any

from mmlab_bootstrap.checkpoints.store import claim_partial, sha256_of

SYNC_EVERY = 64 << 20


class Partial:
    """The partial file this run writes, and the sha256 of the bytes it holds: what an earlier
    run left is hashed from disk, what this run writes is hashed by a thread of its own while
    the download goes on (hashing inline would halve the speed on a fast link)."""

    def __init__(self, final: Path) -> None:
        self.descriptor, self.path = claim_partial(final)
        self.offset = 0  # bytes written (and handed to the hasher) so far
        self.received = 0  # bytes this run wrote (what it downloaded, restarts included)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        self._hasher: Any = None
        self._thread: threading.Thread | None = None

    @property
    def size(self) -> int:
        return os.fstat(self.descriptor).st_size

    def resume(self) -> None:
        """Go on from what the file holds (hashing it once: an earlier run's bytes)."""
        if self._hasher is None or self.offset != self.size:
            self._stop()
            self.offset = self.size
            self._hasher = sha256_of(self.descriptor, limit=self.offset)
            self._thread = threading.Thread(target=self._hash, args=(self._hasher,), daemon=True)
            self._thread.start()

    def restart(self) -> None:
        """Start over from nothing (a server that ignores Range)."""
        self._stop()
        os.ftruncate(self.descriptor, 0)
        self._hasher = None
        self.resume()

    def write(self, chunk: bytes) -> None:
        os.pwrite(self.descriptor, chunk, self.offset)
        self.offset += len(chunk)
        self.received += len(chunk)
        self._queue.put(chunk)

    def sha256(self) -> str:
        """The sha256 of everything written; the file must hold exactly that."""
        self._stop()
        if self.size != self.offset:
            raise OSError(f"{self.path} changed size while it was written")
        return str(self._hasher.hexdigest())

    def close(self) -> None:
        self._stop()
        os.close(self.descriptor)

    def _stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _hash(self, hasher: Any) -> None:
        """Hash the chunks as they come; every SYNC_EVERY bytes, also start the disk writing
        them out (without waiting), so the fsync before the rename has little left to do."""
        written, unsynced = self.offset, 0
        while (chunk := self._queue.get()) is not None:
            hasher.update(chunk)
            unsynced += len(chunk)
            if unsynced >= SYNC_EVERY:
                start_writeback(self.descriptor, written, unsynced)
                written, unsynced = written + unsynced, 0


@functools.cache
def _sync_file_range() -> Any:
    """Linux's sync_file_range (None elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    return function


def start_writeback(descriptor: int, offset: int, count: int) -> None:
    """Ask the kernel to start writing a range of the file to disk, without waiting for it
    (SYNC_FILE_RANGE_WRITE); a hint only: the fsync before the rename is what counts."""
    function = _sync_file_range()
    if function is not None:
        function(descriptor, offset, count, 2)

"""Checkpoint files in storage: the final file, the record that says it was verified, and
the partial downloads beside it. Reads only (plus the record's atomic write); no network.

Beside `<file>` in `<root>/<project>/checkpoints/`:
- `.<file>.verified.json`: the full sha256, size and mtime of the file as it was verified; a
  file that still has that size and mtime is trusted without reading it again.
- `.<file>.part-<8 hex>`: a download in progress (or one a killed run left, resumed by the
  next). Each run writes only a partial file of its own name: one it created, or one it took
  over by renaming it (an atomic step only one run can win). A live run holds a lock on its
  partial file, so others leave it alone; where locks are unreliable (some network
  filesystems) nothing depends on that: every file is verified before it is renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import redacted

CHUNK = 1 << 20
_PARTIAL = re.compile(r"\.(?P<name>.+)\.part-[0-9a-f]{8}\Z")


def record_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.verified.json")


def new_partial_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.part-{os.urandom(4).hex()}")


@dataclass(frozen=True)
class Record:
    """What a verified file was: its full sha256, size and modification time."""

    sha256: str
    size: int
    mtime_ns: int
    url: str = ""


def read_record(final: Path) -> Record | None:
    try:
        data: Any = json.loads(record_path(final).read_text(encoding="utf-8"))
        return Record(str(data["sha256"]), int(data["size"]), int(data["mtime_ns"]), data["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or one that cannot be read: the file is hashed again


def write_record(final: Path, sha256: str, url: str) -> Record:
    """Remember that `final`, as it is now, has this sha256: written to a temporary name of
    this run's own, then renamed over the record (no lock needed: on a network filesystem
    another run may write the same record at the same moment). The URL is kept without its
    user name and password: records are readable by everyone who shares the storage."""
    found = os.stat(final)
    url = redacted(url)
    record = Record(sha256, found.st_size, found.st_mtime_ns, url)
    text = json.dumps(
        {"sha256": sha256, "size": record.size, "mtime_ns": record.mtime_ns, "url": url}
    )
    target = record_path(final)
    temporary = target.with_name(f"{target.name}.tmp-{os.urandom(4).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, 0o644)
    try:
        os.write(descriptor, (text + "\n").encode())
        os.fsync(descriptor)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    finally:
        os.close(descriptor)
    return record


def recorded(final: Path) -> Record | None:
    """The record of `final` when the file still matches it (size and mtime), else None."""
    record = read_record(final)
    if record is None:
        return None
    try:
        found = os.stat(final)
    except OSError:
        return None
    if (found.st_size, found.st_mtime_ns) != (record.size, record.mtime_ns):
        return None
    return record


def sha256_of(path: Path | int, limit: int | None = None) -> Any:
    """The sha256 of a file, by path or open descriptor (then read where it is, whatever its
    name is now), or of its first `limit` bytes."""
    hasher = hashlib.sha256()
    descriptor = path if isinstance(path, int) else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        offset = 0
        while limit is None or offset < limit:
            chunk = os.pread(
                descriptor, CHUNK if limit is None else min(CHUNK, limit - offset), offset
            )
            if not chunk:
                break
            hasher.update(chunk)
            offset += len(chunk)
    finally:
        if not isinstance(path, int):
            os.close(descriptor)
    return hasher


def hash_matches(full: str, prefix: str | None) -> bool:
    return prefix is None or full.startswith(prefix)


def partials(final: Path) -> list[Path]:
    """The partial downloads of `final` beside it, largest first."""
    try:
        names = os.listdir(final.parent)
    except OSError:
        return []
    found: list[tuple[int, Path]] = []
    for name in names:
        match = _PARTIAL.fullmatch(name)
        if match and match["name"] == final.name:
            with contextlib.suppress(OSError):
                path = final.parent / name
                found.append((os.lstat(path).st_size, path))
    return [path for _, path in sorted(found, key=lambda item: -item[0])]


def partial_bytes(final: Path) -> int | None:
    """The size of the largest partial download of `final` (None: there is none)."""
    for path in partials(final):
        with contextlib.suppress(OSError):
            return os.lstat(path).st_size
    return None


def open_locked(path: Path, *, create: bool) -> int | None:
    """Open `path` for writing and lock it; None when a live run holds it (or it is gone)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        descriptor = os.open(path, flags, 0o644)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(descriptor)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return descriptor


def claim_partial(final: Path) -> tuple[int, Path]:
    """A partial download of `final` that this run alone writes: the largest one no live run
    holds, taken over by renaming it to a new name of this run's, or else a new empty one.
    Returns its open, locked descriptor and its path."""
    for found in partials(final):
        probe = open_locked(found, create=False)
        if probe is None:
            continue  # a live run writes it
        os.close(probe)
        mine = new_partial_name(final)
        try:
            os.rename(found, mine)  # only one run can win this rename
        except FileNotFoundError:
            continue
        descriptor = open_locked(mine, create=False)
        if descriptor is not None:
            return descriptor, mine
    mine = new_partial_name(final)
    descriptor = open_locked(mine, create=True)
    assert descriptor is not None  # a new, exclusive name
    return descriptor, mine


def remove_abandoned_partials(final: Path) -> list[Path]:
    """Remove the partial downloads of `final` that no live run holds (once it is in place),
    and temporary records a killed run left (over an hour old: a record takes a moment)."""
    removed = []
    stale = re.compile(re.escape(record_path(final).name) + r"\.tmp-[0-9a-f]{8}")
    for name in os.listdir(final.parent):
        path = final.parent / name
        with contextlib.suppress(OSError):
            if stale.fullmatch(name) and time.time() - os.lstat(path).st_mtime > 3600:
                os.unlink(path)
                removed.append(path)
    for found in partials(final):
        descriptor = open_locked(found, create=False)
        if descriptor is None:
            continue
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(found)
                removed.append(found)
        finally:
            os.close(descriptor)
    return removed


def _sizes(paths: list[Path]) -> list[int]:
    sizes = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            sizes.append(os.lstat(path).st_size)
    return sizes


def wait_for_other_run(final: Path, sha256: str, url: str, stale: float = 30.0) -> bool:
    """Where locks do not hold (some network filesystems), another run may have taken over
    this run's partial file, which then holds the same bytes: wait until that run has put it
    in place (True), or until no partial file has grown for `stale` seconds (False)."""
    last: list[int] | None = None
    since = time.monotonic()
    while True:
        record = recorded(final)
        if record is not None:
            return record.sha256 == sha256
        sizes = _sizes(partials(final))
        if not sizes and final.is_file() and sha256_of(final).hexdigest() == sha256:
            write_record(final, sha256, url)  # it was renamed, not yet recorded
            return True
        if sizes != last:
            last, since = sizes, time.monotonic()
        elif time.monotonic() - since > stale:
            return False
        time.sleep(0.2)


def check_state(final: Path, prefix: str | None) -> tuple[str, int | None]:
    """`verified`, `unverified` (a file with no valid record), `partial` (with its bytes) or
    `missing`; reads no file content, so it is quick (what `status` shows)."""
    if recorded(final) is not None:
        return "verified", os.stat(final).st_size
    if final.is_file():
        record = read_record(final)
        return ("corrupt" if record is not None else "unverified"), os.stat(final).st_size
    size = partial_bytes(final)
    if size is not None:
        return "partial", size
    return "missing", None

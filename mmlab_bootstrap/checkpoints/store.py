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

Whatever else sits at these names (a FIFO, a device, a symlink, a folder, a record too large
to be one) is never read or followed: a record that is not a small regular file counts as no
record, a partial that is not a regular file is left where it is and the run makes its own
(`odd_files` names them for a warning). A checkpoint's own name must leave room for these
(`name_problem`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmlab_bootstrap.errors import redacted, shown
from mmlab_bootstrap.fs import (
    OLD,
    UNLOCKED,
    FileRefused,
    kind,
    owner_of,
    pattern_of,
    read_regular,
    replace_atomically,
    share_like_folder,
    sweep,
    temporary_beside,
)

CHUNK = 1 << 20
RECORD_LIMIT = 64 << 10  # a record is under 1 KiB; anything larger is not one of ours
NAME_MAX = 255  # bytes in one file name (Linux filesystems)
PARTIAL_TEMPORARY = ".{name}.part-{token}"  # a download in progress (see fs.temporaries)
_PARTIAL = pattern_of(PARTIAL_TEMPORARY)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The tool's own names beside a checkpoint: `.<file>.part-<hex>`, `.<file>.verified.json` and
# its temporary `.<file>.verified.json.tmp-<hex>` (the longest: what a name must leave room for)
_LONGEST_OWN = len(".") + len(".verified.json.tmp-") + 8
_OWN_ENDING = re.compile(r"(\.part-[0-9a-f]{8}|\.verified\.json|\.tmp-[0-9a-f]{8})\Z")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a checkpoint's file name in storage (None: it can): it must be
    one plain name, not start with `.` or end like the tool's own files beside it (so no
    metafile can name another model's partial or record), and leave room for their suffixes
    within the 255 bytes a file name may have."""
    if name in ("", ".", ".."):
        return "is empty" if not name else f"is {name!r}"
    if "/" in name:
        return "holds a '/'"
    if "\0" in name:
        return "holds a NUL byte"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
        return "holds a control character"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if name.startswith("."):
        return "starts with '.', as the tool's own files beside a checkpoint do"
    if _OWN_ENDING.search(name):
        return "ends like the tool's own files beside a checkpoint (.part-…, .verified.json)"
    if size + _LONGEST_OWN > NAME_MAX:
        return (
            f"is {size} bytes long: with the suffixes of its partial and record files it would"
            f" pass the {NAME_MAX}-byte limit of a file name (at most {NAME_MAX - _LONGEST_OWN})"
        )
    return None


RECORD_TEMPORARY = "{name}.tmp-{token}"  # a record being written (see remove_abandoned_partials)
RECORD_STALE = 3600  # seconds: a record takes a moment to write; one this old was abandoned


def record_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.verified.json")


def new_partial_name(final: Path) -> Path:
    return temporary_beside(final, PARTIAL_TEMPORARY)


@dataclass(frozen=True)
class Record:
    """What a verified file was: its full sha256, size and modification time."""

    sha256: str
    size: int
    mtime_ns: int
    url: str = ""


def read_record(final: Path) -> Record | None:
    """The record of `final`; None when there is none, or what is there is not a record this
    tool wrote (not a small regular file, or not of its shape): the file is hashed again."""
    try:
        text = read_regular(record_path(final), "", own=True, limit=RECORD_LIMIT)
        data: Any = json.loads(text or b"null")
    except (OSError, ValueError, FileRefused):
        return None
    if not isinstance(data, dict):
        return None
    sha256, size, mtime_ns, url = (data.get(k) for k in ("sha256", "size", "mtime_ns", "url"))
    if not (isinstance(sha256, str) and _SHA256.fullmatch(sha256) and isinstance(url, str)):
        return None
    if type(size) is not int or type(mtime_ns) is not int:  # (not a bool either)
        return None
    return Record(sha256, size, mtime_ns, url)


def odd_files(final: Path) -> list[str]:
    """What sits at the names of `final`'s record and partial files but is not a file this
    tool can use there (it is left alone: ignored, or replaced by a rename), for a warning."""
    found: list[str] = []
    record = record_path(final)
    with contextlib.suppress(OSError):
        mode = os.lstat(record)
        if not stat.S_ISREG(mode.st_mode):
            found.append(
                f"{shown(str(record))} is {kind(mode.st_mode)}, not a record this tool wrote;"
                " ignored (the checkpoint is hashed again)"
            )
        elif mode.st_size > RECORD_LIMIT:
            found.append(
                f"{shown(str(record))} holds {mode.st_size} bytes, more than a record this"
                f" tool writes ({RECORD_LIMIT} at most); ignored (the checkpoint is hashed again)"
            )
    for path, mode in _partial_names(final):
        if not stat.S_ISREG(mode.st_mode):
            found.append(
                f"{shown(str(path))} is {kind(mode.st_mode)}, not a partial download;"
                " left alone (not resumed)"
            )
        elif not os.access(path, os.R_OK | os.W_OK):
            found.append(
                f"{shown(str(path))} is a partial download of owner {owner_of(path) or '?'},"
                f" mode {stat.filemode(mode.st_mode)}, which this user may not write; left to"
                " its owner (not resumed: this run makes its own)"
            )
    return found


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
    replace_atomically(
        target,
        (text + "\n").encode(),
        template=RECORD_TEMPORARY,
        mode=0o644,
        prepare=lambda descriptor: share_like_folder(descriptor, target.parent),
    )
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


def _partial_names(final: Path) -> list[tuple[Path, os.stat_result]]:
    """Whatever sits beside `final` under one of its partial names (not followed)."""
    try:
        names = os.listdir(final.parent)
    except OSError:
        return []
    found: list[tuple[Path, os.stat_result]] = []
    for name in names:
        match = _PARTIAL.fullmatch(name)
        if match and match["name"] == final.name:
            with contextlib.suppress(OSError):
                path = final.parent / name
                found.append((path, os.lstat(path)))
    return found


def partials(final: Path) -> list[Path]:
    """The partial downloads of `final` beside it, largest first: regular files only (a
    symlink, FIFO or folder at such a name is never resumed; see `odd_files`)."""
    found = [(m.st_size, p) for p, m in _partial_names(final) if stat.S_ISREG(m.st_mode)]
    return [path for _, path in sorted(found, key=lambda item: -item[0])]


def partial_bytes(final: Path) -> int | None:
    """The size of the largest partial download of `final` (None: there is none)."""
    for path in partials(final):
        with contextlib.suppress(OSError):
            return os.lstat(path).st_size
    return None


def open_locked(path: Path, *, create: bool) -> int | None:
    """Open `path` for writing and lock it; None when a live run holds it, or it is gone, or
    this user may not write it, or it is not a regular file (never followed, never waited on:
    a FIFO opens at once). A new file is shared as its folder is (`share_like_folder`)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    flags |= os.O_CREAT | os.O_EXCL if create else 0
    try:
        descriptor = os.open(path, flags, 0o644)
    except FileNotFoundError:
        return None
    except PermissionError:
        if create:
            raise
        return None  # another user's, not shared with this one: left to its owner
    except OSError as error:  # a symlink, a folder, a device without a reader
        if not create and error.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENODEV):
            return None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        return None
    os.set_blocking(descriptor, True)
    if create:
        share_like_folder(descriptor, path.parent)
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
    folder, record = final.parent, record_path(final).name
    removed = sweep(folder, RECORD_TEMPORARY, rule=OLD, older_than=RECORD_STALE, name=record)
    return removed + sweep(folder, PARTIAL_TEMPORARY, rule=UNLOCKED, writable=True, name=final.name)


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
    if final.is_file():  # (a user's symlink to a checkpoint elsewhere counts)
        record = read_record(final)
        return ("corrupt" if record is not None else "unverified"), os.stat(final).st_size
    size = partial_bytes(final)
    if size is not None:
        return "partial", size
    return "missing", None

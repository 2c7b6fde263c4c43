"""The tool's temporary names, and what a killed run left under them: one maker, one sweep.

Every temporary file or folder the tool makes is named from a template of its caller
(`temporary_beside`), and found again by that very template (`leftovers`, `sweep`): each
caller keeps its own on-disk pattern byte for byte (users' disks hold what older versions
left), and no name the tool does not make is ever matched. A template's fields:

- `{name}`: the name of the file the temporary stands beside (any name, when sweeping);
- `{token}`: 8 random hex digits; `{token12}`: 12; `{scratch}`: 8 random hex digits, matched
  as any 8 of `[a-z0-9_]` (the names `tempfile` gave scratch folders before);
- `{pid}`, `{tid}`: this process and thread; `{ns}`: a monotonic clock in nanoseconds;
- `{run}`: 16 hex digits this run alone has; `{call}`: 8 hex digits, one more each call;
- `{host}`: this host's name;
- any other field: the caller's (`purpose="copy"`); when sweeping a literal, several
  alternatives (a tuple), or a regular expression (`re.compile`).

A leftover is removed only when it is provably abandoned, by the caller's rule: `UNLOCKED`
(no live process holds the `flock` its maker keeps on it while in use; never a symlink,
which holds no lock), `HELD` (the caller holds the lock every maker of such names holds:
the workspace lock, a lease lock), `DEAD` (its `{pid}`, of this `{host}` when the name has
one, no longer runs) or `OLD` (its age alone: older than `older_than` seconds, which applies
to the other rules too when given).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import functools
import itertools
import os
import re
import shutil
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

TEMPORARY = ".{name}.tmp-{token}"  # beside a file write_atomically replaces

RUN_TOKEN = os.urandom(8).hex()  # (as secrets.token_hex, without its imports)
"""Part of the `{run}` field: no other run, and no user, has it."""

_CALLS = itertools.count()

# What each field looks like in a name the tool made (matched by the sweeps).
_SHAPES = {
    "name": r".+",
    "token": r"[0-9a-f]{8}",
    "token12": r"[0-9a-f]{12}",
    "scratch": r"[a-z0-9_]{8}",
    "pid": r"[0-9]+",
    "tid": r"[0-9]+",
    "ns": r"[0-9]+",
    "run": r"[0-9a-f]{16}",
    "call": r"[0-9a-f]{8}",
    "host": r"[^/+]+",
}
_FIELD = re.compile(r"\{(\w+)\}")

Given = str | tuple[str, ...] | re.Pattern[str]


class Rule(enum.Enum):
    """When a leftover is provably abandoned (see the module's text)."""

    UNLOCKED = "no live process holds its flock"
    HELD = "the caller holds the lock its makers hold"
    DEAD = "the process named in it no longer runs"
    OLD = "it is older than a writer ever takes"


UNLOCKED, HELD, DEAD, OLD = Rule.UNLOCKED, Rule.HELD, Rule.DEAD, Rule.OLD


def _call() -> str:
    return f"{next(_CALLS) & 0xFFFFFFFF:08x}"


# How each field of a new name is made (only those its template names, once per name).
_MAKERS: dict[str, Callable[[], object]] = {
    "token": lambda: os.urandom(4).hex(),
    "token12": lambda: os.urandom(6).hex(),
    "scratch": lambda: os.urandom(4).hex(),
    "pid": os.getpid,
    "tid": threading.get_ident,
    "ns": time.monotonic_ns,
    "run": lambda: RUN_TOKEN,
    "call": _call,
    "host": socket.gethostname,
}


_NEEDED: dict[str, tuple[str, ...]] = {}  # a template's fields the tool makes, by template


def temporary_name(target: str, template: str, **given: object) -> str:
    """`temporary_beside` for a path given as a string (the copies' hot path)."""
    needed = _NEEDED.get(template)
    if needed is None:
        needed = _NEEDED[template] = tuple(
            field for field in dict.fromkeys(_FIELD.findall(template)) if field in _MAKERS
        )
    folder, slash, name = target.rpartition("/")
    for field in needed:
        if field not in given:
            given[field] = _MAKERS[field]()
    return f"{folder}{slash}{template.format(name=name, **given)}"


def temporary_beside(target: Path, template: str, **given: object) -> Path:
    """A temporary name beside `target`, from the caller's `template` (see the fields above),
    e.g. `.{name}.tmp-{token}`. The one maker of temporary names in the package."""
    return Path(temporary_name(os.fspath(target), template, **given))


def pattern_of(template: str, **given: Given) -> re.Pattern[str]:
    """The names `template` makes (with `given` fields fixed, see the module's text)."""
    return _pattern(template, tuple(sorted(given.items(), key=lambda item: item[0])))


@functools.lru_cache(maxsize=256)  # a sweep per folder of a big tree asks again and again
def _pattern(template: str, items: tuple[tuple[str, Given], ...]) -> re.Pattern[str]:
    given = dict(items)
    parts, at = [], 0
    for found in _FIELD.finditer(template):
        parts.append(re.escape(template[at : found.start()]))
        field = found[1]
        value = given.get(field)
        if isinstance(value, re.Pattern):
            shape = value.pattern
        elif isinstance(value, tuple):
            shape = "|".join(re.escape(item) for item in value)
        elif isinstance(value, str):
            shape = re.escape(value)
        else:
            shape = _SHAPES[field]  # (a field of the caller's must be given)
        parts.append(f"(?P<{field}>{shape})")
        at = found.end()
    parts.append(re.escape(template[at:]))
    return re.compile("".join(parts), re.ASCII | re.DOTALL)


def leftovers(folder: Path, template: str, **given: Given) -> list[Path]:
    """What sits in `folder` under a name `template` makes, sorted (only looked at: a
    planner's view; `sweep` removes)."""
    pattern = pattern_of(template, **given)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(folder / name for name in names if pattern.fullmatch(name))


def sweep(
    folder: Path,
    template: str,
    *,
    rule: Rule,
    files: bool = True,
    symlinks: bool = True,
    folders: bool = False,
    writable: bool = False,
    older_than: float | None = None,
    **given: Given,
) -> list[Path]:
    """Remove what killed runs left in `folder` under names `template` makes, when `rule`
    proves each abandoned (and it is older than `older_than` seconds, when given): regular
    files and symlinks (unless not `files`, `symlinks`), folders (with what they hold) with
    `folders`;
    never followed; with `writable` only what this user may write (another user's is left
    to its owner). Returns what it removed. The one leftover sweep of the package."""
    assert rule is not OLD or older_than is not None
    kinds = _Kinds(files, symlinks, folders, writable)
    pattern = pattern_of(template, **given)
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        found = pattern.fullmatch(name)
        if found is None:
            continue
        leftover = folder / name
        with contextlib.suppress(OSError):
            if _remove_if_abandoned(leftover, found, rule, kinds, older_than):
                removed.append(leftover)
    return removed


class _Kinds(NamedTuple):
    files: bool
    symlinks: bool
    folders: bool
    writable: bool


def _remove_if_abandoned(
    leftover: Path, found: re.Match[str], rule: Rule, kinds: _Kinds, older_than: float | None
) -> bool:
    status = os.lstat(leftover)
    folder = stat.S_ISDIR(status.st_mode)
    link = stat.S_ISLNK(status.st_mode)
    regular = kinds.files and stat.S_ISREG(status.st_mode)
    if not (regular or (kinds.symlinks and link) or (kinds.folders and folder)):
        return False
    if kinds.writable and not link and not os.access(leftover, os.W_OK):
        return False
    if older_than is not None and time.time() - status.st_mtime <= older_than:
        return False
    if rule is DEAD and not _gone(found):
        return False
    if rule is UNLOCKED:  # (a symlink holds no lock: it cannot be proven abandoned)
        return not link and _remove_unlocked(leftover, folder)
    _remove(leftover, folder)
    return True


def _remove(leftover: Path, folder: bool) -> None:
    if folder:
        shutil.rmtree(leftover)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(leftover)


def _remove_unlocked(leftover: Path, folder: bool) -> bool:
    """Remove `leftover` unless a live process holds its flock (checked on what is removed)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    descriptor = os.open(leftover, flags | (os.O_DIRECTORY if folder else 0))
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live run is using it
        opened = os.fstat(descriptor)
        now = os.lstat(leftover)
        if (opened.st_dev, opened.st_ino) != (now.st_dev, now.st_ino):
            return False
        _remove(leftover, folder)
        return True
    finally:
        os.close(descriptor)


def _gone(found: re.Match[str]) -> bool:
    """Whether the process a name names (its `{pid}`, on its `{host}`) no longer runs here."""
    fields = found.groupdict()
    if "host" in fields and fields["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(fields["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, OverflowError):
        return False
    return False


def remove_stale_temporaries(target: Path, template: str = TEMPORARY) -> list[Path]:
    """Remove the temporaries a killed replace of `target` left beside it (names `template`
    makes for this very file), when no live writer holds them (`replace_atomically` keeps
    its temporary locked until it is renamed into place)."""
    return sweep(target.parent, template, rule=UNLOCKED, name=target.name)


def hold(descriptor: int) -> None:
    """Lock a temporary this run made (`flock`) for as long as it lives, so that a sweep
    (`UNLOCKED`) leaves it alone. Where the filesystem refuses locks (an NFS mount whose lock
    service is down), it stays unlocked: the write goes on (a sweep's rule then cannot prove
    a leftover abandoned there, as it cannot lock it either)."""
    with contextlib.suppress(OSError):
        fcntl.flock(descriptor, fcntl.LOCK_EX)


@contextlib.contextmanager
def temporary_folder(parent: Path, template: str, **given: object) -> Iterator[Path]:
    """A new folder in `parent` named by `template`, locked (`flock`) while the block runs
    so that a sweep (`UNLOCKED`) leaves it alone, then removed with what it holds."""
    while True:
        path = temporary_beside(parent / "_", template, **given)
        try:
            path.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        hold(descriptor)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(descriptor)

"""Bounded reads of dataset folders: at most a few entries of a small folder, the first entry
of a large one, the first bytes of a file, and the symlinks among the entries read (dangling,
or leading outside).

Every read of doctor's dataset checks goes through one `Scan`: nothing it reads can stop the
report. An entry that cannot be read (permission denied, a symlink loop, a file where a folder
must be, a FIFO or device where a file must be, an I/O error) is one error finding naming the
entry at fault and why, and what lies under it is neither read nor called missing.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import NotRegularFile, kind, read_head
from mmlab_bootstrap.output import ERROR, WARNING, Finding

LIST_LIMIT = 1000  # entries read from one small folder (data/, a dataset's top)

FILE, FOLDER, MISSING, OTHER = "file", "folder", "missing", "other"


class Scan:
    """The reads of one `data` folder's checks, and the findings of what could not be read
    (each entry at fault once). Paths under `data` are named from its label, e.g.
    `mmdetection3d/data/kitti/training`."""

    def __init__(self, data: Path, label: str) -> None:
        self.data = data
        self.label = label
        self.findings: list[Finding] = []
        self.unreadable: list[dict[str, str]] = []
        self._reported: set[str] = set()

    def subject(self, path: Path) -> str:
        relative = os.path.relpath(path, self.data)
        if relative == os.curdir:
            return self.label
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return shown(str(path))
        return f"{self.label}/{relative}"

    def kind(self, path: Path, *, expected: str | None = None) -> str | None:
        """FILE, FOLDER, MISSING or OTHER (a FIFO, device or socket), symlinks followed; None
        when it cannot be told (reported). With `expected` (FILE or FOLDER), anything else
        that is there is reported too (and None)."""
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return MISSING  # also a dangling symlink: named where the links are listed
        except OSError as error:
            self.failed(path, error)
            return None
        if stat.S_ISREG(found.st_mode):
            what = FILE
        elif stat.S_ISDIR(found.st_mode):
            what = FOLDER
        else:
            what = OTHER
        if expected is not None and what != expected:
            self._wrong_kind(path, found.st_mode, expected)
            return None
        return what

    def is_file(self, path: Path) -> bool | None:
        """Whether a regular file is there (None: something else is, reported)."""
        what = self.kind(path, expected=FILE)
        return None if what is None else what == FILE

    def is_dir(self, path: Path) -> bool:
        """Whether a folder is there (nothing reported: for optional parts and entries)."""
        return self._quiet(path, stat.S_ISDIR)

    def is_regular(self, path: Path) -> bool:
        """Whether a regular file is there (nothing reported: for optional parts)."""
        return self._quiet(path, stat.S_ISREG)

    @staticmethod
    def _quiet(path: Path, test: Callable[[int], bool]) -> bool:
        try:
            return test(os.stat(path).st_mode)
        except OSError:
            return False

    def entries(self, folder: Path, limit: int = LIST_LIMIT) -> list[os.DirEntry[str]]:
        """At most `limit` entries of a folder (none when it is missing or not a folder; one
        that cannot be listed is reported)."""
        found: list[os.DirEntry[str]] = []
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    found.append(entry)
                    if len(found) >= limit:
                        break
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as error:
            self.failed(folder, error)
        return found

    def non_empty(self, folder: Path) -> bool | None:
        """Whether a folder holds anything: one entry read, never more (False: missing or
        empty; None: something else is there, or it cannot be listed; reported)."""
        what = self.kind(folder, expected=FOLDER)
        if what != FOLDER:
            return None if what is None else False
        try:
            with os.scandir(folder) as listing:
                return next(listing, None) is not None
        except OSError as error:
            self.failed(folder, error)
            return None

    def head(self, path: Path, limit: int) -> tuple[bytes, bool] | None:
        """The first `limit` bytes of a file and whether that is all of it (see `read_head`);
        None when it is missing or cannot be read (reported)."""
        try:
            return read_head(path, limit)
        except FileNotFoundError:
            return None
        except NotRegularFile as error:
            self._wrong_kind(path, error.mode, FILE)
        except OSError as error:
            self.failed(path, error)
        return None

    def failed(self, path: Path, error: OSError) -> None:
        """A read of `path` failed: the finding names the entry at fault (the folder that may
        not be entered, the file on the way where a folder must be), and why."""
        code = error.errno
        if code in (errno.EACCES, errno.EPERM):
            at = self._first(path, lambda p: os.path.isdir(p) and not os.access(p, os.X_OK))
            at = at or path
            real = Path(os.path.realpath(at))  # a link's own owner and mode do not matter
            leads = f"{shown(str(real))}, " if os.path.islink(at) else ""
            self._report(
                at,
                f"cannot be read: permission denied ({leads}{_owner(real)})",
                f"ask its owner to make it readable for you (e.g. chmod -R a+rX '{real}'),"
                " or run doctor as a user who can read it",
            )
        elif code == errno.ELOOP:
            at = self._first(path, lambda p: _errno(p) == errno.ELOOP) or path
            self._report(
                at,
                "cannot be read: a symlink loop (too many levels of symbolic links)",
                f"point the link at the data (ln -sfn REAL_PATH '{at}') or remove it",
            )
        elif code == errno.ENOTDIR:
            at = self._first(path, lambda p: _errno(p) is None and not os.path.isdir(p))
            if at is None:
                self._report(path, "cannot be read: a part of its path is not a folder", "")
            else:
                self._wrong_kind(at, os.stat(at).st_mode, FOLDER)
        else:
            self._report(
                path,
                f"cannot be read: {error.strerror or error}",
                "check the disk or the network mount it is on (dmesg), then look again",
            )

    def _wrong_kind(self, path: Path, mode: int, expected: str) -> None:
        wanted = "a regular file" if expected == FILE else "a folder"
        self._report(
            path,
            f"is {kind(mode)}, where {wanted} is expected",
            f"move it aside (mv '{path}' '{path}.old') and put {wanted} there",
        )

    def _first(self, path: Path, test: Callable[[Path], bool]) -> Path | None:
        """The first folder on the way from `data` down to `path` (or `path` itself) for
        which `test` holds."""
        try:
            parts = path.relative_to(self.data).parts
            start = self.data
        except ValueError:
            parts, start = path.parts[1:], Path(path.anchor)
        where = start
        for part in ("", *parts):
            where = where / part if part else where
            if test(where):
                return where
        return None

    def _report(self, path: Path, text: str, hint: str) -> None:
        if str(path) in self._reported:
            return
        self._reported.add(str(path))
        self.unreadable.append({"path": str(path), "problem": text})
        self.findings.append(Finding(ERROR, self.subject(path), text, hint))

    def symlink_findings(
        self,
        listed: list[os.DirEntry[str]],
        label: str,
        roots: tuple[str, ...],
        into: list[dict[str, Any]],
    ) -> list[Finding]:
        """A dangling symlink is an error; one leading outside the storage root (and outside
        the dataset's own folder, when that is a link already named) a warning; a loop or a
        link that cannot be followed is reported as unreadable."""
        findings = []
        for entry in listed:
            if not entry.is_symlink():
                continue
            path = Path(entry.path)
            subject = f"{label}/{entry.name}"
            try:
                destination = os.readlink(path)
            except OSError as error:
                self.failed(path, error)
                continue
            what = self.kind(path)
            if what is None:
                continue
            if what == MISSING:
                into.append({"path": str(path), "destination": destination, "problem": "dangling"})
                findings.append(
                    Finding(
                        ERROR,
                        subject,
                        f"dangling symlink to {shown(destination)}",
                        f"point it at the data (ln -sfn REAL_PATH '{path}') or remove it",
                    )
                )
                continue
            real = os.path.realpath(path)
            if all(os.path.commonpath([real, root]) != root for root in roots):
                into.append({"path": str(path), "destination": destination, "problem": "outside"})
                findings.append(
                    Finding(
                        WARNING,
                        subject,
                        f"symlink leads outside the storage root, to {shown(real)}",
                        f"mount this path too when you run in a container: {real}",
                    )
                )
        return findings


def _errno(path: Path) -> int | None:
    try:
        os.stat(path)
    except OSError as error:
        return error.errno
    return None


def _owner(path: Path) -> str:
    """`owner NAME, mode 0700`, as far as it can be told."""
    try:
        found = os.lstat(path)
    except OSError:
        return "its owner and mode cannot be seen"
    try:
        name = pwd.getpwuid(found.st_uid).pw_name
    except KeyError:
        name = str(found.st_uid)
    return f"owner {name}, mode {stat.S_IMODE(found.st_mode):04o}"

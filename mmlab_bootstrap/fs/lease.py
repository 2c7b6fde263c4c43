"""A lease lock that works across machines sharing a folder over NFS: one per repository of a
team mirror (`inv mirror`) and of the git cache (MMLAB_GIT_CACHE).

`flock` is not enough there (NFS locking may be off, or local to each client), so the lock is
a folder that appears by a rename, which is atomic on NFS too. It holds an `owner` file (host, pid,
start time, a random token) that a heartbeat thread touches every HEARTBEAT seconds while the
lock is held. A waiter breaks the lock when its owner is a dead process of this host, or when
the owner file has not been touched for LEASE seconds, measured with the file server's clock
(the modification time of a file the waiter has just touched in the shared folder), never
this machine's.

Breaking renames the lock folder to a unique name first, so that only one of several waiters
wins; the winner checks that it took the lock it judged stale (the token), puts it back when
not, and removes it. The lock is released in `finally`, so a Ctrl-C frees it too.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.fs.files import denied, make_folders, share_like_folder
from mmlab_bootstrap.fs.temporaries import DEAD, sweep, temporary_beside

HEARTBEAT = 10.0
LEASE = 120.0
POLL = 0.2
OWNER_FILE = "owner"
TOOL_FOLDER = ".mmlab-bootstrap"  # in a shared repository store: the locks and the clock files


class Owner(NamedTuple):
    """Who holds a lock, as written in its owner file."""

    host: str
    pid: int
    started: str  # the process's start time (in clock ticks since boot, from /proc)
    token: str

    def line(self) -> str:
        return f"{self.host} {self.pid} {self.started} {self.token}\n"


def _started(pid: int) -> str:
    """A process's start time, to tell it from a later process given the same pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "?"


def me() -> Owner:
    return Owner(socket.gethostname(), os.getpid(), _started(os.getpid()), secrets.token_hex(8))


def read_owner(folder: Path) -> tuple[Owner, float] | None:
    """The owner of a lock and its file's modification time; None while it is being made."""
    try:
        path = folder / OWNER_FILE
        text = path.read_text(errors="replace").split()
        touched = os.stat(path).st_mtime
        return Owner(text[0], int(text[1]), text[2], text[3]), touched
    except (OSError, IndexError, ValueError):
        return None


def _ownerless(folder: Path) -> tuple[Owner, float] | None:
    """A lock folder with no owner file (not one this tool made): its own time stands in."""
    try:
        return Owner("(unknown host)", 0, "?", ""), os.stat(folder).st_mtime
    except OSError:
        return None


def _dead_here(owner: Owner) -> bool:
    """Whether the owner is a process of this host that no longer runs."""
    if owner.host != socket.gethostname():
        return False
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _started(owner.pid) not in (owner.started, "?") and owner.started != "?"


def server_now(clock: Path) -> float:
    """The file server's time: touch a file of ours in the shared folder, read its mtime."""
    make_folders(clock.parent)
    with open(clock, "a") as made:
        share_like_folder(made.fileno(), clock.parent)
    os.utime(clock)  # no times given: set to the current time (on NFS: the server's)
    return os.stat(clock).st_mtime


LOCK_TEMPORARY = ".{kind}+{host}+{pid}+{owner}"
"""A lock folder being made, broken or released, in the locks folder (see fs.temporaries)."""


def remove_leftovers(locks: Path) -> list[Path]:
    """Remove the temporary folders (`.making+host+pid+token`, …) that killed runs of this
    host left in the locks folder."""
    return sweep(
        locks,
        LOCK_TEMPORARY,
        rule=DEAD,
        folders=True,
        kind=re.compile("[a-z]+"),
        owner=re.compile("[0-9a-f]+"),
    )


class LeaseLock:
    """The lock of one repository (`folder`); `clock`: this host's file in the shared folder."""

    def __init__(
        self,
        folder: Path,
        clock: Path,
        say: Callable[[str], None],
        waiting: Callable[[], None] = lambda: None,
    ) -> None:
        self.folder = folder
        self.clock = clock
        self.say = say
        self.waiting = waiting  # called at each look while waiting: it may raise, to give up
        self.owner = me()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block, waiting for (or breaking) another owner's."""
        self._acquire()
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            self._release()

    def _acquire(self) -> None:
        announced = False
        make_folders(self.folder.parent)
        remove_leftovers(self.folder.parent)
        while True:
            # The owner file is written first, in a folder of ours, which is then renamed to
            # the lock's name (atomic, on NFS too): a lock never exists without its owner.
            making = self._aside("making")
            making.mkdir()
            share_like_folder(making, making.parent)  # a teammate may break it when stale
            (making / OWNER_FILE).write_text(self.owner.line())
            try:
                os.rename(making, self.folder)
            except OSError:
                shutil.rmtree(making, ignore_errors=True)
            found = read_owner(self.folder) or _ownerless(self.folder)
            if found is None:
                continue  # released meanwhile: try again
            owner, touched = found
            if owner.token == self.owner.token:
                return  # ours (also when NFS reported a retried rename as failed)
            why = self._stale(owner, touched)
            if why is not None:
                self._break(owner, why)
                continue
            if not announced:
                self.say(f"waiting for {owner.host} pid {owner.pid}, which holds {self.folder}")
                announced = True
            self.waiting()
            time.sleep(POLL)

    def _aside(self, kind: str) -> Path:
        """A name in the locks folder for one of this process's own temporary folders."""
        owner = self.owner
        return temporary_beside(
            self.folder,
            LOCK_TEMPORARY,
            kind=kind,
            host=owner.host,
            pid=owner.pid,
            owner=owner.token,
        )

    def _stale(self, owner: Owner, touched: float) -> str | None:
        """Why the owner's lock may be broken, or None while it holds it."""
        if _dead_here(owner):
            return "no longer running"
        idle = server_now(self.clock) - touched
        return f"not renewed for {idle:.0f} s" if idle > LEASE else None

    def _break(self, judged: Owner, why: str) -> None:
        """Take the stale lock away: rename (only one breaker wins), check it is the one judged
        stale (else put it back), remove it."""
        aside = self._aside("broken")
        try:
            os.rename(self.folder, aside)
        except OSError:
            return  # another waiter broke it first
        found = read_owner(aside)
        if found is not None and found[0].token != judged.token:
            with contextlib.suppress(OSError):
                os.rename(aside, self.folder)  # a live owner's: put back
            return
        self.say(f"broke the lock of {judged.host} pid {judged.pid} ({why}): {self.folder}")
        shutil.rmtree(aside, ignore_errors=True)

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(self.folder / OWNER_FILE)

    def _release(self) -> None:
        found = read_owner(self.folder)
        if found is None or found[0].token != self.owner.token:
            return  # broken by another run meanwhile: not ours to remove
        aside = self._aside("released")
        with contextlib.suppress(OSError):
            os.rename(self.folder, aside)
            shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def holding(lock: LeaseLock, refusal: Callable[[OSError], Exception]) -> Iterator[None]:
    """Hold `lock` for the block; an OSError while taking it (a read-only folder, say) is
    raised as `refusal(error)`, the caller's error with its hint; a folder of another user's
    that refuses this one is named with its owner and mode (`fsutil.denied`)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock.held())
        except PermissionError as error:
            raise denied(error) from None
        except OSError as error:
            raise refusal(error) from None
        yield


class LockRoom(NamedTuple):
    """The tool's folder in a shared repository store (a team mirror's DEST, the git cache):
    `<store>/.mmlab-bootstrap/`, with a lease lock `locks/<name>` per repository, timed by
    this host's clock file `clock+<host>` (the host named as in the owner file)."""

    store: Path

    @property
    def folder(self) -> Path:
        return self.store / TOOL_FOLDER

    @property
    def clock(self) -> Path:
        return self.folder / f"clock+{socket.gethostname()}"

    def lock_folder(self, name: str) -> Path:
        return self.folder / "locks" / name

    def lease(
        self, name: str, say: Callable[[str], None], waiting: Callable[[], None] = lambda: None
    ) -> LeaseLock:
        """The lease lock `name` of this store (see LeaseLock)."""
        return LeaseLock(self.lock_folder(name), self.clock, say, waiting)

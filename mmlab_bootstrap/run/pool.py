"""Parallel work of a step: the one work pool of the package, and the signal that tells the
items still running to stop.

Who uses it: the submodules' fetch (`clone.fetch.submodules`: a tree walk, nested submodules
added as their parent is done, their commits added early by the parent's own worker), the
mirror walk (`mirror.walk`: a tree walk, every repository once) and the checkpoint downloads
(`checkpoints.apply`: a flat list), and python-env's import check beside the doctor's checks
(`pythonenv.build`: two items).
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WAKE = 1.0  # seconds: the longest a Ctrl-C can go unnoticed by the caller's thread


class Stopped(Exception):
    """The pass is being stopped (an interruption or an error elsewhere): start nothing new."""


@dataclass(frozen=True)
class _Ended(Generic[T, R]):
    """What a worker thread tells the caller's thread: its item ended, with a value or an
    exception."""

    index: int
    item: T
    value: R | None
    error: BaseException | None


class WorkPool(Generic[T, R]):
    """Runs `work(item)` for every item added, at most `jobs` at a time, each on a thread of its
    own; items start in the order they were added (a worker that adds an item its successors
    wait for can count on it having started before them).

    - A tree walk: `then(item, result)`, run in the caller's thread as each item ends (in the
      order they end), returns the items that one calls for; a running item may also `add`
      items itself.
    - The first exception `work` raises (or `then`) stops the pool: `stopping` is set, nothing
      new starts (what was waiting, or is added later, goes to `skipped`), the running items
      may notice it (`check` raises `Stopped`; a `Stopped` raised once the pool stops is not
      an error) and are waited for, then the exception is raised in the caller's thread.
    - A Ctrl-C (or any other non-`Exception`) in the caller's thread does the same, and more:
      it sets `interrupted` too, calls `on_interrupt`, and waits for the running items at most
      `grace` seconds (None: as long as they take) before it is raised again. The threads are
      daemons, so one stuck past `grace` never keeps the process alive.
    - Otherwise `run` returns every item with its result, in the order they were added.

    The caller's thread sleeps until an item ends or is added, and wakes up every `WAKE`
    seconds besides: a SIGINT that lands just before a lock wait begins is otherwise only
    seen when the wait ends (CPython re-checks signals only when the wait is interrupted).
    """

    def __init__(
        self,
        work: Callable[[T], R],
        jobs: int,
        *,
        then: Callable[[T, R], Iterable[T]] | None = None,
        on_interrupt: Callable[[], object] | None = None,
        grace: float | None = None,
        name: str = "work",
    ) -> None:
        if jobs < 1:
            raise ValueError(f"a work pool needs at least one worker, not {jobs}")
        self.work, self.jobs, self.then = work, jobs, then
        self.on_interrupt, self.grace, self.name = on_interrupt, grace, name
        self.stopping = threading.Event()  # an error or an interruption: start nothing new
        self.interrupted = threading.Event()  # an interruption: stop now
        self.skipped: list[T] = []  # added, never started (the pool stopped first)
        self._lock = threading.Lock()
        self._pending: collections.deque[tuple[int, T]] = collections.deque()
        self._added = 0
        self._ended: queue.SimpleQueue[_Ended[T, R] | None] = queue.SimpleQueue()  # None: added
        self._live: dict[int, tuple[T, threading.Thread]] = {}  # started, end not yet taken in
        self._results: dict[int, tuple[T, R]] = {}
        self._owner: int | None = None
        self._state = "new"  # "running", "ended"

    def add(self, item: T) -> None:
        """Add an item, from any thread; it starts after every item added before it, as soon
        as fewer than `jobs` run (never, once the pool stops: it is then in `skipped`)."""
        with self._lock:
            if self._state == "ended":
                raise RuntimeError(f"the {self.name} pool has ended: nothing can be added")
            if self.stopping.is_set():
                self.skipped.append(item)
                return
            self._pending.append((self._added, item))
            self._added += 1
        if threading.get_ident() != self._owner:
            self._ended.put(None)  # wake the caller's thread up, to start it

    def check(self) -> None:
        """For a running item: raise `Stopped` once the pool stops."""
        if self.stopping.is_set():
            raise Stopped

    def run(self, items: Iterable[T]) -> list[tuple[T, R]]:
        """Run `items` and every item added meanwhile; once only."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"the {self.name} pool runs once")
            self._state, self._owner = "running", threading.get_ident()
        try:
            for item in items:
                self.add(item)
            error = self._drive()
        except BaseException as problem:
            interrupted = not isinstance(problem, Exception)  # a Ctrl-C
            self._stop()
            try:
                if interrupted:
                    self.interrupted.set()
                    if self.on_interrupt is not None:
                        self.on_interrupt()
            finally:
                self._wait(self.grace if interrupted else None)
            raise
        finally:
            with self._lock:
                self._state = "ended"
        if error is not None:
            raise error
        return [self._results[index] for index in sorted(self._results)]

    def _drive(self) -> BaseException | None:
        """Start items while there is room, take in each end; returns the first error."""
        error: BaseException | None = None
        while True:
            self._start()
            if not self._live:
                return error
            try:
                ended = self._ended.get(timeout=WAKE)
            except queue.Empty:
                continue  # (a Ctrl-C that came just before the wait began is raised now)
            if ended is None:
                continue
            del self._live[ended.index]
            if ended.error is not None:
                if isinstance(ended.error, Stopped) and self.stopping.is_set():
                    continue  # it noticed the stop
                if error is None:
                    error = ended.error
                    self._stop()
                continue
            value: R = ended.value  # type: ignore[assignment]  # (None only with an error)
            self._results[ended.index] = (ended.item, value)
            if self.then is not None:
                try:
                    for item in self.then(ended.item, value):
                        self.add(item)
                except Exception as problem:
                    if error is None:
                        error = problem
                        self._stop()

    def _start(self) -> None:
        """Start waiting items, first added first, while fewer than `jobs` run."""
        while len(self._live) < self.jobs and not self.stopping.is_set():
            with self._lock:
                if not self._pending:
                    return
                index, item = self._pending[0]
                thread = threading.Thread(
                    target=self._one, args=(index, item), name=f"{self.name}-{index}", daemon=True
                )
                self._live[index] = (item, thread)
                self._pending.popleft()
            thread.start()

    def _one(self, index: int, item: T) -> None:
        """A worker thread: one item."""
        try:
            value = self.work(item)
        except BaseException as error:  # taken in by the caller's thread
            self._ended.put(_Ended(index, item, None, error))
        else:
            self._ended.put(_Ended(index, item, value, None))

    def _stop(self) -> None:
        """Start nothing new: what waits is skipped."""
        with self._lock:
            self.stopping.set()
            for index, item in self._pending:
                if index not in self._live:  # (a Ctrl-C between the two steps of `_start`)
                    self.skipped.append(item)
            self._pending.clear()

    def _wait(self, grace: float | None) -> None:
        """Wait for the running items to end, at most `grace` seconds in all."""
        deadline = None if grace is None else time.monotonic() + grace
        for _index, (item, thread) in sorted(self._live.items()):
            if thread.ident is None:  # never started (a Ctrl-C came first)
                self.skipped.append(item)
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)

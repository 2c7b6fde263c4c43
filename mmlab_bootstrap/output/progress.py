"""Progress of git's work, read from git's own `--progress` output.

On a terminal: one live line per repository being fetched (`[k/N] path: receiving objects
45% (450/1000), 12.3 MiB`), redrawn in place; a finished one leaves one line naming the URL
it came from. Piped: the finished lines, and a heartbeat line every MMLAB_HEARTBEAT seconds
(10 by default) while git works, so a log never goes quiet. git's raw output (temporary
folder names, `From …` lines) is never shown.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from mmlab_bootstrap.output.report import Reporter, silence

DEFAULT_HEARTBEAT = 10.0
_STEP = re.compile(
    r"(?:remote: )?(?P<what>[A-Z][a-z]+(?: [a-z]+)*):\s+(?P<pct>\d+)% \((?P<k>\d+)/(?P<n>\d+)\)"
    r"(?:, (?P<size>[\d.]+ (?:[KMGT]iB|bytes)))?(?P<rest>.*)"
)


def heartbeat_seconds() -> float:
    """Seconds between heartbeat lines when piped; MMLAB_HEARTBEAT overrides the default."""
    try:
        return max(0.05, float(os.environ.get("MMLAB_HEARTBEAT", DEFAULT_HEARTBEAT)))
    except ValueError:
        return DEFAULT_HEARTBEAT


@dataclass
class Task:
    """One repository being fetched."""

    number: int
    label: str
    url: str
    step: str = "starting"
    size: str = ""
    pending: str = ""

    def feed(self, text: str) -> None:
        """Take in git's stderr; remember the latest step and the size received."""
        *pieces, self.pending = re.split(r"[\r\n]", self.pending + text)
        for piece in pieces:
            found = _STEP.match(piece.strip())
            if found:
                what = found["what"].lower()
                self.step = f"{what} {found['pct']}% ({found['k']}/{found['n']})"
                if found["size"]:
                    self.size = found["size"]
                    self.step += f", {found['size']}"
                if what == "receiving objects" and "done" in found["rest"]:
                    self.step = f"received {found['n']} objects, {self.size}; checking out"
            elif piece.startswith("Cloning into"):
                self.step = "connecting"


class Heartbeat:
    """Calls `beat` every `every` seconds (MMLAB_HEARTBEAT unless given) on a daemon thread,
    from `start` (or entering it as a context manager) to `stop` (leaving it), which waits for
    a beat under way. The one heartbeat of the package: the board's, the downloads' and the
    mirror walk's lines."""

    def __init__(self, beat: Callable[[], object], every: float | None = None) -> None:
        self.beat = beat
        self.every = heartbeat_seconds() if every is None else every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    __enter__ = start

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()


class Board:
    """Shows the tasks of one phase; use it as a context manager around the phase."""

    def __init__(self, report: Reporter, *, live: bool, stream: TextIO | None = None) -> None:
        self.report = report
        self.live = live
        self.stream = stream if stream is not None else sys.stderr
        self.heartbeat = heartbeat_seconds()
        self.active: dict[str, Task] = {}
        self.count = 0  # tasks started
        self.total = 0  # tasks expected so far (nested submodules add to it level by level)
        self._lock = threading.RLock()
        self._drawn = 0
        self._last_draw = 0.0
        self._started = time.monotonic()
        self._heart: Heartbeat | None = None
        self._saying = False
        self._around: Callable[[Callable[[], object]], None] | None = None

    def __enter__(self) -> Board:
        if not self.live:
            self._heart = Heartbeat(self._beat, self.heartbeat).start()
        else:  # any line the report prints meanwhile is printed whole above the live lines
            self._around, self.report.around = self.report.around, self.say
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._heart is not None:
            self._heart.stop()
        with self._lock:
            self._clear()
            if self.report.around == self.say:
                self.report.around = self._around

    def expect(self, count: int) -> None:
        """`count` more tasks will be added."""
        with self._lock:
            self.total += count

    def add(self, label: str, url: str) -> None:
        """A repository starts being fetched."""
        with self._lock:
            self.count += 1
            self.active[label] = Task(self.count, label, url)
            self._draw(force=True)

    def watcher(self, label: str) -> Callable[[str], None]:
        """What to hand git's stderr to for this task."""

        def watch(text: str) -> None:
            with self._lock:
                task = self.active.get(label)
                if task is not None:
                    task.feed(text)
                    self._draw()

        return watch

    def finish(self, label: str, ok: bool) -> None:
        """A task ended; a successful one leaves a line naming where it came from."""
        with self._lock:
            task = self.active.pop(label, None)
            if task is not None and ok:
                size = f" ({task.size})" if task.size else ""
                self.say(
                    lambda: self.report.info(f"{self._tag(task)} {label} from {task.url}{size}")
                )
            self._draw(force=True)

    def say(self, show: Callable[[], object]) -> None:
        """Print something (a warning) without breaking the live lines."""
        with self._lock:
            if self._saying:  # already printing around the live lines
                show()
                return
            self._saying = True
            try:
                self._clear()
                show()
                self._draw(force=True)
            finally:
                self._saying = False

    def _tag(self, task: Task) -> str:
        return f"[{task.number}/{max(self.total, self.count)}]"

    def _lines(self) -> list[str]:
        return [f"{self._tag(t)} {t.label}: {t.step}" for t in self.active.values()]

    def _draw(self, force: bool = False) -> None:
        if not self.live or (not force and time.monotonic() - self._last_draw < 0.1):
            return
        width = max(20, shutil.get_terminal_size().columns - 1)
        text = f"\x1b[{self._drawn}F" if self._drawn else ""
        lines = self._lines()
        for line in lines:
            text += f"\x1b[2K{line[:width]}\n"
        self._write(text + "\x1b[J")
        self._drawn, self._last_draw = len(lines), time.monotonic()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:  # the terminal went away: the work goes on
            silence(self.stream)
            self.live = False

    def _clear(self) -> None:
        if self.live and self._drawn:
            self._write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _beat(self) -> None:
        with self._lock:
            if self.active:
                seconds = time.monotonic() - self._started
                steps = "; ".join(line for line in self._lines())
                self.report.info(f"… still working ({seconds:.0f} s): {steps}")

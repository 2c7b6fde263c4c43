"""Progress of checkpoint downloads: on a terminal one tqdm bar per file (size, speed, ETA)
and a total; piped, one line per file started and finished, and a heartbeat line at least
every MMLAB_HEARTBEAT seconds (10 by default) while anything downloads. A download waiting
(for an answer that has not come, or between tries) is in the heartbeat too, on a terminal
as well: no wait is silent."""

from __future__ import annotations

import functools
import shutil
import sys
import threading
import time
from types import TracebackType
from typing import Any

from mmlab_bootstrap.output import Heartbeat, Reporter, heartbeat_seconds, human_size, wants_color


@functools.cache
def _bar_class() -> Any:
    """tqdm's bar, its amounts written by `human_size` (tqdm's own would say `MB` for MiB)."""
    # startup: tqdm only when bars are shown
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        amount = ""

        @property
        def format_dict(self) -> dict[str, Any]:
            found: dict[str, Any] = super().format_dict
            found["amount"] = self.amount
            return found

    return Bar


_SHAPES = ("{desc}: {amount}", "{desc}: {percentage:3.0f}%|{bar}| {amount}")  # no total, total


def _bar(desc: str, total: int | None, have: int, position: int) -> Any:
    bar = _bar_class()(
        total=total, initial=have, desc=desc, position=position, leave=False,
        file=sys.stderr, ncols=_width(), nrows=_height(), bar_format=_SHAPES[bool(total)],
    )  # fmt: skip
    bar.since = (have, time.monotonic())
    _describe(bar)
    return bar


def _describe(bar: Any) -> None:
    """`1.2 MiB of 4.0 GiB, 3.1 MiB/s` on the bar (the rate since it started)."""
    start, started = bar.since
    seconds = time.monotonic() - started
    rate = f", {human_size((bar.n - start) / seconds)}/s" if seconds > 0.5 else ""
    of = f" of {human_size(bar.total)}" if bar.total else ""
    bar.amount = f"{human_size(bar.n)}{of}{rate}"
    bar.bar_format = _SHAPES[bool(bar.total)]  # the total's grows from 0 as files start


def _width() -> int:
    """The terminal's width (80 where it reports none, as a new pseudo-terminal does)."""
    return shutil.get_terminal_size().columns or 80


def _height() -> int:
    """The terminal's height (24 where it reports none): tqdm hides bars below it."""
    return shutil.get_terminal_size().lines or 24


class Downloads:
    """Shows the downloads of one run; use it as a context manager around them."""

    def __init__(self, report: Reporter, files: int, *, live: bool | None = None) -> None:
        self.report = report
        self.files = files
        self.live = wants_color(sys.stderr) if live is None else live
        self.heartbeat = heartbeat_seconds()
        self._lock = threading.RLock()
        self._bars: dict[str, Any] = {}
        self._sizes: dict[str, tuple[int, int | None]] = {}  # label: (have, total)
        self._waits: dict[str, tuple[str, float]] = {}  # label: (what it awaits, since)
        self._numbers: dict[str, int] = {}
        self._total: Any = None
        self._heart: Heartbeat | None = None
        self._started = time.monotonic()
        self._writing = False
        self._around: Any = None

    def __enter__(self) -> Downloads:
        if self.live:  # any line the report prints meanwhile is printed above the bars
            self._around, self.report.around = self.report.around, self._write
            self._total = _bar("total", 0, 0, 0)
        # the heartbeat names downloads that wait for an answer (live or not), and piped
        # how far each other one is
        self._heart = Heartbeat(self._beat, self.heartbeat).start()
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
            for bar in self._bars.values():
                bar.close()
            if self._total is not None:
                self._total.close()
            if self.report.around == self._write:
                self.report.around = self._around

    def waiting(self, label: str, what: str) -> None:
        """A download waits (`what`: for an answer from HOST, N s before trying again) until
        its next `start`."""
        with self._lock:
            self._waits[label] = (what, time.monotonic())

    def start(self, label: str, url: str, total: int | None, have: int) -> None:
        with self._lock:
            self._waits.pop(label, None)
            number = self._numbers.setdefault(label, len(self._numbers) + 1)
            self._sizes[label] = (have, total)
            resuming = f", resuming at {human_size(have)}" if have else ""
            of = f" ({human_size(total)}{resuming})" if total is not None else resuming
            if not self.live:
                self.report.info(f"[{number}/{self.files}] downloading {label} from {url}{of}")
                return
            old = self._bars.pop(label, None)
            if old is not None:
                old.close()
            self._bars[label] = _bar(label.split(":", 1)[-1][:32], total, have, number)
            if self._total is not None:
                self._total.total = sum(t or h for h, t in self._sizes.values())
                self._total.update(have)
                _describe(self._total)
                self._total.refresh()

    def advance(self, label: str, count: int) -> None:
        with self._lock:
            have, total = self._sizes.get(label, (0, None))
            self._sizes[label] = (have + count, total)
            bar = self._bars.get(label)
            if bar is not None:
                _describe(bar)
                _describe(self._total)
                bar.update(count)
                self._total.update(count)

    def note(self, text: str) -> None:
        with self._lock:
            self._write(lambda: self.report.info(text))

    def finished(self, label: str, line: str) -> None:
        """A file is verified and in place."""
        with self._lock:
            self._sizes.pop(label, None)
            self._waits.pop(label, None)
            bar = self._bars.pop(label, None)
            if bar is not None:
                bar.close()
            self._write(lambda: self.report.done(line))

    def failed(self, label: str) -> None:
        """A download ended in an error (reported once the others are done): it is no longer
        waited for, so no heartbeat names it any more."""
        with self._lock:
            self._sizes.pop(label, None)
            self._waits.pop(label, None)
            bar = self._bars.pop(label, None)
            if bar is not None:
                bar.close()

    def _write(self, show: Any) -> None:
        with self._lock:
            if not self.live or self._writing:  # not live, or already around the bars
                show()
                return
            # startup: tqdm only when bars are shown
            from tqdm import tqdm

            self._writing = True
            try:
                with tqdm.external_write_mode(file=sys.stderr):
                    show()
            finally:
                self._writing = False

    def _beat(self) -> None:
        """Every `heartbeat` seconds, a line naming each download that waits and (piped; a
        terminal has its bars) how far each other one is."""
        with self._lock:
            now = time.monotonic()
            parts = [
                f"{label} {what} ({now - since:.0f} s)"
                for label, (what, since) in self._waits.items()
            ]
            if not self.live:
                parts += [
                    f"{label} {human_size(have)}" + (f" of {human_size(total)}" if total else "")
                    for label, (have, total) in self._sizes.items()
                    if label not in self._waits and (total is None or have < total)
                ]
            if parts:
                line = f"… still downloading ({now - self._started:.0f} s): {'; '.join(parts)}"
                self._write(lambda line=line: self.report.info(line))

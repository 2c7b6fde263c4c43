"""Running a program whose output is read from outside the tool's own code (the training
interpreter, `nvcc`): with a time limit and a byte cap, in a process group of its own that is
killed, with everything it started, past either limit and once the program has ended. A wait
is never silent: `say` gets a line every MMLAB_HEARTBEAT seconds while the program runs."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mmlab_bootstrap.output import heartbeat_seconds

POLL = 0.05  # seconds between looks at whether the program has ended while its pipes are open
FIRST_POLL = 0.0005  # the first look once its pipes are closed (doubled up to POLL)
CHUNK = 65536


@dataclass(frozen=True)
class Ran:
    """What a program printed (at most the cap, both streams together) and how it ended:
    `code` is its exit status (negative: the signal), None when it was stopped; `stopped` says
    why it was stopped (the limit it went past), None when it ended by itself."""

    code: int | None
    out: bytes
    err: bytes
    stopped: str | None

    @property
    def flooded(self) -> bool:
        """Stopped for printing more than the cap (else: for the time, or it ended)."""
        return self.stopped is not None and self.stopped.startswith("it printed more")


def run_bounded(
    command: list[str],
    *,
    seconds: float,
    max_bytes: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    say: Callable[[str], None] | None = None,
) -> Ran:
    """Run `command` (no stdin) and read its stdout and stderr until it ends, for at most
    `seconds` and `max_bytes`. Whatever is left of its process group is killed at the end:
    children that keep a pipe open never hold the reader. An OSError when it cannot start.
    While it runs, `say` (when given) gets a `… still waiting` line every heartbeat."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,  # its own process group: killed as one
    )
    assert process.stdout is not None and process.stderr is not None
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    read = {out_fd: bytearray(), err_fd: bytearray()}
    total = 0
    stopped: str | None = None
    ended = False
    started = time.monotonic()
    deadline = started + seconds
    every = heartbeat_seconds()
    beat = started + every
    try:
        with selectors.DefaultSelector() as selector:
            for descriptor in read:
                os.set_blocking(descriptor, False)
                selector.register(descriptor, selectors.EVENT_READ)
            while selector.get_map():
                if not ended and _ended(process.pid):
                    ended = True
                    _kill_group(process.pid)  # what it left running holds the pipes open
                now = time.monotonic()
                if say is not None and not ended and now >= beat:
                    say(
                        f"… still waiting for {command[0]} ({now - started:.0f} s;"
                        f" stopped at {seconds:g} s)"
                    )
                    beat = now + every
                remaining = deadline - now
                if remaining <= 0:
                    if not ended:
                        stopped = f"it did not finish within {seconds:g} s"
                    break
                for key, _ in selector.select(min(remaining, POLL)):
                    try:
                        chunk = os.read(key.fd, CHUNK)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        selector.unregister(key.fd)
                        continue
                    read[key.fd] += chunk[: max(0, max_bytes - total)]
                    total += len(chunk)
                    if total > max_bytes:
                        stopped = f"it printed more than {max_bytes} bytes"
                        break
                if stopped:
                    break
        pause = FIRST_POLL
        while not stopped and not ended:  # its pipes are closed: it is ending, or should be
            ended = _ended(process.pid)
            remaining = deadline - time.monotonic()
            if not ended and remaining <= 0:
                stopped = f"it did not finish within {seconds:g} s"
            elif not ended:
                # a program that closed its pipes by exiting is gone within a millisecond:
                # look again soon, then less often (each call would otherwise wait up to POLL)
                time.sleep(min(remaining, pause))
                pause = min(POLL, pause * 2)
    finally:
        _kill_group(process.pid)
        process.wait()
        process.stdout.close()
        process.stderr.close()
    code = None if stopped else process.returncode
    return Ran(code, bytes(read[out_fd]), bytes(read[err_fd]), stopped)


def _ended(pid: int) -> bool:
    """Whether the program has ended, without reaping it (its pid, the group's id, stays
    taken until `wait`, so the group kill can never reach another process)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)

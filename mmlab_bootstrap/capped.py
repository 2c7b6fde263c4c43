"""A child process asked for a short answer, bounded in time and in output: at most `limit`
bytes of its stdout are kept, stderr is dropped, and a child still running at the deadline,
or writing more than `limit` bytes, is killed (with the children it started)."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    code: int | None  # None: killed (at the deadline, or for writing too much)
    out: bytes  # the first `limit` bytes of stdout
    cut: bool  # killed for writing more than `limit` bytes


def capped_run(
    argv: Sequence[str],
    *,
    timeout: float,
    limit: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Answer:
    """Run `argv`; raises OSError when it cannot be started."""
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,  # its own children go with it when killed
    )
    assert process.stdout is not None
    kept = bytearray()
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(process)
                return Answer(None, bytes(kept), False)
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            room = limit - len(kept)
            kept += chunk[: max(room, 0)]
            if len(chunk) > room:  # more than a short answer: no answer
                _kill(process)
                return Answer(None, bytes(kept), True)
    process.stdout.close()
    try:
        code = process.wait(max(deadline - time.monotonic(), 0.01))
    except subprocess.TimeoutExpired:
        _kill(process)
        return Answer(None, bytes(kept), False)
    return Answer(code, bytes(kept), False)


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, 9)
    except OSError:
        process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()

"""The `mmlab-bootstrap` console script: the same tasks, with the current folder as workspace."""

from __future__ import annotations

import signal
import sys
from types import FrameType

# Importing invoke and the tasks takes a noticeable time. A Ctrl-C then is only noted (raised
# inside the import machinery it would print a traceback), and ends the program right after.
_interrupted: list[int] = []


def _note(signum: int, _: FrameType | None) -> None:
    _interrupted.append(signum)


_previous = signal.signal(signal.SIGINT, _note)
try:
    from invoke.program import Program

    from . import __version__
    from .tasks import namespace
finally:
    signal.signal(signal.SIGINT, _previous)
if _interrupted:
    sys.stderr.write(
        "error: interrupted\nhint: run the same command again: it finishes what was started\n"
    )
    raise SystemExit(130)

program = Program(
    namespace=namespace(root=None, program="mmlab-bootstrap"),
    version=__version__,
    name="mmlab-bootstrap",
    binary="mmlab-bootstrap",
    binary_names=["mmlab-bootstrap"],
)

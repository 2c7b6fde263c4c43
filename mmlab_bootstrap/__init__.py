"""mmlab-bootstrap: set up an OpenMMLab workspace safely and repeatably."""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

__version__ = "0.1.0"

# A Ctrl-C while the console script imports the package, invoke and the tasks is only noted
# here (raised inside the import machinery it would print a traceback); `cli.program` ends
# the program once they are imported. Held from this package's first lines on, before any
# of its imports, so no moment of the start is left uncovered.
INTERRUPTED: list[int] = []
_held: list[Any] = []  # the handler to put back


def _note(signum: int, _frame: FrameType | None) -> None:
    INTERRUPTED.append(signum)


def hold_interrupts() -> None:
    """From now until `release_interrupts`, a Ctrl-C is only noted in INTERRUPTED."""
    if not _held:
        _held.append(signal.signal(signal.SIGINT, _note))


def release_interrupts() -> bool:
    """Ctrl-C acts as before again; whether one came while it was held."""
    if _held:
        signal.signal(signal.SIGINT, _held.pop())
    return bool(INTERRUPTED)


if sys.argv and os.path.basename(sys.argv[0]) == "mmlab-bootstrap":
    hold_interrupts()

from mmlab_bootstrap.output.report import reopen_closed_streams  # noqa: E402 (after the hold)

# Before any file is opened: a closed standard stream gets /dev/null (see the function).
reopen_closed_streams()

"""mmlab-bootstrap: set up an OpenMMLab workspace safely and repeatably.

This module is the start of every process of the tool and imports none of its packages:
Ctrl-C held while the console script starts, closed standard streams given /dev/null, and
`lazy_surface`, which every subpackage's `__init__` uses to import its names on first use.
"""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable
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


def lazy_surface(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of a subpackage's declared surface (PEP 562): a name of `where`
    (name -> module of the package) is imported from its module on first use, so that
    importing the package costs nothing at start-up. Defined here, in the package every
    import of the tool passes through first, so that sharing it costs no import."""

    def attribute(name: str) -> Any:
        if name in where:
            module = f"{package}.{where[name]}"
            __import__(module)
            return getattr(sys.modules[module], name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return attribute


if sys.argv and os.path.basename(sys.argv[0]) == "mmlab-bootstrap":
    hold_interrupts()


_STANDARD = ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w"))


def reopen_closed_streams() -> None:
    """Give a closed standard stream (`inv bootstrap 2>&-`) /dev/null, as git does.

    Called once, when the package is first imported (before it opens any file): otherwise the
    next file opened (the workspace lock) would get descriptor 2 and take the output, and
    `sys.stderr` would be None. A stream Python found closed at start is set anew.
    """
    for descriptor, name, mode in _STANDARD:
        try:
            os.fstat(descriptor)
        except OSError:  # closed: the lowest free descriptor is this one
            null = os.open(os.devnull, os.O_RDWR)
            if null != descriptor:
                os.dup2(null, descriptor)
                os.close(null)
        if getattr(sys, name) is None:
            # Python found it closed at start, but something has since taken the descriptor:
            # leave that alone and write nowhere.
            taken = not os.path.samestat(os.fstat(descriptor), os.stat(os.devnull))
            target: int | str = os.devnull if taken else descriptor
            stream = open(target, mode, closefd=taken, errors="backslashreplace")  # noqa: SIM115
            setattr(sys, name, stream)


# Before any file is opened: a closed standard stream gets /dev/null (see the function).
reopen_closed_streams()

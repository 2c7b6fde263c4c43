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
    from invoke.parser.argument import Argument
    from invoke.program import Program
    from invoke.vendor.lexicon import Lexicon

    from . import __version__
    from .tasks import namespace
finally:
    signal.signal(signal.SIGINT, _previous)
if _interrupted:
    sys.stderr.write("error: interrupted\nhint: nothing was done yet: run the same command again\n")
    raise SystemExit(130)

# invoke's core flags that mean something here; the others (`--pty`, `--echo`,
# `--prompt-for-sudo-password`, …) are about running shell commands, which no task does.
CORE_FLAGS = ("complete", "debug", "dry", "help", "list", "print-completion-script", "version")
CORE_HELP = {
    "debug": "show invoke's debug log, and the full traceback of an error (for a bug report)",
    "dry": "show every change, make none",
}


class BootstrapProgram(Program):
    """invoke's `Program`, with only the core flags that apply to this tool."""

    def core_args(self) -> list[Argument]:
        kept = [arg for arg in super().core_args() if arg.name in CORE_FLAGS]
        for arg in kept:
            arg.help = CORE_HELP.get(str(arg.name), arg.help)
        return kept

    @property
    def args(self) -> Lexicon:
        """The parsed core flags, plus the left-out ones at their defaults (invoke reads them)."""
        args: Lexicon = super().args
        for arg in super().core_args():
            if arg.name not in args:
                args[arg.name] = arg
        return args


program = BootstrapProgram(
    namespace=namespace(root=None, program="mmlab-bootstrap"),
    version=__version__,
    name="mmlab-bootstrap",
    binary="mmlab-bootstrap",
    binary_names=["mmlab-bootstrap"],
)

"""One line per action; on a terminal green done, dim unchanged, yellow warning, red error."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from mmlab_bootstrap.errors import escaped, redacted

# Styles by name; their codes come from colorama the first time a line is colored (importing
# it costs more than the rest of `inv --list`, and output that is not a terminal needs none).
_GREEN, _YELLOW, _RED, _CYAN, _DIM = "GREEN", "YELLOW", "RED", "CYAN", "DIM"


@functools.cache
def _codes() -> dict[str, str]:
    # startup: colorama only on a terminal
    import colorama

    colorama.just_fix_windows_console()
    fore, style = colorama.Fore, colorama.Style
    return {
        _GREEN: fore.GREEN,
        _YELLOW: fore.YELLOW,
        _RED: fore.RED,
        _CYAN: fore.CYAN,
        _DIM: style.DIM,
        "RESET": style.RESET_ALL,
    }


# Hints and instructions are written as `inv TASK …`; they are shown with the command the user
# actually ran (`mmlab-bootstrap TASK …` for the console script).
TASKS = (
    "env",
    "clone",
    "layout",
    "link-checkpoints",
    "link-data",
    "unlink",
    "bootstrap",
    "status",
    "fetch-checkpoints",
    "doctor",
    "mirror",
)
_INV_TASK = r"(?<![\w./'\\-])inv (?=(?:" + "|".join(TASKS) + r")\b)"


def as_run(text: str, program: str) -> str:
    """`inv TASK` in an instruction, spelled with the program the user ran."""
    return text if program == "inv" else re.sub(_INV_TASK, f"{program} ", text)


def silence(stream: TextIO) -> None:
    """Send what is still written to a closed pipe (`inv status | head -1`) nowhere.

    The work goes on: output that can no longer be read never stops or half-does a change.
    """
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)


def quiet_broken_pipe() -> None:
    """Let a closed pipe end invoke's own output (`inv --list | head`) quietly, no traceback.

    Installed once, when the tasks are loaded; the tasks' own output never raises it (see
    `write_line`).
    """
    previous = sys.excepthook
    if getattr(previous, "quiet_broken_pipe", False):
        return

    def hook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        if issubclass(kind, BrokenPipeError):
            silence(sys.stdout)
            silence(sys.stderr)
            return
        previous(kind, error, trace)

    hook.quiet_broken_pipe = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def write_line(stream: TextIO, text: str) -> bool:
    """Print one line (or one JSON document), never with a URL's credential in it (see
    `redacted`); False (and the stream silenced) when its reader has gone away."""
    try:
        print(redacted(text), file=stream, flush=True)
    except BrokenPipeError:
        silence(stream)
        return False
    return True


def wants_color(stream: TextIO) -> bool:
    """Whether `stream` gets colors and cursor movement (live progress redrawn in place): the
    one place this is decided. Only on a terminal that can show them: never when NO_COLOR is
    set (https://no-color.org), nor for TERM=dumb (Emacs' shell, some CI consoles), nor when
    the stream is not a terminal. Otherwise output is plain lines."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "").strip() == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed stream
        return False


class Reporter:
    """Prints what the tool does; errors and warnings go to stderr."""

    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, *, program: str = "inv"
    ) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.program = program  # the command the user ran, named in hints
        self.hide_unchanged = False  # bootstrap sums a step's unchanged lines up in one
        self.warned: set[str] = set()  # each warning once a run (steps may find the same)
        # While a live progress display runs, every line goes through it (printed whole above
        # its lines, which are then drawn again below).
        self.around: Callable[[Callable[[], object]], None] | None = None

    def _print(self, stream: TextIO, style: str, text: str, *, instruction: bool = False) -> None:
        # One line per thing, whatever names it holds: a newline, a terminal escape or a
        # byte that is not UTF-8 in a file name is shown escaped (`\n`, `\x1b`, `\xff`).
        text = escaped(text)
        if instruction:  # may name a command to run
            text = as_run(text, self.program)
        if style and wants_color(stream):
            codes = _codes()
            text = f"{codes[style]}{text}{codes['RESET']}"
        if self.around is not None:
            self.around(lambda: write_line(stream, text))
        else:
            write_line(stream, text)

    def done(self, text: str) -> None:
        """Something was changed."""
        self._print(self.out, _GREEN, text)

    def unchanged(self, text: str, *, always: bool = False) -> None:
        """Something was already as wanted."""
        if always or not self.hide_unchanged:
            self._print(self.out, _DIM, text)

    def would(self, text: str) -> None:
        """What a real run would change (under --dry)."""
        self._print(self.out, _CYAN, f"would {text}")

    def info(self, text: str) -> None:
        """Plain information."""
        self._print(self.out, "", text, instruction=True)

    def refused(self, text: str) -> None:
        """A location or item the tool would not touch."""
        self._print(self.out, _RED, f"refused {text}")

    def problem(self, text: str) -> None:
        """Something found wrong (by `status`)."""
        self._print(self.out, _RED, text, instruction=True)

    def note(self, text: str) -> None:
        """Something the user may want to know; nothing is wrong (on stderr, like warnings,
        so that a task's output stays what it prints)."""
        self._print(self.err, "", f"note: {text}", instruction=True)

    def warn(self, text: str) -> None:
        """Something the user should look at; nothing failed. Said once a run."""
        if text in self.warned:
            return
        self.warned.add(text)
        self._print(self.err, _YELLOW, f"warning: {text}", instruction=True)

    def error(self, message: str, hint: str) -> None:
        """One line of what is wrong, one line of what fixes it."""
        self._print(self.err, _RED, f"error: {message}")
        self._print(self.err, "", f"hint: {hint}", instruction=True)

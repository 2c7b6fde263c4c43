"""One line per action; on a terminal green done, dim unchanged, yellow warning, red error."""

from __future__ import annotations

import os
import sys
from typing import TextIO

import colorama

from .errors import escaped

colorama.just_fix_windows_console()

_GREEN = colorama.Fore.GREEN
_YELLOW = colorama.Fore.YELLOW
_RED = colorama.Fore.RED
_CYAN = colorama.Fore.CYAN
_DIM = colorama.Style.DIM
_RESET = colorama.Style.RESET_ALL


def wants_color(stream: TextIO) -> bool:
    """Color only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Reporter:
    """Prints what the tool does; errors and warnings go to stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.changes = 0  # done, would and refused lines so far
        self.hide_unchanged = False  # bootstrap sums a step's unchanged lines up in one

    def _print(self, stream: TextIO, style: str, text: str) -> None:
        # One line per thing, whatever names it holds: a newline, a terminal escape or a
        # byte that is not UTF-8 in a file name is shown escaped (`\n`, `\x1b`, `\xff`).
        text = escaped(text)
        if style and wants_color(stream):
            text = f"{style}{text}{_RESET}"
        print(text, file=stream, flush=True)

    def done(self, text: str) -> None:
        """Something was changed."""
        self.changes += 1
        self._print(self.out, _GREEN, text)

    def unchanged(self, text: str, *, always: bool = False) -> None:
        """Something was already as wanted."""
        if always or not self.hide_unchanged:
            self._print(self.out, _DIM, text)

    def would(self, text: str) -> None:
        """What a real run would change (under --dry)."""
        self.changes += 1
        self._print(self.out, _CYAN, f"would {text}")

    def info(self, text: str) -> None:
        """Plain information."""
        self._print(self.out, "", text)

    def refused(self, text: str) -> None:
        """A location or item the tool would not touch."""
        self.changes += 1
        self._print(self.out, _RED, f"refused {text}")

    def problem(self, text: str) -> None:
        """Something found wrong (by `status`)."""
        self._print(self.out, _RED, text)

    def warn(self, text: str) -> None:
        """Something the user should look at; nothing failed."""
        self._print(self.err, _YELLOW, f"warning: {text}")

    def error(self, message: str, hint: str) -> None:
        """One line of what is wrong, one line of what fixes it."""
        self._print(self.err, _RED, f"error: {message}")
        self._print(self.err, "", f"hint: {hint}")

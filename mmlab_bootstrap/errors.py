"""Domain errors: each carries one line of what is wrong and one `hint:` line."""

from __future__ import annotations


class BootstrapError(Exception):
    """An expected failure the user can fix; shown as an error line and a hint line.

    `rerun_helps`: running the same command again may get past it (a network fault, a busy
    workspace, a run stopped part way), as opposed to a fix the hint names first.
    """

    rerun_helps = False

    def __init__(self, message: str, hint: str, *, rerun_helps: bool | None = None) -> None:
        super().__init__(message)
        self.message = one_line(message)
        self.hint = one_line(hint)
        if rerun_helps is not None:
            self.rerun_helps = rerun_helps


class SettingsError(BootstrapError):
    """A variable has a value the tool cannot use."""


class EnvFileError(BootstrapError):
    """The `.env` file cannot be read or written safely."""


class LayoutError(BootstrapError):
    """A storage folder cannot be created."""


def one_line(text: str) -> str:
    """Fold any line breaks so that a message stays on one line."""
    return " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text


def shown(value: str) -> str:
    """Quote a user value for a message, escaping anything that would break the line."""
    return repr(value)

"""Domain errors: each carries one line of what is wrong and one `hint:` line."""

from __future__ import annotations

import re
from collections.abc import Iterable


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
    """Keep a message on one line: line breaks and other control characters shown escaped."""
    return escaped(text)


# Characters that move the cursor or reorder text: shown as escapes, never printed raw.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _hidden(char: str) -> bool:
    import unicodedata  # startup: only for text that is not printable as it is

    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI


def escaped(text: str) -> str:
    """Text safe to print as (part of) one line: control characters, line and paragraph
    separators, bidi overrides and undecodable bytes (surrogate escapes) shown as `\\n`,
    `\\xff`, `\\u202e`; everything else as it is. Printing it never raises in a UTF-8 locale."""
    if text.isprintable():
        return text
    return "".join(_escape(char) if _hidden(char) else char for char in text)


_SURROGATE_ESCAPE = r"(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])"

# The userinfo of a URL (`https://user:token@host/`): everything between `scheme://` and the
# last `@` before the host (as urllib splits it), never across a `/`, `?`, `#`, quote or space.
_USERINFO = re.compile(
    r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<info>[^/?#\s\"'<>@]*(?:@[^/?#\s\"'<>@]*)*)@"
)
HIDDEN = "***"


def _hide(found: re.Match[str]) -> str:
    scheme, info = found["scheme"], found["info"]
    if scheme.lower().endswith("ssh") and ":" not in info:
        return found[0]  # `ssh://git@host/`: a login name, no secret
    return f"{scheme}://{HIDDEN}@"


def redacted(text: str) -> str:
    """`text` (a URL, a line, a JSON document) with the user name and password of every URL
    in it replaced by `***` (`https://***@host/path`): a credential is used, never shown or
    recorded. Every line the tool prints passes through it (see `report.write_line`), and so
    does every URL it stores."""
    if "@" not in text:
        return text
    return _USERINFO.sub(_hide, text)


def shown(value: str) -> str:
    """Quote a user value (a name, a path) for a message, escaping anything that would break
    the line; a byte that is not UTF-8 shows as `\\xff`, as the OS gave it."""
    return re.sub(_SURROGATE_ESCAPE, r"\1\\x\2", repr(value))


def close_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` most likely misspells (difflib's closest, if close enough), or None."""
    # startup: difflib only when a word is misspelt
    import difflib

    found = difflib.get_close_matches(word, list(dict.fromkeys(choices)), n=1)
    return found[0] if found else None

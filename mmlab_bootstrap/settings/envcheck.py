"""Which `.env` values and lines to refuse: those a shell and python-dotenv would read
differently, or that no quoting keeps safe (the evidence: shared docs, env-quoting.md)."""

from __future__ import annotations

import os
import re
import shlex


def value_problem(value: str) -> str | None:
    """Why `value` cannot be written as `export KEY='value'`, or None when it can."""
    if "'" in value:
        return "a single quote (')"
    if "\\" in value:
        return "a backslash (\\)"
    if "${" in value:
        return "'${' (python-dotenv would expand it)"
    for char in value:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"a control character ({char!r})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "characters that are not valid UTF-8"
    return None


_BINDING = (
    "(?s)"
    r"\s*(?:export[ \t]+)?(?P<key>[^=#\s'\"]+|'[^']+')"
    r"(?P<before>[ \t]*)=(?P<after>[ \t]*)(?P<value>.*)"
)


# Outside quotes, a shell treats these specially (expansion, splitting, globbing, syntax).
_UNQUOTED_SPECIAL = {
    "$": "'$' (a shell expands it, python-dotenv does not)",
    "`": "a backtick (a shell runs a command, python-dotenv does not)",
    "\\": "a backslash (a shell removes it, python-dotenv does not)",
    "~": "'~' (a shell may expand it to a home folder, python-dotenv does not)",
    "'": "a quote inside the value (a shell removes it, python-dotenv does not)",
    '"': "a quote inside the value (a shell removes it, python-dotenv does not)",
    " ": "a space (a shell splits the value there, python-dotenv does not)",
    "\t": "a tab (a shell splits the value there, python-dotenv does not)",
    **dict.fromkeys("*?[", "a wildcard (a shell may expand it to file names)"),
    **dict.fromkeys(";&|<>(){}", "a shell operator (a shell would act on it)"),
}


def read_differently(text: str) -> str | None:
    """Why a shell (`set -a; . ./.env`) and python-dotenv would read this binding differently.

    Single quotes are literal in a shell, but python-dotenv unescapes `\\` and `\'` in them
    and expands `${…}`. Double quotes and unquoted values are expanded by a shell (`$`, `` ` ``,
    `\\`) but not by python-dotenv, which also strips an unquoted value at ` #`.
    """
    match = re.match(_BINDING, text)
    if match is None:
        return None
    if match.group("key").startswith("'"):
        return "a quoted name (a shell runs the line as a command)"
    if match.group("before") or match.group("after"):
        return "a space around '=' (a shell reads the value as empty or fails)"
    value = match.group("value").rstrip("\r\n")
    if value.startswith("'"):
        inner = value[1:].split("'", 1)[0]
        if "\\" in inner:
            return "a backslash inside single quotes (python-dotenv unescapes it, a shell does not)"
        if "${" in inner:
            return "'${' (python-dotenv expands it even inside single quotes, a shell does not)"
        return None
    if value.startswith('"'):
        inner = re.match(r'"((?:\\.|[^"\\])*)"', value, re.DOTALL)
        body = inner.group(1) if inner else value[1:]
        for char, reason in (
            ("$", "'$' inside double quotes (a shell expands it, python-dotenv does not)"),
            ("`", "a backtick inside double quotes (a shell runs a command)"),
            (
                "\\",
                "a backslash inside double quotes (a shell and python-dotenv unescape differently)",
            ),
        ):
            if char in body:
                return reason
        return None
    body = re.sub(r"[ \t]+#.*", "", value.split("\n", 1)[0]).rstrip()
    for char in body:
        if char in _UNQUOTED_SPECIAL:
            return _UNQUOTED_SPECIAL[char]
    return None


def _suggestion(key: str, value: str, text: str) -> str:
    """The line to write instead: single-quoted, with what a shell would expand expanded."""
    match = re.match(_BINDING, text)
    literal = match is None or match.group("value").startswith("'")
    expanded = value
    if not literal and "`" not in value and "$(" not in value:
        expanded = os.path.expanduser(os.path.expandvars(value))
    if literal or "$" in expanded or value_problem(expanded) is not None:
        return f"export {key}='/the/absolute/path' (no $, `, \\ or ${{ in it)"
    return f"export {key}='{expanded}'"


def _shell_balanced(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True

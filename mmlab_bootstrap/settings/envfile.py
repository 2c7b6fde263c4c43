"""Read, render and write the workspace `.env`, keeping the user's own lines.

Every line the tool owns is `export KEY='value'`: single quotes are the one shell
quoting with no expansion, and python-dotenv reads them literally as long as the
value avoids the few characters `value_problem` refuses (see shared env-quoting notes).
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from mmlab_bootstrap.errors import EnvFileError, shown
from mmlab_bootstrap.fs import FileRefused, read_regular
from mmlab_bootstrap.settings.envcheck import (
    _shell_balanced,
    _suggestion,
    read_differently,
    value_problem,
)
from mmlab_bootstrap.settings.variables import BY_NAME

_LEADING_WHITESPACE = r"\s*"
_COMMENT_START = r"[ \t]+#"


def render_binding(key: str, value: str) -> str:
    """The line the tool writes for one variable (without the newline)."""
    return f"export {key}='{value}'"


class Chunk(NamedTuple):
    """A piece of the file as python-dotenv splits it: a binding, a comment or blank lines."""

    text: str
    key: str | None
    value: str | None
    line: int


class EnvFile(NamedTuple):
    """The `.env` as found on disk, split into chunks that can be written back verbatim."""

    path: Path
    exists: bool
    text: str
    chunks: tuple[Chunk, ...]

    def values(self) -> dict[str, str]:
        """The values python-dotenv reads from it (with its defaults), unset keys left out."""
        return {k: v for k, v in _read_values(self.text).items() if v is not None}


@functools.lru_cache(maxsize=4)
def _read_values(text: str) -> dict[str, str | None]:
    """What python-dotenv reads from the text (remembered: a run asks many times; the
    dict it returns is only ever read)."""
    return dict(dotenv_values(stream=io.StringIO(text)))


def _chunks(text: str) -> list[Chunk]:
    chunks = []
    for binding in parse_stream(io.StringIO(text)):
        string = binding.original.string
        # python-dotenv counts from the blank lines it folds into a chunk; report the content's.
        blank = re.match(_LEADING_WHITESPACE, string)
        skipped = blank.group(0).count("\n") if blank and string.strip() else 0
        chunks.append(Chunk(string, binding.key, binding.value, binding.original.line + skipped))
    return chunks


def read_env_file(path: Path, *, then: str = "run: inv env", limit: int | None = None) -> EnvFile:
    """Read and check `.env` (or a file of its format: `then` is what the hints say to run
    after the fix); refuse a file that python-dotenv or a shell would misread.

    Only a regular file (or a symlink to one) is read: a device, FIFO, socket or folder is
    refused before it is opened, so nothing hangs and nothing is read from a device.
    """
    try:
        data = read_regular(
            path,
            f"replace it with a regular file (mv '{path}' '{path}.old'), then {then}",
            limit=limit,
        )
        if data is None:
            return EnvFile(path, False, "", ())
        text = data.decode("utf-8")
    except FileRefused as error:
        raise EnvFileError(error.message, error.hint) from None
    except UnicodeDecodeError as error:
        raise EnvFileError(
            f"{path} is not UTF-8 text ({error.reason} at byte {error.start})",
            f"re-save {path} as UTF-8, then {then}",
        ) from error
    except OSError as error:
        raise EnvFileError(
            f"cannot read {path}: {error.strerror}", f"check the permissions of {path}"
        ) from error
    if text.startswith("\ufeff"):
        raise EnvFileError(
            f"{path} starts with a byte-order mark, which shells cannot source",
            f"re-save {path} as UTF-8 without BOM, then {then}",
        )
    chunks = _chunks(text)
    _check_chunks(path, chunks, then)
    return EnvFile(path, True, text, tuple(chunks))


def _check_chunks(path: Path, chunks: Sequence[Chunk], then: str = "run: inv env") -> None:
    for chunk in chunks:
        first_line = chunk.text.lstrip("\r\n").splitlines()[0] if chunk.text.strip() else ""
        if chunk.key is None and chunk.text.strip() and not chunk.text.strip().startswith("#"):
            raise EnvFileError(
                f"{path}: line {chunk.line}: python-dotenv cannot parse {shown(first_line)}",
                f"fix or delete line {chunk.line} of {path}, then {then}",
            )
        if chunk.key is not None and not _shell_balanced(chunk.text):
            raise EnvFileError(
                f"{path}: line {chunk.line}: unbalanced quote in {shown(first_line)};"
                " shells would read the lines after it differently",
                f"fix the quoting on line {chunk.line} of {path}, then {then}",
            )
        if chunk.key in BY_NAME and chunk.value is not None:
            reason = read_differently(chunk.text)
            if reason is not None:
                raise EnvFileError(
                    f"{path}: line {chunk.line}: {shown(first_line)} reads differently in a"
                    f" shell and in python-dotenv: {reason}",
                    f"write the value out on line {chunk.line} of {path} as"
                    f" {_suggestion(chunk.key, chunk.value, chunk.text)}, then {then}",
                )


def _inline_comment(line: str, key: str, value: str) -> str:
    """The user's trailing `# comment` on a binding line, kept when the tool rewrites it."""
    for match in re.finditer(_COMMENT_START, line):
        head = line[: match.start()]
        if _read_values(head + "\n") == {key: value} and _chunks(head + "\n")[0].key == key:
            return line[match.start() :]
    return ""


def _rewrite_chunk(chunk: Chunk, key: str, value: str) -> str:
    leading = re.match(_LEADING_WHITESPACE, chunk.text)
    indent = leading.group(0) if leading else ""
    body = chunk.text[len(indent) :].rstrip("\r\n")
    comment = ""
    if chunk.value is not None and "\n" not in body and "\r" not in body:
        comment = _inline_comment(body, key, chunk.value)
    return indent + render_binding(key, value) + comment + "\n"


def render(
    envfile: EnvFile,
    owned: Mapping[str, str],
    descriptions: Mapping[str, str],
    header: str,
) -> str:
    """The new `.env` text: the user's chunks verbatim, the owned keys set to `owned`.

    Owned keys that are missing are appended, each after a one-line comment.
    """
    for key, value in owned.items():
        problem = value_problem(value)
        if problem is not None:
            raise EnvFileError(
                f"{key} cannot be written to .env: its value {shown(value)} contains {problem}",
                f"set {key} to a value without it (in .env, the environment or the task's flag)",
            )
    parts: list[str] = []
    seen: set[str] = set()
    for chunk in envfile.chunks:
        if chunk.key is not None and chunk.key in owned:
            seen.add(chunk.key)
            parts.append(_rewrite_chunk(chunk, chunk.key, owned[chunk.key]))
        else:
            parts.append(chunk.text)
    text = "".join(parts)
    missing = [key for key in owned if key not in seen]
    if missing:
        if not text:
            text = f"# {header}\n"
        elif not text.endswith(("\n", "\r")):
            text += "\n"
        for key in missing:
            text += f"# {descriptions.get(key, key)}\n{render_binding(key, owned[key])}\n"
    _verify(envfile.path, text, owned)
    return text


def _verify(path: Path, text: str, owned: Mapping[str, str]) -> None:
    """Refuse to write a file whose owned keys would not read back exactly."""
    chunks = _chunks(text)
    values = _read_values(text)
    for key, value in owned.items():
        if values.get(key) == value:
            continue
        culprit = next(
            (c for c in chunks if c.key != key and render_binding(key, value) in c.text), None
        )
        where = f" line {culprit.line} swallows it" if culprit else " a line of yours overrides it"
        raise EnvFileError(
            f"{path}: {key} would not read back as written:{where}",
            f"fix that line of {path} (an unclosed quote?), then run: inv env",
        )
    _check_chunks(path, chunks)


DEFAULTS_LIMIT = 64 * 1024  # a defaults file holds a dozen lines; anything far bigger is not one


def read_defaults_file(path: Path) -> EnvFile:
    """A defaults file (the `.env` format, checked the same way; a regular file of at most
    DEFAULTS_LIMIT bytes); an empty one when there is none."""
    return read_env_file(path, then="run the same command again", limit=DEFAULTS_LIMIT)

"""One marked block in a shell rc file that loads a workspace's `.env` in new shells started
inside that workspace (and only there: blocks of several workspaces never leak into each
other's shells, nor into shells started elsewhere)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import FileRefused, read_regular, writable_problem
from mmlab_bootstrap.run import Changes

BEGIN = "# >>> mmlab-bootstrap {root} >>>"
END = "# <<< mmlab-bootstrap {root} <<<"
_MANUAL_EXPORT = re.compile(r"^\s*export\s+MMLAB_[A-Z_]*=", re.MULTILINE)
# A block as versions before the per-workspace guard wrote it: it loads `.env` unconditionally.
_LOADS_EVERYWHERE = re.compile(r"^# >>> mmlab-bootstrap (.+) >>>\r?\nif \[ -f ", re.MULTILINE)


class RcFileError(BootstrapError):
    """The rc file cannot be changed safely."""


def block(root: Path, env_path: Path) -> str:
    """The lines added for one workspace (POSIX: bash, dash and zsh read it alike). It loads
    `.env` only in a shell whose folder is inside the workspace, and defines nothing. The
    folder is compared with every symlink resolved (`pwd -P`, POSIX), so a shell started in
    the workspace through any symlinked path loads it, whichever spelling added the block."""
    quoted = shlex.quote(str(env_path))
    pattern = shlex.quote(os.path.realpath(root).rstrip("/") + "/") + "*"
    return (
        f"{BEGIN.format(root=root)}\n"
        f'case "$(pwd -P)/" in {pattern})'
        f" if [ -f {quoted} ]; then set -a; . {quoted}; set +a; fi ;; esac\n"
        f"{END.format(root=root)}\n"
    )


def _span(text: str, root: Path, offset: int = 0) -> tuple[int, int] | None:
    """Where this workspace's first block at or after `offset` is (start, end including its
    final newline)."""
    begin, end = BEGIN.format(root=root), END.format(root=root)
    start = text.find(begin + "\n", offset)
    while start > 0 and text[start - 1] != "\n":  # only a marker at the start of a line
        start = text.find(begin + "\n", start + 1)
    if start == -1:
        return None
    stop = text.find(end, start)
    if stop == -1:
        raise RcFileError(
            f"the mmlab-bootstrap block in the rc file has no end marker ({end!r})",
            "fix the block by hand (or delete it), then run the same command again",
        )
    stop += len(end)
    if text[stop : stop + 1] == "\n":
        return start, stop + 1
    # Added to a file with no final newline: the newline before the block is ours too.
    return (start - 1 if start > 0 else start), stop


def _spans(text: str, root: Path) -> list[tuple[int, int]]:
    """Every block of this workspace in the file, first to last."""
    found: list[tuple[int, int]] = []
    while (span := _span(text, root, found[-1][1] if found else 0)) is not None:
        found.append(span)
    return found


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    for start, stop in reversed(spans):
        text = text[:start] + text[stop:]
    return text


def check_rc(rc: Path, root: Path, *, remove: bool = False, env_path: Path | None = None) -> str:
    """Read the rc file (empty when missing), refusing what cannot be changed safely.

    The file is read and written as bytes (CR and CRLF kept, other encodings kept byte for
    byte); it must be a regular file (or a symlink to one). When adding (or with `remove`,
    removing) the block would change it, it must also be writable and have no other hard
    links, and it keeps its owner, group and mode.
    """
    if "\n" in str(root) or "\r" in str(root):
        raise RcFileError(
            f"the workspace path {shown(str(root))} holds a line break", "use a plain folder"
        )
    if not rc.parent.is_dir():
        raise RcFileError(
            f"cannot write {shown(str(rc))}: its folder does not exist",
            "check the path, e.g. inv env --rc ~/.bashrc",
        )
    try:
        data = read_regular(rc, "name your shell's rc file, e.g. inv env --rc ~/.bashrc")
    except FileRefused as error:
        raise RcFileError(error.message, error.hint) from None
    except OSError as error:
        raise RcFileError(
            f"cannot read {shown(str(rc))}: {error.strerror}", "check the file's permissions"
        ) from error
    text = (data or b"").decode("utf-8", "surrogateescape")
    spans = _spans(text, root)  # a block without its end marker is refused here
    wanted = block(root, env_path or root / ".env").strip("\n")
    up_to_date = bool(spans) and text[spans[0][0] : spans[0][1]].strip("\n") == wanted
    if (bool(spans) if remove else not up_to_date) and data is not None:
        problem = writable_problem(rc)
        if problem is not None:
            raise RcFileError(*problem)
    return text


def update_rc(
    rc: Path, root: Path, env_path: Path, changes: Changes, *, remove: bool = False
) -> None:
    """Add (or with `remove`, take out every copy of) this workspace's block; touch nothing
    else."""
    text = check_rc(rc, root, remove=remove, env_path=env_path)
    spans = _spans(text, root)
    outside = _without(text, spans)
    for match in _MANUAL_EXPORT.finditer(outside):
        line = outside[: match.start()].count("\n") + 1
        first = outside[match.start() :].splitlines()[0].strip()
        changes.report.warn(
            f"{rc}: line {line} sets {first.split('=')[0].split()[-1]} by hand (the manual"
            " steps' leftover?); remove it if it is stale, or it may override .env"
        )
    for match in _LOADS_EVERYWHERE.finditer(outside):
        changes.report.warn(
            f"{rc}: the block of {match.group(1)} (an older version's) loads its .env in every"
            f" new shell, wherever it starts; update it: cd {shlex.quote(match.group(1))} &&"
            f" inv env --rc {shlex.quote(str(rc))}"
        )
    if remove:
        if not spans:
            changes.report.unchanged(f"no mmlab-bootstrap block for {root} in {rc}")
            return
        changes.write_file(rc, outside)
        return
    wanted = block(root, env_path)
    span = spans[0] if spans else None
    if span is not None and text[span[0] : span[1]].strip("\n") == wanted.strip("\n"):
        changes.report.unchanged(f"up to date: {rc}")
        return
    core = wanted.strip("\n")
    if span is not None:  # an outdated block: replace it, framed as the old one was
        old = text[span[0] : span[1]]
        framed = "\n" * old.startswith("\n") + core + "\n" * old.endswith("\n")
        changes.write_file(rc, text[: span[0]] + framed + text[span[1] :])
    elif text and not text.endswith("\n"):
        changes.write_file(rc, text + "\n" + core)  # keep the file without a final newline
    else:
        changes.write_file(rc, text + wanted)


ENVRC = ".envrc"
_DOTENV_LINE = re.compile(r"^\s*(dotenv|dotenv_if_exists)(\s+(\./)?\.env)?\s*$", re.MULTILINE)
ENVRC_TEXT = "# mmlab-bootstrap: direnv loads this workspace's .env here (and unloads it)\ndotenv\n"


def update_envrc(root: Path, changes: Changes) -> None:
    """Give the workspace an `.envrc` for direnv that loads its `.env` (a `dotenv` line,
    added to an `.envrc` of the user's that lacks one; nothing else in it changes)."""
    path = root / ENVRC
    hint = f"move it aside (mv '{path}' '{path}.old'), then run: inv env --envrc"
    try:
        data = read_regular(path, hint, limit=1 << 20)
    except FileRefused as error:
        raise RcFileError(error.message, error.hint) from None
    text = (data or b"").decode("utf-8", "surrogateescape")
    if _DOTENV_LINE.search(text):
        changes.report.unchanged(f"up to date: {path}")
        return
    if data is not None:
        problem = writable_problem(path)
        if problem is not None:
            raise RcFileError(*problem)
    separator = "\n" if text and not text.endswith("\n") else ""
    changes.write_file(path, text + separator + ENVRC_TEXT)
    allow = shlex.quote(str(root))
    changes.report.info(f"direnv loads a new or changed .envrc once allowed: direnv allow {allow}")

"""A shell that sourced a `.env`: which of its MMLAB_ values are copies, not overrides.

Every `.env` the tool writes names itself (MMLAB_ENV_FILE) and carries a fingerprint of each
value it holds (MMLAB_ENV_DIGEST), so sourcing it exports both. A run then tells a value the
shell holds *because it sourced a `.env`* (its fingerprint is in the shell's digest) from one
set on purpose (`export` after sourcing, `MMLAB_X=… inv …`): only the latter overrides.
Copies of this workspace's `.env` give way to the current file (the shell may hold an older
copy); copies of another workspace's `.env` never apply here.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.settings.envcheck import value_problem
from mmlab_bootstrap.settings.variables import IDENTITY_DIGEST, IDENTITY_FILE, VARIABLES

_PRINT_HEX = 10  # 40 bits per value: a deliberate value taken for a copy by chance is 1 in 10^12


def fingerprint(name: str, value: str) -> str:
    """A short fingerprint of one binding (name and value)."""
    data = f"{name}={value}".encode("utf-8", "surrogatepass")  # (any text: never fails)
    return hashlib.sha256(data).hexdigest()[:_PRINT_HEX]


def identity(env_path: Path, values: Mapping[str, str]) -> dict[str, str]:
    """The two lines `.env` carries about itself (none when its path cannot be written)."""
    if value_problem(str(env_path)) is not None:
        return {}
    prints = " ".join(fingerprint(name, value) for name, value in values.items())
    return {IDENTITY_FILE: str(env_path), IDENTITY_DIGEST: prints}


class Overrides(NamedTuple):
    """The environment's values that count as overrides, and what to say about the rest."""

    environ: Mapping[str, str]
    note: str | None  # the shell holds an older copy of this workspace's `.env`
    warning: str | None  # the shell holds another workspace's `.env`


def _same_file(named: str, env_path: Path) -> bool:
    """Whether the path the environment names is this `.env` (by its spelling, or this file's
    real path; the named path itself is never looked at: it may be on a hung mount)."""
    spellings = {os.path.normpath(env_path), os.path.realpath(env_path)}
    return os.path.normpath(named) in spellings


def overrides(
    environ: Mapping[str, str], env_path: Path, dotenv: Mapping[str, str], *, exists: bool
) -> Overrides:
    """Take out of `environ` the values a shell holds from sourcing a `.env`.

    Without MMLAB_ENV_FILE (an old `.env`, or none sourced) every value overrides, as before.
    A copy of this workspace's `.env` gives way only while the file exists (else the shell's
    copy is the best record of it left).
    """
    named = environ.get(IDENTITY_FILE, "")
    if not os.path.isabs(named) or value_problem(named) is not None:  # not one the tool wrote
        return Overrides(environ, None, None)
    prints = set(environ.get(IDENTITY_DIGEST, "").split())
    copies = [
        v.name
        for v in VARIABLES
        if v.name in environ and fingerprint(v.name, environ[v.name]) in prints
    ]
    here = _same_file(named, env_path)
    if not copies or (here and not exists):
        return Overrides(environ, None, None)
    kept = {name: value for name, value in environ.items() if name not in copies}
    differing = [name for name in copies if dotenv.get(name) != environ[name]]
    if not differing:
        return Overrides(kept, None, None)
    reload = f"set -a; . {shlex.quote(str(env_path))}; set +a"
    if here:
        return Overrides(
            kept,
            f"your shell holds an older copy of this workspace's .env ({', '.join(differing)}"
            f" changed since); this run uses the current {env_path}. Reload it: {reload}",
            None,
        )
    return Overrides(
        kept,
        None,
        f"your shell holds the values of another workspace's .env ({named}): they do not"
        f" apply here ({', '.join(differing)}); this run uses {env_path}. In this workspace,"
        f" load its own: {reload}",
    )

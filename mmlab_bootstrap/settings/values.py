"""The effective settings: one place that resolves, checks and remembers each value's source.

Precedence, highest first: a task's flag, the process environment, `.env`, the user's
defaults file, the system's defaults file, the built-in default. An empty value in the
environment, `.env` or a defaults file counts as unset; an empty flag is an error, except for
the variables whose default is empty (the ref and the mirror).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import SettingsError, shown
from mmlab_bootstrap.fs import is_inside
from mmlab_bootstrap.settings.envcheck import value_problem
from mmlab_bootstrap.settings.variables import (
    BY_NAME,
    CACHE_MODES,
    CHECKPOINT_MIRROR,
    CHECKPOINTS,
    CHECKPOINTS_PATH,
    CUDA,
    DATASET_PATH,
    EXTENSION_PATH,
    EXTENSION_REF,
    EXTENSION_REPO,
    GIT_CACHE,
    GIT_CACHE_MODE,
    GIT_MIRROR,
    MMCV_INDEX,
    MMCV_PACKAGE,
    MMCV_PACKAGES,
    PROJECTS,
    PYPI_INDEX,
    PYTHON,
    PYTHON_ENV,
    REQUIRE_MOUNT,
    TORCH_HOME,
    TORCH_INDEX,
    VARIABLES,
    VENVS_PATH,
    Kind,
    Variable,
)


class Source(Enum):
    """Where a value came from."""

    FLAG = "flag"
    ENVIRONMENT = "environment"
    DOTENV = ".env"
    USER_DEFAULTS = "user defaults"
    SYSTEM_DEFAULTS = "system defaults"
    DEFAULT = "default"

    @property
    def label(self) -> str:
        """How messages and `status` name it: a defaults file by its path."""
        if self in (Source.USER_DEFAULTS, Source.SYSTEM_DEFAULTS):
            return str(defaults_file(self))
        return str(self.value)


# The system-wide defaults file; a module constant (not a variable), so that only in-process
# tests can point it elsewhere.
SYSTEM_DEFAULTS_FILE = Path("/etc/mmlab-bootstrap/defaults.env")
DEFAULTS_NAME = Path("mmlab-bootstrap") / "defaults.env"


def defaults_file(source: Source, environ: Mapping[str, str] | None = None) -> Path:
    """The file of a defaults layer: `$XDG_CONFIG_HOME/mmlab-bootstrap/defaults.env` (an
    unset, empty or relative XDG_CONFIG_HOME means ~/.config, as the XDG spec says), or the
    system's."""
    if source is Source.SYSTEM_DEFAULTS:
        return SYSTEM_DEFAULTS_FILE
    environ = os.environ if environ is None else environ
    config = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return base / DEFAULTS_NAME


DEFAULT_LAYERS = (Source.USER_DEFAULTS, Source.SYSTEM_DEFAULTS)


class Value(NamedTuple):
    """One effective value, normalised (absolute paths), with its source and raw text."""

    value: str
    source: Source
    raw: str


@dataclass(frozen=True)
class Settings:
    """Every variable's effective value for one workspace."""

    root: Path
    values: Mapping[str, Value]

    def __getitem__(self, name: str) -> str:
        return self.values[name].value

    @property
    def extension_path(self) -> Path:
        return Path(self[EXTENSION_PATH])

    @property
    def checkpoints_path(self) -> Path:
        return Path(self[CHECKPOINTS_PATH])

    @property
    def dataset_path(self) -> Path:
        return Path(self[DATASET_PATH])

    @property
    def projects(self) -> tuple[str, ...]:
        return tuple(self[PROJECTS].split())

    @property
    def repo(self) -> str:
        return self[EXTENSION_REPO]

    @property
    def ref(self) -> str:
        return self[EXTENSION_REF]

    @property
    def mirror(self) -> str:
        return self[GIT_MIRROR]

    @property
    def git_cache(self) -> Path | None:
        """The folder of the shared git cache, or None when there is none."""
        return Path(self[GIT_CACHE]) if self[GIT_CACHE] else None

    @property
    def shares_objects(self) -> bool:
        """Whether workspaces borrow the cache's objects (alternates) instead of copying them."""
        return self[GIT_CACHE_MODE] == "share"

    @property
    def require_mount(self) -> bool:
        return self[REQUIRE_MOUNT] == "1"

    @property
    def checkpoint_models(self) -> tuple[str, ...]:
        """The models MMLAB_CHECKPOINTS names (`project:name` or `name`), in order."""
        return tuple(self[CHECKPOINTS].split())

    @property
    def checkpoint_mirror(self) -> str:
        return self[CHECKPOINT_MIRROR]

    @property
    def venvs_path(self) -> Path:
        return Path(self[VENVS_PATH])

    @property
    def python(self) -> str:
        return self[PYTHON]

    @property
    def cuda(self) -> str:
        """`cpu`, a CUDA tag such as `cu113`, or empty (what the driver runs)."""
        return self[CUDA]

    @property
    def torch_index(self) -> str:
        return self[TORCH_INDEX]

    @property
    def mmcv_index(self) -> str:
        return self[MMCV_INDEX]

    @property
    def mmcv_package(self) -> str:
        """`auto` (the series' mmcv with its compiled ops) or `mmcv-lite` (none)."""
        return self[MMCV_PACKAGE]

    @property
    def pypi_index(self) -> str:
        return self[PYPI_INDEX]

    @property
    def builds_python_env(self) -> bool:
        return self[PYTHON_ENV] == "1"

    @property
    def torch_home(self) -> Path:
        """torch's cache folder (its weights in `hub/checkpoints/`), exported as TORCH_HOME."""
        return Path(self[TORCH_HOME]) if self[TORCH_HOME] else self.checkpoints_path / "torch"

    def as_env(self) -> dict[str, str]:
        """What `.env` holds for this workspace, in the documented order."""
        return {variable.name: self.values[variable.name].value for variable in VARIABLES}


def resolve(
    root: Path,
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    defaults: Sequence[tuple[Source, Mapping[str, str]]] = (),
) -> Settings:
    """Compute and check the effective settings; raise SettingsError naming the culprit.
    `defaults` are the defaults files' values, highest first (user, then system)."""
    values: dict[str, Value] = {}
    for variable in VARIABLES:
        raw, source = _pick(variable, flags, environ, dotenv, defaults)
        values[variable.name] = Value(_normalise(variable, raw, source, root), source, raw)
    settings = Settings(root, values)
    _check_nesting(settings)
    return settings


def _pick(
    variable: Variable,
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    defaults: Sequence[tuple[Source, Mapping[str, str]]],
) -> tuple[str, Source]:
    candidates = (
        (flags.get(variable.name), Source.FLAG),
        (environ.get(variable.name), Source.ENVIRONMENT),
        (dotenv.get(variable.name), Source.DOTENV),
        *((layer.get(variable.name), source) for source, layer in defaults),
    )
    for raw, source in candidates:
        if raw is not None and (raw or source is Source.FLAG or not variable.default):
            return raw, source
    return variable.default, Source.DEFAULT


def fix_hint(variable: Variable, source: Source, example: str | None = None) -> str:
    """The command that replaces a bad value, for wherever it came from."""
    example = example if example is not None else (variable.default or "VALUE")
    if source is Source.ENVIRONMENT:
        return (
            f"unset {variable.name} (and remove its export from your shell rc file),"
            f" or override it: inv env {variable.flag} '{example}'"
        )
    if source is Source.DOTENV:
        return f"run: inv env {variable.flag} '{example}' (or edit {variable.name} in .env)"
    if source in DEFAULT_LAYERS:
        return (
            f"edit {variable.name} in {source.label}, or override it here:"
            f" inv env {variable.flag} '{example}'"
        )
    return f"pass a valid value: {variable.flag} '{example}'"


def _fail(variable: Variable, source: Source, raw: str, what: str) -> SettingsError:
    return SettingsError(
        f"{variable.name} (from {source.label}) {what}: {shown(raw)}", fix_hint(variable, source)
    )


def _normalise(variable: Variable, raw: str, source: Source, root: Path) -> str:
    problem = value_problem(raw)
    if problem is not None:
        raise _fail(variable, source, raw, f"contains {problem}")
    if not raw:
        if variable.default:
            raise _fail(variable, source, raw, "is empty")
        return raw
    if variable.kind is Kind.PATH:
        return _normalise_path(variable, raw, source, root)
    if variable.kind is Kind.PROJECTS:
        return _normalise_projects(variable, raw, source)
    if variable.kind is Kind.REF:
        return _check_ref(variable, raw, source)
    if variable.kind is Kind.MODELS:
        return _normalise_models(variable, raw, source)
    if variable.kind is Kind.HTTP_MIRROR:
        return _check_http_mirror(variable, raw, source)
    if variable.kind is Kind.CACHE_MODE:
        if raw not in CACHE_MODES:
            raise _fail(variable, source, raw, f"must be {' or '.join(CACHE_MODES)}")
        return raw
    if variable.kind is Kind.PROGRAM:
        return _normalise_program(variable, raw, source, root)
    if variable.kind is Kind.CUDA:
        if raw != "cpu" and not re.fullmatch(r"cu\d{2,4}", raw):
            raise _fail(variable, source, raw, "is not cpu or a CUDA tag such as cu113")
        return raw
    if variable.kind is Kind.MMCV_PACKAGE:
        if raw not in MMCV_PACKAGES:
            raise _fail(variable, source, raw, f"must be {' or '.join(MMCV_PACKAGES)}")
        return raw
    if variable.kind is Kind.SWITCH:
        if raw not in ("0", "1"):
            raise _fail(variable, source, raw, "must be 0 or 1")
        return raw
    return _check_url(variable, raw, source)


def _normalise_path(variable: Variable, raw: str, source: Source, root: Path) -> str:
    if raw.startswith("-"):
        raise _fail(variable, source, raw, "must not start with '-'")
    expanded = os.path.expanduser(raw)
    if expanded.startswith("~"):
        raise _fail(variable, source, raw, "names a home folder that does not exist")
    absolute = os.path.normpath(os.path.join(root, expanded))
    problem = value_problem(absolute)
    if problem is not None:
        raise _fail(variable, source, absolute, f"resolves to a path with {problem}")
    return absolute


def _normalise_program(variable: Variable, raw: str, source: Source, root: Path) -> str:
    """A program: a plain name looked up on PATH when used, or a path (made absolute)."""
    if "/" in raw or raw.startswith("~"):
        return _normalise_path(variable, raw, source, root)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*", raw):
        raise _fail(variable, source, raw, "is not a program name or a path")
    return raw


_PROJECT_FORBIDDEN = r"[/\\\x00-\x1f\x7f]"


def _normalise_projects(variable: Variable, raw: str, source: Source) -> str:
    names: list[str] = []
    for name in raw.split():
        if name.startswith("."):  # `.`, `..`, `.git` and other hidden folders
            raise _fail(variable, source, name, "is not a plain folder name (it starts with '.')")
        if name.startswith("-") or re.search(_PROJECT_FORBIDDEN, name):
            raise _fail(variable, source, name, "is not a plain folder name")
        if name not in names:
            names.append(name)
    if not names:
        raise _fail(variable, source, raw, "names no project (it is blank)")
    return " ".join(names)


_MODEL = r"(?:[A-Za-z0-9_][A-Za-z0-9_.+-]*:)?[A-Za-z0-9_./][A-Za-z0-9_.+/@()-]*"


def _normalise_models(variable: Variable, raw: str, source: Source) -> str:
    names: list[str] = []
    for name in raw.split():
        if not re.fullmatch(_MODEL, name) or ".." in name.split("/"):
            raise _fail(variable, source, name, "is not a model name (project:name or name)")
        if name not in names:
            names.append(name)
    return " ".join(names)


_HTTP_URL = r"https?://[^/\s@]*@?[A-Za-z0-9.\[\]:_-]+(?:/\S*)?"


def _check_http_mirror(variable: Variable, raw: str, source: Source) -> str:
    if raw.startswith("-"):
        raise _fail(variable, source, raw, "must not start with '-'")
    if not re.fullmatch(_HTTP_URL, raw):
        raise _fail(variable, source, raw, "is not an http:// or https:// URL")
    return raw if raw.endswith("/") else raw + "/"


_REF_FORBIDDEN = r"[\s~^:?*\[\\\x00-\x1f\x7f]|\.\.|@\{|//"


def _check_ref(variable: Variable, raw: str, source: Source) -> str:
    if (
        raw.startswith(("-", "/", "."))
        or raw.endswith(("/", ".", ".lock"))
        or re.search(_REF_FORBIDDEN, raw)
    ):
        raise _fail(variable, source, raw, "is not a branch, tag or commit name")
    return raw


_SCHEME_URL = r"(?:https?|ssh|git)://[^/\s@]*@?[A-Za-z0-9.\[\]:_-]+(?:/.*)?|file:///.*"
_SCP_URL = r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!/?/).*"


def _check_url(variable: Variable, raw: str, source: Source) -> str:
    if raw.startswith("-"):
        raise _fail(variable, source, raw, "must not start with '-'")
    if "::" in raw.split("/", 1)[0]:
        raise _fail(variable, source, raw, "uses a git remote helper transport (such as ext::)")
    if not (re.fullmatch(_SCHEME_URL, raw) or re.fullmatch(_SCP_URL, raw)):
        raise _fail(
            variable,
            source,
            raw,
            "is not a URL git accepts (https://, ssh://, git://, file:///, user@host:path)",
        )
    if variable.kind is Kind.MIRROR and not raw.endswith(("/", ":")):
        return raw + "/"
    return raw


def _check_nesting(settings: Settings) -> None:
    extension = settings.extension_path
    for name in (CHECKPOINTS_PATH, DATASET_PATH, GIT_CACHE):
        if not settings[name]:
            continue
        storage = Path(settings[name])
        if is_inside(storage, extension) or is_inside(extension, storage):
            value = settings.values[name]
            raise SettingsError(
                f"{name} (from {value.source.label}) {shown(str(storage))} and"
                f" {EXTENSION_PATH} {shown(str(extension))} lie inside one another",
                fix_hint(BY_NAME[name], value.source, _outside_example(settings, name)),
            )


def _outside_example(settings: Settings, name: str) -> str:
    if name == GIT_CACHE:
        return "~/.cache/mmlab-bootstrap/git"
    return f"{settings.root}/{BY_NAME[name].default[2:]}"


def differs(name: str, environ: Mapping[str, str], dotenv: Mapping[str, str]) -> bool:
    in_env, in_file = environ.get(name), dotenv.get(name)
    return bool(in_env) and in_file is not None and in_env != in_file


def override_warnings(
    settings: Settings, environ: Mapping[str, str], dotenv: Mapping[str, str]
) -> list[str]:
    """One warning per variable whose environment value wins over a different `.env` value
    (`status`, `env` and `bootstrap` all say so; a flag wins over both and is no surprise).
    `environ` holds the overrides only: what a shell got by sourcing `.env` is not one."""
    return [
        f"{variable.name} in the environment ({shown(environ[variable.name])}) overrides a"
        f" different value in .env ({shown(dotenv[variable.name])}); if it is stale (an old"
        f" export in your shell rc file?), unset {variable.name} and run:"
        f" inv env {variable.flag} {shlex.quote(dotenv[variable.name])}"
        for variable in VARIABLES
        if differs(variable.name, environ, dotenv)
        and settings.values[variable.name].source is Source.ENVIRONMENT
    ]

"""A run of the tool in one workspace: its root, `.env`, settings, output and --dry."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import LOCK_FILE, read_head, remove_stale_temporaries, workspace_lock
from mmlab_bootstrap.output import Reporter
from mmlab_bootstrap.run.changes import Changes
from mmlab_bootstrap.settings import (
    BY_NAME,
    DEFAULT_LAYERS,
    IDENTITY_DIGEST,
    IDENTITY_FILE,
    EnvFile,
    Settings,
    Source,
    defaults_file,
    overrides,
    read_defaults_file,
    read_env_file,
    resolve,
)

ENV_FILE = ".env"
STATE_FILE = ".mmlab-bootstrap-state.json"  # the journal of links (`links.journal`)
TASKS_FILE = "tasks.py"
_MARK_BYTES = 65536  # how much of a `.env`, `tasks.py` or `.gitmodules` is read to tell
_OUR_ENV = re.compile(rb"^[ \t]*(?:export[ \t]+)?MMLAB_[A-Z_]+[ \t]*=", re.MULTILINE)
_OUR_TASKS = re.compile(rb"\bmmlab_bootstrap\b")
_MMLAB_SUBMODULE = re.compile(
    rb"^[ \t]*url[ \t]*=[ \t]*\S*open-mmlab/(mmcv|mmdetection3d|mmdetection|mmdeploy)\b",
    re.MULTILINE,
)


class WorkspaceError(BootstrapError):
    """The folder the tool was started in cannot be (or lie in) a workspace."""


def _head(path: Path) -> bytes:
    """The start of a regular file (following a symlink), else nothing; never blocks."""
    try:
        return read_head(path, _MARK_BYTES)[0]
    except OSError:
        return b""


def is_workspace(folder: Path) -> bool:
    """Whether this tool has a workspace at `folder`: its journal or lock file, a `.env` that
    sets any `MMLAB_` variable, or a `tasks.py` that loads this package's tasks (the folder
    `inv` would use)."""
    if any(os.path.lexists(folder / name) for name in (STATE_FILE, LOCK_FILE)):
        return True
    return bool(_OUR_ENV.search(_head(folder / ENV_FILE))) or bool(
        _OUR_TASKS.search(_head(folder / TASKS_FILE))
    )


def _superproject_of(workspace: Path) -> Path:
    """Where the workspace at `workspace` keeps its superproject, as its `.env` says (the
    default place when that file cannot be read)."""
    try:
        value = read_env_file(workspace / ENV_FILE).values().get("MMLAB_EXTENSION_PATH", "")
    except BootstrapError:
        value = ""
    path = Path(os.path.expanduser(value)) if value else Path("mmlab_extension")
    return Path(os.path.normpath(workspace / path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def find_root(start: Path) -> Path:
    """The workspace a run started in `start` uses: the nearest folder from `start` up that
    `is_workspace` (as invoke walks up to `tasks.py`, git to `.git`), else `start` itself,
    a new workspace.

    Refused: a workspace inside the superproject of another workspace further up, and a new
    one inside an mmlab superproject (a second superproject would be cloned inside it).
    """
    start = Path(os.path.normpath(start))
    folders = [start, *start.parents]
    found = next((folder for folder in folders if is_workspace(folder)), None)
    if found is not None:
        for outer in found.parents:
            if is_workspace(outer):
                superproject = _superproject_of(outer)
                if _inside(found, superproject):
                    raise WorkspaceError(
                        f"{shown(str(found))} lies inside {shown(str(superproject))}, the"
                        f" superproject of the workspace {shown(str(outer))}",
                        f"run the tool in {shown(str(outer))} (it finds its workspace from"
                        " any folder below); if this tool's files in the inner folder (.env,"
                        " .mmlab-bootstrap-state.json, .mmlab-bootstrap.lock) were made there"
                        " by mistake, remove them",
                    )
                break
        return found
    for folder in folders:
        if len(set(_MMLAB_SUBMODULE.findall(_head(folder / ".gitmodules")))) >= 2:
            raise WorkspaceError(
                f"no workspace here, and {shown(str(folder))} is an mmlab superproject:"
                " a new workspace would clone a second one inside it",
                "run the tool in the workspace that holds it (the folder with its .env),"
                " or in an empty folder outside it",
            )
    return start


@dataclass
class Session:
    """Everything a step needs to know about the run it belongs to."""

    root: Path
    dry: bool = False
    report: Reporter = field(default_factory=Reporter)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    lock_task: str | None = None  # take the workspace lock for this task, once input is valid
    held: contextlib.ExitStack | None = None  # keeps the lock until the task ends
    # per-run objects of the packages above, by name (links' journal: `links.journal.journal_of`)
    shared: dict[str, object] = field(default_factory=dict)
    _env: tuple[tuple[int, ...], EnvFile] | None = None
    _settings: tuple[object, Settings] | None = None
    _defaults: list[tuple[Source, Mapping[str, str]]] | None = None
    _said: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.changes = Changes(self.report, dry=self.dry)  # the one seam every change goes through

    @property
    def env_path(self) -> Path:
        return self.root / ENV_FILE

    def read_env(self) -> EnvFile:
        """The workspace's `.env`, checked (read again only when the file or the workspace
        changed since: every step of a run asks for it)."""
        try:
            found = os.stat(self.env_path)
            key: tuple[int, ...] | None = (
                found.st_dev,
                found.st_ino,
                found.st_size,
                found.st_mtime_ns,
                found.st_ctime_ns,
                self.changes.made,
            )
        except OSError:
            key = None
        if key is not None and self._env is not None and self._env[0] == key:
            return self._env[1]
        envfile = read_env_file(self.env_path)
        self._env = (key, envfile) if key is not None else None
        return envfile

    def settings(self, flags: Mapping[str, str | None], envfile: EnvFile | None = None) -> Settings:
        """The effective settings for this run (flags > environment > .env > defaults).

        The first valid settings of a changing task take the workspace lock; `.env` is then
        read again, as another run may have written it while this one waited.
        """
        envfile = envfile if envfile is not None else self.read_env()
        settings = self._resolved(flags, envfile)
        if self.lock_task is not None and self.held is not None:
            self.held.enter_context(workspace_lock(self.root, self.lock_task))
            self.lock_task = None
            self.changes.after_changes(self.remove_leftovers)
            settings = self._resolve(flags, self.read_env())
        return settings

    def _resolved(self, flags: Mapping[str, str | None], envfile: EnvFile) -> Settings:
        """`resolve`, remembered for the same flags and `.env` while nothing changed (its
        checks look at the disk, which only a change alters): every step asks again."""
        key = (tuple(sorted(flags.items())), envfile.text, self.changes.made)
        if self._settings is None or self._settings[0] != key:
            self._settings = (key, self._resolve(flags, envfile))
        return self._settings[1]

    def _resolve(self, flags: Mapping[str, str | None], envfile: EnvFile) -> Settings:
        return resolve(self.root, flags, self.overrides(envfile), envfile.values(), self.defaults())

    def overrides(self, envfile: EnvFile) -> Mapping[str, str]:
        """The environment, less the values the shell holds only because it sourced a `.env`
        (see `sourced`); what that leaves out is said once per run."""
        found = overrides(self.environ, self.env_path, envfile.values(), exists=envfile.exists)
        said = (("note", found.note, self.report.note), ("warn", found.warning, self.report.warn))
        for kind, text, say in said:
            if text is not None and kind not in self._said:  # once a run, each kind
                self._said.add(kind)
                say(text)
        return found.environ

    def defaults(self) -> list[tuple[Source, Mapping[str, str]]]:
        """The defaults files' values (user's, then system's), read once per run."""
        if self._defaults is None:
            self._defaults = []
            known = {*BY_NAME, IDENTITY_FILE, IDENTITY_DIGEST}
            for source in DEFAULT_LAYERS:
                path = defaults_file(source, self.environ)
                values = read_defaults_file(path).values()
                for name in sorted(set(values) - known):
                    if name.startswith("MMLAB_"):
                        self.report.warn(f"{path}: {name} is not a variable of this tool")
                self._defaults.append((source, values))
        return self._defaults

    def remove_leftovers(self) -> None:
        """Remove the temporary files a killed run left beside `.env` and the journal."""
        for path in (Path(os.path.realpath(self.env_path)), self.root / STATE_FILE):
            for leftover in remove_stale_temporaries(path):
                self.report.done(f"removed {leftover} (left by an interrupted run)")

    def load_line(self) -> str:
        """The line a user pastes into a shell to load this workspace's `.env`."""
        return f"set -a; . {shlex.quote(str(self.env_path))}; set +a"

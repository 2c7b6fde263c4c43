"""A run of the tool in one workspace: its root, `.env`, settings, output and --dry."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .changes import Changes
from .envfile import EnvFile, read_defaults_file, read_env_file
from .journal import STATE_FILE, Journal
from .lock import workspace_lock
from .report import Reporter
from .settings import DEFAULT_LAYERS, Settings, Source, defaults_file, resolve
from .sourced import overrides
from .temporaries import remove_stale_temporaries
from .variables import BY_NAME, IDENTITY_DIGEST, IDENTITY_FILE

ENV_FILE = ".env"


@dataclass
class Session:
    """Everything a step needs to know about the run it belongs to."""

    root: Path
    dry: bool = False
    report: Reporter = field(default_factory=Reporter)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    lock_task: str | None = None  # take the workspace lock for this task, once input is valid
    held: contextlib.ExitStack | None = None  # keeps the lock until the task ends
    _journal: Journal | None = None
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

    @property
    def journal(self) -> Journal:
        """The record of what linking changed in this workspace."""
        if self._journal is None:
            self._journal = Journal(self.root)
        return self._journal

    def load_line(self) -> str:
        """The line a user pastes into a shell to load this workspace's `.env`."""
        return f"set -a; . {shlex.quote(str(self.env_path))}; set +a"

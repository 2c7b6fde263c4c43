"""A run of the tool in one workspace: its root, `.env`, settings, output and --dry."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .changes import Changes
from .envfile import EnvFile, read_env_file
from .report import Reporter
from .settings import Settings, resolve

ENV_FILE = ".env"


@dataclass
class Session:
    """Everything a step needs to know about the run it belongs to."""

    root: Path
    dry: bool = False
    report: Reporter = field(default_factory=Reporter)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @property
    def env_path(self) -> Path:
        return self.root / ENV_FILE

    @property
    def changes(self) -> Changes:
        return Changes(self.report, dry=self.dry)

    def read_env(self) -> EnvFile:
        """The workspace's `.env`, checked."""
        return read_env_file(self.env_path)

    def settings(self, flags: Mapping[str, str | None], envfile: EnvFile | None = None) -> Settings:
        """The effective settings for this run (flags > environment > .env > defaults)."""
        envfile = envfile if envfile is not None else self.read_env()
        return resolve(self.root, flags, self.environ, envfile.values())

    def load_line(self) -> str:
        """The line a user pastes into a shell to load this workspace's `.env`."""
        return f"set -a; . {shlex.quote(str(self.env_path))}; set +a"

"""The record of submodule checkouts the tool has started and not yet seen finish.

A checkout killed part way leaves a submodule with some of its files written and HEAD still
elsewhere; git then refuses to go on ("untracked working tree files would be overwritten").
Before it starts checkouts the tool writes which submodules it is about to check out (only
ones holding nothing of the user's: absent, empty, or a clean checkout); once a submodule
is at its recorded commit the entry goes. A later run may force a submodule that is still in
the record to its recorded commit, because the half state is the tool's own.

The record is `<superproject>/.git/mmlab-bootstrap-checkouts.json`: it describes that
repository, so it moves (or goes) with it, git never shows it, and it is written atomically.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

from mmlab_bootstrap.fs import write_atomically

RECORD_NAME = "mmlab-bootstrap-checkouts.json"
SUPERPROJECT = "."  # the superproject's own checkout under `--update`: "<commit> <branch ref>"


class CheckoutRecord:
    """Submodule path (relative to the superproject) -> the commit its checkout is heading to."""

    def __init__(self, root: Path) -> None:
        self.path = root / ".git" / RECORD_NAME
        self.started: dict[str, str] = {}
        with contextlib.suppress(FileNotFoundError, ValueError, NotADirectoryError):
            loaded = json.loads(self.path.read_text(encoding="utf-8")).get("started", {})
            self.started = {str(k): str(v) for k, v in loaded.items()}

    def start(self, entries: dict[str, str]) -> None:
        """Note checkouts about to begin (before any of them begins)."""
        if entries and not entries.items() <= self.started.items():
            self.started.update(entries)
            self._save()

    def finish(self, paths: Iterable[str]) -> None:
        """Forget checkouts that reached their commit."""
        gone = [path for path in paths if path in self.started]
        for path in gone:
            del self.started[path]
        if gone:
            self._save()

    def _save(self) -> None:
        if not self.path.parent.is_dir():
            return
        if not self.started:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        text = json.dumps({"version": 1, "started": self.started}, indent=1, sort_keys=True)
        write_atomically(self.path, text + "\n")

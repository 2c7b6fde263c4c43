"""What linking changed, per link location, so that `unlink` can put back exactly that.

Kept in `.mmlab-bootstrap-state.json` beside `.env`, rewritten atomically before each change
(so a killed run leaves a record of what it was about to do) and after it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import BootstrapError, shown
from .fsutil import write_atomically

STATE_FILE = ".mmlab-bootstrap-state.json"


class JournalError(BootstrapError):
    """The state file cannot be read."""


class Journal:
    """Entries keyed by link location; nothing is written under --dry."""

    def __init__(self, root: Path, *, dry: bool) -> None:
        self.path = root / STATE_FILE
        self.dry = dry
        self.links: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                self.links = dict(json.loads(self.path.read_text(encoding="utf-8"))["links"])
            except (ValueError, KeyError, TypeError) as error:
                raise JournalError(
                    f"{shown(str(self.path))} is damaged ({error})",
                    f"move it away (mv '{self.path}' '{self.path}.old'), then run it again",
                ) from error

    def entry(self, link: Path) -> dict[str, Any]:
        """What is recorded for a location (empty when nothing is)."""
        return dict(self.links.get(str(link), {}))

    def record(self, link: Path, **fields: Any) -> None:
        """Add facts about a location, and save them before going on."""
        self.links.setdefault(str(link), {}).update(fields)
        self._save()

    def forget(self, link: Path) -> None:
        """Drop a location once unlink has put everything back."""
        if self.links.pop(str(link), None) is not None:
            self._save()

    def _save(self) -> None:
        if self.dry:
            return
        text = json.dumps({"version": 1, "links": self.links}, indent=2, sort_keys=True)
        write_atomically(self.path, text + "\n")

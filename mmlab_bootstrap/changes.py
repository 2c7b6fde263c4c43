"""The apply layer: every filesystem change goes through here, or is only described under --dry."""

from __future__ import annotations

from pathlib import Path

from .fsutil import write_atomically
from .report import Reporter


class Changes:
    """Makes changes and reports them, or reports what it would make under --dry."""

    def __init__(self, report: Reporter, *, dry: bool) -> None:
        self.report = report
        self.dry = dry

    def make_folder(self, path: Path) -> None:
        """Create a folder and any missing parents."""
        if self.dry:
            self.report.would(f"create {path}")
            return
        path.mkdir(parents=True, exist_ok=True)
        self.report.done(f"created {path}")

    def write_file(self, path: Path, text: str) -> None:
        """Replace a file's text atomically (through a symlink, keeping the link)."""
        if self.dry:
            self.report.would(f"write {path}")
            return
        written = write_atomically(path, text)
        through = f" (through the link {path})" if written != path else ""
        self.report.done(f"wrote {written}{through}")

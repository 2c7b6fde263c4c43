"""The one seam for changes: every change to disk or git is made here, or under --dry only told.

Planning code looks and decides; applying code hands each change to `Changes.make` with the
line `--dry` shows for it and the function that makes it. Nothing else in the package asks
whether this is a dry run, so "what would change" and "what changed" cannot drift apart, and
a test can count or record what a run does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from mmlab_bootstrap.fs import make_folders, write_atomically
from mmlab_bootstrap.git import Answers
from mmlab_bootstrap.output import Reporter

T = TypeVar("T")


class Changes:
    """Makes changes, or reports what it would make under --dry; counts them either way."""

    def __init__(self, report: Reporter, *, dry: bool) -> None:
        self.report = report
        self.dry = dry
        self.made = 0  # changes made (or, under --dry, that would be made) so far
        self.answers = Answers()  # read-only git answers, valid until the next change

    def make(self, would: str | Sequence[str], act: Callable[[], T]) -> T | None:
        """Make one change by calling `act` (which reports what it did), or under --dry show
        `would` (one line or several) instead; None under --dry."""
        self.made += 1
        if self.dry:
            for line in [would] if isinstance(would, str) else would:
                self.report.would(line)
            return None
        self.answers.forget()
        self.answers.paused += 1
        try:
            return act()
        finally:
            self.answers.paused -= 1
            self.answers.forget()

    def after_changes(self, act: Callable[[], object]) -> None:
        """Work that only makes sense after real changes (bookkeeping such as a journal entry
        or removing a killed run's leftovers; the check after applying; the lock that real
        changes need; the lines that report them): done as it comes, and not at all under
        --dry, where none of it happened."""
        if not self.dry:
            act()

    def preview(self, act: Callable[[], object]) -> None:
        """Under --dry, show what `act` would change (it reaches `make`, which only shows);
        a real run does nothing here (e.g. the plan shown in full before a refusal)."""
        if self.dry:
            act()

    def would_be(self, if_dry: T, if_real: T) -> T:
        """The word (or value) for what changes made: `if_dry` under --dry, where they only
        would be made, else `if_real` (e.g. "would be" / "is" in a closing sentence)."""
        return if_dry if self.dry else if_real

    def make_folder(self, path: Path, *, note: str = "") -> None:
        """Create a folder and any missing parents (`note`: what its lines add)."""

        def create() -> None:
            make_folders(path)
            self.report.done(f"created {path}{note}")

        self.make(f"create {path}{note}", create)

    def write_file(self, path: Path, text: str, *, would: Sequence[str] = ()) -> None:
        """Replace a file's text atomically (through a symlink, keeping the link); `would`
        are the lines that tell what the new text changes (shown before the write)."""

        def write() -> None:
            for line in would:
                self.report.done(line)
            written = write_atomically(path, text)
            through = f" (through the link {path})" if written != path else ""
            self.report.done(f"wrote {written}{through}")

        self.make([*would, f"write {path}"], write)

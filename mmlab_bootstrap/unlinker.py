"""Undo links: remove a managed link and put back what linking replaced; stored data stays."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .excludes import drop_exclude
from .fsutil import fsync_folder
from .git import Git
from .inventory import skipped_files
from .journal import Journal
from .locations import (
    Location,
    backup_order,
    in_target,
    is_backup_name,
)
from .report import Reporter
from .transfer import (
    copy_verified,
)


@dataclass
class Unlinker:
    """Removes managed links and puts back what linking replaced; never deletes stored data."""

    git: Git
    report: Reporter
    dry: bool
    journal: Journal

    def apply(self, location: Location) -> None:
        """Remove the link if it is ours; put back the backup, adopted files or old link."""
        entry = self.journal.entry(location.link)
        if entry.get("target"):  # where linking put things, even if the settings moved since
            location = replace(location, target=Path(entry["target"]))
        link, target = location.link, location.target
        if link.is_symlink() and os.path.realpath(link) != os.path.realpath(target):
            self.report.warn(f"left alone: {link} links to {os.readlink(link)}, not to {target}")
            return
        linked = link.is_symlink()
        skipped = skipped_files(self.git, location)
        adopted = set(skipped) | set(entry.get("adopted_tracked", ()))
        backup = self._backup_to_restore(location, entry, linked)
        missing = self._missing_after(location, adopted, linked, backup)
        previous = entry.get("previous_link") if backup is None and not missing else None
        if not linked and backup is None and not adopted:
            self.report.unchanged(f"not linked: {link}")
            self.journal.forget(link)
            return
        if self.dry:
            what = (
                f" and restore {backup.name}"
                if backup
                else f" and put back the link to {previous}"
                if previous
                else ""
            ) + (f" and restore {len(missing)} tracked files" if missing else "")
            self.report.would(f"remove the link {link}{what}")
            return
        if linked:
            os.unlink(link)
        if backup is not None and not os.path.lexists(link):
            os.rename(backup, link)
            fsync_folder(location.project_dir)
        elif previous and not os.path.lexists(link):
            os.symlink(previous, link)
        from_git = []
        copied = 0
        for relative in sorted(p for p in adopted if not os.path.lexists(location.project_dir / p)):
            stored = in_target(location, relative)
            if os.path.lexists(stored):
                copy_verified(stored, location.project_dir / relative)
                copied += 1
            else:
                from_git.append(relative)
        if skipped:  # restoring files leaves git's skip-worktree flags as they were
            self.git.change(
                ["update-index", "--no-skip-worktree", "--", *skipped], cwd=location.project_dir
            )
        if from_git:  # gone from storage too: git's copy (it skips skip-worktree files)
            self.git.change(["checkout", "--", *from_git], cwd=location.project_dir)
        drop_exclude(self.git, location)
        self.journal.forget(link)
        said = []
        if backup is not None:
            said.append(f"restored it from {backup.name}")
        elif previous:
            said.append(f"put back the link to {previous}")
        if copied:
            said.append(
                f"restored {copied} tracked files, copied from {target}"
                " (what is stored there stays)"
            )
        if from_git:
            said.append(f"checked out {len(from_git)} tracked files from git")
        if not said:
            said.append(
                f"files stored in {target} stay there"
                if _holds_anything(target)
                else f"nothing is stored in {target}"
            )
        self.report.done(f"unlinked {link}; " + "; ".join(said))

    def _missing_after(
        self, location: Location, adopted: set[str], linked: bool, backup: Path | None
    ) -> list[str]:
        """Adopted tracked files that will not be at their place once the link is removed."""
        if backup is not None:
            base = backup
        elif linked:
            return sorted(adopted)
        else:
            base = location.link
        return sorted(
            relative
            for relative in adopted
            if not os.path.lexists(base / os.path.relpath(relative, location.leaf))
        )

    def _backup_to_restore(
        self, location: Location, entry: dict[str, Any], linked: bool
    ) -> Path | None:
        """The backup linking made (from the journal), else the newest one found."""
        if linked or not os.path.lexists(location.link):
            recorded = entry.get("backup")
            if recorded and os.path.lexists(recorded):
                return Path(recorded)
            found = sorted(
                (
                    name
                    for name in os.listdir(location.project_dir)
                    if is_backup_name(location.leaf, name)
                ),
                key=lambda name: backup_order(location.leaf, name),
            )
            if found:
                return location.project_dir / found[-1]
        return None


def _holds_anything(folder: Path) -> bool:
    """Whether a folder exists and has at least one entry (looks no deeper)."""
    try:
        with os.scandir(folder) as scan:
            return any(True for _ in scan)
    except OSError:
        return False

"""Undo links: remove a managed link and put back what linking replaced; stored data stays."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from mmlab_bootstrap.fs import copy_verified, fsync_folder
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.links.excludes import drop_exclude
from mmlab_bootstrap.links.inventory import skipped_files
from mmlab_bootstrap.links.journal import Journal, journal_of
from mmlab_bootstrap.links.location import (
    Location,
    backup_order,
    check_projects,
    in_target,
    is_backup_name,
    locations,
    recorded_locations,
)
from mmlab_bootstrap.output import Reporter
from mmlab_bootstrap.run import Changes, Counted, Session, StepResult, workspace_git


class UnlinkPlan(NamedTuple):
    """A location, what unlinking finds there, and what it will put back (the unlink planner's
    answer, mirroring the link plan): decided before anything moves."""

    location: Location  # its target is where linking put things (the journal's, if recorded)
    linked: bool = False  # the location is our link (to the target)
    foreign: str = ""  # a link elsewhere, left alone: where it leads
    skipped: tuple[str, ...] = ()  # tracked files git skips (adopted into storage)
    adopted: tuple[str, ...] = ()  # those and the ones the journal names
    backup: Path | None = None  # the backup to rename back
    missing: tuple[str, ...] = ()  # adopted files not at their place once the link is gone
    previous: str = ""  # the link linking replaced, to put back

    @property
    def nothing_to_do(self) -> bool:
        return not self.foreign and not self.linked and self.backup is None and not self.adopted

    def describe(self) -> str:
        """The --dry line."""
        what = (
            f" and restore {self.backup.name}"
            if self.backup
            else f" and put back the link to {self.previous}"
            if self.previous
            else ""
        ) + (f" and restore {len(self.missing)} tracked files" if self.missing else "")
        return f"remove the link {self.location.link}{what}"


def plan_unlink(location: Location, git: Git, journal: Journal) -> UnlinkPlan:
    """Look at one location and decide what unlinking it puts back. Changes nothing."""
    entry = journal.entry(location.link)
    if entry.get("target"):  # where linking put things, even if the settings moved since
        location = location._replace(target=Path(entry["target"]))
    link, target = location.link, location.target
    if link.is_symlink() and os.path.realpath(link) != os.path.realpath(target):
        return UnlinkPlan(location, foreign=os.readlink(link))
    linked = link.is_symlink()
    skipped = skipped_files(git, location)
    adopted = set(skipped) | set(entry.get("adopted_tracked", ()))
    backup = _backup_to_restore(location, entry, linked)
    missing = _missing_after(location, adopted, linked, backup)
    previous = entry.get("previous_link") if backup is None and not missing else None
    return UnlinkPlan(
        location,
        linked,
        "",
        skipped,
        tuple(sorted(adopted)),
        backup,
        tuple(missing),
        previous or "",
    )


@dataclass
class Unlinker:
    """The unlink applier: removes managed links and puts back what linking replaced, each
    change through `changes`; never deletes stored data."""

    git: Git
    report: Reporter
    changes: Changes
    journal: Journal

    def apply(self, plan: UnlinkPlan) -> None:
        """Carry out an unlink plan."""
        location = plan.location
        if plan.foreign:
            self.report.warn(
                f"left alone: {location.link} links to {plan.foreign}, not to {location.target}"
            )
        elif plan.nothing_to_do:
            self.report.unchanged(f"not linked: {location.link}")
            self.changes.after_changes(lambda: self.journal.forget(location.link))
        else:
            self.changes.make(plan.describe(), lambda: self._undo(plan))

    def _undo(self, plan: UnlinkPlan) -> None:
        location, backup, previous = plan.location, plan.backup, plan.previous
        link, target = location.link, location.target
        if plan.linked:
            os.unlink(link)
        if backup is not None and not os.path.lexists(link):
            os.rename(backup, link)
            fsync_folder(location.project_dir)
        elif previous and not os.path.lexists(link):
            os.symlink(previous, link)
        from_git = []
        copied = 0
        for relative in sorted(
            p for p in plan.adopted if not os.path.lexists(location.project_dir / p)
        ):
            stored = in_target(location, relative)
            if os.path.lexists(stored):
                copy_verified(stored, location.project_dir / relative)
                copied += 1
            else:
                from_git.append(relative)
        if plan.skipped:  # restoring files leaves git's skip-worktree flags as they were
            self.git.change(
                ["update-index", "--no-skip-worktree", "--", *plan.skipped],
                cwd=location.project_dir,
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
    location: Location, adopted: set[str], linked: bool, backup: Path | None
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


def _backup_to_restore(location: Location, entry: dict[str, Any], linked: bool) -> Path | None:
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


def unlink_step(
    session: Session, flags: Mapping[str, str | None], variables: tuple[str, ...]
) -> StepResult:
    """Remove managed links and put back what linking replaced; stored data stays.
    Every location is planned before any is changed."""
    counted = Counted(session)
    settings = session.settings(flags)
    check_projects(settings)
    git = workspace_git(session, settings)
    plans: list[UnlinkPlan] = [
        plan_unlink(location, git, journal_of(session))
        for variable in variables
        for location in locations(settings, variable)
    ]
    for location in recorded_locations(settings, variables, journal_of(session).links):
        project = location.project_dir
        if project.is_dir() and not project.is_symlink():  # (as check_projects asks)
            plans.append(plan_unlink(location, git, journal_of(session)))
        else:
            session.report.warn(
                f"left alone: {location.link} (recorded in the journal): {project} is not a"
                " folder of the extension now"
            )
    unlinker = Unlinker(git, session.report, session.changes, journal_of(session))
    for plan in plans:
        unlinker.apply(plan)
    return counted.result(settings, plans)

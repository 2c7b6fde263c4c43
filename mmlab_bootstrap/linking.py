"""Carry out link plans, and undo them: every change here keeps every byte somewhere named."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import shown
from .fsutil import fsync_folder, write_atomically
from .git import Git
from .journal import Journal
from .links import (
    LinkError,
    LinkPlan,
    Location,
    State,
    Way,
    backup_order,
    human_size,
    in_target,
    is_backup_name,
    link_destination,
    resolves,
)
from .report import Reporter
from .transfer import (
    TransferError,
    copy_verified,
    move_tree,
    remove_empty_tree,
    remove_if_unchanged,
    remove_leftovers,
    temporary_name,
)

EXCLUDE_MARK = "# mmlab-bootstrap: {leaf} link (inv unlink removes this block)"


@dataclass
class Linker:
    """Applies link plans; under --dry only says what it would do."""

    git: Git
    report: Reporter
    dry: bool
    journal: Journal
    relative: bool = False

    def apply(self, plan: LinkPlan) -> None:
        """Make the location a link to its target, keeping what was there."""
        location, state = plan.location, plan.state
        link, target = location.link, location.target
        if state is State.LINKED:
            if not target.is_dir() and not self.dry:
                target.mkdir(parents=True)  # the link was there before its target
            self.report.unchanged(f"already linked {link}")
            return
        destination = self.destination(location)
        if self.dry:
            self.report.would(self.describe(plan, destination))
            return
        try:
            self._change(plan, destination)
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise LinkError(
                f"linking {link} stopped part way: {error.strerror or error}{where}; nothing is"
                f" lost: what moved is in {target}, the rest is still at {link}",
                "fix the cause (free space, permissions), then run the same command again:"
                " it goes on from there",
            ) from error
        except TransferError as error:
            raise LinkError(
                f"linking {link} stopped part way: {error.message}; nothing is lost: what moved"
                f" is in {target}, the rest is still at {link}",
                error.hint,
            ) from error

    def _change(self, plan: LinkPlan, destination: str) -> None:
        location, state = plan.location, plan.state
        link, target = location.link, location.target
        target.mkdir(parents=True, exist_ok=True)
        self.journal.record(
            link,
            target=str(target),
            destination=destination,
            found=state.value,
            previous_link=plan.old_destination or None,
            adopted_tracked=list(plan.inventory.tracked),
        )
        if state in (State.ABSENT, State.OTHER_LINK, State.BROKEN_LINK):
            self._link(location, destination)
            was = f" (was -> {plan.old_destination})" if plan.old_destination else ""
            verb = "linked" if state is State.ABSENT else "relinked"
            self.report.done(f"{verb} {link} -> {destination}{was}")
        elif state is State.EMPTY:
            remove_empty_tree(link)
            self._link(location, destination)
            self.report.done(f"linked {link} -> {destination} (replaced an empty folder)")
        elif state is State.TRACKED:
            copied = self._adopt_tracked(location, plan.inventory.tracked, source=location.link)
            remove_empty_tree(link)
            self._link(location, destination)
            self.report.done(
                f"adopted {copied} tracked files into {target}; linked {link} -> {destination}"
            )
        elif plan.way is Way.BACKUP:
            backup = backup_path(location)
            self.journal.record(link, backup=str(backup))
            os.rename(location.link, backup)
            fsync_folder(location.project_dir)
            self._adopt_tracked(location, plan.inventory.tracked, source=backup)
            self._link(location, destination)
            self.report.done(f"backed up {link} to {backup}; linked {link} -> {destination}")
        else:
            self.journal.record(link, adopted_into=str(target), adopted=list(plan.inventory.files))
            moved = self._adopt_everything(plan)
            remove_empty_tree(link)
            self._link(location, destination)
            self.report.done(
                f"adopted {moved} files ({human_size(plan.inventory.size)}) into {target};"
                f" linked {link} -> {destination}"
            )
        self._exclude(location)
        self.journal.record(link, linked=True)

    def destination(self, location: Location) -> str:
        """What the link holds: the absolute target, or one relative to the link's folder."""
        return link_destination(location, relative=self.relative)

    def describe(self, plan: LinkPlan, destination: str) -> str:
        """The --dry line for a plan."""
        link, state = plan.location.link, plan.state
        what = {
            State.ABSENT: f"link {link} -> {destination}",
            State.OTHER_LINK: f"relink {link} -> {destination} (was -> {plan.old_destination})",
            State.BROKEN_LINK: f"relink {link} -> {destination} (was -> {plan.old_destination})",
            State.EMPTY: f"replace the empty folder {link} with a link -> {destination}",
            State.TRACKED: f"adopt {len(plan.inventory.tracked)} tracked files into"
            f" {plan.location.target}, then link {link} -> {destination}",
        }.get(state)
        if what is None:
            verb = "back up" if plan.way is Way.BACKUP else "adopt"
            what = (
                f"{verb} {len(plan.inventory.files)} files ({human_size(plan.inventory.size)})"
                f" at {link}, then link it -> {destination}"
            )
        return f"{what}  [{state.value}]"

    def _link(self, location: Location, destination: str) -> None:
        """Put a symlink at the location atomically: made aside, checked, then renamed over."""
        if not resolves(location, destination):
            raise LinkError(
                f"a link at {shown(str(location.link))} holding {shown(destination)} would not"
                f" lead to {shown(str(location.target))}",
                "run the same command without --relative",
            )
        remove_leftovers(location.project_dir, location.leaf)
        temporary = temporary_name(location.link, "link")  # unique: never a user's file
        os.symlink(destination, temporary)
        try:
            if os.path.realpath(temporary) != os.path.realpath(location.target):
                raise LinkError(
                    f"a link holding {shown(destination)} did not lead to"
                    f" {shown(str(location.target))}; nothing was linked",
                    "run the same command without --relative",
                )
            os.replace(temporary, location.link)
        except BaseException:
            if os.path.lexists(temporary):
                os.unlink(temporary)
            raise
        fsync_folder(location.project_dir)

    def _adopt_tracked(self, location: Location, tracked: tuple[str, ...], source: Path) -> int:
        """Copy tracked files into the target, verified, and tell git to leave them be."""
        for folder in sorted({in_target(location, relative).parent for relative in tracked}):
            remove_leftovers(folder)
        copied = [
            copy_verified(
                source / os.path.relpath(relative, location.leaf), in_target(location, relative)
            )
            for relative in tracked
        ]
        self._skip_worktree(location, tracked)
        if source == location.link:
            for relative, status in zip(tracked, copied, strict=True):
                remove_if_unchanged(location.project_dir / relative, status)
        return len(tracked)

    def _adopt_everything(self, plan: LinkPlan) -> int:
        """Move every file at the location into the target (rename, or copy+verify+remove)."""
        location = plan.location
        same_device = os.stat(location.link).st_dev == os.stat(location.target).st_dev
        if not same_device:
            self.report.info(
                f"moving {len(plan.inventory.files)} files ({human_size(plan.inventory.size)})"
                f" from {location.link} to another filesystem: copy, verify sizes, then remove"
            )
        move_tree(location.link, location.target, same_device=same_device)
        self._skip_worktree(location, plan.inventory.tracked)
        return len(plan.inventory.files)

    def _skip_worktree(self, location: Location, tracked: tuple[str, ...]) -> None:
        """Tell the sub-project's git to leave adopted files be (they live in storage now)."""
        if tracked:
            self.git.change(
                ["update-index", "--skip-worktree", "--", *tracked], cwd=location.project_dir
            )

    def _exclude(self, location: Location) -> None:
        """Hide the link (and backups) from `git status` in the sub-project's local exclude."""
        shown = self.git.probe(
            ["status", "--porcelain", "--", location.leaf, f"{location.leaf}.bak-*"],
            cwd=location.project_dir,
        )
        if not shown.ok or "??" not in shown.out:
            return
        exclude = exclude_file(self.git, location.project_dir)
        if exclude is None:
            return
        text = exclude.read_text() if exclude.exists() else ""
        block = exclude_block(location.leaf)
        if block in text:
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(exclude, text + ("" if not text or text.endswith("\n") else "\n") + block)


def backup_path(location: Location) -> Path:
    """A free `<leaf>.bak-<timestamp>[-N]` name beside the location."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = location.link.with_name(f"{location.leaf}.bak-{stamp}")
    number = 1
    while os.path.lexists(backup):
        number += 1
        backup = location.link.with_name(f"{location.leaf}.bak-{stamp}-{number}")
    return backup


def exclude_file(git: Git, project_dir: Path) -> Path | None:
    """The sub-project's `.git/info/exclude` (wherever its git folder is)."""
    where = git.probe(
        ["rev-parse", "--path-format=absolute", "--git-path", "info/exclude"], cwd=project_dir
    )
    return Path(where.out.strip()) if where.ok and where.out.strip() else None


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
        copied = checked_out = 0
        for relative in sorted(p for p in adopted if not os.path.lexists(location.project_dir / p)):
            stored = in_target(location, relative)
            if os.path.lexists(stored):
                copy_verified(stored, location.project_dir / relative)
                copied += 1
            else:
                self.git.change(["checkout", "--", relative], cwd=location.project_dir)
                checked_out += 1
        if skipped:  # restoring files leaves git's skip-worktree flags as they were
            self.git.change(
                ["update-index", "--no-skip-worktree", "--", *skipped], cwd=location.project_dir
            )
        self._drop_exclude(location)
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
        if checked_out:
            said.append(f"checked out {checked_out} tracked files from git")
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

    def _drop_exclude(self, location: Location) -> None:
        exclude = exclude_file(self.git, location.project_dir)
        if exclude is None or not exclude.exists():
            return
        text = exclude.read_text()
        block = exclude_block(location.leaf)
        if block in text:
            write_atomically(exclude, text.replace(block, ""))


def _holds_anything(folder: Path) -> bool:
    """Whether a folder exists and has at least one entry (looks no deeper)."""
    try:
        with os.scandir(folder) as scan:
            return any(True for _ in scan)
    except OSError:
        return False


def exclude_block(leaf: str) -> str:
    """The lines linking adds to a sub-project's `.git/info/exclude`."""
    return f"{EXCLUDE_MARK.format(leaf=leaf)}\n/{leaf}\n/{leaf}.bak-*\n"


def skipped_files(git: Git, location: Location) -> tuple[str, ...]:
    """Tracked files under the leaf that are marked skip-worktree (those linking adopted)."""
    listing = git.probe(["ls-files", "-v", "-z", "--", location.leaf], cwd=location.project_dir)
    if not listing.ok:
        return ()
    return tuple(entry[2:] for entry in listing.out.split("\0") if entry.startswith("S "))

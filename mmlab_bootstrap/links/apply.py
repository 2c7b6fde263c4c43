"""The link applier: carries out link plans; every change keeps every byte somewhere named."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmlab_bootstrap.fs import (
    TRANSFER_TEMPORARY,
    TransferError,
    copy_verified,
    fsync_folder,
    make_folders,
    move_tree,
    remove_empty_tree,
    remove_leftovers,
    temporary_beside,
)
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.links.describe import carry_text, describe, old_data_text
from mmlab_bootstrap.links.excludes import add_exclude, has_exclude
from mmlab_bootstrap.links.journal import Journal
from mmlab_bootstrap.links.location import LinkError, Location, in_target, link_destination
from mmlab_bootstrap.links.plan import LinkPlan, OldData, State, Way
from mmlab_bootstrap.links.skipworktree import adopt_tracked, skip_worktree
from mmlab_bootstrap.links.swap import backup_path, swap_in_link
from mmlab_bootstrap.output import Reporter, human_size
from mmlab_bootstrap.run import Changes
from mmlab_bootstrap.settings import device_of, route_note


@dataclass
class Linker:
    """The link applier: carries out link plans, each change through `changes`."""

    git: Git
    report: Reporter
    changes: Changes
    journal: Journal
    relative: bool = False

    def apply(self, plan: LinkPlan) -> None:
        """Make the location a link to its target, keeping what was there."""
        location = plan.location
        if plan.state is State.LINKED:
            if not location.target.is_dir():  # the link was there before its target
                self.changes.make_folder(location.target)
            if plan.carried:
                self.changes.make(carry_text(plan), lambda: self._carry(plan))
            if plan.data_from:  # a killed --move-data got past the link
                self.changes.make(old_data_text(plan), lambda: self._old_data(plan))
            elif not plan.carried:
                self.report.unchanged(
                    f"already linked {location.link}{route_note(location.target)}"
                )
            if plan.repairs:
                self.changes.make(plan.repairs, lambda: self._repair_bookkeeping(location))
            return
        destination = self.destination(location)
        would = [carry_text(plan)] if plan.carried else []
        would += [old_data_text(plan)] if plan.data_from else []
        self.changes.make([*would, describe(plan, destination)], lambda: self._change_safely(plan))

    def _change_safely(self, plan: LinkPlan) -> None:
        """Make the change; a failure part way says where everything is."""
        link, target = plan.location.link, plan.location.target
        try:
            self._change(plan, self.destination(plan.location))
        except OSError as error:
            where = f" ({error.filename})" if error.filename else ""
            raise LinkError(
                f"linking {link} stopped part way: {error.strerror or error}{where}; nothing is"
                f" lost: what moved is in {target}, the rest is still at {link}",
                "fix the cause (free space, permissions), then run the same command again:"
                " it goes on from there",
                rerun_helps=True,
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
        make_folders(target)  # (shared with the team in a shared root)
        earlier = self.journal.entry(link)
        if self._replaces_own_link(plan, earlier):  # unlink puts back what was there first
            found, previous = earlier.get("found", state.value), earlier.get("previous_link")
        else:
            found, previous = state.value, plan.old_destination or None
        self.journal.record(
            link,
            target=str(target),
            destination=destination,
            found=found,
            previous_link=previous,
            adopted_tracked=self._adopted(plan),
            device=device_of(target),  # a disk mounted over the root later is noticed
            **self._old_data_facts(plan),
        )
        self._carry(plan)
        self._old_data(plan)
        skip_worktree(self.git, location, plan.inventory.tracked_moved)
        retired = self._retire_stale(plan)
        note = route_note(target)  # where the files really go, when a symlink leads elsewhere
        if state in (State.ABSENT, State.OTHER_LINK, State.BROKEN_LINK):
            swap_in_link(location, destination)
            was = f" (was -> {plan.old_destination})" if plan.old_destination else ""
            verb = "linked" if state is State.ABSENT else "relinked"
            self.report.done(f"{verb} {link} -> {destination}{was}{note}")
        elif state is State.EMPTY:
            remove_empty_tree(link)
            swap_in_link(location, destination)
            self.report.done(f"linked {link} -> {destination} (replaced an empty folder){note}")
        elif state is State.TRACKED:
            copied = adopt_tracked(self.git, location, plan.inventory.tracked, source=location.link)
            remove_empty_tree(link)
            swap_in_link(location, destination)
            self.report.done(
                f"adopted {copied} tracked files into {target}; linked {link} -> {destination}"
                + note
            )
        elif plan.way is Way.BACKUP:
            backup = backup_path(location)
            self.journal.record(link, backup=str(backup))
            os.rename(location.link, backup)
            fsync_folder(location.project_dir)
            adopt_tracked(self.git, location, plan.inventory.tracked, source=backup)
            swap_in_link(location, destination)
            self.report.done(f"backed up {link} to {backup}; linked {link} -> {destination}{note}")
        else:
            # One file per folder names every folder a killed copy can leave a temporary in
            # (see _remove_adopt_leftovers), not hundreds of thousands of paths.
            folders = {path.rpartition("/")[0]: path for path in plan.inventory.files}
            self.journal.record(link, adopted_into=str(target), adopted=sorted(folders.values()))
            moved = self._adopt_everything(plan)
            remove_empty_tree(link)
            swap_in_link(location, destination)
            self.report.done(
                f"adopted {moved} files ({human_size(plan.inventory.size)}) into {target};"
                f" linked {link} -> {destination}{note}"
            )
        self._remove_adopt_leftovers(location)
        add_exclude(self.git, location)
        self.journal.record(link, linked=True, excluded=has_exclude(self.git, location))
        for path in retired:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a stale copy this run moved aside
        if retired:
            self.report.done(
                f"replaced {len(retired)} outdated cop(ies) of tracked files in {target}"
                " (git holds those versions)"
            )

    def _remove_adopt_leftovers(self, location: Location) -> None:
        """A killed `--adopt` may have left a temporary copy in a target folder that no later
        run moves into (a `--backup` finished the link instead, or that folder was done): the
        journal names the files it was moving, so their folders are looked at, and nothing else
        of a possibly huge dataset."""
        moving = self.journal.entry(location.link).get("adopted") or []
        for folder in sorted({in_target(location, relative).parent for relative in moving}):
            remove_leftovers(folder)
        if moving:  # looked at once: a linked location's re-runs need not again
            self.journal.record(location.link, adopted=[])

    def _retire_stale(self, plan: LinkPlan) -> list[Path]:
        """Move stale copies of tracked files in the target aside (to temporaries a killed run's
        successor removes): their bytes are in git, and the current version takes their place."""
        retired = []
        for relative in plan.stale:
            stored = in_target(plan.location, relative)
            if not stored.is_file() or stored.is_symlink():
                continue
            aside = temporary_beside(stored, TRANSFER_TEMPORARY, purpose="copy")
            os.rename(stored, aside)
            retired.append(aside)
        return retired

    def _repair_bookkeeping(self, location: Location) -> None:
        """Add the bookkeeping `repairs.plan_repairs` found missing."""
        entry = self.journal.entry(location.link)
        device = device_of(location.target)
        if not entry:
            self.journal.record(
                location.link, target=str(location.target), linked=True, device=device
            )
        elif entry.get("device", device) != device:  # a disk mounted over the root: warned
            self.journal.record(location.link, device=device)
            self.report.done(f"recorded that {location.target} is on another filesystem now")
        self._remove_adopt_leftovers(location)  # a run killed after linking did not get to it
        if add_exclude(self.git, location):
            self.report.done(f"hid {location.link} from git status (.git/info/exclude)")
        self.journal.record(location.link, excluded=has_exclude(self.git, location))

    @staticmethod
    def _replaces_own_link(plan: LinkPlan, earlier: dict[str, Any]) -> bool:
        """Whether the link being replaced is one this tool made (to the recorded target)."""
        recorded = earlier.get("target")
        if not (plan.old_destination and earlier.get("linked") and isinstance(recorded, str)):
            return False
        old = plan.location.project_dir / plan.old_destination
        return os.path.realpath(old) == os.path.realpath(recorded)

    def _adopted(self, plan: LinkPlan) -> list[str]:
        """The tracked files this link holds for git: adopted now, or carried with it."""
        adopted = set(plan.inventory.tracked) | {relative for relative, _ in plan.carried}
        adopted |= set(plan.inventory.tracked_moved)
        if plan.state not in (State.TRACKED, State.USER_DATA):  # a relink keeps earlier ones
            earlier = self.journal.entry(plan.location.link).get("adopted_tracked")
            if isinstance(earlier, list):
                adopted |= {path for path in earlier if isinstance(path, str)}
        return sorted(adopted)

    def _carry(self, plan: LinkPlan) -> None:
        """Copy tracked files adopted earlier from the old target into the new one, verified;
        the old copies stay where they are."""
        if not plan.carried:
            return
        location = plan.location
        if plan.state is State.LINKED:
            make_folders(location.target)
            self.journal.record(location.link, adopted_tracked=self._adopted(plan))
        for relative, source in plan.carried:
            copy_verified(Path(source), in_target(location, relative))
        self.report.done(carry_text(plan, verb="carried"))

    def _old_data_facts(self, plan: LinkPlan) -> dict[str, Any]:
        """What the journal must know of the old target in the same write that names the new
        target: a run killed before the move began (while carrying) still knows where the
        user's files are."""
        if not plan.data_from:
            return {}
        if plan.old_data is OldData.MOVE:
            return {"moving_from": plan.data_from}
        left = self.journal.entry(plan.location.link).get("left_data_in") or []
        return {"left_data_in": sorted({*left, plan.data_from}), "moving_from": None}

    def _old_data(self, plan: LinkPlan) -> None:
        """Move the user's data from the old target into the new one (`--move-data`), or note
        that it stays there (`--leave-data`). The journal names the old target before the first
        file moves, and the folders a killed copy may leave a temporary in, so a re-run with
        --move-data goes on from where a killed one stopped."""
        if not plan.data_from:
            return
        location, old = plan.location, Path(plan.data_from)
        link, target = location.link, location.target
        count, size = len(plan.data_files), human_size(plan.data_size)
        if plan.old_data is OldData.LEAVE:
            self.journal.record(link, **self._old_data_facts(plan))
            self.report.warn(
                f"left {count} file(s) of yours ({size}) in the old target {old} (--leave-data);"
                " status names it until it is empty"
            )
            return
        target.mkdir(parents=True, exist_ok=True)
        folders = {path.rpartition("/")[0]: path for path in plan.data_files}
        self.journal.record(
            link, moving_from=str(old), adopted_into=str(target), adopted=sorted(folders.values())
        )
        same_device = os.stat(old).st_dev == os.stat(target).st_dev
        if not same_device:
            self.report.info(
                f"moving {count} files ({size}) from {old} to another filesystem: copy, verify"
                " sizes, then remove"
            )
        move_tree(old, target, same_device=same_device)
        for folder, _, _ in os.walk(old):  # what a killed copy left there is the tool's own
            remove_leftovers(Path(folder))
        remove_empty_tree(old)
        left = self.journal.entry(link).get("left_data_in") or []
        self.journal.record(
            link,
            moving_from=None,
            adopted=[],
            left_data_in=[path for path in left if path != str(old)],
        )
        self.report.done(f"moved {count} file(s) of yours ({size}) from {old} into {target}")

    def destination(self, location: Location) -> str:
        """What the link holds: the absolute target, or one relative to the link's folder."""
        return link_destination(location, relative=self.relative)

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
        # move_tree cleared every target folder it moved into of leftovers (and left none of
        # its own): the journal need not send `_remove_adopt_leftovers` through them again.
        self.journal.record(location.link, adopted=[])
        skip_worktree(self.git, location, plan.inventory.tracked)
        return len(plan.inventory.files)

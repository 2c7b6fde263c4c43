"""Planning the carry: tracked files an earlier link adopted follow the link to a new target."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmlab_bootstrap.fs import same_file_content
from mmlab_bootstrap.git import Git, sparse_checkout
from mmlab_bootstrap.links.clashes import blocked, clash_text, clashes_in_target
from mmlab_bootstrap.links.inventory import Inventory, files_of_user, skipped_files
from mmlab_bootstrap.links.location import Location, in_target
from mmlab_bootstrap.links.plan import LinkPlan, OldData, State, Way, space_problem
from mmlab_bootstrap.output import human_size, some_names

_LINKING = (State.ABSENT, State.OTHER_LINK, State.BROKEN_LINK, State.EMPTY, State.LINKED)


def carry_adopted(plan: LinkPlan, git: Git, recorded: Mapping[str, Any]) -> LinkPlan:
    """Files an earlier link adopted (skip-worktree: git no longer looks for them) live in
    the old target; a link to a new target must carry them there, or they vanish unnoticed.

    Each one is found in the old target (the link's current destination, or the target and
    link the journal recorded) and planned for a verified copy; a different file of that
    name in the new target, or a file found nowhere, refuses the location, naming them.
    """
    if plan.refused or plan.state not in _LINKING:
        return plan
    location = plan.location
    skipped = skipped_files(git, location)
    if skipped and sparse_checkout(git, location.project_dir):
        adopted = recorded.get("adopted_tracked")
        skipped = tuple(p for p in skipped if isinstance(adopted, list) and p in adopted)
    if not skipped:
        return plan
    olds = _old_targets(plan, recorded)
    carried: list[tuple[str, str]] = []
    clashes: list[str] = []
    lost: list[str] = []
    for relative in skipped:
        destination = in_target(location, relative)
        inside = os.path.relpath(relative, location.leaf)
        source = next((old / inside for old in olds if os.path.lexists(old / inside)), None)
        if source is None:
            if not os.path.lexists(destination):
                lost.append(relative)
        elif os.path.lexists(destination):
            if not same_file_content(source, destination):
                clashes.append(relative)
        elif blocked(destination.parent, location.target):
            clashes.append(relative)
        else:
            carried.append((relative, str(source)))
    if clashes:
        where = " or ".join(str(old) for old in olds)
        return plan._replace(
            problem=f"{clash_text(clashes)} (tracked files adopted earlier, in {where});"
            " move one of each pair away",
        )
    if lost:
        return plan._replace(
            problem=f"{len(lost)} tracked file(s) adopted earlier (skip-worktree) are neither"
            f" in {location.target} nor in the old target: {some_names(lost)}",
            hint=f"get them back from git: inv unlink --{location.leaf}; then link again:"
            f" inv link-{location.leaf}",
        )
    return plan._replace(carried=tuple(carried))


def _old_targets(plan: LinkPlan, recorded: Mapping[str, Any]) -> list[Path]:
    """Folders the location linked to before: its link now, the journal's target and link."""
    location = plan.location
    candidates = []
    if plan.state is State.OTHER_LINK:
        candidates.append(os.path.realpath(location.link))
    if isinstance(recorded.get("target"), str):
        candidates.append(os.path.realpath(recorded["target"]))
    if isinstance(recorded.get("previous_link"), str):
        candidates.append(os.path.realpath(location.project_dir / recorded["previous_link"]))
    new = os.path.realpath(location.target)
    olds: list[Path] = []
    for candidate in candidates:
        if candidate != new and os.path.isdir(candidate) and Path(candidate) not in olds:
            olds.append(Path(candidate))
    return olds


def plan_old_data(
    plan: LinkPlan, git: Git, recorded: Mapping[str, Any], choice: OldData
) -> LinkPlan:
    """A relink away from the target the journal records (or from one a killed `--move-data`
    was emptying) that holds the user's data: refused, naming it, unless `choice` moves it
    into the new target (`--move-data`: refused on clashes there, as `--adopt` is) or leaves
    it (`--leave-data`). What the tool put there itself (tracked files adopted into storage,
    carried along anyway; its temporaries) is not the user's data."""
    if plan.refused or plan.state not in _LINKING:
        return plan
    location = plan.location
    olds = _recorded_olds(location, recorded)
    if not olds:  # (a linked location's re-run: nothing more to look at)
        return plan
    ours = set(skipped_files(git, location)) | {relative for relative, _ in plan.carried}
    adopted = recorded.get("adopted_tracked")
    if isinstance(adopted, list):
        ours |= {path for path in adopted if isinstance(path, str)}
    holding = []
    for old in olds:
        files, size, specials = files_of_user(old, location.leaf, ours)
        if files or specials:
            holding.append((old, files, size, specials))
    moving = recorded.get("moving_from")
    if not holding and choice is OldData.MOVE and isinstance(moving, str) and Path(moving) in olds:
        # A killed --move-data got every file across: what is left to do is removing the old
        # target's emptied folders (and the temporaries a killed copy left there).
        return plan._replace(data_from=moving, data_files=(), data_size=0, old_data=choice)
    if not holding:
        return plan
    if len(holding) > 1:
        return plan._replace(
            problem="its earlier targets "
            + " and ".join(str(old) for old, *_ in holding)
            + " both hold files of yours; move one into the other by hand first",
        )
    old, files, size, specials = holding[0]
    plan = plan._replace(data_from=str(old), data_files=files, data_size=size, old_data=choice)
    if specials:
        return plan._replace(
            problem=f"its old target {old} holds {len(specials)} device(s), FIFO(s) or"
            f" socket(s), which cannot be moved: {some_names(specials)}; move them elsewhere"
            " first",
        )
    if choice is OldData.REFUSE:
        return plan._replace(
            problem=f"a relink to {location.target} would leave {len(files)} file(s) of yours"
            f" ({human_size(size)}) in its old target {old}: {some_names(list(files))}",
        )
    if choice is OldData.LEAVE:
        return plan
    new = Path(os.path.realpath(location.target))
    real_old = Path(os.path.realpath(old))
    if new in real_old.parents or real_old in new.parents:
        return plan._replace(
            problem=f"the new target {location.target} and the old target {old} lie inside one"
            " another; move the data by hand",
        )
    # The old target as if it were the location: the clash and space checks of --adopt.
    moving = Location(location.project, location.variable, old, location.target)
    clashes = clashes_in_target(moving, files)
    if clashes:
        return plan._replace(
            problem=f"{clash_text(clashes)} (moving them from {old}); move one of each pair away"
        )
    shortage = space_problem(moving, _old_inventory(old, location.leaf, files, size), Way.ADOPT)
    if shortage:
        problem, hint = shortage
        return plan._replace(problem=problem, hint=hint)
    return plan


def _old_inventory(old: Path, leaf: str, files: tuple[str, ...], size: int) -> Inventory:
    """The user's files in an old target (`<leaf>/…` names) as the space check counts them:
    each regular file's size and the folders they sit in."""
    sizes = []
    for relative in files:
        info = os.lstat(old.joinpath(*relative.split("/")[1:]))
        if stat.S_ISREG(info.st_mode):
            sizes.append(info.st_size)
    folders = {relative.rpartition("/")[0] for relative in files} - {leaf}
    return Inventory(files, (), size, sizes=tuple(sizes), folders=len(folders))


def _recorded_olds(location: Location, recorded: Mapping[str, Any]) -> list[Path]:
    """Earlier targets the journal names for a location (a move under way first), other than
    its target now, that are folders."""
    new = os.path.realpath(location.target)
    olds: list[Path] = []
    for key in ("moving_from", "target"):
        value = recorded.get(key)
        if not isinstance(value, str) or os.path.realpath(value) == new:
            continue
        if os.path.isdir(value) and Path(value) not in olds:
            olds.append(Path(value))
    return olds

"""What is said of a link plan: the line --dry shows, the line for carrying adopted files."""

from __future__ import annotations

import os

from mmlab_bootstrap.links.plan import LinkPlan, OldData, State, Way
from mmlab_bootstrap.output import human_size, some_names
from mmlab_bootstrap.settings import route_note


def describe(plan: LinkPlan, destination: str) -> str:
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
    what += route_note(plan.location.target)
    if plan.stale:
        what += f" (replacing {len(plan.stale)} outdated cop(ies) in storage: git holds them)"
    return f"{what}  [{state.value}]"


def carry_text(plan: LinkPlan, verb: str = "carry") -> str:
    """The line for carrying a plan's files adopted earlier into its new target."""
    leaf = plan.location.leaf
    olds = {
        source.removesuffix(os.sep + os.path.relpath(relative, leaf))
        for relative, source in plan.carried
    }
    origin = " and ".join(sorted(olds))
    fate = f"the old ones stay in {origin}"
    moving = plan.data_from and plan.old_data is OldData.MOVE
    if moving and {os.path.realpath(old) for old in olds} == {os.path.realpath(plan.data_from)}:
        fate = f"the old ones leave {origin} with the move of your files"
    return (
        f"{verb} {len(plan.carried)} tracked file(s) adopted earlier into"
        f" {plan.location.target} (copies, verified; {fate})"
    )


def old_data_text(plan: LinkPlan) -> str:
    """The line for the user's data in the old target (`--move-data`, `--leave-data`)."""
    count, size = len(plan.data_files), human_size(plan.data_size)
    names = some_names(list(plan.data_files))
    if plan.old_data is OldData.LEAVE:
        return (
            f"leave {count} file(s) of yours ({size}) in the old target {plan.data_from}: {names}"
        )
    return (
        f"move {count} file(s) of yours ({size}) from the old target {plan.data_from} into"
        f" {plan.location.target} (verified), then remove the emptied folders: {names}"
    )

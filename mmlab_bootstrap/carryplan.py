"""Planning the carry: tracked files an earlier link adopted follow the link to a new target."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .clashes import blocked, clash_text
from .git import Git
from .inventory import skipped_files
from .linkplan import LinkPlan, State
from .locations import in_target, some_names
from .repository import sparse_checkout
from .transfer import same_file_content

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

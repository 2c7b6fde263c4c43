"""The link planner: look at every link location before changing any.

Each location is classified (absent, linked, other or broken link, empty folder, tracked
files only, user data) and given the action that loses nothing, or refused. Nothing here
changes anything; `linker` carries the plans out.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import room_for
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.links.clashes import clash_text, clashes_in_target
from mmlab_bootstrap.links.inventory import Inventory, stale_copies, take_inventory
from mmlab_bootstrap.links.location import (
    Location,
    check_projects,
    link_destination,
    locations,
    resolves,
)
from mmlab_bootstrap.output import human_size
from mmlab_bootstrap.settings import Settings


class State(Enum):
    """What is found at a link location."""

    ABSENT = "absent"
    LINKED = "linked"
    OTHER_LINK = "link to elsewhere"
    BROKEN_LINK = "broken link"
    EMPTY = "empty folder"
    TRACKED = "tracked files only"
    USER_DATA = "user data"


class Way(Enum):
    """How user data at a location is dealt with."""

    REFUSE = "refuse"
    BACKUP = "backup"
    ADOPT = "adopt"


class OldData(Enum):
    """What a relink does with the user's data in the old target (`--move-data`,
    `--leave-data`; refused without either)."""

    REFUSE = "refuse"
    MOVE = "move"
    LEAVE = "leave"


class LinkPlan(NamedTuple):
    """A location, what is there, and what will be done (or why not)."""

    location: Location
    state: State
    inventory: Inventory = Inventory()
    old_destination: str = ""
    way: Way = Way.REFUSE
    problem: str = ""
    # Files adopted by an earlier link (skip-worktree) that must follow the link into its
    # new target: (path relative to the project, where the file is now).
    carried: tuple[tuple[str, str], ...] = ()
    hint: str = ""  # the command that fixes a refusal, when it is not the usual one
    # Tracked files whose copy in the target is an older version git still holds (left there
    # by an earlier link, then `unlink` and an update): replaced, since git keeps those bytes.
    stale: tuple[str, ...] = ()
    repairs: tuple[str, ...] = ()  # bookkeeping a linked location lacks (see `repairs`)
    # A relink away from an old target (the journal's) that holds the user's data: that
    # target, the files there (`<leaf>/…`, as if the old target were the location), their size
    # and what is done with them (see `carryplan.plan_old_data`).
    data_from: str = ""
    data_files: tuple[str, ...] = ()
    data_size: int = 0
    old_data: OldData = OldData.REFUSE

    @property
    def refused(self) -> bool:
        return bool(self.problem)

    @property
    def settled(self) -> bool:
        """Linked already, with nothing to carry and no bookkeeping to repair."""
        return self.state is State.LINKED and not (
            self.refused or self.carried or self.repairs or self.data_from
        )


def plan_links(
    settings: Settings, variable: str, git: Git, way: Way, *, relative: bool = False
) -> list[LinkPlan]:
    """Classify every location of one task; refusals are recorded, not raised."""
    check_projects(settings)
    plans = []
    for location in locations(settings, variable):
        plan = classify(location, git, way)
        destination = link_destination(location, relative=relative)
        if (
            not plan.refused
            and plan.state is not State.LINKED
            and not resolves(location, destination)
        ):
            plan = plan._replace(
                problem=f"a link there holding {shown(destination)} would not lead to"
                f" {shown(str(location.target))}",
            )
        plans.append(plan)
    return plans


def first_look(location: Location) -> LinkPlan | None:
    """The plan for a location that needs no look inside it (nothing there, a link, or a
    target that cannot be); None when a real folder or file stands there. Reads no folder."""
    link, target = location.link, location.target
    if not os.path.lexists(link):
        return LinkPlan(location, State.ABSENT)
    if link.is_symlink():
        destination = os.readlink(link)
        if os.path.realpath(link) == os.path.realpath(target):
            return LinkPlan(location, State.LINKED, old_destination=destination)
        state = State.OTHER_LINK if os.path.exists(link) else State.BROKEN_LINK
        return LinkPlan(location, state, old_destination=destination)
    return None


def classify(location: Location, git: Git, way: Way) -> LinkPlan:
    """Look at one location (following nothing) and decide what to do there."""
    link, target = location.link, location.target
    if os.path.lexists(target) and not target.is_dir():
        return LinkPlan(
            location, State.ABSENT, problem=f"the target {shown(str(target))} is not a folder"
        )
    if _overlaps(link, target):
        return LinkPlan(
            location,
            State.ABSENT,
            problem=f"the target {shown(str(target))} and the location lie inside one another",
        )
    seen = first_look(location)
    if seen is not None:
        return seen
    inventory = take_inventory(location, git)
    if not inventory.files and link.is_dir():
        return LinkPlan(location, State.EMPTY, inventory)
    if inventory.specials:
        names = ", ".join(inventory.specials[:5])
        more = f" and {len(inventory.specials) - 5} more" if len(inventory.specials) > 5 else ""
        return LinkPlan(
            location,
            State.USER_DATA,
            inventory,
            way=way,
            problem=f"holds {len(inventory.specials)} device(s), FIFO(s) or socket(s), which"
            f" cannot be copied or kept in storage: {names}{more}; move them elsewhere first",
        )
    shortage = space_problem(location, inventory, way)
    if shortage:
        state = State.TRACKED if link.is_dir() and not inventory.untracked else State.USER_DATA
        problem, hint = shortage
        return LinkPlan(location, state, inventory, way=way, problem=problem, hint=hint)
    if link.is_dir() and not inventory.untracked:
        clashes, stale = _clashes_but_stale(git, location, inventory.tracked, inventory.tracked)
        if clashes:
            return LinkPlan(location, State.TRACKED, inventory, problem=clash_text(clashes))
        return LinkPlan(location, State.TRACKED, inventory, stale=stale)
    if way is Way.REFUSE:
        count = len(inventory.untracked)
        return LinkPlan(
            location,
            State.USER_DATA,
            inventory,
            problem=f"holds {count} file(s) of yours ({human_size(inventory.size)});"
            " use --backup (rename it aside) or --adopt (move it into the target)",
        )
    if way is Way.ADOPT and not link.is_dir():
        return LinkPlan(
            location,
            State.USER_DATA,
            inventory,
            way=way,
            problem="is a file, not a folder: use --backup",
        )
    moving = inventory.files if way is Way.ADOPT else inventory.tracked  # --backup copies these
    clashes, stale = _clashes_but_stale(git, location, moving, inventory.tracked)
    if clashes:
        return LinkPlan(location, State.USER_DATA, inventory, way=way, problem=clash_text(clashes))
    return LinkPlan(location, State.USER_DATA, inventory, way=way, stale=stale)


def _clashes_but_stale(
    git: Git, location: Location, files: tuple[str, ...], tracked: tuple[str, ...]
) -> tuple[list[str], tuple[str, ...]]:
    """The clashes in the target, less the tracked files whose target copy is only stale."""
    clashes = clashes_in_target(location, files) if files else []
    known = set(tracked)
    stale = stale_copies(git, location, [path for path in clashes if path in known])
    return [path for path in clashes if path not in stale], stale


def space_problem(location: Location, inventory: Inventory, way: Way) -> tuple[str, str] | None:
    """Refuse early (what is wrong, the hint) when the files to copy into the target do not
    fit there: counted in the target's blocks and inodes, not in bytes (see `room_for`)."""
    copies = bool(inventory.tracked) or way is Way.ADOPT
    if not copies or not (inventory.size or inventory.files):
        return None
    existing = location.target
    while not existing.exists():
        existing = existing.parent
    moves_across = way is Way.ADOPT and os.stat(location.link).st_dev != os.stat(existing).st_dev
    if moves_across:
        room = room_for(
            existing, inventory.sizes, entries=inventory.folders + len(inventory.symlinks)
        )
        count = len(inventory.files)
    elif not inventory.tracked:  # renames cost nothing
        return None
    else:  # tracked files are copied
        tracked = inventory.tracked
        room = room_for(
            existing,
            (os.lstat(location.project_dir / path).st_size for path in tracked),
            entries=len({path.rpartition("/")[0] for path in tracked}),
        )
        count = len(tracked)
    if room.enough:
        return None
    if room.needed > room.free:
        needs, has = human_size(room.needed), f"{human_size(room.free)} free"
        why = (
            f"{count} file(s) of {human_size(room.data)} and their folders take"
            f" {human_size(room.needed - room.spare)} in its {room.block}-byte blocks, plus"
            f" {human_size(room.spare)} to spare"
        )
    else:
        needs, has = f"{room.inodes_needed} inodes", f"{room.inodes_free} free"
        why = (
            f"{room.inodes_needed - room.spare_inodes} files and folders, plus"
            f" {room.spare_inodes} to spare"
        )
    return (
        f"needs {needs} in {existing}, which has {has}: {why}; nothing was copied",
        f"make room on the disk of {existing} (the copy needs {needs}, it has {has}),"
        f" or choose a storage root on a bigger disk ({location.variable})",
    )


def _overlaps(link: Path, target: Path) -> bool:
    # The location itself is not followed: it may already be our link to the target.
    location = Path(os.path.realpath(link.parent)) / link.name
    resolved = Path(os.path.realpath(target))
    return resolved == location or location in resolved.parents or resolved in location.parents

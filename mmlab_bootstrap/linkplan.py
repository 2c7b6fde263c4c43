"""The link planner: look at every link location before changing any.

Each location is classified (absent, linked, other or broken link, empty folder, tracked
files only, user data) and given the action that loses nothing, or refused. Nothing here
changes anything; `linker` carries the plans out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from .errors import shown
from .git import Git
from .inventory import Inventory, stale_copies, take_inventory
from .locations import (
    Location,
    check_projects,
    human_size,
    in_target,
    link_destination,
    locations,
    resolves,
    some_names,
)
from .settings import Settings
from .transfer import same_file_content


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

    @property
    def refused(self) -> bool:
        return bool(self.problem)

    @property
    def settled(self) -> bool:
        """Linked already, with nothing to carry and no bookkeeping to repair."""
        return self.state is State.LINKED and not (self.refused or self.carried or self.repairs)


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
        return LinkPlan(location, state, inventory, way=way, problem=shortage)
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


def space_problem(location: Location, inventory: Inventory, way: Way) -> str:
    """Refuse early when the bytes to copy into the target do not fit there."""
    copies = bool(inventory.tracked) or way is Way.ADOPT
    if not copies or not inventory.size:
        return ""
    existing = location.target
    while not existing.exists():
        existing = existing.parent
    moves_across = way is Way.ADOPT and os.stat(location.link).st_dev != os.stat(existing).st_dev
    if moves_across:
        need = inventory.size
    else:  # renames cost nothing; tracked files are copied
        need = sum(os.lstat(location.project_dir / p).st_size for p in inventory.tracked)
    free = shutil.disk_usage(existing).free
    if need <= free:
        return ""
    return (
        f"needs {human_size(need)} in {existing}, which has {human_size(free)} free;"
        " nothing was copied"
    )


def clashes_in_target(location: Location, files: tuple[str, ...]) -> list[str]:
    """Paths that cannot move into the target as they are: another file of the same name
    (the same content is no clash), or a file where a folder must go, or the reverse.

    Each folder of the target is listed once, and only where the location has a folder of
    that name: an empty target, or one whose top level shares no name with the location,
    costs one listing whatever the number of files."""
    target = _TargetView(os.fspath(location.target))
    link = location.link
    real_folder = link.is_dir() and not link.is_symlink()
    if not target.listing("") or (real_folder and not target.overlaps(os.fspath(link))):
        return []
    clashes = []
    prefix = location.leaf + "/"
    for relative in files:
        folder, _, name = relative[len(prefix) :].rpartition("/")
        state = target.state(folder) if relative.startswith(prefix) else _BLOCKED
        if state is _DIR:
            if name in target.listing(folder) and not same_file_content(
                location.project_dir / relative, Path(target.path(folder, name))
            ):
                clashes.append(relative)
        elif state is _BLOCKED and _clashes_one_by_one(location, relative):
            clashes.append(relative)
    if real_folder:
        clashes += _folder_clashes(location, target)
    return clashes


_DIR, _MISSING, _BLOCKED = "folder", "missing", "blocked"


class _TargetView:
    """The target's folders as listed (each once), and what stands at a path below it: a real
    folder (with every folder above it), nothing (or nothing above), or something else."""

    def __init__(self, top: str) -> None:
        self.top = top
        self.listings: dict[str, dict[str, bool]] = {}
        self.states: dict[str, str] = {"": _DIR}

    def path(self, folder: str, name: str) -> str:
        return f"{self.top}/{folder}/{name}" if folder else f"{self.top}/{name}"

    def listing(self, folder: str) -> dict[str, bool]:
        """Names in a folder of the target (True for real folders); empty when absent."""
        found = self.listings.get(folder)
        if found is None:
            found = {}
            where = f"{self.top}/{folder}" if folder else self.top
            with contextlib.suppress(OSError), os.scandir(where) as scan:
                found = {item.name: item.is_dir(follow_symlinks=False) for item in scan}
            self.listings[folder] = found
        return found

    def state(self, folder: str) -> str:
        chain = []
        while folder not in self.states:
            chain.append(folder)
            folder = folder.rpartition("/")[0]
        state = self.states[folder]
        for below in reversed(chain):
            if state is _DIR:
                parent, _, name = below.rpartition("/")
                kind = self.listing(parent).get(name)
                state = _MISSING if kind is None else _DIR if kind else _BLOCKED
            self.states[below] = state
        return state

    def overlaps(self, link: str) -> bool:
        """Whether any name at the top of the location is at the top of the target."""
        names = self.listing("")
        with os.scandir(link) as scan:
            return any(item.name in names for item in scan)


def _clashes_one_by_one(location: Location, relative: str) -> bool:
    """The check for one path, where a file or symlink stands in the way above it."""
    source, destination = location.project_dir / relative, in_target(location, relative)
    if os.path.lexists(destination):
        return not same_file_content(source, destination)
    return blocked(destination.parent, location.target)


def _folder_clashes(location: Location, target: _TargetView) -> list[str]:
    """Folders of the location where the target has a file or symlink, in `walk`'s order;
    only folders the target has are looked into."""
    clashes = []
    stack: list[tuple[str, bool]] = [("", False)]  # (folder below the leaf, checked one by one)
    while stack:
        folder, slow = stack.pop()
        with os.scandir(os.path.join(location.link, folder)) as scan:
            names = sorted(item.name for item in scan if item.is_dir(follow_symlinks=False))
        below = []
        for name in names:
            relative = f"{folder}/{name}" if folder else name
            if slow:
                destination = os.path.join(location.target, relative)
                if os.path.lexists(destination) and (
                    os.path.islink(destination) or not os.path.isdir(destination)
                ):
                    clashes.append(f"{location.leaf}/{relative}/")
                below.append((relative, True))
                continue
            state = target.state(relative)
            if state is _BLOCKED:  # the parent is a real folder: this name is no folder
                clashes.append(f"{location.leaf}/{relative}/")
                below.append((relative, True))  # a symlink may lead to more below it
            elif state is _DIR:
                below.append((relative, False))
        stack.extend(reversed(below))
    return clashes


def blocked(folder: Path, target: Path) -> bool:
    """Whether a file (not a folder) stands at `folder` or between it and `target`."""
    top, path = os.fspath(target), os.fspath(folder)
    inside = top if top.endswith("/") else top + "/"
    while path != top and path.startswith(inside):
        try:
            mode = os.lstat(path).st_mode
        except (OSError, ValueError):
            pass
        else:
            if not stat.S_ISDIR(mode):  # a symlink (to anything) or a file
                return True
        path = os.path.dirname(path)
    return False


def clash_text(clashes: list[str]) -> str:
    return f"{len(clashes)} file(s) already in the target with other content: {some_names(clashes)}"


def _overlaps(link: Path, target: Path) -> bool:
    # The location itself is not followed: it may already be our link to the target.
    location = Path(os.path.realpath(link.parent)) / link.name
    resolved = Path(os.path.realpath(target))
    return resolved == location or location in resolved.parents or resolved in location.parents

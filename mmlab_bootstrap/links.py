"""Plan the checkpoints/data links: look at every link location before changing any.

A location is `<extension>/<project>/<leaf>`; its target is `<storage root>/<project>/<leaf>`.
Each is classified (absent, linked, other or broken link, empty folder, tracked files only,
user data) and given the action that loses nothing, or refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import BootstrapError, escaped, shown
from .fsutil import kind
from .git import Git, quiet_env
from .layout import LEAVES, storage_folder
from .settings import Settings
from .transfer import same_file_content, walk


class LinkError(BootstrapError):
    """A link location cannot be handled as asked."""


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


@dataclass(frozen=True)
class Location:
    """One link the workspace needs."""

    project: str
    variable: str
    link: Path
    target: Path

    @property
    def leaf(self) -> str:
        return self.link.name

    @property
    def project_dir(self) -> Path:
        return self.link.parent


@dataclass(frozen=True)
class Inventory:
    """What a real folder (or file) at a location holds."""

    files: tuple[str, ...] = ()
    tracked: tuple[str, ...] = ()
    size: int = 0
    specials: tuple[str, ...] = ()  # devices, FIFOs, sockets: "<path> (a FIFO)"
    symlinks: tuple[str, ...] = ()  # symlinks inside the location (user content, moved as links)
    # Tracked files no longer at the location but in the target: a killed run moved them there
    # before it could tell git to skip them; the next run finishes that.
    tracked_moved: tuple[str, ...] = ()

    @property
    def untracked(self) -> tuple[str, ...]:
        tracked = set(self.tracked)
        return tuple(path for path in self.files if path not in tracked)


@dataclass(frozen=True)
class LinkPlan:
    """A location, what is there, and what will be done (or why not)."""

    location: Location
    state: State
    inventory: Inventory = field(default_factory=Inventory)
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

    @property
    def refused(self) -> bool:
        return bool(self.problem)


def locations(settings: Settings, variable: str) -> list[Location]:
    """The link locations of one task (checkpoints or data), one per project."""
    leaf = LEAVES[variable]
    return [
        Location(
            project,
            variable,
            settings.extension_path / project / leaf,
            storage_folder(settings, variable, project),
        )
        for project in settings.projects
    ]


def check_projects(settings: Settings) -> None:
    """Every project in MMLAB_PROJECTS must be a folder of the extension, reached directly."""
    extension = settings.extension_path
    for project in settings.projects:
        folder = extension / project
        if folder.is_symlink():
            raise LinkError(
                f"{shown(str(folder))} is a symlink to {shown(os.readlink(folder))};"
                " refusing to follow a link location out of the extension",
                f"replace the symlink with the real project (rm '{folder}'), then run: inv clone",
            )
        if not folder.is_dir():
            existing = sub_projects(extension)
            valid = [name for name in settings.projects if name in existing] or existing
            if not existing:
                hint = "run: inv clone (it checks out the sub-projects)"
            else:
                hint = (
                    f"the sub-projects are: {' '.join(existing)};"
                    f" run: inv env --projects '{' '.join(valid)}'"
                )
            raise LinkError(
                f"project {shown(project)} has no folder in {shown(str(extension))}", hint
            )


def sub_projects(extension: Path) -> list[str]:
    """The top-level sub-projects the superproject has: its submodules' folders (from
    `.gitmodules`) that exist, and folders holding a repository of their own."""
    found: set[str] = set()
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = (extension / ".gitmodules").read_text(encoding="utf-8")
        for path in re.findall(r"^\s*path\s*=\s*(\S+)\s*$", text, re.MULTILINE):
            if "/" not in path.strip("/") and (extension / path).is_dir():
                found.add(path.strip("/"))
    with contextlib.suppress(OSError):
        for entry in extension.iterdir():
            if entry.is_dir() and not entry.is_symlink() and (entry / ".git").exists():
                found.add(entry.name)
    return sorted(found)


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
            plan = replace(
                plan,
                problem=f"a link there holding {shown(destination)} would not lead to"
                f" {shown(str(location.target))}",
            )
        plans.append(plan)
    return plans


def link_destination(location: Location, *, relative: bool) -> str:
    """What the link holds: the absolute target, or a path relative to the link's folder.

    A relative path is taken between the resolved folders, so that it still leads to the
    target when the workspace is reached through a symlinked path.
    """
    if relative:
        return os.path.relpath(
            os.path.realpath(location.target), os.path.realpath(location.project_dir)
        )
    return str(location.target)


def resolves(location: Location, destination: str) -> bool:
    """Whether a link at the location holding `destination` leads to the target."""
    where = os.path.join(os.path.realpath(location.project_dir), destination)
    return os.path.realpath(where) == os.path.realpath(location.target)


BACKUP_NAME = re.compile(r"\.bak-(\d{8}-\d{6})(?:-(\d+))?", re.ASCII)


def is_backup_name(leaf: str, name: str) -> bool:
    """Whether `name` is one this tool gives a backup: `<leaf>.bak-YYYYmmdd-HHMMSS[-N]`."""
    return name.startswith(leaf) and BACKUP_NAME.fullmatch(name[len(leaf) :]) is not None


def backup_order(leaf: str, name: str) -> tuple[str, int]:
    """Backups sort by time, then by number (a name without one counts as 1)."""
    match = BACKUP_NAME.fullmatch(name[len(leaf) :]) if name.startswith(leaf) else None
    if match is None:
        return ("", 0)
    return (match.group(1), int(match.group(2)) if match.group(2) else 1)


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
    if not os.path.lexists(link):
        return LinkPlan(location, State.ABSENT)
    if link.is_symlink():
        destination = os.readlink(link)
        if os.path.realpath(link) == os.path.realpath(target):
            return LinkPlan(location, State.LINKED, old_destination=destination)
        state = State.OTHER_LINK if os.path.exists(link) else State.BROKEN_LINK
        return LinkPlan(location, state, old_destination=destination)
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
            return LinkPlan(location, State.TRACKED, inventory, problem=_clash_text(clashes))
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
        return LinkPlan(location, State.USER_DATA, inventory, way=way, problem=_clash_text(clashes))
    return LinkPlan(location, State.USER_DATA, inventory, way=way, stale=stale)


def _clashes_but_stale(
    git: Git, location: Location, files: tuple[str, ...], tracked: tuple[str, ...]
) -> tuple[list[str], tuple[str, ...]]:
    """The clashes in the target, less the tracked files whose target copy is only stale."""
    clashes = clashes_in_target(location, files) if files else []
    known = set(tracked)
    stale = stale_copies(git, location, [path for path in clashes if path in known])
    return [path for path in clashes if path not in stale], stale


def stale_copies(git: Git, location: Location, tracked: list[str]) -> tuple[str, ...]:
    """Tracked files whose copy in the target is a regular file with bytes git holds as a
    blob: a version of that file the tool adopted before (then `unlink`, then an update).
    Replacing such a copy loses nothing; any other content is the user's and a clash."""
    stale = []
    for relative in tracked:
        stored = in_target(location, relative)
        if stored.is_symlink() or not stored.is_file():
            continue
        blob = file_blob_id(git, location.project_dir, relative, stored)
        if blob and git.probe(["cat-file", "-e", f"{blob}^{{blob}}"], cwd=location.project_dir).ok:
            stale.append(relative)
    return tuple(sorted(stale))


def file_blob_id(git: Git, project: Path, relative: str, stored: Path) -> str:
    """The blob id git would record at `relative` for the regular file `stored` (its
    attributes' filters applied); empty when git cannot hash it."""
    found = git.probe(["hash-object", f"--path={relative}", "--", str(stored)], cwd=project)
    return found.out.strip() if found.ok else ""


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


def in_target(location: Location, relative: str) -> Path:
    """Where a file at `<project>/<leaf>/…` lives in the target."""
    return location.target / os.path.relpath(relative, location.leaf)


def clashes_in_target(location: Location, files: tuple[str, ...]) -> list[str]:
    """Paths that cannot move into the target as they are: another file of the same name
    (the same content is no clash), or a file where a folder must go, or the reverse."""
    clashes = []
    for relative in files:
        source, destination = location.project_dir / relative, in_target(location, relative)
        if os.path.lexists(destination):
            if not same_file_content(source, destination):
                clashes.append(relative)
        elif blocked(destination.parent, location.target):
            clashes.append(relative)
    if location.link.is_dir() and not location.link.is_symlink():
        for folder, dirs, _ in walk(location.link):
            for name in dirs:
                relative = os.path.relpath(os.path.join(folder, name), location.project_dir)
                destination = in_target(location, relative)
                if os.path.lexists(destination) and (
                    destination.is_symlink() or not destination.is_dir()
                ):
                    clashes.append(relative + "/")
    return clashes


def blocked(folder: Path, target: Path) -> bool:
    """Whether a file (not a folder) stands at `folder` or between it and `target`."""
    while folder != target and target in folder.parents:
        if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
            return True
        folder = folder.parent
    return False


def _clash_text(clashes: list[str]) -> str:
    return f"{len(clashes)} file(s) already in the target with other content: {some_names(clashes)}"


def some_names(paths: list[str]) -> str:
    """Up to five names for a message, escaped so that each stays one piece of one line."""
    listed = ", ".join(escaped(path) for path in paths[:5])
    return listed + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def _overlaps(link: Path, target: Path) -> bool:
    # The location itself is not followed: it may already be our link to the target.
    location = Path(os.path.realpath(link.parent)) / link.name
    resolved = Path(os.path.realpath(target))
    return resolved == location or location in resolved.parents or resolved in location.parents


def take_inventory(location: Location, git: Git) -> Inventory:
    """Every file under a real folder (or the file itself), which of them git tracks, the size.

    Symlinks inside are files of their own (never followed); devices, FIFOs and sockets
    are listed apart so that planning can refuse them before anything moves.
    """
    link = location.link
    if not link.is_dir():
        mode = os.lstat(link).st_mode
        odd = (f"{shown(str(link))} ({kind(mode)})",) if _is_special(mode) else ()
        return Inventory((location.leaf,), (), os.lstat(link).st_size, odd)
    files: list[str] = []
    specials: list[str] = []
    symlinks: list[str] = []
    size = 0
    for _, _, entries in walk(link):
        for entry in entries:
            relative = os.path.relpath(entry.path, location.project_dir)
            files.append(relative)
            if entry.special:
                specials.append(f"{shown(relative)} ({kind(entry.mode)})")
            elif stat.S_ISLNK(entry.mode):
                symlinks.append(relative)
            else:
                size += os.lstat(entry.path).st_size
    present = set(files)  # a tracked file deleted from the work tree is not there to adopt
    listed = tracked_files(git, location.project_dir, location.leaf)
    tracked = tuple(path for path in listed if path in present)
    moved = tuple(
        path
        for path in listed
        if path not in present and os.path.lexists(in_target(location, path))
    )
    return Inventory(tuple(sorted(files)), tracked, size, tuple(specials), tuple(symlinks), moved)


def _is_special(mode: int) -> bool:
    return not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode))


def tracked_files(git: Git, project_dir: Path, leaf: str) -> tuple[str, ...]:
    """Files the sub-project's git tracks under `leaf` (paths relative to the project)."""
    listing = git_names(git, ["ls-files", "-z", "--", leaf], project_dir)
    return tuple(sorted(listing or ()))


def skipped_files(git: Git, location: Location) -> tuple[str, ...]:
    """Tracked files under the leaf that are marked skip-worktree (those linking adopted)."""
    listing = git_names(git, ["ls-files", "-v", "-z", "--", location.leaf], location.project_dir)
    return tuple(sorted(entry[2:] for entry in listing or () if entry.startswith("S ")))


def sparse_checkout(git: Git, project_dir: Path) -> bool:
    """Whether the sub-project uses sparse checkout: then git itself marks the files it leaves
    out skip-worktree, and only the ones the journal records were adopted by linking."""
    return git.probe(["config", "--bool", "core.sparseCheckout"], cwd=project_dir).out.strip() == (
        "true"
    )


def git_names(git: Git, args: Sequence[str], cwd: Path) -> list[str] | None:
    """The NUL-separated names a read-only git command lists (`-z`), or None if it failed.

    git gives names as bytes; they are decoded as the OS decodes file names (os.fsdecode:
    bytes that are not UTF-8 become surrogate escapes), so every name reaches the same file.
    """
    done = subprocess.run(
        git.command(args, cwd),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
        env=quiet_env(),  # read-only: no index refresh (--dry, status)
    )
    if done.returncode != 0:
        return None
    return [os.fsdecode(name) for name in done.stdout.split(b"\0") if name]


def human_size(size: int) -> str:
    """Bytes for a person: 1.2 MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


# States whose location becomes (or already is) a link to the target.
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
        return replace(
            plan,
            problem=f"{_clash_text(clashes)} (tracked files adopted earlier, in {where});"
            " move one of each pair away",
        )
    if lost:
        return replace(
            plan,
            problem=f"{len(lost)} tracked file(s) adopted earlier (skip-worktree) are neither"
            f" in {location.target} nor in the old target: {some_names(lost)}",
            hint=f"get them back from git: inv unlink --{location.leaf}; then link again:"
            f" inv link-{location.leaf}",
        )
    return replace(plan, carried=tuple(carried))


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

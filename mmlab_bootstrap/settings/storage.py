"""Storage folders: `<checkpoints root>/<project>/checkpoints`, `<dataset root>/<project>/data`;
where their files really go (symlinks inside a root), and roots that are not where they seem
(a mount point with nothing mounted on it, a disk mounted over a root since it was linked)."""

from __future__ import annotations

import os
import pwd
import re
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from mmlab_bootstrap.errors import LayoutError, shown
from mmlab_bootstrap.fs import creatable_problem
from mmlab_bootstrap.settings.values import Settings, fix_hint
from mmlab_bootstrap.settings.variables import BY_NAME, CHECKPOINTS_PATH, DATASET_PATH

# The folder name each storage root gives a project, which is also the link's name.
LEAVES = {CHECKPOINTS_PATH: "checkpoints", DATASET_PATH: "data"}


class Folder(NamedTuple):
    """A storage folder the workspace needs, and whether it is there already."""

    path: Path
    exists: bool


def storage_folder(settings: Settings, variable: str, project: str) -> Path:
    """Where one project's checkpoints or data live."""
    return Path(settings[variable]) / project / LEAVES[variable]


def plan_layout(
    settings: Settings, variables: tuple[str, ...] = (CHECKPOINTS_PATH, DATASET_PATH)
) -> list[Folder]:
    """Check every storage folder before any is made; raise LayoutError on the first problem."""
    folders: list[Folder] = []
    for variable in variables:
        _check_root(settings, variable)
        for project in settings.projects:
            path = storage_folder(settings, variable, project)
            folders.append(_classify(settings, variable, path))
    return folders


def storage_warnings(
    settings: Settings, variables: tuple[str, ...] = (CHECKPOINTS_PATH, DATASET_PATH)
) -> list[str]:
    """What to look at in the storage roots before storing anything there (nothing failed):
    a root on the system disk where a disk should be mounted, and symlinks in a root that
    send the files through a folder someone else can change."""
    warnings = []
    for variable in variables:
        unmounted = None if settings.require_mount else unmounted_disk_warning(settings, variable)
        if unmounted:
            warnings.append(unmounted)
        for project in settings.projects:
            warnings += route_warnings(storage_folder(settings, variable, project))
    return warnings


def _check_root(settings: Settings, variable: str) -> None:
    root = Path(settings[variable])
    source = settings.values[variable].source
    if settings.require_mount and not on_mounted_disk(root):
        raise LayoutError(
            f"MMLAB_REQUIRE_MOUNT=1, but {variable} {shown(str(root))} is not on a mounted disk"
            " (it would fill the system disk)",
            "mount the disk first (e.g. sudo mount /dev/sdb1 /mnt/data), or "
            + fix_hint(BY_NAME[variable], source, "/mnt/data/mmlab"),
        )
    if os.path.lexists(root):
        if not root.is_dir():
            raise LayoutError(
                f"{variable} {shown(str(root))} exists but is not a folder",
                fix_hint(BY_NAME[variable], source, "/path/to/storage"),
            )
        if not os.access(root, os.W_OK | os.X_OK):
            raise LayoutError(
                f"{variable} {shown(str(root))} is not writable",
                f"make it writable (sudo chown \"$USER\" '{root}'), or "
                + fix_hint(BY_NAME[variable], source, "/path/to/storage"),
            )
        return
    if not root.parent.is_dir():
        raise LayoutError(
            f"{variable} {shown(str(root))} does not exist, and neither does its parent"
            f" {shown(str(root.parent))} (a typo?)",
            f"if the path is right, create it first: mkdir -p '{root}'; otherwise "
            + fix_hint(BY_NAME[variable], source, "/path/to/storage"),
        )


def _classify(settings: Settings, variable: str, path: Path) -> Folder:
    if path.is_dir():
        return Folder(path, True)
    if os.path.lexists(path):
        what = "a broken link" if path.is_symlink() else "not a folder"
        raise LayoutError(
            f"{shown(str(path))} exists but is {what}",
            f"move it out of the way (mv '{path}' '{path}.old'), then run: inv layout",
        )
    problem = creatable_problem(path)
    if problem is not None:
        raise LayoutError(
            f"cannot create {shown(str(path))}: {problem}",
            'make room or fix permissions (sudo chown "$USER" FOLDER), or choose another root: '
            + fix_hint(BY_NAME[variable], settings.values[variable].source, "/path/to/storage"),
        )
    return Folder(path, False)


def on_mounted_disk(path: Path) -> bool:
    """Whether `path` (or the part of it that exists) lies on a mount other than `/`."""
    folder = Path(os.path.realpath(path))
    while not folder.exists():
        folder = folder.parent
    while folder != folder.parent:
        if os.path.ismount(folder):
            return True
        folder = folder.parent
    return False


# --- a root on the system disk where a disk should be mounted -----------------------------

FSTAB = Path("/etc/fstab")
FSTAB_LIMIT = 1 << 20  # bytes read of it
# Folders that are usually mount points: directly under /mnt or /media, under
# /media/<user>/ or /run/media/<user>/ (desktop automounts), and top-level folders named
# like a disk. They count only while they hold nothing but the way to the storage root.
MOUNT_PARENTS = (Path("/mnt"), Path("/media"))
USER_MOUNT_PARENTS = (Path("/media"), Path("/run/media"))
DISK_NAMES = re.compile(
    r"(?:data|disk|nfs|scratch|storage|vol|volume|hdd|ssd|raid|share|shared)[\w.-]*",
    re.IGNORECASE | re.ASCII,
)


def fstab_mount_points(path: Path = FSTAB) -> set[Path]:
    """The mount points `/etc/fstab` lists (a regular file, read up to a limit; none when it
    cannot be read)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return set()
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return set()
        text = os.read(descriptor, FSTAB_LIMIT).decode("utf-8", "replace")
    except OSError:
        return set()
    finally:
        os.close(descriptor)
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#") or not fields[1].startswith("/"):
            continue  # (swap's "none", comments)
        point = re.sub(r"\\([0-7]{3})", lambda octal: chr(int(octal[1], 8)), fields[1])
        found.add(Path(os.path.normpath(point)))
    return found


def _mount_point_look(folder: Path, fstab: set[Path]) -> str | None:
    """Why `folder` looks like a mount point (None when it does not)."""
    if folder in fstab:
        return "a mount point /etc/fstab lists"
    if folder.parent in MOUNT_PARENTS:
        return f"a folder directly under {folder.parent}, where disks are mounted"
    if folder.parent.parent in USER_MOUNT_PARENTS:
        return f"a folder under {folder.parent}, where disks are mounted"
    if folder.parent == Path("/") and DISK_NAMES.fullmatch(folder.name):
        return "a top-level folder named like a disk"
    return None


def _holds_only(folder: Path, allowed: set[str]) -> bool:
    """Whether `folder` holds nothing but names in `allowed` (stops at the first other one)."""
    try:
        with os.scandir(folder) as scan:
            return all(item.name in allowed for item in scan)
    except OSError:
        return False


def unmounted_disk_warning(settings: Settings, variable: str) -> str | None:
    """A warning when the root lies on the system disk (the filesystem of `/`) in a folder
    that looks like a mount point with nothing mounted on it: /etc/fstab lists it, or it is
    named like one (see `_mount_point_look`) and holds nothing but the way to the root (at
    the root itself: the project folders). What is stored there now is hidden once the disk
    is mounted. (With MMLAB_REQUIRE_MOUNT=1 such a root is refused instead.)"""
    root = Path(os.path.realpath(settings[variable]))
    existing = root
    while not existing.exists():
        existing = existing.parent
    try:
        if os.stat(existing).st_dev != os.stat("/").st_dev:
            return None
    except OSError:
        return None
    fstab = fstab_mount_points()
    found = []
    for folder in [*reversed(existing.parents), existing][1:]:  # from the top, `/` left out
        look = _mount_point_look(folder, fstab)
        if look is None:
            continue
        # What the tool itself puts there: the project folders, or the way down to the root.
        allowed = set(settings.projects) if folder == root else {root.relative_to(folder).parts[0]}
        if folder in fstab or _holds_only(folder, allowed):  # else a folder in use
            found.append((folder not in fstab, folder, look))  # /etc/fstab's first
    if not found:
        return None
    _, folder, look = min(found, key=lambda candidate: candidate[0])
    return (
        f"{variable} {shown(str(settings[variable]))} is on the system disk (the filesystem"
        f" of /), in {shown(str(folder))}, {look}, with nothing mounted on it: what is stored"
        " there now is hidden once a disk is mounted there; mount the disk first"
        " (MMLAB_REQUIRE_MOUNT=1 makes this an error)"
    )


# --- where a storage folder's files really go ---------------------------------------------

LINK_HOPS = 40  # symlinks followed at most on the way to one folder (as the kernel's ELOOP)


class Route(NamedTuple):
    """The way from a storage root to one of its folders, as the kernel follows it."""

    real: Path  # where the files really go
    links: tuple[Path, ...]  # the symlinks below the root on the way
    looked_in: tuple[Path, ...]  # folders whose entries decide where that is, once redirected


def route(folder: Path) -> Route:
    """Follow `<root>/<project>/<leaf>` from the (resolved) root down, each symlink below the
    root as the kernel would, noting the folders whose entries were looked up once a symlink
    redirected the way (and the folders holding those symlinks)."""
    root = folder.parent.parent
    current = Path(os.path.realpath(root))
    pending = [folder.parent.name, folder.name]
    links: list[Path] = []
    looked_in: list[Path] = []
    hops = 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        if links:
            looked_in.append(current)
        candidate = current / name
        if hops >= LINK_HOPS or not os.path.islink(candidate):
            current = candidate
            continue
        hops += 1
        links.append(candidate)
        looked_in.append(current)
        try:
            parts = list(PurePosixPath(os.readlink(candidate)).parts)
        except OSError:
            current = candidate
            continue
        if parts and parts[0] == "/":
            current, parts = Path("/"), parts[1:]
            looked_in.append(current)
        pending = parts + pending
    if links:  # the kernel's answer, where it can give one
        current = Path(os.path.realpath(folder))
    return Route(current, tuple(links), tuple(dict.fromkeys(looked_in)))


def route_note(folder: Path) -> str:
    """` (the files go to REAL: LINK is a symlink)` when a symlink below the root leads
    elsewhere; empty otherwise."""
    way = route(folder)
    if not way.links:
        return ""
    return f" (the files go to {way.real}: {way.links[0]} is a symlink)"


def route_warnings(folder: Path) -> list[str]:
    """One warning per folder on a redirected way that someone else could change, and so
    send the files elsewhere: owned by another user than you and root, writable by anyone
    (without the sticky bit), or writable by a group you are not in. (A folder owned by you
    or root, or shared with your group, is how a team root works: see the README.)"""
    way = route(folder)
    if not way.links:
        return []
    me = os.geteuid()
    groups = {os.getegid(), *os.getgroups()}
    warnings = []
    for looked in way.looked_in:
        try:
            found = os.lstat(looked)
        except OSError:
            continue
        if not stat.S_ISDIR(found.st_mode):  # (a symlink loop's last link: not a folder)
            continue
        mode = stat.S_IMODE(found.st_mode)
        sticky = mode & stat.S_ISVTX
        if found.st_uid not in (0, me):
            who = f"belongs to {_user(found.st_uid)}"
        elif mode & stat.S_IWOTH and not sticky:
            who = f"is writable by anyone (mode {mode:04o})"
        elif mode & stat.S_IWGRP and not sticky and found.st_gid not in groups:
            who = f"is writable by group {found.st_gid}, which you are not in (mode {mode:04o})"
        else:
            continue
        warnings.append(
            f"the files of {folder} go to {way.real} through the symlink {way.links[0]};"
            f" {looked} on the way {who}, who can send them elsewhere; if that is not meant,"
            f" point the symlink at a folder of yours"
        )
    return warnings


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


# --- a root that moved to another filesystem since it was linked --------------------------


def device_of(folder: Path) -> int:
    """The device (st_dev) of the filesystem `folder` is on, or would be created on."""
    return os.stat(_existing(folder)).st_dev


def _existing(folder: Path) -> Path:
    existing = Path(os.path.realpath(folder))
    while not existing.exists():
        existing = existing.parent
    return existing


def mount_point_of(folder: Path) -> Path:
    """The mount point of the filesystem `folder` is on (or would be created on)."""
    point = _existing(folder)
    while not os.path.ismount(point) and point != point.parent:
        point = point.parent
    return point


def device_warning(folder: Path, entry: Mapping[str, Any]) -> str | None:
    """A warning when `folder` is on another filesystem than the one the journal `entry`
    recorded when it was linked to that same folder: a disk mounted over it since hides what
    was stored there before, or the disk it was on is gone and what is stored now goes
    elsewhere (the system disk). A new target (a storage root moved) has no such record."""
    recorded = entry.get("device")
    if not isinstance(recorded, int) or isinstance(recorded, bool):
        return None  # (a journal from before devices were recorded)
    if entry.get("target") != str(folder):
        return None  # recorded for another target: the relink records this one's
    try:
        now = device_of(folder)
        point = mount_point_of(folder)
    except OSError:
        return None
    if now == recorded:
        return None
    if point == Path("/"):
        what = (
            "the disk it was on is not mounted now: what is stored now goes to the system"
            " disk; mount that disk again"
        )
    else:
        what = (
            f"what was stored there before the disk at {point} was mounted is hidden under"
            f" it; to get it, unmount {point}, move those files aside, mount it again and"
            " move them in"
        )
    return (
        f"{folder} is on another filesystem (device {_device(now)}) than when it was linked"
        f" ({_device(recorded)}): {what} (the next link run records the new filesystem)"
    )


def _device(number: int) -> str:
    return f"{os.major(number)}:{os.minor(number)}"

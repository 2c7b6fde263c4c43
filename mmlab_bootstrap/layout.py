"""Storage folders: `<checkpoints root>/<project>/checkpoints`, `<dataset root>/<project>/data`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .errors import LayoutError, shown
from .paths import creatable_problem
from .settings import Settings, fix_hint
from .variables import BY_NAME, CHECKPOINTS_PATH, DATASET_PATH

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

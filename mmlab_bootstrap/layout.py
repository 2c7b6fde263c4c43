"""Storage folders: `<checkpoints root>/<project>/checkpoints`, `<dataset root>/<project>/data`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import LayoutError, shown
from .fsutil import creatable_problem
from .settings import Settings, fix_hint
from .variables import BY_NAME, CHECKPOINTS_PATH, DATASET_PATH

STORAGE = ((CHECKPOINTS_PATH, "checkpoints"), (DATASET_PATH, "data"))


@dataclass(frozen=True)
class Folder:
    """A storage folder the workspace needs, and whether it is there already."""

    path: Path
    exists: bool


def storage_folder(settings: Settings, variable: str, project: str) -> Path:
    """Where one project's checkpoints or data live."""
    leaf = dict(STORAGE)[variable]
    return Path(settings[variable]) / project / leaf


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
    if os.path.lexists(root):
        if not root.is_dir():
            raise LayoutError(
                f"{variable} {shown(str(root))} exists but is not a folder",
                fix_hint(BY_NAME[variable], source, "/path/to/storage"),
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

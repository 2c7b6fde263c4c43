"""Where the checkpoints/data links go: one location per project and leaf.

A location is `<extension>/<project>/<leaf>`; its target is `<storage root>/<project>/<leaf>`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mmlab_bootstrap.errors import BootstrapError, close_match, shown
from mmlab_bootstrap.settings import LEAVES, Settings, storage_folder


class LinkError(BootstrapError):
    """A link location cannot be handled as asked."""


class Location(NamedTuple):
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


def recorded_locations(
    settings: Settings, variables: Sequence[str], recorded: Mapping[str, Mapping[str, Any]]
) -> list[Location]:
    """The link locations the journal records that the settings do not name (linked with a
    one-off `--projects`, or before the project list changed), with the target the journal
    records: `status` shows them and `unlink` removes them, whatever the project list now."""
    known = {
        str(location.link) for variable in variables for location in locations(settings, variable)
    }
    by_leaf = {leaf: variable for variable, leaf in LEAVES.items()}
    found = []
    for link, entry in sorted(recorded.items()):
        path = Path(link)
        variable = by_leaf.get(path.name)
        if link in known or variable not in variables:
            continue
        assert variable is not None  # (for mypy: `variables` holds no None)
        project = path.parent.name
        target = entry.get("target")
        stored = (
            Path(target) if isinstance(target, str) else storage_folder(settings, variable, project)
        )
        found.append(Location(project, variable, path, stored))
    return found


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
            elif (meant := close_match(project, existing)) is not None:
                fixed = [meant if name == project else name for name in settings.projects]
                hint = f"did you mean {meant}? run: inv env --projects '{' '.join(fixed)}'"
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


BACKUP_NAME = "(?a)" r"\.bak-(\d{8}-\d{6})(?:-(\d+))?"


def is_backup_name(leaf: str, name: str) -> bool:
    """Whether `name` is one this tool gives a backup: `<leaf>.bak-YYYYmmdd-HHMMSS[-N]`."""
    return name.startswith(leaf) and re.fullmatch(BACKUP_NAME, name[len(leaf) :]) is not None


def backup_order(leaf: str, name: str) -> tuple[str, int]:
    """Backups sort by time, then by number (a name without one counts as 1)."""
    match = re.fullmatch(BACKUP_NAME, name[len(leaf) :]) if name.startswith(leaf) else None
    if match is None:
        return ("", 0)
    return (match.group(1), int(match.group(2)) if match.group(2) else 1)


def in_target(location: Location, relative: str) -> Path:
    """Where a file at `<project>/<leaf>/…` lives in the target."""
    return location.target / os.path.relpath(relative, location.leaf)

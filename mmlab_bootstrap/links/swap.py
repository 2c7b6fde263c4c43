"""Putting a link in place atomically (made aside, checked to lead to its target, renamed
over), and a free name for a backup beside it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import (
    TRANSFER_TEMPORARY,
    fsync_folder,
    remove_leftovers,
    temporary_beside,
)
from mmlab_bootstrap.links.location import LinkError, Location, resolves


def swap_in_link(location: Location, destination: str) -> None:
    """Put a symlink at the location atomically: made aside, checked, then renamed over."""
    if not resolves(location, destination):
        raise LinkError(
            f"a link at {shown(str(location.link))} holding {shown(destination)} would not"
            f" lead to {shown(str(location.target))}",
            "run the same command without --relative",
        )
    remove_leftovers(location.project_dir, location.leaf)
    temporary = temporary_beside(
        location.link, TRANSFER_TEMPORARY, purpose="link"
    )  # unique: never a user's file
    os.symlink(destination, temporary)
    try:
        if os.path.realpath(temporary) != os.path.realpath(location.target):
            raise LinkError(
                f"a link holding {shown(destination)} did not lead to"
                f" {shown(str(location.target))}; nothing was linked",
                "run the same command without --relative",
            )
        os.replace(temporary, location.link)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
    fsync_folder(location.project_dir)


def backup_path(location: Location) -> Path:
    """A free `<leaf>.bak-<timestamp>[-N]` name beside the location."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = location.link.with_name(f"{location.leaf}.bak-{stamp}")
    number = 1
    while os.path.lexists(backup):
        number += 1
        backup = location.link.with_name(f"{location.leaf}.bak-{stamp}-{number}")
    return backup

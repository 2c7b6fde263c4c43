"""Tracked files linking adopts: copied into storage (verified) and marked skip-worktree, so
git leaves them be while they live in storage."""

from __future__ import annotations

import os
from pathlib import Path

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import copy_verified, remove_if_unchanged, remove_leftovers
from mmlab_bootstrap.git import Git, git_message
from mmlab_bootstrap.links.location import LinkError, Location, in_target


def skip_worktree(git: Git, location: Location, tracked: tuple[str, ...]) -> None:
    """Tell the sub-project's git to leave adopted files be (they live in storage now)."""
    if tracked:
        marked = git.change(
            ["update-index", "--skip-worktree", "--", *tracked], cwd=location.project_dir
        )
        if not marked.ok:  # else git would show every adopted file deleted, for good
            raise LinkError(
                f"linking {location.link} stopped part way: git update-index failed in"
                f" {shown(str(location.project_dir))}: {git_message(marked.err)}; nothing"
                f" is lost: the tracked files are still at {location.link}",
                "fix the cause, then run the same command again: it goes on from there",
                rerun_helps=True,
            )


def adopt_tracked(git: Git, location: Location, tracked: tuple[str, ...], source: Path) -> int:
    """Copy tracked files into the target, verified, and tell git to leave them be."""
    for folder in sorted({in_target(location, relative).parent for relative in tracked}):
        remove_leftovers(folder)
    copied = [
        copy_verified(
            source / os.path.relpath(relative, location.leaf), in_target(location, relative)
        )
        for relative in tracked
    ]
    skip_worktree(git, location, tracked)
    if source == location.link:
        for relative, status in zip(tracked, copied, strict=True):
            remove_if_unchanged(location.project_dir / relative, status)
    return len(tracked)

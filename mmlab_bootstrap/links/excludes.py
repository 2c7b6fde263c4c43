"""The block linking adds to a sub-project's `.git/info/exclude`, so `git status` stays clean."""

from __future__ import annotations

from pathlib import Path

from mmlab_bootstrap.fs import write_atomically
from mmlab_bootstrap.git import Git, look_at
from mmlab_bootstrap.links.inventory import git_names
from mmlab_bootstrap.links.location import Location

EXCLUDE_MARK = "# mmlab-bootstrap: {leaf} link (inv unlink removes this block)"


def exclude_missing(git: Git, location: Location) -> bool:
    """Whether `git status` in the sub-project shows the link (or a backup) as untracked and
    its exclude lacks the block that hides it. The exclude is read first: on a linked
    workspace that is all it takes (no `git status`)."""
    return _missing_block(git, location) is not None


def has_exclude(git: Git, location: Location) -> bool:
    """Whether the sub-project's exclude holds the link's block."""
    exclude = exclude_file(git, location.project_dir)
    try:
        return exclude is not None and exclude_block(location.leaf) in exclude.read_text()
    except OSError:
        return False


def add_exclude(git: Git, location: Location) -> bool:
    """Hide the link (and backups) from `git status` in the sub-project's local exclude;
    whether that changed the file."""
    missing = _missing_block(git, location)
    if missing is None:
        return False
    exclude, text = missing
    exclude.parent.mkdir(parents=True, exist_ok=True)
    block = exclude_block(location.leaf)
    write_atomically(exclude, text + ("" if not text or text.endswith("\n") else "\n") + block)
    return True


def _missing_block(git: Git, location: Location) -> tuple[Path, str] | None:
    """The exclude file and its text, when the block must be added to it."""
    exclude = exclude_file(git, location.project_dir)
    if exclude is None:
        return None
    text = exclude.read_text() if exclude.exists() else ""
    if exclude_block(location.leaf) in text:
        return None
    listed = git_names(
        git,
        ["status", "--porcelain", "-z", "--", location.leaf, f"{location.leaf}.bak-*"],
        location.project_dir,
    )
    if not any(entry.startswith("?? ") for entry in listed or ()):
        return None
    return exclude, text


def drop_exclude(git: Git, location: Location) -> None:
    """Take the link's block out of the sub-project's local exclude."""
    exclude = exclude_file(git, location.project_dir)
    if exclude is None or not exclude.exists():
        return
    text = exclude.read_text()
    block = exclude_block(location.leaf)
    if block in text:
        write_atomically(exclude, text.replace(block, ""))


def exclude_file(git: Git, project_dir: Path) -> Path | None:
    """The sub-project's `.git/info/exclude` (wherever its git folder is)."""
    facts = look_at(git, project_dir)
    if facts.toplevel:
        return facts.exclude
    where = git.probe(
        ["rev-parse", "--path-format=absolute", "--git-path", "info/exclude"], cwd=project_dir
    )
    return Path(where.out.strip()) if where.ok and where.out.strip() else None


def exclude_block(leaf: str) -> str:
    """The lines linking adds to a sub-project's `.git/info/exclude`."""
    return f"{EXCLUDE_MARK.format(leaf=leaf)}\n/{leaf}\n/{leaf}.bak-*\n"

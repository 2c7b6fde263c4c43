"""Workspace repositories that borrow objects from the git cache (share mode): finding them,
telling whether what they borrow is still there, and bringing it back (`inv clone`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import is_inside
from mmlab_bootstrap.git import CloneError, Git
from mmlab_bootstrap.gitcache.store import GitCache


class Borrower(NamedTuple):
    """A repository of the workspace (by its git folder) and the object folders it borrows."""

    gitdir: Path
    borrows: tuple[Path, ...]

    @property
    def gone(self) -> tuple[Path, ...]:
        """The borrowed object folders that are not there any more."""
        return tuple(path for path in self.borrows if not path.is_dir())


def borrowed(gitdir: Path) -> list[Path]:
    """The object folders a repository borrows from (its `objects/info/alternates`)."""
    alternates = gitdir / "objects" / "info" / "alternates"
    try:
        text = alternates.read_text(errors="surrogateescape")
    except OSError:
        return []
    lines = (line.strip() for line in text.splitlines())
    return [Path(gitdir / "objects" / line) for line in lines if line and not line.startswith("#")]


def borrowers(root: Path) -> list[Borrower]:
    """The superproject's and every submodule's repository that borrows objects: a look at
    `objects/info/alternates` in `.git` and under `.git/modules` (no git run)."""
    top = root / ".git"
    if not top.is_dir():
        return []
    found = []
    for gitdir in _gitdirs(top):
        alternates = borrowed(gitdir)
        if alternates:
            found.append(Borrower(gitdir, tuple(alternates)))
    return found


def _gitdirs(gitdir: Path) -> Iterator[Path]:
    """A repository's git folder and those of its submodules, nested ones too (a submodule's
    name may hold slashes: `modules/third_party/cub`)."""
    yield gitdir
    pending = [gitdir / "modules"]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            if (path / "HEAD").is_file() and (path / "objects").is_dir():
                yield from _gitdirs(path)
            else:
                pending.append(path)


def missing_objects(git: Git, borrower: Borrower) -> bool:
    """Whether objects that the repository's HEAD needs cannot be read."""
    if borrower.gone:
        return True
    listed = git.probe(
        ["--git-dir", str(borrower.gitdir), "rev-list", "--objects", "--missing=print", "HEAD"]
    )
    return not listed.ok or any(line.startswith("?") for line in listed.out.splitlines())


def borrowing_problems(git: Git, root: Path) -> dict[str, str]:
    """What `status` says of repositories whose borrowed objects are gone (share mode), by
    the repository's path in the workspace ("." for the superproject)."""
    problems = {}
    for borrower in borrowers(root):
        if not missing_objects(git, borrower):
            continue
        name = repository_name(git, root, borrower.gitdir)
        where = borrower.gone[0] if borrower.gone else borrower.borrows[0]
        path = "." if borrower.gitdir == root / ".git" else name
        problems[path] = (
            f"{name} borrows objects from {where}, which {_state(borrower)} (run: inv clone)"
        )
    return problems


def repository_name(git: Git, root: Path, gitdir: Path) -> str:
    """The repository's name as the user knows it: the superproject's folder, or the path of
    the submodule whose git folder it is (its `core.worktree`)."""
    worktree = git.probe(["--git-dir", str(gitdir), "config", "--get", "core.worktree"])
    if not worktree.ok or gitdir == root / ".git":
        return root.name
    return os.path.relpath(os.path.normpath(gitdir / worktree.out.strip()), root)


class Refill(NamedTuple):
    """A borrowing repository whose objects are not all there: its commit is fetched into
    the cache of these settings again (from `url`), which it then borrows from instead of
    the object folders that are `gone` (a cache deleted, or moved and named anew)."""

    gitdir: Path
    url: str
    commit: str
    name: str
    gone: tuple[Path, ...] = ()


def plan_refills(git: Git, root: Path, cache: GitCache | None) -> list[Refill]:
    """The borrowing repositories to repair by fetching their commit into the cache again;
    without a cache to fetch into, refuses."""
    refills = []
    for borrower in borrowers(root):
        if not missing_objects(git, borrower):
            continue
        at = ["--git-dir", str(borrower.gitdir)]
        url = git.probe([*at, "config", "--get", "remote.origin.url"]).out.strip()
        head = git.probe([*at, "rev-parse", "-q", "--verify", "HEAD"]).out.strip()
        name = repository_name(git, root, borrower.gitdir)
        if cache is None or not url:
            where = shown(str((borrower.gone or borrower.borrows)[0]))
            raise CloneError(
                f"{name} borrows objects from {where}, which {_state(borrower)}, and there is"
                " no git cache to fetch them into (MMLAB_GIT_CACHE is not set)",
                "name the cache it was cloned with, or a new one (inv env --git-cache PATH),"
                " then: inv clone",
            )
        if head:
            refills.append(Refill(borrower.gitdir, url, head, name, borrower.gone))
    return refills


def _state(borrower: Borrower) -> str:
    return "is gone" if borrower.gone else "lacks objects it needs"


def plan_dissociations(root: Path, cache: GitCache | None) -> list[Borrower]:
    """In dissociate mode, the repositories that still borrow from the cache (cloned in share
    mode): each gets its own copy of the objects (`git repack -a -d`, as `git clone
    --dissociate` does), then stops naming the cache. Alternates to anything else are the
    user's, and left alone."""
    if cache is None or cache.share:
        return []
    return [
        borrower
        for borrower in borrowers(root)
        if any(is_inside(path, cache.root) for path in borrower.borrows)
    ]

"""The applier of what `clone` plans for repositories that borrow from the git cache (see
`borrowing`): a commit brought back into the cache when a share-mode repository lost the
objects it borrows, and in dissociate mode a share-mode repository given its own copy."""

from __future__ import annotations

import functools
import shlex
from collections.abc import Sequence
from pathlib import Path

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.git import CloneError, Git, failure
from mmlab_bootstrap.gitcache.borrowing import Borrower, Refill, missing_objects, repository_name
from mmlab_bootstrap.gitcache.objectfiles import drop_borrowing, replace_borrowing
from mmlab_bootstrap.gitcache.store import GitCache
from mmlab_bootstrap.output import Reporter
from mmlab_bootstrap.run import Changes


def repair_borrowing(
    cache: GitCache | None,
    git: Git,
    changes: Changes,
    refills: Sequence[Refill],
    dissociations: Sequence[Borrower],
) -> None:
    """Make the planned refills, then the dissociations, each through `changes`."""
    if cache is None:  # (the planner finds neither without a cache)
        return
    for refill in refills:
        changes.make(
            f"fetch {refill.commit[:12]} of {refill.url} into the git cache again"
            f" ({refill.name} borrows its objects, which are gone)",
            functools.partial(_refill, cache, git, changes.report, refill),
        )
    for borrower in dissociations:
        repack = ["--git-dir", str(borrower.gitdir), "repack", "-a", "-d", "-q"]
        changes.make(
            [
                f"run: {shlex.join(git.command(repack))}",
                f"take the git cache out of {borrower.gitdir}/objects/info/alternates",
            ],
            functools.partial(_dissociate, cache, git, changes.report, borrower, repack),
        )


def _refill(cache: GitCache, git: Git, report: Reporter, refill: Refill) -> None:
    """Bring a commit back into the cache for a repository that borrows its objects, and
    borrow from that cache repository instead of object folders that are gone."""
    brought = cache.bring(refill.url, refill.commit)
    if not brought.ok:
        raise failure(brought, refill.url, f"fetching {refill.name} into the git cache")
    store = cache.repository(refill.url)
    replace_borrowing(refill.gitdir, refill.gone, store / "objects")
    if missing_objects(git, Borrower(refill.gitdir, (store / "objects",))):
        raise CloneError(
            f"the git cache repository {shown(str(store))} holds commit {refill.commit[:12]}"
            f" but {refill.name} still lacks objects it needs",
            f"move that cache repository away (mv '{store}' '{store}.broken'), then run:"
            " inv clone (every workspace that shares it needs the same)",
        )
    report.done(f"{refill.name}: its borrowed objects are back in the git cache")


def _dissociate(
    cache: GitCache, git: Git, report: Reporter, borrower: Borrower, repack: list[str]
) -> None:
    """Give a repository that borrows from the cache its own copy of the objects, as `git
    clone --dissociate` does: repack everything it reads, then stop naming the cache."""
    packed = git.change(repack)
    if not packed.ok:
        raise failure(packed, str(borrower.gitdir), "copying borrowed objects")
    drop_borrowing(borrower.gitdir, cache.root)
    root = _workspace_root(borrower.gitdir)
    name = repository_name(git, root, borrower.gitdir)
    report.done(f"{name}: copied the objects it borrowed from the git cache into it")


def _workspace_root(gitdir: Path) -> Path:
    """The superproject's folder of a git folder `<root>/.git[/modules/…]`."""
    while gitdir.name != ".git" and gitdir.parent != gitdir:
        gitdir = gitdir.parent
    return gitdir.parent

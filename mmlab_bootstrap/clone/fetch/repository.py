"""Fetching one submodule's repository at its recorded commit (see `fetching`)."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmlab_bootstrap.clone.fetch.state import DEFAULT_BRANCH, Early, Pass
from mmlab_bootstrap.fs import is_inside
from mmlab_bootstrap.git import (
    BY_COMMIT,
    NETWORK,
    Git,
    Outcome,
    Submodule,
    failure_kind,
    has_commit,
    has_head,
    modules_folder,
    plain_name,
)
from mmlab_bootstrap.gitcache import GitCache, cache_for
from mmlab_bootstrap.output import Reporter
from mmlab_bootstrap.run import Stopped
from mmlab_bootstrap.settings import Settings


def has_git(folder: Path) -> bool:
    """Whether `folder` has a `.git` entry (a repository's top always has one)."""
    return os.path.lexists(folder / ".git")


def _write_link(folder: Path, gitdir: str) -> None:
    """Write the `.git` file that makes `folder` the work tree of the repository in `gitdir`
    (a path relative to the folder), as git does; never over anything."""
    link = os.open(folder / ".git", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    with os.fdopen(link, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(f"gitdir: {gitdir}\n")


def _links_to(link: Path, gitdir: Path) -> bool:
    """Whether a `.git` file names `gitdir`."""
    try:
        text = link.read_text(encoding="utf-8", errors="surrogateescape").strip()
    except OSError:
        return False
    target = os.path.join(link.parent, text.removeprefix("gitdir: "))
    return os.path.realpath(target) == os.path.realpath(gitdir)


@dataclass
class RepositoryFetcher:
    """One submodule's repository: made where git makes it, its recorded commit fetched alone,
    or git's own `submodule update` where a server will not send a commit by its id."""

    settings: Settings
    git: Git
    report: Reporter
    jobs: int
    _pass: Pass | None = field(default=None, init=False, repr=False)  # the last pass

    @functools.cached_property
    def cache(self) -> GitCache | None:
        """The shared git cache (MMLAB_GIT_CACHE), if there is one."""
        settings = self.settings
        return cache_for(settings.git_cache, self.git, share=settings.shares_objects)

    def _through_cache(
        self,
        at: list[str],
        cwd: Path | None,
        commit: str,
        source: str,
        watch: Callable[[str], None],
        stopped: Callable[[], bool],
    ) -> Outcome | None:
        """Fetch `commit` of `source` (the URL as configured) through the cache: into the
        cache unless it holds it, then from there. None when there is no cache, or when the
        cache could not get it other than for the network (the usual way follows)."""
        cache = self.cache
        if cache is None or not source:
            return None
        brought = cache.bring(source, commit, watch=watch, stopped=stopped)
        if not brought.ok:
            if failure_kind(brought.err) == NETWORK:
                return brought
            return None
        return cache.lend(source, commit, at, cwd)

    def _fetch_commit(
        self,
        at: list[str],
        cwd: Path | None,
        commit: str,
        url: str,
        watch: Callable[[str], None],
        allow_file: bool,
        source: str = "",
        stopped: Callable[[], bool] = lambda: False,
    ) -> Outcome:
        """Fetch `commit` into a new repository (through the cache if there is one); meanwhile
        ask the remote for its default branch, and make that the one `origin` fetches, as a
        shallow clone has it (else all branches would come, with their whole history, at the
        next `git fetch`)."""
        asked: list[Outcome] = []
        question = [*at, "ls-remote", "--symref", "origin", "HEAD"]
        # (read-only; a failure leaves git's default for a new remote: every branch)
        asking = threading.Thread(target=lambda: asked.append(self.git.probe(question, cwd)))
        asking.start()
        try:
            fetched = self._through_cache(at, cwd, commit, source, watch, stopped)
            if fetched is None:
                fetched = self.git.network(
                    [*at, "fetch", *BY_COMMIT, "--progress", "origin", commit],
                    cwd=cwd,
                    url=url,
                    watch=watch,
                    allow_file=allow_file,
                )
        finally:
            asking.join()
        found = DEFAULT_BRANCH.search(asked[0].out) if asked and asked[0].ok else None
        if fetched.ok and found and ".." not in found["branch"]:
            branch = found["branch"]
            spec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
            self.git.change([*at, "config", "remote.origin.fetch", spec], cwd)
        return fetched

    def _make_repository(self, sub: Submodule, gitdir: Path) -> bool:
        """Make the submodule's repository as `git submodule update --init` makes it: in
        `gitdir`, its `core.worktree` and the folder's `.git` file pointing at each other by
        relative paths, `origin` at the configured URL. No commit yet: until one is checked
        out, a kill leaves a half clone that the next run removes (`_forget_half_clone`)."""
        sub.folder.mkdir(parents=True, exist_ok=True)
        folder, where = os.path.realpath(sub.folder), os.path.realpath(gitdir)
        if not self._init_repository(gitdir, sub.url, folder, os.path.relpath(folder, where)):
            return False
        _write_link(sub.folder, os.path.relpath(where, folder))
        return True

    def _init_repository(self, gitdir: Path, url: str, folder: str, worktree: str) -> bool:
        """A new, empty repository in `gitdir` with `origin` at `url`, made (as `git clone`
        makes one) for the existing `folder`, then given `worktree` as its `core.worktree`."""
        gitdir.parent.mkdir(parents=True, exist_ok=True)
        at = ["--git-dir", str(gitdir)]
        steps = (
            [*at, "--work-tree", folder, "init", "-q"],
            [*at, "config", "core.worktree", worktree],
            [*at, "remote", "add", "--", "origin", url],
        )
        return all(self.git.change(args).ok for args in steps)

    def _module_dir(self, work: Pass | None, sub: Submodule) -> Path | None:
        """Where git keeps the submodule's repository (`<parent's git folder>/modules/<name>`),
        or None for a name that is not a plain relative path (git's own way judges those)."""
        if not plain_name(sub.name):
            return None
        if work is not None and sub.parent in work.modules:
            modules = work.modules[sub.parent]
        else:
            modules = modules_folder(self.git, sub.parent)
            if work is not None:
                work.modules[sub.parent] = modules
        if modules is None:
            return None
        gitdir = modules / sub.name
        return gitdir if is_inside(Path(os.path.normpath(gitdir)), modules) else None

    def _remove_new_repository(self, work: Pass, sub: Submodule, gitdir: Path) -> None:
        """Remove the repository `_make_repository` made (it has no commit), before git's own
        way clones it again."""
        if not os.path.lexists(gitdir) or has_head(self.git, gitdir):
            return
        if not is_inside(gitdir, work.root / ".git" / "modules"):
            return
        shutil.rmtree(gitdir, ignore_errors=True)
        link = sub.folder / ".git"
        if link.is_file() and not link.is_symlink() and _links_to(link, gitdir):
            link.unlink()

    def _as_git_does(self, work: Pass, sub: Submodule, allow_file: bool) -> Outcome:
        """`git submodule update --depth 1 -- PATH`: it fetches the default branch's tip, then
        the recorded commit when that is not in it."""
        if work.pool.interrupted.is_set():
            raise Stopped
        where = str(sub.folder.relative_to(sub.parent))
        args = ["submodule", "update", "--depth", "1", "--progress", "--", where]
        return self.git.network(
            args,
            cwd=sub.parent,
            url=sub.fetched,
            watch=work.board.watcher(sub.path),
            allow_file=allow_file,
        )

    def _adopt_early(self, sub: Submodule, gitdir: Path, early: Early) -> bool:
        """Link a repository `_fetch_early` made to the submodule's folder, now checked out
        by its parent, when it is what the usual way would have fetched; else False."""
        if (early.gitdir, early.url, early.recorded) != (gitdir, sub.url, sub.recorded):
            return False
        if not sub.folder.is_dir() or sub.folder.is_symlink() or any(sub.folder.iterdir()):
            return False
        folder, where = os.path.realpath(sub.folder), os.path.realpath(gitdir)
        worktree = ["--git-dir", where, "config", "core.worktree", os.path.relpath(folder, where)]
        if not self.git.change(worktree).ok:
            return False
        _write_link(sub.folder, os.path.relpath(where, folder))
        return has_commit(self.git, sub.folder, sub.recorded)

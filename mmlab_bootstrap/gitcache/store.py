"""The shared git cache (MMLAB_GIT_CACHE): one bare repository per remote repository, holding
the commits that workspaces were cloned at, so that each commit crosses the network once per
machine, however many workspaces use it.

Everything rests on git's own mechanisms:
- into the cache: `git fetch --depth 1 URL <commit>:refs/mmlab-bootstrap/<commit>`. The ref
  keeps the commit reachable, so that even a `git gc` run by hand keeps what workspaces
  borrow; the tool sets `gc.auto 0` and never prunes or collects garbage in a cache.
- into a workspace (`lend`): in share mode its `objects/info/alternates` names the cache
  repository's objects; in dissociate mode the cache repository's pack is hard-linked in when
  it is the only one. With the objects there, the commit's entry in the cache's `shallow`
  file is copied to the workspace's (git would not find its parents); otherwise a local
  `git fetch --depth 1 <cache repository> <commit>` copies what is needed and writes it.

Not `--reference`: git refuses a shallow repository as a reference, `clone --shared` ignores a
shallow source, and an alternate written without the `shallow` entry breaks later shallow
fetches (README, "Git cache").
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import (
    HELD,
    is_inside,
    make_folders,
    shared_with_group,
    sweep,
    temporary_beside,
)
from mmlab_bootstrap.git import BY_COMMIT, Git, Outcome, has_commit, normal_url, remove_stale_locks
from mmlab_bootstrap.gitcache.objectfiles import add_line, lines_of, link_only_pack, parent_ids
from mmlab_bootstrap.run import Stopped

KEPT = "refs/mmlab-bootstrap/"
REPOSITORY_TEMPORARY = ".{name}.{pid}.{ns}.partial"  # a cache repository being made
GIT_PACK_TEMPORARY = "tmp_{git}"  # git's own, of a fetch under way (`tmp_pack_XXXXXX`, …)
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_URL = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://(?:[^/@]*@)?(?P<host>[^/]+)/|(?:[^/@:]+@)?(?P<scp>[^/:]+):)"
)
# What the cache repositories are set up with: nothing in them is ever collected (workspaces in
# share mode borrow their objects), and a fetch by commit id from them is always allowed.
CACHE_CONFIG = (
    ("gc.auto", "0"),
    ("gc.autoPackLimit", "0"),
    ("maintenance.auto", "false"),
    ("uploadpack.allowAnySHA1InWant", "true"),
    ("core.logAllRefUpdates", "false"),
)


def cache_key(url: str) -> str:
    """Where under the cache the repository of `url` lives: `github.com/owner/name.git` for
    `https://github.com/owner/name[.git]`, `host/path….git` for other plain URLs, and a name
    made from the URL's hash for anything else (local paths, odd characters)."""
    trimmed = normal_url(url)
    found = _URL.match(trimmed)
    if found and not trimmed.startswith("file:"):
        host = (found["host"] or found["scp"]).lower().rpartition("@")[2].replace(":", "_")
        parts = [host, *trimmed[found.end() :].split("/")]
        plain = all(_PLAIN.fullmatch(part) for part in parts)
        nested = any(part.endswith(".git") for part in parts[:-1])  # (inside another one)
        if plain and not nested and len(parts) >= 2:
            return "/".join(parts) + ".git"
    import hashlib  # startup: only for URLs of odd shapes

    digest = hashlib.sha256(trimmed.encode(errors="surrogateescape")).hexdigest()[:20]
    tail = trimmed.rpartition("/")[2]
    label = tail if _PLAIN.fullmatch(tail) else "repository"
    return f"other/{label}-{digest}.git"


class CacheError(BootstrapError):
    """The git cache cannot be used as asked."""


class GitCache:
    """The cache at `root`: brings commits into it, and lends them to workspace repositories."""

    def __init__(self, root: Path, git: Git, *, share: bool) -> None:
        self.root = root
        self.git = git
        self.share = share

    @property
    def mode(self) -> str:
        return "share" if self.share else "dissociate"

    def repository(self, url: str) -> Path:
        """The cache repository of `url` (whether it exists yet or not)."""
        return self.root / cache_key(url)

    def holds(self, url: str, commit: str) -> bool:
        """Whether the cache has `commit` of `url` whole (no network): its ref is there, which
        git writes only after the pack and the `shallow` entry (a fetch killed before, or
        still running, leaves the commit without that entry: not held)."""
        repo = self.repository(url)
        if not repo.is_dir():
            return False
        kept = self._git(repo, "rev-parse", "-q", "--verify", f"{KEPT}{commit}^{{commit}}")
        return kept.ok and kept.out.strip() == commit and self._whole(repo, commit)

    def _whole(self, repo: Path, commit: str) -> bool:
        """Whether `commit`'s parents are either in the cache or marked shallow there (a
        `shallow` file edited by hand would leave neither)."""
        at = ["--git-dir", str(repo)]
        return commit in lines_of(repo / "shallow") or not self._parents_missing(at, None, commit)

    def _git(self, repo: Path, *args: str) -> Outcome:
        """A read-only git command in a cache repository, named by `--git-dir` (never found
        from a folder: a damaged one must not lead git to a repository around the cache)."""
        return self.git.probe(["--git-dir", str(repo), *args])

    def bring(
        self,
        url: str,
        commit: str,
        *,
        name: str = "",
        watch: Callable[[str], None] | None = None,
        stopped: Callable[[], bool] = lambda: False,
    ) -> Outcome:
        """Make sure the cache holds `commit` of `url`: fetched at depth 1 (by `name`, a ref
        the remote has, when given; else by its id) unless it is there already."""
        if self.holds(url, commit):
            return Outcome(0, "", "")
        repo = self._made(url)
        with self._locked(repo, stopped):
            _remove_leftovers(repo)
            if self.holds(url, commit):  # brought by another workspace meanwhile
                return Outcome(0, "", "")
            self.git.change(["--git-dir", str(repo), "update-ref", "-d", f"{KEPT}{commit}"])
            wanted = f"+{name}:{KEPT}{commit}" if name else f"{commit}:{KEPT}{commit}"
            at = ["--git-dir", str(repo)]
            args = [*at, "fetch", *BY_COMMIT, "--progress", url, wanted]
            fetched = self.git.network(args, url=url, watch=watch)
            if fetched.ok and not self.holds(url, commit):  # `name` moved on meanwhile
                return Outcome(1, "", f"{name} no longer points at {commit} on {url}")
            return fetched

    def lend(
        self, url: str, commit: str, at: list[str], cwd: Path | None, *, fetch_head: bool = False
    ) -> Outcome:
        """Give the workspace repository (`git [at]` run in `cwd`) `commit` from the cache:
        borrowed through alternates (share mode), or the cache repository's only pack
        hard-linked in (dissociate mode; copied across filesystems), else by a local fetch at
        depth 1 (which also writes the `shallow` entry)."""
        repo = self.repository(url)
        where = self.git.probe([*at, "rev-parse", "--absolute-git-dir"], cwd)
        if not where.ok:
            return where
        gitdir = Path(where.out.strip())
        if self.share:
            add_line(gitdir / "objects" / "info" / "alternates", str(repo / "objects"))
        present = self.share or link_only_pack(repo / "objects", gitdir / "objects")
        if present and has_commit(self.git, cwd, commit, git_dir=gitdir):
            # All there: what the fetch would add is the `shallow` entry (the cache lacks the
            # commit's parents, and so does the workspace), and FETCH_HEAD when asked for. (A
            # fetch would send the commit again: git does not count a shallow one as a `have`.)
            if self._parents_missing(at, cwd, commit):
                add_line(gitdir / "shallow", commit)
            if fetch_head:
                return self.git.change([*at, "update-ref", "--no-deref", "FETCH_HEAD", commit], cwd)
            return Outcome(0, "", "")
        args = [*at, "fetch", *BY_COMMIT, str(repo), commit]
        if fetch_head:
            args.remove("--no-write-fetch-head")
        return self.git.change(args, cwd)

    def _parents_missing(self, at: list[str], cwd: Path | None, commit: str) -> bool:
        """Whether the repository (`git [at]` run in `cwd`: a workspace's, or the cache's by
        `--git-dir`) lacks a parent of `commit` (then its `shallow` file must list it)."""
        parents = parent_ids(self.git.probe([*at, "cat-file", "commit", commit], cwd).out)
        return any(not self.git.probe([*at, "cat-file", "-e", p], cwd).ok for p in parents)

    def _made(self, url: str) -> Path:
        """The cache repository of `url`, made (in a temporary folder, then moved into place,
        so that a kill or a concurrent run never leaves a half-made one) if it is not there."""
        repo = self.repository(url)
        if os.path.lexists(repo):
            if repo.is_dir() and self._git(repo, "rev-parse", "--is-bare-repository").ok:
                return repo
            raise CacheError(
                f"{shown(str(repo))} in the git cache is not a git repository (damaged?);"
                " left alone",
                f"move it away (mv '{repo}' '{repo}.broken'), then run: inv clone",
            )
        partial = temporary_beside(repo, REPOSITORY_TEMPORARY)
        try:
            make_folders(repo.parent)
            # In a team's shared cache (setgid, group-writable) git keeps what it writes
            # group-writable too (core.sharedRepository=group).
            shared = ["--shared=group"] if shared_with_group(repo.parent) else []
            made = self.git.change(["init", "-q", "--bare", *shared, "--", str(partial)])
            at = ["--git-dir", str(partial)]
            for key, value in CACHE_CONFIG:
                made = made if not made.ok else self.git.change([*at, "config", key, value])
            if made.ok:
                with contextlib.suppress(OSError):
                    os.rename(partial, repo)  # (another run made it first: theirs is as good)
        except OSError as error:
            made = Outcome(1, "", str(error))
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        blocking = [p for p in repo.parents if is_inside(p, self.root) and p.is_file()]
        if blocking:
            raise CacheError(
                f"{shown(str(blocking[0]))} in the git cache is a file, where a folder of"
                " repositories goes; left alone",
                f"move it away (mv '{blocking[0]}' '{blocking[0]}.old'), then run: inv clone",
            )
        if not repo.is_dir():
            raise CacheError(
                f"cannot make the git cache repository {shown(str(repo))}:"
                f" {made.err.strip() or 'it is not there after making it'}",
                "choose a git cache folder you can write (inv env --git-cache PATH), or none"
                " (inv env --git-cache '')",
            )
        return repo

    @contextlib.contextmanager
    def _locked(self, repo: Path, stopped: Callable[[], bool]) -> Iterator[None]:
        """Hold the cache repository's lease lock (one fetch into it at a time, from any
        workspace on any machine that shares the cache; see `leaselock`)."""

        # startup: only when a fetch into the cache is needed
        from mmlab_bootstrap.fs import LockRoom, holding

        def waiting() -> None:
            if stopped():
                raise Stopped

        room = LockRoom(self.root)
        name = os.path.relpath(repo, self.root).replace(os.sep, "+")
        lock = room.lease(name, self.git.warn, waiting)

        def refusal(error: OSError) -> CacheError:  # (a read-only cache, say)
            return CacheError(
                f"cannot lock the git cache repository {shown(str(repo))}:"
                f" {error.strerror} ({shown(str(error.filename or room.folder))})",
                "choose a git cache folder you can write (inv env --git-cache PATH), or"
                " none (inv env --git-cache '')",
            )

        with holding(lock, refusal):
            yield


def _remove_leftovers(repo: Path) -> None:
    """Remove what a killed run left in and beside a cache repository: git's lock files and
    the temporary pack files of a fetch (the caller holds its lock, and only this tool writes
    there), and the folders a killed `_made` was making it in. Those are of no use to anyone
    once the repository is there: a run making one now gives up its own when its rename finds
    the repository in place, whoever made it."""
    sweep(repo.parent, REPOSITORY_TEMPORARY, rule=HELD, folders=True, name=repo.name)
    remove_stale_locks(repo)
    sweep(repo / "objects" / "pack", GIT_PACK_TEMPORARY, rule=HELD, git=re.compile(".*"))


def cache_for(root: Path | None, git: Git, *, share: bool) -> GitCache | None:
    """The cache of these settings, or None when MMLAB_GIT_CACHE is not set."""
    return GitCache(root, git, share=share) if root is not None else None

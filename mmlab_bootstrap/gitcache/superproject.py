"""The superproject through the git cache (see `gitcache`): its ref looked up on the remote
(one small request), its commit brought into the cache unless it is there, then a repository
made as `git clone --depth 1 [--branch REF]` makes it, with its objects from the cache."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.git import FULL_SHA, Git, Outcome
from mmlab_bootstrap.gitcache.store import GitCache

_SYMREF = re.compile(r"^ref: refs/heads/(?P<branch>\S+)\tHEAD$", re.MULTILINE)
_LINE = re.compile(r"^(?P<sha>[0-9a-f]{40})\t(?P<ref>\S+)$", re.MULTILINE)
NOT_FOUND = "couldn't find remote ref"  # as git says it (cloner's check of the ref knows it)


class Resolved(NamedTuple):
    """A ref as the remote has it."""

    commit: str
    name: str = ""  # the remote ref to fetch it by ("" for a commit id)
    branch: str = ""  # the branch to check out ("" for a tag or a commit: detached)
    default: bool = False  # the remote's default branch (a clone also sets origin/HEAD)


def resolve_ref(git: Git, repo: str, ref: str) -> Resolved | Outcome:
    """The commit `ref` (a branch, a tag, a commit id, or "" for the default branch) names on
    `repo`, or the failed outcome (git's own, or one that says the ref is not there)."""
    if re.fullmatch(FULL_SHA, ref):
        return Resolved(ref)
    patterns = [f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"] if ref else []
    args = ["ls-remote", *(["--symref"] if not ref else []), "--", repo, *(patterns or ["HEAD"])]
    listed = git.network(args, url=repo)
    if not listed.ok:
        return listed
    found = {line["ref"]: line["sha"] for line in _LINE.finditer(listed.out)}
    if not ref:
        symref = _SYMREF.search(listed.out)
        if symref and "HEAD" in found:
            branch = symref["branch"]
            return Resolved(found["HEAD"], f"refs/heads/{branch}", branch, default=True)
    elif f"refs/heads/{ref}" in found:
        return Resolved(found[f"refs/heads/{ref}"], f"refs/heads/{ref}", ref)
    elif f"refs/tags/{ref}" in found:
        peeled = found.get(f"refs/tags/{ref}^{{}}", found[f"refs/tags/{ref}"])
        return Resolved(peeled, f"refs/tags/{ref}")
    return Outcome(128, "", f"fatal: {NOT_FOUND} {ref or 'HEAD'}")


def describe(cache: GitCache, git: Git, repo: str, ref: str, folder: Path) -> list[str]:
    """The --dry lines of a clone through the cache."""
    store = cache.repository(repo)
    lookup = ["ls-remote", "--", repo, ref or "HEAD"]
    return [
        f"run: {shlex.join(git.command(lookup))} (the commit {ref or 'the default branch'} is at)",
        f"fetch that commit into the git cache {store} (depth 1) unless it holds it",
        f"make {folder} as git clone --depth 1 makes it, origin {repo}, its objects"
        f" {'borrowed from' if cache.share else 'copied from'} the cache ({cache.mode} mode)",
    ]


def clone_through_cache(
    cache: GitCache, git: Git, repo: str, ref: str, folder: Path, watch: Callable[[str], None]
) -> Outcome:
    """Clone `repo` at `ref` into the new `folder` (depth 1) with its objects from the cache;
    the failed outcome of the step that failed, if one does."""
    resolved = resolve_ref(git, repo, ref)
    if isinstance(resolved, Outcome):
        return resolved
    brought = cache.bring(repo, resolved.commit, name=resolved.name, watch=watch)
    if not brought.ok:
        return brought
    branch = resolved.branch
    steps: list[list[str]] = [["remote", "add", "--", "origin", repo]]
    if branch:
        spec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
        steps.append(["config", "remote.origin.fetch", spec])
    made = git.change(["init", "-q", "--", str(folder)])
    for args in steps:
        made = made if not made.ok else git.change(args, folder)
    if not made.ok:
        return made
    lent = cache.lend(repo, resolved.commit, [], folder)
    if not lent.ok:
        return lent
    if not branch:
        return git.change(["checkout", "-q", "--detach", resolved.commit], folder)
    tracking = f"refs/remotes/origin/{branch}"
    last: list[list[str]] = [["update-ref", tracking, resolved.commit]]
    if resolved.default:
        last.append(["symbolic-ref", "refs/remotes/origin/HEAD", tracking])
    last.append(["checkout", "-q", "-b", branch, "--track", f"origin/{branch}"])
    for args in last:
        made = git.change(args, folder)
        if not made.ok:
            return made
    return made


def fetch_through_cache(cache: GitCache, git: Git, repo: str, ref: str, root: Path) -> Outcome:
    """`git fetch --depth 1 origin REF` for an update, through the cache: FETCH_HEAD ends at
    the commit `ref` names on `repo`; no ref of the clone moves."""
    resolved = resolve_ref(git, repo, ref)
    if isinstance(resolved, Outcome):
        return resolved
    brought = cache.bring(repo, resolved.commit, name=resolved.name)
    if not brought.ok:
        return brought
    return cache.lend(repo, resolved.commit, [], root, fetch_head=True)

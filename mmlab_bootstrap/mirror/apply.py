"""The mirror applier: brings one repository of the mirror up to date, under its lease lock,
every change through `changes.Changes.make` (which only shows it under --dry).

A fresh repository is cloned (`git clone --mirror`) into a uniquely named partial folder
beside its place, given the server options that shallow and by-commit fetches need, then
renamed into place: a kill at any moment leaves either no repository or a whole one. An
existing one is updated with `git fetch --atomic origin` (all of its refs or none). What a
killed run left (partial folders, git's `*.lock` files) is removed only under the lock.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import LockRoom, holding
from mmlab_bootstrap.git import (
    Answers,
    Git,
    GitError,
    Outcome,
    failure,
    has_commit,
    remove_stale_locks,
)
from mmlab_bootstrap.mirror.places import MirrorError, Place, lock_name
from mmlab_bootstrap.mirror.plan import KEPT, RepoPlan, look, needs_keeping
from mmlab_bootstrap.output import Reporter, human_size
from mmlab_bootstrap.run import Changes

SERVER_OPTIONS = {
    "uploadpack.allowReachableSHA1InWant": "true",
    "uploadpack.allowAnySHA1InWant": "true",
    "uploadpack.allowFilter": "true",
}
# gc runs in the foreground, under the lock, never left running after the tool ends
QUIET_GC = ["-c", "gc.autoDetach=false"]


def mirror_failure(outcome: Outcome, url: str, what: str) -> GitError:
    """git's failure, its hint naming the command that finishes the mirror."""
    error = failure(outcome, url, what)
    error.hint = error.hint.replace("inv clone", "inv mirror DEST")
    return error


class Synced(NamedTuple):
    """What updating one repository did: a line for the report, commits upstream refused."""

    plan: RepoPlan
    line: str
    refused: tuple[str, ...] = ()


class Mirrorer:
    """Updates repositories of the mirror in DEST; safe to call from several threads."""

    def __init__(self, dest: Path, mirror: str, report: Reporter, changes: Changes) -> None:
        self.dest = dest
        self.mirror = mirror
        self.report = report
        self.changes = changes
        self.room = LockRoom(dest)

    def git(self, place: Place) -> Git:
        """git for one repository (its own, as threads work on several at once)."""
        fresh = Answers()
        fresh.paused = 1  # nothing remembered: the repository changes under these questions
        git = Git(self.report, mirror=self.mirror, answers=fresh)
        git.progress = False
        git.stale_locks_under = place.path
        return git

    def sync(self, place: Place, commits: Iterable[str], *, fetch: bool) -> Synced:
        """Clone or fetch `place` (when `fetch`), and make sure it holds `commits` reachable."""
        git = self.git(place)
        with contextlib.ExitStack() as stack:

            def refusal(error: OSError) -> MirrorError:  # (a read-only DEST, say)
                return MirrorError(
                    f"cannot lock {shown(str(place.path))} in the mirror: {error.strerror}"
                    f" ({shown(str(error.filename or self.dest))})",
                    "choose a DEST you can write to: inv mirror DEST",
                )

            def lock() -> None:  # only for real changes: --dry neither waits nor writes here
                lease = self.room.lease(lock_name(place), self.report.info)
                stack.enter_context(holding(lease, refusal))

            self.changes.after_changes(lock)
            plan = look(git, place)  # again, under the lock: another run may have made it
            for leftover in plan.leftovers:
                self.changes.make(
                    f"remove {leftover} (left by an interrupted run)",
                    functools.partial(self._remove, leftover),
                )
            if plan.exists:
                self.changes.after_changes(lambda: self._remove_git_locks(place.path))
            line = "up to date" if plan.exists else "not mirrored yet"
            if fetch:
                line = self._fetch(git, plan) if plan.exists else self._clone(git, place)
            if plan.exists:
                self._set_options(git, place.path)
            refused = [c for c in commits if not self._keep(git, plan, c)]
        return Synced(plan, line or "(dry)", tuple(refused))

    def _clone(self, git: Git, place: Place) -> str:
        partial = place.partial()
        command = ["clone", "--mirror", place.url, str(partial)]

        def clone() -> str:
            place.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                outcome = git.network(command, url=place.url)
            except BaseException:  # interrupted: nothing of it is kept
                shutil.rmtree(partial, ignore_errors=True)
                raise
            if not outcome.ok:
                shutil.rmtree(partial, ignore_errors=True)
                raise mirror_failure(outcome, place.url, "git clone --mirror")
            self._set_options(git, partial)
            os.rename(partial, place.path)
            return f"cloned {self._size(place.path)}"

        return (
            self.changes.make(
                f"run: {shlex.join(git.command(command))}, then move it to {place.path}", clone
            )
            or ""
        )

    def _fetch(self, git: Git, plan: RepoPlan) -> str:
        path = plan.place.path
        command = [*QUIET_GC, "fetch", "--atomic", "origin"]

        def fetch() -> str:
            before = self._refs(git, path)
            outcome = git.network(command, path, url=plan.place.url)
            if not outcome.ok:
                raise mirror_failure(outcome, plan.place.url, "git fetch")
            changed = len(set(self._refs(git, path).items()) - set(before.items()))
            return f"fetched, {changed} ref(s) updated" if changed else "up to date"

        return self.changes.make(f"run: {shlex.join(git.command(command, path))}", fetch) or ""

    def _keep(self, git: Git, plan: RepoPlan, commit: str) -> bool:
        """Make a commit a parent records fetchable from the mirror: fetch it by its id when
        absent, and keep it under refs/mmlab-bootstrap/kept/ when no ref reaches it. False
        when upstream will not send it."""
        path, ref = plan.place.path, f"{KEPT}{commit}"
        if not os.path.isdir(path):
            return True  # under --dry, before the clone: cannot know yet
        if has_commit(git, path, commit):
            if needs_keeping(git, path, commit):
                self.changes.make(
                    f"keep {commit} in {path} ({ref})",
                    lambda: git.change(["update-ref", ref, commit], path),
                )
            return True
        command = [*QUIET_GC, "fetch", "--atomic", "origin", f"+{commit}:{ref}"]

        def fetch() -> bool:
            outcome: Outcome = git.network(command, path, url=plan.place.url)
            return outcome.ok and has_commit(git, path, commit)

        return (
            self.changes.make(f"run: {shlex.join(git.command(command, path))}", fetch) is not False
        )

    def _set_options(self, git: Git, path: Path) -> None:
        for key, value in SERVER_OPTIONS.items():
            if git.probe(["config", "--get", key], cwd=path).out.strip() != value:
                self.changes.make(
                    f"set {key}={value} in {path}",
                    functools.partial(git.change, ["config", key, value], path),
                )

    def _refs(self, git: Git, path: Path) -> dict[str, str]:
        listing = git.probe(["for-each-ref", "--format=%(refname) %(objectname)"], cwd=path)
        return dict(line.split(" ", 1) for line in listing.out.splitlines() if " " in line)

    def _remove(self, leftover: Path) -> None:
        try:
            shutil.rmtree(leftover)
        except OSError as error:  # a git the killed run started may still write into it
            self.report.warn(f"could not remove {leftover} yet ({error.strerror}); left for later")
            return
        self.report.done(f"removed {leftover} (left by an interrupted run)")

    def _remove_git_locks(self, path: Path) -> None:
        """git's `*.lock` files a killed git left in a repository whose lock we hold."""
        for lock in remove_stale_locks(path):
            self.report.done(f"removed {lock} (left by an interrupted git)")

    @staticmethod
    def _size(path: Path) -> str:
        total = sum(f.stat().st_size for f in (path / "objects").rglob("*") if f.is_file())
        return human_size(total)

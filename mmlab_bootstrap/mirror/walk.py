"""The walk over the repositories to mirror: the superproject first, then every submodule
its followed commits record, recursively, `jobs` repositories at a time (nested ones as soon as
their parent is done). Each repository is fetched once per run, however often it is reached;
commits that reach it later are only checked (and fetched by id when missing).
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.git import FULL_SHA, has_commit
from mmlab_bootstrap.mirror.apply import Mirrorer
from mmlab_bootstrap.mirror.places import MirrorError, Place
from mmlab_bootstrap.mirror.plan import Child, children, start_commits
from mmlab_bootstrap.output import Heartbeat, Reporter
from mmlab_bootstrap.run import WorkPool


class Visit(NamedTuple):
    """One repository's work: the commits to make sure of, and whether to fetch it."""

    place: Place
    commits: frozenset[str]
    fetch: bool
    root: bool = False


class Walk:
    """Mirrors a superproject and its submodules; `failed` names what could not be mirrored."""

    def __init__(self, mirrorer: Mirrorer, report: Reporter, *, ref: str, all_refs: bool) -> None:
        self.mirrorer = mirrorer
        self.report = report
        self.ref = ref
        self.all_refs = all_refs
        self.seen: dict[str, set[str]] = {}  # repository -> commits already asked for
        self.busy: set[str] = set()  # repositories with work running
        self.waiting: dict[str, tuple[Place, set[str]]] = {}  # commits reached while busy
        self.failed: list[tuple[Place, BootstrapError]] = []
        self.done = 0
        self._said: set[str] = set()
        self._lock = threading.Lock()
        self._working: dict[str, float] = {}  # repositories being mirrored, since when

    def run(self, root: Place, jobs: int) -> None:
        """Mirror `root` and everything it leads to; failures are kept in `failed`. A line
        every MMLAB_HEARTBEAT seconds names the repositories still being fetched."""
        with Heartbeat(self._heartbeat):
            self._run(root, jobs)

    def _run(self, root: Place, jobs: int) -> None:
        sha = {self.ref} if re.fullmatch(FULL_SHA, self.ref) else set()
        first = Visit(root, frozenset(sha), fetch=True, root=True)
        self._mark(first)
        # (a Ctrl-C reaches the git processes too: what runs ends with its git)
        WorkPool(self._visit_kept, jobs, then=self._then, name="mirror").run([first])

    def _mark(self, visit: Visit) -> None:
        """A visit about to be added: its repository is busy, its commits asked for."""
        self.busy.add(visit.place.key)
        self.seen.setdefault(visit.place.key, set()).update(visit.commits)

    def _then(self, visit: Visit, result: tuple[list[Child], BootstrapError | None]) -> list[Visit]:
        """A visit ended: keep its failure, return the visits its children call for."""
        found, error = result
        self.busy.discard(visit.place.key)
        if error is not None:
            self.failed.append((visit.place, error))
        batch = self._next(visit.place, found)
        for more in batch:
            self._mark(more)
        return batch

    def _visit_kept(self, visit: Visit) -> tuple[list[Child], BootstrapError | None]:
        """One visit; its failure kept (the others go on)."""
        try:
            return self._visit(visit), None
        except BootstrapError as error:
            return [], error

    def _next(self, done: Place, found: list[Child]) -> list[Visit]:
        """The visits that the children of a finished repository (and commits that reached
        it while it was busy) call for."""
        wanted: dict[str, tuple[Place, set[str]]] = {}
        if done.key in self.waiting:
            wanted[done.key] = self.waiting.pop(done.key)
        for child in found:
            wanted.setdefault(child.place.key, (child.place, set()))[1].add(child.commit)
        batch: list[Visit] = []
        for key, (place, commits) in wanted.items():
            new = commits - self.seen.get(key, set())
            if key not in self.seen:
                batch.append(Visit(place, frozenset(new), fetch=True))
            elif key in self.busy and new:
                self.waiting.setdefault(key, (place, set()))[1].update(new)
            elif new:
                batch.append(Visit(place, frozenset(new), fetch=False))
        return batch

    def _visit(self, visit: Visit) -> list[Child]:
        place = visit.place
        with self._lock:
            self._working[place.key] = time.monotonic()
        try:
            synced = self.mirrorer.sync(place, sorted(visit.commits), fetch=visit.fetch)
        finally:
            with self._lock:
                self._working.pop(place.key, None)
        if visit.fetch:
            changed = synced.line not in ("up to date", "(dry)")
            show = self.report.done if changed else self.report.unchanged
            line = f"{place.key}: {synced.line} ({place.path})"
            self.mirrorer.changes.after_changes(lambda: show(line))
        if visit.fetch:
            with self._lock:
                self.done += 1
        for commit in synced.refused:
            self.report.warn(
                f"{place.key}: upstream will not send {commit}, which a parent records;"
                " workspaces that need it will fail to fetch it"
            )
        if not os.path.isdir(place.path):
            self.report.info(f"{place.key}: its submodules cannot be known before it is fetched")
            return []
        git = self.mirrorer.git(place)
        commits = set(visit.commits)
        if visit.root:
            starts = start_commits(git, place.path, self.ref, all_refs=self.all_refs)
            if not starts:  # under --dry the repository may not be fetched yet: no check

                def missing() -> None:
                    raise MirrorError(
                        f"MMLAB_EXTENSION_REF {shown(self.ref)} is not in {place.url}",
                        "name a branch, tag or full commit id it has: inv mirror DEST --ref NAME",
                    )

                self.mirrorer.changes.after_changes(missing)
            commits |= set(starts)
        found: list[Child] = []
        for commit in sorted(commits - set(synced.refused)):
            if not has_commit(git, place.path, commit):
                continue  # under --dry: not fetched yet
            more, warnings = children(git, self.mirrorer.dest, place, commit)
            found += more
            for line in warnings:
                self._warn_once(line)
        return found

    def _heartbeat(self) -> None:
        with self._lock:
            now = time.monotonic()
            working = [f"{key} ({now - since:.0f} s)" for key, since in self._working.items()]
        if working:
            line = f"… still working: {', '.join(working)}"
            self.mirrorer.changes.after_changes(functools.partial(self.report.info, line))

    def _warn_once(self, line: str) -> None:
        with self._lock:
            if line in self._said:
                return
            self._said.add(line)
        self.report.warn(line)


def failure_error(failed: list[tuple[Place, BootstrapError]], dest: Path) -> BootstrapError:
    """One error for the repositories that could not be mirrored (the others were)."""
    if len(failed) == 1:
        place, error = failed[0]
        return MirrorError(
            f"{place.key}: {error.message}", error.hint, rerun_helps=error.rerun_helps
        )
    names = "; ".join(f"{place.key}: {error.message}" for place, error in failed)
    return MirrorError(
        f"{len(failed)} repositories could not be mirrored into {dest}: {names}",
        failed[0][1].hint,
        rerun_helps=all(error.rerun_helps for _, error in failed),
    )

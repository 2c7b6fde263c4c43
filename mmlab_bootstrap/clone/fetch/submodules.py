"""Fetch a superproject's submodules, each only at its recorded commit, in parallel, resumably.

A submodule not cloned yet gets its repository where `git submodule update --init` puts it
(`<parent's git folder>/modules/<name>`, linked to its folder as git links it, `origin` at its
configured URL), then ONE shallow fetch of the commit its parent records (not the default
branch's tip first, as `git submodule update --depth 1` does), then its checkout. An existing
clone fetches the recorded commit the same way when it lacks it. A server that refuses to
send a commit by its id gets git's own way instead (`git submodule update --depth 1`).

There are no levels: a submodule's own submodules start as soon as it is checked out (their
commits even while it is being checked out, read from its commit), all under one limit of
`jobs` at a time. The submodules of one repository are listed and their URLs checked (see
`submodules`) before any of them is fetched. The checkouts about to start are written to the
`checkouts` record first, so that one a kill stopped half way is finished by the next run; a
repository made but holding no commit yet is removed by the next run and fetched again.

The work is split by concern: `fetch_state` (shared state), `fetch_repository` (one
repository at its commit), `fetch_resume` (what a kill left), `fetch_nested` (one submodule and
its nested ones).
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

from mmlab_bootstrap.clone.checkouts import CheckoutRecord
from mmlab_bootstrap.clone.fetch.nested import NestedFetcher, interrupt, wait_for
from mmlab_bootstrap.clone.fetch.state import ROUNDS, Pass, Result, Task
from mmlab_bootstrap.git import (
    BY_COMMIT,
    CONFLICT,
    REFUSED,
    CloneError,
    Outcome,
    Submodule,
    failure,
    failure_kind,
    file_roots,
    incomplete_submodules,
    list_submodules,
    needs_file_transport,
    walk_submodules,
)
from mmlab_bootstrap.output import Board
from mmlab_bootstrap.run import Stopped, WorkPool


class SubmoduleFetcher(NestedFetcher):
    """Brings every submodule of a superproject to its recorded commit."""

    def describe(self, root: Path) -> str:
        """What `run` will do, as --dry shows it."""
        fetch = self.git.command(["fetch", *BY_COMMIT, "origin"], root / "<each submodule>")
        update = self.git.command(["submodule", "update", "--init", "--depth", "1", "--"], root)
        cache = self.cache
        if cache is not None:
            store = f"{cache.root}/<host>/<owner>/<name>.git"
            fetch = ["git", "--git-dir", store, "fetch", *BY_COMMIT, "<its URL>"]
            borrowing = "borrowed" if cache.share else "hard-linked or copied"
            return (
                f"fetch each submodule through the git cache {cache.root} ({cache.mode} mode),"
                f" after checking its URL: run {shlex.join(fetch)} <its recorded commit> unless"
                f" the cache holds it, then its objects {borrowing} from there and the commit"
                f" checked out (nested ones as soon as their parent is checked out;"
                f" {self.jobs} at a time)"
            )
        return (
            f"run: {shlex.join(fetch)} <its recorded commit>, then check that commit out, for"
            f" each submodule after checking its URL (nested ones as soon as their parent is"
            f" checked out; {self.jobs} at a time); where a server will not send a commit"
            f" by its id: {shlex.join(update)} <each submodule>"
        )

    def run(self, root: Path) -> None:
        """Fetch and check out what is missing; a few rounds, repairing what a kill left."""
        git = self.git
        git.stale_locks_under = root / ".git"
        record = CheckoutRecord(root)
        failed: list[tuple[Submodule, Outcome]] = []
        for _ in range(ROUNDS):
            failed = self._levels(root, record)
            for sub, outcome in failed:
                if failure_kind(outcome.err) in (REFUSED, CONFLICT):
                    raise failure(
                        outcome, sub.fetched, f"fetching submodule {sub.path}", sub.folder
                    )
            if self._pass is not None and not failed and not self._pass.unfinished:
                # every submodule the pass met (all of them, nested ones of complete ones
                # included) is at its recorded commit and checked out
                self.report.done(f"submodules ready: {self._pass.ready}")
                return
            status = walk_submodules(git, root)
            missing = incomplete_submodules(git, root, status)
            if not missing and not failed:
                self.report.done(f"submodules ready: {len(status)}")
                return
            for entry in missing:
                self._repair(root, entry)
        if failed:
            sub, outcome = failed[0]
            raise failure(outcome, sub.fetched, f"fetching submodule {sub.path}", sub.folder)
        raise CloneError(
            f"submodules not complete: {', '.join(entry.path for entry in missing)}",
            f"look at them (git -C '{root}' submodule status --recursive), then run: inv clone",
        )

    def _levels(self, root: Path, record: CheckoutRecord) -> list[tuple[Submodule, Outcome]]:
        """One pass over every submodule, nested ones as soon as their parent is checked out,
        `jobs` at a time; returns the submodules whose fetch failed. After an error (a refusal
        while listing nested ones) nothing new starts; what runs finishes, then it is raised.
        A Ctrl-C stops what runs too (and the git processes it started)."""
        failed: list[tuple[Submodule, Outcome]] = []

        def then(_task: Task, result: Result) -> list[Task]:
            sub, outcome, batch = result
            if not outcome.ok:
                failed.append((sub, outcome))
            return [functools.partial(self._work, work, nested, allow) for nested, allow in batch]

        def on_interrupt() -> None:
            interrupt(work)
            self.git.interrupt()

        roots = file_roots(self.settings.repo, self.settings.mirror)
        with Board(self.report, live=self.git.progress) as board:
            self.git.warn = lambda text: board.say(lambda: self.report.warn(text))
            pool: WorkPool[Task, Result] = WorkPool(
                _call, max(1, self.jobs), then=then, on_interrupt=on_interrupt, name="submodule"
            )
            work = self._pass = Pass(root, record, roots, board, pool)
            try:
                first = self._prepare(work, list_submodules(self.git, root, root))
                pool.run([functools.partial(self._work, work, sub, allow) for sub, allow in first])
            finally:
                self.git.warn = self.report.warn
        return failed

    def _prepare(self, work: Pass, subs: list[Submodule]) -> list[tuple[Submodule, bool]]:
        """Check one repository's submodules before any of them is fetched: their URLs, files
        in the way, half clones and checkouts an interrupted run left; note the checkouts
        about to start. Returns each with whether it may use the file transport."""
        pending = [sub for sub in subs if not self._complete(sub)]
        needs_file_transport(self._urls(pending), work.roots)  # refuses any unsafe one
        for sub in pending:
            self._refuse_files_in_the_way(sub, work.record)
            self._forget_half_clone(work.root, sub)
        resumed = [sub for sub in pending if self._resume(sub, work.record)]
        pending = [sub for sub in pending if sub not in resumed]
        ours = {s.path: s.recorded for s in pending if self._ours(s, work.record)}
        with work.lock:
            work.record.start(ours)
        work.board.expect(len([sub for sub in pending if sub.folder not in work.early]))
        batch = [(sub, needs_file_transport(self._urls([sub]), work.roots)) for sub in pending]
        return batch + [(sub, False) for sub in subs if sub not in pending]

    def _work(self, work: Pass, sub: Submodule, allow_file: bool) -> Result:
        """Bring one submodule to its recorded commit (unless it is there), then prepare its
        own submodules; returns them, to be started next."""
        if work.pool.interrupted.is_set():
            raise Stopped
        outcome = Outcome(0, "", "")
        if not self._complete(sub):
            early = work.early.get(sub.folder)
            if early is not None:
                wait_for(work, early)
            on_board = early is None or not early.ok  # (else its line showed the early fetch)
            if on_board:
                work.board.add(sub.path, sub.fetched)
            outcome = Outcome(1, "", "")
            try:
                outcome = self._fetch_one(work, sub, allow_file)
            finally:
                if on_board:
                    work.board.finish(sub.path, outcome.ok)
            if not outcome.ok or not self._complete(sub):
                with work.lock:
                    work.unfinished += 1
                return sub, outcome, []
        with work.lock:
            work.record.finish([sub.path])
            work.ready += 1
        if work.pool.interrupted.is_set():
            raise Stopped
        if work.pool.stopping.is_set():  # (an error elsewhere: no nested ones)
            return sub, outcome, []
        return sub, outcome, self._prepare(work, list_submodules(self.git, work.root, sub.folder))


def _call(task: Task) -> Result:
    """One item of the pass: a submodule's work, or a nested one's early fetch."""
    return task()

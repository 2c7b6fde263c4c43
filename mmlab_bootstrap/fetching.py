"""Fetch a superproject's submodules level by level, shallow, in parallel, resumably.

Each level's submodules are listed and their URLs checked (see `submodules`) before any of
them is fetched; nested ones are only known once their parent is checked out. Each submodule
is its own `git submodule update --depth 1 -- PATH`, so its progress and its failure are its
own. The checkouts about to start are written to the `checkouts` record first, so that one a
kill stopped half way is finished by the next run.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .checkouts import CheckoutRecord
from .errors import shown
from .git import Git
from .outcomes import CONFLICT, REFUSED, Outcome, failure, failure_kind
from .paths import is_inside
from .progress import Board
from .report import Reporter
from .settings import Settings
from .submodules import (
    CloneError,
    Submodule,
    SubmoduleEntry,
    expand,
    file_roots,
    has_commit,
    has_head,
    has_index,
    incomplete_submodules,
    is_toplevel,
    list_submodules,
    module_gitdir,
    needs_file_transport,
    recorded_commit,
    submodule_status,
)

DEEPER = ("--depth", "50")
ROUNDS = 3


@dataclass
class SubmoduleFetcher:
    """Brings every submodule of a superproject to its recorded commit."""

    settings: Settings
    git: Git
    report: Reporter
    jobs: int

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
            status = submodule_status(git, root)
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
        """One pass over the levels; returns the submodules whose fetch failed."""
        roots = file_roots(self.settings.repo, self.settings.mirror)
        failed: list[tuple[Submodule, Outcome]] = []
        repos = [root]
        with Board(self.report, live=self.git.progress) as board:
            self.git.warn = lambda text: board.say(lambda: self.report.warn(text))
            try:
                while repos:
                    subs = [sub for repo in repos for sub in list_submodules(self.git, root, repo)]
                    pending = [sub for sub in subs if not self._complete(sub)]
                    allow = needs_file_transport(self._urls(pending), roots)
                    for sub in pending:
                        self._refuse_files_in_the_way(sub, record)
                        self._forget_half_clone(root, sub)
                    pending = [sub for sub in pending if not self._resume(sub, record)]
                    record.start({s.path: s.recorded for s in pending if self._ours(s, record)})
                    failed += self._fetch(pending, allow, board)
                    done = [sub for sub in subs if self._complete(sub)]
                    record.finish(sub.path for sub in done)
                    repos = [sub.folder for sub in done]
            finally:
                self.git.warn = self.report.warn
        return failed

    def _urls(self, pending: list[Submodule]) -> list[tuple[str, str]]:
        """Every URL fetching `pending` may use: the configured one, and an existing clone's."""
        urls = [(sub.path, sub.fetched) for sub in pending]
        for sub in pending:
            if is_toplevel(self.git, sub.folder):
                origin = self.git.probe(["config", "--get", "remote.origin.url"], cwd=sub.folder)
                if origin.out.strip():
                    urls.append((sub.path, expand(self.git, sub.folder, origin.out.strip())))
        return urls

    def _complete(self, sub: Submodule) -> bool:
        """Checked out at its recorded commit."""
        if not is_toplevel(self.git, sub.folder):
            return False
        head = self.git.probe(["rev-parse", "-q", "--verify", "HEAD"], cwd=sub.folder)
        return head.out.strip() == sub.recorded and has_index(self.git, sub.folder)

    def _ours(self, sub: Submodule, record: CheckoutRecord) -> bool:
        """Whether nothing of the user's can be lost by forcing this submodule's checkout:
        it is absent, empty (but for git's link) or a clean checkout."""
        if sub.path in record.started or not sub.folder.is_dir():
            return True
        if all(entry.name == ".git" for entry in sub.folder.iterdir()):
            return True
        if not is_toplevel(self.git, sub.folder):
            return False
        status = self.git.probe(["status", "--porcelain"], cwd=sub.folder)
        return status.ok and not status.out.strip()

    def _refuse_files_in_the_way(self, sub: Submodule, record: CheckoutRecord) -> None:
        """git checks out a submodule that is not there yet with force, over whatever its
        folder holds: refuse when that could be the user's files."""
        if sub.folder.is_symlink():
            raise CloneError(
                f"submodule {sub.path} is a symbolic link (to {shown(os.readlink(sub.folder))});"
                " refusing to follow it",
                f"move the link away (mv '{sub.folder}' '{sub.folder}.link'), then: inv clone",
            )
        if sub.path in record.started or not sub.folder.is_dir():
            return
        others = [entry.name for entry in sub.folder.iterdir() if entry.name != ".git"]
        if others and not is_toplevel(self.git, sub.folder):
            raise CloneError(
                f"submodule {sub.path} is not checked out, but its folder holds"
                f" {len(others)} entries (e.g. {others[0]}) that its checkout would overwrite;"
                " left alone",
                f"files in the way are kept; move them out of {sub.folder}, then: inv clone",
            )

    def _resume(self, sub: Submodule, record: CheckoutRecord) -> bool:
        """Finish a checkout an interrupted run started: force it to the recorded commit.

        Only for submodules in the record (whose half state is the tool's own) that already
        hold the commit; returns whether the submodule is complete now.
        """
        if sub.path not in record.started or not is_toplevel(self.git, sub.folder):
            return False
        if not has_commit(self.git, sub.folder, sub.recorded):
            return False
        self.git.change(["checkout", "-f", "-q", "--detach", sub.recorded], cwd=sub.folder)
        self.report.warn(f"finished the checkout of {sub.path} that an interrupted run started")
        return self._complete(sub)

    def _fetch(
        self, pending: list[Submodule], allow_file: bool, board: Board
    ) -> list[tuple[Submodule, Outcome]]:
        """Run `git submodule update` for each, `jobs` at a time; return the failures."""
        if not pending:
            return []
        board.expect(len(pending))

        def one(sub: Submodule) -> Outcome:
            board.add(sub.path, sub.fetched)
            outcome = Outcome(1, "", "")
            try:
                where = str(sub.folder.relative_to(sub.parent))
                args = ["submodule", "update", "--depth", "1", "--progress", "--", where]
                outcome = self.git.network(
                    args,
                    cwd=sub.parent,
                    url=sub.fetched,
                    watch=board.watcher(sub.path),
                    allow_file=allow_file,
                )
            finally:
                board.finish(sub.path, outcome.ok)
            return outcome

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(one, sub) for sub in pending]
            try:
                outcomes = [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                self.git.interrupt()
                raise
        return [(sub, out) for sub, out in zip(pending, outcomes, strict=True) if not out.ok]

    def _repair(self, root: Path, entry: SubmoduleEntry) -> None:
        """Make one submodule complete: fetch deeper if its commit is missing, check it out."""
        git, folder = self.git, root / entry.path
        if not is_toplevel(git, folder):
            return  # not cloned yet: the next round clones it
        recorded = recorded_commit(git, folder)
        if recorded and not has_commit(git, folder, recorded):
            url = git.probe(["config", "--get", "remote.origin.url"], cwd=folder).out.strip()
            self.report.warn(
                f"{entry.path}: the server would not send commit {recorded[:12]} at depth 1;"
                " fetching more history for this submodule only"
            )
            for depth in (DEEPER, ("--unshallow",)):
                git.network(["fetch", *depth, "origin"], cwd=folder, url=url)
                if has_commit(git, folder, recorded):
                    break
        if entry.ready and not has_index(git, folder):
            # Cloned but never checked out (the run stopped in between): only git's own
            # files can be here, so checking HEAD out completes it.
            git.change(["checkout", "-q", "HEAD", "--", "."], cwd=folder)

    def _forget_half_clone(self, root: Path, sub: Submodule) -> None:
        """Remove a submodule clone that was killed before its first commit arrived.

        It holds no commit, and its folder holds nothing but the `.git` link, so nothing of
        the user's can be in it; the fetch that follows clones it again.
        """
        gitdir = module_gitdir(self.git, sub.folder)
        if gitdir is None or not gitdir.exists() or has_head(self.git, gitdir):
            return
        folder = sub.folder
        others = [p.name for p in folder.iterdir() if p.name != ".git"] if folder.is_dir() else []
        if others or not is_inside(gitdir, root / ".git" / "modules"):
            raise CloneError(
                f"submodule {sub.path} has no commit yet but holds files ({len(others)} entries)",
                f"look at {folder} and move your files away, then run: inv clone",
            )
        shutil.rmtree(gitdir)
        if (folder / ".git").is_file():
            (folder / ".git").unlink()
        self.report.warn(f"removed a half-cloned submodule left by an interrupted run: {sub.path}")

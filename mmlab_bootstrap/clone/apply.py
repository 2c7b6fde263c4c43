"""The clone applier: clone the superproject shallowly into a temporary folder, then move it
into place; then fetch its submodules (see `fetching`); complete what a re-run finds missing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mmlab_bootstrap.clone.checkouts import SUPERPROJECT, CheckoutRecord
from mmlab_bootstrap.clone.fetch.submodules import SubmoduleFetcher
from mmlab_bootstrap.clone.plan import ClonePlan
from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.git import (
    FULL_SHA,
    CloneError,
    Git,
    GitError,
    Outcome,
    expand,
    failure,
    git_message,
    mirrored,
)
from mmlab_bootstrap.gitcache import (
    GitCache,
    cache_for,
    clone_through_cache,
    describe,
    fetch_through_cache,
    repair_borrowing,
)
from mmlab_bootstrap.links import check_adopted, describe_adopted, linked_locations, update_adopted
from mmlab_bootstrap.output import Board, Reporter
from mmlab_bootstrap.run import Changes
from mmlab_bootstrap.settings import EXTENSION_REF, Settings


@dataclass
class Cloner:
    """The clone applier: carries out a clone plan, each change through `changes`."""

    settings: Settings
    git: Git
    report: Reporter
    changes: Changes
    jobs: int

    def apply(self, plan: ClonePlan) -> None:
        """Fresh clone, completion of what is missing, or `--update`; nothing else. (A plan
        with nothing to do never gets here: `steps.clone_step` says `up to date` itself.)"""
        root = plan.path
        repair_borrowing(self.cache, self.git, self.changes, plan.refills, plan.dissociations)
        if plan.fresh:
            self._fresh(plan)
            self._submodules(root, adopted=False)  # nothing is linked in a fresh clone
            return
        if plan.resume_update:
            self.changes.make(
                f"finish the update of {root} that an interrupted run started",
                lambda: self._resume_update(root),
            )
        if plan.update:
            if plan.incomplete:  # a run stopped part way (adopted.py): finish it first
                self._submodules(root)
            self._update(root)
            self._submodules(root)
        elif plan.resume_update:
            self._submodules(root)
        elif plan.incomplete:
            names = ", ".join(entry.path for entry in plan.incomplete)
            self.report.info(f"completing {len(plan.incomplete)} submodule(s): {names}")
            self._submodules(root)

    def _fresh(self, plan: ClonePlan) -> None:
        if os.path.lexists(plan.partial):

            def remove() -> None:
                shutil.rmtree(plan.partial)
                self.report.info(
                    f"removed a partial clone of {plan.path} left by an interrupted run"
                )

            self.changes.make(f"remove the partial clone {plan.partial}", remove)
        commands = [
            f"run: {shlex.join(self.git.command(args, cwd))}"
            for args, cwd, _ in self._clone_commands(plan.partial)
        ]
        if self.cache is not None:
            settings = self.settings
            commands = describe(self.cache, self.git, settings.repo, settings.ref, plan.partial)
        self.changes.make(
            [*commands, f"move {plan.partial} to {plan.path}"], lambda: self._clone(plan)
        )

    def _clone(self, plan: ClonePlan) -> None:
        settings = self.settings
        fetched = mirrored(settings.repo, settings.mirror)
        via = f" from {fetched}" if fetched != settings.repo else ""
        self.report.info(f"cloning {settings.repo}{via} (depth 1) …")
        try:
            with Board(self.report, live=self.git.progress) as board:
                board.expect(1)
                board.add(plan.path.name, fetched)
                self._clone_into(plan.partial, board.watcher(plan.path.name))
                board.finish(plan.path.name, True)
        except BaseException:
            shutil.rmtree(plan.partial, ignore_errors=True)
            raise
        os.rename(plan.partial, plan.path)
        self.report.done(f"cloned {settings.repo} into {plan.path} (depth 1)")

    def _clone_commands(self, folder: Path) -> list[tuple[list[str], Path | None, bool]]:
        """The git commands of a fresh clone into `folder`: (arguments, where, network?)."""
        repo, ref = self.settings.repo, self.settings.ref
        if re.fullmatch(FULL_SHA, ref):
            return [
                (["init", "-q", "--", str(folder)], None, False),
                (["remote", "add", "--", "origin", repo], folder, False),
                (["fetch", "--depth", "1", "--progress", "origin", ref], folder, True),
                (["checkout", "-q", "--detach", "FETCH_HEAD"], folder, False),
            ]
        branch = ["--branch", ref] if ref else []
        args = ["clone", "--depth", "1", "--no-recurse-submodules", *branch, "--progress"]
        return [([*args, "--", repo, str(folder)], None, True)]

    @functools.cached_property
    def cache(self) -> GitCache | None:
        """The shared git cache (MMLAB_GIT_CACHE), if there is one."""
        settings = self.settings
        return cache_for(settings.git_cache, self.git, share=settings.shares_objects)

    def _clone_into(self, folder: Path, watch: Callable[[str], None]) -> None:
        repo, ref, git = self.settings.repo, self.settings.ref, self.git
        if self.cache is not None:
            self._check_ref(
                clone_through_cache(self.cache, git, repo, ref, folder, watch), repo, ref
            )
            return
        for args, cwd, network in self._clone_commands(folder):
            if network:
                outcome = git.network(args, cwd=cwd, url=repo, watch=watch)
                self._check_ref(outcome, repo, ref)
            else:
                git.change(args, cwd=cwd)

    def _check_ref(self, outcome: Outcome, repo: str, ref: str) -> None:
        if outcome.ok:
            return
        if ref and re.search(
            r"not found in upstream|couldn't find remote ref|not our ref", outcome.err
        ):
            raise GitError(
                f"{EXTENSION_REF} {shown(ref)} does not exist on {shown(repo)}",
                f"list its branches and tags (git ls-remote --heads --tags {repo}),"
                " then: inv env --ref NAME",
            )
        raise failure(outcome, mirrored(repo, self.settings.mirror), "git clone")

    def _submodules(self, root: Path, *, adopted: bool = True) -> None:
        """Fetch and check out the submodules (after bringing adopted files in step)."""
        fetcher = SubmoduleFetcher(self.settings, self.git, self.report, self.jobs)

        def fetch() -> None:
            if adopted:
                update_adopted(self.settings, self.git, self.report)  # adopted.py
            fetcher.run(root)

        self.changes.make(fetcher.describe(root), fetch)

    def _update(self, root: Path) -> None:
        """Refuse an update that would lose local work (looking only), then make it."""
        git = self.git
        dirty = git.probe(["status", "--porcelain"], cwd=root).out.strip()
        if dirty:
            first = dirty.splitlines()[0]
            raise CloneError(
                f"{shown(str(root))} has local changes that --update would overwrite"
                f" ({first.strip()} …)",
                f"commit or stash them first (git -C '{root}' status), then: inv clone --update",
            )
        branch = git.probe(["symbolic-ref", "--short", "-q", "HEAD"], cwd=root).out.strip()
        ref = self.settings.ref or branch or "HEAD"
        if branch and ref == branch:
            tracking = f"refs/remotes/origin/{branch}"
            before = git.probe(["rev-parse", "-q", "--verify", tracking], cwd=root).out.strip()
            head = git.probe(["rev-parse", "HEAD"], cwd=root).out.strip()
            # HEAD at FETCH_HEAD: a run stopped between the reset and moving origin/<branch>
            fetch_head = git.probe(["rev-parse", "-q", "--verify", "FETCH_HEAD"], cwd=root).out
            if before and head not in (before, fetch_head.strip()):
                raise CloneError(
                    f"{shown(str(root))} branch {branch} has commits that are not on origin",
                    f"push or move them first (git -C '{root}' log {tracking}..HEAD),"
                    " then: inv clone --update",
                )
            # into FETCH_HEAD: origin/<branch> moves with the reset
            fetch = ["fetch", "--depth", "1", "--refmap=", "origin", f"refs/heads/{branch}"]
        else:
            fetch = ["fetch", "--depth", "1", "origin", ref]
        fetching = f"run: {shlex.join(git.command(fetch, root))}"
        if self.cache is not None:
            fetching = (
                f"fetch {ref} of {self.settings.repo} through the git cache {self.cache.root}"
            )
        would = [
            fetching,
            *describe_adopted(self.settings, git),
            f"update {root} to {ref}",
        ]
        self.changes.make(would, lambda: self._move(root, fetch, ref, branch))

    def _move(self, root: Path, fetch: list[str], ref: str, branch: str) -> None:
        """Fetch `ref`, check what it changes, then move the superproject to it."""
        git, repo = self.git, self.settings.repo
        self.report.info(f"fetching {ref} from {expand(git, root, 'origin')} …")
        if self.cache is not None:
            fetched = fetch_through_cache(self.cache, git, repo, ref, root)
        else:
            fetched = git.network(fetch, cwd=root, url=repo)
        self._check_ref(fetched, repo, ref)
        head = git.probe(["rev-parse", "-q", "--verify", "HEAD"], cwd=root).out.strip()
        target = git.probe(["rev-parse", "-q", "--verify", "FETCH_HEAD^{commit}"], cwd=root)
        if head and head == target.out.strip():
            self.report.unchanged(f"{root} is up to date with {ref} ({head[:12]})", always=True)
            return
        self._check_moving_submodules(root)
        check_adopted(self.settings, git, self.report, "FETCH_HEAD")  # adopted.py
        with self._noted_update(root, "FETCH_HEAD"):
            if branch and ref == branch:
                moved = git.change(["reset", "-q", "--keep", "FETCH_HEAD"], cwd=root)
                if moved.ok:
                    git.change(["update-ref", f"refs/remotes/origin/{branch}", "HEAD"], cwd=root)
            else:
                moved = git.change(["checkout", "-q", "--detach", "FETCH_HEAD"], cwd=root)
        if not moved.ok:
            raise CloneError(
                f"could not move {shown(str(root))} to {ref}: {git_message(moved.err)}",
                f"look at git -C '{root}' status, then run: inv clone --update",
            )
        head = git.probe(["rev-parse", "--short", "HEAD"], cwd=root).out.strip()
        self.report.done(f"updated {root} to {ref} ({head})")

    def _check_moving_submodules(self, root: Path) -> None:
        """Refuse, before anything moves, a linked submodule with local changes that FETCH_HEAD
        records at another commit: `ignore = dirty` in .gitmodules hides them from the check
        of the superproject, and git would refuse that checkout only after the superproject,
        the adopted files in storage and the submodule's index had moved (upstream's changes
        then sit staged in the submodule, ready for the user's next commit or stash)."""
        git = self.git
        linked = {location.project for location in linked_locations(self.settings)}
        if not linked:
            return
        moved = git.probe(["diff", "--raw", "--no-renames", "HEAD", "FETCH_HEAD"], cwd=root)
        for line in moved.out.splitlines():
            fields, _, path = line.partition("\t")
            if not fields.startswith(":160000 160000 ") or path not in linked:
                continue
            changes = git.probe(["status", "--porcelain", "--untracked-files=no"], cwd=root / path)
            if changes.out.strip():
                first = changes.out.splitlines()[0].strip()
                raise CloneError(
                    f"submodule {shown(path)} has local changes ({first} …) and upstream moves it"
                    " to another commit; nothing changed",
                    f"commit or stash them first (git -C '{root / path}' status), then:"
                    " inv clone --update",
                )

    @contextlib.contextmanager
    def _noted_update(self, root: Path, target: str) -> Iterator[None]:
        """Note the superproject's own checkout (clean, checked above) in the checkout record
        while it runs, so that a kill in the middle is finished by the next run."""
        record = CheckoutRecord(root)
        commit = self.git.probe(["rev-parse", "-q", "--verify", target], cwd=root).out.strip()
        branch = self.git.probe(["symbolic-ref", "-q", "HEAD"], cwd=root).out.strip()
        record.start({SUPERPROJECT: f"{commit} {branch}".strip()})
        yield
        record.finish([SUPERPROJECT])

    def _resume_update(self, root: Path) -> None:
        """Finish an update of the superproject that a kill stopped part way."""
        record = CheckoutRecord(root)
        commit, _, branch = record.started[SUPERPROJECT].partition(" ")
        if branch:  # the branch had no commits of its own and the worktree was clean
            self.git.change(["symbolic-ref", "HEAD", branch], cwd=root)
            self.git.change(["reset", "-q", "--hard", commit], cwd=root)
        else:
            self.git.change(["checkout", "-f", "-q", "--detach", commit], cwd=root)
        record.finish([SUPERPROJECT])
        self.report.warn(f"finished the update of {root} that an interrupted run started")

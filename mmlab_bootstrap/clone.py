"""Clone the superproject shallowly into a temporary folder, then move it into place;
then fetch its submodules (see `fetching`); complete what a re-run finds missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .adopted import check_adopted, linked_locations, update_adopted
from .checkouts import SUPERPROJECT, CheckoutRecord
from .errors import shown
from .fetching import SubmoduleFetcher
from .fsutil import creatable_problem, typo_problem
from .git import GITHUB, Git, GitError, Outcome, failure, git_message
from .progress import Board
from .report import Reporter
from .settings import Settings, fix_hint
from .submodules import (
    CloneError,
    SubmoduleEntry,
    expand,
    has_index,
    incomplete_submodules,
    is_toplevel,
    submodule_status,
)
from .variables import BY_NAME, EXTENSION_PATH, EXTENSION_REF

__all__ = [
    "Cloner",
    "has_index",
    "is_toplevel",
    "plan_clone",
    "same_repository",
    "submodule_status",
]

PARTIAL_SUFFIX = ".mmlab-bootstrap-partial"
_FULL_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class ClonePlan:
    """What `clone` found at the extension path and what it will do about it."""

    path: Path
    fresh: bool
    partial: Path
    incomplete: tuple[SubmoduleEntry, ...]


def partial_path(path: Path) -> Path:
    """The temporary folder beside the extension path that a fresh clone is made in."""
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


def same_repository(origin: str, settings: Settings) -> bool:
    """Whether a clone's origin is MMLAB_EXTENSION_REPO (directly or through the mirror)."""
    wanted = {settings.repo}
    if settings.mirror and settings.repo.startswith(GITHUB):
        wanted.add(mirrored(settings.repo, settings.mirror))
    return _normal(origin) in {_normal(url) for url in wanted}


def mirrored(url: str, mirror: str) -> str:
    """The URL git fetches for `url` when the mirror rewrites `https://github.com/`."""
    return mirror + url[len(GITHUB) :] if mirror and url.startswith(GITHUB) else url


def _normal(url: str) -> str:
    return url.strip().rstrip("/").removesuffix(".git").rstrip("/")


def plan_clone(settings: Settings, git: Git) -> ClonePlan:
    """Look at the extension path and decide: fresh clone, complete, or refuse."""
    path = settings.extension_path
    partial = partial_path(path)
    if not os.path.lexists(path) or (_is_empty_folder(path)):
        problem = typo_problem(path) or creatable_problem(path)
        if problem:
            raise CloneError(
                f"cannot clone into {shown(str(path))}: {problem}",
                fix_hint(
                    BY_NAME[EXTENSION_PATH], settings.values[EXTENSION_PATH].source, "/path/you/own"
                ),
            )
        return ClonePlan(path, True, partial, ())
    if not path.is_dir():
        raise CloneError(
            f"{EXTENSION_PATH} {shown(str(path))} exists and is not a folder",
            f"move it away (mv '{path}' '{path}.old'),"
            " or choose another path: inv env --extension-path …",
        )
    if not is_toplevel(git, path):
        count = sum(1 for _ in path.iterdir())
        raise CloneError(
            f"{shown(str(path))} exists and is not a git repository ({count} entries); left alone",
            "move it away, or point MMLAB_EXTENSION_PATH elsewhere: inv env --extension-path …",
        )
    origin = git.probe(["config", "--get", "remote.origin.url"], cwd=path).out.strip()
    if not same_repository(origin, settings):
        raise CloneError(
            f"{shown(str(path))} is a clone of {shown(origin or '(no origin)')},"
            f" not of {shown(settings.repo)}; left alone",
            "point MMLAB_EXTENSION_PATH elsewhere (inv env --extension-path …)"
            " or MMLAB_EXTENSION_REPO at that repository",
        )
    incomplete = incomplete_submodules(git, path, submodule_status(git, path))
    return ClonePlan(path, False, partial, tuple(incomplete))


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


@dataclass
class Cloner:
    """Carries out a clone plan."""

    settings: Settings
    git: Git
    report: Reporter
    jobs: int

    def apply(self, plan: ClonePlan, *, update: bool) -> None:
        """Fresh clone, completion of what is missing, or `--update`; nothing else."""
        if plan.fresh:
            self._fresh(plan)
            self._submodules(plan.path)
            return
        resumed = self._resume_update(plan.path)
        if update:
            if plan.incomplete:  # a run stopped part way (adopted.py): finish it first
                update_adopted(self.settings, self.git, self.report)
                self._submodules(plan.path)
            self._update(plan.path)
            update_adopted(self.settings, self.git, self.report)  # adopted.py
            self._submodules(plan.path)
            return
        if resumed:
            update_adopted(self.settings, self.git, self.report)  # adopted.py
            self._submodules(plan.path)
            return
        if not plan.incomplete:
            self.report.unchanged(f"up to date: {plan.path}")
            return
        names = ", ".join(entry.path for entry in plan.incomplete)
        self.report.info(f"completing {len(plan.incomplete)} submodule(s): {names}")
        update_adopted(self.settings, self.git, self.report)  # adopted.py
        self._submodules(plan.path)

    def _fresh(self, plan: ClonePlan) -> None:
        settings, git = self.settings, self.git
        if os.path.lexists(plan.partial):
            if git.dry:
                self.report.would(f"remove the partial clone {plan.partial}")
            else:
                shutil.rmtree(plan.partial)
                self.report.info(
                    f"removed a partial clone of {plan.path} left by an interrupted run"
                )
        fetched = mirrored(settings.repo, settings.mirror)
        if not git.dry:
            via = f" from {fetched}" if fetched != settings.repo else ""
            self.report.info(f"cloning {settings.repo}{via} (depth 1) …")
        try:
            with Board(self.report, live=git.progress) as board:
                board.expect(1)
                board.add(plan.path.name, fetched)
                self._clone_into(plan.partial, board.watcher(plan.path.name))
                board.finish(plan.path.name, not git.dry)  # (under --dry, nothing came)
        except BaseException:
            if not git.dry:
                shutil.rmtree(plan.partial, ignore_errors=True)
            raise
        if git.dry:
            self.report.would(f"move {plan.partial} to {plan.path}")
            return
        os.rename(plan.partial, plan.path)
        self.report.done(f"cloned {settings.repo} into {plan.path} (depth 1)")

    def _clone_into(self, folder: Path, watch: Callable[[str], None]) -> None:
        repo, ref, git = self.settings.repo, self.settings.ref, self.git
        if _FULL_SHA.fullmatch(ref):
            git.change(["init", "-q", "--", str(folder)])
            git.change(["remote", "add", "--", "origin", repo], cwd=folder)
            fetched = git.network(
                ["fetch", "--depth", "1", "--progress", "origin", ref],
                cwd=folder,
                url=repo,
                watch=watch,
            )
            self._check_ref(fetched, repo, ref)
            git.change(["checkout", "-q", "--detach", "FETCH_HEAD"], cwd=folder)
            return
        branch = ["--branch", ref] if ref else []
        args = ["clone", "--depth", "1", "--no-recurse-submodules", *branch, "--progress"]
        cloned = git.network([*args, "--", repo, str(folder)], url=repo, watch=watch)
        self._check_ref(cloned, repo, ref)

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

    def _submodules(self, root: Path) -> None:
        fetcher = SubmoduleFetcher(self.settings, self.git, self.report, self.jobs)
        fetcher.run(root)

    def _update(self, root: Path) -> None:
        git, repo = self.git, self.settings.repo
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
        if not git.dry:
            self.report.info(f"fetching {ref} from {expand(git, root, 'origin')} …")
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
            fetched = git.network(  # into FETCH_HEAD: origin/<branch> moves with the reset
                ["fetch", "--depth", "1", "--refmap=", "origin", f"refs/heads/{branch}"],
                cwd=root,
                url=repo,
            )
            self._check_ref(fetched, repo, ref)
            self._check_moving_submodules(root)
            check_adopted(self.settings, git, self.report, "FETCH_HEAD")  # adopted.py
            with self._noted_update(root, "FETCH_HEAD"):
                moved = git.change(["reset", "-q", "--keep", "FETCH_HEAD"], cwd=root)
            if moved.ok:
                git.change(["update-ref", tracking, "HEAD"], cwd=root)
        else:
            fetched = git.network(["fetch", "--depth", "1", "origin", ref], cwd=root, url=repo)
            self._check_ref(fetched, repo, ref)
            self._check_moving_submodules(root)
            check_adopted(self.settings, git, self.report, "FETCH_HEAD")  # adopted.py
            with self._noted_update(root, "FETCH_HEAD"):
                moved = git.change(["checkout", "-q", "--detach", "FETCH_HEAD"], cwd=root)
        if not moved.ok:
            raise CloneError(
                f"could not move {shown(str(root))} to {ref}: {git_message(moved.err)}",
                f"look at git -C '{root}' status, then run: inv clone --update",
            )
        if git.dry:
            self.report.would(f"update {root} to {ref}")
            return
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
        if git.dry or not linked:  # under --dry nothing was fetched
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
        record = CheckoutRecord(root, dry=self.git.dry)
        commit = self.git.probe(["rev-parse", "-q", "--verify", target], cwd=root).out.strip()
        branch = self.git.probe(["symbolic-ref", "-q", "HEAD"], cwd=root).out.strip()
        record.start({SUPERPROJECT: f"{commit} {branch}".strip()})
        yield
        record.finish([SUPERPROJECT])

    def _resume_update(self, root: Path) -> bool:
        """Finish an update of the superproject that a kill stopped part way."""
        record = CheckoutRecord(root, dry=self.git.dry)
        if SUPERPROJECT not in record.started:
            return False
        commit, _, branch = record.started[SUPERPROJECT].partition(" ")
        if branch:  # the branch had no commits of its own and the worktree was clean
            self.git.change(["symbolic-ref", "HEAD", branch], cwd=root)
            self.git.change(["reset", "-q", "--hard", commit], cwd=root)
        else:
            self.git.change(["checkout", "-f", "-q", "--detach", commit], cwd=root)
        record.finish([SUPERPROJECT])
        self.report.warn(f"finished the update of {root} that an interrupted run started")
        return True

"""Clone the superproject shallowly into a temporary folder, then move it into place;
initialise submodules recursively, shallow and in parallel; complete what a re-run finds missing.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .adopted import check_adopted, update_adopted
from .errors import BootstrapError, shown
from .fsutil import creatable_problem, is_inside, typo_problem
from .git import GITHUB, Git, GitError, Outcome, git_message, network_error
from .report import Reporter
from .settings import Settings, fix_hint
from .variables import BY_NAME, EXTENSION_PATH, EXTENSION_REF

PARTIAL_SUFFIX = ".mmlab-bootstrap-partial"
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
DEEPER = ("--depth", "50")


class CloneError(BootstrapError):
    """The superproject cannot be cloned or completed as asked."""


@dataclass(frozen=True)
class SubmoduleEntry:
    """One line of `git submodule status --recursive`."""

    flag: str
    sha: str
    path: str

    @property
    def ready(self) -> bool:
        return self.flag == " "


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
        wanted.add(settings.mirror + settings.repo[len(GITHUB) :])
    return _normal(origin) in {_normal(url) for url in wanted}


def _normal(url: str) -> str:
    return url.strip().rstrip("/").removesuffix(".git").rstrip("/")


def submodule_status(git: Git, root: Path) -> tuple[SubmoduleEntry, ...]:
    """Every submodule, recursively, with its state."""
    outcome = git.probe(["submodule", "status", "--recursive"], cwd=root)
    if not outcome.ok:
        return walk_submodules(git, root)
    entries = []
    for line in outcome.out.splitlines():
        if len(line) < 43:
            continue
        rest = re.sub(r" \([^()]*\)$", "", line[42:])
        entries.append(SubmoduleEntry(line[0], line[1:41], rest))
    return tuple(entries)


def walk_submodules(git: Git, root: Path) -> tuple[SubmoduleEntry, ...]:
    """Submodule states found level by level, for when a broken one stops git's own listing."""
    entries: list[SubmoduleEntry] = []

    def visit(repo: Path, prefix: str) -> None:
        listing = git.probe(["ls-files", "--stage", "-z"], cwd=repo)
        for record in listing.out.split("\0"):
            meta, _, path = record.partition("\t")
            if not meta.startswith("160000 "):
                continue
            recorded = meta.split()[1]
            folder = repo / path
            flag = "-"
            if is_toplevel(git, folder):
                head = git.probe(["rev-parse", "-q", "--verify", "HEAD"], cwd=folder).out.strip()
                flag = " " if head == recorded else "+"
                visit(folder, f"{prefix}{path}/")
            entries.append(SubmoduleEntry(flag, recorded, f"{prefix}{path}"))

    visit(root, "")
    return tuple(entries)


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
        if update:
            if plan.incomplete:  # a run stopped part way (adopted.py): finish it first
                update_adopted(self.settings, self.git, self.report)
                self._submodules(plan.path)
            self._update(plan.path)
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
                    f"removed the partial clone left by an interrupted run: {plan.partial}"
                )
        if not git.dry:
            self.report.info(f"cloning {settings.repo} (depth 1) …")
        try:
            self._clone_into(plan.partial)
        except BaseException:
            if not git.dry:
                shutil.rmtree(plan.partial, ignore_errors=True)
            raise
        if git.dry:
            self.report.would(f"move {plan.partial} to {plan.path}")
            return
        os.rename(plan.partial, plan.path)
        self.report.done(f"cloned {settings.repo} into {plan.path} (depth 1)")

    def _clone_into(self, folder: Path) -> None:
        repo, ref, git = self.settings.repo, self.settings.ref, self.git
        if _FULL_SHA.fullmatch(ref):
            git.change(["init", "-q", "--", str(folder)])
            git.change(["remote", "add", "--", "origin", repo], cwd=folder)
            fetched = git.network(
                ["fetch", "--depth", "1", *self._progress(), "origin", ref], cwd=folder, url=repo
            )
            self._check_ref(fetched, repo, ref)
            git.change(["checkout", "-q", "--detach", "FETCH_HEAD"], cwd=folder)
            return
        branch = ["--branch", ref] if ref else []
        args = ["clone", "--depth", "1", "--no-recurse-submodules", *branch, *self._progress()]
        cloned = git.network([*args, "--", repo, str(folder)], url=repo)
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
        raise network_error(outcome, repo, "git clone")

    def _progress(self) -> list[str]:
        return ["--progress"] if self.git.progress else []

    def _submodules(self, root: Path) -> None:
        git, repo = self.git, self.settings.repo
        args = ["submodule", "update", "--init", "--recursive", "--depth", "1"]
        args += ["--jobs", str(self.jobs), *self._progress()]
        git.stale_locks_under = root / ".git"
        outcome = git.network(args, cwd=root, url=repo)
        if git.dry:
            return
        for _ in range(3):
            status = submodule_status(git, root)
            missing = incomplete_submodules(git, root, status)
            if not missing:
                self.report.done(f"submodules ready: {len(status)}")
                return
            for entry in missing:
                self._repair(root, entry)
            outcome = git.network(args, cwd=root, url=repo)
        raise GitError(
            f"submodules not complete ({', '.join(e.path for e in missing)}):"
            f" {git_message(outcome.err)}",
            "check the network (or set a mirror: inv env --mirror URL), then run: inv clone",
        )

    def _repair(self, root: Path, entry: SubmoduleEntry) -> None:
        """Make one submodule complete: fetch deeper if its commit is missing, check it out."""
        git, folder = self.git, root / entry.path
        gitdir = module_gitdir(git, folder)
        if gitdir is not None and gitdir.exists() and not has_head(git, gitdir):
            self._forget_half_clone(root, entry, folder, gitdir)
            return
        if not is_toplevel(git, folder):
            return  # not cloned yet: the next `submodule update` clones it
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

    def _forget_half_clone(
        self, root: Path, entry: SubmoduleEntry, folder: Path, gitdir: Path
    ) -> None:
        """Remove a submodule clone that was killed before its first commit arrived.

        It holds no commit, and its folder holds nothing but the `.git` link, so nothing of
        the user's can be in it; the next `submodule update` clones it again.
        """
        others = [p.name for p in folder.iterdir() if p.name != ".git"] if folder.is_dir() else []
        if others or not is_inside(gitdir, root / ".git" / "modules"):
            raise CloneError(
                f"submodule {entry.path} has no commit yet but holds files ({len(others)} entries)",
                f"look at {folder} and move your files away, then run: inv clone",
            )
        if self.git.dry:
            self.report.would(f"remove the half-cloned submodule {entry.path} ({gitdir})")
            return
        shutil.rmtree(gitdir)
        if (folder / ".git").is_file():
            (folder / ".git").unlink()
        self.report.warn(
            f"removed a half-cloned submodule left by an interrupted run: {entry.path}"
        )

    def _update(self, root: Path) -> None:
        git, repo = self.git, self.settings.repo
        git.stale_locks_under = root / ".git"  # a killed run's index.lock must not stop the reset
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
            fetched = git.network(  # into FETCH_HEAD: origin/<branch> moves with the reset
                ["fetch", "--depth", "1", "--refmap=", "origin", f"refs/heads/{branch}"],
                cwd=root,
                url=repo,
            )
            self._check_ref(fetched, repo, ref)
            check_adopted(self.settings, git, self.report, "FETCH_HEAD")  # adopted.py
            moved = git.change(["reset", "-q", "--keep", "FETCH_HEAD"], cwd=root)
            if moved.ok:
                git.change(["update-ref", tracking, "HEAD"], cwd=root)
        else:
            fetched = git.network(["fetch", "--depth", "1", "origin", ref], cwd=root, url=repo)
            self._check_ref(fetched, repo, ref)
            check_adopted(self.settings, git, self.report, "FETCH_HEAD")  # adopted.py
            moved = git.change(["checkout", "-q", "--detach", "FETCH_HEAD"], cwd=root)
        if not moved.ok:
            raise CloneError(
                f"could not move {shown(str(root))} to {ref}: {git_message(moved.err)}",
                f"look at git -C '{root}' status, then run: inv clone --update",
            )
        head = git.probe(["rev-parse", "--short", "HEAD"], cwd=root).out.strip()
        self.report.done(f"updated {root} to {ref} ({head or 'dry run'})")


def is_toplevel(git: Git, folder: Path) -> bool:
    """Whether `folder` is the top of its own git repository."""
    if not folder.is_dir():
        return False
    top = git.probe(["rev-parse", "--show-toplevel"], cwd=folder)
    return top.ok and os.path.realpath(top.out.strip()) == os.path.realpath(folder)


def has_index(git: Git, folder: Path) -> bool:
    """A clone that was never checked out has no index file."""
    index = git.probe(["rev-parse", "--path-format=absolute", "--git-path", "index"], cwd=folder)
    return index.ok and os.path.exists(index.out.strip())


def has_commit(git: Git, folder: Path, commit: str) -> bool:
    """Whether the repository at `folder` holds `commit`."""
    return git.probe(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=folder).ok


def recorded_commit(git: Git, folder: Path) -> str:
    """The commit a submodule's parent repository records for it."""
    parent = git.probe(["rev-parse", "--show-toplevel"], cwd=folder.parent).out.strip()
    if not parent:
        return ""
    relative = os.path.relpath(folder, parent)
    return git.probe(["rev-parse", f":{relative}"], cwd=Path(parent)).out.strip()


def incomplete_submodules(
    git: Git, root: Path, status: tuple[SubmoduleEntry, ...]
) -> list[SubmoduleEntry]:
    """Submodules that are uninitialised, at another commit, or never checked out."""
    return [e for e in status if not e.ready or not has_index(git, root / e.path)]


def has_head(git: Git, gitdir: Path) -> bool:
    """Whether a repository (given by its git folder) has a commit checked out."""
    return git.probe(["--git-dir", str(gitdir), "rev-parse", "--verify", "-q", "HEAD"]).ok


def module_gitdir(git: Git, folder: Path) -> Path | None:
    """Where git keeps the repository of the submodule at `folder` (its parent's modules/)."""
    parent = git.probe(["rev-parse", "--show-toplevel"], cwd=folder.parent).out.strip()
    if not parent:
        return None
    relative = os.path.relpath(folder, parent)
    paths = git.probe(
        ["config", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$"], cwd=Path(parent)
    )
    for line in paths.out.splitlines():
        key, _, path = line.partition(" ")
        if path == relative:
            name = key[len("submodule.") : -len(".path")]
            where = git.probe(
                ["rev-parse", "--path-format=absolute", "--git-path", f"modules/{name}"],
                cwd=Path(parent),
            )
            return Path(where.out.strip()) if where.ok else None
    return None

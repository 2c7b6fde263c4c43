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
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from .checkouts import CheckoutRecord
from .errors import BootstrapError, shown
from .git import Git
from .outcomes import (
    CONFLICT,
    NETWORK,
    REFUSED,
    Outcome,
    failure,
    failure_kind,
    git_message,
)
from .paths import is_inside
from .progress import Board
from .report import Reporter
from .settings import Settings
from .submodules import (
    CloneError,
    Submodule,
    SubmoduleEntry,
    expand,
    file_path,
    file_roots,
    has_commit,
    has_head,
    has_index,
    incomplete_submodules,
    is_toplevel,
    list_submodules,
    modules_folder,
    needs_file_transport,
    plain_name,
    recorded_commit,
    walk_submodules,
)

DEEPER = ("--depth", "50")
# One commit, as a clone gets it: no tags, its pack kept whole (not unpacked into loose
# objects), no FETCH_HEAD, no maintenance run afterwards.
BY_COMMIT = (
    "--depth",
    "1",
    "--no-tags",
    "--keep",
    "--no-write-fetch-head",
    "--no-auto-maintenance",
)
ROUNDS = 3
_DEFAULT_BRANCH = re.compile(r"^ref: refs/heads/(?P<branch>[A-Za-z0-9._/-]+)\tHEAD$", re.MULTILINE)
_NESTED_KEYS = r"^submodule\..*\.(path|url|update)$"
# What git (or its remote) says when it will not send a repository at all: no point in trying
# git's own way after the fetch by commit id failed so.
_NO_REPOSITORY = re.compile(
    r"does not appear to be a git repository|Repository not found", re.IGNORECASE
)


_Result = tuple[Submodule, Outcome, list[tuple[Submodule, bool]]]


class _Stopped(Exception):
    """The pass is being stopped (an interruption or an error elsewhere): start nothing new."""


@dataclass
class _Pass:
    """What one pass over the submodules shares between its worker threads."""

    root: Path
    record: CheckoutRecord
    roots: list[Path]
    board: Board
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)  # interrupted: stop now
    closing: threading.Event = field(default_factory=threading.Event)  # an error: start no more
    modules: dict[Path, Path | None] = field(default_factory=dict)
    ready: int = 0  # submodules seen at their recorded commit, checked out
    unfinished: int = 0  # submodules that are not (their fetch failed, or so far)
    early: dict[Path, _Early] = field(default_factory=dict)  # by the submodule's folder
    pool: ThreadPoolExecutor | None = None
    spawned: list[Future[_Result]] = field(default_factory=list)  # for `_drive` to collect


@dataclass
class _Early:
    """A nested submodule whose commit is fetched while its parent is being checked out:
    its repository made in `gitdir`, linked to its folder once that is there (`_adopt_early`),
    `origin` at `url`."""

    gitdir: Path
    url: str
    recorded: str
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


@dataclass
class SubmoduleFetcher:
    """Brings every submodule of a superproject to its recorded commit."""

    settings: Settings
    git: Git
    report: Reporter
    jobs: int
    _pass: _Pass | None = field(default=None, init=False, repr=False)  # the last pass

    def describe(self, root: Path) -> str:
        """What `run` will do, as --dry shows it."""
        fetch = self.git.command(["fetch", *BY_COMMIT, "origin"], root / "<each submodule>")
        update = self.git.command(["submodule", "update", "--init", "--depth", "1", "--"], root)
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
        `jobs` at a time; returns the submodules whose fetch failed."""
        failed: list[tuple[Submodule, Outcome]] = []
        roots = file_roots(self.settings.repo, self.settings.mirror)
        with Board(self.report, live=self.git.progress) as board:
            self.git.warn = lambda text: board.say(lambda: self.report.warn(text))
            work = self._pass = _Pass(root, record, roots, board)
            try:
                first = self._prepare(work, list_submodules(self.git, root, root))
                with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
                    work.pool = pool
                    self._drive(pool, work, first, failed)
            finally:
                self.git.warn = self.report.warn
        return failed

    def _drive(
        self,
        pool: ThreadPoolExecutor,
        work: _Pass,
        first: list[tuple[Submodule, bool]],
        failed: list[tuple[Submodule, Outcome]],
    ) -> None:
        """Run the submodules' work in `pool`, adding each one's submodules when it is done;
        after an error, start nothing new, let what runs finish, then raise it."""
        running: set[Future[_Result]] = set()
        error: Exception | None = None

        def submit(batch: list[tuple[Submodule, bool]]) -> None:
            for sub, allow in batch:
                running.add(pool.submit(self._work, work, sub, allow))

        try:
            submit(first)
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                with work.lock:  # what the workers started themselves (`_start_nested`)
                    running.update(work.spawned)
                    work.spawned.clear()
                for future in done:
                    running.discard(future)
                    try:
                        sub, outcome, batch = future.result()
                    except _Stopped:
                        continue
                    except Exception as problem:  # a refusal while listing nested ones
                        error = error or problem
                        work.closing.set()
                        continue
                    if not outcome.ok:
                        failed.append((sub, outcome))
                    if error is None:
                        submit(batch)
        except BaseException:
            work.stop.set()
            with work.lock:
                running.update(work.spawned)
            for future in running:
                future.cancel()
            self.git.interrupt()
            raise
        if error is not None:
            raise error

    def _prepare(self, work: _Pass, subs: list[Submodule]) -> list[tuple[Submodule, bool]]:
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

    def _work(
        self, work: _Pass, sub: Submodule, allow_file: bool
    ) -> tuple[Submodule, Outcome, list[tuple[Submodule, bool]]]:
        """Bring one submodule to its recorded commit (unless it is there), then prepare its
        own submodules; returns them, to be started next."""
        if work.stop.is_set():
            raise _Stopped
        outcome = Outcome(0, "", "")
        if not self._complete(sub):
            early = work.early.get(sub.folder)
            if early is not None:
                _wait_for(work, early)
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
        if work.stop.is_set():
            raise _Stopped
        if work.closing.is_set():
            return sub, outcome, []
        return sub, outcome, self._prepare(work, list_submodules(self.git, work.root, sub.folder))

    def _fetch_one(self, work: _Pass, sub: Submodule, allow_file: bool) -> Outcome:
        """Fetch only the recorded commit and check it out; git's own way where a server will
        not send a commit by its id, or where git's rules call for it."""
        gitdir = self._module_dir(work, sub)
        early = work.early.get(sub.folder)
        if early is not None and gitdir is not None:
            _wait_for(work, early)
            if early.ok and self._adopt_early(sub, gitdir, early):
                return self._check_out(work, sub, True)
            self._remove_new_repository(work, sub, early.gitdir)
        fresh = gitdir is not None and not os.path.lexists(gitdir)
        if gitdir is None or sub.update or (fresh and os.path.lexists(sub.folder / ".git")):
            return self._as_git_does(work, sub, allow_file)
        if not fresh and not (_has_git(sub.folder) and is_toplevel(self.git, sub.folder)):
            return self._as_git_does(work, sub, allow_file)  # e.g. after `submodule deinit`
        if fresh and not self._make_repository(sub, gitdir):
            self._remove_new_repository(work, sub, gitdir)
            return self._as_git_does(work, sub, allow_file)
        if work.stop.is_set():
            raise _Stopped
        fetched = Outcome(0, "", "")
        if fresh or not has_commit(self.git, sub.folder, sub.recorded):
            watch = work.board.watcher(sub.path)
            if fresh:
                fetched = self._fetch_commit(
                    [], sub.folder, sub.recorded, sub.fetched, watch, allow_file
                )
            else:
                fetched = self.git.network(
                    ["fetch", *BY_COMMIT, "--progress", "origin", sub.recorded],
                    cwd=sub.folder,
                    url=sub.fetched,
                    watch=watch,
                    allow_file=allow_file,
                )
        if not fetched.ok:
            if fresh:  # as a failed `git clone` leaves nothing, nor does this
                self._remove_new_repository(work, sub, gitdir)
            kind = failure_kind(fetched.err)
            if kind in (NETWORK, REFUSED) or _NO_REPOSITORY.search(fetched.err):
                return fetched
            self.git.warn(
                f"{sub.path}: the server would not send commit {sub.recorded[:12]} by itself"
                f" ({git_message(fetched.err)}); fetching it as git submodule update does"
            )
            return self._as_git_does(work, sub, allow_file)
        if work.stop.is_set():
            raise _Stopped
        return self._check_out(work, sub, fresh)

    def _fetch_commit(
        self,
        at: list[str],
        cwd: Path | None,
        commit: str,
        url: str,
        watch: Callable[[str], None],
        allow_file: bool,
    ) -> Outcome:
        """Fetch `commit` into a new repository; meanwhile ask the remote for its default
        branch, and make that the one `origin` fetches, as a shallow clone has it (else all
        branches would come, with their whole history, at the next `git fetch`)."""
        asked: list[Outcome] = []
        question = [*at, "ls-remote", "--symref", "origin", "HEAD"]
        # (read-only; a failure leaves git's default for a new remote: every branch)
        asking = threading.Thread(target=lambda: asked.append(self.git.probe(question, cwd)))
        asking.start()
        try:
            fetched = self.git.network(
                [*at, "fetch", *BY_COMMIT, "--progress", "origin", commit],
                cwd=cwd,
                url=url,
                watch=watch,
                allow_file=allow_file,
            )
        finally:
            asking.join()
        found = _DEFAULT_BRANCH.search(asked[0].out) if asked and asked[0].ok else None
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

    def _start_nested(self, work: _Pass, sub: Submodule) -> None:
        """While `sub` (a new clone, HEAD at its recorded commit) is being checked out, start
        fetching the commits its own submodules record, read from that commit. Only when
        every one of them is named plainly, has a URL (absolute, or relative to a `scheme://`
        URL of `sub`) and no update mode, and every URL passes the check `_prepare` makes
        (so that a refusal still finds none of them fetched). Otherwise, or for what goes
        wrong here, the usual way follows once `sub` is checked out (`_prepare` checks them
        all again then)."""
        if work.pool is None or work.closing.is_set() or work.stop.is_set():
            return
        git, commit = self.git, sub.recorded
        listed = git.probe(
            ["config", "--blob", f"{commit}:.gitmodules", "-z", "--get-regexp", _NESTED_KEYS],
            cwd=sub.folder,
        )
        if not listed.ok:
            return  # no .gitmodules: no submodules
        found: dict[str, dict[str, str]] = {}
        for item in filter(None, listed.out.split("\0")):
            key, _, value = item.partition("\n")
            name, _, kind = key[len("submodule.") :].rpartition(".")
            found.setdefault(name, {})[kind] = value
        paths = {entry["path"]: name for name, entry in found.items() if "path" in entry}
        tree = git.probe(["ls-tree", "-r", "-z", commit], cwd=sub.folder)
        modules = work.modules.get(sub.folder) or modules_folder(git, sub.folder)
        if not tree.ok or modules is None:
            return
        work.modules[sub.folder] = modules
        early: list[tuple[str, str, str, str]] = []  # path, name, recorded, url
        for record in filter(None, tree.out.split("\0")):
            meta, _, path = record.partition("\t")
            if not meta.startswith("160000 "):
                continue
            name = paths.get(path, "")
            entry = found.get(name, {})
            url = entry.get("url", "")
            if "update" in entry or not plain_name(name) or path.startswith("-"):
                return
            if url.startswith(("./", "../")):
                url = _beside(sub.url, url)  # as `git submodule init` will resolve it
            local = file_path(url) is not None and not url.startswith("file://")
            if not url or url.startswith("-") or local:
                return  # (a local path, not a URL: left to the usual way)
            early.append((path, name, meta.split()[2], url))
        fetched = {path: expand(git, sub.folder, url) for path, _, _, url in early}
        try:
            needs_file_transport(list(fetched.items()), work.roots)
        except CloneError:
            return  # refused, by name, once `sub` is checked out
        for path, name, recorded, url in early:
            folder, gitdir = sub.folder / path, modules / name
            label = os.path.relpath(folder, work.root)
            if folder in work.early or os.path.lexists(gitdir):
                continue
            allow = needs_file_transport([(label, fetched[path])], work.roots)
            nested = _Early(gitdir, url, recorded)
            with work.lock:
                work.early[folder] = nested
                work.board.expect(1)
                future = work.pool.submit(
                    self._fetch_early, work, sub, nested, label, fetched[path], allow
                )
                work.spawned.append(future)

    def _fetch_early(
        self, work: _Pass, parent: Submodule, early: _Early, label: str, url: str, allow: bool
    ) -> _Result:
        """Make a nested submodule's repository (no `.git` link yet) and fetch its commit."""
        try:
            if work.stop.is_set() or work.closing.is_set():
                raise _Stopped
            work.board.add(label, url)
            try:  # (what fails here is done again the usual way: never an error of its own)
                # its folder is not there yet: its parent's stands in until `_adopt_early`
                parent_folder = os.path.realpath(parent.folder)
                early.ok = self._init_repository(
                    early.gitdir, early.url, parent_folder, parent_folder
                )
                if early.ok:
                    at = ["--git-dir", str(early.gitdir)]
                    watch = work.board.watcher(label)
                    fetched = self._fetch_commit(at, None, early.recorded, url, watch, allow)
                    early.ok = fetched.ok
            except (OSError, BootstrapError):
                early.ok = False
            finally:
                work.board.finish(label, early.ok)
        finally:
            early.done.set()
        return parent, Outcome(0, "", ""), []

    def _adopt_early(self, sub: Submodule, gitdir: Path, early: _Early) -> bool:
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

    def _check_out(self, work: _Pass, sub: Submodule, fresh: bool) -> Outcome:
        """Check the recorded commit out: a new clone with force (only git's own files are in
        its folder), an existing one as `git submodule update` does (git refuses to overwrite
        local changes)."""
        git = self.git
        if fresh:
            # HEAD first: a kill during the checkout then leaves a clone with a commit, which
            # the checkout record lets the next run finish (`_resume`).
            moved = git.change(["update-ref", "--no-deref", "HEAD", sub.recorded], cwd=sub.folder)
            if not moved.ok:
                return moved
            self._start_nested(work, sub)
            return git.change(["checkout", "-f", "-q", "--detach", sub.recorded], cwd=sub.folder)
        head = git.probe(["rev-parse", "-q", "--verify", "HEAD"], cwd=sub.folder).out.strip()
        if head == sub.recorded:
            return Outcome(0, "", "")  # (a clone never checked out: `_repair` completes it)
        return git.change(["checkout", "-q", "--detach", sub.recorded], cwd=sub.folder)

    def _as_git_does(self, work: _Pass, sub: Submodule, allow_file: bool) -> Outcome:
        """`git submodule update --depth 1 -- PATH`: it fetches the default branch's tip, then
        the recorded commit when that is not in it."""
        if work.stop.is_set():
            raise _Stopped
        where = str(sub.folder.relative_to(sub.parent))
        args = ["submodule", "update", "--depth", "1", "--progress", "--", where]
        return self.git.network(
            args,
            cwd=sub.parent,
            url=sub.fetched,
            watch=work.board.watcher(sub.path),
            allow_file=allow_file,
        )

    def _module_dir(self, work: _Pass | None, sub: Submodule) -> Path | None:
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

    def _remove_new_repository(self, work: _Pass, sub: Submodule, gitdir: Path) -> None:
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

    def _urls(self, pending: list[Submodule]) -> list[tuple[str, str]]:
        """Every URL fetching `pending` may use: the configured one, and an existing clone's."""
        urls = [(sub.path, sub.fetched) for sub in pending]
        for sub in pending:
            if _has_git(sub.folder) and is_toplevel(self.git, sub.folder):
                origin = self.git.probe(["config", "--get", "remote.origin.url"], cwd=sub.folder)
                if origin.out.strip():
                    urls.append((sub.path, expand(self.git, sub.folder, origin.out.strip())))
        return urls

    def _complete(self, sub: Submodule) -> bool:
        """Checked out at its recorded commit."""
        if not _has_git(sub.folder) or not is_toplevel(self.git, sub.folder):
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
        self.git.warn(f"finished the checkout of {sub.path} that an interrupted run started")
        return self._complete(sub)

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
        if self._pass is not None and sub.folder in self._pass.early:
            return  # fetched early by this run, while its parent was being checked out
        gitdir = self._module_dir(self._pass, sub)
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
        self.git.warn(f"removed a half-cloned submodule left by an interrupted run: {sub.path}")


def _has_git(folder: Path) -> bool:
    """Whether `folder` has a `.git` entry (a repository's top always has one)."""
    return os.path.lexists(folder / ".git")


def _beside(base: str, relative: str) -> str:
    """A relative submodule URL (`../x.git`) resolved against its parent's `scheme://` URL
    as `git submodule init` resolves it; "" for any other shape (left to the usual way)."""
    scheme, found, rest = base.removesuffix("/").partition("://")
    if not found or not scheme.isalpha() or "/" not in rest:
        return ""
    host, _, path = rest.partition("/")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return ""
    while relative.startswith(("./", "../")):
        if relative.startswith("./"):
            relative = relative[2:]
            continue
        relative = relative[3:]
        if not parts:
            return ""
        parts.pop()
    if not relative or any(part in ("", ".", "..") for part in relative.split("/")):
        return ""
    return f"{scheme}://{host}/" + "/".join([*parts, relative])


def _wait_for(work: _Pass, early: _Early) -> None:
    """Wait for an early fetch to end (unless the pass is stopped)."""
    while not early.done.wait(0.05):
        if work.stop.is_set():
            raise _Stopped


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

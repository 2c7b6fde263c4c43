"""Fetching one submodule, and starting its nested ones early (see `fetching`)."""

from __future__ import annotations

import functools
import os

from mmlab_bootstrap.clone.fetch.repository import has_git
from mmlab_bootstrap.clone.fetch.resume import ResumingFetcher
from mmlab_bootstrap.clone.fetch.state import NESTED_KEYS, NO_REPOSITORY, Early, Pass, Result
from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.git import (
    BY_COMMIT,
    NETWORK,
    REFUSED,
    CloneError,
    Outcome,
    Submodule,
    expand,
    failure_kind,
    file_path,
    git_message,
    has_commit,
    is_toplevel,
    modules_folder,
    needs_file_transport,
    plain_name,
)
from mmlab_bootstrap.run import Stopped


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


def wait_for(work: Pass, early: Early) -> None:
    """Wait for an early fetch to end (unless the pass is interrupted: `interrupt` ends the
    wait)."""
    early.done.wait()
    if work.pool.interrupted.is_set():
        raise Stopped


def interrupt(work: Pass) -> None:
    """A Ctrl-C: whoever waits for an early fetch stops waiting."""
    with work.lock:
        waited = list(work.early.values())
    for early in waited:
        early.done.set()


class NestedFetcher(ResumingFetcher):
    """One submodule fetched and checked out, its own submodules started as soon as it is (their
    commits even while it is being checked out)."""

    def _fetch_one(self, work: Pass, sub: Submodule, allow_file: bool) -> Outcome:
        """Fetch only the recorded commit and check it out; git's own way where a server will
        not send a commit by its id, or where git's rules call for it."""
        gitdir = self._module_dir(work, sub)
        early = work.early.get(sub.folder)
        if early is not None and gitdir is not None:
            wait_for(work, early)
            if early.ok and self._adopt_early(sub, gitdir, early):
                return self._check_out(work, sub, True)
            self._remove_new_repository(work, sub, early.gitdir)
        fresh = gitdir is not None and not os.path.lexists(gitdir)
        if gitdir is None or sub.update or (fresh and os.path.lexists(sub.folder / ".git")):
            return self._as_git_does(work, sub, allow_file)
        if not fresh and not (has_git(sub.folder) and is_toplevel(self.git, sub.folder)):
            return self._as_git_does(work, sub, allow_file)  # e.g. after `submodule deinit`
        if fresh and not self._make_repository(sub, gitdir):
            self._remove_new_repository(work, sub, gitdir)
            return self._as_git_does(work, sub, allow_file)
        if work.pool.interrupted.is_set():
            raise Stopped
        fetched = Outcome(0, "", "")
        if fresh or not has_commit(self.git, sub.folder, sub.recorded):
            watch = work.board.watcher(sub.path)
            stopped = work.pool.interrupted.is_set
            if fresh:
                fetched = self._fetch_commit(
                    [], sub.folder, sub.recorded, sub.fetched, watch, allow_file, sub.url, stopped
                )
            else:
                cached = self._through_cache([], sub.folder, sub.recorded, sub.url, watch, stopped)
                if cached is not None:
                    fetched = cached
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
            if kind in (NETWORK, REFUSED) or NO_REPOSITORY.search(fetched.err):
                return fetched
            self.git.warn(
                f"{sub.path}: the server would not send commit {sub.recorded[:12]} by itself"
                f" ({git_message(fetched.err)}); fetching it as git submodule update does"
            )
            return self._as_git_does(work, sub, allow_file)
        if work.pool.interrupted.is_set():
            raise Stopped
        return self._check_out(work, sub, fresh)

    def _check_out(self, work: Pass, sub: Submodule, fresh: bool) -> Outcome:
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

    def _start_nested(self, work: Pass, sub: Submodule) -> None:
        """While `sub` (a new clone, HEAD at its recorded commit) is being checked out, start
        fetching the commits its own submodules record, read from that commit. Only when
        every one of them is named plainly, has a URL (absolute, or relative to a `scheme://`
        URL of `sub`) and no update mode, and every URL passes the check `_prepare` makes
        (so that a refusal still finds none of them fetched). Otherwise, or for what goes
        wrong here, the usual way follows once `sub` is checked out (`_prepare` checks them
        all again then)."""
        if work.pool.stopping.is_set():
            return
        git, commit = self.git, sub.recorded
        listed = git.probe(
            ["config", "--blob", f"{commit}:.gitmodules", "-z", "--get-regexp", NESTED_KEYS],
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
            nested = Early(gitdir, url, recorded)
            with work.lock:
                if work.pool.stopping.is_set():
                    return  # (checked under the lock `interrupt` takes: none waits forever)
                work.early[folder] = nested
                work.board.expect(1)
                # (added while `sub` runs, it starts before the nested submodule's own work,
                # added once `sub` is done, which waits for it)
                work.pool.add(
                    functools.partial(
                        self._fetch_early, work, sub, nested, label, fetched[path], allow
                    )
                )

    def _fetch_early(
        self, work: Pass, parent: Submodule, early: Early, label: str, url: str, allow: bool
    ) -> Result:
        """Make a nested submodule's repository (no `.git` link yet) and fetch its commit."""
        try:
            work.pool.check()
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
                    fetched = self._fetch_commit(
                        at,
                        None,
                        early.recorded,
                        url,
                        watch,
                        allow,
                        early.url,
                        work.pool.interrupted.is_set,
                    )
                    early.ok = fetched.ok
            except (OSError, BootstrapError):
                early.ok = False
            finally:
                work.board.finish(label, early.ok)
        finally:
            early.done.set()
        return parent, Outcome(0, "", ""), []

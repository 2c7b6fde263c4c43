"""Finishing what a killed fetch left, and refusing what stands in a checkout's way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mmlab_bootstrap.clone.checkouts import CheckoutRecord
from mmlab_bootstrap.clone.fetch.repository import RepositoryFetcher, has_git
from mmlab_bootstrap.clone.fetch.state import DEEPER
from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import is_inside
from mmlab_bootstrap.git import (
    CloneError,
    Submodule,
    SubmoduleEntry,
    expand,
    has_commit,
    has_head,
    has_index,
    is_toplevel,
    recorded_commit,
)


class ResumingFetcher(RepositoryFetcher):
    """What a killed run left: checkouts to finish, half clones to forget, files in the way."""

    def _urls(self, pending: list[Submodule]) -> list[tuple[str, str]]:
        """Every URL fetching `pending` may use: the configured one, and an existing clone's."""
        urls = [(sub.path, sub.fetched) for sub in pending]
        for sub in pending:
            if has_git(sub.folder) and is_toplevel(self.git, sub.folder):
                origin = self.git.probe(["config", "--get", "remote.origin.url"], cwd=sub.folder)
                if origin.out.strip():
                    urls.append((sub.path, expand(self.git, sub.folder, origin.out.strip())))
        return urls

    def _complete(self, sub: Submodule) -> bool:
        """Checked out at its recorded commit."""
        if not has_git(sub.folder) or not is_toplevel(self.git, sub.folder):
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

"""Apply what `adopted` planned: write the new versions of adopted tracked files into storage
(verified), record them in the submodule's index, drop removed ones (see `adopted`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import (
    TRANSFER_TEMPORARY,
    fsync_folder,
    remove_leftovers,
    temporary_beside,
)
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.links.inventory import skipped_files
from mmlab_bootstrap.links.journal import Journal
from mmlab_bootstrap.links.location import in_target
from mmlab_bootstrap.links.upstream import (
    SYMLINK,
    AdoptedError,
    Blob,
    LeafUpdate,
    plan_updates,
    stored_oid,
)
from mmlab_bootstrap.output import Reporter
from mmlab_bootstrap.settings import Settings


def update_adopted(settings: Settings, git: Git, report: Reporter) -> None:
    """Before `git submodule update`: put what its checkouts bring under linked locations
    into storage and the submodules' indexes (every step repeatable)."""
    updates = plan_updates(settings, git, report, None)
    if updates:
        apply_updates(updates, git, report, Journal(settings.root))


def apply_updates(updates: list[LeafUpdate], git: Git, report: Reporter, journal: Journal) -> None:
    """Write new versions into storage, then the index, then drop removed files' copies."""
    for update in updates:
        location, changes = update.location, update.changes
        project = location.project_dir
        written = 0
        for change in changes:
            if change.new is not None:
                stored = in_target(location, change.path)
                written += write_blob(git, project, change.path, change.new, stored)
        index = ["update-index", "--add"]
        for change in changes:
            if change.new is not None:
                index += ["--cacheinfo", f"{change.new.mode},{change.new.oid},{change.path}"]
        removed = [change.path for change in changes if change.new is None]
        kept = [change.path for change in changes if change.new is not None]
        # One command, so the index is written once: the paths all start with the leaf name.
        index += ["--force-remove", *removed] if removed else []
        index += ["--skip-worktree", *kept] if kept else []
        outcome = git.change(index, cwd=project)
        if not outcome.ok:
            raise AdoptedError(
                f"git update-index failed in {shown(str(project))}: {outcome.err.strip()}",
                "fix the cause, then run: inv clone (it goes on from there)",
            )
        for change in changes:
            if change.new is None:
                written += _remove_copy(in_target(location, change.path), location.target)
        journal.record(location.link, adopted_tracked=list(skipped_files(git, location)))
        counts = {
            done: sum(change.verb() == verb for change in changes)
            for verb, done in (("update", "updated"), ("add", "added"), ("remove", "removed"))
        }
        what = ", ".join(f"{done} {count}" for done, count in counts.items() if count)
        again = "" if written else " (storage had them already: a run stopped part way)"
        report.done(
            f"{what} adopted tracked file(s) in {location.target}"
            f" for {location.project} {update.commit[:12]}{again}"
        )


def write_blob(git: Git, project: Path, relative: str, blob: Blob, destination: Path) -> bool:
    """Put a blob at `destination` as a checkout would write it: a temporary copy beside it,
    checked against the blob id, then renamed over (never a half-written file). Returns
    False when it was there already (a run stopped after writing it)."""
    if stored_oid(git, project, relative, destination) == blob.oid and _same_mode(
        destination, blob
    ):
        return False
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(destination.parent, destination.name)  # a killed run's, never a user's
    temporary = temporary_beside(destination, TRANSFER_TEMPORARY, purpose="update")
    try:
        _write_temporary(git, project, relative, blob, temporary)
        if stored_oid(git, project, relative, temporary) != blob.oid:
            raise AdoptedError(
                f"the copy of {relative} written to {shown(str(destination.parent))} does not"
                " match upstream's (disk full?)",
                "free some space, then run: inv clone (it goes on from there)",
            )
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_folder(destination.parent)  # the rename made durable, as every replace is
    return True


def _write_temporary(git: Git, project: Path, relative: str, blob: Blob, temporary: Path) -> None:
    if blob.mode == SYMLINK:
        os.symlink(git.probe(["cat-file", "blob", blob.oid], cwd=project).out, temporary)
        return
    content = ["cat-file", "--filters", f"--path={relative}", blob.oid]
    with open(temporary, "xb") as handle:
        done = subprocess.run(
            git.command(content, project),
            stdout=handle,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        handle.flush()
        os.fsync(handle.fileno())
    if done.returncode != 0:
        raise AdoptedError(
            f"could not read {relative} ({blob.oid[:12]}) in {shown(str(project))}:"
            f" {done.stderr.decode(errors='replace').strip()}",
            "run: inv clone (it fetches what is missing and goes on)",
        )
    if blob.mode == "100755":
        os.chmod(temporary, os.stat(temporary).st_mode | (0o111 & ~_umask()))


def _same_mode(path: Path, blob: Blob) -> bool:
    if blob.mode == SYMLINK:
        return path.is_symlink()
    executable = bool(os.stat(path).st_mode & 0o100)
    return executable == (blob.mode == "100755")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_copy(stored: Path, target: Path) -> bool:
    """Delete the storage copy of a file upstream removed (checked to be the old blob), and the
    folders that leaves empty, up to the target. False when it was gone already."""
    if not os.path.lexists(stored):
        return False
    os.unlink(stored)
    folder = stored.parent
    while folder != target and target in folder.parents:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only an empty folder goes
        if folder.exists():
            break
        folder = folder.parent
    return True

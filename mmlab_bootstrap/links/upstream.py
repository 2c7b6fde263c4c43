"""Keep linked sub-project folders in step with upstream when a submodule moves (`--update`).

Linking adopts the tracked files under a link location (mmdetection3d's `data/`): it copies
them into storage, marks them skip-worktree and puts a symlink in the folder's place. git
treats whatever lies beyond a symlink as absent and never writes or deletes through one, so a
checkout that changes such a file stops ("local changes would be overwritten"), and one that
adds a tracked file there replaces the link by a real folder (the storage stays untouched).

So before a submodule moves to the commit its superproject records, every linked location of
it is brought in step, in an order where each step can be repeated:

1. plan: the tracked files under the location that differ between the submodule's HEAD and the
   new commit. The copy of each in storage must be the HEAD version (its blob, as
   `git hash-object` computes it), already the new version (a run stopped part way), or absent.
   Anything else is the user's change (or a file of the user's where upstream adds one): the
   whole update is refused, naming the files, before anything changes.
2. apply (`adopted_writer`): new versions are written into storage through verified
   temporary copies; one `git update-index` then records the new blobs in the submodule's
   index, skip-worktree (so the checkout keeps them and leaves the link alone), and drops the
   removed ones; the storage copies of removed files (still the old blob) are deleted; the
   journal's list of adopted files follows. The checkout (`git submodule update`) comes after.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.git import Git, failure, has_commit
from mmlab_bootstrap.links.clashes import blocked
from mmlab_bootstrap.links.inventory import file_blob_id, skipped_files
from mmlab_bootstrap.links.journal import Journal
from mmlab_bootstrap.links.location import Location, in_target, locations
from mmlab_bootstrap.output import Reporter
from mmlab_bootstrap.settings import LEAVES, Settings

GITLINK = "160000"
SYMLINK = "120000"


class AdoptedError(BootstrapError):
    """Adopted files in storage cannot be brought in step with upstream."""


@dataclass(frozen=True)
class Blob:
    """A tracked file's content as git records it."""

    mode: str
    oid: str


@dataclass(frozen=True)
class Change:
    """One tracked file under a linked location that upstream changed, added or removed."""

    path: str  # relative to the project folder: data/lyft/train.txt
    old: Blob | None  # in the submodule's HEAD
    new: Blob | None  # in the commit the superproject records

    def verb(self) -> str:
        return "add" if self.old is None else "remove" if self.new is None else "update"


@dataclass(frozen=True)
class LeafUpdate:
    """A linked location and the changes its submodule's next checkout brings."""

    location: Location
    commit: str
    changes: tuple[Change, ...]


def check_adopted(settings: Settings, git: Git, report: Reporter, commit: str) -> None:
    """Before the superproject moves to `commit`: refuse if that would overwrite a user's
    change in storage (fetching the submodule commits it records, to compare)."""
    plan_updates(settings, git, report, commit)


def describe_adopted(settings: Settings, git: Git) -> list[str]:
    """What `check_adopted` and `update_adopted` will do, for --dry (looking only)."""
    lines = []
    for location in linked_locations(settings):
        adopted = skipped_files(git, location)
        if adopted:
            lines.append(
                f"bring the {len(adopted)} tracked files adopted into {location.target}"
                " in step with what upstream records, refusing if you changed one it changes"
            )
    return lines


def linked_locations(settings: Settings) -> list[Location]:
    """Link locations holding a link to their target (or to the one the journal recorded, when
    the storage roots moved since), including journalled ones of projects no longer listed."""
    journal = Journal(settings.root)
    candidates = {
        location.link: location for variable in LEAVES for location in locations(settings, variable)
    }
    leaves = {leaf: variable for variable, leaf in LEAVES.items()}
    for key, entry in journal.links.items():
        link = Path(key)
        ours = link.parent.parent == settings.extension_path and link.name in leaves
        if ours and link not in candidates and entry.get("target"):
            target = Path(entry["target"])
            candidates[link] = Location(link.parent.name, leaves[link.name], link, target)
    found = []
    for location in candidates.values():
        if not location.link.is_symlink():
            continue
        recorded = journal.entry(location.link).get("target")
        targets = [location.target] + ([Path(recorded)] if recorded else [])
        for candidate in targets:
            if os.path.realpath(location.link) == os.path.realpath(candidate):
                found.append(location._replace(target=candidate))
                break
    return found


def plan_updates(
    settings: Settings, git: Git, report: Reporter, commit: str | None
) -> list[LeafUpdate]:
    """The changes under each linked location, between its submodule's HEAD and the commit the
    superproject records (at `commit`, or in its index for None); refuses a user's change."""
    extension = settings.extension_path
    updates: list[LeafUpdate] = []
    for location in linked_locations(settings):
        project = location.project_dir
        new = gitlink(git, extension, location.project, commit)
        head = git.probe(["rev-parse", "-q", "--verify", "HEAD"], cwd=project).out.strip()
        if not new or not head or new == head:
            continue
        if not has_commit(git, project, new):
            _fetch(git, project, new)
        changes = diff(git, project, head, new, location.leaf)
        if changes:
            updates.append(LeafUpdate(location, new, changes))
    problems = [problem for update in updates for problem in conflicts(git, update)]
    if problems:
        names = ", ".join(problems[:5]) + (f" and {len(problems) - 5} more" if problems[5:] else "")
        raise AdoptedError(
            f"upstream changes {len(problems)} tracked file(s) under a linked folder whose"
            f" copy in storage is yours, not the one linking adopted: {names}; nothing changed",
            "move your version aside (mv FILE FILE.mine), then run: inv clone --update"
            " (it puts upstream's version in storage)",
        )
    return updates


def gitlink(git: Git, extension: Path, project: str, commit: str | None) -> str:
    """The commit the superproject records for `project` (at `commit`, or in its index)."""
    if commit is None:
        listing = git.probe(["ls-files", "-s", "-z", "--", project], cwd=extension).out
    else:
        listing = git.probe(["ls-tree", "-z", commit, "--", project], cwd=extension).out
    for record in listing.split("\0"):
        meta, _, path = record.partition("\t")
        fields = meta.split()
        if path == project and len(fields) >= 2 and fields[0] == GITLINK:
            # ls-files: mode oid stage; ls-tree: mode type oid
            return fields[2] if fields[1] == "commit" else fields[1]
    return ""


def _fetch(git: Git, project: Path, commit: str) -> None:
    """Fetch the one commit a submodule moves to (what `submodule update` fetches anyway)."""
    url = git.probe(["config", "--get", "remote.origin.url"], cwd=project).out.strip()
    fetched = git.network(["fetch", "-q", "--depth", "1", "origin", commit], cwd=project, url=url)
    if not fetched.ok or not has_commit(git, project, commit):
        raise failure(fetched, url, f"git fetch of {commit[:12]}")


def diff(git: Git, project: Path, old: str, new: str, leaf: str) -> tuple[Change, ...]:
    """Tracked files under `leaf` that differ between two commits (gitlinks left out)."""
    listing = git.probe(["diff-tree", "-r", "-z", "--no-renames", old, new, "--", leaf], project)
    fields = listing.out.split("\0")
    changes = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(":"):
            continue
        old_mode, new_mode, old_oid, new_oid, _ = meta[1:].split(" ", 4)
        if GITLINK in (old_mode, new_mode):
            continue
        changes.append(
            Change(
                path,
                None if set(old_oid) == {"0"} else Blob(old_mode, old_oid),
                None if set(new_oid) == {"0"} else Blob(new_mode, new_oid),
            )
        )
    return tuple(changes)


def stored_oid(git: Git, project: Path, relative: str, stored: Path) -> str | None:
    """The blob id of a file in storage as git would record it at `relative`; None if absent."""
    if not os.path.lexists(stored):
        return None
    if stored.is_symlink():
        return _blob_id_of_text(git, project, os.readlink(stored))
    if not stored.is_file():
        return ""
    return file_blob_id(git, project, relative, stored)


def _blob_id_of_text(git: Git, project: Path, text: str) -> str:
    # A symlink's blob is its destination; hash it the way git does, without writing anything.
    command = git.command(["hash-object", "--stdin", "--no-filters"], project)
    done = subprocess.run(command, input=text.encode(), capture_output=True, check=False)
    return done.stdout.decode().strip() if done.returncode == 0 else ""


def conflicts(git: Git, update: LeafUpdate) -> list[str]:
    """Files in storage the update would overwrite or delete although they are the user's."""
    location, found = update.location, []
    for change in update.changes:
        stored = in_target(location, change.path)
        if blocked(stored.parent, location.target):
            found.append(f"{stored} (a file or link of yours is in its way)")
            continue
        oid = stored_oid(git, location.project_dir, change.path, stored)
        known = {blob.oid for blob in (change.old, change.new) if blob is not None}
        if oid is not None and oid not in known:
            found.append(f"{stored} ({'a file of yours' if change.old is None else 'edited'})")
    return found

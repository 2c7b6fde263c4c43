"""The mirror planner: looks at DEST and at the repositories already mirrored, and says what
to do (clone or fetch, leftovers to remove, commits to keep, submodules to follow); changes
nothing. `mirrorer` carries a repository's plan out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import creatable_problem, is_inside
from mmlab_bootstrap.git import Git, normal_url
from mmlab_bootstrap.mirror.places import (
    MirrorError,
    Place,
    on_github,
    place_of,
    resolve_relative,
    source_folder,
)
from mmlab_bootstrap.settings import EXTENSION_REPO, Settings

KEPT = "refs/mmlab-bootstrap/kept/"


class RepoPlan(NamedTuple):
    """What one repository of the mirror needs."""

    place: Place
    exists: bool  # a mirror is there (fetch into it), else clone one
    leftovers: tuple[Path, ...]  # partial clones of interrupted runs, beside it


class Child(NamedTuple):
    """A submodule a mirrored commit records, on github: where it goes and the commit."""

    place: Place
    commit: str


def destination(settings: Settings, given: str) -> Path:
    """DEST as an absolute path, checked: not inside the mirror it is made from nor the
    workspace's superproject (or holding either), creatable."""
    dest = Path(os.path.abspath(os.path.expanduser(given)))
    source = source_folder(settings.mirror)
    if source is not None and (is_inside(dest, source) or is_inside(source, dest)):
        raise MirrorError(
            f"{shown(str(dest))} and the mirror it would be made from"
            f" ({shown(settings.mirror)}, MMLAB_GIT_MIRROR) lie inside one another",
            "choose a DEST outside it, or fetch from GitHub: inv mirror DEST --mirror ''",
        )
    extension = settings.extension_path
    if is_inside(dest, extension) or is_inside(extension, dest):
        raise MirrorError(
            f"{shown(str(dest))} and the workspace's superproject {shown(str(extension))}"
            " (MMLAB_EXTENSION_PATH) lie inside one another",
            "choose a DEST outside the checkout: inv mirror /shared/mirror",
        )
    if os.path.lexists(dest) and not dest.is_dir():
        raise MirrorError(
            f"{shown(str(dest))} exists and is not a folder", "choose another DEST: inv mirror DEST"
        )
    if not os.path.lexists(dest):
        problem = creatable_problem(dest)
        if problem:
            raise MirrorError(
                f"cannot make the mirror in {shown(str(dest))}: {problem}",
                "choose a DEST you can write to: inv mirror DEST",
            )
    return dest


def superproject(settings: Settings, dest: Path) -> Place:
    """The superproject's place; only a github repository can be served through the mirror."""
    if not on_github(settings.repo):
        raise MirrorError(
            f"{EXTENSION_REPO} {shown(settings.repo)} is not on https://github.com/: the"
            " workspace's MMLAB_GIT_MIRROR only replaces that prefix",
            "mirror a github repository (inv mirror DEST --repo https://github.com/OWNER/NAME.git)",
        )
    return place_of(dest, settings.repo, EXTENSION_REPO)


def look(git: Git, place: Place) -> RepoPlan:
    """What is at a repository's place now (call again under its lock before acting)."""
    leftovers = place.leftovers()
    if not os.path.lexists(place.path):
        return RepoPlan(place, False, tuple(leftovers))
    bare = git.probe(["rev-parse", "--is-bare-repository"], cwd=place.path)
    top = git.probe(["rev-parse", "--absolute-git-dir"], cwd=place.path).out.strip()
    if not (bare.ok and bare.out.strip() == "true" and os.path.samefile(top, place.path)):
        raise MirrorError(
            f"{shown(str(place.path))} exists and is not a bare repository; left alone",
            f"move it away (mv '{place.path}' '{place.path}.old'), then run the same command",
        )
    origin = git.probe(["config", "--get", "remote.origin.url"], cwd=place.path).out.strip()
    if normal_url(origin) != normal_url(place.url):
        raise MirrorError(
            f"{shown(str(place.path))} is a mirror of {shown(origin or '(no origin)')},"
            f" not of {shown(place.url)}; left alone",
            f"move it away (mv '{place.path}' '{place.path}.old'), then run the same command",
        )
    return RepoPlan(place, True, tuple(leftovers))


def needs_keeping(git: Git, repo: Path, commit: str) -> bool:
    """Whether a commit a parent records is reachable from no ref of the mirror (so a client
    could not fetch it, and git could prune it)."""
    if git.probe(["rev-parse", "-q", "--verify", f"{KEPT}{commit}"], cwd=repo).ok:
        return False
    listing = git.probe(
        ["for-each-ref", "--count=1", "--format=%(refname)", "--contains", commit], cwd=repo
    )
    return not listing.out.strip()


def start_commits(git: Git, repo: Path, ref: str, *, all_refs: bool) -> dict[str, str]:
    """The superproject's commits to follow (commit -> what names it): the ref (or HEAD),
    or every branch tip; a ref the mirror does not have is left out (see `missing_ref`)."""
    if all_refs:
        listing = git.probe(
            ["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/"], cwd=repo
        )
        return dict(line.split(" ", 1) for line in listing.out.splitlines() if " " in line)
    found = git.probe(["rev-parse", "-q", "--verify", f"{ref or 'HEAD'}^{{commit}}"], cwd=repo)
    return {found.out.strip(): ref or "HEAD"} if found.ok else {}


def recorded(git: Git, repo: Path, commit: str) -> list[tuple[str, str, str]]:
    """The submodules a commit records: (path, URL as .gitmodules names it, commit)."""
    links: dict[str, str] = {}
    for record in git.probe(["ls-tree", "-r", "-z", commit], cwd=repo).out.split("\0"):
        meta, _, path = record.partition("\t")
        if meta.startswith("160000 "):
            links[path] = meta.split()[2]
    if not links:
        return []
    listing = git.probe(
        [
            "config",
            "--blob",
            f"{commit}:.gitmodules",
            "-z",
            "--get-regexp",
            r"^submodule\..*\.(path|url)$",
        ],
        cwd=repo,
    )
    pairs = dict(item.partition("\n")[::2] for item in listing.out.split("\0") if item)
    names = {path: key[10:-5] for key, path in pairs.items() if key.endswith(".path")}
    return [
        (path, pairs.get(f"submodule.{names.get(path, '')}.url", ""), sha)
        for path, sha in sorted(links.items())
    ]


def children(git: Git, dest: Path, parent: Place, commit: str) -> tuple[list[Child], list[str]]:
    """The github submodules a commit of `parent` records, and a warning for each other one
    (the mirror's rewrite cannot serve it). A github URL that is not plain is refused."""
    found: list[Child] = []
    warnings: list[str] = []
    for path, url, sha in recorded(git, parent.path, commit):
        where = f"{parent.key}:{path}"
        full = resolve_relative(parent.url, url)
        if not url:
            warnings.append(f"not mirrored: {where} has no URL in .gitmodules at {commit[:12]}")
        elif on_github(full):
            found.append(Child(place_of(dest, full, f".gitmodules of {where}"), sha))
        else:
            warnings.append(
                f"not mirrored: {where} ({shown(full)}), the workspace fetches it from its own URL"
            )
    return found, warnings

"""Where `inv mirror` keeps each repository: `https://github.com/<owner>/<name>[.git]` is the
bare mirror `DEST/<owner>/<name>.git`, so that git's `url.file://DEST/.insteadOf=https://github.com/`
(MMLAB_GIT_MIRROR=file://DEST/) reaches every repository the workspace needs. A URL without
`.git` (`file://DEST/<owner>/<name>`) reaches the same folder: git's upload-pack tries the
`.git` suffix.

Owner and name must be plain names: a hostile `.gitmodules` must never make the tool write
outside DEST.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import leftovers, temporary_beside
from mmlab_bootstrap.git import GITHUB

PARTIAL_TEMPORARY = ".{name}.{token12}.mmlab-partial"  # a fresh clone (see fs.temporaries)
_PLAIN = r"[A-Za-z0-9_][A-Za-z0-9._-]*"


class MirrorError(BootstrapError):
    """The mirror cannot be made or updated as asked."""


class Place(NamedTuple):
    """One repository of the mirror: its github URL and its folder under DEST."""

    owner: str
    name: str  # without `.git`
    url: str  # https://github.com/<owner>/<name>[.git], as the parent names it
    path: Path  # DEST/<owner>/<name>.git

    @property
    def key(self) -> str:
        return f"{self.owner}/{self.name}"

    def partial(self) -> Path:
        """A uniquely named folder beside the final one that a fresh clone is made in."""
        return temporary_beside(self.path, PARTIAL_TEMPORARY)

    def leftovers(self) -> list[Path]:
        """The folders killed clones of this repository left beside it (only looked at)."""
        return leftovers(self.path.parent, PARTIAL_TEMPORARY, name=self.path.name)


def on_github(url: str) -> bool:
    """Whether the mirror's insteadOf rewrite (of `https://github.com/`) applies to `url`."""
    return url.startswith(GITHUB)


def place_of(dest: Path, url: str, named_by: str) -> Place:
    """The folder under `dest` for a github URL; refuses an owner or name that is not plain
    (`..`, `.`, a leading `-`, a slash too many) naming `named_by` (where the URL came from)."""
    rest = url[len(GITHUB) :].rstrip("/")
    parts = rest.split("/")
    if len(parts) == 2:
        owner, name = parts[0], parts[1].removesuffix(".git")
        if all(re.fullmatch(_PLAIN, part) and part not in (".", "..") for part in (owner, name)):
            return Place(owner, name, url, dest / owner / f"{name}.git")
    raise MirrorError(
        f"{named_by} names {shown(url)}, which is not https://github.com/<owner>/<name>"
        " with plain names; refused, nothing written for it",
        "this URL would put a repository outside the mirror folder: point MMLAB_EXTENSION_REPO"
        " at a repository you trust (inv env --repo URL)",
    )


def resolve_relative(parent_url: str, url: str) -> str:
    """A submodule URL as `git submodule init` resolves it: `../x.git` and `./x` are taken
    relative to the parent repository's URL (each `../` drops one part of it)."""
    if not url.startswith(("../", "./")):
        return url
    base = parent_url.rstrip("/")
    while url.startswith(("../", "./")):
        if url.startswith("./"):
            url = url[2:]
        else:
            url = url[3:]
            base = base.rsplit("/", 1)[0] if "/" in base else base
    return f"{base}/{url}"


def use_line(dest: Path) -> str:
    """The command that points a workspace at this mirror."""
    url = f"file://{dest.resolve()}/"
    return f"inv env --mirror {shlex.quote(url)}"


def lock_name(place: Place) -> str:
    """The name of one repository's lease lock in DEST's lock room (fs.LockRoom)."""
    return f"{place.owner}+{place.name}"


def source_folder(mirror: str) -> Path | None:
    """The folder a file:// MMLAB_GIT_MIRROR serves from, else None."""
    if not mirror.startswith("file://"):
        return None
    return Path(os.path.normpath(mirror[len("file://") :]))

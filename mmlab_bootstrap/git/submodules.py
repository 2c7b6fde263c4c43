"""Submodules: their state, their URLs, and which `file://` URLs the tool lets git fetch.

Stock git (2.38.1 and later) refuses the file transport for submodules, because a hostile
`.gitmodules` could point at any repository on the machine. The tool allows it for one
command only after checking each URL that command fetches: a `file://` (or local path) URL
must lie under a `file://` MMLAB_GIT_MIRROR, or beside a `file://` MMLAB_EXTENSION_REPO
(where relative URLs such as `../x.git` point).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import is_inside
from mmlab_bootstrap.git.command import Git


class CloneError(BootstrapError):
    """The superproject or a submodule cannot be cloned or completed as asked."""


class SubmoduleEntry(NamedTuple):
    """One line of `git submodule status --recursive`."""

    flag: str
    sha: str
    path: str
    checked_out: bool | None = None  # None: not looked at

    @property
    def ready(self) -> bool:
        return self.flag == " "


class Submodule(NamedTuple):
    """One gitlink of a repository, with what it will be fetched from."""

    name: str
    path: str  # relative to the superproject's root
    parent: Path  # the repository it is a submodule of
    folder: Path
    recorded: str
    url: str  # as configured (after `git submodule init`)
    fetched: str  # after the mirror's (and the user's) insteadOf rewriting
    update: str = ""  # `submodule.<name>.update` as configured (checkout, rebase, none, …)


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


def gitlinks(git: Git, repo: Path) -> dict[str, str]:
    """The submodule paths of a repository (relative to it) and the commits it records."""
    listing = git.probe(["ls-files", "--stage", "-z"], cwd=repo)
    found = {}
    for record in listing.out.split("\0"):
        meta, _, path = record.partition("\t")
        if meta.startswith("160000 "):
            found[path] = meta.split()[1]
    return found


def _config(git: Git, repo: Path, pattern: str, *where: str) -> dict[str, str]:
    listing = git.probe(["config", *where, "-z", "--get-regexp", pattern], cwd=repo)
    pairs = (item.partition("\n") for item in listing.out.split("\0") if item)
    return {key: value for key, _, value in pairs}


def list_submodules(git: Git, root: Path, repo: Path) -> list[Submodule]:
    """The submodules of `repo` (the superproject or one of its submodules), URLs resolved.

    Runs `git submodule init` (local: it writes the resolved URLs into `repo`'s config) after
    refusing any path or URL that git could take for an option.
    """
    links = gitlinks(git, repo)
    if not links:
        return []
    gitmodules = _config(git, repo, r"^submodule\..*\.(path|url)$", "-f", ".gitmodules")
    names = {
        path: key[len("submodule.") : -len(".path")]
        for key, path in gitmodules.items()
        if key.endswith(".path")
    }
    declared = {key: url for key, url in gitmodules.items() if key.endswith(".url")}
    for path in links:
        url = declared.get(f"submodule.{names.get(path, '')}.url", "")
        for value in (path, url):
            if value.startswith("-"):
                raise CloneError(
                    f"{shown(str(repo / '.gitmodules'))} names {shown(value)},"
                    " which git could take for an option; refused, nothing fetched",
                    "this .gitmodules is not safe to use: point MMLAB_EXTENSION_REPO at a"
                    " repository you trust (inv env --repo URL)",
                )
    git.change(["submodule", "init", "-q"], cwd=repo)
    configured = _config(git, repo, r"^submodule\..*\.(url|update)$")
    found = []
    for path, recorded in sorted(links.items()):
        name = names.get(path, "")
        url = configured.get(f"submodule.{name}.url") or declared.get(f"submodule.{name}.url", "")
        where = str(os.path.relpath(repo / path, root))
        fetched = expand(git, repo, url) if url else ""
        update = configured.get(f"submodule.{name}.update", "")
        found.append(Submodule(name, where, repo, repo / path, recorded, url, fetched, update))
    return found


def expand(git: Git, repo: Path, url: str) -> str:
    """The URL git will fetch: `url` after every insteadOf rewriting (mirror, user config)."""
    outcome = git.probe(["ls-remote", "--get-url", url], cwd=repo)
    return outcome.out.strip() if outcome.ok and outcome.out.strip() else url


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def file_path(url: str) -> str | None:
    """The path a URL names when git fetches it with the file transport, else None."""
    if url.startswith("file://"):
        return url[len("file://") :] or "."
    if _SCHEME.match(url) or "::" in url:
        return None
    colon, slash = url.find(":"), url.find("/")
    if colon > 0 and (slash < 0 or colon < slash):
        return None  # user@host:path (ssh)
    return url


def file_roots(repo: str, mirror: str) -> list[Path]:
    """Folders whose repositories may be fetched over file://: a file:// mirror, and the
    folder holding a file:// superproject (its relative submodule URLs point beside it)."""
    roots = []
    if mirror.startswith("file://"):
        roots.append(Path(os.path.normpath(mirror[len("file://") :])))
    if repo.startswith("file://"):
        roots.append(Path(os.path.normpath(repo[len("file://") :])).parent)
    return roots


def needs_file_transport(urls: list[tuple[str, str]], roots: list[Path]) -> bool:
    """Whether fetching these (submodule path, URL) pairs needs the file transport; refuses
    any file URL outside `roots`."""
    needed = False
    for where, url in urls:
        path = file_path(url)
        if path is None or not url:
            continue
        normal = Path(os.path.normpath(path))
        if (
            path.startswith("/")
            and "%" not in path
            and any(is_inside(normal, root) for root in roots)
        ):
            needed = True
            continue
        allowed = " or ".join(f"file://{root}/" for root in roots) or "nowhere (no file:// mirror)"
        raise CloneError(
            f"submodule {where} would be fetched from {shown(url)}, a local path"
            f" outside the mirror; refused, nothing fetched (file:// is allowed under {allowed})",
            "a .gitmodules that points at other folders of this machine is not used: set"
            " MMLAB_GIT_MIRROR to the file:// folder that holds it (inv env --mirror"
            " 'file:///path/'), or use a repository you trust",
        )
    return needed


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


def has_commit(git: Git, folder: Path | None, commit: str, *, git_dir: Path | None = None) -> bool:
    """Whether the repository at `folder` (or, given `git_dir`, the one whose git folder it
    is: a cache's or a borrower's, asked by `--git-dir`) holds `commit`. The one way the
    package asks; nothing else runs `cat-file -e <commit>^{commit}`."""
    at = ["--git-dir", str(git_dir)] if git_dir is not None else []
    return git.probe([*at, "cat-file", "-e", f"{commit}^{{commit}}"], cwd=folder).ok


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
    return [
        e
        for e in status
        if not e.ready
        or not (e.checked_out if e.checked_out is not None else has_index(git, root / e.path))
    ]


def plain_name(name: str) -> bool:
    """Whether a submodule name is a plain relative path (what `.git/modules/<name>` may be
    made from): not empty, no `.`, `..` or empty component, no backslash or control character.
    Stricter than git's own check; other names are left to `git submodule` to judge."""
    parts = name.split("/")
    return (
        bool(name)
        and all(part not in ("", ".", "..") for part in parts)
        and not any(c == "\\" or ord(c) < 32 or c == "\x7f" for c in name)
    )


def modules_folder(git: Git, repo: Path) -> Path | None:
    """Where git keeps the repositories of `repo`'s submodules: `<its git folder>/modules`."""
    common = git.probe(["rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=repo)
    return Path(common.out.strip()) / "modules" if common.ok and common.out.strip() else None


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

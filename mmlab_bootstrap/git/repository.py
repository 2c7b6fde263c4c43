"""Repository queries in one place: what a folder's repository is, and the state of every
submodule of a clone, with one git process per repository (read-only; the answers are
remembered until the next change, see `git.Answers`).

`git submodule status --recursive` would tell the submodule states too, but it is a shell
script that starts about six git processes per submodule (four `git describe` among them,
whose output is then thrown away).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from mmlab_bootstrap.git import Git
from mmlab_bootstrap.git.outcomes import not_owned
from mmlab_bootstrap.git.submodules import SubmoduleEntry
from mmlab_bootstrap.git.submodules import gitlinks as submodule_gitlinks

_SHA = r"[0-9a-f]{40}([0-9a-f]{24})?"
_PATHS = "(?m)" r"^\s*path\s*=\s*(.+?)\s*$"


class RepoFacts(NamedTuple):
    """What one folder's repository is (all empty when the folder is no repository's top)."""

    folder: Path
    toplevel: bool = False
    head: str = ""  # the commit checked out ("" before the first one)
    branch: str = ""  # the branch checked out ("" when detached)
    shallow: bool = False
    checked_out: bool = False  # it has an index (a clone stopped before its checkout has none)
    index_file: Path | None = None  # its index file
    exclude: Path | None = None  # its `.git/info/exclude`, wherever its git folder is
    config: Path | None = None  # its own config file
    sparse_file: bool = False  # it has a sparse-checkout pattern file
    gitlinks: Mapping[str, str] = MappingProxyType({})  # submodule path -> recorded commit


def look_at(git: Git, folder: Path) -> RepoFacts:
    """The facts of the repository whose top level `folder` is, from one `git rev-parse`
    (the recorded commits of the submodules `.gitmodules` names included)."""
    if not folder.is_dir():
        return RepoFacts(folder)
    paths = _submodule_paths(folder)
    args = ["rev-parse", "--show-toplevel", "--is-shallow-repository", "--path-format=absolute"]
    args += ["--git-path", "index", "--git-path", "info/exclude", "--git-path", "config"]
    args += ["--git-path", "info/sparse-checkout", "HEAD"]
    args += [f":{path}" for path in paths] + ["--symbolic-full-name", "HEAD"]
    found = git.probe(args, cwd=folder)
    if not found.ok and (refused := not_owned(found, folder)) is not None:
        raise refused
    lines = found.out.splitlines()
    if len(lines) < 6 or os.path.realpath(lines[0]) != os.path.realpath(folder):
        return RepoFacts(folder)
    head = lines[6] if len(lines) > 6 and re.fullmatch(_SHA, lines[6]) else ""
    recorded = lines[7 : 7 + len(paths)] if head else []
    if found.ok and len(recorded) == len(paths):
        gitlinks = dict(zip(paths, recorded, strict=True))
        symbolic = lines[7 + len(paths)] if len(lines) > 7 + len(paths) else ""
    else:  # no commit yet, or `.gitmodules` names a path the index lacks
        gitlinks = submodule_gitlinks(git, folder)
        symbolic = git.probe(["symbolic-ref", "-q", "HEAD"], cwd=folder).out.strip()
    return RepoFacts(
        folder,
        toplevel=True,
        head=head,
        branch=symbolic.removeprefix("refs/heads/") if symbolic.startswith("refs/heads/") else "",
        shallow=lines[1] == "true",
        checked_out=os.path.exists(lines[2]),
        index_file=Path(lines[2]),
        exclude=Path(lines[3]),
        config=Path(lines[4]),
        sparse_file=os.path.exists(lines[5]),
        gitlinks=gitlinks,
    )


def submodule_states(git: Git, root: Path) -> tuple[SubmoduleEntry, ...]:
    """Every submodule of the clone at `root`, recursively, in the flags of `git submodule
    status` (`-` not cloned, `+` at another commit than recorded, ` ` at it), each with
    whether it is checked out."""
    entries: list[SubmoduleEntry] = []

    def visit(repo: RepoFacts, prefix: str) -> None:
        for path, recorded in sorted(repo.gitlinks.items()):
            sub = look_at(git, repo.folder / path)
            flag = "-" if not sub.head else " " if sub.head == recorded else "+"
            shown = sub.head if flag == "+" else recorded  # as git's own listing shows it
            entries.append(SubmoduleEntry(flag, shown, prefix + path, sub.checked_out))
            if sub.toplevel:
                visit(sub, f"{prefix}{path}/")

    visit(look_at(git, root), "")
    return tuple(entries)


def origin_url(git: Git, root: Path) -> str:
    """The URL of a clone's `origin` remote, as configured ("" when it has none): read from its
    own config file when that holds it plainly, else asked of `git config`."""
    facts = look_at(git, root)
    plain = _plain_origin(facts.config) if facts.config is not None else None
    if plain is not None:
        return plain
    return git.probe(["config", "--get", "remote.origin.url"], cwd=root).out.strip()


def sparse_checkout(git: Git, folder: Path) -> bool:
    """Whether the repository uses sparse checkout (then git itself marks the files it leaves
    out skip-worktree). Without a pattern file it cannot, and git is not asked."""
    facts = look_at(git, folder)
    if facts.toplevel and not facts.sparse_file:
        return False
    answer = git.probe(["config", "--bool", "core.sparseCheckout"], cwd=folder)
    return answer.out.strip() == "true"


_SECTION = r"\s*\[([^\]]*)\]\s*$"
_URL = "(?i)" r"\s*url\s*=\s*([^\s\"\\;#]+)\s*$"


def _plain_origin(config: Path) -> str | None:
    """`remote.origin.url` from a config file written the plain way git writes it; None when
    the file is not read that simply (includes, quoting, escapes, several values)."""
    try:
        text = config.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    section, urls = "", []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        header = re.fullmatch(_SECTION, line)
        if header:
            section = header[1].strip()
            if section.lower().startswith("include"):
                return None
            continue
        name = line.partition("=")[0].strip().lower()
        if re.fullmatch(r'(?i:remote)\s+"origin"', section) and name == "url":
            found = re.fullmatch(_URL, line)
            if found is None:
                return None
            urls.append(found[1])
    return urls[0] if len(urls) == 1 else None


def may_skip_worktree(git: Git, folder: Path) -> bool:
    """Whether any file of the repository can be marked skip-worktree. git writes its index in
    version 2 unless an entry needs the extended flags (skip-worktree among them), so a
    version 2 index without a split-off shared part has none: no need to list them."""
    facts = look_at(git, folder)
    if not facts.toplevel or facts.index_file is None:
        return True
    try:
        with open(facts.index_file, "rb") as index:
            header = index.read(8)
        shared = any(
            name.startswith("sharedindex.") for name in os.listdir(facts.index_file.parent)
        )
    except OSError:
        return True
    return shared or header[:4] != b"DIRC" or int.from_bytes(header[4:8], "big") != 2


def _submodule_paths(folder: Path) -> list[str]:
    """The submodule paths `.gitmodules` names (read as text: git reads it the same way),
    leaving out any git could take for an option or a revision range."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = (folder / ".gitmodules").read_text(encoding="utf-8")
        found = (path.strip('"').rstrip("/") for path in re.findall(_PATHS, text))
        return sorted({path for path in found if path and not path.startswith(("-", ":"))})
    return []

"""Files in a repository's git folder that the git cache writes as git would: the line files
`objects/info/alternates` and `shallow` (each replaced atomically), and a pack hard-linked in;
and reading a commit's parents without walking to them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mmlab_bootstrap.fs import UNLOCKED, is_inside, replace_atomically, sweep

# The temporaries of the files written here, by their on-disk names (see fs.temporary_beside):
LINES_TEMPORARY = "{name}.{pid}.{tid}.partial"  # alternates, shallow
PACK_TEMPORARY = ".{name}.{pid}.partial"  # a pack file copied in


def link_only_pack(source: Path, target: Path) -> bool:
    """When the cache repository's objects are one pack (one fetch made it: it holds that
    commit whole), give the workspace that pack: a hard link (a copy that costs no disk, and
    stays when the cache is deleted; git never changes a pack), else a copy. Whether it did."""
    packs = list((source / "pack").glob("pack-*.pack"))
    if len(packs) != 1 or any(len(p.name) == 2 for p in source.iterdir() if p.is_dir()):
        return False
    (target / "pack").mkdir(parents=True, exist_ok=True)
    sweep(target / "pack", PACK_TEMPORARY, rule=UNLOCKED)  # a killed copy's (see fs.temporaries)
    for suffix in (".pack", ".rev", ".idx"):  # the index last: git sees a pack by its index
        name = packs[0].with_suffix(suffix)
        if not name.exists():
            continue
        try:
            os.link(name, target / "pack" / name.name)
        except FileExistsError:
            continue
        except OSError:  # another filesystem, or another user's file (protected_hardlinks)
            replace_atomically(target / "pack" / name.name, name, template=PACK_TEMPORARY)
    return True


def lines_of(path: Path) -> list[str]:
    try:
        return path.read_text(errors="surrogateescape").splitlines()
    except FileNotFoundError:
        return []


def add_line(path: Path, line: str) -> None:
    """Add a line to one of git's line files (alternates, shallow), once, atomically."""
    lines = lines_of(path)
    if line not in lines:
        path.parent.mkdir(parents=True, exist_ok=True)
        _writelines_of(path, [*lines, line])


def drop_borrowing(gitdir: Path, cache: Path) -> None:
    """Take the cache's object folders out of a repository's alternates (after a repack gave
    it its own copy)."""
    alternates = gitdir / "objects" / "info" / "alternates"
    _writelines_of(
        alternates, [line for line in lines_of(alternates) if not is_inside(Path(line), cache)]
    )


def replace_borrowing(gitdir: Path, gone: Sequence[Path], objects: Path) -> None:
    """Borrow from `objects` instead of the object folders that are `gone`."""
    alternates = gitdir / "objects" / "info" / "alternates"
    dropped = {os.path.normpath(path) for path in gone}
    kept = [line for line in lines_of(alternates) if os.path.normpath(line) not in dropped]
    _writelines_of(alternates, kept)
    add_line(alternates, str(objects))


def _writelines_of(path: Path, lines: list[str]) -> None:
    """Replace a git line file atomically; remove it when no line is left."""
    if not lines:
        path.unlink(missing_ok=True)
        return
    sweep(path.parent, LINES_TEMPORARY, rule=UNLOCKED, name=path.name)  # a killed write's
    text = "".join(f"{line}\n" for line in lines)
    replace_atomically(path, text.encode("utf-8", "surrogateescape"), template=LINES_TEMPORARY)


def parent_ids(commit_text: str) -> list[str]:
    """The parents a commit object names (`git cat-file commit`), read without walking."""
    header = commit_text.partition("\n\n")[0]
    return [line[len("parent ") :] for line in header.splitlines() if line.startswith("parent ")]

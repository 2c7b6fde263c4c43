"""One temporary-beside-a-file + atomic replace (issue 22): fs.replace_atomically writes,
fsyncs, renames and fsyncs the folder for every whole-file writer (the env file, checkpoint
records, git's alternates/shallow and a copied pack in the git cache), each keeping its own
temporary name; and the leftover sweeps still recognise every name an older version left."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints.store import (
    RECORD_TEMPORARY,
    new_partial_name,
    record_path,
    remove_abandoned_partials,
)
from mmlab_bootstrap.fs import (
    remove_leftovers,
    remove_stale_temporaries,
    replace_atomically,
    temporary_beside,
)
from mmlab_bootstrap.fs.temporaries import TEMPORARY
from mmlab_bootstrap.gitcache.objectfiles import (
    LINES_TEMPORARY,
    PACK_TEMPORARY,
    add_line,
    drop_borrowing,
)

ROOT = Path(__file__).resolve().parent.parent


def test_replace_atomically_writes_bytes_or_a_copy_and_leaves_no_temporary(
    tmp_path: Path,
) -> None:
    tmp_path = tmp_path / "here"
    tmp_path.mkdir()
    target = tmp_path / "alternates"
    target.write_text("old\n")
    replace_atomically(target, b"new\n", template="{name}.{pid}.{tid}.partial")
    source = tmp_path / "pack-1.pack"
    source.write_bytes(b"PACK" * 1000)
    replace_atomically(tmp_path / "copied.pack", source, template=".{name}.{pid}.partial")
    assert target.read_text() == "new\n"
    assert (tmp_path / "copied.pack").read_bytes() == b"PACK" * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "alternates",
        "copied.pack",
        "pack-1.pack",
    ]


def test_a_failed_replace_removes_its_temporary_and_leaves_the_target(tmp_path: Path) -> None:
    tmp_path = tmp_path / "here"
    tmp_path.mkdir()
    target = tmp_path / "shallow"
    target.mkdir()
    (target / "inside").write_text("kept")  # a folder at the name: the rename fails
    with pytest.raises(OSError):
        replace_atomically(target, b"abc\n", template="{name}.{token}.partial")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shallow"]
    assert (target / "inside").read_text() == "kept"


def test_git_line_files_of_the_cache_are_replaced_whole(tmp_path: Path) -> None:
    """alternates and shallow (once written without fsync): whole, and no temporary left."""
    gitdir = tmp_path / "repo.git"
    alternates = gitdir / "objects" / "info" / "alternates"
    add_line(alternates, "/cache/a/objects")
    add_line(alternates, "/cache/a/objects")
    add_line(alternates, "/elsewhere/objects")
    assert alternates.read_text() == "/cache/a/objects\n/elsewhere/objects\n"
    drop_borrowing(gitdir, Path("/cache"))
    assert alternates.read_text() == "/elsewhere/objects\n"
    assert os.listdir(alternates.parent) == ["alternates"]


def _stale_record(folder: Path) -> Path:
    leftover = folder / ".model.pth.verified.json.tmp-0123abcd"
    leftover.write_text("{}")
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    return leftover


# Every temporary name an older version wrote, and the sweep that must still remove it when
# a killed run left it (names byte for byte: users' disks hold them).
LEFTOVERS: list[tuple[str, Callable[[Path], Path], Callable[[Path], object]]] = [
    (
        "write_atomically: .<name>.tmp-<8 hex>",
        lambda folder: folder / ".env.tmp-0123abcd",
        lambda folder: remove_stale_temporaries(folder / "env"),
    ),
    (
        "transfer copy: .<name>.mmlab-bootstrap-copy-<24 hex>",
        lambda folder: folder / f".data.mmlab-bootstrap-copy-{'ab' * 12}",
        lambda folder: remove_leftovers(folder, "data"),
    ),
    (
        "transfer link: .<name>.mmlab-bootstrap-link-<24 hex>",
        lambda folder: folder / f".data.mmlab-bootstrap-link-{'0f' * 12}",
        lambda folder: remove_leftovers(folder),
    ),
    (
        "upstream update: .<name>.mmlab-bootstrap-update-<24 hex>",
        lambda folder: folder / f".setup.py.mmlab-bootstrap-update-{'12' * 12}",
        lambda folder: remove_leftovers(folder, "setup.py"),
    ),
    (
        "checkpoint record: .<file>.verified.json.tmp-<8 hex>, over an hour old",
        _stale_record,
        lambda folder: remove_abandoned_partials(folder / "model.pth"),
    ),
    (
        "checkpoint download: .<file>.part-<8 hex>",
        lambda folder: folder / ".model.pth.part-89abcdef",
        lambda folder: remove_abandoned_partials(folder / "model.pth"),
    ),
]


@pytest.mark.parametrize(
    ("made", "sweep"), [row[1:] for row in LEFTOVERS], ids=[row[0] for row in LEFTOVERS]
)
def test_the_sweeps_recognise_every_name_an_older_version_left(
    tmp_path: Path, made: Callable[[Path], Path], sweep: Callable[[Path], object]
) -> None:
    (tmp_path / "model.pth").write_bytes(b"weights")
    user = [tmp_path / name for name in ("env", "data", ".env.tmp-nothex!", ".model.pth.part")]
    for path in user:
        path.write_text("a user's")
    leftover = made(tmp_path)
    if not leftover.exists():
        leftover.write_text("left by a killed run")
    sweep(tmp_path)
    assert not leftover.exists()
    assert all(path.read_text() == "a user's" for path in user)


def test_the_writers_still_make_those_names(tmp_path: Path) -> None:
    final = tmp_path / "model.pth"
    assert record_path(final).name == ".model.pth.verified.json"
    assert re.fullmatch(r"\.model\.pth\.part-[0-9a-f]{8}", new_partial_name(final).name)


def test_whole_files_are_replaced_only_through_the_one_helper() -> None:
    """os.replace of a written file lives in fs/ (files, transfer); the links' own renames
    (a symlink swapped in place, upstream's checked copy) are the only others."""
    users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "mmlab_bootstrap").rglob("*.py")
        if "os.replace(" in path.read_text()
    }
    assert users <= {
        "mmlab_bootstrap/fs/files.py",
        "mmlab_bootstrap/fs/transfer.py",
        "mmlab_bootstrap/links/swap.py",
        "mmlab_bootstrap/links/upstream_apply.py",
    }, users


def test_each_writer_keeps_its_temporary_name_byte_for_byte(tmp_path: Path) -> None:
    """The templates the writers pass make the very names older versions wrote (the sweeps
    above know them, and killed runs left them on users' disks)."""
    token = {"token": "0123abcd", "pid": 12, "tid": 34}
    assert TEMPORARY.format(name="env", **token) == ".env.tmp-0123abcd"
    record = record_path(tmp_path / "model.pth").name
    assert RECORD_TEMPORARY.format(name=record, **token) == ".model.pth.verified.json.tmp-0123abcd"
    assert LINES_TEMPORARY.format(name="shallow", **token) == "shallow.12.34.partial"
    assert PACK_TEMPORARY.format(name="pack-1.idx", **token) == ".pack-1.idx.12.partial"
    made = temporary_beside(tmp_path / "env", TEMPORARY)
    assert made.parent == tmp_path and re.fullmatch(r"\.env\.tmp-[0-9a-f]{8}", made.name)
    assert remove_stale_temporaries(tmp_path / "env") == []
    made.write_text("left by a killed run")
    assert remove_stale_temporaries(tmp_path / "env") == [made]

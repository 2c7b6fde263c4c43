"""Adopting at dataset scale keeps every rule the slow way kept (issue 15).

The fast clash check (one listing per target folder, nothing at all for an empty target) is
compared with the per-file check it replaced on random trees, and shown to refuse a single
clash hidden among many files; `move_tree` still merges, refuses and moves symlinks as links;
across filesystems a sparse file keeps its holes. Trees stay small: the 200 000-file runs
are `bench/adopt_bench.py`'s.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.fs.move import move_tree
from mmlab_bootstrap.fs.transfer import LEFTOVER, TransferError, copy_verified, same_file_content
from mmlab_bootstrap.fs.walking import walk
from mmlab_bootstrap.links.clashes import clashes_in_target
from mmlab_bootstrap.links.location import Location, in_target

from .conftest import Cloned, assert_clean_error, folder_outside, inv, scaled, snapshot

MIB = 1 << 20


@pytest.fixture
def other_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on another filesystem than the test's own (a tmpfs under /dev/shm)."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here")
    folder = folder_outside("mmlab-adopt-scale-", "/dev/shm")
    try:
        if os.stat(folder).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("/dev/shm is on the test's own filesystem")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- sparse files -------------------------------------------------------------------------


def write_sparse(path: Path, size: int, pieces: dict[int, bytes]) -> int:
    """A file of `size` bytes holding `pieces` at their offsets and holes elsewhere; returns
    the bytes it has allocated (skips where the filesystem fills holes)."""
    with open(path, "wb") as handle:
        for offset, data in pieces.items():
            handle.seek(offset)
            handle.write(data)
        handle.truncate(size)
    allocated = os.lstat(path).st_blocks * 512
    if size >= MIB and allocated * 4 > size:
        pytest.skip(f"{path.parent} does not keep holes")
    return allocated


def assert_reads_as(path: Path, size: int, pieces: dict[int, bytes]) -> None:
    """The file's bytes are the pieces at their offsets and zeros everywhere else."""
    assert os.lstat(path).st_size == size
    with open(path, "rb") as handle:
        position = 0
        for offset, data in sorted(pieces.items()):
            gap = handle.read(offset - position)
            assert gap == bytes(len(gap)) and len(gap) == offset - position
            assert handle.read(len(data)) == data
            position = offset + len(data)
        rest = handle.read()
        assert rest == bytes(size - position)


SPARSE = {
    # name: (size, {offset: bytes})
    "volume.img": (64 * MIB, {0: os.urandom(65536), 40 * MIB: os.urandom(4096)}),
    "ends-with-data.img": (32 * MIB, {32 * MIB - 8192: os.urandom(8192)}),
    "all-hole.img": (16 * MIB, {}),
    "small.bin": (10, {0: b"0123456789"}),
}


def test_sparse_files_stay_sparse_across_filesystems(cloned: Cloned, other_disk: Path) -> None:
    """`--adopt` to another filesystem copies the data extents only: the target allocates
    what the source did (not the holes), and every file reads the same (holes as zeros)."""
    location = cloned.ext / "mmdetection" / "data"
    (location / "volumes").mkdir(parents=True)
    allocated = {
        name: write_sparse(location / "volumes" / name, size, pieces)
        for name, (size, pieces) in SPARSE.items()
    }
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(other_disk))
    assert run.code == 0, run.err
    assert "to another filesystem" in run.out
    target = other_disk / "mmdetection" / "data" / "volumes"
    for name, (size, pieces) in SPARSE.items():
        assert_reads_as(target / name, size, pieces)
        assert os.lstat(target / name).st_blocks * 512 <= allocated[name] * 1.1 + 4096, name
    assert os.readlink(location) == str(other_disk / "mmdetection" / "data")


def test_a_verified_copy_keeps_holes(tmp_path: Path, other_disk: Path) -> None:
    """`copy_verified` (tracked files, carried files) keeps holes too, mode and time with them."""
    size, pieces = SPARSE["volume.img"]
    source = tmp_path / "volume.img"
    allocated = write_sparse(source, size, pieces)
    os.chmod(source, 0o640)
    os.utime(source, ns=(1_000_000_000, 2_000_000_000))
    copy = other_disk / "deep" / "er" / "volume.img"
    copied = copy_verified(source, copy)
    assert copied.st_ino == os.lstat(source).st_ino
    assert_reads_as(copy, size, pieces)
    assert os.lstat(copy).st_blocks * 512 <= allocated * 1.1 + 4096
    assert stat.S_IMODE(os.lstat(copy).st_mode) == 0o640
    assert os.lstat(copy).st_mtime_ns == 2_000_000_000
    assert sorted(os.listdir(copy.parent)) == ["volume.img"]  # no temporary left


# --- the clash check ----------------------------------------------------------------------


def reference_clashes(location: Location, files: tuple[str, ...]) -> list[str]:
    """The check as it was: for every file an existence check and a walk up to the target."""
    clashes = []
    for relative in files:
        source, destination = location.project_dir / relative, in_target(location, relative)
        if os.path.lexists(destination):
            if not same_file_content(source, destination):
                clashes.append(relative)
        elif reference_blocked(destination.parent, location.target):
            clashes.append(relative)
    if location.link.is_dir() and not location.link.is_symlink():
        for folder, dirs, _ in walk(location.link):
            for name in dirs:
                relative = os.path.relpath(os.path.join(folder, name), location.project_dir)
                destination = in_target(location, relative)
                if os.path.lexists(destination) and (
                    destination.is_symlink() or not destination.is_dir()
                ):
                    clashes.append(relative + "/")
    return clashes


def reference_blocked(folder: Path, target: Path) -> bool:
    while folder != target and target in folder.parents:
        if os.path.lexists(folder) and (folder.is_symlink() or not folder.is_dir()):
            return True
        folder = folder.parent
    return False


KINDS = st.sampled_from(["x", "y", "dir", "link:x", "link:/nonexistent", "link-to-a"])
TREE_PATHS = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map("/".join)
TREE = st.dictionaries(TREE_PATHS, KINDS, max_size=8)


def build(root: Path, tree: dict[str, str], target: Path) -> None:
    """Make what `tree` says under `root`: files (their bytes), folders and symlinks, with the
    folders above them; a path below something that is not a folder is left out."""
    root.mkdir(parents=True, exist_ok=True)
    for relative in sorted(tree, key=lambda path: (path.count("/"), path)):
        *folders, name = relative.split("/")
        parent = root
        for folder in folders:
            parent = parent / folder
            if not os.path.lexists(parent):
                parent.mkdir()
            elif parent.is_symlink() or not parent.is_dir():
                break
        else:
            path, kind = parent / name, tree[relative]
            if os.path.lexists(path):
                continue
            if kind == "dir":
                path.mkdir()
            elif kind == "link-to-a":
                path.symlink_to(target / "a")  # into the target: a folder there, or a file
            elif kind.startswith("link:"):
                path.symlink_to(kind[5:])
            else:
                path.write_bytes(kind.encode())


def location_in(base: Path) -> Location:
    return Location("p", "MMLAB_DATASET_PATH", base / "ext" / "p" / "data",
                    base / "storage" / "p" / "data")  # fmt: skip


def files_of(location: Location) -> tuple[str, ...]:
    if not location.link.is_dir():
        return ()
    found = [
        os.path.relpath(entry.path, location.project_dir)
        for _, _, entries in walk(location.link)
        for entry in entries
    ]
    return tuple(sorted(found))


@settings(
    max_examples=scaled(150, 1000),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(here={"a/b": "x"}, there={"a": "x"}, subset=False, target_exists=True)
@example(here={"a": "dir"}, there={"a": "link-to-a"}, subset=False, target_exists=True)
@example(here={"b/c": "x"}, there={"a": "dir", "b": "link-to-a", "a/c": "y"}, subset=False,
         target_exists=True)  # fmt: skip
@example(here={"a/b/c": "x"}, there={"a/b": "dir"}, subset=True, target_exists=True)
@given(here=TREE, there=TREE, subset=st.booleans(), target_exists=st.booleans())
def test_the_fast_clash_check_finds_what_the_per_file_check_found(
    tmp_path: Path, here: dict[str, str], there: dict[str, str], subset: bool, target_exists: bool
) -> None:
    """On any pair of small trees (files of two contents, folders, symlinks to files, folders
    and nowhere, in both), the same clashes in the same order as the check it replaced."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as name:
        location = location_in(Path(name))
        build(location.link, here, location.target)
        if target_exists:
            build(location.target, there, location.target)
        files = files_of(location)
        if subset:  # `--backup` checks the tracked files only
            files = files[::2]
        assert clashes_in_target(location, files) == reference_clashes(location, files)


def test_one_clash_among_many_is_refused(cloned: Cloned) -> None:
    """A target already holding most of the files (a resumed adopt: same bytes, no clash) and
    one file of other content deep inside, one file where a folder must go and one folder
    where a file is: all three are named, nothing moves."""
    location = cloned.ext / "mmdetection" / "data"
    target = cloned.data / "mmdetection" / "data"
    for number in range(300):
        relative = f"set{number % 3}/part{number % 7}/{number:04d}.bin"
        for root in (location, target):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(b"%d" % number)
    (location / "set1/part3/clash.bin").write_bytes(b"mine")
    (target / "set1/part3/clash.bin").write_bytes(b"other")
    (location / "set2/part0/inner").mkdir()
    (location / "set2/part0/inner/x.bin").write_bytes(b"x")
    (target / "set2/part0/inner").write_bytes(b"a file where a folder must go")
    (location / "set0/part1/name").write_bytes(b"a file where the target has a folder")
    (target / "set0/part1/name").mkdir()
    before = snapshot(cloned.ext, cloned.data)
    run = inv(cloned.root, "link-data", "--adopt")
    assert_clean_error(run, "nothing changed")
    refusal = next(line for line in run.out.splitlines() if "mmdetection/data" in line)
    assert "4 file(s) already in the target" in refusal, refusal
    names = (
        "set1/part3/clash.bin",
        "set2/part0/inner/x.bin",
        "set0/part1/name",
        "set2/part0/inner/",
    )
    for name in names:
        assert f"data/{name}" in refusal, (name, refusal)
    assert snapshot(cloned.ext, cloned.data) == before


def test_a_target_sharing_no_name_is_merged(cloned: Cloned) -> None:
    """A non-empty target whose top level shares no name with the location: no clash, the
    location's folders are moved in beside what is there."""
    location = cloned.ext / "mmdetection" / "data"
    target = cloned.data / "mmdetection" / "data"
    (location / "kitti").mkdir(parents=True)
    (location / "kitti" / "a.bin").write_bytes(b"a")
    (target / "coco").mkdir(parents=True)
    (target / "coco" / "b.bin").write_bytes(b"b")
    run = inv(cloned.root, "link-data", "--adopt")
    assert run.code == 0, run.err
    assert (target / "kitti" / "a.bin").read_bytes() == b"a"
    assert (target / "coco" / "b.bin").read_bytes() == b"b"
    assert location.is_symlink()


# --- move_tree ----------------------------------------------------------------------------


def make_source(source: Path) -> None:
    (source / "whole" / "deeper").mkdir(parents=True)
    (source / "whole" / "deeper" / "f.bin").write_bytes(b"f")
    (source / "merge").mkdir()
    (source / "merge" / "new.bin").write_bytes(b"new")
    (source / "merge" / "same.bin").write_bytes(b"same")
    (source / "merge" / "empty").mkdir()
    (source / "merge" / "link").symlink_to("../whole")
    (source / "top.bin").write_bytes(b"top")
    os.chmod(source / "top.bin", 0o604)


def check_moved(target: Path) -> None:
    assert (target / "whole" / "deeper" / "f.bin").read_bytes() == b"f"
    assert (target / "merge" / "new.bin").read_bytes() == b"new"
    assert (target / "merge" / "same.bin").read_bytes() == b"same"
    assert (target / "merge" / "kept.bin").read_bytes() == b"kept"
    assert (target / "merge" / "empty").is_dir()
    assert os.readlink(target / "merge" / "link") == "../whole"
    assert stat.S_IMODE(os.lstat(target / "top.bin").st_mode) == 0o604


@pytest.mark.parametrize("across", [False, True], ids=["same-filesystem", "across-filesystems"])
def test_move_tree_merges_into_a_non_empty_target(
    tmp_path: Path, other_disk: Path, across: bool
) -> None:
    """Folders the target lacks move whole (renamed on one filesystem), folders it has are
    merged, a file with the same bytes there is accepted, symlinks move as links."""
    source = tmp_path / "source"
    make_source(source)
    target = (other_disk if across else tmp_path) / "target"
    (target / "merge").mkdir(parents=True)
    (target / "merge" / "kept.bin").write_bytes(b"kept")
    (target / "merge" / "same.bin").write_bytes(b"same")
    whole = os.lstat(source / "whole").st_ino
    move_tree(source, target, same_device=not across)
    check_moved(target)
    if not across:
        assert os.lstat(target / "whole").st_ino == whole  # renamed, not copied
    assert [entries for _, _, entries in walk(source)] == [[]] * len(list(walk(source)))
    leftovers = [
        e.path
        for _, _, entries in walk(target)
        for e in entries
        if LEFTOVER.fullmatch(os.path.basename(e.path))
    ]
    assert leftovers == []


@pytest.mark.parametrize("across", [False, True], ids=["same-filesystem", "across-filesystems"])
@pytest.mark.parametrize("shape", ["file-for-folder", "folder-for-file", "other-bytes"])
def test_move_tree_refuses_a_clash_and_loses_nothing(
    tmp_path: Path, other_disk: Path, across: bool, shape: str
) -> None:
    """What the plan refuses, `move_tree` refuses too, should the target change in between."""
    source = tmp_path / "source"
    target = (other_disk if across else tmp_path) / "target"
    (source / "a").mkdir(parents=True)
    (source / "a" / "f.bin").write_bytes(b"mine")
    target.mkdir()
    if shape == "file-for-folder":
        (target / "a").write_bytes(b"in the way")
    else:
        (target / "a").mkdir()
        if shape == "folder-for-file":
            (target / "a" / "f.bin").mkdir()
        else:
            (target / "a" / "f.bin").write_bytes(b"theirs")
    with pytest.raises(TransferError, match=r"in the way|other content"):
        move_tree(source, target, same_device=not across)
    assert (source / "a" / "f.bin").read_bytes() == b"mine"


def test_move_tree_refuses_a_special_file_and_keeps_it(tmp_path: Path, other_disk: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    os.mkfifo(source / "pipe")
    (other_disk / "target").mkdir()
    with pytest.raises(TransferError, match="FIFO"):
        move_tree(source, other_disk / "target", same_device=False)
    assert stat.S_ISFIFO(os.lstat(source / "pipe").st_mode)
    assert os.listdir(other_disk / "target") == []


def test_many_files_across_filesystems_in_several_batches(tmp_path: Path, other_disk: Path) -> None:
    """More files in one folder than one batch: every one arrives with its bytes, none stays."""
    source = tmp_path / "source"
    source.mkdir()
    for number in range(150):
        (source / f"{number:03d}.bin").write_bytes(os.urandom(number))
    wanted = {p.name: p.read_bytes() for p in source.iterdir()}
    move_tree(source, other_disk, same_device=False)
    assert {p.name: p.read_bytes() for p in other_disk.iterdir()} == wanted
    assert os.listdir(source) == []

"""Linking on unusual or hostile filesystem state loses no byte (issue 10: 1-3, 8-10, 12, 16).

Each test runs the real `inv` on a real clone; cross-filesystem cases use a tmpfs mount
(skipped where mounting is not allowed).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmlab_bootstrap.fs.transfer import TransferError, copy_verified
from mmlab_bootstrap.fs.walking import walk
from mmlab_bootstrap.links.location import Location, link_destination, resolves

from .conftest import REPO_ROOT, Cloned, assert_clean_error, folder_outside, inv, mount
from .lib.linkshapes import TRACKED, assert_clean_git

TRACKED_DATA = TRACKED["data"]


def tree(*roots: Path) -> dict[str, tuple[str, object]]:
    """Every entry under `roots` by type (bytes, link text, mode of a special), at any depth,
    never opening anything but regular files."""
    found: dict[str, tuple[str, object]] = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        if os.path.islink(root):
            found[str(root)] = ("link", os.readlink(root))
            continue
        for folder, dirs, entries in walk(root):
            for name in dirs:
                found[os.path.join(folder, name)] = ("dir", None)
            for entry in entries:
                if stat.S_ISLNK(entry.mode):
                    found[entry.path] = ("link", os.readlink(entry.path))
                elif stat.S_ISREG(entry.mode):
                    found[entry.path] = ("file", Path(entry.path).read_bytes())
                else:
                    found[entry.path] = ("special", stat.S_IFMT(entry.mode))
    return found


def everything(cloned: Cloned) -> dict[str, tuple[str, object]]:
    return tree(cloned.ext / "mmdetection" / "data", cloned.ext / "mmdetection3d" / "data",
                cloned.ext / "mmdetection3d", cloned.data)  # fmt: skip


# --- 1. a file still being written is never removed half-copied -----------------------------

WRITER = """
import sys, time
with open(sys.argv[1], "a") as out:
    for number in range(int(sys.argv[2])):
        out.write(f"line {number}\\n")
        out.flush()
        time.sleep(0.001)
"""
# The writer runs ~1.6 s; the move is tried once 2000 bytes (~200 lines) are written, so the
# writer goes on for more than a second while the run copies and checks the file.
WRITTEN_LINES = 1500


def test_adopt_across_filesystems_never_removes_a_file_being_written(
    cloned: Cloned, tmp_path: Path, mounts: list[Path]
) -> None:
    """A writer appends while --adopt copies across filesystems: the run refuses that file
    (it is open for writing / changed), every line survives, and a re-run afterwards moves
    the whole file."""
    storage = tmp_path / "tmpfs"
    mount(mounts, storage, "size=64m")
    location = cloned.ext / "mmdetection3d" / "data"
    log = location / "train.log"
    log.write_text("")
    lines = WRITTEN_LINES
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(lines)])
    try:
        while log.stat().st_size < 2000:
            time.sleep(0.01)
        run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    finally:
        writer.wait(timeout=60)
    target = storage / "mmdetection3d" / "data"
    wanted = "".join(f"line {n}\n" for n in range(lines))
    copies = [p.read_text() for p in (log, target / "train.log") if p.exists()]
    assert wanted in copies, (run.out, run.err)
    assert_clean_error(run, "train.log")
    assert "writ" in run.err  # "open for writing" or "kept changing while it was copied"
    again = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert again.code == 0, again.err
    assert (target / "train.log").read_text() == wanted
    assert log.read_text() == wanted  # through the link


MOVER = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from mmlab_bootstrap.fs.transfer import TransferError
from mmlab_bootstrap.fs.move import move_file
try:
    move_file(Path(sys.argv[2]), Path(sys.argv[3]))
except TransferError as error:
    print("refused:", error)
else:
    print("moved")
"""


def test_a_file_being_written_is_kept_for_an_unprivileged_user_too(
    mounts: list[Path],
) -> None:
    """The same protection without root: `nobody` moves its own file across filesystems
    while its own writer appends; the move is refused and every line stays."""
    python = Path("/usr/bin/python3")  # the test's own python may not be readable by nobody
    if shutil.which("setpriv") is None or not python.exists():
        pytest.skip("needs setpriv and /usr/bin/python3 to run as nobody")
    base = folder_outside("mmlab-nobody-move-", "/tmp")
    try:
        base.chmod(0o755)
        source, storage = base / "source", base / "storage"
        source.mkdir()
        mount(mounts, storage, "size=8m")
        for folder in (source, storage):
            os.chown(folder, 65534, 65534)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(python)]
        log = source / "train.log"
        writer = subprocess.Popen([*nobody, "-c", WRITER, str(log), str(WRITTEN_LINES)])
        try:
            while not log.exists() or log.stat().st_size < 2000:
                time.sleep(0.01)
            moved = subprocess.run(
                [*nobody, "-c", MOVER, str(REPO_ROOT), str(log), str(storage / "train.log")],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            writer.wait(timeout=60)
        assert moved.stdout.startswith("refused:"), (moved.stdout, moved.stderr)
        assert log.read_text() == "".join(f"line {n}\n" for n in range(WRITTEN_LINES))
        assert log.stat().st_uid == 65534
    finally:
        for point in reversed(mounts):
            subprocess.run(["umount", "-l", str(point)], check=False)
        mounts.clear()
        shutil.rmtree(base)


def test_a_copy_is_durable_and_its_temporary_is_removed_on_failure(
    tmp_path: Path, mounts: list[Path]
) -> None:
    """copy_verified into a full disk fails cleanly: no temporary is left, the source stays."""
    small = tmp_path / "small"
    mount(mounts, small, "size=1m")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3_000_000))
    with pytest.raises(OSError):
        copy_verified(source, small / "big.bin")
    assert os.listdir(small) == []
    assert source.stat().st_size == 3_000_000


# --- 2. temporary names never collide with user files ------------------------------------------


def test_files_named_like_temporaries_survive(
    cloned: Cloned, tmp_path: Path, mounts: list[Path]
) -> None:
    """A user's `.model.pth.mmlab-bootstrap-copy` beside `model.pth` (moved across
    filesystems), `.train.txt.mmlab-bootstrap-copy` in storage and `.data.mmlab-bootstrap-link`
    beside the location all keep their bytes."""
    storage = tmp_path / "tmpfs"
    mount(mounts, storage, "size=64m")
    project = cloned.ext / "mmdetection3d"
    location = project / "data"
    (location / "model.pth").write_bytes(b"the model")
    (location / ".model.pth.mmlab-bootstrap-copy").write_bytes(b"my own notes")
    (project / ".data.mmlab-bootstrap-link").write_bytes(b"not a link")
    target = storage / "mmdetection3d" / "data"
    (target / "lyft").mkdir(parents=True)
    (target / "lyft" / ".train.txt.mmlab-bootstrap-copy").write_bytes(b"mine too")
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert run.code == 0, run.err
    assert (target / "model.pth").read_bytes() == b"the model"
    assert (target / ".model.pth.mmlab-bootstrap-copy").read_bytes() == b"my own notes"
    assert (target / "lyft" / ".train.txt.mmlab-bootstrap-copy").read_bytes() == b"mine too"
    assert (project / ".data.mmlab-bootstrap-link").read_bytes() == b"not a link"
    users = {
        str(target / ".model.pth.mmlab-bootstrap-copy"),
        str(target / "lyft" / ".train.txt.mmlab-bootstrap-copy"),
        str(project / ".data.mmlab-bootstrap-link"),
    }
    made = [p for p in tree(storage, project) if "mmlab-bootstrap-" in p and p not in users]
    assert made == []  # and no temporary of the tool's is left behind


# --- 3. devices, FIFOs and sockets are refused while planning ------------------------------------


def make_specials(folder: Path) -> list[str]:
    """A FIFO, a socket and (where allowed) a character device; the names made."""
    os.mkfifo(folder / "pipe")
    made = ["pipe"]
    binding = "import socket; socket.socket(socket.AF_UNIX).bind('sock')"  # short path
    subprocess.run([sys.executable, "-c", binding], cwd=folder, check=True)
    made.append("sock")
    try:
        os.mknod(folder / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made.append("null")
    except PermissionError:
        pass  # not root, or a container without mknod: the other two still count
    return made


@pytest.mark.parametrize("way", [(), ("--adopt",), ("--backup",)], ids=["plain", "adopt", "backup"])
def test_special_files_are_refused_before_anything_moves(
    cloned: Cloned, tmp_path: Path, mounts: list[Path], way: tuple[str, ...]
) -> None:
    """Each special file is named; nothing changes (no copy, no temporary, no endless read)."""
    storage = tmp_path / "tmpfs"
    mount(mounts, storage, "size=8m")
    location = cloned.ext / "mmdetection3d" / "data"
    (location / "kitti").mkdir()
    (location / "kitti" / "a.bin").write_bytes(b"a" * 1000)
    made = make_specials(location / "kitti")
    before = tree(cloned.ext / "mmdetection3d", storage)
    run = inv(cloned.root, "link-data", *way, "--dataset-path", str(storage))
    assert_clean_error(run, "refused; nothing changed")
    for name in made:
        assert f"data/kitti/{name}" in run.out, run.out
    assert "FIFO" in run.out and "socket" in run.out
    assert "move the named files out of the way" in run.err  # not "--backup or --adopt"
    assert tree(cloned.ext / "mmdetection3d", storage) == before


def test_copying_a_special_file_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    """The copy itself also refuses a FIFO (never blocks on it) and leaves no temporary."""
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "out").mkdir()
    with pytest.raises(TransferError, match="FIFO"):
        copy_verified(tmp_path / "pipe", tmp_path / "out" / "pipe")
    assert os.listdir(tmp_path / "out") == []


# --- 8. a dataset symlink inside data/ is user content ------------------------------------------


@pytest.fixture
def coco(cloned: Cloned, tmp_path: Path) -> Path:
    """`data/coco -> /mnt/coco` in mmdetection3d, beside its tracked files."""
    mounted = tmp_path / "mnt" / "coco"
    (mounted / "train2017").mkdir(parents=True)
    (mounted / "train2017" / "0001.jpg").write_bytes(b"jpeg")
    (cloned.ext / "mmdetection3d" / "data" / "coco").symlink_to(mounted)
    return mounted


def test_a_dataset_symlink_is_refused_by_default_and_counted_by_status(
    cloned: Cloned, coco: Path
) -> None:
    before = everything(cloned)
    run = inv(cloned.root, "link-data")
    assert_clean_error(run, "refused; nothing changed")
    assert "holds 1 file(s) of yours" in run.out
    assert everything(cloned) == before
    status = json.loads(inv(cloned.root, "status", "--json").out)
    blocked = [link for link in status["links"] if link["location"].endswith("mmdetection3d/data")]
    assert blocked[0]["state"] == "blocked"
    assert blocked[0]["files"] == len(TRACKED_DATA) + 1


def test_a_dataset_symlink_is_renamed_aside_with_backup(cloned: Cloned, coco: Path) -> None:
    mounted = tree(coco)
    run = inv(cloned.root, "link-data", "--backup")
    assert run.code == 0, run.err
    project = cloned.ext / "mmdetection3d"
    (backup,) = [p for p in project.iterdir() if p.name.startswith("data.bak-")]
    assert os.readlink(backup / "coco") == str(coco)
    assert tree(coco) == mounted
    assert_clean_git(cloned)
    assert inv(cloned.root, "unlink", "--data").code == 0
    assert os.readlink(project / "data" / "coco") == str(coco)


@pytest.mark.parametrize("across", [False, True], ids=["same-filesystem", "across-filesystems"])
def test_a_dataset_symlink_moves_as_a_link_with_adopt(
    cloned: Cloned, coco: Path, tmp_path: Path, mounts: list[Path], across: bool
) -> None:
    """Moved as a link: never followed, never copied through; the tracked files too."""
    storage = tmp_path / "tmpfs"
    if across:
        mount(mounts, storage, "size=8m")
    mounted = tree(coco)
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert run.code == 0, run.err
    target = storage / "mmdetection3d" / "data"
    assert os.readlink(target / "coco") == str(coco)
    assert tree(coco) == mounted
    for relative, data in TRACKED_DATA.items():
        assert (cloned.ext / "mmdetection3d" / relative).read_bytes() == data
    assert_clean_git(cloned)
    again = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert again.code == 0 and "already linked" in again.out


# --- 9. relative links from a workspace reached through a symlinked path -------------------------


def test_a_link_that_would_not_resolve_is_found_while_planning(tmp_path: Path) -> None:
    """The check planning and linking use: a relative path taken naively through a symlinked
    folder would not lead to the target; the one linking makes does."""
    real = tmp_path / "real" / "ext"
    (real / "proj").mkdir(parents=True)
    (tmp_path / "x" / "y").mkdir(parents=True)
    alias = tmp_path / "x" / "y" / "ext"
    alias.symlink_to(real)
    location = Location("proj", "MMLAB_DATASET_PATH", alias / "proj" / "data",
                        tmp_path / "storage" / "proj" / "data")  # fmt: skip
    naive = os.path.relpath(location.target, location.project_dir)
    assert not resolves(location, naive)
    assert resolves(location, link_destination(location, relative=True))
    assert resolves(location, link_destination(location, relative=False))


def test_relative_links_through_a_symlinked_path_resolve(cloned: Cloned, tmp_path: Path) -> None:
    """The extension is named through a symlink elsewhere: the relative link still leads to the
    target (checked right after it is made), and a second run finds it linked."""
    (tmp_path / "x" / "y").mkdir(parents=True)
    alias = tmp_path / "x" / "y" / "ext"
    alias.symlink_to(cloned.ext)
    run = inv(cloned.root, "link-data", "--relative", "--extension-path", str(alias))
    assert run.code == 0, run.err
    for project in ("mmdetection", "mmdetection3d"):
        link = cloned.ext / project / "data"
        assert not os.path.isabs(os.readlink(link))
        assert os.path.realpath(link) == os.path.realpath(cloned.data / project / "data")
    assert (cloned.ext / "mmdetection3d" / "data" / "lyft" / "train.txt").read_bytes() == (
        TRACKED_DATA["data/lyft/train.txt"]
    )
    again = inv(cloned.root, "link-data", "--relative", "--extension-path", str(alias))
    assert again.code == 0 and "relinked" not in again.out, again.out


# --- 10. a tree deeper than Python's recursion limit ---------------------------------------------

DEPTH = 1100


def deep_tree(base: Path) -> Path:
    """`base/d/d/…/d/leaf.bin`, DEPTH folders deep, made without recursion."""
    folder = base
    for _ in range(DEPTH):
        folder = folder / "d"
        os.mkdir(folder)
    (folder / "leaf.bin").write_bytes(b"deep")
    return folder / "leaf.bin"


def remove_deep(*roots: Path) -> None:
    """Remove trees without recursion (pytest's own clean-up of old temporary folders
    recurses, and would fail on a tree this deep)."""
    for root in roots:
        if os.path.lexists(root) and not os.path.islink(root):
            folders = []
            for folder, _, entries in walk(root):
                folders.append(folder)
                for entry in entries:
                    os.unlink(entry.path)
            for folder in reversed(folders):
                os.rmdir(folder)


@pytest.fixture
def deep_cleanup(cloned: Cloned, tmp_path: Path) -> Iterator[list[Path]]:
    """Folders a test fills with a very deep tree; removed afterwards, pass or fail."""
    roots: list[Path] = []
    yield roots
    remove_deep(*roots)


@pytest.mark.slow
@pytest.mark.parametrize("across", [False, True], ids=["same-filesystem", "across-filesystems"])
def test_a_very_deep_tree_works_everywhere(
    cloned: Cloned, tmp_path: Path, mounts: list[Path], across: bool, deep_cleanup: list[Path]
) -> None:
    storage = tmp_path / "tmpfs" if across else cloned.data
    if across:
        mount(mounts, storage, "size=64m")
    location = cloned.ext / "mmdetection" / "data"
    deep_cleanup += [location, storage / "mmdetection" / "data"]
    location.mkdir()
    leaf = deep_tree(location)
    status = inv(cloned.root, "status", "--json", env={"MMLAB_DATASET_PATH": str(storage)})
    assert status.code == 1 and "Traceback" not in status.err, status.err
    (found,) = [
        link for link in json.loads(status.out)["links"] if link["location"] == str(location)
    ]
    assert found["state"] == "blocked" and found["files"] == 1
    refused = inv(cloned.root, "link-data", "--dataset-path", str(storage))
    assert_clean_error(refused, "refused")
    run = inv(cloned.root, "bootstrap", "--adopt", "--dataset-path", str(storage))
    assert run.code == 0, run.err
    assert leaf.read_bytes() == b"deep"  # through the link
    assert os.path.islink(location)
    unlinked = inv(cloned.root, "unlink")
    assert unlinked.code == 0, unlinked.err


# --- 12. only backup names the tool makes count ---------------------------------------------------


def test_a_folder_named_almost_like_a_backup_is_not_one(cloned: Cloned) -> None:
    project = cloned.ext / "mmdetection"
    odd = project / "data.bak-20240101-000000-\u00b2"
    odd.mkdir()
    (odd / "keep.txt").write_bytes(b"keep")
    assert inv(cloned.root, "link-data").code == 0
    run = inv(cloned.root, "unlink", "--data")
    assert run.code == 0, run.err
    assert (odd / "keep.txt").read_bytes() == b"keep"
    assert not os.path.lexists(project / "data")


# --- 16. unlink's last line is true for each case ------------------------------------------------


def test_unlink_says_what_it_did(cloned: Cloned, tmp_path: Path) -> None:
    """Restored tracked files are named as restored; a plain link says where stored files stay."""
    assert inv(cloned.root, "link-data").code == 0
    (cloned.data / "mmdetection" / "data" / "mine.bin").write_bytes(b"mine")
    run = inv(cloned.root, "unlink", "--data")
    assert run.code == 0, run.err
    (with_tracked,) = [line for line in run.lines if "mmdetection3d/data" in line]
    assert f"restored {len(TRACKED_DATA)} tracked files" in with_tracked
    assert "your files stay" not in with_tracked
    (plain,) = [line for line in run.lines if "mmdetection/data" in line]
    assert f"files stored in {cloned.data / 'mmdetection' / 'data'} stay there" in plain
    for relative, data in TRACKED_DATA.items():
        assert (cloned.ext / "mmdetection3d" / relative).read_bytes() == data


def test_an_adopt_killed_after_copying_a_file_is_resumed(
    cloned: Cloned, tmp_path: Path, mounts: list[Path]
) -> None:
    """Across filesystems, a run killed between copying a file and removing the original
    leaves it in both places; the next run checks the bytes are the same, removes the
    original and links (what the kill storm meets at random, here every time)."""
    storage = tmp_path / "tmpfs"
    mount(mounts, storage, "size=8m")
    location = cloned.ext / "mmdetection" / "data"
    (location / "sub").mkdir(parents=True)
    (location / "sub" / "copied.bin").write_bytes(b"copied before the kill")
    (location / "left.bin").write_bytes(b"not copied yet")
    target = storage / "mmdetection" / "data"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "copied.bin").write_bytes(b"copied before the kill")
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert run.code == 0, run.err
    assert location.is_symlink() and location.resolve() == target
    assert (target / "sub" / "copied.bin").read_bytes() == b"copied before the kill"
    assert (target / "left.bin").read_bytes() == b"not copied yet"


def test_a_killed_adopts_temporary_is_removed_when_backup_finishes_the_link(
    cloned: Cloned, mounts: list[Path], tmp_path: Path
) -> None:
    """A SIGKILL in the middle of a cross-filesystem copy leaves a temporary in the target;
    when a `--backup` run then finishes the link, no later run moves into that folder, so the
    finishing run removes it (found by the kill storm, at random)."""
    storage = tmp_path / "tmpfs"
    mount(mounts, storage, "size=512m")
    location = cloned.ext / "mmdetection" / "data"
    (location / "sub").mkdir(parents=True)
    (location / "sub" / "big.bin").write_bytes(os.urandom(1 << 20) * 200)
    target_sub = storage / "mmdetection" / "data" / "sub"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "inv"), "link-data", "--adopt",
         "--dataset-path", str(storage)],
        cwd=cloned.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def copying() -> bool:
        names = os.listdir(target_sub) if target_sub.is_dir() else []
        return any(".mmlab-bootstrap-copy-" in name for name in names)

    deadline, landed = time.monotonic() + 60, False
    while time.monotonic() < deadline and process.poll() is None:
        if copying():
            process.kill()
            landed = True
            break
    process.wait(timeout=60)
    if not landed:
        pytest.skip("the copy finished before a kill could land in it")
    assert copying()
    run = inv(cloned.root, "link-data", "--backup", "--dataset-path", str(storage))
    assert run.code == 0, run.err
    assert not copying()
    backups = [n for n in os.listdir(location.parent) if n.startswith("data.bak-")]
    assert len(backups) == 1
    assert (location.parent / backups[0] / "sub" / "big.bin").stat().st_size == 200 << 20

"""Storage roots that are not what they seem (issue 20, points 15-17): a disk with room for
the bytes but not for the blocks or inodes they take, a mount point with nothing mounted on
it, and symlinks inside a storage root that lead elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmlab_bootstrap.settings.storage import fstab_mount_points

from .conftest import Cloned, assert_clean_error, folder_outside, inv, mount, snapshot

# --- room on the target: blocks and inodes, not bytes ----------------------------------------


def small_files(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"f{number:05d}.bin").write_bytes(bytes([number % 251]) * size)


@pytest.mark.parametrize(
    ("options", "count", "size", "short"),
    [
        # 4.5 MB of bytes fit in 5 MiB, but 1 500 files take 1 500 blocks of 4 KiB (6.1 MB)
        ("size=5m", 1500, 3000, "free"),
        # the bytes and blocks fit; 200 files need 200 inodes and the disk has 100
        ("size=8m,nr_inodes=100", 200, 100, "inodes"),
    ],
    ids=["blocks", "inodes"],
)
def test_adopt_is_refused_when_blocks_or_inodes_do_not_fit(
    cloned: Cloned, mounts: list[Path], options: str, count: int, size: int, short: str
) -> None:
    storage = cloned.root / "small"
    mount(mounts, storage, options)
    location = cloned.ext / "mmdetection" / "data"
    small_files(location / "set", count, size)
    before = snapshot(cloned.ext, storage)
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert_clean_error(run, "refused", "nothing changed")
    assert "needs" in run.err and short in run.err, run.err
    assert snapshot(cloned.ext, storage) == before  # nothing copied, not even a folder


def test_adopt_that_fits_in_blocks_goes_through(cloned: Cloned, mounts: list[Path]) -> None:
    """The block count refuses only what does not fit: 1 000 files of 3 000 B (4.1 MB in
    4 KiB blocks) go onto an 8 MiB disk."""
    storage = cloned.root / "roomy"
    mount(mounts, storage, "size=8m")
    location = cloned.ext / "mmdetection" / "data"
    small_files(location / "set", 1000, 3000)
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert run.code == 0, run.err
    assert len(os.listdir(storage / "mmdetection" / "data" / "set")) == 1000


# --- a storage root on the system disk, where a disk should be mounted -----------------------


@pytest.fixture
def media(mounts: list[Path]) -> Iterator[Path]:
    """An empty folder directly under /media on the system disk (where a disk would be
    mounted), removed afterwards with whatever a test mounted in it."""
    try:
        folder = folder_outside("mmlab-test-", "/media")
    except OSError as error:
        pytest.skip(f"cannot make a folder in /media: {error}")
    try:
        if os.stat(folder).st_dev != os.stat("/").st_dev:
            pytest.skip("/media is not on the filesystem of /")
        yield folder
    finally:
        for point in reversed(mounts):
            if folder in point.parents or point == folder:
                subprocess.run(["umount", "-l", str(point)], check=False)
                mounts.remove(point)
        shutil.rmtree(folder, ignore_errors=True)


def unmounted_warnings(run_err: str) -> list[str]:
    return [line for line in run_err.splitlines() if "is on the system disk" in line]


def test_adopting_onto_an_unmounted_disk_warns_then_status_sees_the_disk_mounted_over_it(
    cloned: Cloned, media: Path, mounts: list[Path], tmp_path: Path
) -> None:
    """Linked while nothing is mounted on /media/X: a warning (once, though layout and
    linking both look); a disk mounted there afterwards hides what was stored: status warns
    the device changed; the next link run warns too and records the new filesystem."""
    root = media / "mmlab"
    flags = ("--dataset-path", str(root))
    location = cloned.ext / "mmdetection" / "data"
    small_files(location, 3, 10)
    run = inv(cloned.root, "bootstrap", "--adopt", *flags)
    assert run.code == 0, run.err
    [warning] = unmounted_warnings(run.err)
    assert f"in '{media}', a folder directly under /media" in warning
    assert "MMLAB_REQUIRE_MOUNT=1" in warning
    assert (root / "mmdetection" / "data" / "f00000.bin").is_file()  # on the system disk
    assert unmounted_warnings(inv(cloned.root, "status").err)  # (.env names the root now)

    mount(mounts, media, "size=1m")  # the data disk, mounted at last
    status = inv(cloned.root, "status", "--json")
    found = json.loads(status.out)
    moved = {link["location"]: link["moved"] for link in found["links"] if link["moved"]}
    assert sorted(moved) == [f"{cloned.ext}/{p}/data" for p in ("mmdetection", "mmdetection3d")]
    text = moved[f"{cloned.ext}/mmdetection/data"]
    assert f"{root}/mmdetection/data is on another filesystem" in text
    assert text in found["warnings"]
    assert not any("is on the system disk" in warning for warning in found["warnings"])
    shown = inv(cloned.root, "status")
    assert any("is on another filesystem" in line for line in shown.err.splitlines()), shown.err

    hidden = inv(cloned.root, "link-data")  # adopted tracked files are not in the new root
    assert hidden.code == 1 and "refused; nothing changed" in hidden.err, hidden.err
    assert f"hidden under it; to get it, unmount {media}," in hidden.err

    # What the warning asks for: the files stored under the mount point, moved onto the disk.
    subprocess.run(["umount", str(media)], check=True)
    mounts.remove(media)
    aside = tmp_path / "aside"
    shutil.move(root, aside)
    mount(mounts, media, "size=1m")
    shutil.copytree(aside, root, symlinks=True)
    again = inv(cloned.root, "link-data")
    assert again.code == 0, again.err
    assert "is on another filesystem" in again.err  # said once more, then recorded
    assert f"recorded that {root}/mmdetection/data is on another filesystem now" in again.out
    after = json.loads(inv(cloned.root, "status", "--json").out)
    assert after["healthy"], after["problems"]
    assert not after["warnings"]
    assert (location / "f00000.bin").read_bytes() == bytes([0]) * 10


def test_a_new_storage_root_on_another_disk_is_no_device_change(
    cloned: Cloned, mounts: list[Path]
) -> None:
    """The device the journal recorded belongs to the target it was recorded for: moving
    the storage root onto another disk (a new target) is a relink, not "a disk mounted over
    the root", which neither linking nor status may claim; the relink records the new one."""
    assert inv(cloned.root, "link-data").code == 0
    bigdisk = cloned.root / "bigdisk"
    mount(mounts, bigdisk, "size=8m")
    assert inv(cloned.root, "env", "--dataset-path", str(bigdisk / "ds")).code == 0
    due = inv(cloned.root, "status", "--json")
    assert not [link["moved"] for link in json.loads(due.out)["links"] if link["moved"]]
    assert "is on another filesystem" not in due.err, due.err
    run = inv(cloned.root, "link-data")
    assert run.code == 0, run.err
    assert "is on another filesystem" not in run.err + run.out, run.err
    after = json.loads(inv(cloned.root, "status", "--json").out)
    assert not [link["moved"] for link in after["links"] if link["moved"]]
    assert not [text for text in after["warnings"] if "another filesystem" in text]


@pytest.mark.parametrize(
    ("layout", "root", "warned"),
    [
        # (what is in /media/X besides the way, the root below /media/X, a warning?)
        ((), "mmlab", True),
        ((), "", True),  # the root is /media/X itself
        (("a",), "a/mmlab", True),  # what it holds is the way to the root
        (("someone-elses.txt",), "mmlab", False),  # a folder in use, not a stand-in
        (("mmdetection",), "", True),  # at the root: only the project folders
        (("lost+found",), "", False),
        ("mounted", "mmlab", False),  # a disk is mounted there: all is well
    ],
    ids=["empty", "root-itself", "deep", "in-use", "projects-only", "other-folder", "mounted"],
)
def test_mount_point_stand_ins_table(
    workspace: Path,
    media: Path,
    mounts: list[Path],
    layout: tuple[str, ...] | str,
    root: str,
    warned: bool,
) -> None:
    if layout == "mounted":
        mount(mounts, media, "size=1m")
    else:
        for name in layout:
            (media / name).mkdir() if "." not in name else (media / name).write_text("x")
    storage = media / root if root else media
    run = inv(workspace, "layout", "--dataset-path", str(storage), "--projects", "mmdetection")
    assert run.code == 0, run.err
    assert bool(unmounted_warnings(run.err)) is warned, run.err
    required = inv(
        workspace,
        "layout",
        "--dataset-path",
        str(media / "other"),
        "--projects",
        "mmdetection",
        env={"MMLAB_REQUIRE_MOUNT": "1"},
    )
    if layout != "mounted":  # with MMLAB_REQUIRE_MOUNT=1 it is an error instead
        assert_clean_error(required, "is not on a mounted disk")


def test_a_storage_root_of_a_temporary_folder_is_not_warned(cloned: Cloned) -> None:
    run = inv(cloned.root, "layout")
    assert run.code == 0 and not unmounted_warnings(run.err), run.err


@pytest.mark.parametrize(
    ("text", "points"),
    [
        ("/dev/sdb1 /mnt/data ext4 defaults 0 2\n", {"/mnt/data"}),
        ("# /dev/sdc1 /mnt/old ext4\n\n  \t\n", set()),
        ("UUID=1 none swap sw 0 0\n", set()),
        ("srv:/x /mnt/my\\040disk nfs rw 0 0\n", {"/mnt/my disk"}),
        ("tmpfs /mnt/a/../b tmpfs rw 0 0\n", {"/mnt/b"}),
        ("onlyonefield\n", set()),
        ("/dev/x relative/path ext4\n", set()),
        ("\xff\xfe /mnt/\xff ext4\n", {"/mnt/\ufffd"}),
        ("/dev/x /mnt/y ext4\n" * 200_000, {"/mnt/y"}),  # read up to a limit
    ],
    ids=["plain", "comments", "swap", "octal-escape", "dots", "short", "relative", "bytes", "huge"],
)
def test_fstab_table(tmp_path: Path, text: str, points: set[str]) -> None:
    fstab = tmp_path / "fstab"
    fstab.write_bytes(text.encode("latin-1"))
    assert fstab_mount_points(fstab) == {Path(point) for point in points}


def test_an_fstab_that_is_not_a_regular_file_is_skipped(tmp_path: Path) -> None:
    fifo = tmp_path / "fstab"
    os.mkfifo(fifo)
    assert fstab_mount_points(fifo) == set()  # never waits for a writer
    assert fstab_mount_points(tmp_path / "absent") == set()
    assert fstab_mount_points(tmp_path) == set()


# --- a symlink inside a storage root ---------------------------------------------------------


@pytest.fixture
def elsewhere(cloned: Cloned, tmp_path: Path) -> Path:
    """`<dataset root>/mmdetection -> <tmp>/elsewhere`: the files of mmdetection's data go
    there."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    (cloned.data).mkdir()
    (cloned.data / "mmdetection").symlink_to(other)
    return other


def test_a_symlink_in_the_storage_root_is_named_in_every_line(
    cloned: Cloned, elsewhere: Path
) -> None:
    folder = cloned.data / "mmdetection" / "data"
    note = f"(the files go to {elsewhere}/data: {cloned.data}/mmdetection is a symlink)"
    dry = inv(cloned.root, "--dry", "bootstrap")
    assert dry.code == 0, dry.err
    assert any(line.startswith("would ") and note in line for line in dry.lines), dry.out
    run = inv(cloned.root, "bootstrap")
    assert run.code == 0, run.err
    assert any(f"-> {folder} {note}" in line for line in run.lines), run.out
    assert (elsewhere / "data").is_dir()
    layout = inv(cloned.root, "layout")
    assert f"exists {folder} {note}" in layout.lines
    status = inv(cloned.root, "status")
    assert any(f"-> {folder} (the files go to {elsewhere}/data)" in line for line in status.lines)
    found = json.loads(inv(cloned.root, "status", "--json").out)
    [real] = [link["real_target"] for link in found["links"] if link["real_target"]]
    assert real == f"{elsewhere}/data"
    assert not found["warnings"]  # every folder on the way is root's (the test's user)


NOBODY = 65534


@pytest.mark.parametrize(
    ("owner", "mode", "fragment"),
    [
        (0, 0o755, None),
        (NOBODY, 0o755, "belongs to user nobody (uid 65534)"),
        (NOBODY, 0o700, "belongs to"),
        (0, 0o777, "is writable by anyone (mode 0777)"),
        (0, 0o1777, None),  # sticky, like /tmp: others cannot rename what is not theirs
        (0, 0o775, "is writable by group"),  # a group the test's user is not in
    ],
    ids=["own", "other-user", "other-user-private", "world-writable", "sticky", "foreign-group"],
)
def test_a_folder_on_the_way_that_someone_else_can_change_is_warned(
    cloned: Cloned, elsewhere: Path, owner: int, mode: int, fragment: str | None
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a folder to another user")
    group = 0 if fragment != "is writable by group" else NOBODY
    if group and group in {os.getegid(), *os.getgroups()}:
        pytest.skip("the test's user is in that group")
    os.chown(elsewhere, owner, group)
    os.chmod(elsewhere, mode)
    for task in ("layout", "link-data", "status"):
        run = inv(cloned.root, task)
        assert run.code == 0 if task != "status" else run.code in (0, 1), run.err
        warned = [line for line in run.err.splitlines() if "who can send them elsewhere" in line]
        if fragment is None:
            assert not warned, run.err
        else:
            [line] = warned  # once, though several steps look
            assert fragment in line and f"{elsewhere} on the way" in line, line
            assert "through the symlink" in line


def test_a_symlink_loop_in_the_storage_root_is_an_error_not_a_hang(cloned: Cloned) -> None:
    cloned.data.mkdir()
    (cloned.data / "mmdetection").symlink_to(cloned.data / "mmdetection")
    run = inv(cloned.root, "status")
    assert run.code == 1 and "Traceback" not in run.err
    assert "who can send them elsewhere" not in run.err  # (the looping link is no folder)
    layout = inv(cloned.root, "layout")
    assert_clean_error(layout, "is a symlink to", "it dangles, or loops")


# (what to make under tmp: name -> symlink text, or None for a folder), the links route names
SHAPES = {
    "plain": ({"root/p": None}, []),
    "absolute": ({"root/p": "{tmp}/there", "there": None}, ["root/p"]),
    "relative": ({"root/p": "../there", "there": None}, ["root/p"]),
    "leaf": ({"root/p": None, "root/p/data": "../../there", "there": None}, ["root/p/data"]),
    "chain": (
        {"root/p": "{tmp}/one", "one": "two", "two": "{tmp}/there", "there": None},
        ["root/p", "one", "two"],
    ),
    "dotdot": ({"root/p": "{tmp}/there/../else", "there": None, "else": None}, ["root/p"]),
    "dangling": ({"root/p": "{tmp}/nowhere"}, ["root/p"]),
    "loop": ({"root/p": "{tmp}/root/p"}, ["root/p"] * 40),
    "root-is-a-link": ({"real": None, "root": "real", "real/p": None}, []),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_route_table(tmp_path: Path, shape: str) -> None:
    """Where a storage folder's files go, as the kernel would follow the way; no hang."""
    from mmlab_bootstrap.settings.storage import route, route_note

    made, links = SHAPES[shape]
    for name, text in made.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            path.mkdir(exist_ok=True)
        else:
            path.symlink_to(text.format(tmp=tmp_path))
    folder = tmp_path / "root" / "p" / "data"
    way = route(folder)
    assert way.real == Path(os.path.realpath(folder))
    assert [str(link.relative_to(tmp_path)) for link in way.links] == links
    assert bool(route_note(folder)) is bool(links)
    assert all(looked.is_absolute() for looked in way.looked_in)


@pytest.mark.parametrize(
    ("device", "damaged"),
    [
        (2049, False),
        (0, False),
        (None, False),  # absent: a journal from before devices were recorded
        (-1, True),
        (True, True),
        ("2049", True),
        (2049.0, True),
        ([2049], True),
    ],
)
def test_the_journals_device_field_table(device: object, damaged: bool) -> None:
    """The device a link's target was on: a number, or absent in older journals."""
    from mmlab_bootstrap.links.journal import Damage, validated

    entry: dict[str, object] = {"target": "/s/mmdetection/data", "linked": True}
    if device is not None:
        entry["device"] = device
    document = {"version": 1, "links": {"/ws/ext/mmdetection/data": entry}}
    if damaged:
        with pytest.raises(Damage, match="device"):
            validated(document)
    else:
        assert validated(document)["/ws/ext/mmdetection/data"] == entry


def test_an_old_journal_without_devices_still_links_and_warns_of_nothing(cloned: Cloned) -> None:
    """A journal written before devices were recorded loads, and a settled run leaves it as it
    was, byte for byte (no device is added behind the user's back)."""
    assert inv(cloned.root, "bootstrap").code == 0
    journal = cloned.root / ".mmlab-bootstrap-state.json"
    document = json.loads(journal.read_text())
    for entry in document["links"].values():
        del entry["device"]
    journal.write_text(json.dumps(document))
    before = journal.read_bytes()
    again = inv(cloned.root, "bootstrap")
    assert again.code == 0, again.err
    assert "another filesystem" not in again.err
    assert journal.read_bytes() == before
    assert inv(cloned.root, "status").code == 0

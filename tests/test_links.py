"""`inv link-checkpoints`, `inv link-data` and `inv unlink` on a real clone of the fixture."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Cloned, assert_clean_error, git_status, inv, mount, snapshot
from .lib.linkshapes import TRACKED, assert_clean_git


@dataclass(frozen=True)
class Task:
    """One of the two link tasks, with the fixture's projects in each state."""

    name: str
    leaf: str
    storage: str
    tracked_project: str  # tracks files under the leaf
    plain_project: str  # has nothing at the leaf

    def location(self, cloned: Cloned, project: str) -> Path:
        return cloned.ext / project / self.leaf

    def target(self, cloned: Cloned, project: str) -> Path:
        return cloned.root / self.storage / project / self.leaf


CHECKPOINTS = Task(
    "link-checkpoints", "checkpoints", "mmlab_checkpoints", "mmdetection", "mmdetection3d"
)
DATA = Task("link-data", "data", "mmlab_dataset", "mmdetection3d", "mmdetection")


@pytest.fixture(params=[CHECKPOINTS, DATA], ids=["checkpoints", "data"])
def task(request: pytest.FixtureRequest) -> Task:
    return request.param  # type: ignore[no-any-return]


def everything(cloned: Cloned) -> dict[str, tuple[str, bytes | str | None]]:
    return snapshot(cloned.ext, cloned.data, cloned.ckpt)


def worktree(root: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """A snapshot without git's own files (its index records stat times)."""
    return {
        k: v for k, v in snapshot(root).items() if "/.git/" not in k and not k.endswith("/.git")
    }


def assert_linked(task: Task, cloned: Cloned, project: str) -> None:
    location = task.location(cloned, project)
    assert location.is_symlink()
    assert os.readlink(location) == str(task.target(cloned, project))


def skip_worktree(repo: Path, leaf: str) -> list[str]:
    listing = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-v", "--", leaf], capture_output=True, text=True
    ).stdout
    return sorted(line[2:] for line in listing.splitlines() if line.startswith("S "))


def test_absent_and_tracked_locations_are_linked(task: Task, cloned: Cloned) -> None:
    """Absent: a link. Tracked files only: adopted into storage, skip-worktree, then a link."""
    run = inv(cloned.root, task.name)
    assert run.code == 0, run.err
    plain = task.location(cloned, task.plain_project)
    tracked = task.location(cloned, task.tracked_project)
    assert f"linked {plain} -> {task.target(cloned, task.plain_project)}" in run.lines
    count = len(TRACKED[task.leaf])
    assert any(line.startswith(f"adopted {count} tracked files into") for line in run.lines)
    assert_linked(task, cloned, task.plain_project)
    assert_linked(task, cloned, task.tracked_project)
    for relative, data in TRACKED[task.leaf].items():
        assert (cloned.ext / task.tracked_project / relative).read_bytes() == data  # via the link
        stored = task.target(cloned, task.tracked_project) / os.path.relpath(relative, task.leaf)
        assert stored.read_bytes() == data and not stored.is_symlink()
    assert skip_worktree(tracked.parent, task.leaf) == sorted(TRACKED[task.leaf])
    assert_clean_git(cloned)
    again = inv(cloned.root, task.name)
    assert again.code == 0
    assert again.lines == [f"already linked {plain}", f"already linked {tracked}"] or sorted(
        again.lines
    ) == sorted([f"already linked {plain}", f"already linked {tracked}"])


def test_a_link_spelled_differently_counts_as_linked(task: Task, cloned: Cloned) -> None:
    """Resolved paths are compared, not strings: a relative link to the target is kept."""
    target = task.target(cloned, task.plain_project)
    target.mkdir(parents=True)
    location = task.location(cloned, task.plain_project)
    location.symlink_to(os.path.relpath(target, location.parent))
    run = inv(cloned.root, task.name)
    assert run.code == 0, run.err
    assert f"already linked {location}" in run.lines
    assert os.readlink(location) == os.path.relpath(target, location.parent)


@pytest.mark.parametrize("broken", [False, True], ids=["elsewhere", "broken"])
def test_other_or_broken_links_are_replaced(task: Task, cloned: Cloned, broken: bool) -> None:
    """A link to elsewhere, or a broken one, is replaced; the old destination is reported."""
    elsewhere = cloned.root / "elsewhere"
    if not broken:
        elsewhere.mkdir()
        (elsewhere / "keep.bin").write_bytes(b"keep")
    location = task.location(cloned, task.plain_project)
    location.symlink_to(elsewhere)
    run = inv(cloned.root, task.name)
    assert run.code == 0, run.err
    assert (
        f"relinked {location} -> {task.target(cloned, task.plain_project)} (was -> {elsewhere})"
        in run.lines
    )
    assert_linked(task, cloned, task.plain_project)
    if not broken:
        assert (elsewhere / "keep.bin").read_bytes() == b"keep"
    assert_clean_git(cloned)


def test_an_empty_folder_is_replaced(task: Task, cloned: Cloned) -> None:
    """A folder holding only empty folders is provably empty and becomes the link."""
    location = task.location(cloned, task.plain_project)
    (location / "a" / "b").mkdir(parents=True)
    run = inv(cloned.root, task.name)
    assert run.code == 0, run.err
    assert any("(replaced an empty folder)" in line for line in run.lines)
    assert_linked(task, cloned, task.plain_project)


def test_user_data_is_refused_and_nothing_changes(task: Task, cloned: Cloned) -> None:
    """Files of the user's: refused with count and size; no location is touched, none."""
    location = task.location(cloned, task.plain_project)
    (location / "kitti").mkdir(parents=True)
    (location / "kitti" / "velodyne.bin").write_bytes(b"\x01" * 1500)
    before = everything(cloned)
    run = inv(cloned.root, task.name)
    assert_clean_error(run, "1 link location(s) refused; nothing changed")
    assert f"refused {location} [user data]: holds 1 file(s) of yours (1.5 KiB)" in run.out
    assert "--backup" in run.err and "--adopt" in run.err
    assert everything(cloned) == before


def test_backup_renames_aside_then_links(task: Task, cloned: Cloned) -> None:
    """--backup: the folder goes to <leaf>.bak-<timestamp> beside it, whole; then the link."""
    location = task.location(cloned, task.tracked_project)
    (location / "mine.txt").write_bytes(b"mine")
    run = inv(cloned.root, task.name, "--backup")
    assert run.code == 0, run.err
    backups = list(location.parent.glob(f"{task.leaf}.bak-*"))
    assert len(backups) == 1
    assert (backups[0] / "mine.txt").read_bytes() == b"mine"
    assert f"backed up {location} to {backups[0]}" in run.out
    assert_linked(task, cloned, task.tracked_project)
    assert_clean_git(cloned)


def test_adopt_moves_everything_into_the_target(task: Task, cloned: Cloned) -> None:
    """--adopt: user files and tracked files move into storage; git status stays clean."""
    location = task.location(cloned, task.tracked_project)
    (location / "kitti").mkdir()
    (location / "kitti" / "a.bin").write_bytes(b"a" * 10)
    run = inv(cloned.root, task.name, "--adopt")
    assert run.code == 0, run.err
    target = task.target(cloned, task.tracked_project)
    assert (target / "kitti" / "a.bin").read_bytes() == b"a" * 10
    assert_linked(task, cloned, task.tracked_project)
    assert skip_worktree(location.parent, task.leaf) == sorted(TRACKED[task.leaf])
    assert_clean_git(cloned)


def test_adopt_refuses_name_clashes(task: Task, cloned: Cloned) -> None:
    """--adopt lists files whose names are taken in the target by other content."""
    location = task.location(cloned, task.plain_project)
    location.mkdir()
    (location / "same.bin").write_bytes(b"x")
    target = task.target(cloned, task.plain_project)
    target.mkdir(parents=True)
    (target / "same.bin").write_bytes(b"y")
    before = everything(cloned)
    run = inv(cloned.root, task.name, "--adopt")
    assert_clean_error(run, "nothing changed")
    assert f"already in the target with other content: {task.leaf}/same.bin" in run.out
    assert everything(cloned) == before


def test_tracked_file_conflict_is_refused(task: Task, cloned: Cloned) -> None:
    """A tracked file whose name holds other content in the target is a conflict."""
    relative = next(iter(TRACKED[task.leaf]))
    stored = task.target(cloned, task.tracked_project) / os.path.relpath(relative, task.leaf)
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"edited by the user")
    before = everything(cloned)
    run = inv(cloned.root, task.name)
    assert_clean_error(run, "nothing changed")
    assert relative in run.out
    assert everything(cloned) == before


def test_keep_going_links_what_it_can(task: Task, cloned: Cloned) -> None:
    """--keep-going: the refused location stays; the others are linked; exit 1."""
    location = task.location(cloned, task.plain_project)
    location.mkdir()
    (location / "x").write_text("x")
    run = inv(cloned.root, task.name, "--keep-going")
    assert_clean_error(run, "1 link location(s) refused; the others were done")
    assert (location / "x").read_text() == "x"
    assert_linked(task, cloned, task.tracked_project)


def test_relative_links(task: Task, cloned: Cloned) -> None:
    """--relative writes relative links that resolve to the targets."""
    run = inv(cloned.root, task.name, "--relative")
    assert run.code == 0, run.err
    location = task.location(cloned, task.plain_project)
    assert not os.readlink(location).startswith("/")
    assert location.resolve() == task.target(cloned, task.plain_project).resolve()


def test_dry_run_prints_the_plan_and_changes_nothing(task: Task, cloned: Cloned) -> None:
    """--dry shows each location's classification and the action; nothing changes."""
    before = everything(cloned)
    run = inv(cloned.root, "--dry", task.name)
    assert run.code == 0, run.err
    assert any(line.endswith("[absent]") for line in run.lines)
    assert any(line.endswith("[tracked files only]") for line in run.lines)
    assert everything(cloned) == before


def test_symlinked_project_folder_is_refused(task: Task, cloned: Cloned, tmp_path: Path) -> None:
    """A project folder that is a symlink leading out of the extension is not followed."""
    outside = tmp_path / "outside"
    (cloned.ext / task.plain_project).rename(outside)
    (cloned.ext / task.plain_project).symlink_to(outside)
    sentinel = snapshot(outside)
    run = inv(cloned.root, task.name)
    assert_clean_error(run, "is a symlink", "refusing to follow")
    assert snapshot(outside) == sentinel


def test_missing_extension_hints_at_clone(task: Task, workspace: Path) -> None:
    """Before `inv clone`, linking says so."""
    run = inv(workspace, task.name)
    assert_clean_error(run, "has no folder")
    assert "inv clone" in run.err


def test_unlink_puts_back_what_linking_replaced(cloned: Cloned) -> None:
    """After link (with a backup and adopted files), unlink restores the tree byte for byte."""
    data = DATA.location(cloned, "mmdetection")
    data.mkdir()
    (data / "mine.bin").write_bytes(b"mine")
    before = worktree(cloned.ext)
    statuses = [git_status(cloned.ext / p) for p in ("", "mmdetection", "mmdetection3d")]
    exclude = cloned.ext / ".git/modules/mmdetection3d/info/exclude"
    exclude_before = exclude.read_text()
    assert inv(cloned.root, "link-data", "--backup").code == 0
    assert inv(cloned.root, "link-checkpoints").code == 0
    stored = snapshot(cloned.data, cloned.ckpt)
    run = inv(cloned.root, "unlink")
    assert run.code == 0, run.err
    assert worktree(cloned.ext) == before
    assert snapshot(cloned.data, cloned.ckpt) == stored  # storage is never deleted
    assert skip_worktree(cloned.ext / "mmdetection3d", "data") == []
    assert exclude.read_text() == exclude_before
    assert [git_status(cloned.ext / p) for p in ("", "mmdetection", "mmdetection3d")] == statuses
    assert inv(cloned.root, "unlink").lines[0].startswith("not linked: ")


def test_unlink_leaves_foreign_links_and_narrows(cloned: Cloned, tmp_path: Path) -> None:
    """Links that point elsewhere are reported and kept; --checkpoints leaves data links be."""
    assert inv(cloned.root, "link-data").code == 0
    foreign = CHECKPOINTS.location(cloned, "mmdetection3d")
    foreign.symlink_to(tmp_path)
    run = inv(cloned.root, "unlink", "--checkpoints")
    assert run.code == 0, run.err
    assert f"left alone: {foreign} links to {tmp_path}" in run.err
    assert foreign.is_symlink()
    assert DATA.location(cloned, "mmdetection").is_symlink()


def test_adopt_across_filesystems_copies_verifies_and_says_so(
    cloned: Cloned, tmp_path: Path, mounts: list[Path]
) -> None:
    """Across filesystems --adopt copies, checks sizes, then removes the originals."""
    other_filesystem = tmp_path / "tmpfs"
    mount(mounts, other_filesystem, "size=16m")
    location = DATA.location(cloned, "mmdetection3d")
    (location / "kitti").mkdir()
    (location / "kitti" / "big.bin").write_bytes(os.urandom(200_000))
    (location / "kitti" / "link-to-elsewhere").symlink_to("/nonexistent")
    wanted = (location / "kitti" / "big.bin").read_bytes()
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(other_filesystem))
    assert run.code == 0, run.err
    assert "to another filesystem: copy, verify sizes, then remove" in run.out
    target = other_filesystem / "mmdetection3d" / "data"
    assert (target / "kitti" / "big.bin").read_bytes() == wanted
    assert os.readlink(target / "kitti" / "link-to-elsewhere") == "/nonexistent"
    assert os.readlink(location) == str(target)


def test_a_target_inside_the_location_is_refused(task: Task, cloned: Cloned) -> None:
    """Storage reached through a symlink into the extension would link into itself: refused."""
    sneaky = cloned.root / "sneaky"
    sneaky.symlink_to(cloned.ext / task.plain_project)
    before = everything(cloned)
    variable = "MMLAB_DATASET_PATH" if task.leaf == "data" else "MMLAB_CHECKPOINTS_PATH"
    run = inv(cloned.root, task.name, env={variable: str(sneaky)})
    assert_clean_error(run, "inside one another")
    assert everything(cloned) == before


def test_unlink_follows_the_journal_after_storage_moved(cloned: Cloned, tmp_path: Path) -> None:
    """The journal records where linking put things: unlink finds them after the root moved."""
    assert inv(cloned.root, "link-data").code == 0
    assert inv(cloned.root, "env", "--dataset-path", str(tmp_path / "new-root")).code == 0
    run = inv(cloned.root, "unlink", "--data")
    assert run.code == 0, run.err
    location = DATA.location(cloned, "mmdetection3d")
    assert location.is_dir() and not location.is_symlink()
    for relative, data in TRACKED["data"].items():
        assert (cloned.ext / "mmdetection3d" / relative).read_bytes() == data
    assert_clean_git(cloned)


def test_unlink_after_a_run_killed_between_backup_and_link(cloned: Cloned) -> None:
    """Killed after the backup but before the link: unlink restores the recorded backup."""
    location = DATA.location(cloned, "mmdetection")
    location.mkdir()
    (location / "mine.bin").write_bytes(b"mine")
    assert inv(cloned.root, "link-data", "--backup").code == 0
    location.unlink()  # as if the run had died before making the link
    (location.parent / "data.bak-29991231-235959").mkdir()  # a newer, unrelated backup
    run = inv(cloned.root, "unlink", "--data")
    assert run.code == 0, run.err
    assert (location / "mine.bin").read_bytes() == b"mine"


def test_unlink_puts_back_a_replaced_link(cloned: Cloned, tmp_path: Path) -> None:
    """A link to elsewhere that linking replaced comes back on unlink."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    location = CHECKPOINTS.location(cloned, "mmdetection3d")
    location.symlink_to(elsewhere)
    assert inv(cloned.root, "link-checkpoints").code == 0
    run = inv(cloned.root, "unlink", "--checkpoints")
    assert run.code == 0, run.err
    assert os.readlink(location) == str(elsewhere)
    assert f"put back the link to {elsewhere}" in run.out

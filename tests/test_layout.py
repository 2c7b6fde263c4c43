"""`inv layout`: storage folders created once, existing ones left alone, bad roots refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_clean_error, inv, mount, snapshot

FOLDERS = [
    "ckpt/mmdetection/checkpoints",
    "ckpt/mmdetection3d/checkpoints",
    "data/mmdetection/data",
    "data/mmdetection3d/data",
]


def storage_flags(tmp_path: Path) -> list[str]:
    return ["--checkpoints-path", str(tmp_path / "ckpt"), "--dataset-path", str(tmp_path / "data")]


def test_creates_every_folder_then_leaves_them(workspace: Path, tmp_path: Path) -> None:
    """First run creates the four folders; a second run creates nothing and says `exists`."""
    first = inv(workspace, "layout", *storage_flags(tmp_path))
    assert first.code == 0, first.err
    assert first.lines == [f"created {tmp_path / f}" for f in FOLDERS]
    (tmp_path / "data/mmdetection/data/kitti.bin").write_bytes(b"\x00data")
    before = snapshot(tmp_path / "ckpt", tmp_path / "data")
    second = inv(workspace, "layout", *storage_flags(tmp_path))
    assert second.code == 0
    assert second.lines == [f"exists {tmp_path / f}" for f in FOLDERS]
    assert snapshot(tmp_path / "ckpt", tmp_path / "data") == before


def test_dry_run_changes_nothing(workspace: Path, tmp_path: Path) -> None:
    """`inv --dry layout` prints `would create` lines and creates no folder."""
    run = inv(workspace, "--dry", "layout", *storage_flags(tmp_path))
    assert run.code == 0
    assert run.lines == [f"would create {tmp_path / f}" for f in FOLDERS]
    assert not (tmp_path / "ckpt").exists() and not (tmp_path / "data").exists()


def test_uses_dotenv_and_the_project_list(workspace: Path, tmp_path: Path) -> None:
    """Values come from .env when no flag or environment variable is given."""
    (workspace / ".env").write_text(
        f"MMLAB_DATASET_PATH={tmp_path}/d\nMMLAB_PROJECTS='only'\n"
        f"MMLAB_CHECKPOINTS_PATH={tmp_path}/c\n"
    )
    run = inv(workspace, "layout")
    assert run.code == 0, run.err
    assert (tmp_path / "c/only/checkpoints").is_dir() and (tmp_path / "d/only/data").is_dir()
    assert not (tmp_path / "d/mmdetection").exists()


def test_root_is_created_when_its_parent_exists(workspace: Path, tmp_path: Path) -> None:
    """A missing storage root is fine when its parent exists."""
    run = inv(workspace, "layout", "--dataset-path", str(tmp_path / "new"))
    assert run.code == 0, run.err
    assert (tmp_path / "new/mmdetection/data").is_dir()


def test_a_typo_root_is_refused(workspace: Path, tmp_path: Path) -> None:
    """A root whose parent does not exist either (a typo) is refused; nothing is created."""
    run = inv(workspace, "layout", "--dataset-path", str(tmp_path / "mnt/dtaa"))
    assert_clean_error(run, "MMLAB_DATASET_PATH", "does not exist, and neither does its parent")
    assert "mkdir -p" in run.err
    assert not (workspace / "mmlab_checkpoints").exists()


@pytest.mark.parametrize(
    "blocker",
    ["ckpt/mmdetection3d/checkpoints", "ckpt/mmdetection3d", "ckpt"],
)
def test_a_file_in_the_way_is_refused_before_anything_is_made(
    workspace: Path, tmp_path: Path, blocker: str
) -> None:
    """A file where a folder must go stops the whole step before the first folder is made."""
    (tmp_path / blocker).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / blocker).write_text("precious")
    before = snapshot(tmp_path / "ckpt", tmp_path / "data")
    run = inv(workspace, "layout", *storage_flags(tmp_path))
    assert_clean_error(run, "not a folder" if blocker != "ckpt/mmdetection3d" else "is a file")
    assert snapshot(tmp_path / "ckpt", tmp_path / "data") == before


def test_a_broken_link_in_the_way_is_refused(workspace: Path, tmp_path: Path) -> None:
    """A dangling symlink at a storage folder is reported, not replaced."""
    (tmp_path / "ckpt/mmdetection").mkdir(parents=True)
    (tmp_path / "ckpt/mmdetection/checkpoints").symlink_to(tmp_path / "gone")
    run = inv(workspace, "layout", *storage_flags(tmp_path))
    assert_clean_error(run, "broken link")
    assert (tmp_path / "ckpt/mmdetection/checkpoints").is_symlink()


def test_a_linked_storage_folder_counts_as_existing(workspace: Path, tmp_path: Path) -> None:
    """A storage folder that is a symlink to a real folder (a big disk) is left as it is."""
    (tmp_path / "big").mkdir()
    (tmp_path / "ckpt/mmdetection").mkdir(parents=True)
    (tmp_path / "ckpt/mmdetection/checkpoints").symlink_to(tmp_path / "big")
    run = inv(workspace, "layout", *storage_flags(tmp_path))
    assert run.code == 0, run.err
    folder = f"{tmp_path}/ckpt/mmdetection/checkpoints"
    assert f"exists {folder} (the files go to {tmp_path}/big: {folder} is a symlink)" in run.lines


def test_an_unwritable_parent_is_refused(
    workspace: Path, tmp_path: Path, mounts: list[Path]
) -> None:
    """A storage root that cannot be written is an error naming the folder.

    (A read-only tmpfs: root ignores permission bits, not a read-only mount.)
    """
    read_only = tmp_path / "ro"
    mount(mounts, read_only, "ro,size=1m")
    run = inv(workspace, "layout", "--dataset-path", str(read_only / "data"))
    assert_clean_error(run, "is not writable")
    assert not (workspace / "mmlab_checkpoints").exists()

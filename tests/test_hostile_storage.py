"""Storage roots that are not what they seem (issue 20, points 15-17): a disk with room for
the bytes but not for the blocks or inodes they take, a mount point with nothing mounted on
it, and symlinks inside a storage root that lead elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import Cloned, assert_clean_error, inv, mount, snapshot

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

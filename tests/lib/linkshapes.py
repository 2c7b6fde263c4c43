"""Shapes of what a link location may hold, for link tests and the seam's properties."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import strategies as st

from ..conftest import Cloned, git_status

TRACKED = {
    "checkpoints": {"checkpoints/README.md": b"# download checkpoints here\n"},
    "data": {
        "data/scannet/batch_load_scannet_data.py": b"# prepares scannet\n",
        "data/lyft/train.txt": b"scene-1\nscene-2\n",
        "data/s3dis/README.md": b"# s3dis\n",
    },
}


def assert_clean_git(cloned: Cloned) -> None:
    """`git status` is clean in the superproject and in every sub-project."""
    assert git_status(cloned.ext) == ""
    for project in ("mmdetection", "mmdetection3d"):
        assert git_status(cloned.ext / project) == "", project


SEGMENTS = st.sampled_from(["a", "b", "kitti", "x y", "ü", "lyft", "train.txt"])


PATHS = st.lists(SEGMENTS, min_size=1, max_size=3).map("/".join)


TREES = st.dictionaries(PATHS, st.binary(max_size=40), max_size=5).filter(
    lambda tree: not any(o.startswith(p + "/") for p in tree for o in tree)
)


LINKS = st.dictionaries(PATHS, st.sampled_from(["/mnt/coco", "../a", "kitti", "/nonexistent"]),
                        max_size=2)  # fmt: skip


SHAPES = st.sampled_from(["absent", "empty", "tree", "link-elsewhere", "broken-link"])


WAYS = st.sampled_from(["refuse", "backup", "adopt"])


def build(
    location: Path,
    shape: str,
    tree: dict[str, bytes],
    elsewhere: Path,
    links: dict[str, str] | None = None,
) -> None:
    if shape == "absent":
        return
    if shape in ("link-elsewhere", "broken-link"):
        location.symlink_to(elsewhere if shape == "link-elsewhere" else elsewhere / "gone")
        return
    location.mkdir(parents=True, exist_ok=True)
    if shape == "tree":
        for relative, data in tree.items():
            path = location / relative
            if any(p.is_file() for p in path.parents) or path.exists():
                continue  # would need a folder where a (tracked) file is
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        for relative, text in (links or {}).items():  # dataset symlinks: user content too
            path = location / relative
            if any(p.is_file() or p.is_symlink() for p in path.parents) or os.path.lexists(path):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(text)

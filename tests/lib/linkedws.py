"""A linked workspace cloned from its own served repositories, and upstream pushes to it."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..conftest import inv
from .gitfixture import MMDET3D_DATA, Fixture, build_superproject, git

PROJECT = "mmdetection3d"


TRAIN = "data/lyft/train.txt"


NEW_TRAIN = b"scene-1\nscene-2\nscene-3\n"


@dataclass
class Linked:
    """A workspace cloned from its own served repositories, with both link tasks done."""

    root: Path
    fixture: Fixture

    @property
    def ext(self) -> Path:
        return self.root / "mmlab_extension"

    @property
    def project(self) -> Path:
        return self.ext / PROJECT

    @property
    def storage(self) -> Path:
        return self.root / "mmlab_dataset" / PROJECT / "data"

    def stored(self, relative: str) -> Path:
        """Where a file under mmdetection3d's data/ lives in storage."""
        return self.storage / os.path.relpath(relative, "data")

    def head(self, repo: Path) -> str:
        return git("rev-parse", "HEAD", cwd=repo)

    def index(self) -> str:
        return git("ls-files", "-s", "-v", cwd=self.project)

    def flags(self) -> list[str]:
        """`S path` (skip-worktree) or `H path` for each tracked file of mmdetection3d."""
        return git("ls-files", "-v", cwd=self.project).splitlines()

    def adopted_in_journal(self) -> list[str]:
        state = json.loads((self.root / ".mmlab-bootstrap-state.json").read_text())
        return list(state["links"][str(self.project / "data")]["adopted_tracked"])


def make_linked(root: Path, served: Path) -> Linked:
    fixture = build_superproject(served)
    git(
        "clone", "-q", "--recurse-submodules", "--shallow-submodules", "--depth", "1",
        fixture.url(), str(root / "mmlab_extension"),
    )  # fmt: skip
    (root / ".env").write_text(f"MMLAB_EXTENSION_REPO='{fixture.url()}'\n")
    for task in ("link-data", "link-checkpoints"):
        run = inv(root, task)
        assert run.code == 0, run.err
    linked = Linked(root, fixture)
    assert linked.stored(TRAIN).read_bytes() == MMDET3D_DATA[TRAIN]
    return linked


def push_upstream(
    fixture: Fixture, changes: dict[str, bytes | None], *, allow_empty: bool = False
) -> str:
    """Push an mmdetection3d commit with `changes` (None: remove the file), then a superproject
    commit recording it; return the new mmdetection3d commit."""
    scratch = fixture.served.parent / f"scratch-{os.getpid()}-{time.monotonic_ns()}"
    git("clone", "-q", fixture.url(PROJECT), str(scratch / PROJECT))
    for path, data in changes.items():
        file = scratch / PROJECT / path
        if data is None:
            git("rm", "-q", "--", path, cwd=scratch / PROJECT)
        else:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
            git("add", "-f", "--", path, cwd=scratch / PROJECT)
    empty = ["--allow-empty"] if allow_empty else []
    git("commit", "-q", *empty, "-m", "upstream changes data/", cwd=scratch / PROJECT)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=scratch / PROJECT)
    commit = git("rev-parse", "HEAD", cwd=scratch / PROJECT)
    record_gitlink(fixture, scratch / "ext", PROJECT, commit)
    return commit


def record_gitlink(fixture: Fixture, scratch: Path, path: str, commit: str) -> None:
    """A superproject commit that records `commit` for the submodule at `path`."""
    git("clone", "-q", fixture.url(), str(scratch))
    git("update-index", "--cacheinfo", f"160000,{commit},{path}", cwd=scratch)
    git("commit", "-q", "-m", f"record {path} {commit[:12]}", cwd=scratch)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=scratch)

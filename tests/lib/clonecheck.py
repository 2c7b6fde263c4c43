"""Builders and checks for `inv clone` on the fixture superproject (tests/lib/gitfixture.py)."""

from __future__ import annotations

from pathlib import Path

from ..conftest import Run, inv
from .gitfixture import Fixture, git

SUBMODULES = ["mmdetection", "mmdetection3d", "mmdetection3d/third_party/spconv"]


def clone(workspace: Path, fixture: Fixture, *args: str, env: dict[str, str] | None = None) -> Run:
    """`inv clone` of the fixture's github URL through its file:// mirror."""
    mirror = {"MMLAB_GIT_MIRROR": fixture.mirror, **(env or {})}
    return inv(workspace, "clone", "--repo", fixture.github_url, *args, env=mirror)


def status(repo: Path) -> dict[str, tuple[str, str]]:
    """`git submodule status --recursive` as {path: (flag, commit)}."""
    lines = git("-C", str(repo), "submodule", "status", "--recursive").splitlines()
    return {line[42:].split(" (")[0]: (line[0], line[1:41]) for line in lines}


def is_shallow(repo: Path) -> bool:
    return git("-C", str(repo), "rev-parse", "--is-shallow-repository") == "true"


def assert_complete(workspace: Path, fixture: Fixture, shallow: bool = True) -> Path:
    """Every submodule initialised at its recorded commit and checked out; all shallow."""
    ext = workspace / "mmlab_extension"
    assert status(ext) == {
        "mmdetection": (" ", fixture.tips["mmdetection"]),
        "mmdetection3d": (" ", fixture.tips["mmdetection3d"]),
        "mmdetection3d/third_party/spconv": (" ", fixture.tips["spconv"]),
    }
    assert (ext / "mmdetection3d/data/lyft/train.txt").read_bytes() == b"scene-1\nscene-2\n"
    assert (ext / "mmdetection3d/third_party/spconv/README.md").exists()
    if shallow:
        assert all(is_shallow(ext / path) for path in ["", *SUBMODULES])
    return ext


def strict_server(tmp_path: Path, fixture: Fixture, name: str) -> dict[str, str]:
    """Serve `name` with a protocol-v0 upload-pack that refuses unadvertised commits."""
    for key in ("allowAnySHA1InWant", "allowReachableSHA1InWant", "allowTipSHA1InWant"):
        git("-C", str(fixture.bare(name)), "config", f"uploadpack.{key}", "false")
    wrapper = tmp_path / "strict-upload-pack"
    wrapper.write_text('#!/bin/sh\nunset GIT_PROTOCOL\nexec git-upload-pack "$@"\n')
    wrapper.chmod(0o755)
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "remote.origin.uploadpack",
        "GIT_CONFIG_VALUE_0": str(wrapper),
    }


RECORD = ".git/mmlab-bootstrap-checkouts.json"


def assert_healthy(workspace: Path, fixture: Fixture) -> None:
    """Every submodule at its recorded commit, nothing changed anywhere, no record left."""
    ext = assert_complete(workspace, fixture)
    assert git("-C", str(ext), "status", "--porcelain", "--ignore-submodules=none") == ""
    for path in SUBMODULES:
        assert git("-C", str(ext / path), "status", "--porcelain") == "", path
    assert not (ext / RECORD).exists()

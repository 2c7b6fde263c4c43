"""The test suite's own tools: the in-process runner matches the real `inv`, the write guard
(on every test) fails a test that writes outside its temporary folder, and the superproject
templates copy what a build makes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import conftest
from .conftest import inv_process, run_inproc
from .lib import gitfixture


def test_in_process_runs_match_the_real_inv(workspace: Path) -> None:
    """Same exit code and output as the `inv` executable, for an error, a dry run and --help;
    the environment and the current folder are given back afterwards."""
    cwd, environ = os.getcwd(), dict(os.environ)
    for args, env in (
        (["env", "--projects", "a/b"], {}),
        (["--dry", "env"], {"MMLAB_PROJECTS": "mmdet"}),
        (["--help", "link-data"], {}),
        (["status"], {}),
    ):
        inside = run_inproc(workspace, *args, env=env)
        outside = inv_process(workspace, *args, env=env)
        assert inside == outside, args
        assert (os.getcwd(), dict(os.environ)) == (cwd, environ)


def test_the_write_guard_sees_writes_outside_the_test_folder(
    tmp_path: Path, write_guard: list[str]
) -> None:
    """Inside the folder: nothing recorded. Outside: the open, the rename and the removal are."""
    (tmp_path / "inside").write_text("x")
    os.mkdir(tmp_path / "folder")
    assert write_guard == []
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_text("x")
    os.rename(outside, f"{outside}.moved")
    os.remove(f"{outside}.moved")
    assert [entry.split()[0] for entry in write_guard] == [
        "open",
        "os.rename",
        "os.rename",
        "os.remove",
    ]
    assert str(outside) in write_guard[0]
    write_guard.clear()  # what was seen is what this test wanted; let it pass
    assert conftest._GUARD.active


@pytest.mark.writes_outside(reason="shows that the marker turns the guard off for one test")
def test_a_test_marked_writes_outside_is_not_guarded(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-marked"
    outside.write_text("x")
    outside.unlink()
    assert not conftest._GUARD.active


def test_the_guard_is_on_for_every_test_without_asking(tmp_path: Path) -> None:
    assert conftest._GUARD.active
    assert str(tmp_path) in conftest._GUARD.allowed


def test_a_copied_superproject_is_what_a_new_build_makes(tmp_path: Path) -> None:
    """`build_superproject` copies a per-process template: the same commits as a build."""
    copied = gitfixture.build_superproject(tmp_path / "copied", commits=5)
    again = gitfixture.build_superproject(tmp_path / "again", commits=5)
    built = gitfixture._build_superproject(tmp_path / "built", False, 5, 256, 0, 0)
    assert copied.tips == again.tips == built.tips
    assert copied.served == tmp_path / "copied"
    assert gitfixture.git("log", "--format=%H", cwd=copied.bare("mmdetection3d")).split() == (
        gitfixture.git("log", "--format=%H", cwd=built.bare("mmdetection3d")).split()
    )

"""The test suite's own tools: the in-process runner matches the real `inv`, and the write
guard fails a test that writes outside its temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

from . import conftest
from .conftest import inv_process, run_inproc


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

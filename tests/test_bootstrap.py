"""`inv bootstrap` end to end, through the real `inv` and `mmlab-bootstrap` executables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .conftest import assert_clean_error, entries, inv, run_cli, snapshot
from .lib.gitfixture import Fixture

STEPS = ["env", "clone", "layout", "link-checkpoints", "link-data"]


def test_fresh_bootstrap_then_a_second_run_offline(workspace: Path, fixture: Fixture) -> None:
    """A fresh bootstrap builds a healthy workspace; a re-run needs no remote at all."""
    run = inv(workspace, "bootstrap", "--repo", fixture.url())
    assert run.code == 0, run.err
    assert run.lines[-1] == f"load the settings in a shell: set -a; . {workspace}/.env; set +a"
    status = inv(workspace, "status", "--json")
    assert status.code == 0, status.out
    assert json.loads(status.out)["healthy"] is True
    fixture.served.rename(fixture.served.with_name("offline"))
    before = snapshot(workspace)
    again = inv(workspace, "bootstrap")
    assert again.code == 0, again.err
    assert again.lines[:5] == [f"{step}: up to date" for step in STEPS]
    assert snapshot(workspace) == before


def test_a_failing_step_says_what_completed_and_a_rerun_goes_on(
    workspace: Path, fixture: Fixture
) -> None:
    """User data at a link location stops bootstrap at link-data; after --backup it finishes."""
    assert inv(workspace, "env", "--repo", fixture.url()).code == 0
    assert inv(workspace, "clone").code == 0
    data = workspace / "mmlab_extension/mmdetection/data"
    data.mkdir()
    (data / "kitti.bin").write_bytes(b"kitti")
    run = inv(workspace, "bootstrap")
    assert_clean_error(run, "1 link location(s) refused; nothing changed")
    assert (
        "bootstrap stopped at linking (completed: env, clone, layout);"
        " the hint says what to do first" in run.lines
    )
    assert (data / "kitti.bin").read_bytes() == b"kitti"
    again = inv(workspace, "bootstrap", "--backup")
    assert again.code == 0, again.err
    assert inv(workspace, "status").code == 0


def test_interrupted_bootstrap_is_finished_by_a_second_run(
    workspace: Path, fixture: Fixture
) -> None:
    """Killed part way, the next bootstrap completes the workspace."""
    process = subprocess.Popen(
        ["inv", "bootstrap", "--repo", fixture.url()],
        cwd=workspace,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not (workspace / ".env").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the kill landed after bootstrap had finished"
    assert not (workspace / "mmlab_extension/mmdetection3d/data").is_symlink()  # mid-work
    run = inv(workspace, "bootstrap")
    assert run.code == 0, run.err
    assert inv(workspace, "status").code == 0


def test_dry_bootstrap_prints_the_whole_plan_and_changes_nothing(
    workspace: Path, fixture: Fixture
) -> None:
    """--dry shows each step, the git commands included, and leaves the folder as it was."""
    run = inv(workspace, "--dry", "bootstrap", "--repo", fixture.url())
    assert run.code == 0, run.err
    text = run.out
    assert f"would write {workspace}/.env" in text
    assert "would run: git clone --depth 1" in text
    assert "would run: git -C" in text and "submodule update --init --depth 1" in text
    assert "would create " in text and "(once cloned)" in text
    assert entries(workspace) == ["tasks.py"]


def test_console_script_bootstraps_the_current_folder(tmp_path: Path, fixture: Fixture) -> None:
    """`mmlab-bootstrap bootstrap` works from any folder, which becomes the workspace."""
    folder = tmp_path / "anywhere"
    folder.mkdir()
    run = run_cli(["mmlab-bootstrap", "bootstrap", "--repo", fixture.url()], folder)
    assert run.code == 0, run.err
    assert (folder / "mmlab_extension/mmdetection3d/data").is_symlink()
    assert run_cli(["mmlab-bootstrap", "status"], folder).code == 0


def test_completion_lists_the_tasks(workspace: Path, tmp_path: Path) -> None:
    """invoke's completion offers every task, for `inv` and for `mmlab-bootstrap`."""
    tasks = {
        "bootstrap",
        "clone",
        "env",
        "layout",
        "link-checkpoints",
        "link-data",
        "status",
        "unlink",
    }
    for argv, cwd in (
        (["inv", "--complete", "--", "inv"], workspace),
        (["mmlab-bootstrap", "--complete", "--", "mmlab-bootstrap"], tmp_path),
    ):
        run = run_cli(argv, cwd)
        assert run.code == 0, run.err
        assert tasks <= set(run.lines), run.out

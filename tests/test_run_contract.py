"""How a run meets the user: closed pipes, the command named in hints, every refusal at once,
and a test suite that runs on a machine without every shell."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, Cloned, assert_clean_error, git_status, inv, run_cli, snapshot
from .lib.gitfixture import Fixture


def closed_pipe_run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run a command whose stdout is a pipe nobody reads any more (`… | head -0`, but certain)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [shutil.which(argv[0]) or argv[0], *argv[1:]],
            cwd=cwd,
            stdout=writer,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "argv",
    [["inv", "--list"], ["mmlab-bootstrap", "--help"], ["inv", "--help", "env"], ["inv", "status"]],
    ids=["inv-list", "console-help", "task-help", "status"],
)
def test_a_closed_pipe_ends_output_quietly(workspace: Path, argv: list[str]) -> None:
    """`inv --list | head`: no traceback, no `error: Broken pipe`, nothing on stderr."""
    done = closed_pipe_run(argv, workspace)
    assert done.stderr == b"", done.stderr.decode()


def test_a_closed_pipe_never_half_does_a_link(cloned: Cloned) -> None:
    """`inv link-data | head -1`: the links, the exclude entries and the journal are all made."""
    done = closed_pipe_run(["inv", "link-data"], cloned.root)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    for project in ("mmdetection", "mmdetection3d"):
        assert (cloned.ext / project / "data").is_symlink()
    assert git_status(cloned.ext) == ""
    real_pipe = subprocess.run(
        ["bash", "-c", "inv link-checkpoints | head -1"],
        cwd=cloned.root,
        capture_output=True,
        text=True,
    )
    assert real_pipe.stderr == "" and len(real_pipe.stdout.splitlines()) == 1
    assert inv(cloned.root, "status").code == 0


def test_a_rerun_repairs_a_missing_exclude_entry(cloned: Cloned) -> None:
    """A link whose bookkeeping was never written (the run was killed right after linking) is
    completed by the next run instead of `already linked` forever."""
    assert inv(cloned.root, "link-data").code == 0
    exclude = cloned.ext / ".git/modules/mmdetection/info/exclude"
    exclude.write_text("")
    assert git_status(cloned.ext / "mmdetection") != ""
    again = inv(cloned.root, "link-data")
    assert again.code == 0, again.err
    assert any("hid" in line and "mmdetection/data" in line for line in again.lines), again.out
    assert git_status(cloned.ext) == ""
    third = inv(cloned.root, "link-data")
    assert not any("hid" in line for line in third.lines)


def test_hints_name_the_command_that_was_run(workspace: Path) -> None:
    """Run as `mmlab-bootstrap`, hints and status name `mmlab-bootstrap …`, never `inv …`."""
    run = run_cli(["mmlab-bootstrap", "link-data"], workspace)
    assert_clean_error(run, "has no folder")
    assert "mmlab-bootstrap clone" in run.err and "inv " not in run.err
    status = run_cli(["mmlab-bootstrap", "status"], workspace)
    assert status.code == 1
    assert "run: mmlab-bootstrap bootstrap" in status.out and "inv " not in status.out
    assert "run: inv bootstrap" in inv(workspace, "status").out


def test_bootstrap_reports_every_refusal_at_once(cloned: Cloned) -> None:
    """User data at a checkpoints and at a data location: both refused in one run, nothing
    changed, and the line says what helps (the hint's flag), not "run it again"."""
    mine = cloned.ext / "mmdetection3d/checkpoints/mine.pth"
    mine.parent.mkdir()
    mine.write_bytes(b"weights")
    kitti = cloned.ext / "mmdetection/data/kitti.bin"
    kitti.parent.mkdir()
    kitti.write_bytes(b"kitti")
    before = snapshot(cloned.ext)
    run = inv(cloned.root, "bootstrap")
    assert_clean_error(run, "2 link location(s) refused; nothing changed")
    refused = [line for line in run.lines if line.startswith("refused ")]
    assert len(refused) == 2, run.out
    assert "--backup" in run.err and "--adopt" in run.err
    stopped = next(line for line in run.lines if line.startswith("bootstrap stopped"))
    assert "run it again" not in stopped and "hint" in stopped
    assert snapshot(cloned.ext) == before
    again = inv(cloned.root, "bootstrap", "--backup")
    assert again.code == 0, again.err
    assert inv(cloned.root, "status").code == 0


def test_an_unknown_project_lists_the_ones_that_exist(cloned: Cloned) -> None:
    """The hint lists the superproject's real sub-projects and a working --projects value."""
    run = inv(cloned.root, "link-data", "--projects", "mmdetection mmcv-full")
    assert_clean_error(run, "'mmcv-full' has no folder")
    hint = run.err.splitlines()[1]
    assert "mmdetection mmdetection3d" in hint
    assert "--projects 'mmdetection'" in hint


@pytest.mark.slow
def test_tests_needing_a_missing_shell_are_skipped(tmp_path: Path) -> None:
    """Where zsh is not installed, the tests that run it are skipped with a reason."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "bash", "dash", "sh", "env", "printf"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    python_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = f"{python_bin}{os.pathsep}{bin_dir}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-n0",
            "tests/test_cli.py::test_env_is_sourceable_and_matches_dotenv",
            "tests/test_rc.py::test_the_block_loads_the_workspace_in_new_shells",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "zsh is not installed here" in done.stdout
    assert "4 passed, 2 skipped" in done.stdout, done.stdout


def test_bootstrap_refuses_an_unknown_project_before_changing_anything(cloned: Cloned) -> None:
    """With the superproject there, a project it does not have is refused before `.env` is
    written or a storage folder is made."""
    before = snapshot(cloned.root)
    run = inv(cloned.root, "bootstrap", env={"MMLAB_PROJECTS": "mmdetection nosuch"})
    assert_clean_error(run, "'nosuch' has no folder")
    assert snapshot(cloned.root) == before


def test_a_fresh_bootstrap_refuses_an_unknown_project_before_making_its_storage(
    workspace: Path, fixture: Fixture
) -> None:
    """On a fresh workspace the superproject says which projects it has only once cloned: an
    unknown one is refused right then, before layout makes storage folders for it."""
    run = inv(workspace, "bootstrap", "--repo", fixture.url(), "--projects", "mmdetection nosuch")
    assert_clean_error(run, "'nosuch' has no folder")
    assert "bootstrap stopped at layout (completed: env, clone)" in run.out
    assert not (workspace / "mmlab_dataset").exists()
    assert not (workspace / "mmlab_checkpoints").exists()

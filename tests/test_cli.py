"""End to end: `inv env` and the `mmlab-bootstrap` console script in temporary workspaces."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values

from mmlab_bootstrap import __version__
from mmlab_bootstrap.cli.tasks import namespace

from .conftest import assert_clean_error, inv, inv_process, run_cli, run_in_terminal, shell_or_skip

NAMES = [
    "MMLAB_EXTENSION_REPO",
    "MMLAB_EXTENSION_REF",
    "MMLAB_EXTENSION_PATH",
    "MMLAB_CHECKPOINTS_PATH",
    "MMLAB_DATASET_PATH",
    "MMLAB_PROJECTS",
    "MMLAB_GIT_MIRROR",
    "MMLAB_REQUIRE_MOUNT",
    "MMLAB_CHECKPOINTS",
    "MMLAB_CHECKPOINT_MIRROR",
    "MMLAB_GIT_CACHE",
    "MMLAB_GIT_CACHE_MODE",
    "MMLAB_PYTHON_ENV",
    "MMLAB_VENVS_PATH",
    "MMLAB_PYTHON",
    "MMLAB_CUDA",
    "MMLAB_TORCH_INDEX",
    "MMLAB_MMCV_INDEX",
    "MMLAB_MMCV_PACKAGE",
    "MMLAB_PYPI_INDEX",
    "MMLAB_TORCH_HOME",
]
# What the workspace's configs and torch read, exported after the settings (configvars).
CONFIG_NAMES = ["TORCH_HOME", "ADMLOPS_PATH", "MMDETECTION3D_DIR"]


def test_env_writes_every_variable_and_the_load_line(workspace: Path) -> None:
    """`inv env` writes all variables (absolute paths) and ends with the line that loads them."""
    run = inv(workspace, "env")
    assert run.code == 0, run.err
    values = dotenv_values(workspace / ".env")
    assert list(values) == [*NAMES, "MMLAB_ENV_FILE", "MMLAB_ENV_DIGEST", *CONFIG_NAMES]
    assert values["MMLAB_EXTENSION_PATH"] == str(workspace / "mmlab_extension")
    assert values["TORCH_HOME"] == str(workspace / "mmlab_checkpoints" / "torch")
    assert values["ADMLOPS_PATH"] == values["MMLAB_EXTENSION_PATH"]
    assert values["MMLAB_DATASET_PATH"] == str(workspace / "mmlab_dataset")
    assert run.lines[-1] == f"load it in a shell: set -a; . {workspace}/.env; set +a"
    assert (workspace / ".env").stat().st_mode & 0o777 == 0o644


def test_env_second_run_changes_nothing(workspace: Path) -> None:
    """A second `inv env` says `up to date` and does not touch the file."""
    assert inv(workspace, "env").code == 0
    before = os.stat(workspace / ".env")
    run = inv(workspace, "env")
    assert run.code == 0
    assert run.lines[0] == f"up to date: {workspace}/.env"
    after = os.stat(workspace / ".env")
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


@pytest.mark.parametrize("shell", ["bash", "dash", "zsh"])
def test_env_is_sourceable_and_matches_dotenv(workspace: Path, shell: str) -> None:
    """The generated file gives the same values in bash, dash and zsh as in python-dotenv."""
    program = shell_or_skip(shell)
    path = workspace / "dir with space$(x)"
    assert inv(workspace, "env", "--dataset-path", str(path), "--ref", "v1.0").code == 0
    expected = dotenv_values(workspace / ".env")
    printed = " ".join(f'"${name}"' for name in NAMES)
    done = subprocess.run(
        [program, "-c", f"set -a; . ./.env; set +a; printf '%s\\n' {printed}"],
        cwd=workspace,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == [expected[name] for name in NAMES], shell


def test_precedence_end_to_end(workspace: Path) -> None:
    """A flag beats the environment, which beats .env; what env writes records the winner."""
    (workspace / ".env").write_text("# keep me\nMMLAB_PROJECTS='from-dotenv'\nMINE=1\n")
    run = inv(
        workspace,
        "env",
        "--ref",
        "from-flag",
        env={"MMLAB_PROJECTS": "from-environment", "MMLAB_EXTENSION_REF": "from-environment"},
    )
    assert run.code == 0, run.err
    assert "MMLAB_PROJECTS='from-environment' (from environment)" in run.out
    assert "MMLAB_EXTENSION_REF='from-flag' (from flag)" in run.out
    text = (workspace / ".env").read_text()
    assert text.startswith("# keep me\nexport MMLAB_PROJECTS='from-environment'\nMINE=1\n")


def test_dry_env_changes_nothing(workspace: Path) -> None:
    """`inv --dry env` prints what would be set and written, and writes nothing."""
    run = inv(workspace, "--dry", "env")
    assert run.code == 0
    assert f"would write {workspace}/.env" in run.lines
    assert any(line.startswith("would set MMLAB_PROJECTS=") for line in run.lines)
    assert not (workspace / ".env").exists()


def test_console_script_uses_the_current_folder(tmp_path: Path) -> None:
    """`mmlab-bootstrap env` works in any folder, with that folder as the workspace root."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    run = run_cli(["mmlab-bootstrap", "env"], folder)
    assert run.code == 0, run.err
    assert dotenv_values(folder / ".env")["MMLAB_EXTENSION_PATH"] == str(folder / "mmlab_extension")


def test_console_script_version_and_list(tmp_path: Path) -> None:
    """`--version` and `--list` behave like invoke's."""
    version = run_cli(["mmlab-bootstrap", "--version"], tmp_path)
    assert version.code == 0 and __version__ in version.out
    listing = run_cli(["mmlab-bootstrap", "--list"], tmp_path)
    assert listing.code == 0
    for name in ("env", "layout"):
        assert f"  {name} " in listing.out


def test_every_task_parses_its_arguments_and_has_help() -> None:
    """Each task's flags parse, and every flag has help text."""
    collection = namespace(root=None)
    for name in collection.task_names:
        task = collection[name]
        arguments = task.get_arguments()
        assert task.__doc__
        for argument in arguments:
            assert argument.help, (name, argument.name)


def test_output_is_plain_when_piped(workspace: Path) -> None:
    """No escape codes when stdout and stderr are pipes (the same runs on a terminal are
    colored, below): done lines, problems and errors."""
    runs = [
        inv_process(workspace, "layout"),
        inv_process(workspace, "status"),
        inv_process(workspace, "link-data"),
    ]
    assert [run.code for run in runs] == [0, 1, 1], runs
    assert "created " in runs[0].out and "error: " in runs[2].err
    assert not any("\x1b[" in run.out + run.err for run in runs)


def test_output_is_colored_on_a_terminal_unless_no_color(workspace: Path, tmp_path: Path) -> None:
    """On a terminal, done lines are green; with NO_COLOR set, the same changes are plain."""
    colored = run_in_terminal(["inv", "layout"], workspace)[1]
    assert b"\x1b[32mcreated " in colored
    roots = ["--dataset-path", str(tmp_path / "d"), "--checkpoints-path", str(tmp_path / "c")]
    plain = run_in_terminal(["inv", "layout", *roots], workspace, {"NO_COLOR": "1"})[1]
    assert b"created " in plain and b"\x1b[" not in plain


def test_console_script_help_shows_only_the_flags_that_apply(tmp_path: Path) -> None:
    """`mmlab-bootstrap --help` lists the core flags this tool uses, describes `--dry` as what
    it does here, and leaves out invoke's shell-command flags; completion still works."""
    shown = run_cli(["mmlab-bootstrap", "--help"], tmp_path)
    assert shown.code == 0, shown.err
    core = shown.out.split("Subcommands:")[0]
    for flag in ("--dry", "--help", "--list", "--version", "--debug", "--complete"):
        assert flag in core, flag
    for flag in ("--pty", "--echo", "--prompt-for-sudo-password", "--hide", "--warn-only",
                 "--command-timeout", "--write-pyc", "--config", "--list-format"):  # fmt: skip
        assert flag not in core, flag
    assert "show every change, make none" in core and "Echo commands" not in core
    completed = run_cli(["mmlab-bootstrap", "--complete", "--", "mmlab-bootstrap", "--"], tmp_path)
    assert {"--dry", "--list", "--help"} <= set(completed.lines), completed.out
    tasks = run_cli(["mmlab-bootstrap", "--complete", "--", "mmlab-bootstrap"], tmp_path)
    assert {"env", "link-data", "bootstrap"} <= set(tasks.lines), tasks.out
    script = run_cli(["mmlab-bootstrap", "--print-completion-script", "bash"], tmp_path)
    assert script.code == 0 and "mmlab-bootstrap" in script.out
    dry = run_cli(["mmlab-bootstrap", "--dry", "env"], tmp_path)
    assert dry.code == 0 and f"would write {tmp_path}/.env" in dry.lines
    assert not (tmp_path / ".env").exists()


def test_debug_shows_the_full_traceback(tmp_path: Path) -> None:
    """`--debug` adds the traceback of an error (for a bug report) before the usual two lines;
    without it there is none."""
    plain = run_cli(["mmlab-bootstrap", "env", "--projects", "a/b"], tmp_path)
    assert_clean_error(plain, "MMLAB_PROJECTS (from flag)")
    debug = run_cli(["mmlab-bootstrap", "--debug", "env", "--projects", "a/b"], tmp_path)
    assert debug.code == 1
    assert "Traceback (most recent call last)" in debug.err
    assert "SettingsError: MMLAB_PROJECTS (from flag)" in debug.err
    lines = [line for line in debug.err.splitlines() if line.startswith(("error: ", "hint: "))]
    assert len(lines) == 2 and not (tmp_path / ".env").exists()

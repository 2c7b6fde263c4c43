"""The command line around the tasks: which workspace the console script finds, which git the
tool accepts, what `inv` alone shows, "did you mean", `--quiet`, and sizes in one unit."""

from __future__ import annotations

import io
import json
import os
import re
import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.git import command as gitmodule
from mmlab_bootstrap.output.progress import Board
from mmlab_bootstrap.output.report import Reporter
from mmlab_bootstrap.output.text import human_size
from mmlab_bootstrap.run.session import find_root

from .conftest import Cloned, assert_clean_error, inv, run_cli, scaled
from .lib.ckptfixture import checkpoint, random_bytes, write_index
from .lib.gitfixture import Fixture

# --- the console script finds its workspace (issue 21, point 5) --------------------------------


def _workspace_with_nested_folder(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "ws"
    root.mkdir()
    assert run_cli(["mmlab-bootstrap", "env"], root).code == 0
    nested = root / "mmlab_extension" / "mmdetection3d"
    nested.mkdir(parents=True)
    return root, nested


def test_console_script_walks_up_to_its_workspace(tmp_path: Path) -> None:
    """Inside the superproject, `mmlab-bootstrap` uses the workspace above (one note line on
    stderr naming it), writes no second `.env`, and agrees with `inv`, which walks up to
    `tasks.py` the same way."""
    root, nested = _workspace_with_nested_folder(tmp_path)
    run = run_cli(["mmlab-bootstrap", "env", "--projects", "mmdetection3d"], nested)
    assert run.code == 0, run.err
    assert run.err.splitlines() == [f"note: using the workspace {root} (not the current folder)"]
    assert not (nested / ".env").exists()
    assert dotenv_values(root / ".env")["MMLAB_PROJECTS"] == "mmdetection3d"
    status = run_cli(["mmlab-bootstrap", "status", "--json"], nested)
    assert json.loads(status.out)["workspace"] == str(root)
    at_root = run_cli(["mmlab-bootstrap", "status"], root)
    assert "note:" not in at_root.err


def test_console_script_through_a_link_into_storage_finds_its_workspace(tmp_path: Path) -> None:
    """`cd workspace/mmlab_extension/mmdetection3d/data/kitti` goes through the data link into
    the storage root, outside the workspace: the real path has no workspace up, the shell's
    path (`$PWD`) has; the console script uses that one, never a new workspace in storage."""
    root, nested = _workspace_with_nested_folder(tmp_path)
    storage = tmp_path / "bigdisk" / "mmdetection3d" / "data"
    (storage / "kitti").mkdir(parents=True)
    (nested / "data").symlink_to(storage)
    logical = nested / "data" / "kitti"
    run = run_cli(["mmlab-bootstrap", "status", "--json"], logical, env={"PWD": str(logical)})
    assert json.loads(run.out)["workspace"] == str(root), run.err
    assert f"note: using the workspace {root} (not the current folder)" in run.err
    assert sorted(os.listdir(storage / "kitti")) == []  # no .env, state or lock made there
    alone = run_cli(["mmlab-bootstrap", "status", "--json"], logical, env={"PWD": str(storage)})
    assert json.loads(alone.out)["workspace"] == str(storage / "kitti")  # (no such spelling)


def test_inv_and_the_console_script_agree_below_a_checkout(workspace: Path) -> None:
    """Below a checkout's `tasks.py` (before any `.env`), both use the checkout."""
    nested = workspace / "mmlab_extension" / "mmcv"
    nested.mkdir(parents=True)
    by_inv = run_cli(["inv", "status", "--json"], nested)
    by_script = run_cli(["mmlab-bootstrap", "status", "--json"], nested)
    assert (
        by_inv.err
        == by_script.err
        == f"note: using the workspace {workspace} (not the current folder)\n"
    )
    assert json.loads(by_inv.out)["workspace"] == str(workspace)
    assert json.loads(by_script.out)["workspace"] == str(workspace)
    assert not (nested / ".env").exists() and not (workspace / ".env").exists()


def test_a_workspace_inside_another_ones_superproject_is_refused(tmp_path: Path) -> None:
    """A `.env` an older run left inside the superproject does not make a second workspace."""
    root, nested = _workspace_with_nested_folder(tmp_path)
    (nested / ".env").write_text("MMLAB_PROJECTS='mmcv'\n")
    run = run_cli(["mmlab-bootstrap", "bootstrap"], nested)
    assert_clean_error(run, str(root), "superproject")
    assert not (nested / "mmlab_extension").exists()


def test_no_new_workspace_inside_an_mmlab_superproject(tmp_path: Path) -> None:
    """A superproject whose workspace lies elsewhere (a custom MMLAB_EXTENSION_PATH): no
    workspace is made, and nothing cloned, inside it."""
    superproject = tmp_path / "elsewhere" / "mmlab_extension"
    (superproject / "mmdetection3d").mkdir(parents=True)
    (superproject / ".gitmodules").write_text(
        "".join(
            f'[submodule "{name}"]\n\tpath = {name}\n\turl = https://github.com/open-mmlab/{name}\n'
            for name in ("mmdetection3d", "mmcv")
        )
    )
    run = run_cli(["mmlab-bootstrap", "env"], superproject / "mmdetection3d")
    assert_clean_error(run, str(superproject), "superproject")
    assert not (superproject / "mmdetection3d" / ".env").exists()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


MARKERS = [
    ("journal", ".mmlab-bootstrap-state.json", "{}", True),
    ("lock", ".mmlab-bootstrap.lock", "", True),
    ("env-export", ".env", "export MMLAB_PROJECTS='mmcv'\n", True),
    ("env-plain", ".env", "  MMLAB_EXTENSION_PATH=/x\n", True),
    ("tasks", "tasks.py", "from mmlab_bootstrap.cli.tasks import namespace\n", True),
    ("env-other-tool", ".env", "DATABASE_URL=postgres://x\n", False),
    ("env-commented", ".env", "# MMLAB_PROJECTS=mmcv\n", False),
    ("env-lowercase", ".env", "mmlab_projects=mmcv\n", False),
    ("env-binary", ".env", "\x00\xff\xfe", False),
    ("tasks-other", "tasks.py", "from invoke import task\n", False),
    ("env-folder", ".env", None, False),
    ("env-fifo", ".env", _fifo, False),
    ("env-dangling-link", ".env", Path("/nonexistent/.env"), False),
]


@pytest.mark.parametrize(
    ("name", "content", "marks"),
    [marker[1:] for marker in MARKERS],
    ids=[marker[0] for marker in MARKERS],
)
def test_what_marks_a_workspace(tmp_path: Path, name: str, content: object, marks: bool) -> None:
    """Hostile table: only this tool's own files mark a workspace; a FIFO, a folder or a
    dangling link named `.env` is not read (never blocks) and marks nothing."""
    top = tmp_path / "top"
    below = top / "a" / "b"
    below.mkdir(parents=True)
    if content is None:
        (top / name).mkdir()
    elif isinstance(content, Path):
        (top / name).symlink_to(content)
    elif callable(content):
        content(top / name)
    else:
        (top / name).write_bytes(str(content).encode("latin-1"))
    assert find_root(below) == (top if marks else below)


OUTER_ENVS = [
    ("default-place", "MMLAB_PROJECTS='mmcv'\n", "mmlab_extension/mmcv", True),
    ("custom-place", "MMLAB_EXTENSION_PATH='{root}/src/ext'\n", "src/ext/mmcv", True),
    ("relative-place", "MMLAB_EXTENSION_PATH=src/ext\n", "src/ext/mmcv", True),
    ("beside-the-superproject", "MMLAB_PROJECTS='mmcv'\n", "other/mmcv", False),
    ("unreadable-env", 'MMLAB_PROJECTS=a\n"broken\n', "mmlab_extension/mmcv", True),
]


@pytest.mark.parametrize(
    ("outer_env", "inner", "refused"), [o[1:] for o in OUTER_ENVS], ids=[o[0] for o in OUTER_ENVS]
)
def test_a_workspace_inside_a_superproject_wherever_it_lies(
    tmp_path: Path, outer_env: str, inner: str, refused: bool
) -> None:
    """The outer workspace's superproject is where its `.env` puts it (the default place when
    the file cannot be read); a workspace inside it is refused, one beside it is not."""
    root = tmp_path / "ws"
    (root / inner).mkdir(parents=True)
    (root / ".env").write_text(outer_env.format(root=root))
    (root / inner / ".env").write_text("MMLAB_PROJECTS='mmcv'\n")
    if refused:
        with pytest.raises(BootstrapError, match="superproject of the workspace"):
            find_root(root / inner)
    else:
        assert find_root(root / inner) == root / inner


def test_the_nearest_workspace_wins(tmp_path: Path) -> None:
    """Two workspaces side by side under one folder each find their own."""
    for name in ("one", "two"):
        (tmp_path / name / "deep").mkdir(parents=True)
        (tmp_path / name / ".env").write_text("MMLAB_PROJECTS='mmcv'\n")
    assert find_root(tmp_path / "two" / "deep") == tmp_path / "two"


# --- the git on PATH (issue 21, point 6) -------------------------------------------------------


def _fake_git(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "git"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def _path_with(folder: Path) -> str:
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


GITS = [
    ("ubuntu-20.04", "echo 'git version 2.25.1'", "git 2.25.1", "too old"),
    ("debian-11", "echo 'git version 2.30.2'", "git 2.30.2", "2.31 or newer"),
    ("windows-suffix", "echo 'git version 2.30.0.windows.1'", "git 2.30.0", "too old"),
    ("two-parts", "echo 'git version 2.28'", "git 2.28.0", "too old"),
    ("garbage", "echo 'hello world'", "'hello world'", "could not tell"),
    ("escape", "printf 'git \\033[31mversion\\n'", "\\x1b[31m", "could not tell"),
    ("nothing", "exit 0", "printed nothing", "could not tell"),
    ("fails", "echo 'git version 2.40.0'; exit 3", "exit code 3", "could not tell"),
    ("flood", "yes 'git version'", "could not tell", "git at"),
    ("hangs", "exec sleep 600", "no answer", "--version"),
    ("hangs-after-output", "echo 'git version 2.40.0'; sleep 600", "no answer", "git at"),
]


@pytest.mark.parametrize(
    ("body", "first", "second"), [g[1:] for g in GITS], ids=[g[0] for g in GITS]
)
def test_a_git_the_tool_cannot_use_is_named(
    workspace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    first: str,
    second: str,
) -> None:
    """Hostile table of `git --version` answers: one error naming what was found and the
    minimum, one hint, nothing changed; a git that hangs is stopped after the timeout."""
    if "sleep" in body:  # only a git that hangs waits for the (shortened) timeout
        monkeypatch.setattr(gitmodule, "VERSION_TIMEOUT", 1.0)
    fake = _fake_git(tmp_path / "fakebin", body)
    run = inv(workspace, "clone", "--repo", "file:///nowhere/x.git", env={"PATH": _path_with(fake)})
    assert_clean_error(run, first, second)
    assert "2.31" in run.err
    left = {entry.name for entry in workspace.iterdir()} - {".mmlab-bootstrap.lock"}
    assert left == {"tasks.py"}  # the lock file is the tool's own, kept by every run


def test_git_missing_from_path_is_named(workspace: Path, tmp_path: Path) -> None:
    """No git on PATH: said so (not "No such file or directory", not "run it again")."""
    empty = tmp_path / "empty"
    empty.mkdir()
    run = inv(workspace, "bootstrap", env={"PATH": str(empty)})
    assert_clean_error(run, "git was not found on PATH")
    assert "again" not in run.err
    assert not (workspace / ".env").exists()


def test_tasks_that_run_no_git_do_not_ask_for_it(workspace: Path, tmp_path: Path) -> None:
    """`env` works with an old git on PATH: only tasks that run git check it."""
    fake = _fake_git(tmp_path / "fakebin", "echo 'git version 2.25.1'")
    run = inv(workspace, "env", env={"PATH": _path_with(fake)})
    assert run.code == 0, run.err


@pytest.mark.parametrize(
    "said",
    ["git version 2.31.0", "git version 2.39.3 (Apple Git-145)", "git version 3.0.0.rc1"],
    ids=["minimum", "apple", "future"],
)
def test_git_versions_that_are_accepted(tmp_path: Path, said: str) -> None:
    """The minimum itself, Apple's git and a later major version pass."""
    fake = _fake_git(tmp_path / "fakebin", f"echo '{said}'")
    assert gitmodule.git_problem(str(fake)) is None


@given(st.text(max_size=200))
@settings(max_examples=scaled(200, 2000), deadline=None)
def test_any_version_line_parses_or_is_refused(line: str) -> None:
    """Property: whatever `git --version` prints, reading it gives a version or None (never
    an exception), and a version is only read from a line that starts like git's own."""
    version = gitmodule.version_of(line)
    assert version is None or line.startswith("git version ")


@pytest.mark.parametrize(
    ("line", "version"),
    [
        ("git version 2.39.5", (2, 39, 5)),
        ("git version 2.30.0.windows.1", (2, 30, 0)),
        ("git version 2.39.3 (Apple Git-145)", (2, 39, 3)),
        ("git version 2.28", (2, 28, 0)),
        ("git version \u0662.\u0663\u0669.\u0660", None),  # non-ASCII digits: no version
        ("git version v2.40", None),
        ("hub version 2.14.2", None),
    ],
)
def test_version_lines(line: str, version: tuple[int, int, int] | None) -> None:
    """The version strings distributions print, and near misses."""
    assert gitmodule.version_of(line) == version


def test_git_is_asked_its_version_once_per_run(
    workspace: Path, tmp_path: Path, fixture: Fixture
) -> None:
    """A whole bootstrap (hundreds of git commands) asks `git --version` once."""
    log = tmp_path / "asked"
    real = os.popen("command -v git").read().strip()
    fake = _fake_git(
        tmp_path / "fakebin",
        f'[ "$1" = --version ] && echo asked >> {log}\nexec {real} "$@"',
    )
    run = inv(workspace, "bootstrap", "--repo", fixture.url(), env={"PATH": _path_with(fake)})
    assert run.code == 0, run.err
    assert log.read_text().splitlines() == ["asked"]


def test_the_version_error_is_a_bootstrap_error() -> None:
    """The check raises the package's domain error (one place turns it into exit 1)."""
    assert issubclass(gitmodule.GitVersionError, BootstrapError)


# --- `inv` alone, --help and "did you mean" (issue 21, also expected) -------------------------


@pytest.mark.parametrize("program", ["inv", "mmlab-bootstrap"])
def test_the_program_alone_lists_the_tasks(workspace: Path, program: str) -> None:
    """`inv` (or `mmlab-bootstrap`) with no task lists this tool's tasks, not invoke's help."""
    run = run_cli([program], workspace)
    assert run.code == 0, run.err
    assert "Core options" not in run.out and "--prompt-for-sudo-password" not in run.out
    for name in ("bootstrap", "env", "link-data", "fetch-checkpoints", "doctor"):
        assert f"  {name} " in run.out
    assert f"{program} --dry TASK" in run.out


@pytest.mark.parametrize(
    ("task", "says"),
    [("bootstrap", "--dry"), ("env", "--dry"), ("unlink", "--dry"), ("status", "changes nothing")],
)
def test_task_help_says_what_dry_does(workspace: Path, task: str, says: str) -> None:
    """`inv --help TASK` says what `--dry` does for it; `--list` still shows one line each."""
    run = inv(workspace, "--help", task)
    assert run.code == 0 and says in run.out
    listing = inv(workspace, "--list")
    assert "--dry" not in listing.out


MISSPELT = [
    ("task", ["bootsrap"], "has no task 'bootsrap'", "did you mean bootstrap?"),
    ("task-after-task", ["env", "statsu"], "has no task 'statsu'", "did you mean status?"),
    ("flag", ["env", "--projcts", "x"], "env has no flag '--projcts'", "did you mean --projects?"),
    ("core-flag", ["--dyr", "env"], "has no flag '--dyr'", "did you mean --dry?"),
    ("nothing-close", ["zzzzzz"], "has no task 'zzzzzz'", "--list shows every task"),
    ("escape", ["\x1b[2J"], "has no task '\\x1b[2J'", "--list"),
]


@pytest.mark.parametrize(
    ("argv", "error", "hint"), [m[1:] for m in MISSPELT], ids=[m[0] for m in MISSPELT]
)
def test_a_misspelt_task_or_flag_gets_a_suggestion(
    tmp_path: Path, argv: list[str], error: str, hint: str
) -> None:
    """Hostile table: `mmlab-bootstrap` turns invoke's "No idea what 'x' is!" into one error
    and a hint with the closest task or flag; a terminal escape is shown escaped."""
    run = run_cli(["mmlab-bootstrap", *argv], tmp_path)
    assert_clean_error(run, error)
    assert hint in run.err.splitlines()[1]
    assert not (tmp_path / ".env").exists()


def test_a_misspelt_project_gets_a_suggestion(cloned: Cloned) -> None:
    """`--projects 'mmdetection mmdetecton3d'`: did you mean mmdetection3d, with the whole
    corrected list to paste."""
    run = inv(cloned.root, "link-data", "--projects", "mmdetection mmdetecton3d")
    assert_clean_error(run, "'mmdetecton3d' has no folder")
    hint = run.err.splitlines()[1]
    assert "did you mean mmdetection3d?" in hint
    assert "--projects 'mmdetection mmdetection3d'" in hint


def test_status_names_a_misspelt_project_with_a_suggestion(cloned: Cloned) -> None:
    """`MMLAB_PROJECTS=mmdetecton3d`: status names the project with no folder and the closest
    name, as bootstrap and the link tasks do (not only "…/data is missing")."""
    run = inv(cloned.root, "status", env={"MMLAB_PROJECTS": "mmdetection mmdetecton3d"})
    assert run.code == 1
    assert "'mmdetecton3d' has no folder" in run.out, run.out
    assert "did you mean mmdetection3d?" in run.out, run.out
    assert "Traceback" not in run.err


def test_a_misspelt_model_gets_a_suggestion(cloned: Cloned) -> None:
    """`--model pointpilars_car`: did you mean pointpillars_car (with its project: prefix
    kept when one was given)."""
    items = [
        checkpoint("mmdetection3d", "pointpillars_car", random_bytes(100)),
        checkpoint("mmdetection3d", "second_car", random_bytes(100)),
    ]
    write_index(cloned.ext / "mmdetection3d", items)
    run = inv(cloned.root, "fetch-checkpoints", "--model", "pointpilars_car")
    assert_clean_error(run, "no model named 'pointpilars_car'")
    assert "did you mean inv fetch-checkpoints --model pointpillars_car?" in run.err
    scoped = inv(cloned.root, "fetch-checkpoints", "--model", "mmdetection3d:secnd_car")
    assert "--model mmdetection3d:second_car?" in scoped.err
    project = inv(cloned.root, "fetch-checkpoints", "--model", "mmdetecton3d:second_car")
    assert_clean_error(project, "names the project 'mmdetecton3d'")
    assert "--model mmdetection3d:second_car?" in project.err


# --- status/doctor --quiet ----------------------------------------------------------------------


def test_status_and_doctor_quiet_print_only_the_answer(cloned: Cloned) -> None:
    """`--quiet`: the problems, one line each (the same as `--json`'s list), else one line."""
    unhealthy = inv(cloned.root, "status", "--quiet")
    problems = json.loads(inv(cloned.root, "status", "--json").out)["problems"]
    assert (unhealthy.code, unhealthy.lines) == (1, problems) and problems
    doctor = inv(cloned.root, "doctor", "--quiet")
    assert doctor.code == 1
    assert doctor.lines == json.loads(inv(cloned.root, "doctor", "--json").out)["problems"]
    assert inv(cloned.root, "bootstrap").code == 0
    healthy = inv(cloned.root, "status", "-q")
    assert (healthy.code, healthy.lines, healthy.err) == (0, ["workspace healthy"], "")


# --- a warning during the live progress display; one unit system for sizes ----------------------


def _screen(written: str, width: int) -> list[str]:
    """What a terminal `width` columns wide shows after `written` (the few sequences the live
    display uses: ESC[nF up n lines, ESC[2K clear the line, ESC[J clear below; wrapping)."""
    rows: list[str] = [""]
    row = col = 0
    for token in re.findall(r"\x1b\[(\d*)([A-Za-z])|(.)", written, re.DOTALL):
        count, code, char = token
        if code == "F":
            row, col = max(0, row - int(count or 1)), 0
        elif code == "K":
            rows[row] = ""
        elif code == "J":
            rows[row] = rows[row][:col]
            del rows[row + 1 :]
        elif char == "\n":
            row, col = row + 1, 0
        elif char:
            if col == width:
                row, col = row + 1, 0
            while len(rows) <= row:
                rows.append("")
            line = rows[row].ljust(col)
            rows[row] = line[:col] + char + line[col + 1 :]
            col += 1
        while len(rows) <= row:
            rows.append("")
    return rows


def test_a_warning_during_live_progress_is_shown_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning longer than the terminal is wide, printed (by any code) while the live lines
    are drawn, stays whole on the screen after later redraws: it is printed above them."""
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = io.StringIO()
    report = Reporter(out=terminal, err=terminal)
    warning = "git failed for https://example.com/x.git (Connection timed out); retrying in 1s"
    with Board(report, live=True, stream=terminal) as board:
        board.expect(2)
        board.add("mmcv", "https://example.com/mmcv.git")
        report.warn(warning)
        board.watcher("mmcv")("Receiving objects:  50% (5/10), 1.00 MiB | 1 MiB/s\r")
        board.add("mmdeploy", "https://example.com/mmdeploy.git")
        board.finish("mmcv", True)
    assert f"warning: {warning}" in "".join(_screen(terminal.getvalue(), 40))


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1500, "1.5 KiB"),
        (3 << 20, "3.0 MiB"),
        (5 * 2**30, "5.0 GiB"),
        (2**60, "1024.0 PiB"),
        (1234.5, "1.2 KiB"),
    ],
)
def test_one_unit_system_for_sizes(size: float, text: str) -> None:
    """Every size a task prints is IEC (as git's own progress): one helper formats them."""
    assert human_size(size) == text


def test_no_other_size_formatting_in_the_package() -> None:
    """No module formats sizes its own way (SI `MB`/`GB`, `/ 1e6`, its own 1024 loop)."""
    package = Path(gitmodule.__file__).parent
    for module in package.glob("*.py"):
        text = module.read_text()
        for pattern in (r"\d\s?[kMGT]B\b", r"/ 1e[369]", r"[kMG]B free", r"unit_divisor"):
            assert not re.search(pattern, text), (module.name, pattern)

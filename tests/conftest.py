"""Shared fixtures: an isolated environment, a temporary workspace and ways to run the tasks."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .lib.gitfixture import Fixture, Templates, build_superproject

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Two profiles: `quick` (the default: the README's `pytest`) and `thorough`
# (MMLAB_TEST_PROFILE=thorough, what .ci/run sets): more hypothesis examples and more kills.
PROFILE = os.environ.get("MMLAB_TEST_PROFILE", "quick")
if PROFILE not in ("quick", "thorough"):
    raise pytest.UsageError(f"MMLAB_TEST_PROFILE must be quick or thorough, not {PROFILE!r}")


@pytest.hookimpl(optionalhook=True)  # (xdist's hook: absent under -p no:xdist)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (the README's `pytest`): two workers per core. Most tests spend their time
    waiting (on git, shells, loopback servers, fsync), not computing; measured on 2 cores,
    4 workers took 55 s where 2 took 72 s for the same three files."""
    return 2 * len(os.sched_getaffinity(0))


def scaled(quick: int, thorough: int) -> int:
    """A count (examples, kills) for the profile the suite runs under."""
    return thorough if PROFILE == "thorough" else quick


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MMLAB_ variable, no user git config, a private HOME: git as a user has it (stock
    settings; file:// submodules are refused unless the tool itself allows them); no proxy."""
    for name in list(os.environ):
        if name.startswith(("MMLAB_", "GIT_", "INVOKE_")) or name in (
            "NO_COLOR",
            "XDG_CONFIG_HOME",
        ):
            monkeypatch.delenv(name)
    # No team defaults file of the machine (in-process runs; /etc is never written).
    monkeypatch.setattr(
        "mmlab_bootstrap.settings.values.SYSTEM_DEFAULTS_FILE", tmp_path / "etc" / "defaults.env"
    )
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    # The loopback servers are reached directly, whatever proxy the machine sets.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty workspace folder holding the project's thin tasks.py."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(REPO_ROOT / "tasks.py", root / "tasks.py")
    return root


@dataclass
class Run:
    """What a command printed and how it exited."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_cli(
    argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> Run:
    """Run a real executable (`inv`, `mmlab-bootstrap`) in `cwd`."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    program, *rest = argv
    executable = shutil.which(program, path=full_env["PATH"]) or program
    done = subprocess.run(
        [executable, *rest],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def inv_process(workspace: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run the real `inv` executable in the workspace, in a process of its own: for what the
    process itself is about (exit codes, signals, pipes, the installed script)."""
    return run_cli(["inv", *args], workspace, env)


def inv(workspace: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run `inv ARGS` in the workspace, in this process (see `run_inproc`)."""
    return run_inproc(workspace, *args, env=env)


@contextlib.contextmanager
def _redirected(descriptor: int, folder: Path) -> Iterator[tempfile._TemporaryFileWrapper[bytes]]:
    """What is written to file descriptor `descriptor` (git's own stderr, say) goes to an
    unnamed file in `folder` (the test's own, not /tmp: see the write guard)."""
    saved = os.dup(descriptor)
    with tempfile.TemporaryFile(dir=folder) as sink:
        os.dup2(sink.fileno(), descriptor)
        try:
            yield sink
        finally:
            os.dup2(saved, descriptor)
            os.close(saved)


def _task_help() -> dict[Any, dict[str, str]]:
    from mmlab_bootstrap.cli.tasks import namespace

    return {task: dict(task.help) for task in namespace(root=None).tasks.values()}


# invoke pops each flag's help text from its task when it builds a parser (once per process,
# normally); the tasks are module-level objects shared by every run in this one.
_PRISTINE_HELP = _task_help()


def _restore_help() -> None:
    for task, text in _PRISTINE_HELP.items():
        task.help.clear()
        task.help.update(text)


def run_inproc(
    workspace: Path, *args: str, env: dict[str, str] | None = None, program: str = "inv"
) -> Run:
    """Run the tasks in this process, as `inv ARGS` in `workspace` would (real argument
    parsing by invoke's `Program`, real output), and return the same `Run` as `inv()`.

    `env` is set in `os.environ` for the call only, the current folder is the workspace, and
    both sys.stdout/stderr and file descriptors 1/2 (what git or other children write) are
    captured. An exception that escapes is written as the traceback a process would print.
    Not for what needs a process of its own: signals, kills, a terminal, the console script.
    """
    from invoke.program import Program

    from mmlab_bootstrap.cli.tasks import namespace

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = (sys.stdout, sys.stderr)
    saved_bytecode = sys.dont_write_bytecode
    root_logger = logging.getLogger()
    saved_logging = (root_logger.level, list(root_logger.handlers))
    collection = namespace(root=workspace, program=program)
    _restore_help()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    os.environ.update(env or {})
    os.chdir(workspace)
    try:
        with _redirected(1, workspace.parent) as fd_out, _redirected(2, workspace.parent) as fd_err:
            sys.stdout, sys.stderr = out, err
            try:
                names = ["invoke", "inv"] if program == "inv" else [program]
                binary = "inv[oke]" if program == "inv" else program
                Program(namespace=collection, binary=binary, binary_names=names).run(
                    [program, *args]
                )
            except SystemExit as done:
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            except BaseException:
                err.write(traceback.format_exc())
                code = 1
            finally:
                sys.stdout, sys.stderr = saved_streams
            fd_out.seek(0)
            fd_err.seek(0)
            raw_out, raw_err = fd_out.read(), fd_err.read()
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.dont_write_bytecode = saved_bytecode
        root_logger.setLevel(saved_logging[0])
        root_logger.handlers[:] = saved_logging[1]
        _restore_help()
    decode = {"encoding": "utf-8", "errors": "replace"}
    return Run(
        code, out.getvalue() + raw_out.decode(**decode), err.getvalue() + raw_err.decode(**decode)
    )


def assert_clean_error(run: Run, *fragments: str) -> None:
    """Exit 1, exactly one error line and one hint line, no traceback."""
    assert run.code == 1, (run.code, run.out, run.err)
    lines = run.err.splitlines()
    assert len(lines) == 2, run.err
    assert lines[0].startswith("error: "), run.err
    assert lines[1].startswith("hint: "), run.err
    assert "Traceback" not in run.out + run.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# The write guard: an audit hook (installed once; hooks cannot be removed) that, while a test
# holding the `write_guard` fixture runs, records every write this process makes outside the
# allowed folders. What a subprocess writes is not seen: audit hooks are per process.
_WRITE_MODES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_GUARDED_EVENTS = {
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.link": (0, 1),
    "os.mkdir": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.rmdir": (0,),
    "os.symlink": (1,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "shutil.copyfile": (1,),
    "shutil.copytree": (1,),
    "shutil.move": (0, 1),
    "shutil.rmtree": (0,),
}
_DIR_FD_AT = {"os.mkdir": 2, "os.remove": 1, "os.rmdir": 1, "os.symlink": 2, "os.chmod": 2,
              "os.rename": 2, "os.utime": 3, "shutil.rmtree": 1}  # fmt: skip


@dataclass
class _Guard:
    allowed: tuple[str, ...] = ()
    active: bool = False
    outside: list[str] | None = None


_GUARD = _Guard()


def _absolute(path: object, dir_fd: object) -> str | None:
    if isinstance(path, int):
        return None  # a descriptor: where it points was checked when it was opened
    name = os.fsdecode(path)  # type: ignore[arg-type]
    if not os.path.isabs(name):
        base = os.readlink(f"/proc/self/fd/{dir_fd}") if isinstance(dir_fd, int) else os.getcwd()
        name = os.path.join(base, name)
    return os.path.normpath(name)


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _GUARD.active:
        return
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_MODES
        )
        places: tuple[object, ...] = (path,) if writes else ()
        dir_fd: object = None
    elif event in _GUARDED_EVENTS:
        places = tuple(args[i] for i in _GUARDED_EVENTS[event])
        at = _DIR_FD_AT.get(event)
        dir_fd = args[at] if at is not None and at < len(args) else None
    else:
        return
    _GUARD.active = False  # the checks below must not audit themselves
    try:
        for place in places:
            name = _absolute(place, dir_fd)
            if name is None or name == os.devnull or "__pycache__" in name:
                continue
            if not any(name == root or name.startswith(root + os.sep) for root in _GUARD.allowed):
                assert _GUARD.outside is not None
                _GUARD.outside.append(f"{event} {name}")
    finally:
        _GUARD.active = True


sys.addaudithook(_audit)


@contextlib.contextmanager
def guard_paused() -> Iterator[None]:
    """The write guard off for a block: for fixtures wider than one test (session or module
    scope) that build their shared folder under pytest's base folder, outside any one test's."""
    active, _GUARD.active = _GUARD.active, False
    try:
        yield
    finally:
        _GUARD.active = active


def allow_writes(folder: Path) -> None:
    """Let the running test write in `folder` too: one it made for a reason its own folder
    cannot serve (reachable by other users, on another filesystem), and removes afterwards."""
    _GUARD.allowed = (*_GUARD.allowed, str(folder), os.path.realpath(folder))


def folder_outside(prefix: str, parent: str | None = None) -> Path:
    """A new folder outside the test's own, that the running test may write in (`allow_writes`):
    for one other users must reach (pytest's folders are root's alone) or one on another
    filesystem. The caller removes it."""
    with guard_paused():
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    allow_writes(folder)
    return folder


@pytest.fixture(autouse=True)
def write_guard(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """Fail the test when this process writes (opens for writing, creates, renames, removes,
    links, changes modes) anything outside the test's temporary folder: every test, as
    dotbot's suite does. A test that must write elsewhere says where and why with
    `@pytest.mark.writes_outside(reason=...)`; the guard is then off for it.

    Hypothesis' own folder (its example database) is allowed. Subprocesses are not guarded
    (see `_audit`)."""
    marker = request.node.get_closest_marker("writes_outside")
    if marker is not None:
        if not marker.kwargs.get("reason"):
            pytest.fail("@pytest.mark.writes_outside needs a reason=")
        yield []
        return
    from hypothesis.configuration import storage_directory

    allowed = [
        str(tmp_path.resolve()),
        str(tmp_path),
        os.path.abspath(storage_directory(intent_to_write=False).path),
    ]
    outside: list[str] = []
    _GUARD.allowed, _GUARD.outside, _GUARD.active = tuple(allowed), outside, True
    try:
        yield outside
    finally:
        _GUARD.active = False
    assert not outside, f"wrote outside the test's temporary folder: {outside}"


@pytest.fixture(scope="session", autouse=True)
def superproject_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`build_superproject` builds each shape once per process (each xdist worker has its
    own folder) and copies it after that: the build is deterministic."""
    Templates.root = tmp_path_factory.mktemp("superprojects")
    Templates.paused = guard_paused
    yield
    Templates.root = None
    Templates.built.clear()


LOCK_FILE = ".mmlab-bootstrap.lock"


def entries(folder: Path) -> list[str]:
    """The names in a folder, the workspace lock file left out."""
    return sorted(name for name in os.listdir(folder) if name != LOCK_FILE)


def snapshot(*roots: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Every entry under `roots` with its type and content (bytes, link target), to compare.

    The workspace lock file is left out: it only names the run that last held the lock.
    """
    state: dict[str, tuple[str, bytes | str | None]] = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                if name == LOCK_FILE:
                    continue
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    state[path] = ("link", os.readlink(path))
                elif os.path.isdir(path):
                    state[path] = ("dir", oct(os.stat(path).st_mode))
                else:
                    with open(path, "rb") as handle:
                        state[path] = ("file", handle.read())
    return state


@dataclass
class Cloned:
    """A workspace with the fixture superproject cloned and `.env` pointing at its storage."""

    root: Path
    served: Path

    @property
    def ext(self) -> Path:
        return self.root / "mmlab_extension"

    @property
    def data(self) -> Path:
        return self.root / "mmlab_dataset"

    @property
    def ckpt(self) -> Path:
        return self.root / "mmlab_checkpoints"


@pytest.fixture(scope="session")
def cloned_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture superproject served and cloned once; tests work on copies."""
    with guard_paused():
        return _cloned_template(tmp_path_factory)


def _cloned_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("template")
    fixture = build_superproject(base / "served")
    subprocess.run(
        [
            "git",
            "-c",
            "protocol.file.allow=always",
            "clone",
            "-q",
            "--recurse-submodules",
            "--shallow-submodules",
            "--depth",
            "1",
            fixture.url(),
            str(base / "mmlab_extension"),
        ],
        check=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    )
    return base


@pytest.fixture
def cloned(workspace: Path, cloned_template: Path) -> Cloned:
    """A fresh copy of the cloned workspace for one test."""
    shutil.copytree(
        cloned_template / "mmlab_extension", workspace / "mmlab_extension", symlinks=True
    )
    (workspace / ".env").write_text(
        f"MMLAB_EXTENSION_REPO='{(cloned_template / 'served').as_uri()}/fake/mmlab_extension.git'\n"
    )
    return Cloned(workspace, cloned_template / "served")


def git_status(repo: Path) -> str:
    """`git status --porcelain` of a repository (with submodules' own changes)."""
    return subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def fixture(tmp_path: Path) -> Fixture:
    """The fixture superproject, served over file:// from this test's own folder."""
    return build_superproject(tmp_path / "served")


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[list[Path]]:
    """Mount points made by a test, unmounted afterwards (skip where mounting is not allowed)."""
    made: list[Path] = []
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(probe)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    made.append(probe)
    yield made
    for point in reversed(made):
        subprocess.run(["umount", "-l", str(point)], check=False)


def mount(mounts: list[Path], point: Path, options: str) -> None:
    """Mount a tmpfs with `options` at `point`; the `mounts` fixture unmounts it."""
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
    mounts.append(point)


def run_in_terminal(
    argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Run a command with a pseudo-terminal as stdout and stderr; return its code and output."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={**os.environ, **(env or {})},
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    code = process.wait(timeout=60)
    os.close(leader)
    return code, output


def shell_or_skip(name: str) -> str:
    """The path of a shell a test runs; skipped with a reason where it is not installed.

    CI installs bash, dash and zsh (`.ci/run`), so there a missing shell fails instead.
    """
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {name} installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed here")
    return found

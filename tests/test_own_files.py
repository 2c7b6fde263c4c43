"""The files the tool reads and writes outside git: its lock and journal, `.env`, rc files.

Its own files are never followed through a symlink; `.env` and rc files are only ever read
or written as regular files (a symlink to one is written through), keep their owner, group
and mode, and are refused when read-only or hard-linked; a killed write's temporary file is
removed by the next run; a busy workspace says at once whom it waits for.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmlab_bootstrap.fs.lock import workspace_lock

from .conftest import (
    BIN,
    Cloned,
    Run,
    assert_clean_error,
    entries,
    folder_outside,
    inv,
    run_cli,
    snapshot,
)

LOCK = ".mmlab-bootstrap.lock"
STATE = ".mmlab-bootstrap-state.json"
QUICK = 30.0  # seconds: a refused file is refused at once; a hang fails the test


def char_device(where: Path) -> Path:
    """A character device like /dev/null made in a test folder (root only), else /dev/null.

    Without the right to make device nodes the tool cannot replace /dev/null either, so
    pointing at the real one is then harmless even for the code before this fix.
    """
    node = where / "null-device"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        assert not os.access("/dev", os.W_OK)
        return Path("/dev/null")
    return node


@contextlib.contextmanager
def special(kind: str, path: Path) -> Iterator[None]:
    """Put a FIFO, socket, folder or device node at `path` for the block."""
    if kind == "fifo":
        os.mkfifo(path)
        yield
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        try:
            yield
        finally:
            server.close()
    elif kind == "folder":
        path.mkdir()
        (path / "inside").write_text("x")
        yield
    else:
        path.symlink_to(char_device(path.parent))
        yield


KINDS = ["fifo", "socket", "folder", "link-to-device"]


def kind_is_kept(kind: str, path: Path) -> None:
    mode = os.stat(path).st_mode  # through the link for link-to-device
    expected = {
        "fifo": stat.S_ISFIFO,
        "socket": stat.S_ISSOCK,
        "folder": stat.S_ISDIR,
        "link-to-device": stat.S_ISCHR,
    }[kind]
    assert expected(mode), oct(mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def quick(workspace: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    return run_cli(["inv", *args], workspace, env, timeout=QUICK)


# --- 5. the lock and the journal are never followed through a symlink ---------------------


@pytest.mark.parametrize("name", [LOCK, STATE])
def test_own_file_as_a_symlink_to_a_victim_is_refused(
    cloned: Cloned, tmp_path: Path, name: str
) -> None:
    """A planted symlink at the lock or journal never lets the tool write the file it names."""
    victim = tmp_path / "victim.json"
    victim.write_text('{"links": {}, "version": 1}\n')  # even one that reads as a journal
    before_victim = victim.read_bytes()
    (cloned.root / name).symlink_to(victim)
    before = snapshot(cloned.ext, cloned.data, cloned.ckpt)
    run = inv(cloned.root, "link-data")
    assert_clean_error(run, "symlink")
    assert victim.read_bytes() == before_victim
    assert (cloned.root / name).is_symlink()
    assert snapshot(cloned.ext, cloned.data, cloned.ckpt) == before


@pytest.mark.parametrize("name", [LOCK, STATE])
def test_own_file_as_a_dangling_symlink_creates_nothing(
    cloned: Cloned, tmp_path: Path, name: str
) -> None:
    """A dangling link at the lock or journal: its target is never created."""
    nowhere = tmp_path / "created-elsewhere"
    (cloned.root / name).symlink_to(nowhere)
    run = inv(cloned.root, "link-data")
    assert_clean_error(run, "symlink")
    assert not os.path.lexists(nowhere)
    assert not os.path.lexists(cloned.ext / "mmdetection" / "data")


@pytest.mark.parametrize("kind", ["fifo", "folder", "link-to-device"])
def test_own_file_that_is_not_a_regular_file_is_refused(
    workspace: Path, tmp_path: Path, kind: str
) -> None:
    """The lock must be a regular file: anything else is refused at once, and left as it is."""
    path = workspace / LOCK
    with special(kind, path):
        run = quick(workspace, "env")
        assert_clean_error(run, "not a regular file")
        kind_is_kept(kind, path)
        assert not (workspace / ".env").exists()


# --- 6. .env and rc files are regular files, or refused at once ----------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("task", [["status"], ["env"], ["bootstrap"], ["layout"]])
def test_dotenv_that_is_not_a_regular_file_is_refused_at_once(
    workspace: Path, kind: str, task: list[str]
) -> None:
    """A FIFO never hangs a task, a device is never read or replaced, a folder is named."""
    path = workspace / ".env"
    with special(kind, path):
        started = time.monotonic()
        run = quick(workspace, *task)
        assert_clean_error(run, "not a regular file")
        assert time.monotonic() - started < QUICK
        kind_is_kept(kind, path)
        assert not (workspace / "mmlab_checkpoints").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_rc_file_that_is_not_a_regular_file_is_refused_at_once(
    workspace: Path, tmp_path: Path, kind: str
) -> None:
    """`env --rc` refuses a FIFO, socket, folder or device before anything is written."""
    rc = tmp_path / "home" / ".bashrc"
    with special(kind, rc):
        for extra in ([], ["--remove"]):
            run = quick(workspace, "env", "--rc", str(rc), *extra)
            assert_clean_error(run, "not a regular file")
            kind_is_kept(kind, rc)
            assert not (workspace / ".env").exists()


def test_symlinks_to_regular_files_are_still_written_through(
    workspace: Path, tmp_path: Path
) -> None:
    """Dotfile managers link `.env` and rc files: the links stay, their targets change."""
    real_env, real_rc = tmp_path / "dots" / "env", tmp_path / "dots" / "bashrc"
    real_env.parent.mkdir()
    real_env.write_text("# team settings\n")
    real_rc.write_text("# rc\n")
    (workspace / ".env").symlink_to(real_env)
    rc = tmp_path / "home" / ".bashrc"
    rc.symlink_to(real_rc)
    assert inv(workspace, "env", "--rc", str(rc)).code == 0
    assert (workspace / ".env").is_symlink() and rc.is_symlink()
    assert "export MMLAB_PROJECTS=" in real_env.read_text()
    assert "# >>> mmlab-bootstrap" in real_rc.read_text()


def test_dangling_dotenv_symlink_is_refused(workspace: Path, tmp_path: Path) -> None:
    """A `.env` link to nothing is refused: the tool does not create files elsewhere."""
    nowhere = tmp_path / "elsewhere" / "team.env"
    nowhere.parent.mkdir()
    (workspace / ".env").symlink_to(nowhere)
    run = inv(workspace, "env")
    assert_clean_error(run, "does not exist")
    assert not os.path.lexists(nowhere)


# --- 13. owner, group and mode are kept; read-only and hard-linked files are refused -------


def test_root_rewriting_a_users_dotenv_keeps_owner_group_and_mode(
    workspace: Path, tmp_path: Path
) -> None:
    """`sudo inv env …` leaves the user's `.env` theirs, with the mode it had."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")
    path = workspace / ".env"
    path.write_text("# mine\n")
    os.chown(path, 65534, 65534)
    path.chmod(0o640)
    rc = tmp_path / "home" / ".bashrc"
    rc.write_text("# rc\n")
    os.chown(rc, 65534, 65534)
    rc.chmod(0o600)
    run = inv(workspace, "env", "--rc", str(rc))
    assert run.code == 0, run.err
    for written, mode in ((path, 0o640), (rc, 0o600)):
        found = os.stat(written)
        assert (found.st_uid, found.st_gid) == (65534, 65534), written
        assert stat.S_IMODE(found.st_mode) == mode, written
    assert "MMLAB_PROJECTS" in path.read_text() and "mmlab-bootstrap" in rc.read_text()


@pytest.mark.parametrize("which", ["dotenv", "rc"])
def test_read_only_file_is_refused(workspace: Path, tmp_path: Path, which: str) -> None:
    """A 0444 file is one the user means to keep: refused with a hint, nothing written."""
    path = workspace / ".env" if which == "dotenv" else tmp_path / "home" / ".bashrc"
    path.write_text("# read-only on purpose\n")
    path.chmod(0o444)
    run = inv(workspace, "env", "--rc", str(tmp_path / "home" / ".bashrc"))
    assert_clean_error(run, "read-only (mode 0444)")
    assert "chmod u+w" in run.err
    assert path.read_text() == "# read-only on purpose\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert entries(workspace) == ([".env", "tasks.py"] if which == "dotenv" else ["tasks.py"])


@pytest.mark.parametrize("which", ["dotenv", "rc"])
def test_hard_linked_file_is_refused(workspace: Path, tmp_path: Path, which: str) -> None:
    """Rewriting would split a file from its other names: refused, both names unchanged."""
    path = workspace / ".env" if which == "dotenv" else tmp_path / "home" / ".bashrc"
    path.write_text("# shared\n")
    other = tmp_path / "other-name"
    os.link(path, other)
    run = inv(workspace, "env", "--rc", str(tmp_path / "home" / ".bashrc"))
    assert_clean_error(run, "other hard link")
    assert os.path.samefile(path, other)
    assert path.read_text() == other.read_text() == "# shared\n"


def test_an_unchanged_read_only_file_is_not_refused(workspace: Path, tmp_path: Path) -> None:
    """Only a change is refused: an up-to-date read-only rc file is left as it is."""
    rc = tmp_path / "home" / ".bashrc"
    assert inv(workspace, "env", "--rc", str(rc)).code == 0
    rc.chmod(0o444)
    (workspace / ".env").chmod(0o444)
    run = inv(workspace, "env", "--rc", str(rc))
    assert run.code == 0, run.err


@pytest.fixture
def nobody_folder() -> Iterator[Path]:
    """A folder the unprivileged user `nobody` owns, for running the tool as that user."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the tool as an unprivileged user")
    base = folder_outside("mmlab-nobody-")
    base.chmod(0o755)
    folder = base / "ws"
    folder.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "tasks.py", folder / "tasks.py")
    os.chown(folder, 65534, 65534)
    probe = as_nobody(folder, "--list")
    if probe.code != 0:
        shutil.rmtree(base)
        pytest.skip(f"cannot run the tool as nobody here: {probe.err.strip()[:200]}")
    yield folder
    shutil.rmtree(base)


def as_nobody(folder: Path, *args: str) -> Run:
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(BIN / "inv")]
    return run_cli([*command, *args], folder, {"HOME": str(folder)}, timeout=120)


def test_unprivileged_user_cannot_take_over_or_overwrite_a_file(nobody_folder: Path) -> None:
    """As a normal user: a read-only `.env` is refused (it was renamed over before), and a
    writable one that belongs to someone else is refused instead of becoming ours."""
    path = nobody_folder / ".env"
    path.write_text("# mine, read-only\n")
    os.chown(path, 65534, 65534)
    path.chmod(0o444)
    run = as_nobody(nobody_folder, "env")
    assert_clean_error(run, "read-only")
    assert path.read_text() == "# mine, read-only\n"
    path.unlink()
    path.write_text("# root's, writable by all\n")
    path.chmod(0o666)
    run = as_nobody(nobody_folder, "env")
    assert_clean_error(run, "belongs to another user")
    found = path.stat()
    assert (found.st_uid, path.read_text()) == (0, "# root's, writable by all\n")
    path.unlink()
    run = as_nobody(nobody_folder, "env")  # a file of its own it writes as before
    assert run.code == 0, run.err
    assert path.stat().st_uid == 65534


# --- 16. a killed write's temporary file is removed by the next run ------------------------


def test_leftover_temporary_files_are_removed_by_the_next_run(cloned: Cloned) -> None:
    """Temporary files of `.env` and the journal left by a kill go; look-alikes stay."""
    root = cloned.root
    assert inv(root, "link-data").code == 0
    # write_atomically's names: `.` + the file's name + `.tmp-` + 8 hex digits.
    ours = [root / "..env.tmp-abcd1234", root / f".{STATE}.tmp-0123beef"]
    for path in ours:
        path.write_text("half-written")
    theirs = [
        root / "..env.tmp-notmine1",  # not 8 hex digits
        root / "..env.tmp-ABCD1234",  # upper case: not ours
        root / ".env.tmp-abcd1234",  # not the name the tool makes for .env
        root / "..env.tmp-abcd12345",  # one digit too many
        root / ".tasks.py.tmp-abcd1234",  # beside a file the tool never writes
    ]
    for path in theirs:
        path.write_text("user file")
    link = root / "..env.tmp-feedf00d"
    link.symlink_to(root / "tasks.py")  # only regular files are ours
    held = root / "..env.tmp-cafe0001"
    held.write_text("a live run is writing this")
    with open(held, "rb") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # as write_atomically holds its own
        run = inv(root, "status")
        assert all(path.exists() for path in ours)  # status changes nothing
        run = inv(root, "env")
    assert run.code == 0, run.err
    for path in ours:
        assert not path.exists(), path
        assert f"removed {path}" in run.out
    assert all(path.read_text() == "user file" for path in theirs)
    assert link.is_symlink() and held.exists()
    assert inv(root, "unlink").code == 0


# --- issue 9, 5. a second run says at once whom it waits for -------------------------------


def test_a_waiting_run_says_at_once_whom_it_waits_for(workspace: Path) -> None:
    """The `waiting for pid N (task T)…` line comes well before the wait ends; the run then
    goes on once the lock is free."""
    with workspace_lock(workspace, "clone"):
        started = time.monotonic()
        second = subprocess.Popen(
            [str(BIN / "inv"), "env"],
            cwd=workspace,
            env={**os.environ, "MMLAB_LOCK_WAIT": "20"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stderr is not None
        line = second.stderr.readline()
        waited = time.monotonic() - started
        assert line == f"waiting for pid {os.getpid()} (task clone)…\n"
        assert waited < 10, waited  # the wait is 20 s: said at once, not at its end
        assert second.poll() is None  # still waiting
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert (workspace / ".env").exists()

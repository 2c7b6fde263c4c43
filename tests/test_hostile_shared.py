"""Shared servers and odd terminals (issue 20, points 11-14): another user's files in a shared
checkpoint root or git cache, a team mirror owned by someone else, a team root shared through
a setgid group-writable folder, closed standard streams, TERM=dumb.

The second user is `nobody` (and, for the team, two system users in one shared group) run
through `setpriv`; those tests need root and are skipped elsewhere."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from .conftest import BIN, REPO_ROOT, Run, folder_outside, run_in_terminal
from .lib.ckptfixture import checkpoint, random_bytes, write_index
from .lib.gitfixture import Fixture, build_superproject, push_commit
from .lib.httpserve import Faults, serving
from .lib.netserve import served_over_network

NOBODY = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]
# Two users of one team: system users that exist on Debian and Ubuntu, put in one group.
TEAM_GID = 60123
USER_A = ["--reuid=daemon", f"--regid={TEAM_GID}", "--clear-groups"]
USER_B = ["--reuid=bin", f"--regid={TEAM_GID}", "--clear-groups"]

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="running as a second user needs root and setpriv",
)


def _has_users(*names: str) -> bool:
    import pwd

    try:
        return all(pwd.getpwnam(name) for name in names)
    except KeyError:
        return False


needs_team = pytest.mark.skipif(
    not _has_users("daemon", "bin"), reason="the team tests run as the system users daemon and bin"
)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loopback server is reached directly, whatever proxy the machine sets."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder of this test that other users can reach: made in the system's temporary
    folder (pytest's own is private to root, and another pytest run may make it so again
    while this test runs), removed afterwards."""
    folder = folder_outside("mmlab-shared-")
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _user(who: Sequence[str]) -> str:
    return who[0].split("=")[1]


def user_command(
    who: Sequence[str], argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argument list and environment that run `argv` as another user (setpriv), with a
    HOME of that user's own and this test's PATH."""
    home = cwd.parent / f"home-{_user(who)}"
    home.mkdir(exist_ok=True)
    shutil.chown(home, _user(who))
    full = {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),  # that user's own (stock: none yet)
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    full.update(env or {})
    program, *rest = argv
    return ["setpriv", *who, shutil.which(program, path=full["PATH"]) or program, *rest], full


def as_user(
    who: Sequence[str], argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> Run:
    """Run a command as another user, to its end."""
    command, full = user_command(who, argv, cwd, env)
    done = subprocess.run(
        command, cwd=cwd, env=full, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, umask=0o022,
    )  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr)


def own_workspace(folder: Path, who: Sequence[str], env_text: str) -> Path:
    """A workspace folder owned by `who`, holding tasks.py and `.env`."""
    folder.mkdir(parents=True)
    (folder / "tasks.py").write_text((REPO_ROOT / "tasks.py").read_text())
    (folder / ".env").write_text(env_text)
    for path in (folder, folder / "tasks.py", folder / ".env"):
        shutil.chown(path, _user(who))
    return folder


@needs_root
def test_a_partial_left_by_another_user_under_umask_077_is_named_with_owner_and_mode(
    reachable: Path,
) -> None:
    """root, under umask 077, left a partial download in a shared checkpoint root; `nobody`'s
    fetch names the folder it cannot enter, its owner and mode and what to do: one error,
    one hint, no "run the same command again" (a re-run cannot help)."""
    data = random_bytes(300_000)
    item = checkpoint("mmdetection3d", "pointpillars_shared", data)
    storage = reachable / "storage"
    folder = storage / "mmdetection3d" / "checkpoints"
    old = os.umask(0o077)
    try:
        folder.mkdir(parents=True)
        (folder / f".{item.file_name}.part-0badc0de").write_bytes(data[:1000])
    finally:
        os.umask(old)
    storage.chmod(0o1777)  # the team's root, as an admin made it (as /tmp is)
    with serving() as served:
        served.files[item.path] = item.data
        root = own_workspace(
            reachable / "ws",
            NOBODY,
            f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\nMMLAB_CHECKPOINTS_PATH='{storage}'\n"
            f"MMLAB_CHECKPOINTS='{item.name}'\n",
        )
        write_index(root / "mmlab_extension" / "mmdetection3d", [item])
        run = as_user(NOBODY, ["inv", "fetch-checkpoints"], root)
    print(run.out, run.err)
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(errors) == 2, run.err
    assert f"'{storage / 'mmdetection3d'}'" in errors[0], errors
    assert "owner root" in errors[0] and "drwx------" in errors[0], errors
    assert "again" not in run.err
    assert "Traceback" not in run.err


def _fetch_workspace(folder: Path, who: Sequence[str], url: str, storage: Path, item: Any) -> Path:
    root = own_workspace(
        folder,
        who,
        f"MMLAB_CHECKPOINT_MIRROR='{url}'\nMMLAB_CHECKPOINTS_PATH='{storage}'\n"
        f"MMLAB_CHECKPOINTS='{item.name}'\n",
    )
    write_index(root / "mmlab_extension" / "mmdetection3d", [item])
    return root


def _partial_bytes(folder: Path) -> int:
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    return sum((folder / n).stat().st_size for n in names if ".part-" in n)


@needs_root
@needs_team
def test_a_team_shares_a_setgid_root_one_finishes_what_another_started(reachable: Path) -> None:
    """The documented team setup: a storage root of the team's group, group-writable and
    setgid. User A's download is interrupted (Ctrl-C); user B, of the same group (umask 022
    both), resumes A's partial file and finishes it. Everything the tool made there is the
    group's and group-writable."""
    data = random_bytes(4 << 20)
    item = checkpoint("mmdetection3d", "pointpillars_team", data)
    storage = reachable / "storage"
    storage.mkdir()
    os.chown(storage, 0, TEAM_GID)
    storage.chmod(0o2775)
    folder = storage / "mmdetection3d" / "checkpoints"
    with serving() as served:
        served.files[item.path] = item.data
        served.faults[item.path] = Faults(rate=400_000)
        first = _fetch_workspace(reachable / "a", USER_A, served.url, storage, item)
        second = _fetch_workspace(reachable / "b", USER_B, served.url, storage, item)
        command, env = user_command(USER_A, ["inv", "fetch-checkpoints"], first)
        process = subprocess.Popen(
            command, cwd=first, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, umask=0o022,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while _partial_bytes(folder) < 100_000 and process.poll() is None:
            assert time.monotonic() < deadline, "user A's download never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err.decode()
        left = _partial_bytes(folder)
        assert 0 < left < len(data)
        served.faults[item.path] = Faults()
        run = as_user(USER_B, ["inv", "fetch-checkpoints"], second)
        ranges = [r.range for r in served.hits(item.path)]
    assert run.code == 0, run.err
    final = folder / item.file_name
    assert final.read_bytes() == data
    assert ranges[-1] == f"bytes={left}-", ranges  # B resumed A's partial file
    assert not [n for n in os.listdir(folder) if ".part-" in n]
    for path in (storage / "mmdetection3d", folder):
        found = path.stat()
        assert found.st_gid == TEAM_GID and found.st_mode & 0o2070 == 0o2070, (path, found)
    for path in (final, folder / f".{item.file_name}.verified.json"):
        found = path.stat()
        assert found.st_gid == TEAM_GID and found.st_mode & 0o060 == 0o060, (path, found)


@pytest.mark.slow
@needs_root
def test_a_git_cache_made_under_umask_077_is_named_with_owner_and_mode(reachable: Path) -> None:
    """root filled a shared git cache (a folder anyone may write in) under umask 077; for
    `nobody` the cache's own folders are closed: the error names the folder, its owner and
    mode and what to do, with no "run it again"; nothing else breaks (no traceback)."""
    fixture = build_superproject(reachable / "served")
    cache = reachable / "cache"
    cache.mkdir()
    cache.chmod(0o1777)
    with served_over_network(fixture.served) as base:
        env = {
            "MMLAB_EXTENSION_REPO": fixture.github_url,
            "MMLAB_GIT_MIRROR": base,
            "MMLAB_GIT_CACHE": str(cache),
        }
        first = reachable / "first"
        first.mkdir()
        shutil.copy(REPO_ROOT / "tasks.py", first / "tasks.py")
        made = subprocess.run(
            ["inv", "clone"], cwd=first, env={**os.environ, **env}, capture_output=True,
            text=True, timeout=120, umask=0o077,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        second = own_workspace(reachable / "second", NOBODY, "")
        run = as_user(NOBODY, ["inv", "clone"], second, env)
    print(run.out, run.err)
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(errors) == 2, run.err
    assert str(cache) in errors[0] and "owner root" in errors[0], errors
    assert "drwx------" in errors[0], errors
    assert "again" not in run.err and "Traceback" not in run.err


@needs_root
def test_a_team_mirror_of_another_user_names_safe_directory_first(reachable: Path) -> None:
    """A `file://` team mirror built by root, used by `nobody` under stock git: git refuses
    it (dubious ownership); the error says so first and the hint is the exact command git
    asks for, with the path git names. With that line in nobody's git config, clone works."""
    fixture = build_superproject(reachable / "served")
    root = own_workspace(reachable / "ws", NOBODY, "")
    env = {
        "MMLAB_EXTENSION_REPO": fixture.github_url,
        "MMLAB_GIT_MIRROR": fixture.served.as_uri() + "/",
    }
    run = as_user(NOBODY, ["inv", "clone"], root, env)
    print(run.err)
    assert run.code == 1, run.err
    errors = [line for line in run.err.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(errors) == 2 and "Traceback" not in run.err, run.err
    assert errors[0].startswith("error: safe.directory: git refuses the repository"), errors
    assert "owned by root" in errors[0], errors
    refused = re.search(r"safe\.directory '([^']+)'", errors[1])
    assert refused and errors[1].startswith("hint: if you trust it: git config --global --add")
    assert Path(refused[1]).is_relative_to(fixture.served), errors
    # What the hint (and the README) says, for each repository of the mirror, makes it work.
    for repository in sorted(fixture.served.glob("*/*.git")):
        as_user(NOBODY, ["git", "config", "--global", "--add", "safe.directory",
                         str(repository)], root, env)  # fmt: skip
    again = as_user(NOBODY, ["inv", "clone"], root, env)
    assert again.code == 0, again.err


@needs_root
@pytest.mark.parametrize("task", ["status", "doctor"])  # (those that only look)
def test_a_workspace_of_another_user_names_safe_directory_not_a_missing_clone(
    reachable: Path, task: str
) -> None:
    """root's cloned workspace, looked at by `nobody` under stock git: git will not look at
    the superproject (dubious ownership). That is said, with the owner and the exact
    command, never "not cloned" or "exists and is not a git repository; move it away"."""
    fixture = build_superproject(reachable / "served")
    root = reachable / "ws"
    root.mkdir()
    shutil.copy(REPO_ROOT / "tasks.py", root / "tasks.py")
    env = {
        "MMLAB_EXTENSION_REPO": fixture.github_url,
        "MMLAB_GIT_MIRROR": fixture.served.as_uri() + "/",
    }
    made = subprocess.run(
        ["inv", "bootstrap"], cwd=root, env={**os.environ, **env}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    run = as_user(NOBODY, ["inv", task], root)
    assert run.code == 1, run.out + run.err
    errors = [line for line in run.err.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(errors) == 2 and "Traceback" not in run.err, run.err
    superproject = root / "mmlab_extension"
    assert errors[0].startswith(
        f"error: safe.directory: git refuses to look at the repository '{superproject}'"
        " (owned by root)"
    ), errors
    assert f"git config --global --add safe.directory '{superproject}'" in errors[1], errors
    assert "not cloned" not in run.out + run.err
    assert "not a git repository (" not in run.err


@pytest.mark.parametrize("closed", [0, 1, 2], ids=["stdin", "stdout", "stderr"])
def test_bootstrap_works_with_a_standard_stream_closed(
    workspace: Path, fixture: Fixture, closed: int
) -> None:
    """`inv bootstrap 2>&-` (or `>&-`, `<&-`): the closed stream is /dev/null to the tool
    (as git does it), the run finishes, and the workspace lock file holds only its owner
    line (it never became descriptor 2)."""
    pipes = {1: subprocess.PIPE, 2: subprocess.PIPE}
    process = subprocess.Popen(
        [shutil.which("inv") or "inv", "bootstrap", "--repo", fixture.url()],
        cwd=workspace,
        stdin=subprocess.DEVNULL,
        stdout=pipes[1],
        stderr=pipes[2],
        preexec_fn=lambda: os.close(closed),
    )
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, (out, err)
    lock = (workspace / ".mmlab-bootstrap.lock").read_text()
    assert re.fullmatch(r"pid \d+, task bootstrap\n?", lock), lock
    if closed != 1:  # what is still open shows the run as usual
        assert b"load the settings in a shell:" in out, (out, err)
    assert (workspace / "mmlab_extension" / ".git").exists()
    status = subprocess.run(
        [shutil.which("inv") or "inv", "status"], cwd=workspace, capture_output=True, timeout=120
    )
    assert status.returncode == 0, status.stdout + status.stderr


def _escapes(output: bytes) -> list[bytes]:
    return re.findall(rb"\x1b.{0,6}", output)


@pytest.mark.parametrize(
    "env", [{"TERM": "dumb"}, {"NO_COLOR": "1", "TERM": "xterm"}], ids=["TERM=dumb", "NO_COLOR"]
)
def test_a_dumb_terminal_gets_no_colors_and_no_cursor_movement(
    workspace: Path, fixture: Fixture, env: dict[str, str]
) -> None:
    """On a real terminal with TERM=dumb (or NO_COLOR): bootstrap's lines and git's progress
    board print no escape sequence at all (no colors, no redraw), and the work is done. The
    same run with TERM=xterm is colored (the terminal is real)."""
    inv_path = shutil.which("inv") or "inv"
    code, output = run_in_terminal([inv_path, "bootstrap", "--repo", fixture.url()], workspace, env)
    assert code == 0, output.decode(errors="replace")
    assert _escapes(output) == [], _escapes(output)[:5]
    assert b"cloned " in output or b"clone" in output
    code, colored = run_in_terminal([inv_path, "--dry", "layout"], workspace, {"TERM": "xterm"})
    assert b"\x1b[" in colored, colored


@pytest.mark.parametrize("term", ["dumb", "xterm"])
def test_checkpoint_progress_on_a_dumb_terminal_is_plain_lines(tmp_path: Path, term: str) -> None:
    """fetch-checkpoints on a real terminal: with TERM=dumb no progress bars (they move the
    cursor), plain lines instead; with TERM=xterm the bars (escape sequences) are there."""
    data = random_bytes(1 << 20)
    item = checkpoint("mmdetection3d", "pointpillars_dumb", data)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "tasks.py").write_text((REPO_ROOT / "tasks.py").read_text())
    write_index(root / "mmlab_extension" / "mmdetection3d", [item])
    with serving() as served:
        served.files[item.path] = item.data
        (root / ".env").write_text(
            f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n"
            f"MMLAB_CHECKPOINTS_PATH='{tmp_path / 'storage'}'\nMMLAB_CHECKPOINTS='{item.name}'\n"
        )
        code, output = run_in_terminal(["inv", "fetch-checkpoints"], root, {"TERM": term})
    assert code == 0, output.decode(errors="replace")
    if term == "dumb":
        assert _escapes(output) == [], _escapes(output)[:5]
        assert b"downloading mmdetection3d:pointpillars_dumb" in output or b"downloading " in output
    else:
        assert _escapes(output), output


@pytest.mark.slow
@needs_root
@needs_team
def test_a_team_shares_a_setgid_git_cache(reachable: Path) -> None:
    """A git cache of the team's group, group-writable and setgid: user A's clone fills it,
    user B's clone (same group, umask 022 both) goes through it and adds to it (upstream
    moved on in between)."""
    fixture = build_superproject(reachable / "served")
    cache = reachable / "cache"
    cache.mkdir()
    os.chown(cache, 0, TEAM_GID)
    cache.chmod(0o2775)
    with served_over_network(fixture.served) as base:
        env = {
            "MMLAB_EXTENSION_REPO": fixture.github_url,
            "MMLAB_GIT_MIRROR": base,
            "MMLAB_GIT_CACHE": str(cache),
        }
        first = as_user(USER_A, ["inv", "clone"], own_workspace(reachable / "a", USER_A, ""), env)
        assert first.code == 0, first.err
        push_commit(fixture, "mmlab_extension", "team.txt", b"new upstream\n")  # B fetches it
        workspace = own_workspace(reachable / "b", USER_B, "")
        refused = as_user(USER_B, ["inv", "clone"], workspace, env)
        # Stock git refuses another user's repository: B trusts the team's, as the hint says.
        assert refused.code == 1 and "error: safe.directory: " in refused.err, refused.err
        for repository in sorted((cache / "github.com").glob("*/*.git")):
            trusted = ["git", "config", "--global", "--add", "safe.directory", str(repository)]
            assert as_user(USER_B, trusted, workspace).code == 0
        second = as_user(USER_B, ["inv", "clone"], workspace, env)
    assert second.code == 0, second.err
    assert "warning" not in second.err, second.err
    made = [cache, *cache.rglob("*")]
    assert all(path.stat().st_gid == TEAM_GID for path in made)
    folders = [path for path in made if path.is_dir()]
    assert all(path.stat().st_mode & 0o2070 == 0o2070 for path in folders), [
        (str(p), oct(p.stat().st_mode)) for p in folders if p.stat().st_mode & 0o2070 != 0o2070
    ][:5]


# What another user (root, umask 077) left in a checkpoint root anyone may write in (sticky,
# as /tmp): (name, how it is left, what nobody's fetch-checkpoints must do).
LEFT_BY_ANOTHER_USER = [
    ("closed-project-folder", "project-0700", "error"),
    ("read-only-checkpoints-folder", "checkpoints-0755", "error"),
    ("unwritable-partial", "partial-0600", "ok"),
    ("unreadable-record", "record-0600", "ok"),
    ("unreadable-final-file", "final-0600", "error"),
]


@needs_root
@pytest.mark.parametrize(
    ("left", "outcome"), [case[1:] for case in LEFT_BY_ANOTHER_USER],
    ids=[case[0] for case in LEFT_BY_ANOTHER_USER],
)  # fmt: skip
def test_what_another_user_left_in_a_checkpoint_root(
    reachable: Path, left: str, outcome: str
) -> None:
    """Each is either worked around (the run makes its own file, the verified checkpoint is
    there) or one error naming the path, its owner and mode, with a hint that is no "run it
    again"; never a traceback, and root's files keep their bytes."""
    data = random_bytes(200_000)
    item = checkpoint("mmdetection3d", "pointpillars_left", data)
    storage = reachable / "storage"
    folder = storage / "mmdetection3d" / "checkpoints"
    folder.mkdir(parents=True)
    for path in (storage, storage / "mmdetection3d", folder):
        path.chmod(0o1777)
    final = folder / item.file_name
    where, mode = left.rsplit("-", 1)
    theirs = {
        "project": storage / "mmdetection3d",
        "checkpoints": folder,
        "partial": folder / f".{item.file_name}.part-0badc0de",
        "record": folder / f".{item.file_name}.verified.json",
        "final": final,
    }[where]
    if where in ("partial", "final"):
        theirs.write_bytes(data[:1000] if where == "partial" else data)
    if where == "record":
        final.write_bytes(data)
        theirs.write_text('{"sha256": "%s", "size": 1, "mtime_ns": 1, "url": ""}\n' % ("0" * 64))
    theirs.chmod(int(mode, 8))
    before = theirs.read_bytes() if theirs.is_file() else None
    with serving() as served:
        served.files[item.path] = item.data
        root = _fetch_workspace(reachable / "ws", NOBODY, served.url, storage, item)
        run = as_user(NOBODY, ["inv", "fetch-checkpoints"], root)
    print(run.out, run.err)
    assert "Traceback" not in run.err
    if outcome == "ok":
        assert run.code == 0, run.err
        assert final.read_bytes() == data
        if where == "record":  # the file is verified; its record stays root's, named
            assert f"'{theirs}'" in run.err and "owner root" in run.err, run.err
        if where == "partial":  # skipped, named in a warning with its owner and mode
            warned = [line for line in run.err.splitlines() if line.startswith("warning:")]
            assert any(f"'{theirs}'" in line and "owner root" in line for line in warned), run.err
            assert any("-rw-------" in line for line in warned), run.err
    else:
        assert run.code == 1
        errors = [line for line in run.err.splitlines() if line.startswith(("error:", "hint:"))]
        assert len(errors) == 2, run.err
        assert f"'{theirs}'" in errors[0] and "owner root" in errors[0], errors
        assert stat.filemode(theirs.lstat().st_mode) in errors[0], errors
        assert "again" not in run.err
    if before is not None:
        assert theirs.read_bytes() == before


# (the parent folder's mode, the umask, the mode a new folder gets, the mode a new file gets)
SHARING = [
    (0o2775, 0o022, 0o2775, 0o664),  # a team's folder: group-writable whatever the umask
    (0o2770, 0o077, 0o2770, 0o660),
    (0o2770, 0o027, 0o2770, 0o660),
    (0o0775, 0o022, 0o0755, 0o644),  # group-writable but not setgid: the umask decides
    (0o2755, 0o022, 0o2755, 0o644),  # setgid but not group-writable: the umask decides
    (0o1777, 0o077, 0o0700, 0o600),  # /tmp-like: the umask decides
]


@pytest.mark.parametrize(("parent", "umask", "folder_mode", "file_mode"), SHARING)
def test_what_is_made_in_a_folder_is_shared_as_the_folder_is(
    tmp_path: Path, parent: int, umask: int, folder_mode: int, file_mode: int
) -> None:
    """`make_folders` and `share_like_folder` (used for every folder and file the tool makes
    in storage roots and the cache) add group read/write only where the folder is shared the
    documented way; the user's umask decides everything else."""
    from mmlab_bootstrap.fs.files import make_folders, share_like_folder

    top = tmp_path / "root"
    top.mkdir()
    top.chmod(parent)
    old = os.umask(umask)
    try:
        make_folders(top / "a" / "b")
        descriptor = os.open(top / "a" / "b" / "f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        share_like_folder(descriptor, top / "a" / "b")
        os.close(descriptor)
    finally:
        os.umask(old)
    for folder in (top / "a", top / "a" / "b"):
        assert oct(stat.S_IMODE(folder.stat().st_mode)) == oct(folder_mode), folder
    assert oct(stat.S_IMODE((top / "a" / "b" / "f").stat().st_mode)) == oct(file_mode)

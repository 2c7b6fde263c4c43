"""One maker of temporary names and one leftover sweep (issue 22): every caller's temporary
names, byte for byte what older versions made (users' disks hold them); the sweep's rules
(unlocked, held, dead, old) on real files and processes; the git cache's leftovers of a run
really killed mid-work, removed by the next run."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints.store import (
    PARTIAL_TEMPORARY,
    RECORD_TEMPORARY,
    new_partial_name,
    record_path,
)
from mmlab_bootstrap.clone.plan import PARTIAL_TEMPORARY as CLONE_TEMPORARY
from mmlab_bootstrap.clone.plan import partial_path
from mmlab_bootstrap.fs import (
    DEAD,
    HELD,
    OLD,
    TRANSFER_TEMPORARY,
    UNLOCKED,
    pattern_of,
    sweep,
    temporary_beside,
    temporary_folder,
)
from mmlab_bootstrap.fs.lease import LOCK_TEMPORARY, LeaseLock
from mmlab_bootstrap.fs.temporaries import TEMPORARY
from mmlab_bootstrap.gitcache.objectfiles import LINES_TEMPORARY, PACK_TEMPORARY, add_line
from mmlab_bootstrap.gitcache.store import GIT_PACK_TEMPORARY, REPOSITORY_TEMPORARY, cache_key
from mmlab_bootstrap.mirror.places import PARTIAL_TEMPORARY as MIRROR_TEMPORARY
from mmlab_bootstrap.mirror.places import Place
from mmlab_bootstrap.pythonenv.build import SCRATCH_TEMPORARY, VENV_TEMPORARY
from mmlab_bootstrap.pythonenv.verify import VERIFY_TEMPORARY

from .conftest import inv
from .lib.clonecheck import assert_healthy
from .lib.gitfixture import GITHUB, OWNER, build_superproject

FIXED = {
    "token": "0123abcd",
    "token12": "0123456789ab",
    "scratch": "0123abcd",
    "pid": 12,
    "tid": 34,
    "ns": 5678,
    "run": "0123456789abcdef",
    "call": "00000007",
    "host": "node7",
}

# Each caller's template, the name it makes with the fields above, and that name written the
# way the older version wrote it (its own f-string): byte for byte the same.
NAMES: list[tuple[str, str, str, dict[str, str], str]] = [
    ("write_atomically (.env)", TEMPORARY, ".env", {}, "..env.tmp-0123abcd"),
    ("write_atomically (journal)", TEMPORARY, ".mmlab-bootstrap-state.json", {},
     "..mmlab-bootstrap-state.json.tmp-0123abcd"),
    ("transfer copy", TRANSFER_TEMPORARY, "data", {"purpose": "copy"},
     ".data.mmlab-bootstrap-copy-0123456789abcdef00000007"),
    ("links swap", TRANSFER_TEMPORARY, "data", {"purpose": "link"},
     ".data.mmlab-bootstrap-link-0123456789abcdef00000007"),
    ("upstream update", TRANSFER_TEMPORARY, "setup.py", {"purpose": "update"},
     ".setup.py.mmlab-bootstrap-update-0123456789abcdef00000007"),
    ("checkpoint download", PARTIAL_TEMPORARY, "model.pth", {}, ".model.pth.part-0123abcd"),
    ("checkpoint record", RECORD_TEMPORARY, ".model.pth.verified.json", {},
     ".model.pth.verified.json.tmp-0123abcd"),
    ("git cache line file", LINES_TEMPORARY, "shallow", {}, "shallow.12.34.partial"),
    ("git cache pack", PACK_TEMPORARY, "pack-1.idx", {}, ".pack-1.idx.12.partial"),
    ("git cache repository", REPOSITORY_TEMPORARY, "mmcv.git", {}, ".mmcv.git.12.5678.partial"),
    ("lease lock folder", LOCK_TEMPORARY, "x", {"kind": "making", "owner": "00ff00ff00ff00ff"},
     ".making+node7+12+00ff00ff00ff00ff"),
    ("mirror clone", MIRROR_TEMPORARY, "mmcv.git", {}, ".mmcv.git.0123456789ab.mmlab-partial"),
    ("python-env scratch", SCRATCH_TEMPORARY, "x", {}, ".mmlab-python-env-0123abcd"),
    ("verify scratch", VERIFY_TEMPORARY, "x", {}, ".mmlab-verify-0123abcd"),
    ("python-env venv made", VENV_TEMPORARY, "mmdet3d", {"stage": "partial"}, ".mmdet3d.partial"),
    ("python-env venv replaced", VENV_TEMPORARY, "mmdet3d", {"stage": "old"}, ".mmdet3d.old"),
    ("clone", CLONE_TEMPORARY, "mmlab_extension", {}, ".mmlab_extension.mmlab-bootstrap-partial"),
    ("git's pack of a fetch", GIT_PACK_TEMPORARY, "x", {"git": "pack_AbC123"}, "tmp_pack_AbC123"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("template", "name", "own", "before"), [row[1:] for row in NAMES], ids=[r[0] for r in NAMES]
)
def test_each_caller_makes_the_names_it_made_before(
    template: str, name: str, own: dict[str, str], before: str
) -> None:
    made = temporary_beside(Path("/w") / name, template, **{**FIXED, **own})
    assert made == Path("/w") / before
    assert pattern_of(template, **own).fullmatch(before)  # and its sweep knows it


# The real makers (random parts and all) against the patterns the older versions wrote.
MADE: list[tuple[str, Callable[[Path], Path], str]] = [
    ("write_atomically", lambda d: temporary_beside(d / ".env", TEMPORARY),
     r"\.\.env\.tmp-[0-9a-f]{8}"),
    ("transfer", lambda d: temporary_beside(d / "data", TRANSFER_TEMPORARY, purpose="copy"),
     r"\.data\.mmlab-bootstrap-copy-[0-9a-f]{24}"),
    ("checkpoint download", lambda d: new_partial_name(d / "model.pth"),
     r"\.model\.pth\.part-[0-9a-f]{8}"),
    ("checkpoint record", lambda d: temporary_beside(record_path(d / "m.pth"), RECORD_TEMPORARY),
     r"\.m\.pth\.verified\.json\.tmp-[0-9a-f]{8}"),
    ("git cache line file", lambda d: temporary_beside(d / "shallow", LINES_TEMPORARY),
     rf"shallow\.{os.getpid()}\.[0-9]+\.partial"),
    ("git cache pack", lambda d: temporary_beside(d / "p.idx", PACK_TEMPORARY),
     rf"\.p\.idx\.{os.getpid()}\.partial"),
    ("git cache repository", lambda d: temporary_beside(d / "r.git", REPOSITORY_TEMPORARY),
     rf"\.r\.git\.{os.getpid()}\.[0-9]+\.partial"),
    ("lease lock folder", lambda d: LeaseLock(d / "lock", d / "clock", print)._aside("making"),
     rf"\.making\+{re.escape(socket.gethostname())}\+{os.getpid()}\+[0-9a-f]{{16}}"),
    ("mirror clone", lambda d: Place("o", "n", "u", d / "n.git").partial(),
     r"\.n\.git\.[0-9a-f]{12}\.mmlab-partial"),
    ("clone", lambda d: partial_path(d / "mmlab_extension"),
     r"\.mmlab_extension\.mmlab-bootstrap-partial"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "before"), [r[1:] for r in MADE], ids=[r[0] for r in MADE])
def test_the_real_makers_match_what_older_versions_wrote(
    tmp_path: Path, make: Callable[[Path], Path], before: str
) -> None:
    made = make(tmp_path)
    assert made.parent == tmp_path and re.fullmatch(before, made.name), made.name


def test_a_temporary_folder_is_locked_while_used_then_gone(tmp_path: Path) -> None:
    tmp_path = tmp_path / "root"
    tmp_path.mkdir()
    with temporary_folder(tmp_path, SCRATCH_TEMPORARY) as scratch:
        assert re.fullmatch(r"\.mmlab-python-env-[0-9a-f]{8}", scratch.name)
        (scratch / "requirements.in").write_text("torch\n")
        assert _held_elsewhere(scratch)
        assert sweep(tmp_path, SCRATCH_TEMPORARY, rule=UNLOCKED, folders=True) == []
        assert scratch.is_dir()
    assert os.listdir(tmp_path) == []


def _held_elsewhere(path: Path) -> bool:
    """Whether another open of `path` finds its flock taken."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


HOLD = (
    "import fcntl, os, sys\n"
    "d = os.open(sys.argv[1], os.O_RDONLY)\n"
    "fcntl.flock(d, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_unlocked_removes_only_what_no_live_process_holds(tmp_path: Path) -> None:
    """A temporary a live process holds (flock) is kept; once that process is gone (as a
    kill leaves it), the same name is removed."""
    busy = tmp_path / ".model.pth.part-0123abcd"
    busy.write_bytes(b"half")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(busy)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert sweep(tmp_path, PARTIAL_TEMPORARY, rule=UNLOCKED, name="model.pth") == []
        assert busy.exists()
    finally:
        holder.kill()
        holder.wait()
    assert sweep(tmp_path, PARTIAL_TEMPORARY, rule=UNLOCKED, name="model.pth") == [busy]


def test_dead_removes_only_what_a_gone_process_of_this_host_left(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    left = tmp_path / f".making+{host}+{gone.pid}+00ff00ff00ff00ff"
    mine = tmp_path / f".making+{host}+{os.getpid()}+00ff00ff00ff00ff"
    elsewhere = tmp_path / f".broken+another-host+{gone.pid}+00ff00ff00ff00ff"
    for folder in (left, mine, elsewhere):
        folder.mkdir()
        (folder / "owner").write_text("x")
    fields = {"kind": re.compile("[a-z]+"), "owner": re.compile("[0-9a-f]+")}
    removed = sweep(tmp_path, LOCK_TEMPORARY, rule=DEAD, folders=True, **fields)
    assert removed == [left] and mine.is_dir() and elsewhere.is_dir()


def test_old_removes_only_what_is_older_than_a_writer_takes(tmp_path: Path) -> None:
    record = ".model.pth.verified.json"
    fresh, stale = tmp_path / f"{record}.tmp-0123abcd", tmp_path / f"{record}.tmp-89abcdef"
    for path in (fresh, stale):
        path.write_text("{}")
    past = time.time() - 7200
    os.utime(stale, (past, past))
    assert sweep(tmp_path, RECORD_TEMPORARY, rule=OLD, older_than=3600, name=record) == [stale]
    assert fresh.exists()


def test_a_leftover_link_is_removed_as_a_link_never_followed(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("yours")
    link = tmp_path / ".data.mmlab-bootstrap-link-0123456789abcdef00000007"
    link.symlink_to(precious)
    assert sweep(tmp_path, TRANSFER_TEMPORARY, rule=HELD, purpose="link", folders=True) == [link]
    assert (precious / "data").read_text() == "yours"


COPY = {"purpose": "copy"}

# Names a user may have, each close to one a caller makes: never swept.
NEAR: list[tuple[str, str, dict[str, str]]] = [
    (TEMPORARY, "..env.tmp-0123abcg", {"name": ".env"}),
    (TEMPORARY, "..env.tmp-0123abc", {"name": ".env"}),
    (TEMPORARY, "..env.tmp-0123abcd.bak", {"name": ".env"}),
    (TEMPORARY, ".env.tmp-0123abcd", {"name": ".env"}),
    (TEMPORARY, "..env.tmp-0123ABCD", {"name": ".env"}),
    (TEMPORARY, "..other.tmp-0123abcd", {"name": ".env"}),
    (TRANSFER_TEMPORARY, ".data.mmlab-bootstrap-copy-0123", {"purpose": "copy"}),
    (TRANSFER_TEMPORARY, "data.mmlab-bootstrap-copy-0123456789abcdef00000007", COPY),
    (TRANSFER_TEMPORARY, ".data.mmlab-bootstrap-move-0123456789abcdef00000007", COPY),
    (PARTIAL_TEMPORARY, ".model.pth.part", {"name": "model.pth"}),
    (PARTIAL_TEMPORARY, ".model.pth.part-0123abcd\n", {"name": "model.pth"}),
    (LINES_TEMPORARY, "shallow.12.partial", {"name": "shallow"}),
    (LINES_TEMPORARY, "shallow.a.34.partial", {"name": "shallow"}),
    (REPOSITORY_TEMPORARY, ".mmcv.git.partial", {"name": "mmcv.git"}),
    (REPOSITORY_TEMPORARY, ".other.git.12.5678.partial", {"name": "mmcv.git"}),
    (MIRROR_TEMPORARY, ".mmcv.git.0123456789a.mmlab-partial", {"name": "mmcv.git"}),
    (SCRATCH_TEMPORARY, ".mmlab-python-env-0123abc", {}),
    (SCRATCH_TEMPORARY, ".mmlab-python-env-0123abcd-mine", {}),
    (SCRATCH_TEMPORARY, ".mmlab-python-env-0123ABCD", {}),
]  # fmt: skip


@pytest.mark.parametrize(("template", "name", "given"), NEAR, ids=[row[1] for row in NEAR])
def test_names_close_to_the_tools_own_survive_every_rule(
    tmp_path: Path, template: str, name: str, given: dict[str, str]
) -> None:
    path = tmp_path / name
    path.write_text("a user's")
    old = time.time() - 10 * 86400
    os.utime(path, (old, old))
    for rule in (UNLOCKED, HELD, OLD):
        assert sweep(tmp_path, template, rule=rule, folders=True, older_than=1, **given) == []
    assert path.read_text() == "a user's"


def test_the_git_caches_line_files_sweep_what_a_killed_write_left(tmp_path: Path) -> None:
    """`alternates`/`shallow` and a copied pack: their writer removes a killed write's
    temporary (as a kill leaves it: unlocked), never one a live writer holds."""
    info = tmp_path / "repo.git" / "objects" / "info"
    info.mkdir(parents=True)
    left = info / "alternates.999999.1.partial"
    left.write_text("/half/objects\n")
    busy = info / "alternates.12.34.partial"
    busy.write_text("")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(busy)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        add_line(info / "alternates", "/cache/objects")
        assert not left.exists() and busy.exists()
    finally:
        holder.kill()
        holder.wait()
    assert sorted(os.listdir(info)) == ["alternates", busy.name]
    assert (info / "alternates").read_text() == "/cache/objects\n"


STALL_INIT = """#!/bin/sh
# git itself; only when the tool makes a cache repository: a marker, then a wait to be killed
"$REAL_GIT" "$@"
code=$?
case " $* " in
  *" init -q --bare "*.partial" ") : > "$INIT_MARKER"; exec sleep 600 ;;
esac
exit $code
"""


def test_a_run_killed_while_making_a_cache_repository_is_cleaned_up_by_the_next(
    tmp_path: Path,
) -> None:
    """A real `inv clone` through the git cache, SIGKILLed at the moment it has made a cache
    repository's temporary folder (a marker its git writes there: no timing). The folder is
    left, as in real life; the next run removes it, under the repository's lock, and ends
    healthy."""
    fixture = build_superproject(tmp_path / "served")
    cache = tmp_path / "cache"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "tasks.py", workspace / "tasks.py")
    env = {
        "MMLAB_EXTENSION_REPO": fixture.github_url,
        "MMLAB_GIT_MIRROR": fixture.mirror,
        "MMLAB_GIT_CACHE": str(cache),
        "MMLAB_GIT_CACHE_MODE": "share",
    }
    stall = tmp_path / "bin"
    stall.mkdir()
    (stall / "git").write_text(STALL_INIT)
    (stall / "git").chmod(0o755)
    marker, real_git = tmp_path / "made", shutil.which("git")
    inv_bin = shutil.which("inv")
    assert real_git is not None and inv_bin is not None
    process = subprocess.Popen(
        [inv_bin, "clone"],
        cwd=workspace,
        env={
            **os.environ,
            **env,
            "PATH": f"{stall}:{os.environ['PATH']}",
            "REAL_GIT": real_git,
            "INIT_MARKER": str(marker),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(2400):  # the marker says when (not a timing assertion)
            if marker.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), "the run never made a cache repository"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    left = sorted(cache.rglob("*.partial"))
    assert len(left) == 1 and left[0].is_dir() and (left[0] / "HEAD").is_file(), left
    repo = left[0].parent / pattern_of(REPOSITORY_TEMPORARY).fullmatch(left[0].name)["name"]
    assert not repo.exists()  # the kill came before the rename
    run = inv(workspace, "clone", env=env)
    assert run.code == 0, run.out + run.err
    assert_healthy(workspace, fixture)
    assert sorted(cache.rglob("*.partial")) == [], "the killed run's folder is still there"
    assert (repo / "HEAD").is_file()
    assert (cache / cache_key(f"{GITHUB}{OWNER}/mmdetection.git") / "HEAD").is_file()
    assert os.listdir(cache / ".mmlab-bootstrap" / "locks") == []

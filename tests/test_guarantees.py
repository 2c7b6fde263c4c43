"""The README's guarantees under pressure: kills, concurrent runs, bad input, faults, hostility."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mmlab_bootstrap.clone.plan import partial_path
from mmlab_bootstrap.fs.lock import workspace_lock

from .conftest import Cloned, assert_clean_error, inv, mount, scaled, snapshot
from .lib.gitfixture import Fixture, RepoSpec, Submodule, build_repo, build_superproject


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_digests(root: Path) -> set[str]:
    found = set()
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                found.add(digest(path))
    return found


KILL_AND_RERUN = scaled(10, 20)


@pytest.mark.slow
def test_kill_and_rerun_many_times(workspace: Path, tmp_path: Path) -> None:
    """SIGINT and SIGKILL at random moments once a task has begun, 10 or 20 times (bootstrap,
    unlink, bootstrap, …); one more run leaves a healthy workspace and every file the user
    had, byte for byte. Counts the kills that landed before the task finished."""
    fixture = build_superproject(tmp_path / "served", commits=100, bytes_per_commit=4096)
    (workspace / ".env").write_text("# my notes\nMY_KEY='keep me'\n")
    stored = workspace / "mmlab_dataset/mmdetection3d/data/kitti/velodyne.bin"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(os.urandom(4096))
    first = subprocess.Popen(
        ["inv", "bootstrap", "--repo", fixture.url()], cwd=workspace, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    partial = partial_path(workspace / "mmlab_extension")
    deadline = time.monotonic() + 30
    while not partial.exists():
        assert time.monotonic() < deadline and first.poll() is None, "no clone began"
        time.sleep(0.005)
    os.killpg(first.pid, signal.SIGKILL)  # in the middle of the superproject's clone
    assert first.wait() == -signal.SIGKILL, "the first kill landed after bootstrap had finished"
    left = partial.exists()  # (unless the kill came just after the clone was moved in place)
    finished = inv(workspace, "clone")
    assert finished.code == 0, finished.err
    assert ("removed a partial clone" in finished.out) == left and not partial.exists()
    downloaded = workspace / "mmlab_extension/mmdetection/data/downloaded.bin"
    if os.path.islink(downloaded.parent):
        assert inv(workspace, "unlink", "--data").code == 0
    downloaded.parent.mkdir(exist_ok=True)
    downloaded.write_bytes(os.urandom(2048))
    user_files = {stored: digest(stored), downloaded: digest(downloaded)}
    rng = random.Random(2026)
    mid_work = 0
    for attempt in range(KILL_AND_RERUN):
        task = ["bootstrap", "--backup"] if attempt % 2 == 0 else ["unlink"]
        process = subprocess.Popen(
            ["inv", *task], cwd=workspace, start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        first = process.stdout.readline() if process.stdout else b""  # the task has begun
        time.sleep(rng.uniform(0.0, 0.2))
        os.killpg(process.pid, signal.SIGINT if attempt % 4 < 2 else signal.SIGKILL)
        process.communicate(timeout=60)
        if process.returncode != 0 and first:
            mid_work += 1  # killed after the task had begun, before it finished
    print("mid_work", mid_work)
    assert mid_work >= KILL_AND_RERUN // 5, f"only {mid_work} kills landed while a task worked"
    final = inv(workspace, "bootstrap", "--backup")
    assert final.code == 0, final.err
    assert inv(workspace, "status").code == 0
    assert "MY_KEY='keep me'" in (workspace / ".env").read_text()
    assert set(user_files.values()) <= all_digests(workspace)


def test_two_bootstraps_at_once(workspace: Path, fixture: Fixture) -> None:
    """Exactly one run does the work; the other waits (then finds nothing to do) or says who
    holds the workspace."""
    runs = [
        subprocess.Popen(
            ["inv", "bootstrap", "--repo", fixture.url()],
            cwd=workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    workers = [r for r in results if "cloned " in r[1]]
    assert len(workers) == 1, results
    assert workers[0][0] == 0
    other = next(r for r in results if r is not workers[0])
    assert (other[0] == 0 and "clone: up to date" in other[1]) or (
        other[0] == 1 and "another run (pid" in other[2]
    ), other
    assert inv(workspace, "status").code == 0


def test_a_held_workspace_is_named_and_read_only_tasks_still_work(workspace: Path) -> None:
    """While another run holds the lock: a changing task fails naming it; status and --dry run."""
    with workspace_lock(workspace, "clone"):
        run = inv(workspace, "env", env={"MMLAB_LOCK_WAIT": "0.2"})
        waiting, _, rest = run.err.partition("\n")
        assert waiting == f"waiting for pid {os.getpid()} (task clone)…"
        assert_clean_error(replace(run, err=rest), f"another run (pid {os.getpid()}, task clone)")
        assert not (workspace / ".env").exists()
        assert inv(workspace, "--dry", "env").code == 0
        assert inv(workspace, "status").code == 1  # not set up, but it ran


def test_permission_denied_part_way_through_an_adopt(cloned: Cloned, mounts: list[Path]) -> None:
    """A read-only folder in the target stops the adopt part way: nothing lost, clear next step."""
    storage = cloned.root / "fast"
    mount(mounts, storage, "size=8m")
    target = storage / "mmdetection" / "data"
    location = cloned.ext / "mmdetection" / "data"
    (location / "zz").mkdir(parents=True)
    (location / "a.bin").write_bytes(b"a" * 1000)
    (location / "zz" / "b.bin").write_bytes(b"b" * 1000)
    mount(mounts, target / "zz", "ro,size=1m")
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert_clean_error(run, "stopped part way", "Read-only file system", "nothing is lost")
    assert "run the same command again" in run.err
    assert (target / "a.bin").read_bytes() == b"a" * 1000
    assert (location / "zz" / "b.bin").read_bytes() == b"b" * 1000
    subprocess.run(["umount", str(target / "zz")], check=True)
    mounts.remove(target / "zz")
    again = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert again.code == 0, again.err
    assert (location / "zz" / "b.bin").read_bytes() == b"b" * 1000  # through the link now


def test_disk_full_during_a_copy(cloned: Cloned, mounts: list[Path]) -> None:
    """The target fills up (no inodes left) during the copy: nothing lost, clear next step.
    (The space check counts what the target has room for; the folder the files go to is a
    smaller disk mounted inside it, which the check does not see.)"""
    storage = cloned.root / "small"
    mount(mounts, storage, "size=4m")
    location = cloned.ext / "mmdetection" / "data"
    (location / "sub").mkdir(parents=True)
    files = {f"sub/f{i}.bin": os.urandom(1000) for i in range(8)}
    for name, data in files.items():
        (location / name).write_bytes(data)
    inner = storage / "mmdetection" / "data" / "sub"
    mount(mounts, inner, "size=1m,nr_inodes=8")
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert_clean_error(run, "stopped part way", "No space left on device")
    target = storage / "mmdetection" / "data"
    for name, data in files.items():
        here, there = location / name, target / name
        assert (here.exists() and here.read_bytes() == data) or there.read_bytes() == data, name
    subprocess.run(["mount", "-o", "remount,nr_inodes=1000", str(inner)], check=True)
    again = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert again.code == 0, again.err
    assert {name: (location / name).read_bytes() for name in files} == files


def test_not_enough_space_is_refused_before_copying(cloned: Cloned, mounts: list[Path]) -> None:
    """Free space is checked first: the refusal names both figures and nothing moves."""
    storage = cloned.root / "tiny"
    mount(mounts, storage, "size=64k")
    location = cloned.ext / "mmdetection" / "data"
    location.mkdir()
    (location / "big.bin").write_bytes(os.urandom(300_000))
    before = snapshot(cloned.ext)
    run = inv(cloned.root, "link-data", "--adopt", "--dataset-path", str(storage))
    assert_clean_error(run, "nothing changed")
    assert "needs " in run.out and "1 file(s) of 293.0 KiB" in run.out and "free" in run.out
    assert snapshot(cloned.ext) == before


def test_require_mount_refuses_the_system_disk(cloned: Cloned, mounts: list[Path]) -> None:
    """With MMLAB_REQUIRE_MOUNT=1 a storage root on the system disk is refused; one on a mount
    is used."""
    run = inv(cloned.root, "layout", env={"MMLAB_REQUIRE_MOUNT": "1"})
    assert_clean_error(run, "is not on a mounted disk")
    disk = cloned.root / "disk"
    mount(mounts, disk, "size=1m")
    ok = inv(
        cloned.root,
        "layout",
        "--dataset-path",
        str(disk / "data"),
        "--checkpoints-path",
        str(disk / "ckpt"),
        env={"MMLAB_REQUIRE_MOUNT": "1"},
    )
    assert ok.code == 0, ok.err


@pytest.mark.parametrize("field", ["url", "path"])
def test_gitmodules_with_dash_is_refused_and_runs_nothing(
    workspace: Path, tmp_path: Path, field: str
) -> None:
    """A submodule URL or path starting with '-' never becomes an option to any command."""
    served = tmp_path / "served"
    sentinel = tmp_path / "SENTINEL"
    sub = build_repo(served, RepoSpec("plain"), {}, absolute=False)
    path, name = ("-evil", "evil") if field == "path" else ("evil", "evil")
    spec = RepoSpec("hostile", submodules=[Submodule(path, name)])
    repo = served / "fake" / "hostile.git"
    build_repo(served, spec, {name: sub}, absolute=False)
    if field == "url":
        scratch = tmp_path / "scratch"
        subprocess.run(["git", "clone", "-q", str(repo), str(scratch)], check=True)
        (scratch / ".gitmodules").write_text(
            f'[submodule "evil"]\n\tpath = evil\n\turl = -u"touch {sentinel}"\n'
        )
        subprocess.run(["git", "-C", str(scratch), "commit", "-qam", "evil url"], check=True)
        subprocess.run(["git", "-C", str(scratch), "push", "-q", "origin", "HEAD:main"], check=True)
    outside = snapshot(tmp_path / "home")
    run = inv(workspace, "clone", "--repo", f"file://{repo}")
    assert_clean_error(run)
    assert not sentinel.exists()
    assert snapshot(tmp_path / "home") == outside


def test_a_symlink_out_of_the_workspace_is_not_followed(cloned: Cloned, tmp_path: Path) -> None:
    """A sub-project folder that is a symlink outside: refused; the outside stays as it was."""
    sentinel = tmp_path / "sentinel"
    (cloned.ext / "mmdetection").rename(sentinel)
    (cloned.ext / "mmdetection").symlink_to(sentinel)
    before = snapshot(sentinel)
    for task in ("link-data", "link-checkpoints", "unlink", "bootstrap"):
        run = inv(cloned.root, task)
        assert_clean_error(run)
        # (bootstrap meets it first in clone, where git itself refuses the symlink)
        assert "refusing to follow" in run.err or "symbolic link" in run.err, task
    assert snapshot(sentinel) == before


def test_an_unwritable_storage_root_is_refused(cloned: Cloned, mounts: list[Path]) -> None:
    """A storage root that exists but cannot be written is refused before anything is made."""
    root = cloned.root / "readonly"
    mount(mounts, root, "ro,size=1m")
    before = snapshot(cloned.ext)
    for task in ("layout", "link-data"):
        run = inv(cloned.root, task, "--dataset-path", str(root))
        assert_clean_error(run, "is not writable")
    assert snapshot(cloned.ext) == before

"""MMLAB_GIT_CACHE (issue 13): a second workspace fetches almost nothing, in both modes; what a
deleted cache does to each mode; concurrent clones through one cache. The tool's git keeps
stock settings; the fixture is served over a loopback git daemon whose bytes are counted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmlab_bootstrap.gitcache.store import cache_key

from .conftest import assert_clean_error, inv, snapshot
from .lib.clonecheck import SUBMODULES, assert_healthy, status
from .lib.gitfixture import GITHUB, OWNER, Fixture, advance, build_superproject, git, push_commit
from .lib.netserve import Traffic, served_over_network

TIP_BYTES = 300_000  # data in every repository's tip, so that a clone's bytes are mostly objects


def _fixture(tmp_path: Path) -> Fixture:
    return build_superproject(tmp_path / "served", tip_bytes=TIP_BYTES)


def _workspace(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "tasks.py", root / "tasks.py")
    return root


def _env(fixture: Fixture, base: str, cache: Path, mode: str = "dissociate") -> dict[str, str]:
    return {
        "MMLAB_EXTENSION_REPO": fixture.github_url,
        "MMLAB_GIT_MIRROR": base,
        "MMLAB_GIT_CACHE": str(cache),
        "MMLAB_GIT_CACHE_MODE": mode,
    }


def _repositories(ext: Path) -> list[Path]:
    return [ext, *(ext / path for path in SUBMODULES)]


def _gitdir(repo: Path) -> Path:
    return Path(git("-C", str(repo), "rev-parse", "--absolute-git-dir"))


def _alternates(repo: Path) -> str:
    path = _gitdir(repo) / "objects/info/alternates"
    return path.read_text() if path.exists() else ""


def _fsck(repo: Path) -> None:
    done = subprocess.run(["git", "-C", str(repo), "fsck", "--no-dangling"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def _status_json(workspace: Path, env: dict[str, str]) -> dict[str, object]:
    run = inv(workspace, "status", "--json", env=env)
    document: dict[str, object] = json.loads(run.out)
    return document


@pytest.mark.slow
def test_a_second_workspace_fetches_almost_nothing_through_the_cache(tmp_path: Path) -> None:
    """Dissociate mode: the second workspace's bytes from the server are a small fraction of
    the first's, its repositories are complete and its own (no alternates), and its
    superproject is set up as `git clone --depth 1` sets one up."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    first, second, plain = (_workspace(tmp_path, name) for name in ("one", "two", "plain"))
    traffic = Traffic()
    with served_over_network(fixture.served, traffic=traffic) as base:
        env = _env(fixture, base, cache)
        assert inv(first, "clone", env=env).code == 0
        first_bytes, traffic.received = traffic.received, 0
        run = inv(second, "clone", env=env)
        second_bytes = traffic.received
        plain_run = inv(
            plain, "clone", "--repo", fixture.github_url, env={"MMLAB_GIT_MIRROR": base}
        )
    assert run.code == 0, run.err
    assert plain_run.code == 0, plain_run.err
    assert first_bytes > 4 * TIP_BYTES
    assert second_bytes <= 0.05 * first_bytes, (second_bytes, first_bytes)
    for workspace in (first, second):
        assert_healthy(workspace, fixture)
        for repo in _repositories(workspace / "mmlab_extension"):
            assert _alternates(repo) == ""
            _fsck(repo)
    ext, reference = second / "mmlab_extension", plain / "mmlab_extension"
    for args in (["config", "--local", "-l"], ["for-each-ref"], ["status", "-sb"]):
        assert git("-C", str(ext), *args) == git("-C", str(reference), *args), args
    assert (cache / cache_key(fixture.github_url)).is_dir()


@pytest.mark.slow
def test_share_mode_borrows_objects_and_a_deleted_cache_is_reported_then_repaired(
    tmp_path: Path,
) -> None:
    """Share mode: the workspace's `.git` holds a small fraction of a dissociated one's bytes;
    with the cache deleted `status` is unhealthy and names `inv clone`, which fetches the
    commits into the cache again and leaves the workspace healthy."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    own, shared = _workspace(tmp_path, "own"), _workspace(tmp_path, "shared")
    with served_over_network(fixture.served) as base:
        assert inv(own, "clone", env=_env(fixture, base, cache)).code == 0
        env = _env(fixture, base, cache, "share")
        run = inv(shared, "clone", env=env)
        assert run.code == 0, run.err
        assert_healthy(shared, fixture)
        ext = shared / "mmlab_extension"
        for repo in _repositories(ext):
            assert str(cache) in _alternates(repo)
            _fsck(repo)
        assert _size(ext / ".git") <= 0.10 * _size(own / "mmlab_extension/.git")
        assert _status_json(shared, env)["superproject"]["borrowing_problems"] == []  # type: ignore[index]

        shutil.rmtree(cache)
        document = _status_json(shared, env)
        problems = document["superproject"]["borrowing_problems"]  # type: ignore[index]
        assert len(problems) == 1 + len(SUBMODULES)
        assert all("(run: inv clone)" in problem for problem in problems)
        assert not document["healthy"]
        text = inv(shared, "status", env=env)
        assert "mmdetection3d/third_party/spconv borrows objects from" in text.err + text.out
        assert "submodule mmdetection: its borrowed objects are gone" in text.err + text.out
        assert "ok superproject" not in text.out and not document["superproject"]["objects_present"]  # type: ignore[index]
        assert not any(s["ready"] for s in document["submodules"])  # type: ignore[attr-defined]
        assert not [p for p in document["problems"] if "submodule" in p]  # type: ignore[attr-defined]

        before = snapshot(shared)
        dry = inv(shared, "clone", "--dry", env=env)
        assert dry.code == 0, dry.err
        assert "into the git cache again" in dry.out
        assert snapshot(shared) == before and not cache.exists()

        repaired = inv(shared, "clone", env=env)
        assert repaired.code == 0, repaired.err
        assert _status_json(shared, env)["superproject"]["borrowing_problems"] == []  # type: ignore[index]
        for repo in _repositories(ext):
            _fsck(repo)
        assert_healthy(shared, fixture)
        again = inv(shared, "clone", env=env)
        assert "up to date" in again.out + again.err


def test_a_dissociated_workspace_outlives_its_cache(tmp_path: Path) -> None:
    """Dissociate mode: deleting the cache changes nothing for the workspace."""
    fixture = _fixture(tmp_path)
    cache, workspace = tmp_path / "cache", _workspace(tmp_path, "ws")
    env = _env(fixture, fixture.mirror, cache)
    assert inv(workspace, "clone", env=env).code == 0
    shutil.rmtree(cache)
    document = _status_json(workspace, env)
    assert document["superproject"]["borrowing_problems"] == []  # type: ignore[index]
    assert not [p for p in document["problems"] if "submodule" in p]  # type: ignore[attr-defined]
    for repo in _repositories(workspace / "mmlab_extension"):
        _fsck(repo)
    assert_healthy(workspace, fixture)


@pytest.mark.slow
def test_update_goes_through_the_cache(tmp_path: Path) -> None:
    """`inv clone --update` brings the new superproject commit (and the submodule commit it
    records) through the cache; a second workspace's update then fetches it from there."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    one, two = _workspace(tmp_path, "one"), _workspace(tmp_path, "two")
    env = _env(fixture, fixture.mirror, cache, "share")
    for workspace in (one, two):
        assert inv(workspace, "clone", env=env).code == 0
    moved = advance(fixture, "mmdetection", tip_bytes=1000)
    record = subprocess.run(
        ["git", "-C", str(fixture.bare("mmlab_extension")), "rev-parse", "main"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    tip = _record(fixture, "mmdetection", moved)
    assert tip != record
    for workspace in (one, two):
        run = inv(workspace, "clone", "--update", env=env)
        assert run.code == 0, run.err
        ext = workspace / "mmlab_extension"
        assert git("-C", str(ext), "rev-parse", "HEAD") == tip
        assert status(ext)["mmdetection"] == (" ", moved)
        for repo in _repositories(ext):
            _fsck(repo)
    store = cache / cache_key(fixture.github_url)
    assert git("--git-dir", str(store), "cat-file", "-t", tip) == "commit"
    again = inv(one, "clone", "--update", env=env)  # nothing new upstream: says so
    assert again.code == 0, again.err
    assert "is up to date with main" in again.out and "updated" not in again.out


@pytest.mark.slow
def test_concurrent_clones_through_one_cache(tmp_path: Path) -> None:
    """Three workspaces cloned at once through one new cache all end healthy, their
    repositories fsck-clean, the cache's too."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    workspaces = [_workspace(tmp_path, f"ws{number}") for number in range(3)]
    env = {**os.environ, **_env(fixture, fixture.mirror, cache, "share")}
    processes = [
        subprocess.Popen(
            ["inv", "clone", "--jobs", "3"],
            cwd=workspace,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for workspace in workspaces
    ]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    for workspace in workspaces:
        assert_healthy(workspace, fixture)
        for repo in _repositories(workspace / "mmlab_extension"):
            _fsck(repo)
    for store in cache.glob("*/*/*.git"):
        _fsck(store)
    assert not list(cache.rglob("*.partial"))


def test_dry_run_makes_no_cache(tmp_path: Path) -> None:
    """`inv clone --dry` with a cache says what it would fetch, and creates nothing."""
    fixture = _fixture(tmp_path)
    cache, workspace = tmp_path / "cache", _workspace(tmp_path, "ws")
    run = inv(workspace, "clone", "--dry", env=_env(fixture, fixture.mirror, cache))
    assert run.code == 0, run.err
    assert f"into the git cache {cache / cache_key(fixture.github_url)}" in run.out
    assert f"would fetch each submodule through the git cache {cache} (dissociate mode)," in run.out
    assert not cache.exists() and not (workspace / "mmlab_extension").exists()


@given(st.text(min_size=0, max_size=60))
def test_cache_keys_stay_inside_the_cache(url: str) -> None:
    """Whatever a URL holds (a hostile .gitmodules names it), its cache repository is a plain
    relative path inside the cache, ending in `.git`."""
    key = cache_key(url)
    parts = key.split("/")
    assert key.endswith(".git") and not key.startswith("/")
    assert all(part not in ("", ".", "..") and not part.startswith("-") for part in parts)
    assert os.path.normpath(os.path.join("/cache", key)).startswith("/cache/")


def test_cache_keys_of_one_repository_agree() -> None:
    assert cache_key("https://github.com/a/b.git") == "github.com/a/b.git"
    assert cache_key("https://github.com/a/b") == "github.com/a/b.git"
    assert cache_key("https://github.com/a/b/") == "github.com/a/b.git"
    assert cache_key("git@github.com:a/b.git") == "github.com/a/b.git"
    assert cache_key("https://github.com/a/../b").startswith("other/")
    assert cache_key("file:///srv/x.git") != cache_key("file:///srv/y.git")
    # never inside another cache repository (a relative `./sub` URL of a superproject)
    assert cache_key("https://github.com/a/b.git/sub").startswith("other/")


def _record(fixture: Fixture, name: str, commit: str) -> str:
    """Make the superproject record `commit` for submodule `name`; return its new tip."""
    scratch = fixture.served.parent / "scratch-record"
    git("clone", "-q", fixture.url(), str(scratch))
    git("-C", str(scratch), "update-index", "--cacheinfo", f"160000,{commit},{name}")
    git("-C", str(scratch), "commit", "-q", "-m", f"record {name} {commit[:7]}")
    git("-C", str(scratch), "push", "-q", "origin", "HEAD:refs/heads/main")
    tip = git("-C", str(scratch), "rev-parse", "HEAD")
    shutil.rmtree(scratch)
    return tip


def _size(folder: Path) -> int:
    """Bytes of the files under `folder` (each inode once)."""
    seen, total = set(), 0
    for path in folder.rglob("*"):
        info = path.lstat()
        if path.is_file() and not path.is_symlink() and info.st_ino not in seen:
            seen.add(info.st_ino)
            total += info.st_size
    return total


def _kill_when(process: subprocess.Popen[bytes], landed: Callable[[], bool]) -> bool:
    """SIGKILL the process group as soon as `landed()` holds; whether it held before the end."""
    deadline = time.monotonic() + 60
    hit = False
    while process.poll() is None and time.monotonic() < deadline:
        if landed():
            hit = True
            break
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return hit


@pytest.mark.slow
def test_kills_while_fetching_into_the_cache_are_finished_by_a_rerun(tmp_path: Path) -> None:
    """SIGKILL while a commit is arriving in the cache, and again once the cache holds it
    (the workspace taking it from there), in share mode; a lock file a killed git left in
    the cache too. Each re-run ends healthy, with the cache and the workspace fsck-clean."""
    fixture = build_superproject(tmp_path / "served", tip_bytes=3_000_000)
    cache = tmp_path / "cache"
    store = cache / cache_key(f"{GITHUB}{OWNER}/mmdetection.git")
    arriving = lambda: any(p.stat().st_size for p in store.glob("objects/pack/tmp_pack_*"))  # noqa: E731
    landed = 0
    with served_over_network(fixture.served, mib_per_second=1.0, latency=0.02) as base:
        env = _env(fixture, base, cache, "share")
        for number in range(2):
            workspace = _workspace(tmp_path, f"ws{number}")
            # the first: while the cache receives; the second (the cache holds everything):
            # while the workspace's submodules are being made from it
            module = workspace / "mmlab_extension/.git/modules/mmdetection"
            moment = arriving if number == 0 else module.exists
            process = subprocess.Popen(
                ["inv", "clone"],
                cwd=workspace,
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            landed += _kill_when(process, moment)
            if number == 0:
                (store / "shallow.lock").write_text("")  # as a git killed while writing it
            run = inv(workspace, "clone", env=env)
            assert run.code == 0, run.err
            assert_healthy(workspace, fixture)
            for repo in _repositories(workspace / "mmlab_extension"):
                _fsck(repo)
            _fsck(store)
            assert not list(store.glob("objects/pack/tmp_*"))  # the killed fetch's pack
    assert landed == 2, "a kill did not land mid-work"
    assert not (store / "shallow.lock").exists()


def test_dissociate_mode_gives_a_shared_workspace_its_own_objects(tmp_path: Path) -> None:
    """A workspace cloned in share mode, then `inv clone` in dissociate mode: every repository
    gets its own copy (as `git clone --dissociate` does), and outlives the cache."""
    fixture = _fixture(tmp_path)
    cache, workspace = tmp_path / "cache", _workspace(tmp_path, "ws")
    assert inv(workspace, "clone", env=_env(fixture, fixture.mirror, cache, "share")).code == 0
    env = _env(fixture, fixture.mirror, cache)
    dry = inv(workspace, "clone", "--dry", env=env)
    assert "repack -a -d" in dry.out, dry.out
    run = inv(workspace, "clone", env=env)
    assert run.code == 0, run.err
    assert "copied the objects it borrowed from the git cache" in run.out
    ext = workspace / "mmlab_extension"
    assert all(_alternates(repo) == "" for repo in _repositories(ext))
    shutil.rmtree(cache)
    for repo in _repositories(ext):
        _fsck(repo)
    assert_healthy(workspace, fixture)
    assert "up to date" in inv(workspace, "clone", env=env).out


def test_a_cache_that_cannot_be_made_is_a_clean_error(tmp_path: Path) -> None:
    """MMLAB_GIT_CACHE under a file: one error line naming it, one hint, nothing cloned."""
    fixture = _fixture(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    workspace = _workspace(tmp_path, "ws")
    run = inv(workspace, "clone", env=_env(fixture, fixture.mirror, blocker / "cache"))
    assert run.code == 1
    lines = run.err.strip().splitlines()
    assert lines[0].startswith("error: cannot make the git cache repository"), run.err
    assert lines[1].startswith("hint: ") and "--git-cache" in lines[1]
    assert not (workspace / "mmlab_extension").exists()


def test_a_fetch_into_the_cache_waits_for_another_machines_lease(tmp_path: Path) -> None:
    """The cache's repositories have the same lease locks as a team mirror (a cache on a
    disk several machines share): a live lock of another host is waited for, saying so once;
    a dead run's lock of this host is broken at once."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    locks = cache / ".mmlab-bootstrap" / "locks"
    key = cache_key(fixture.github_url).replace("/", "+")
    live = locks / key
    live.mkdir(parents=True)
    (live / "owner").write_text("another-host 4242 ? planted\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = locks / cache_key(f"{GITHUB}{OWNER}/mmdetection.git").replace("/", "+")
    stale.mkdir()
    (stale / "owner").write_text(f"{socket.gethostname()} {dead.pid} ? planted\n")
    workspace, log = _workspace(tmp_path, "ws"), tmp_path / "log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["inv", "clone"],
            cwd=workspace,
            env={**os.environ, **_env(fixture, fixture.mirror, cache)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(2)
            assert process.poll() is None, log.read_text()
            assert "waiting for another-host pid 4242" in log.read_text()
            assert not (workspace / "mmlab_extension").exists()
            (live / "owner").unlink()
            live.rmdir()  # that machine is done
            assert process.wait(timeout=60) == 0, log.read_text()
        finally:
            process.kill()
            process.wait()
    text = log.read_text()
    assert text.count("waiting for") == 1
    assert "broke the lock of" in text and "no longer running" in text
    assert_healthy(workspace, fixture)
    assert os.listdir(locks) == []


def _log_works(repo: Path, rev: str = "HEAD") -> None:
    done = subprocess.run(["git", "-C", str(repo), "log", "--oneline", rev], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def test_a_commit_whose_fetch_stopped_before_its_shallow_entry_is_fetched_again(
    tmp_path: Path,
) -> None:
    """git installs a fetched pack, then writes the `shallow` entry, then the ref. A cache
    repository caught between (a fetch killed there, or still running in another workspace)
    or whose `shallow` file was emptied by hand does not hold the commit: the next clone
    fetches it again, and no workspace gets a commit whose parents git cannot find."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    store = cache / cache_key(f"{GITHUB}{OWNER}/mmdetection.git")
    for number, mode in enumerate(("dissociate", "share", "dissociate")):
        env = _env(fixture, fixture.mirror, cache, mode)
        first = _workspace(tmp_path, f"first{number}")
        assert inv(first, "clone", env=env).code == 0
        commit = fixture.tips["mmdetection"]
        (store / "shallow").write_text("")  # as the kill left it (or a hand emptied it)
        if number < 2:
            git("--git-dir", str(store), "update-ref", "-d", f"refs/mmlab-bootstrap/{commit}")
        workspace = _workspace(tmp_path, f"ws{number}")
        run = inv(workspace, "clone", env=env)
        assert run.code == 0, run.err
        assert_healthy(workspace, fixture)
        for repo in _repositories(workspace / "mmlab_extension"):
            _log_works(repo)
            _fsck(repo)
        assert commit in (store / "shallow").read_text()
        _log_works(store, commit)
        shutil.rmtree(cache)


def test_a_damaged_cache_repository_is_named_and_nothing_around_the_cache_is_touched(
    tmp_path: Path,
) -> None:
    """A cache inside another git repository (the workspace's own checkout, say), one of its
    repositories without its objects: `inv clone` names it with the command that fixes it,
    and git never reaches the repository around the cache; after that command, a clone
    repairs the workspace."""
    fixture = _fixture(tmp_path)
    outer = _workspace(tmp_path, "outer")
    git("init", "-q", str(outer))
    git("-C", str(outer), "add", "tasks.py")
    git("-C", str(outer), "commit", "-q", "-m", "mine")
    before = (git("-C", str(outer), "for-each-ref"), sorted(os.listdir(outer / ".git")))
    cache = outer / ".cache" / "git"
    env = _env(fixture, fixture.mirror, cache, "share")
    assert inv(outer, "clone", env=env).code == 0
    store = cache / cache_key(f"{GITHUB}{OWNER}/mmdetection.git")
    shutil.rmtree(store / "objects")
    run = inv(outer, "clone", env=env)
    assert run.code == 1
    lines = run.err.strip().splitlines()
    assert lines[0].startswith("error: ") and "is not a git repository" in lines[0], run.err
    assert lines[1].startswith("hint: move it away (mv ") and "inv clone" in lines[1]
    assert (git("-C", str(outer), "for-each-ref"), sorted(os.listdir(outer / ".git"))) == before
    os.rename(store, f"{store}.broken")
    run = inv(outer, "clone", env=env)
    assert run.code == 0, run.err
    assert _status_json(outer, env)["superproject"]["borrowing_problems"] == []  # type: ignore[index]
    assert (git("-C", str(outer), "for-each-ref"), sorted(os.listdir(outer / ".git"))) == before
    for repo in _repositories(outer / "mmlab_extension"):
        _fsck(repo)


def test_a_moved_share_mode_cache_is_named_anew(tmp_path: Path) -> None:
    """The cache moved and MMLAB_GIT_CACHE set to its new place: `inv clone` points the
    workspace's repositories at it (nothing fetched over the network), and the workspace is
    healthy again."""
    fixture = _fixture(tmp_path)
    old, new, workspace = tmp_path / "cache", tmp_path / "moved", _workspace(tmp_path, "ws")
    traffic = Traffic()
    with served_over_network(fixture.served, traffic=traffic) as base:
        assert inv(workspace, "clone", env=_env(fixture, base, old, "share")).code == 0
        os.rename(old, new)
        env = _env(fixture, base, new, "share")
        assert len(_status_json(workspace, env)["superproject"]["borrowing_problems"]) == 4  # type: ignore[index, arg-type]
        traffic.reset()
        run = inv(workspace, "clone", env=env)
        assert run.code == 0, run.err
        assert traffic.received == 0
    assert _status_json(workspace, env)["superproject"]["borrowing_problems"] == []  # type: ignore[index]
    for repo in _repositories(workspace / "mmlab_extension"):
        assert str(old) not in _alternates(repo) and str(new) in _alternates(repo)
        _fsck(repo)


def test_a_read_only_cache_that_lacks_a_commit_is_a_clean_error(
    tmp_path: Path, mounts: list[Path]
) -> None:
    """A cache mounted read-only serves what it holds; a commit it lacks is one error line
    naming the cache and one hint naming the flag that chooses another (or none)."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    env = _env(fixture, fixture.mirror, cache)
    assert inv(_workspace(tmp_path, "one"), "clone", env=env).code == 0
    subprocess.run(["mount", "--bind", str(cache), str(cache)], check=True)
    mounts.append(cache)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(cache)], check=True)
    assert inv(_workspace(tmp_path, "two"), "clone", env=env).code == 0  # all there
    push_commit(fixture, "mmlab_extension", "later.txt", b"later\n")
    run = inv(_workspace(tmp_path, "three"), "clone", env=env)
    assert_clean_error(run, "cannot lock the git cache repository", "Read-only file system")
    assert "--git-cache" in run.err.splitlines()[1]


def test_a_file_in_the_cache_where_a_folder_goes_is_named(tmp_path: Path) -> None:
    """A file where the cache's owner folder goes: one error naming it, the `mv` as hint."""
    fixture = _fixture(tmp_path)
    cache = tmp_path / "cache"
    blocker = cache / "github.com" / OWNER
    blocker.parent.mkdir(parents=True)
    blocker.write_text("mine\n")
    run = inv(_workspace(tmp_path, "ws"), "clone", env=_env(fixture, fixture.mirror, cache))
    assert_clean_error(run, "is a file, where a folder of repositories goes")
    assert f"mv '{blocker}'" in run.err
    assert blocker.read_text() == "mine\n"

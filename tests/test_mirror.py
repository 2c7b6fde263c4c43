"""`inv mirror DEST`: the team's bare mirrors of the superproject and every submodule, served
as `MMLAB_GIT_MIRROR=file://DEST/`. Real git, real folders; the fixture's repositories stand in
for github through the tool's own MMLAB_GIT_MIRROR (as a team's first mirror would be made from
github itself)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.mirror.places import MirrorError, place_of, resolve_relative

from .conftest import BIN, Run, assert_clean_error, inv, scaled, snapshot
from .lib.gitfixture import GITHUB, Fixture, RepoSpec, advance, build_repo, build_superproject, git
from .lib.netserve import Traffic, served_over_network

REPOS = ("mmlab_extension", "mmdetection", "mmdetection3d", "spconv")
SERVER_OPTIONS = (
    "uploadpack.allowReachableSHA1InWant",
    "uploadpack.allowAnySHA1InWant",
    "uploadpack.allowFilter",
)


def settings_env(fixture: Fixture) -> dict[str, str]:
    """The superproject on "github", served from the fixture's folder through the mirror."""
    return {"MMLAB_GIT_MIRROR": fixture.mirror, "MMLAB_EXTENSION_REPO": fixture.github_url}


def mirror(workspace: Path, fixture: Fixture, dest: Path, *args: str) -> Run:
    return inv(workspace, "mirror", str(dest), *args, env=settings_env(fixture))


def stock_git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """git as a user has it (the test's stock config): no protocol.file.allow."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def fsck_clean(dest: Path, names: tuple[str, ...] = REPOS) -> None:
    for name in names:
        done = stock_git("-C", str(dest / "fake" / f"{name}.git"), "fsck", "--no-progress")
        assert done.returncode == 0, (name, done.stdout, done.stderr)


def refs(repo: Path) -> dict[str, str]:
    listing = stock_git("-C", str(repo), "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in listing.stdout.splitlines())


def record_submodule(fixture: Fixture, parent: str, path: str, url: str, sha: str) -> str:
    """Commit a gitlink `path` at `sha` with `url` in .gitmodules to a served repository's
    main (as upstream adding a submodule); return the new commit."""
    scratch = fixture.served.parent / f"scratch-{parent}-{random.getrandbits(32):x}"
    git("clone", "-q", fixture.url(parent), str(scratch))
    git("config", "-f", ".gitmodules", f"submodule.{path}.path", path, cwd=scratch)
    git("config", "-f", ".gitmodules", f"submodule.{path}.url", url, cwd=scratch)
    git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}", cwd=scratch)
    git("add", ".gitmodules", cwd=scratch)
    git("commit", "-q", "-m", f"add {path}", cwd=scratch)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=scratch)
    tip = git("rev-parse", "HEAD", cwd=scratch)
    subprocess.run(["rm", "-rf", str(scratch)], check=True)
    return tip


PARTS = st.sampled_from(["..", ".", "", "-x", "a", "a.git", "b c", "x/..", "%2e%2e", "\\", "~"])


@settings(max_examples=scaled(300, 2000), deadline=None)
@example(url="../../outside.git", parent="https://github.com/fake/ext.git")
@example(url="https://github.com/fake/..", parent="https://github.com/fake/ext.git")
@given(
    url=st.one_of(
        st.text(max_size=40),
        st.lists(PARTS, max_size=5).map(lambda parts: "/".join(parts)),
        st.lists(PARTS, max_size=5).map(lambda parts: GITHUB + "/".join(parts)),
    ),
    parent=st.sampled_from(["https://github.com/fake/ext.git", "https://github.com/o/n"]),
)
def test_no_submodule_url_leads_outside_dest(url: str, parent: str) -> None:
    """Whatever a .gitmodules says, the place it gets is a plain `<owner>/<name>.git` two
    levels under DEST, or it is refused."""
    dest = Path("/srv/mirror")
    full = resolve_relative(parent, url)
    if not full.startswith(GITHUB):
        return  # not mirrored (a warning), never given a place
    try:
        place = place_of(dest, full, "a .gitmodules")
    except MirrorError:
        return
    assert place.path.parent.parent == dest
    assert os.path.normpath(place.path) == str(place.path)
    assert place.path.name.endswith(".git") and not place.owner.startswith(("-", "."))
    assert not place.name.startswith("-") and place.name not in (".", "..", "")


def test_mirror_builds_every_repository_with_the_server_options(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    dest = tmp_path / "team mirror"
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    for name in REPOS:
        repo = dest / "fake" / f"{name}.git"
        assert refs(repo)["refs/heads/main"] == fixture.tips[name]
        for key in SERVER_OPTIONS:
            assert stock_git("-C", str(repo), "config", key).stdout.strip() == "true"
    fsck_clean(dest)
    assert sorted(os.listdir(dest / "fake")) == [f"{name}.git" for name in sorted(REPOS)]
    assert f"inv env --mirror 'file://{dest}/'" in run.out  # quoted: DEST has a space
    assert "http-backend" in run.out
    # a URL without .git reaches the same repository (git's upload-pack tries the suffix)
    plain = stock_git("ls-remote", f"file://{dest}/fake/spconv", "refs/heads/main")
    assert plain.stdout.split()[0] == fixture.tips["spconv"], plain.stderr


def test_up_to_date_rerun_fetches_nothing(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror"
    assert mirror(workspace, fixture, dest).code == 0
    before = {name: refs(dest / "fake" / f"{name}.git") for name in REPOS}
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    assert [line for line in run.lines if line.startswith("fake/")] and all(
        "up to date" in line for line in run.lines if line.startswith("fake/")
    ), run.out
    assert before == {name: refs(dest / "fake" / f"{name}.git") for name in REPOS}


def test_an_up_to_date_mirror_costs_one_connection_per_repository(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    """Over a network (a git daemon behind a counting proxy): one ref advertisement per
    repository, and no pack, when nothing changed upstream."""
    dest = tmp_path / "mirror"
    traffic = Traffic()
    with served_over_network(fixture.served, traffic=traffic) as base:
        env = {"MMLAB_GIT_MIRROR": base, "MMLAB_EXTENSION_REPO": fixture.github_url}
        assert inv(workspace, "mirror", str(dest), env=env).code == 0
        assert traffic.connections == len(REPOS)
        traffic.reset()
        run = inv(workspace, "mirror", str(dest), env=env)
    assert run.code == 0, run.err
    assert traffic.connections == len(REPOS), traffic
    assert traffic.received < 1000 * len(REPOS), traffic  # the ref advertisements only


def test_a_repository_reached_twice_is_fetched_once(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    """spconv is recorded by mmdetection3d and (at another commit) by mmdetection too."""
    older = git("rev-parse", "main~1", cwd=fixture.bare("spconv"))
    nested = record_submodule(fixture, "mmdetection", "third_party/spconv", "../spconv.git", older)
    record_submodule(fixture, "mmlab_extension", "mmdetection", "../mmdetection.git", nested)
    dest = tmp_path / "mirror"
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    assert sum(line.startswith("fake/spconv:") for line in run.lines) == 1, run.out
    assert refs(dest / "fake" / "spconv.git")["refs/heads/main"] == fixture.tips["spconv"]
    fsck_clean(dest)


def test_incremental_update_brings_new_commits_and_new_submodules(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror"
    assert mirror(workspace, fixture, dest).code == 0
    inode = os.stat(dest / "fake" / "mmdetection.git" / "objects").st_ino
    ahead = advance(fixture, "mmdetection")  # upstream went on
    new_tip = build_repo(fixture.served, RepoSpec("newsub"), {}, absolute=False)
    nested = record_submodule(
        fixture, "mmdetection3d", "third_party/newsub", "../newsub.git", new_tip
    )
    record_submodule(fixture, "mmlab_extension", "mmdetection3d", "../mmdetection3d.git", nested)
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    assert refs(dest / "fake" / "mmdetection.git")["refs/heads/main"] == ahead
    assert os.stat(dest / "fake" / "mmdetection.git" / "objects").st_ino == inode  # fetched
    assert refs(dest / "fake" / "newsub.git")["refs/heads/main"] == new_tip
    fsck_clean(dest, (*REPOS, "newsub"))


def test_locks_a_killed_git_left_are_removed_under_the_repositorys_lock(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror"
    assert mirror(workspace, fixture, dest).code == 0
    repo = dest / "fake" / "spconv.git"
    left = [repo / "packed-refs.lock", repo / "config.lock", repo / "refs" / "heads" / "main.lock"]
    for lock in left:
        lock.write_text("")
    partial = dest / "fake" / ".spconv.git.0123456789ab.mmlab-partial"
    (partial / "objects").mkdir(parents=True)
    ahead = advance(fixture, "spconv")
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    assert not any(os.path.lexists(lock) for lock in left)
    assert not os.path.lexists(partial)
    assert f"removed {partial} (left by an interrupted run)" in run.out
    assert refs(repo)["refs/heads/main"] == ahead
    fsck_clean(dest)


def test_dry_run_changes_no_byte(workspace: Path, fixture: Fixture, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    run = inv(workspace, "--dry", "mirror", str(fresh), env=settings_env(fixture))
    assert run.code == 0, run.err
    assert not os.path.lexists(fresh)
    assert "would run: git" in run.out and "clone --mirror" in run.out
    assert "cannot be known before it is fetched" in run.out
    dest = tmp_path / "mirror"
    assert mirror(workspace, fixture, dest).code == 0
    advance(fixture, "spconv")
    before = snapshot(dest)
    run = inv(workspace, "--dry", "mirror", str(dest), env=settings_env(fixture))
    assert run.code == 0, run.err
    assert snapshot(dest) == before
    assert sum("fetch --atomic" in line for line in run.lines) == len(REPOS), run.out


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/../../outside.git",
        "https://github.com/fake/..",
        "https://github.com/-x/name.git",
        "https://github.com/fake/a/b.git",
        "../../outside.git",
    ],
)
def test_hostile_gitmodules_urls_are_refused(
    workspace: Path, fixture: Fixture, tmp_path: Path, url: str
) -> None:
    record_submodule(fixture, "mmlab_extension", "evil", url, fixture.tips["spconv"])
    dest = tmp_path / "box" / "mirror"
    run = mirror(workspace, fixture, dest)
    if url.startswith("../"):  # resolves to https://github.com/../outside.git
        assert_clean_error(run, "not https://github.com/<owner>/<name>")
    else:
        assert_clean_error(run, url, "refused")
    assert sorted(os.listdir(tmp_path / "box")) == ["mirror"]
    assert sorted(os.listdir(dest)) == [".mmlab-bootstrap", "fake"]
    assert not os.path.lexists(tmp_path / "outside.git")


def test_a_submodule_off_github_is_named_once_and_not_followed(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    other = "https://gitlab.example.com/team/tool.git"
    nested = record_submodule(
        fixture, "mmdetection3d", "third_party/tool", other, fixture.tips["spconv"]
    )
    record_submodule(fixture, "mmlab_extension", "mmdetection3d", "../mmdetection3d.git", nested)
    dest = tmp_path / "mirror"
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    warned = [line for line in run.err.splitlines() if "not mirrored" in line]
    assert len(warned) == 1 and other in warned[0], run.err
    assert "the workspace fetches it from its own URL" in warned[0]
    assert sorted(os.listdir(dest / "fake")) == sorted(f"{name}.git" for name in REPOS)


def test_a_recorded_commit_no_branch_reaches_is_fetched_and_kept(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    served = fixture.bare("spconv")
    tree = git("rev-parse", "main^{tree}", cwd=served)
    lost = git("commit-tree", "-p", "main", "-m", "on no branch", tree, cwd=served)
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=served)  # as github does
    nested = record_submodule(fixture, "mmdetection3d", "third_party/spconv", "../spconv.git", lost)
    record_submodule(fixture, "mmlab_extension", "mmdetection3d", "../mmdetection3d.git", nested)
    dest = tmp_path / "mirror"
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    assert refs(dest / "fake" / "spconv.git")[f"refs/mmlab-bootstrap/kept/{lost}"] == lost
    fsck_clean(dest)
    # the superproject at a commit no branch reaches (MMLAB_EXTENSION_REF a full id)
    served = fixture.bare("mmlab_extension")
    tree = git("rev-parse", "main^{tree}", cwd=served)
    pinned = git("commit-tree", "-p", "main", "-m", "pinned", tree, cwd=served)
    assert mirror(workspace, fixture, dest, "--ref", pinned).code == 0
    assert (
        refs(dest / "fake" / "mmlab_extension.git")[f"refs/mmlab-bootstrap/kept/{pinned}"] == pinned
    )
    run = mirror(workspace, fixture, dest, "--ref", "no-such-branch")
    assert_clean_error(run, "MMLAB_EXTENSION_REF 'no-such-branch' is not in")
    # a commit upstream will not send (here: it has lost it): a warning, the rest is mirrored
    hidden = "1234567" * 5 + "89abc"
    record_submodule(fixture, "mmlab_extension", "mmdetection3d", "../mmdetection3d.git", hidden)
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    assert f"upstream will not send {hidden}" in run.err


def test_a_missing_submodule_repository_fails_clearly_after_the_others(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    os.rename(fixture.bare("mmdetection"), fixture.served / "elsewhere.git")
    dest = tmp_path / "mirror"
    run = mirror(workspace, fixture, dest)
    assert_clean_error(run, "fake/mmdetection", "git clone --mirror failed")
    assert sorted(os.listdir(dest / "fake")) == [
        "mmdetection3d.git",
        "mmlab_extension.git",
        "spconv.git",
    ]
    fsck_clean(dest, ("mmlab_extension", "mmdetection3d", "spconv"))


def test_all_refs_follows_every_branch_tip(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    new_tip = build_repo(fixture.served, RepoSpec("newsub"), {}, absolute=False)
    main = git("rev-parse", "main", cwd=fixture.bare("mmlab_extension"))
    record_submodule(fixture, "mmlab_extension", "newsub", "../newsub.git", new_tip)
    served = fixture.bare("mmlab_extension")
    git("update-ref", "refs/heads/dev", "main", cwd=served)
    git("update-ref", "refs/heads/main", main, cwd=served)  # newsub only on dev
    dest = tmp_path / "mirror"
    assert mirror(workspace, fixture, dest).code == 0
    assert not os.path.lexists(dest / "fake" / "newsub.git")
    run = mirror(workspace, fixture, dest, "--all-refs")
    assert run.code == 0, run.err
    assert refs(dest / "fake" / "newsub.git")["refs/heads/main"] == new_tip


def test_clone_through_the_built_mirror_needs_nothing_else(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    dest = tmp_path / "mirror"
    assert mirror(workspace, fixture, dest).code == 0
    os.rename(fixture.served, tmp_path / "github is gone")
    env = {"MMLAB_GIT_MIRROR": f"file://{dest}/", "MMLAB_EXTENSION_REPO": fixture.github_url}
    run = inv(workspace, "clone", env=env)
    assert run.code == 0, run.err
    ext = workspace / "mmlab_extension"
    head = stock_git(
        "-C", str(ext / "mmdetection3d" / "third_party" / "spconv"), "rev-parse", "HEAD"
    )
    assert head.stdout.strip() == fixture.tips["spconv"]


def test_a_destination_inside_the_superproject_is_refused(
    workspace: Path, fixture: Fixture
) -> None:
    """As a git cache there is: DEST in the workspace's checkout would fill it."""
    ext = workspace / "mmlab_extension"
    run = mirror(workspace, fixture, ext / "mm")
    assert_clean_error(run, "lie inside one another")
    assert not ext.exists()


def test_refusals_are_clean_errors(workspace: Path, fixture: Fixture, tmp_path: Path) -> None:
    inside = fixture.served / "team"
    assert_clean_error(mirror(workspace, fixture, inside), "lie inside one another")
    assert not os.path.lexists(inside)
    env = {"MMLAB_EXTENSION_REPO": fixture.url()}
    run = inv(workspace, "mirror", str(tmp_path / "m"), env=env)
    assert_clean_error(run, "is not on https://github.com/")
    assert_clean_error(mirror(workspace, fixture, tmp_path / "m", "--jobs", "0"), "--jobs")
    (tmp_path / "m" / "fake" / "spconv.git").mkdir(parents=True)
    (tmp_path / "m" / "fake" / "spconv.git" / "mine.txt").write_text("mine")
    assert_clean_error(mirror(workspace, fixture, tmp_path / "m"), "is not a bare repository")
    assert (tmp_path / "m" / "fake" / "spconv.git" / "mine.txt").read_text() == "mine"


# --- locks, concurrency, kills: real processes ---------------------------------------------


def start(workspace: Path, fixture: Fixture, dest: Path, log: Path) -> subprocess.Popen[bytes]:
    """`inv mirror DEST` as a process of its own (its own process group, as a terminal job)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(BIN / "inv"), "mirror", str(dest)],
            cwd=workspace,
            env={**os.environ, **settings_env(fixture)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def plant_lock(dest: Path, name: str, host: str, pid: int, age: float = 0) -> Path:
    lock = dest / ".mmlab-bootstrap" / "locks" / f"fake+{name}"
    lock.mkdir(parents=True)
    (lock / "owner").write_text(f"{host} {pid} ? planted\n")
    if age:
        then = time.time() - age
        os.utime(lock / "owner", (then, then))
    return lock


def test_a_dead_runs_lock_is_broken(workspace: Path, fixture: Fixture, tmp_path: Path) -> None:
    dest = tmp_path / "mirror"
    dead = subprocess.Popen(["true"])
    dead.wait()
    plant_lock(dest, "mmlab_extension", socket.gethostname(), dead.pid)
    plant_lock(dest, "spconv", "another-host", 1, age=600)  # lease long expired
    odd = dest / ".mmlab-bootstrap" / "locks" / "fake+mmdetection"
    (odd / "not ours").mkdir(parents=True)  # no owner file: its own time counts
    os.utime(odd, (time.time() - 600, time.time() - 600))
    run = mirror(workspace, fixture, dest)
    assert run.code == 0, run.err
    assert run.out.count("broke the lock") == 3, run.out
    assert os.listdir(dest / ".mmlab-bootstrap" / "locks") == []
    fsck_clean(dest)


@pytest.mark.parametrize("owner", ["this host", "another host"])
def test_a_live_lock_is_waited_for(
    workspace: Path, fixture: Fixture, tmp_path: Path, owner: str
) -> None:
    dest = tmp_path / "mirror"
    alive = subprocess.Popen(["sleep", "60"])
    host = socket.gethostname() if owner == "this host" else "another-host"
    lock = plant_lock(dest, "mmlab_extension", host, alive.pid)
    log = tmp_path / "log"
    process = start(workspace, fixture, dest, log)
    try:
        time.sleep(2)
        assert process.poll() is None, log.read_text()
        assert f"waiting for {host} pid {alive.pid}" in log.read_text()
        assert not os.path.lexists(dest / "fake")
        (lock / "owner").unlink()
        lock.rmdir()  # the owner is done
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        alive.kill()
        alive.wait()
        process.kill()
        process.wait()
    assert log.read_text().count("waiting for") == 1
    fsck_clean(dest)


@pytest.mark.slow
def test_two_concurrent_runs_on_one_destination(workspace: Path, tmp_path: Path) -> None:
    fixture = build_superproject(tmp_path / "served", tip_bytes=4 << 20)
    dest = tmp_path / "mirror"
    runs = [start(workspace, fixture, dest, tmp_path / f"log{n}") for n in range(2)]
    codes = [run.wait(timeout=120) for run in runs]
    assert codes == [0, 0], [(tmp_path / f"log{n}").read_text() for n in range(2)]
    fsck_clean(dest)
    for name in REPOS:
        assert refs(dest / "fake" / f"{name}.git")["refs/heads/main"] == fixture.tips[name]
    assert sorted(os.listdir(dest / "fake")) == sorted(f"{name}.git" for name in REPOS)


@pytest.mark.slow
def test_ctrl_c_mid_clone_stops_cleanly_and_a_rerun_finishes(
    workspace: Path, tmp_path: Path
) -> None:
    fixture = build_superproject(tmp_path / "served", tip_bytes=12 << 20)
    dest = tmp_path / "mirror"
    log = tmp_path / "log"
    process = start(workspace, fixture, dest, log)
    deadline = time.monotonic() + 30
    while not partials(dest) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal reaches the whole job
    assert process.wait(timeout=60) == 130, log.read_text()
    assert "error: interrupted" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert os.listdir(dest / ".mmlab-bootstrap" / "locks") == []  # released
    rerun = start(workspace, fixture, dest, tmp_path / "rerun")
    assert rerun.wait(timeout=120) == 0, (tmp_path / "rerun").read_text()
    fsck_clean(dest)
    assert partials(dest) == []


def partials(dest: Path) -> list[str]:
    owner = dest / "fake"
    return [n for n in os.listdir(owner) if n.endswith(".mmlab-partial")] if owner.is_dir() else []


def fetching(group: int) -> bool:
    """Whether a `git fetch` of the process group (the job) is running right now."""
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if int(stat[2]) == group and b"fetch" in argv:
                return True
        except (OSError, ValueError, IndexError):
            continue
    return False


@pytest.mark.slow
def test_kills_at_random_moments_leave_what_a_rerun_finishes(
    workspace: Path, tmp_path: Path
) -> None:
    """kill -9 of the whole job at random moments, from scratch (many while a clone is half
    made) and, every other time, on an out-of-date mirror (a fetch part way); after each,
    every mirror repository present is whole, and a re-run ends complete and fsck-clean."""
    fixture = build_superproject(tmp_path / "served", tip_bytes=12 << 20)
    rng = random.Random(13)
    landed = {"clone": 0, "fetch": 0}
    kills = scaled(6, 14)
    old = tmp_path / "old"
    clean = time.monotonic()
    assert start(workspace, fixture, old, tmp_path / "old.log").wait(timeout=120) == 0
    whole = time.monotonic() - clean
    tips = {name: advance(fixture, name, 150, tip_bytes=12 << 20) for name in REPOS}
    clean = time.monotonic()
    shutil.copytree(old, tmp_path / "timing", symlinks=True)
    assert start(workspace, fixture, tmp_path / "timing", tmp_path / "t.log").wait(60) == 0
    update = time.monotonic() - clean
    for number in range(kills):
        dest = tmp_path / f"mirror{number}"
        if number % 2:
            shutil.copytree(old, dest, symlinks=True)  # out of date: the run fetches
        process = start(workspace, fixture, dest, tmp_path / f"killed{number}.log")
        time.sleep(rng.uniform(0.15, max(0.3, (update if number % 2 else whole) * 0.9)))
        mid = "clone" if partials(dest) else "fetch" if fetching(process.pid) else ""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if mid:
            landed[mid] += 1
        for name in REPOS:  # what is in place is whole
            repo = dest / "fake" / f"{name}.git"
            if repo.exists():
                assert stock_git("-C", str(repo), "fsck", "--no-progress").returncode == 0
        rerun = start(workspace, fixture, dest, tmp_path / f"rerun{number}.log")
        assert rerun.wait(timeout=120) == 0, (tmp_path / f"rerun{number}.log").read_text()
        fsck_clean(dest)
        assert partials(dest) == []
        assert os.listdir(dest / ".mmlab-bootstrap" / "locks") == []
        for name in REPOS:
            assert refs(dest / "fake" / f"{name}.git")["refs/heads/main"] == tips[name]
        shutil.rmtree(dest)
    print(f"of {kills} kills, landed mid-clone / mid-fetch: {landed}", file=sys.stderr)
    assert landed["clone"] >= 1 and landed["fetch"] >= 1


@pytest.mark.slow
def test_a_long_run_says_what_it_is_still_fetching(workspace: Path, tmp_path: Path) -> None:
    fixture = build_superproject(tmp_path / "served", tip_bytes=12 << 20)
    env = {**settings_env(fixture), "MMLAB_HEARTBEAT": "0.05"}
    run = inv(workspace, "mirror", str(tmp_path / "mirror"), env=env)
    assert run.code == 0, run.err
    assert any(line.startswith("… still working: fake/") for line in run.lines), run.out


def test_update_through_the_mirror_and_a_cache_after_upstream_moves(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    """The team's whole path: build the mirror, clone two workspaces through it with a shared
    cache (share mode); upstream records a new mmdetection commit; `inv mirror` brings it in,
    and `inv clone --update` through the mirror (GitHub gone) updates both workspaces, the
    second taking it from the cache."""
    dest, cache = tmp_path / "mirror", tmp_path / "cache"
    assert mirror(workspace, fixture, dest).code == 0
    env = {
        "MMLAB_GIT_MIRROR": f"file://{dest}/",
        "MMLAB_EXTENSION_REPO": fixture.github_url,
        "MMLAB_GIT_CACHE": str(cache),
        "MMLAB_GIT_CACHE_MODE": "share",
    }
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(workspace / "tasks.py", second / "tasks.py")
    for folder in (workspace, second):
        assert inv(folder, "clone", env=env).code == 0
    moved = advance(fixture, "mmdetection", tip_bytes=2000)
    tip = record_submodule(fixture, "mmlab_extension", "mmdetection", "../mmdetection.git", moved)
    assert mirror(workspace, fixture, dest).code == 0
    os.rename(fixture.served, tmp_path / "github is gone")
    for folder in (workspace, second):
        run = inv(folder, "clone", "--update", env=env)
        assert run.code == 0, run.err
        ext = folder / "mmlab_extension"
        assert stock_git("-C", str(ext), "rev-parse", "HEAD").stdout.strip() == tip
        head = stock_git("-C", str(ext / "mmdetection"), "rev-parse", "HEAD").stdout.strip()
        assert head == moved
        assert stock_git("-C", str(ext / "mmdetection"), "fsck").returncode == 0


def test_a_read_only_destination_is_a_clean_error(
    workspace: Path, fixture: Fixture, tmp_path: Path, mounts: list[Path]
) -> None:
    """An existing mirror mounted read-only: one error line naming the lock it cannot take,
    one hint; nothing in it changed."""
    dest = tmp_path / "mirror"
    assert mirror(workspace, fixture, dest).code == 0
    subprocess.run(["mount", "--bind", str(dest), str(dest)], check=True)
    mounts.append(dest)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(dest)], check=True)
    before = snapshot(dest)
    run = mirror(workspace, fixture, dest)
    assert_clean_error(run, "cannot lock", "Read-only file system")
    assert "inv mirror DEST" in run.err.splitlines()[1]
    assert snapshot(dest) == before

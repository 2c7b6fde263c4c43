"""Submodules are fetched only at their recorded commits (issue 15), with git's own way kept
for servers that refuse a fetch by commit id, nested ones started as soon as their parent is
checked out, and every guarantee of `inv clone` kept."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.clone.fetch.nested import _beside

from .conftest import assert_clean_error, inv, scaled
from .lib.clonecheck import (
    RECORD,
    SUBMODULES,
    assert_healthy,
    clone,
    status,
    strict_server,
)
from .lib.gitfixture import (
    GITHUB,
    OWNER,
    Fixture,
    RepoSpec,
    Submodule,
    advance,
    build_repo,
    build_superproject,
    git,
)
from .lib.netserve import served_over_network

UPSTREAM_BYTES = 400_000  # new data at the tips, which nothing records


def objects(repo: Path) -> set[str]:
    """Every object in a repository's store (packed or loose)."""
    listing = git("-C", str(repo), "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    return set(listing.split())


def packs(repo: Path) -> list[Path]:
    pack_dir = Path(
        git("-C", str(repo), "rev-parse", "--path-format=absolute", "--git-path", "objects/pack")
    )
    return sorted(pack_dir.glob("*.pack"))


def mirror_of(fixture: Fixture) -> list[str]:
    """git's options that fetch https://github.com/ from the fixture's file:// mirror."""
    return ["-c", f"url.{fixture.mirror}.insteadOf={GITHUB}"]


def module_config(folder: Path) -> dict[str, str]:
    """The settings of a submodule's repository that make it one (not its branches)."""
    keys = r"^(core\.(bare|worktree|logallrefupdates)|remote\.origin\.(url|fetch))$"
    listing = git("-C", str(folder), "config", "--local", "--get-regexp", keys)
    return dict(line.split(" ", 1) for line in listing.splitlines())


def test_only_the_recorded_commits_objects_arrive(workspace: Path, tmp_path: Path) -> None:
    """Upstream went on after the superproject recorded its submodules, adding big data at
    the tips: each submodule (nested too) gets one pack holding exactly the recorded commit's
    objects; none of the tips' data arrives."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    upstream = {}
    for name in ("mmdetection", "mmdetection3d", "spconv"):
        advance(fixture, name, commits=3, tip_bytes=UPSTREAM_BYTES)
        upstream[name] = git("-C", str(fixture.bare(name)), "rev-parse", "main:upstream.bin")
    run = clone(workspace, fixture, "--jobs", "2")
    assert run.code == 0, run.err
    ext = workspace / "mmlab_extension"
    paths = {"mmdetection": "mmdetection", "mmdetection3d": "mmdetection3d"}
    paths["spconv"] = SUBMODULES[2]
    for name, path in paths.items():
        sub = ext / path
        assert git("-C", str(sub), "rev-parse", "HEAD") == fixture.tips[name]
        listing = git("-C", str(sub), "rev-list", "--objects", "HEAD").splitlines()
        reachable = {line.split()[0] for line in listing}
        held = objects(sub)
        assert upstream[name] not in held, f"{path} received the upstream tip's data"
        assert held == reachable, (path, held - reachable)
        assert len(packs(sub)) == 1, (path, packs(sub))
    assert_healthy(workspace, fixture)


def test_the_result_is_what_git_submodule_update_makes(workspace: Path, tmp_path: Path) -> None:
    """Each submodule's repository is in its parent's `.git/modules/<name>`, linked both ways
    by relative paths (the workspace can move), `origin` at the real URL fetching its default
    branch only, as git's own shallow clone of submodules has them; `git submodule update`
    afterwards changes nothing, and moves a submodule when the superproject does."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    newer = advance(fixture, "mmdetection", commits=2)
    assert clone(workspace, fixture).code == 0
    ext = workspace / "mmlab_extension"
    assert (ext / "mmdetection/.git").read_text() == "gitdir: ../.git/modules/mmdetection\n"
    nested = ext / SUBMODULES[2] / ".git"
    assert nested.read_text() == "gitdir: ../../../.git/modules/mmdetection3d/modules/spconv\n"
    modules = ext / ".git/modules"
    assert git("--git-dir", str(modules / "mmdetection"), "config", "core.worktree") == (
        "../../../mmdetection"
    )
    assert git("-C", str(ext / "mmdetection"), "remote", "get-url", "origin") == (
        f"{GITHUB}{OWNER}/mmdetection.git"
    )
    assert git("-C", str(ext / SUBMODULES[2]), "log", "-1", "--format=%s") == "spconv commit 3"
    theirs = tmp_path / "by-git"
    shallow = ["--depth", "1", "--recurse-submodules", "--shallow-submodules"]
    git(*mirror_of(fixture), "clone", "-q", *shallow, fixture.github_url, str(theirs))
    for path in SUBMODULES:
        assert (ext / path / ".git").read_text() == (theirs / path / ".git").read_text(), path
        assert module_config(ext / path) == module_config(theirs / path), path
    moved = workspace.parent / "moved"
    workspace.rename(moved)
    ext = moved / "mmlab_extension"
    assert {flag for flag, _ in status(ext).values()} == {" "}
    mirror = mirror_of(fixture)
    git("-C", str(ext), *mirror, "submodule", "update", "--init", "--recursive")
    assert {flag for flag, _ in status(ext).values()} == {" "}
    git("-C", str(ext), "update-index", "--cacheinfo", f"160000,{newer},mmdetection")
    git("-C", str(ext), *mirror, "submodule", "update", "--recursive", "--", "mmdetection")
    assert git("-C", str(ext / "mmdetection"), "rev-parse", "HEAD") == newer


def test_a_server_refusing_a_fetch_by_id_gets_gits_own_way(workspace: Path, tmp_path: Path) -> None:
    """A server that will not send an unadvertised commit by its id (protocol v0 with
    uploadpack.allow*SHA1InWant off): that submodule is fetched as `git submodule update`
    does, with a warning; the others still by commit; all end at their recorded commits."""
    fixture = build_superproject(tmp_path / "served", commits=60)
    advance(fixture, "mmdetection", commits=2, tip_bytes=1000)
    env = strict_server(tmp_path, fixture, "mmdetection")
    run = inv(workspace, "clone", "--repo", fixture.url(), env=env)
    assert run.code == 0, run.err
    assert "mmdetection: the server would not send commit" in run.err
    assert "by itself" in run.err and "as git submodule update does" in run.err
    ext = workspace / "mmlab_extension"
    assert git("-C", str(ext / "mmdetection"), "rev-parse", "HEAD") == fixture.tips["mmdetection"]
    assert {flag for flag, _ in status(ext).values()} == {" "}
    assert not (ext / RECORD).exists()


def _slow_first_submodule(served: Path, big: int) -> Fixture:
    """The fixture's shape with `big` bytes at mmdetection's tip only (a slow download) and
    github URLs in .gitmodules."""
    tips: dict[str, str] = {}
    specs = [
        RepoSpec("spconv"),
        RepoSpec("mmdetection", tip_bytes=big),
        RepoSpec("mmdetection3d", submodules=[Submodule("third_party/spconv", "spconv")]),
        RepoSpec(
            "mmlab_extension",
            submodules=[
                Submodule("mmdetection", "mmdetection"),
                Submodule("mmdetection3d", "mmdetection3d"),
            ],
        ),
    ]
    for spec in specs:
        tips[spec.name] = build_repo(served, spec, tips, absolute=True)
    return Fixture(served, tips)


def test_nested_submodules_start_as_soon_as_their_parent_is_checked_out(
    workspace: Path, tmp_path: Path
) -> None:
    """A slow download of one submodule does not hold back the nested submodules of another:
    spconv (in mmdetection3d) is ready while mmdetection is still coming."""
    fixture = _slow_first_submodule(tmp_path / "served", big=1_500_000)
    with served_over_network(fixture.served, mib_per_second=1.0, latency=0.02) as base:
        run = inv(
            workspace,
            "clone",
            "--repo",
            fixture.github_url,
            "--jobs",
            "3",
            env={"MMLAB_GIT_MIRROR": base, "MMLAB_HEARTBEAT": "60"},
        )
    assert run.code == 0, run.err
    ready = [line.split()[1] for line in run.lines if line.startswith("[")]
    assert ready.index(SUBMODULES[2]) < ready.index("mmdetection"), run.out


@pytest.mark.slow
def test_a_kill_in_the_middle_of_a_fetch_by_id_is_resumed(workspace: Path, tmp_path: Path) -> None:
    """SIGKILL while a submodule's commit is arriving (its repository made, no commit yet):
    the next run removes that half clone, fetches it again and ends healthy."""
    fixture = _slow_first_submodule(tmp_path / "served", big=3_000_000)
    ext = workspace / "mmlab_extension"
    gitdir = ext / ".git/modules/mmdetection"
    with served_over_network(fixture.served, mib_per_second=1.0, latency=0.02) as base:
        env = {**os.environ, "MMLAB_GIT_MIRROR": base}
        process = subprocess.Popen(
            ["inv", "clone", "--repo", fixture.github_url],
            cwd=workspace,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        arriving: list[Path] = []
        while not arriving and process.poll() is None and time.monotonic() < deadline:
            arriving = [p for p in gitdir.glob("objects/pack/tmp_pack_*") if p.stat().st_size]
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert arriving, "the kill did not land while the commit was arriving"
        assert (ext / "mmdetection/.git").is_file()
        head = subprocess.run(
            ["git", "--git-dir", str(gitdir), "rev-parse", "-q", "--verify", "HEAD"]
        )
        assert head.returncode != 0  # no commit yet: a half clone
        run = inv(workspace, "clone", "--repo", fixture.github_url, env={"MMLAB_GIT_MIRROR": base})
    assert run.code == 0, run.err
    assert "removed a half-cloned submodule left by an interrupted run: mmdetection" in run.err
    for path in SUBMODULES:
        assert git("-C", str(ext / path), "status", "--porcelain") == ""
    assert {flag for flag, _ in status(ext).values()} == {" "}
    assert not list(gitdir.glob("objects/pack/tmp_pack_*"))
    assert not (ext / RECORD).exists()


def test_a_hostile_url_in_a_nested_gitmodules_is_refused(workspace: Path, tmp_path: Path) -> None:
    """A nested repository's .gitmodules pointing at a folder outside the mirror: refused by
    name once its parent is checked out; nothing of that repository's submodules is fetched."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    secret = build_superproject(tmp_path / "elsewhere")
    scratch = tmp_path / "scratch"
    git("clone", "-q", fixture.url("mmdetection3d"), str(scratch))
    hostile = secret.url("spconv")
    (scratch / ".gitmodules").write_text(
        (scratch / ".gitmodules").read_text().replace(f"{GITHUB}{OWNER}/spconv.git", hostile)
    )
    git("-C", str(scratch), "commit", "-qam", "point at a local repository")
    git("-C", str(scratch), "push", "-q", "origin", "HEAD:main")
    bumped = git("-C", str(scratch), "rev-parse", "HEAD")
    top = tmp_path / "top"
    git("clone", "-q", fixture.url(), str(top))
    git("-C", str(top), "update-index", "--cacheinfo", f"160000,{bumped},mmdetection3d")
    git("-C", str(top), "commit", "-qm", "bump mmdetection3d")
    git("-C", str(top), "push", "-q", "origin", "HEAD:main")
    run = clone(workspace, fixture)
    assert_clean_error(run, f"submodule {SUBMODULES[2]}", hostile, "refused, nothing fetched")
    ext = workspace / "mmlab_extension"
    assert not (ext / ".git/modules/mmdetection3d/modules").exists()
    assert not any((ext / SUBMODULES[2]).iterdir())


@pytest.mark.slow
def test_a_kill_while_a_nested_commit_arrives_early_is_resumed(
    workspace: Path, tmp_path: Path
) -> None:
    """A nested submodule's commit is fetched while its parent is still being checked out
    (its repository made, not yet linked to its folder); a SIGKILL then leaves a half clone
    that the next run removes and fetches again."""
    tips: dict[str, str] = {}
    served = tmp_path / "served"
    specs = [
        RepoSpec("spconv", tip_bytes=3_000_000),
        RepoSpec("mmdetection"),
        RepoSpec("mmdetection3d", submodules=[Submodule("third_party/spconv", "spconv")]),
        RepoSpec(
            "mmlab_extension",
            submodules=[
                Submodule("mmdetection", "mmdetection"),
                Submodule("mmdetection3d", "mmdetection3d"),
            ],
        ),
    ]
    specs[2].many_files = 3000  # its checkout takes a while
    for spec in specs:
        tips[spec.name] = build_repo(served, spec, tips, absolute=True)
    fixture = Fixture(served, tips)
    ext = workspace / "mmlab_extension"
    gitdir = ext / ".git/modules/mmdetection3d/modules/spconv"
    nested = ext / SUBMODULES[2]
    with served_over_network(fixture.served, mib_per_second=1.0, latency=0.02) as base:
        env = {**os.environ, "MMLAB_GIT_MIRROR": base}
        process = subprocess.Popen(
            ["inv", "clone", "--repo", fixture.github_url],
            cwd=workspace,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        arriving: list[Path] = []
        while not arriving and process.poll() is None and time.monotonic() < deadline:
            arriving = [p for p in gitdir.glob("objects/pack/tmp_pack_*") if p.stat().st_size]
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert arriving, "the kill did not land while the nested commit was arriving"
        assert not (nested / ".git").exists(), "fetched early: not linked to its folder yet"
        run = inv(workspace, "clone", "--repo", fixture.github_url, env={"MMLAB_GIT_MIRROR": base})
    assert run.code == 0, run.err
    removed = f"removed a half-cloned submodule left by an interrupted run: {SUBMODULES[2]}"
    assert removed in run.err, run.err
    assert {flag for flag, _ in status(ext).values()} == {" "}
    assert git("-C", str(nested), "rev-parse", "HEAD") == tips["spconv"]
    assert not (ext / RECORD).exists()


def test_update_fetches_only_the_newly_recorded_commit(workspace: Path, tmp_path: Path) -> None:
    """`--update` to a superproject commit that records a newer submodule commit: the clone
    gets that commit's objects only (not the newer data upstream has past it), stays
    shallow and ends at it."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    assert clone(workspace, fixture).code == 0
    wanted = advance(fixture, "mmdetection", commits=1, bytes_per_commit=1000)
    top = tmp_path / "top"
    git("clone", "-q", fixture.url(), str(top))
    git("-C", str(top), "update-index", "--cacheinfo", f"160000,{wanted},mmdetection")
    git("-C", str(top), "commit", "-qm", "bump mmdetection")
    git("-C", str(top), "push", "-q", "origin", "HEAD:main")
    advance(fixture, "mmdetection", commits=2, tip_bytes=UPSTREAM_BYTES)
    past = git("-C", str(fixture.bare("mmdetection")), "rev-parse", "main:upstream.bin")
    run = clone(workspace, fixture, "--update")
    assert run.code == 0, run.err
    sub = workspace / "mmlab_extension/mmdetection"
    assert git("-C", str(sub), "rev-parse", "HEAD") == wanted
    assert past not in objects(sub)
    assert git("-C", str(sub), "rev-parse", "--is-shallow-repository") == "true"
    assert git("-C", str(sub), "status", "--porcelain") == ""


def test_one_job_at_a_time(workspace: Path, tmp_path: Path) -> None:
    """`--jobs 1`: every submodule, nested ones fetched early included, one after another."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    run = clone(workspace, fixture, "--jobs", "1")
    assert run.code == 0, run.err
    assert_healthy(workspace, fixture)


SEGMENT = st.sampled_from(["a", "b.git", "x-y", "..", ".", ""])


@settings(
    max_examples=scaled(15, 60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    base=st.lists(SEGMENT, min_size=0, max_size=4).map(
        lambda parts: "https://example.com/" + "/".join(parts)
    ),
    relative=st.lists(st.sampled_from(["..", "."]), min_size=1, max_size=4).flatmap(
        lambda ups: st.lists(SEGMENT, min_size=1, max_size=3).map(
            lambda rest: "/".join([*ups, *rest])
        )
    ),
)
@example(base="git://host:9418/fake/mmdetection3d.git", relative="../spconv.git")
@example(base="https://github.com/a/b/", relative="./c")
def test_relative_urls_resolve_as_git_submodule_init_does(
    tmp_path: Path, base: str, relative: str
) -> None:
    """Where the early fetch resolves a relative submodule URL itself, it gets what `git
    submodule init` writes (else it leaves the URL to it)."""
    ours = _beside(base, relative)
    if not ours:
        return
    repo = Path(tempfile.mkdtemp(prefix="repo-", dir=tmp_path))
    git("init", "-q", str(repo))
    git("-C", str(repo), "remote", "add", "origin", base)
    (repo / ".gitmodules").write_text(f'[submodule "x"]\n\tpath = x\n\turl = {relative}\n')
    git("-C", str(repo), "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},x")
    git("-C", str(repo), "submodule", "init", "-q")
    assert git("-C", str(repo), "config", "submodule.x.url") == ours, (base, relative)

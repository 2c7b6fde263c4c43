"""`inv clone` against real repositories served over file://."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import assert_clean_error, entries, inv, mount, run_in_terminal, snapshot
from .gitfixture import Fixture, build_superproject, git, push_commit
from .netserve import served_over_network

SUBMODULES = ["mmdetection", "mmdetection3d", "mmdetection3d/third_party/spconv"]


def status(repo: Path) -> dict[str, tuple[str, str]]:
    """`git submodule status --recursive` as {path: (flag, commit)}."""
    lines = git("-C", str(repo), "submodule", "status", "--recursive").splitlines()
    return {line[42:].split(" (")[0]: (line[0], line[1:41]) for line in lines}


def is_shallow(repo: Path) -> bool:
    return git("-C", str(repo), "rev-parse", "--is-shallow-repository") == "true"


def assert_complete(workspace: Path, fixture: Fixture, shallow: bool = True) -> Path:
    """Every submodule initialised at its recorded commit and checked out; all shallow."""
    ext = workspace / "mmlab_extension"
    assert status(ext) == {
        "mmdetection": (" ", fixture.tips["mmdetection"]),
        "mmdetection3d": (" ", fixture.tips["mmdetection3d"]),
        "mmdetection3d/third_party/spconv": (" ", fixture.tips["spconv"]),
    }
    assert (ext / "mmdetection3d/data/lyft/train.txt").read_bytes() == b"scene-1\nscene-2\n"
    assert (ext / "mmdetection3d/third_party/spconv/README.md").exists()
    if shallow:
        assert all(is_shallow(ext / path) for path in ["", *SUBMODULES])
    return ext


def test_fresh_clone_is_shallow_recursive_and_complete(workspace: Path, fixture: Fixture) -> None:
    """A fresh clone: superproject and every (nested) submodule at depth 1, at the right commit."""
    run = inv(workspace, "clone", "--repo", fixture.url(), "--jobs", "2")
    assert run.code == 0, run.err
    ext = assert_complete(workspace, fixture)
    assert git("-C", str(ext), "rev-parse", "HEAD") == fixture.tips["mmlab_extension"]
    assert git("-C", str(ext), "rev-list", "--count", "HEAD") == "1"
    assert not list(workspace.glob(".*partial*"))


def test_second_run_needs_no_network(workspace: Path, fixture: Fixture) -> None:
    """With everything there, a re-run says `up to date` even with the remote gone."""
    assert inv(workspace, "clone", "--repo", fixture.url()).code == 0
    fixture.served.rename(fixture.served.with_name("unreachable"))
    run = inv(workspace, "clone", "--repo", fixture.url())
    assert run.code == 0, run.err
    assert run.lines == [f"up to date: {workspace}/mmlab_extension"]


def test_missing_submodule_is_completed_and_nothing_else(workspace: Path, fixture: Fixture) -> None:
    """A clone with an uninitialised submodule gets just that one back."""
    assert inv(workspace, "clone", "--repo", fixture.url()).code == 0
    ext = workspace / "mmlab_extension"
    git("-C", str(ext), "submodule", "deinit", "-q", "--force", "mmdetection")
    (ext / "mmdetection3d/mine.txt").write_text("user file")
    run = inv(workspace, "clone", "--repo", fixture.url())
    assert run.code == 0, run.err
    assert "completing 1 submodule(s): mmdetection" in run.out
    assert_complete(workspace, fixture)
    assert (ext / "mmdetection3d/mine.txt").read_text() == "user file"


@pytest.mark.parametrize("kind", ["branch", "tag", "commit"])
def test_ref_selects_branch_tag_or_commit(workspace: Path, fixture: Fixture, kind: str) -> None:
    """MMLAB_EXTENSION_REF may be a branch, a tag or a full commit id."""
    bare = fixture.bare("mmlab_extension")
    first = git("-C", str(bare), "rev-parse", "main~1")
    git("-C", str(bare), "branch", "dev", first)
    git("-C", str(bare), "tag", "v1", first)
    ref = {"branch": "dev", "tag": "v1", "commit": first}[kind]
    run = inv(workspace, "clone", "--repo", fixture.url(), "--ref", ref)
    assert run.code == 0, run.err
    ext = workspace / "mmlab_extension"
    assert git("-C", str(ext), "rev-parse", "HEAD") == first
    assert is_shallow(ext)


def test_unknown_ref_is_a_clear_error_and_leaves_nothing(workspace: Path, fixture: Fixture) -> None:
    """A ref the remote does not have: one error naming it, and no folder left behind."""
    run = inv(workspace, "clone", "--repo", fixture.url(), "--ref", "no-such-branch")
    assert_clean_error(run, "MMLAB_EXTENSION_REF 'no-such-branch' does not exist")
    assert entries(workspace) == ["tasks.py"]


def test_unreachable_repository_names_url_and_hints_mirror(workspace: Path, tmp_path: Path) -> None:
    """A final failure names the URL and git's message, and hints at MMLAB_GIT_MIRROR."""
    url = f"file://{tmp_path}/nowhere/x.git"
    run = inv(workspace, "clone", "--repo", url)
    assert_clean_error(run, url, "does not appear to be a git repository")
    assert "--mirror" in run.err
    assert entries(workspace) == ["tasks.py"]


def strict_server(tmp_path: Path, fixture: Fixture, name: str) -> dict[str, str]:
    """Serve `name` with a protocol-v0 upload-pack that refuses unadvertised commits."""
    for key in ("allowAnySHA1InWant", "allowReachableSHA1InWant", "allowTipSHA1InWant"):
        git("-C", str(fixture.bare(name)), "config", f"uploadpack.{key}", "false")
    wrapper = tmp_path / "strict-upload-pack"
    wrapper.write_text('#!/bin/sh\nunset GIT_PROTOCOL\nexec git-upload-pack "$@"\n')
    wrapper.chmod(0o755)
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "remote.origin.uploadpack",
        "GIT_CONFIG_VALUE_0": str(wrapper),
    }


def test_unadvertised_commit_falls_back_to_a_deeper_fetch(workspace: Path, tmp_path: Path) -> None:
    """When a server will not send a submodule's commit at depth 1, only that one goes deeper."""
    fixture = build_superproject(tmp_path / "served", commits=80)
    push_commit(fixture, "mmdetection", "newer.txt", b"not recorded by the superproject")
    env = strict_server(tmp_path, fixture, "mmdetection")
    run = inv(workspace, "clone", "--repo", fixture.url(), env=env)
    assert run.code == 0, run.err
    assert "mmdetection: the server would not send commit" in run.err
    ext = assert_complete(workspace, fixture, shallow=False)
    assert is_shallow(ext / "mmdetection")  # deeper, yet not the whole history
    assert int(git("-C", str(ext / "mmdetection"), "rev-list", "--count", "HEAD")) > 1
    assert all(is_shallow(ext / p) for p in ["", "mmdetection3d", SUBMODULES[2]])


def test_mirror_serves_every_clone_without_rewriting_files(workspace: Path, tmp_path: Path) -> None:
    """With MMLAB_GIT_MIRROR, superproject and nested submodules come from the mirror only."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    env = {"GIT_ALLOW_PROTOCOL": "file", "MMLAB_GIT_MIRROR": fixture.mirror}
    run = inv(workspace, "clone", "--repo", fixture.github_url, env=env)
    assert run.code == 0, run.err
    ext = assert_complete(workspace, fixture)
    assert git("-C", str(ext), "config", "remote.origin.url") == fixture.github_url
    sub_url = git("-C", str(ext / "mmdetection3d"), "config", "submodule.spconv.url")
    assert sub_url == "https://github.com/fake/spconv.git"
    assert "insteadof" not in (ext / ".git/config").read_text().lower()


def test_mirror_is_needed_there(workspace: Path, tmp_path: Path) -> None:
    """Without the mirror the same clone fails cleanly (https is not allowed in tests)."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    run = inv(workspace, "clone", "--repo", fixture.github_url, env={"GIT_ALLOW_PROTOCOL": "file"})
    assert_clean_error(run, fixture.github_url)


def test_dry_run_prints_git_commands_and_changes_nothing(workspace: Path, fixture: Fixture) -> None:
    """`inv --dry clone` lists the git commands and runs none of them."""
    run = inv(workspace, "--dry", "clone", "--repo", fixture.url())
    assert run.code == 0, run.err
    assert run.lines[0].startswith("would run: git clone --depth 1 --no-recurse-submodules -- ")
    assert any("submodule update --init --recursive --depth 1 --jobs 4" in x for x in run.lines)
    assert entries(workspace) == ["tasks.py"]


def test_existing_folder_that_is_not_a_repository_is_refused(
    workspace: Path, fixture: Fixture
) -> None:
    """A non-empty folder that is not a git repository is left alone."""
    (workspace / "mmlab_extension").mkdir()
    (workspace / "mmlab_extension/notes.txt").write_text("mine")
    before = snapshot(workspace)
    run = inv(workspace, "clone", "--repo", fixture.url())
    assert_clean_error(run, "is not a git repository (1 entries)")
    assert snapshot(workspace) == before


def test_existing_clone_of_another_repository_is_refused(workspace: Path, fixture: Fixture) -> None:
    """A clone of some other repository at the path is left alone."""
    git("clone", "-q", fixture.url("spconv"), str(workspace / "mmlab_extension"))
    before = snapshot(workspace)
    run = inv(workspace, "clone", "--repo", fixture.url())
    assert_clean_error(run, "is a clone of", "spconv")
    assert snapshot(workspace) == before


def test_empty_folder_is_cloned_into(workspace: Path, fixture: Fixture) -> None:
    """An empty folder at the path (made by hand) is provably empty: the clone goes there."""
    (workspace / "mmlab_extension").mkdir()
    assert inv(workspace, "clone", "--repo", fixture.url()).code == 0
    assert_complete(workspace, fixture)


def test_update_fetches_the_new_tip_and_stays_shallow(workspace: Path, fixture: Fixture) -> None:
    """`--update` moves to the ref's latest commit and updates submodules to what it records."""
    assert inv(workspace, "clone", "--repo", fixture.url()).code == 0
    tip = push_commit(fixture, "mmlab_extension", "projects/new.py", b"# new\n")
    run = inv(workspace, "clone", "--repo", fixture.url(), "--update")
    assert run.code == 0, run.err
    ext = workspace / "mmlab_extension"
    assert git("-C", str(ext), "rev-parse", "HEAD") == tip
    assert git("-C", str(ext), "symbolic-ref", "--short", "HEAD") == "main"
    assert is_shallow(ext)
    assert_complete(workspace, fixture)


def test_update_refuses_local_changes(workspace: Path, fixture: Fixture) -> None:
    """`--update` over local changes is refused and the changes stay."""
    assert inv(workspace, "clone", "--repo", fixture.url()).code == 0
    readme = workspace / "mmlab_extension/README.md"
    readme.write_text("my edit")
    run = inv(workspace, "clone", "--repo", fixture.url(), "--update")
    assert_clean_error(run, "local changes")
    assert readme.read_text() == "my edit"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--repo", ""], "MMLAB_EXTENSION_REPO (from flag) is empty"),
        (["--repo", "not a url"], "not a URL git accepts"),
        (["--repo", "-uhttps://x"], "must not start with '-'"),
        (["--repo", "ext::sh -c touch% /tmp/x"], "remote helper"),
        (["--extension-path", "-x"], "must not start with '-'"),
        (["--extension-path", "mmlab_dataset/ext"], "lie inside one another"),
        (["--jobs", "0"], "--jobs must be at least 1"),
    ],
)
def test_bad_input_changes_nothing(
    workspace: Path, fixture: Fixture, args: list[str], fragment: str
) -> None:
    """Each bad input is a clean error and nothing is created."""
    repo = [] if "--repo" in args else ["--repo", fixture.url()]
    run = inv(workspace, "clone", *repo, *args)
    assert_clean_error(run, fragment)
    assert entries(workspace) == ["tasks.py"]


def test_unwritable_parent_is_refused(
    fixture: Fixture, workspace: Path, tmp_path: Path, mounts: list[Path]
) -> None:
    """An extension path whose parent cannot be written is refused before cloning."""
    folder = tmp_path / "ro"
    mount(mounts, folder, "ro,size=1m")
    run = inv(workspace, "clone", "--repo", fixture.url(), "--extension-path", f"{folder}/ext")
    assert_clean_error(run, "is not writable")


def test_interrupted_clones_are_finished_by_the_next_run(workspace: Path, tmp_path: Path) -> None:
    """Kill `inv clone` (SIGINT and SIGKILL) at random moments; a re-run always finishes it."""
    fixture = build_superproject(tmp_path / "served", commits=200, bytes_per_commit=4096)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "tasks.py").write_text((workspace / "tasks.py").read_text())
    started = time.monotonic()
    assert inv(scratch, "clone", "--repo", fixture.url(), "--jobs", "1").code == 0
    full = time.monotonic() - started
    rng = random.Random(7)
    interrupted = 0
    for attempt in range(10):
        if attempt == 5:
            interrupted_once = interrupted
            # Start over from nothing, as a user whose first run was killed early would.
            subprocess.run(["rm", "-rf", str(workspace / "mmlab_extension")], check=True)
        process = subprocess.Popen(
            ["inv", "clone", "--repo", fixture.url(), "--jobs", "1"],
            cwd=workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.15, max(0.3, full)))
        sent = signal.SIGINT if attempt % 2 == 0 else signal.SIGKILL
        os.killpg(process.pid, sent)
        out, err = process.communicate(timeout=60)
        finished = b"submodules ready" in out or b"up to date" in out
        if process.returncode != 0 and not finished:
            interrupted += 1
            if sent is signal.SIGINT and (b"cloning" in out or b"completing" in out):
                # (Before the task starts, Python or invoke handle Ctrl-C themselves.)
                assert process.returncode == 130, err
                assert err.decode().splitlines()[-2] == "error: interrupted", err
        if (workspace / "mmlab_extension").exists():
            # A half-cloned superproject never appears at the final path.
            assert (workspace / "mmlab_extension/.git").exists()
    assert interrupted_once and interrupted > interrupted_once, "no run was interrupted"
    run = inv(workspace, "clone", "--repo", fixture.url())
    assert run.code == 0, run.err
    assert_complete(workspace, fixture)
    assert not list(workspace.glob(".*partial*"))


def test_a_dropped_connection_is_retried(workspace: Path, fixture: Fixture) -> None:
    """Network loss on the first attempt: git runs again after a pause; the clone completes."""
    with served_over_network(fixture.served, drop_first=1) as base:
        run = inv(workspace, "clone", "--repo", f"{base}fake/mmlab_extension.git")
    assert run.code == 0, run.err
    assert "retrying in 1s" in run.err
    assert_complete(workspace, fixture)


def test_progress_is_shown_on_a_terminal(workspace: Path, fixture: Fixture) -> None:
    """On a terminal git's own progress comes through; piped, only the tool's lines appear."""
    code, output = run_in_terminal(["inv", "clone", "--repo", fixture.url()], workspace)
    assert code == 0
    assert b"Receiving objects" in output or b"Cloning into" in output
    piped = inv(workspace, "clone", "--repo", fixture.url())
    assert "Cloning into" not in piped.out + piped.err

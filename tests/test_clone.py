"""`inv clone` against real repositories served over file://."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mmlab_bootstrap.git.outcomes import git_message

from .conftest import (
    Run,
    assert_clean_error,
    entries,
    inv,
    mount,
    run_in_terminal,
    scaled,
    snapshot,
)
from .lib.clonecheck import (
    RECORD,
    SUBMODULES,
    assert_complete,
    assert_healthy,
    clone,
    is_shallow,
    strict_server,
)
from .lib.gitfixture import Fixture, build_superproject, git, push_commit
from .lib.netserve import served_over_network


@pytest.fixture
def mirrored(tmp_path: Path) -> Fixture:
    """The realistic shape: `.gitmodules` names https://github.com/… URLs, and a file://
    mirror (MMLAB_GIT_MIRROR) serves them, with git's stock settings."""
    return build_superproject(tmp_path / "served", absolute=True)


def test_fresh_clone_through_a_file_mirror_with_stock_git(
    workspace: Path, mirrored: Fixture
) -> None:
    """A file:// mirror and stock git: superproject and every (nested) submodule at depth 1,
    at the right commit, fetched from the mirror."""
    run = clone(workspace, mirrored, "--jobs", "2")
    assert run.code == 0, run.err
    ext = assert_complete(workspace, mirrored)
    assert git("-C", str(ext), "rev-parse", "HEAD") == mirrored.tips["mmlab_extension"]
    assert git("-C", str(ext), "rev-list", "--count", "HEAD") == "1"
    assert not list(workspace.glob(".*partial*"))
    assert run.lines[0] == (f"cloning {mirrored.github_url} from {mirrored.url()} (depth 1) …"), (
        "the first line names the URL actually fetched"
    )
    assert f"mmdetection3d/third_party/spconv from {mirrored.url('spconv')}" in run.out
    assert "partial" not in run.out + run.err and "FETCH_HEAD" not in run.out + run.err


def test_relative_submodule_urls_beside_a_file_repository(
    workspace: Path, fixture: Fixture
) -> None:
    """A file:// superproject whose .gitmodules has relative URLs (../x.git): allowed, since
    they lie in the folder holding the superproject."""
    run = inv(workspace, "clone", "--repo", fixture.url(), "--jobs", "2")
    assert run.code == 0, run.err
    assert_complete(workspace, fixture)


def test_a_hostile_file_url_is_refused_and_nothing_is_fetched(
    workspace: Path, tmp_path: Path
) -> None:
    """A .gitmodules URL pointing at another folder of this machine (outside the mirror and
    the superproject's folder) is refused before anything of that level is fetched."""
    fixture = build_superproject(tmp_path / "served", absolute=True)
    secret = build_superproject(tmp_path / "elsewhere")  # a repository the user has
    scratch = tmp_path / "scratch"
    git("clone", "-q", fixture.url(), str(scratch))
    text = (scratch / ".gitmodules").read_text()
    hostile = secret.url("spconv")
    (scratch / ".gitmodules").write_text(
        text.replace("https://github.com/fake/mmdetection.git", hostile)
    )
    git("-C", str(scratch), "commit", "-qam", "point at a local repository")
    git("-C", str(scratch), "push", "-q", "origin", "HEAD:main")
    run = clone(workspace, fixture)
    assert_clean_error(run, "submodule mmdetection", hostile, "refused, nothing fetched")
    ext = workspace / "mmlab_extension"
    assert not (ext / ".git/modules").exists()
    assert not any((ext / "mmdetection").iterdir())


def test_second_run_needs_no_network(workspace: Path, mirrored: Fixture) -> None:
    """With everything there, a re-run says `up to date` even with the remote gone."""
    assert clone(workspace, mirrored).code == 0
    mirrored.served.rename(mirrored.served.with_name("unreachable"))
    run = clone(workspace, mirrored)
    assert run.code == 0, run.err
    assert run.lines == [f"up to date: {workspace}/mmlab_extension"]


def test_missing_submodule_is_completed_and_nothing_else(
    workspace: Path, mirrored: Fixture
) -> None:
    """A clone with an uninitialised submodule gets just that one back."""
    fixture = mirrored
    assert clone(workspace, fixture).code == 0
    ext = workspace / "mmlab_extension"
    git("-C", str(ext), "submodule", "deinit", "-q", "--force", "mmdetection")
    (ext / "mmdetection3d/mine.txt").write_text("user file")
    run = clone(workspace, fixture)
    assert run.code == 0, run.err
    assert "completing 1 submodule(s): mmdetection" in run.out
    assert_complete(workspace, fixture)
    assert (ext / "mmdetection3d/mine.txt").read_text() == "user file"


@pytest.mark.parametrize("kind", ["branch", "tag", "commit"])
def test_ref_selects_branch_tag_or_commit(workspace: Path, mirrored: Fixture, kind: str) -> None:
    """MMLAB_EXTENSION_REF may be a branch, a tag or a full commit id."""
    fixture = mirrored
    bare = fixture.bare("mmlab_extension")
    first = git("-C", str(bare), "rev-parse", "main~1")
    git("-C", str(bare), "branch", "dev", first)
    git("-C", str(bare), "tag", "v1", first)
    ref = {"branch": "dev", "tag": "v1", "commit": first}[kind]
    run = clone(workspace, fixture, "--ref", ref)
    assert run.code == 0, run.err
    ext = workspace / "mmlab_extension"
    assert git("-C", str(ext), "rev-parse", "HEAD") == first
    assert is_shallow(ext)


def test_unknown_ref_is_a_clear_error_and_leaves_nothing(
    workspace: Path, mirrored: Fixture
) -> None:
    """A ref the remote does not have: one error naming it, and no folder left behind."""
    run = clone(workspace, mirrored, "--ref", "no-such-branch")
    assert_clean_error(run, "MMLAB_EXTENSION_REF 'no-such-branch' does not exist")
    assert "check the network" not in run.err
    assert entries(workspace) == ["tasks.py"]


def test_a_missing_repository_is_not_blamed_on_the_network(workspace: Path, tmp_path: Path) -> None:
    """A repository that is not there: the URL, git's message, and a hint to check it (not
    the network)."""
    url = f"file://{tmp_path}/nowhere/x.git"
    run = inv(workspace, "clone", "--repo", url)
    assert_clean_error(run, url, "does not appear to be a git repository")
    assert "git ls-remote" in run.err and "check the network" not in run.err
    assert entries(workspace) == ["tasks.py"]


def test_a_submodule_missing_from_the_mirror(workspace: Path, mirrored: Fixture) -> None:
    """A mirror without one submodule's repository: that submodule and its URL are named."""
    subprocess.run(["rm", "-rf", str(mirrored.bare("spconv"))], check=True)
    run = clone(workspace, mirrored)
    assert_clean_error(run, "submodule mmdetection3d/third_party/spconv", mirrored.url("spconv"))
    assert "git ls-remote" in run.err and "check the network" not in run.err


def test_a_network_failure_says_check_the_network(workspace: Path) -> None:
    """Nothing listening: retried, then the hint is the network's (and the mirror's)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = inv(workspace, "clone", "--repo", f"git://127.0.0.1:{port}/fake/x.git")
    assert "retrying in 1s" in run.err
    last_two = Run(run.code, run.out, "\n".join(run.err.splitlines()[-2:]) + "\n")
    assert_clean_error(last_two, f"git://127.0.0.1:{port}/fake/x.git")
    assert "check the network" in run.err and "--mirror" in run.err


def test_git_refusing_by_its_own_rules_is_told_apart(workspace: Path, mirrored: Fixture) -> None:
    """The user's git forbids the file transport (GIT_ALLOW_PROTOCOL): git's refusal is
    shown as such, not as a network failure."""
    run = clone(workspace, mirrored, env={"GIT_ALLOW_PROTOCOL": "https:ssh"})
    assert_clean_error(run, "transport 'file' not allowed")
    assert "git's own settings" in run.err and "check the network" not in run.err


def test_files_in_the_way_of_a_checkout_are_kept(workspace: Path, mirrored: Fixture) -> None:
    """A submodule folder holding the user's files where the checkout would write: refused
    as a local conflict, the file kept."""
    assert clone(workspace, mirrored).code == 0
    ext = workspace / "mmlab_extension"
    git("-C", str(ext), "submodule", "deinit", "-q", "--force", "mmdetection")
    (ext / "mmdetection/README.md").write_text("mine")
    run = clone(workspace, mirrored)
    assert_clean_error(run, "submodule mmdetection is not checked out", "README.md")
    assert "files in the way are kept" in run.err and "check the network" not in run.err
    assert (ext / "mmdetection/README.md").read_text() == "mine"


def test_local_changes_in_a_submodule_block_update_as_a_conflict(
    workspace: Path, mirrored: Fixture, tmp_path: Path
) -> None:
    """`--update` that would overwrite a change the user made in a submodule: git's own
    message in full on one line, a conflict hint, and the change kept."""
    assert clone(workspace, mirrored).code == 0
    ext = workspace / "mmlab_extension"
    git("-C", str(ext), "config", "submodule.mmdetection.ignore", "dirty")  # as upstream has it
    new = push_commit(mirrored, "mmdetection", "README.md", b"# upstream edit\n")
    scratch = tmp_path / "bump"
    git("clone", "-q", mirrored.url(), str(scratch))
    git("-C", str(scratch), "update-index", "--cacheinfo", f"160000,{new},mmdetection")
    git("-C", str(scratch), "commit", "-qm", "bump mmdetection")
    git("-C", str(scratch), "push", "-q", "origin", "HEAD:main")
    (ext / "mmdetection/README.md").write_text("my edit")
    run = clone(workspace, mirrored, "--update")
    assert_clean_error(run, "submodule mmdetection", "would be overwritten by checkout")
    assert "README.md" in run.err.splitlines()[0]
    assert "files in the way are kept" in run.err and "check the network" not in run.err
    assert (ext / "mmdetection/README.md").read_text() == "my edit"


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
    run = clone(
        workspace,
        fixture,
        env={
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "protocol.https.allow",
            "GIT_CONFIG_VALUE_0": "never",
        },
    )
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
    assert_clean_error(run, fixture.github_url, "transport 'https' not allowed")


def test_dry_run_prints_git_commands_and_changes_nothing(workspace: Path, fixture: Fixture) -> None:
    """`inv --dry clone` lists the git commands and runs none of them."""
    run = inv(workspace, "--dry", "clone", "--repo", fixture.url())
    assert run.code == 0, run.err
    assert run.lines[0].startswith("would run: git clone --depth 1 --no-recurse-submodules ")
    assert any("submodule update --init --depth 1 -- <each submodule>" in x for x in run.lines)
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


def test_update_fetches_the_new_tip_and_stays_shallow(workspace: Path, mirrored: Fixture) -> None:
    """`--update` moves to the ref's latest commit and updates submodules to what it records."""
    fixture = mirrored
    assert clone(workspace, fixture).code == 0
    tip = push_commit(fixture, "mmlab_extension", "projects/new.py", b"# new\n")
    run = clone(workspace, fixture, "--update")
    assert run.code == 0, run.err
    assert run.lines[0] == f"fetching main from {fixture.url()} …"
    ext = workspace / "mmlab_extension"
    assert git("-C", str(ext), "rev-parse", "HEAD") == tip
    assert git("-C", str(ext), "symbolic-ref", "--short", "HEAD") == "main"
    assert is_shallow(ext)
    assert_complete(workspace, fixture)


def test_an_update_killed_in_the_superproject_checkout_is_finished(
    workspace: Path, mirrored: Fixture
) -> None:
    """The state a kill leaves in the middle of `--update`'s own checkout (some files of the
    new commit written, HEAD not moved yet, the record noting it): the next run finishes it."""
    assert clone(workspace, mirrored).code == 0
    ext = workspace / "mmlab_extension"
    tip = push_commit(mirrored, "mmlab_extension", "projects/README.md", b"# new text\n")
    mirror = f"url.{mirrored.mirror}.insteadOf=https://github.com/"
    git(
        "-C",
        str(ext),
        "-c",
        mirror,
        "fetch",
        "-q",
        "--depth",
        "1",
        "origin",
        "+main:refs/remotes/origin/main",
    )
    (ext / "projects/README.md").write_bytes(b"# new text\n")  # written, index and HEAD not
    (ext / RECORD).write_text(json.dumps({"started": {".": f"{tip} refs/heads/main"}}))
    run = clone(workspace, mirrored)
    assert run.code == 0, run.err
    assert "finished the update of" in run.err
    assert git("-C", str(ext), "rev-parse", "HEAD") == tip
    assert git("-C", str(ext), "symbolic-ref", "--short", "HEAD") == "main"
    assert_healthy(workspace, mirrored)


def test_update_refuses_local_changes(workspace: Path, mirrored: Fixture) -> None:
    """`--update` over local changes is refused and the changes stay."""
    assert clone(workspace, mirrored).code == 0
    readme = workspace / "mmlab_extension/README.md"
    readme.write_text("my edit")
    run = clone(workspace, mirrored, "--update")
    assert_clean_error(run, "local changes")
    assert readme.read_text() == "my edit"


def test_unwritable_parent_is_refused(
    fixture: Fixture, workspace: Path, tmp_path: Path, mounts: list[Path]
) -> None:
    """An extension path whose parent cannot be written is refused before cloning."""
    folder = tmp_path / "ro"
    mount(mounts, folder, "ro,size=1m")
    run = inv(workspace, "clone", "--repo", fixture.url(), "--extension-path", f"{folder}/ext")
    assert_clean_error(run, "is not writable")


def checkout_state(ext: Path, fixture: Fixture) -> str:
    """Where a kill left mmdetection (the submodule with 8000 files): `finished`, `mid
    checkout` (some files written, not yet at its commit with an index) or `before`."""
    sub = ext / "mmdetection"
    if not (sub / "many").is_dir():
        return "before"
    head = subprocess.run(
        ["git", "-C", str(sub), "rev-parse", "-q", "--verify", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    index = (ext / ".git/modules/mmdetection/index").exists()
    return "finished" if head == fixture.tips["mmdetection"] and index else "mid checkout"


def start_clone(workspace: Path, fixture: Fixture) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["inv", "clone", "--repo", fixture.github_url, "--jobs", "2"],
        cwd=workspace,
        env={**os.environ, "MMLAB_GIT_MIRROR": fixture.mirror},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


INTERRUPTED_CLONES = scaled(5, 8)


@pytest.mark.slow
def test_interrupted_clones_are_finished_by_the_next_run(workspace: Path, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the process group) and SIGKILL at random moments of a clone whose
    one submodule has 8000 files; each re-run ends healthy. Counts the kills that landed in
    the middle of that checkout, and needs a few."""
    fixture = build_superproject(tmp_path / "served", absolute=True, many_files=8000)
    ext = workspace / "mmlab_extension"
    started = time.monotonic()
    calibration = start_clone(workspace, fixture)
    checkout_began = 0.0
    while calibration.poll() is None:
        if not checkout_began and (ext / "mmdetection/many").is_dir():
            checkout_began = time.monotonic() - started
        time.sleep(0.01)
    full = time.monotonic() - started
    output = calibration.communicate()
    assert calibration.returncode == 0 and checkout_began, output
    rng = random.Random(7)
    landed: dict[str, int] = {"before": 0, "mid checkout": 0, "finished": 0}
    mid_work = 0
    for attempt in range(INTERRUPTED_CLONES):
        subprocess.run(["rm", "-rf", str(ext)], check=True)
        process = start_clone(workspace, fixture)
        early = attempt % 4 == 3  # now and then anywhere, mostly during the big checkout
        if early:
            time.sleep(rng.uniform(0.1, full))
        else:  # once it begins (a run's pace varies with the machine's load)
            began = time.monotonic()
            while not (ext / "mmdetection/many").is_dir() and process.poll() is None:
                assert time.monotonic() - began < 60
                time.sleep(0.005)
            time.sleep(rng.uniform(0, (full - checkout_began) * 0.7))
        sent = signal.SIGINT if attempt % 2 == 0 else signal.SIGKILL
        os.killpg(process.pid, sent)
        out, err = process.communicate(timeout=60)
        state = checkout_state(ext, fixture)
        landed[state] += 1
        if process.returncode != 0 and (ext / RECORD).exists():
            mid_work += 1  # killed with a submodule checkout started and not finished
        if sent is signal.SIGINT and process.returncode != 0 and b"cloning" in out:
            assert process.returncode == 130, err
            assert err.decode().splitlines()[-2] == "error: interrupted", err
        if ext.exists():
            assert (ext / ".git").exists()  # a half-cloned superproject never appears there
        if attempt % 3 == 1:  # interrupt the run that finishes it, too
            again = start_clone(workspace, fixture)
            time.sleep(rng.uniform(0.1, full))
            os.killpg(again.pid, signal.SIGKILL)
            again.communicate(timeout=60)
        rerun = clone(workspace, fixture)
        assert rerun.code == 0, (attempt, state, rerun.err)
        assert_healthy(workspace, fixture)
    print(f"full clone {full:.1f} s, big checkout from {checkout_began:.1f} s; kills: {landed},"
          f" with a checkout started and unfinished: {mid_work}")  # fmt: skip
    assert landed["mid checkout"] >= scaled(2, 3), landed
    assert not list(workspace.glob(".*partial*"))


def test_a_dropped_connection_is_retried(workspace: Path, fixture: Fixture) -> None:
    """Network loss on the first attempt: git runs again after a pause; the clone completes."""
    with served_over_network(fixture.served, drop_first=1) as base:
        run = inv(workspace, "clone", "--repo", f"{base}fake/mmlab_extension.git")
    assert run.code == 0, run.err
    assert "retrying in 1s" in run.err
    assert_complete(workspace, fixture)


def test_progress_on_a_terminal_is_one_line_per_submodule(workspace: Path, tmp_path: Path) -> None:
    """On a terminal: a line per repository with [k/N], git's object counts and sizes; the
    first line names the mirror URL fetched; no temporary folder name, no `From …` noise."""
    fixture = build_superproject(tmp_path / "served", absolute=True, tip_bytes=300_000)
    with served_over_network(fixture.served, mib_per_second=0.25, latency=0.05) as base:
        env = {"MMLAB_GIT_MIRROR": base}
        argv = ["inv", "clone", "--repo", fixture.github_url]
        code, output = run_in_terminal(argv, workspace, env)
    text = output.decode(errors="replace")
    assert code == 0, text
    assert text.splitlines()[0].startswith(
        f"cloning {fixture.github_url} from {base}fake/mmlab_extension.git"
    )
    assert re.search(r"\[\d/\d\] mmdetection3d: receiving objects +\d+% \(\d+/\d+\)", text)
    assert re.search(rf"\[\d/\d\] mmdetection from {base}fake/mmdetection.git \([\d.]+ KiB\)", text)
    for noise in ("partial", "FETCH_HEAD", "From ", "Cloning into"):
        assert noise not in text, noise


@pytest.mark.slow
def test_piped_output_has_a_heartbeat_during_long_git_work(workspace: Path, tmp_path: Path) -> None:
    """Piped, a slow fetch still prints a line every MMLAB_HEARTBEAT seconds, with progress."""
    fixture = build_superproject(tmp_path / "served", absolute=True, tip_bytes=400_000)
    with served_over_network(fixture.served, mib_per_second=0.25, latency=0.05) as base:
        env = {"MMLAB_GIT_MIRROR": base, "MMLAB_HEARTBEAT": "0.5"}
        run = inv(workspace, "clone", "--repo", fixture.github_url, env=env)
    assert run.code == 0, run.err
    beats = [line for line in run.lines if line.startswith("… still working")]
    assert len(beats) >= 2, run.out
    assert any(re.search(r"receiving objects +\d+% \(\d+/\d+\)", line) for line in beats)
    assert "\r" not in run.out and "\x1b" not in run.out + run.err


def test_git_message_is_whole_and_one_line() -> None:
    """git's message is shown from its first error line, every line of it up to a limit and
    then how many more; always one line."""
    listing = "".join(f"\tmany/file{i}.txt\n" for i in range(1000))
    err = (
        "Receiving objects: 100% (3/3), done.\r\n"
        "error: The following untracked working tree files would be overwritten by checkout:\n"
        f"{listing}Please move or remove them before you switch branches.\nAborting\n"
    )
    message = git_message(err)
    assert "\n" not in message and "Receiving" not in message
    assert message.startswith("error: The following untracked working tree files")
    assert " | many/file0.txt | " in message
    assert message.endswith("… 997 more lines")
    assert git_message("fatal: one\n") == "fatal: one"

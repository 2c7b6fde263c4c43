"""`clone --update` on a linked workspace: tracked files linking adopted follow upstream in storage.

Each test builds its own served repositories (so that it can push to them), clones them with
fixture git, links with the real `inv link-data` / `inv link-checkpoints`, then pushes a new
mmdetection3d commit and a superproject commit recording it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .conftest import assert_clean_error, git_status, inv, scaled, snapshot
from .lib.gitfixture import MMDET3D_DATA, git
from .lib.linkedws import (
    NEW_TRAIN,
    PROJECT,
    TRAIN,
    Linked,
    make_linked,
    push_upstream,
)


@pytest.fixture
def linked(workspace: Path, tmp_path: Path) -> Linked:
    return make_linked(workspace, tmp_path / "served")


def assert_healthy(linked: Linked) -> None:
    """`inv status` exits 0, git is clean everywhere, and the data link is still in place."""
    status = inv(linked.root, "status")
    assert status.code == 0, status.out + status.err
    for repo in (linked.ext, linked.project, linked.ext / "mmdetection"):
        assert git_status(repo) == "", repo
    assert os.readlink(linked.project / "data") == str(linked.storage)
    assert os.readlink(linked.project / "checkpoints") == str(
        linked.root / "mmlab_checkpoints" / PROJECT / "checkpoints"
    )


def test_unchanged_adopted_files_are_updated_in_storage(linked: Linked) -> None:
    """Upstream changes an adopted file: the storage copy becomes the new version (seen through
    the link); a file the user changed that upstream leaves alone keeps the user's change."""
    mine = linked.stored("data/scannet/batch_load_scannet_data.py")
    mine.write_bytes(b"# my own tweak\n")
    commit = push_upstream(linked.fixture, {TRAIN: NEW_TRAIN})
    run = inv(linked.root, "clone", "--update")
    assert run.code == 0, run.err
    assert linked.stored(TRAIN).read_bytes() == NEW_TRAIN
    assert (linked.project / TRAIN).read_bytes() == NEW_TRAIN  # through the link
    assert mine.read_bytes() == b"# my own tweak\n"
    assert linked.head(linked.project) == commit
    assert f"S {TRAIN}" in linked.flags()
    assert_healthy(linked)
    again = inv(linked.root, "clone", "--update")
    assert again.code == 0, again.err
    assert "adopted tracked file" not in again.out
    assert_healthy(linked)


def test_files_added_and_removed_upstream_follow_in_storage(linked: Linked) -> None:
    """A file added under an adopted folder is written to storage (skip-worktree), one removed
    upstream leaves storage (with its emptied folder), and a file added under a linked folder
    that had no tracked files does not turn the link into a real folder."""
    push_upstream(
        linked.fixture,
        {
            "data/new/added.txt": b"added upstream\n",
            "data/s3dis/README.md": None,
            "checkpoints/README.md": b"# checkpoints go here\n",
        },
    )
    run = inv(linked.root, "clone", "--update")
    assert run.code == 0, run.err
    assert linked.stored("data/new/added.txt").read_bytes() == b"added upstream\n"
    assert not os.path.lexists(linked.storage / "s3dis")
    ckpt = linked.root / "mmlab_checkpoints" / PROJECT / "checkpoints" / "README.md"
    assert ckpt.read_bytes() == b"# checkpoints go here\n"
    flags = linked.flags()
    assert "S data/new/added.txt" in flags and "S checkpoints/README.md" in flags
    assert "s3dis" not in linked.index()
    assert sorted(linked.adopted_in_journal()) == sorted(
        ["data/new/added.txt", "data/lyft/train.txt", "data/scannet/batch_load_scannet_data.py"]
    )
    assert_healthy(linked)


def state_of(linked: Linked) -> dict[str, object]:
    """Everything a refused update must leave as it was (git's object store aside)."""
    return {
        "files": {
            path: value
            for path, value in snapshot(linked.ext, linked.root / "mmlab_dataset").items()
            if "/.git/" not in path and not path.endswith("/.git")
        },
        "heads": [
            git("rev-parse", "HEAD", "refs/remotes/origin/main", cwd=linked.ext),
            linked.head(linked.project),
        ],
        "index": linked.index(),
        "journal": (linked.root / ".mmlab-bootstrap-state.json").read_text(),
    }


def test_a_file_the_user_changed_is_refused_and_nothing_changes(linked: Linked) -> None:
    """Upstream changes a file the user edited in storage: one error naming it, nothing changed;
    with the user's version moved aside, the same command then completes."""
    edited = linked.stored(TRAIN)
    edited.write_bytes(b"my own scene list\n")
    push_upstream(linked.fixture, {TRAIN: NEW_TRAIN, "data/new/added.txt": b"added\n"})
    before = state_of(linked)
    run = inv(linked.root, "clone", "--update")
    assert_clean_error(run, str(edited), "nothing changed")
    assert "inv clone --update" in run.err.splitlines()[1]
    assert state_of(linked) == before
    dry = inv(linked.root, "--dry", "clone", "--update")
    assert dry.code == 0 and state_of(linked) == before  # it cannot fetch, so it cannot know
    os.rename(edited, edited.with_name("train.txt.mine"))
    run = inv(linked.root, "clone", "--update")
    assert run.code == 0, run.err
    assert edited.read_bytes() == NEW_TRAIN
    assert edited.with_name("train.txt.mine").read_bytes() == b"my own scene list\n"


@pytest.mark.parametrize("found", ["file", "link"])
def test_a_user_file_where_upstream_adds_one_is_refused(linked: Linked, found: str) -> None:
    """A file of the user's in storage with the name of a file upstream adds is never replaced,
    and a link of the user's on its way is never written through."""
    theirs = linked.stored("data/new/added.txt")
    elsewhere = linked.root / "elsewhere"
    elsewhere.mkdir()
    if found == "file":
        theirs.parent.mkdir()
        theirs.write_bytes(b"my data\n")
    else:
        theirs.parent.symlink_to(elsewhere)
    push_upstream(linked.fixture, {"data/new/added.txt": b"added upstream\n"})
    before = state_of(linked)
    run = inv(linked.root, "clone", "--update")
    assert_clean_error(run, str(theirs), "file of yours" if found == "file" else "in its way")
    assert state_of(linked) == before
    assert not any(elsewhere.iterdir())


def test_a_linked_project_no_longer_listed_is_kept_in_step(linked: Linked) -> None:
    """The journal names links of projects taken out of MMLAB_PROJECTS since: they follow too."""
    with (linked.root / ".env").open("a") as env:
        env.write("MMLAB_PROJECTS='mmdetection'\n")
    push_upstream(linked.fixture, {TRAIN: NEW_TRAIN})
    run = inv(linked.root, "clone", "--update")
    assert run.code == 0, run.err
    assert linked.stored(TRAIN).read_bytes() == NEW_TRAIN
    assert (linked.project / "data").is_symlink()
    for repo in (linked.ext, linked.project):
        assert git_status(repo) == "", repo


def test_dry_update_shows_the_work_and_changes_nothing(linked: Linked) -> None:
    push_upstream(linked.fixture, {TRAIN: NEW_TRAIN})
    roots = (linked.ext, linked.root / "mmlab_dataset", linked.root / "mmlab_checkpoints")
    before = snapshot(*roots)
    run = inv(linked.root, "--dry", "clone", "--update")
    assert run.code == 0, run.err
    assert "in step with what upstream records" in run.out
    assert str(linked.storage) in run.out
    assert snapshot(*roots) == before


def test_unlink_then_relink_after_an_update(linked: Linked) -> None:
    """After the update, unlink puts the new versions back in the worktree (git clean), and
    linking again finds the same versions in storage: no clash."""
    push_upstream(linked.fixture, {TRAIN: NEW_TRAIN, "data/s3dis/README.md": None})
    assert inv(linked.root, "clone", "--update").code == 0
    run = inv(linked.root, "unlink")
    assert run.code == 0, run.err
    assert not (linked.project / "data").is_symlink()
    assert (linked.project / TRAIN).read_bytes() == NEW_TRAIN
    assert not os.path.lexists(linked.project / "data/s3dis")
    for repo in (linked.ext, linked.project):
        assert git_status(repo) == "", repo
    for task in ("link-data", "link-checkpoints"):
        again = inv(linked.root, task)
        assert again.code == 0, again.err + again.out
    assert_healthy(linked)


def test_a_workspace_stuck_by_an_older_update_is_finished(linked: Linked) -> None:
    """Before this fix, the superproject moved and the submodule update failed; that state is
    what a user has now: the next run finishes it."""
    commit = push_upstream(linked.fixture, {TRAIN: NEW_TRAIN})
    git("fetch", "-q", "origin", cwd=linked.ext)
    git("reset", "-q", "--keep", "origin/main", cwd=linked.ext)
    git("fetch", "-q", "--depth", "1", "origin", commit, cwd=linked.project)
    run = inv(linked.root, "clone", "--update")
    assert run.code == 0, run.err
    assert linked.stored(TRAIN).read_bytes() == NEW_TRAIN
    assert_healthy(linked)


def _superproject_moved(linked: Linked, before: str) -> Callable[[], bool]:
    head = linked.ext / ".git" / "refs" / "heads" / "main"
    return lambda: head.exists() and head.read_text().strip() != before


def _storage_written(linked: Linked) -> Callable[[], bool]:
    stored = linked.stored(TRAIN)
    return lambda: stored.exists() and stored.read_bytes() == NEW_TRAIN


def _index_changed(linked: Linked, before: float) -> Callable[[], bool]:
    index = linked.ext / ".git" / "modules" / PROJECT / "index"
    return lambda: index.exists() and index.stat().st_mtime_ns != before


def _kill_when(process: subprocess.Popen[bytes], event: Callable[[], bool]) -> bool:
    """SIGKILL the run's process group as soon as `event` is seen; False if it ended first."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if event():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.0005)
    process.wait()
    return False


# Each step's trigger, and random moments (one in the quick profile, two in the thorough).
TRIGGERS = ("superproject moved", "storage written", "index changed", "random", "random")[
    : scaled(4, 5)
]


@pytest.mark.slow
def test_a_killed_update_is_finished_by_the_next_run(workspace: Path, tmp_path: Path) -> None:
    """SIGKILL `clone --update` at its steps (as soon as each is seen, and at random moments);
    the same command then finishes it: new versions in storage, the link in place, all clean.
    Kills that landed mid-work (superproject moved, submodule not yet) are counted."""
    rng = random.Random(9)
    mid_work = 0
    for attempt, trigger in enumerate(TRIGGERS):
        root = tmp_path / f"try{attempt}"
        root.mkdir()
        (root / "tasks.py").write_bytes((workspace / "tasks.py").read_bytes())
        linked = make_linked(root, tmp_path / f"served{attempt}")
        commit = push_upstream(linked.fixture, {TRAIN: NEW_TRAIN, "data/new/added.txt": b"n\n"})
        old_head = linked.head(linked.ext)
        index = linked.ext / ".git" / "modules" / PROJECT / "index"
        events = {
            "superproject moved": _superproject_moved(linked, old_head),
            "storage written": _storage_written(linked),
            "index changed": _index_changed(linked, index.stat().st_mtime_ns),
        }
        process = subprocess.Popen(
            ["inv", "clone", "--update"], cwd=root, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if trigger == "random":
            time.sleep(rng.uniform(0.3, 1.2))
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        else:
            _kill_when(process, events[trigger])
        if linked.head(linked.ext) != old_head and linked.head(linked.project) != commit:
            mid_work += 1
        run = inv(root, "clone", "--update")
        assert run.code == 0, (trigger, run.out, run.err)
        assert linked.stored(TRAIN).read_bytes() == NEW_TRAIN, trigger
        assert linked.stored("data/new/added.txt").read_bytes() == b"n\n", trigger
        assert linked.head(linked.project) == commit, trigger
        assert_healthy(linked)
    assert mid_work >= 2, mid_work


POOL = (
    "data/lyft/train.txt",
    "data/s3dis/README.md",
    "data/scannet/batch_load_scannet_data.py",
    "data/new/added.txt",
    "data/lyft/extra.txt",
    "checkpoints/notes.txt",
)
CONTENT = st.sampled_from([b"a\n", b"b\n", b"\x00\xffbinary\n", b""])
ROUND = st.tuples(
    st.dictionaries(st.sampled_from(POOL), st.one_of(st.none(), CONTENT), max_size=4),
    st.sets(st.sampled_from(POOL), max_size=2),
)


def in_storage(linked: Linked, relative: str) -> Path:
    if relative.startswith("checkpoints/"):
        return linked.root / "mmlab_checkpoints" / PROJECT / relative
    return linked.stored(relative)


@pytest.mark.slow
@settings(
    max_examples=scaled(2, 4),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@example(rounds=[({}, {"data/lyft/train.txt"}), ({"data/lyft/train.txt": None}, set())])
@given(rounds=st.lists(ROUND, min_size=1, max_size=2))
def test_updates_keep_storage_equal_to_upstream_or_refuse(
    workspace: Path,
    tmp_path: Path,
    write_guard: list[str],
    rounds: list[tuple[dict[str, bytes | None], set[str]]],
) -> None:
    """Any upstream changes under the linked folders, with the user editing some stored files:
    the update is refused (changing nothing) exactly when upstream changes a file the user
    edited; otherwise storage holds upstream's version of every file upstream changed and the
    user's version of the others, and the workspace is healthy."""
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    (root / "tasks.py").write_bytes((workspace / "tasks.py").read_bytes())
    linked = make_linked(root, root / "served")
    upstream: dict[str, bytes] = dict(MMDET3D_DATA)
    expected = dict(upstream)  # what storage should hold
    for changes, edits in rounds:
        effective = {
            path: data
            for path, data in changes.items()
            if upstream.get(path) != data and not (data is None and path not in upstream)
        }
        for path in sorted(edits & set(expected)):
            expected[path] = expected[path] + b"# edited\n"
            in_storage(linked, path).write_bytes(expected[path])
        push_upstream(linked.fixture, effective, allow_empty=True)
        edited = {path for path in expected if expected[path] != upstream.get(path)}
        conflicting = sorted(set(effective) & edited)
        if conflicting:
            before = state_of(linked)
            run = inv(linked.root, "clone", "--update")
            assert_clean_error(run, str(in_storage(linked, conflicting[0])))
            assert state_of(linked) == before
            for path in conflicting:  # the user keeps their version aside
                os.rename(in_storage(linked, path), f"{in_storage(linked, path)}.mine")
                expected.pop(path)
        run = inv(linked.root, "clone", "--update")
        assert run.code == 0, run.out + run.err
        for path, data in effective.items():
            if data is None:
                upstream.pop(path, None)
                expected.pop(path, None)
            else:
                upstream[path] = expected[path] = data
        for path in POOL:
            stored = in_storage(linked, path)
            if path in expected:
                assert stored.read_bytes() == expected[path], path
            else:
                assert not os.path.lexists(stored), path
        assert_healthy(linked)


def test_relink_after_unlink_then_update_replaces_the_stale_copy(linked: Linked) -> None:
    """unlink, then an update while not linked, then link again: storage still holds the copy
    adopted before, an older version git holds; it is replaced, not taken for a clash. A copy
    the user edited there (bytes git does not hold) is still refused, and kept."""
    assert inv(linked.root, "unlink", "--data").code == 0
    push_upstream(linked.fixture, {TRAIN: NEW_TRAIN})
    assert inv(linked.root, "clone", "--update").code == 0
    assert (linked.project / TRAIN).read_bytes() == NEW_TRAIN
    old = linked.stored(TRAIN).read_bytes()
    assert old != NEW_TRAIN  # the stale copy linking adopted first
    dry = inv(linked.root, "--dry", "link-data")
    assert dry.code == 0 and "outdated" in dry.out, dry.out
    assert linked.stored(TRAIN).read_bytes() == old
    run = inv(linked.root, "link-data")
    assert run.code == 0, run.err + run.out
    assert linked.stored(TRAIN).read_bytes() == NEW_TRAIN
    assert (linked.project / TRAIN).read_bytes() == NEW_TRAIN  # through the link
    assert not [n for n in os.listdir(linked.stored(TRAIN).parent) if "mmlab-bootstrap" in n]
    assert_healthy(linked)
    # the same, with the stored copy edited by the user: a clash, nothing changed
    assert inv(linked.root, "unlink", "--data").code == 0
    linked.stored(TRAIN).write_bytes(b"my own split\n")
    refused = inv(linked.root, "link-data")
    assert refused.code == 1 and "other content" in refused.out, refused.out
    assert linked.stored(TRAIN).read_bytes() == b"my own split\n"

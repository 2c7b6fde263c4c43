"""A storage root changed after linking: adopted tracked files follow the link, or it stops.

mmdetection3d's tracked files under `data/` are adopted into storage and marked
skip-worktree, so git no longer looks for them: a link to a new, empty folder would hide
them while `git status` stays clean. These tests change the storage root by a flag and by
the environment, and check the files stay reachable, `status` notices when they are not,
and `env`/`bootstrap` say when the environment overrides `.env`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cloned, assert_clean_error, git_status, inv, snapshot
from .lib.gitfixture import MMDET3D_DATA

PROJECT = "mmdetection3d"
JOURNAL = ".mmlab-bootstrap-state.json"


def skip_worktree(project: Path) -> list[str]:
    listing = subprocess.run(
        ["git", "-C", str(project), "ls-files", "-v", "--", "data"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line[2:] for line in listing.splitlines() if line.startswith("S "))


@pytest.fixture
def linked(cloned: Cloned) -> Cloned:
    """The data links made once: mmdetection3d's tracked files adopted into mmlab_dataset."""
    run = inv(cloned.root, "link-data")
    assert run.code == 0, run.err
    assert skip_worktree(cloned.ext / PROJECT) == sorted(MMDET3D_DATA)
    return cloned


def data_problems(cloned: Cloned, env: dict[str, str] | None = None) -> list[Any]:
    """What `status --json` finds wrong with mmdetection3d's data link."""
    found = json.loads(inv(cloned.root, "status", "--json", env=env).out)
    location = str(cloned.ext / PROJECT / "data")
    return [problem for problem in found["problems"] if location in problem]


def assert_reachable(cloned: Cloned) -> None:
    for relative, data in MMDET3D_DATA.items():
        assert (cloned.ext / PROJECT / relative).read_bytes() == data, relative


def test_dry_shows_the_carry_and_changes_nothing(linked: Cloned) -> None:
    """`inv --dry link-data` with a new root says what it would carry; nothing changes."""
    before = snapshot(linked.root)
    run = inv(linked.root, "--dry", "link-data", "--dataset-path", str(linked.root / "bigdisk"))
    assert run.code == 0, run.err
    assert any(line.startswith("would carry 3 tracked file(s)") for line in run.lines), run.out
    assert any(line.startswith("would relink ") for line in run.lines), run.out
    assert snapshot(linked.root) == before


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_new_storage_root_carries_the_adopted_tracked_files(linked: Cloned, how: str) -> None:
    """Relinking to a new root copies the adopted files there (verified); the old copies stay;
    git status stays clean, status is healthy, and unlink still puts the files back."""
    new_root = linked.root / "bigdisk"
    if how == "flag":
        run = inv(linked.root, "link-data", "--dataset-path", str(new_root))
        env = {"MMLAB_DATASET_PATH": str(new_root)}
    else:
        env = {"MMLAB_DATASET_PATH": str(new_root)}
        run = inv(linked.root, "link-data", env=env)
    assert run.code == 0, run.err
    new_target = new_root / PROJECT / "data"
    assert os.readlink(linked.ext / PROJECT / "data") == str(new_target)
    assert any(
        line.startswith(f"carried 3 tracked file(s) adopted earlier into {new_target}")
        for line in run.lines
    ), run.out
    assert_reachable(linked)
    for relative, data in MMDET3D_DATA.items():  # the old storage copies stay
        assert (linked.data / PROJECT / relative).read_bytes() == data
    assert git_status(linked.ext / PROJECT) == ""
    journal = json.loads((linked.root / JOURNAL).read_text())["links"]
    assert journal[str(linked.ext / PROJECT / "data")]["adopted_tracked"] == sorted(MMDET3D_DATA)
    assert data_problems(linked, env) == []
    again = inv(linked.root, "link-data", env=env)
    assert again.code == 0 and "carried" not in again.out
    # unlink puts the tracked files back in the work tree from the new target
    undone = inv(linked.root, "unlink", "--data", env=env)
    assert undone.code == 0, undone.err
    for relative, data in MMDET3D_DATA.items():
        path = linked.ext / PROJECT / relative
        assert path.read_bytes() == data and not path.is_symlink()
    assert git_status(linked.ext / PROJECT) == ""
    assert skip_worktree(linked.ext / PROJECT) == []


def test_a_different_file_in_the_new_root_is_refused_by_name(linked: Cloned) -> None:
    """The new target holds another file of an adopted name: refused, naming it; no change."""
    new_target = linked.root / "bigdisk" / PROJECT / "data"
    (new_target / "lyft").mkdir(parents=True)
    (new_target / "lyft" / "train.txt").write_bytes(b"someone else's list\n")
    before = snapshot(linked.root)
    run = inv(linked.root, "link-data", "--dataset-path", str(linked.root / "bigdisk"))
    assert_clean_error(run, "refused; nothing changed")
    refused = [line for line in run.lines if line.startswith("refused ")]
    assert len(refused) == 1 and "data/lyft/train.txt" in refused[0], run.out
    assert snapshot(linked.root) == before
    assert_reachable(linked)


def test_tracked_files_found_nowhere_are_refused_by_name(linked: Cloned) -> None:
    """An adopted file missing from both the old and the new target: refused, naming it."""
    (linked.data / PROJECT / "data" / "s3dis" / "README.md").unlink()
    run = inv(linked.root, "link-data", "--dataset-path", str(linked.root / "bigdisk"))
    assert_clean_error(run, "refused; nothing changed")
    assert "data/s3dis/README.md" in run.out and "hint: get them back from git" in run.err
    assert os.readlink(linked.ext / PROJECT / "data") == str(linked.data / PROJECT / "data")
    hint = run.err.splitlines()[1]
    assert hint == "hint: get them back from git: inv unlink --data; then link again: inv link-data"
    assert inv(linked.root, "unlink", "--data").code == 0
    new_root = linked.root / "bigdisk"
    assert inv(linked.root, "link-data", "--dataset-path", str(new_root)).code == 0
    assert_reachable(linked)
    assert (new_root / PROJECT / "data" / "s3dis" / "README.md").read_bytes() == b"# s3dis\n"


def test_a_link_already_moved_by_an_older_version_gets_its_files_back(linked: Cloned) -> None:
    """The link was relinked to an empty folder before this fix: the journal's previous link
    says where the files are, and the next link-data carries them."""
    new_target = linked.root / "bigdisk" / PROJECT / "data"
    new_target.mkdir(parents=True)
    location = linked.ext / PROJECT / "data"
    journal_path = linked.root / JOURNAL
    journal = json.loads(journal_path.read_text())
    entry = journal["links"][str(location)]
    entry.update(target=str(new_target), previous_link=str(linked.data / PROJECT / "data"))
    entry["adopted_tracked"] = []
    journal_path.write_text(json.dumps(journal))
    location.unlink()
    location.symlink_to(new_target)
    env = {"MMLAB_DATASET_PATH": str(linked.root / "bigdisk")}
    assert len(data_problems(linked, env)) == 1
    run = inv(linked.root, "link-data", env=env)
    assert run.code == 0, run.err
    assert_reachable(linked)
    assert data_problems(linked, env) == []


def test_status_names_tracked_files_the_link_does_not_reach(linked: Cloned) -> None:
    """A skip-worktree file missing behind its link: git status is clean, status is not."""
    assert data_problems(linked) == []
    (linked.data / PROJECT / "data" / "lyft" / "train.txt").unlink()
    assert git_status(linked.ext / PROJECT) == ""  # git does not look
    before = snapshot(linked.root)
    run = inv(linked.root, "status", "--json")
    found = json.loads(run.out)
    assert run.code == 1 and not found["healthy"]
    problems = [p for p in found["problems"] if "data/lyft/train.txt" in p]
    assert len(problems) == 1 and str(linked.ext / PROJECT / "data") in problems[0]
    links = {link["location"]: link for link in found["links"]}
    assert links[str(linked.ext / PROJECT / "data")]["unreachable_tracked"] == [
        "data/lyft/train.txt"
    ]
    text = inv(linked.root, "status")
    assert text.code == 1
    assert any("data/lyft/train.txt" in line for line in text.lines), text.out
    assert snapshot(linked.root) == before


@pytest.mark.parametrize("task", ["env", "bootstrap"])
def test_env_and_bootstrap_warn_when_the_environment_overrides_dotenv(
    linked: Cloned, task: str
) -> None:
    """A stale export differing from `.env` is named in one warning line (as status does)."""
    assert inv(linked.root, "env").code == 0
    new_root = str(linked.root / "bigdisk")
    env = {"MMLAB_DATASET_PATH": new_root, "MMLAB_GIT_MIRROR": ""}
    run = inv(linked.root, task, env=env)
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, run.err
    assert "MMLAB_DATASET_PATH in the environment" in warnings[0]
    assert new_root in warnings[0] and str(linked.data) in warnings[0]
    quiet = inv(linked.root, task, env={"MMLAB_DATASET_PATH": new_root})
    assert "warning: MMLAB_DATASET_PATH" not in quiet.err  # .env holds it now


def test_files_sparse_checkout_leaves_out_are_not_adopted_files(cloned: Cloned) -> None:
    """Sparse checkout marks the files it leaves out skip-worktree too: those are not taken
    for lost adopted files (the location links as usual; status stays quiet about them)."""
    project = cloned.ext / PROJECT
    subprocess.run(["git", "-C", str(project), "update-index", "-q", "--refresh"], check=True)
    subprocess.run(
        ["git", "-C", str(project), "sparse-checkout", "set", "--no-cone", "/*", "!/data/"],
        check=True,
        capture_output=True,
    )
    assert not (project / "data").exists()
    assert skip_worktree(project) == sorted(MMDET3D_DATA)
    run = inv(cloned.root, "link-data")
    assert run.code == 0, run.out + run.err
    assert os.readlink(project / "data") == str(cloned.data / PROJECT / "data")
    assert data_problems(cloned) == []

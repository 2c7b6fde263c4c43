"""A storage root moves after linking while the old target holds the user's data (issue 21).

`data/kitti` put into storage through the link stays in the old root when the link follows
a new root: the relink refuses, naming it, unless `--move-data` (a verified move, across
filesystems too, refused on clashes, finished by a re-run after a kill) or `--leave-data`
(status then names the old target). Links the journal records outside the current project
list are shown by `status` and removed by `unlink`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import (
    BIN,
    Cloned,
    assert_clean_error,
    git_status,
    inv,
    mount,
    scaled,
    snapshot,
)
from .lib.gitfixture import MMDET3D_DATA

PROJECT = "mmdetection3d"
JOURNAL = ".mmlab-bootstrap-state.json"


def user_tree(folder: Path, count: int = 3) -> dict[str, bytes]:
    """The user's files, put at `folder` (through the link): relative path -> bytes."""
    made = {}
    for number in range(count):
        relative = f"kitti/training/{number:04d}.bin"
        made[relative] = os.urandom(1000 + number)
    made["kitti/ImageSets/train.txt"] = b"000000\n000001\n"
    for relative, data in made.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return made


@pytest.fixture
def with_kitti(cloned: Cloned) -> tuple[Cloned, dict[str, bytes]]:
    """Bootstrapped once; then `data/kitti` put into storage through the link."""
    run = inv(cloned.root, "bootstrap")
    assert run.code == 0, run.err
    return cloned, user_tree(cloned.ext / PROJECT / "data")


def entry(cloned: Cloned, project: str = PROJECT, leaf: str = "data") -> dict[str, object]:
    links = json.loads((cloned.root / JOURNAL).read_text())["links"]
    found: dict[str, object] = links[str(cloned.ext / project / leaf)]
    return found


def assert_tracked_intact(cloned: Cloned) -> None:
    for relative, data in MMDET3D_DATA.items():
        assert (cloned.ext / PROJECT / relative).read_bytes() == data, relative
    assert git_status(cloned.ext / PROJECT) == ""


def assert_holds(folder: Path, tree: dict[str, bytes]) -> None:
    for relative, data in tree.items():
        assert (folder / relative).read_bytes() == data, relative


@pytest.mark.parametrize("task", ["bootstrap", "link-data"])
def test_a_relink_away_from_user_data_is_refused_naming_it(
    with_kitti: tuple[Cloned, dict[str, bytes]], tmp_path: Path, task: str
) -> None:
    cloned, tree = with_kitti
    old = cloned.data / PROJECT / "data"
    assert inv(cloned.root, "env", "--dataset-path", str(tmp_path / "bigdisk")).code == 0
    found = json.loads(inv(cloned.root, "status", "--json").out)  # before the relink
    assert any(
        f"its old target {old} holds {len(tree)} file(s) of yours" in problem
        for problem in found["problems"]
    ), found["problems"]
    before = snapshot(cloned.ext, old)  # (bootstrap's layout step makes storage folders)
    run = inv(cloned.root, task)
    assert_clean_error(run, "refused")
    assert f"inv {task} --move-data" in run.err and f"inv {task} --leave-data" in run.err
    assert f"would leave {len(tree)} file(s) of yours" in run.out, run.out
    assert str(old) in run.out and "kitti/ImageSets/train.txt" in run.out
    assert snapshot(cloned.ext, old) == before
    assert_holds(old, tree)


def test_move_data_on_one_filesystem(
    with_kitti: tuple[Cloned, dict[str, bytes]], tmp_path: Path
) -> None:
    cloned, tree = with_kitti
    old = cloned.data / PROJECT / "data"
    new = tmp_path / "bigdisk" / PROJECT / "data"
    run = inv(cloned.root, "bootstrap", "--move-data", "--dataset-path", str(new.parent.parent))
    assert run.code == 0, run.err
    assert f"moved {len(tree)} file(s) of yours" in run.out, run.out
    assert_holds(new, tree)
    assert_holds(cloned.ext / PROJECT / "data", tree)
    assert not old.exists()  # emptied and removed
    assert_tracked_intact(cloned)
    assert entry(cloned).get("moving_from") is None
    status = json.loads(inv(cloned.root, "status", "--json").out)
    assert status["healthy"], status["problems"]
    again = inv(cloned.root, "bootstrap", "--move-data")
    assert again.code == 0 and "moved" not in again.out
    run = inv(cloned.root, "unlink")  # tracked files back from the new target; data stays
    assert run.code == 0, run.err
    assert_tracked_intact(cloned)
    assert_holds(new, tree)


def test_leave_data_relinks_and_status_names_the_old_target(
    with_kitti: tuple[Cloned, dict[str, bytes]], tmp_path: Path
) -> None:
    cloned, tree = with_kitti
    old = cloned.data / PROJECT / "data"
    run = inv(cloned.root, "link-data", "--leave-data", "--dataset-path", str(tmp_path / "big"))
    assert run.code == 0, run.err
    assert f"left {len(tree)} file(s) of yours" in run.err
    assert_holds(old, tree)
    assert_tracked_intact(cloned)
    assert entry(cloned)["left_data_in"] == [str(old)]
    run = inv(cloned.root, "status", env={"MMLAB_DATASET_PATH": str(tmp_path / "big")})
    assert run.code == 0, run.out  # a note, not a problem: the user chose to leave it
    assert f"{old} still holds {len(tree)} file(s) of yours" in run.out + run.err
    found = json.loads(
        inv(cloned.root, "status", "--json", env={"MMLAB_DATASET_PATH": str(tmp_path / "big")}).out
    )
    (link,) = [link for link in found["links"] if link["location"].endswith(f"{PROJECT}/data")]
    assert link["data_left_in"] == [{"path": str(old), "files": len(tree)}]
    for relative in tree:  # emptied by hand: no more note
        (old / relative).unlink()
    run = inv(cloned.root, "status", env={"MMLAB_DATASET_PATH": str(tmp_path / "big")})
    assert "still holds" not in run.out + run.err


def test_the_flags_contradict_each_other(cloned: Cloned) -> None:
    before = snapshot(cloned.root)
    run = inv(cloned.root, "bootstrap", "--move-data", "--leave-data")
    assert_clean_error(run, "contradict")
    assert snapshot(cloned.root) == before


def test_clashes_in_the_new_target_refuse_the_move(
    with_kitti: tuple[Cloned, dict[str, bytes]], tmp_path: Path
) -> None:
    cloned, tree = with_kitti
    new = tmp_path / "bigdisk" / PROJECT / "data"
    (new / "kitti" / "training").mkdir(parents=True)
    (new / "kitti" / "training" / "0000.bin").write_bytes(b"another file")
    (new / "kitti" / "ImageSets").write_bytes(b"a file where a folder goes")
    before = snapshot(cloned.root, tmp_path / "bigdisk")
    run = inv(cloned.root, "link-data", "--move-data", "--dataset-path", str(new.parent.parent))
    assert_clean_error(run, "refused")
    assert "already in the target with other content" in run.out
    assert "0000.bin" in run.out and "ImageSets" in run.out
    assert snapshot(cloned.root, tmp_path / "bigdisk") == before
    # the same bytes already there are no clash
    (new / "kitti" / "training" / "0000.bin").write_bytes(tree["kitti/training/0000.bin"])
    (new / "kitti" / "ImageSets").unlink()
    run = inv(cloned.root, "link-data", "--move-data", "--dataset-path", str(new.parent.parent))
    assert run.code == 0, run.err
    assert_holds(new, tree)


@pytest.fixture
def two_filesystems(
    with_kitti: tuple[Cloned, dict[str, bytes]], tmp_path: Path, mounts: list[Path]
) -> tuple[Cloned, dict[str, bytes], Path]:
    """The user's data on the workspace's filesystem; a tmpfs as the new dataset root."""
    cloned, tree = with_kitti
    storage = tmp_path / "tmpfs"
    mount(mounts, storage, "size=256m")
    return cloned, tree, storage


def test_move_across_filesystems_dry_then_real(
    two_filesystems: tuple[Cloned, dict[str, bytes], Path],
) -> None:
    cloned, tree, storage = two_filesystems
    old = cloned.data / PROJECT / "data"
    before = snapshot(cloned.root, storage)
    dry = inv(cloned.root, "--dry", "bootstrap", "--move-data", "--dataset-path", str(storage))
    assert dry.code == 0, dry.err
    moves = [line for line in dry.lines if line.startswith("would move ")]
    assert len(moves) == 1, dry.out  # every location with data to move: one here
    assert f"{len(tree)} file(s) of yours" in moves[0] and str(old) in moves[0]
    assert any(line.startswith("would relink ") for line in dry.lines), dry.out
    assert snapshot(cloned.root, storage) == before
    run = inv(cloned.root, "bootstrap", "--move-data", "--dataset-path", str(storage))
    assert run.code == 0, run.err
    assert "to another filesystem: copy, verify sizes, then remove" in run.out
    assert_holds(storage / PROJECT / "data", tree)
    assert not old.exists()
    assert_tracked_intact(cloned)
    assert json.loads(inv(cloned.root, "status", "--json").out)["healthy"]


KILLS = scaled(6, 20)
MIDWORK_AT_LEAST = scaled(2, 6)


@pytest.mark.slow
def test_a_killed_move_is_finished_by_a_rerun(
    two_filesystems: tuple[Cloned, dict[str, bytes], Path],
) -> None:
    """Runs of `--move-data` across filesystems killed at random moments: every file is in
    the old or the new target after each kill, and a re-run finishes the move."""
    cloned, _, storage = two_filesystems
    old = cloned.data / PROJECT / "data"
    new = storage / PROJECT / "data"
    seed = int(os.environ.get("KILL_STORM_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    tree = {}
    for folder in range(40):
        for number in range(50):
            relative = f"big/set{folder:02d}/{number:03d}.bin"
            tree[relative] = rng.randbytes(rng.randrange(1, 400))
    for relative, data in tree.items():
        (old / relative).parent.mkdir(parents=True, exist_ok=True)
        (old / relative).write_bytes(data)

    def lost() -> list[str]:
        return [
            relative
            for relative, data in tree.items()
            if not any(
                (root / relative).is_file() and (root / relative).read_bytes() == data
                for root in (old, new)
            )
        ]

    command = [str(BIN / "inv"), "link-data", "--move-data", "--dataset-path", str(storage)]
    kills = midwork = 0
    work = 0.3
    while kills < KILLS:
        before = sum(1 for relative in tree if (old / relative).exists())
        process = subprocess.Popen(
            command, cwd=cloned.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert process.stdout is not None
        head = b""
        while b"moving " not in head:  # the move begins
            chunk = process.stdout.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            head += chunk
        began = time.monotonic()
        try:
            process.wait(timeout=rng.uniform(0, work))
        except subprocess.TimeoutExpired:
            process.send_signal(rng.choice([signal.SIGKILL, signal.SIGINT]))
        out, _ = process.communicate(timeout=60)
        out = head + out
        assert lost() == [], (seed, out.decode(errors="replace"))
        # an interruption once the tool's own code runs is one clean line (see test_kill_storm)
        assert b"Traceback" not in out or (
            out.rstrip().endswith(b"KeyboardInterrupt") and b"/mmlab_bootstrap/" not in out
        ), out.decode(errors="replace")
        if process.returncode == 0:
            work = max(0.02, (time.monotonic() - began) * 0.7)
            # put it back for another round: the whole tree in the old target again
            _move_back(cloned, tree, old, new)
            continue
        kills += 1
        after = sum(1 for relative in tree if (old / relative).exists())
        if 0 < after < before:
            midwork += 1
        # a re-run without either flag names what still stays behind
        refused = inv(cloned.root, "link-data", "--dataset-path", str(storage))
        if after:
            assert_clean_error(refused, "refused")
            assert "--move-data" in refused.err and str(old) in refused.out
    final = subprocess.run(command, cwd=cloned.root, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr
    assert_holds(new, tree)
    assert not old.exists()
    assert_tracked_intact(cloned)
    leftovers = [p for p in new.rglob("*") if "mmlab-bootstrap-" in p.name]
    assert leftovers == []
    status = inv(cloned.root, "status", "--json", env={"MMLAB_DATASET_PATH": str(storage)})
    assert json.loads(status.out)["healthy"], status.out
    print(f"seed {seed}: {kills} kills, {midwork} mid-work")
    assert midwork >= MIDWORK_AT_LEAST, (seed, kills, midwork)


def test_a_move_the_journal_says_was_under_way_is_not_forgotten(
    with_kitti: tuple[Cloned, dict[str, bytes]], tmp_path: Path
) -> None:
    """As a kill leaves it: the journal names the new target and the old one being emptied,
    the link still leads to the old one, one file is in the new target already. A run without
    a flag names what stays behind; --leave-data ends the move; then runs are quiet."""
    cloned, tree = with_kitti
    old = cloned.data / PROJECT / "data"
    new = tmp_path / "bigdisk" / PROJECT / "data"
    assert inv(cloned.root, "env", "--dataset-path", str(new.parent.parent)).code == 0
    journal = json.loads((cloned.root / JOURNAL).read_text())
    journal["links"][str(cloned.ext / PROJECT / "data")].update(
        target=str(new), moving_from=str(old), adopted=["data/kitti/training/0000.bin"]
    )
    (cloned.root / JOURNAL).write_text(json.dumps(journal))
    (new / "kitti" / "training").mkdir(parents=True)
    (old / "kitti" / "training" / "0000.bin").rename(new / "kitti" / "training" / "0000.bin")
    leftover = (
        new / "kitti" / "training" / ".0001.bin.mmlab-bootstrap-copy-0123456789abcdef01234567"
    )
    leftover.write_bytes(b"half a copy")
    run = inv(cloned.root, "link-data")
    assert_clean_error(run, "refused")
    assert f"would leave {len(tree) - 1} file(s) of yours" in run.out and str(old) in run.out
    run = inv(cloned.root, "link-data", "--leave-data")
    assert run.code == 0, run.err
    assert not leftover.exists()
    assert entry(cloned).get("moving_from") is None
    assert (cloned.ext / PROJECT / "data" / "kitti" / "training" / "0000.bin").exists()
    run = inv(cloned.root, "bootstrap")
    assert run.code == 0, run.err
    assert_tracked_intact(cloned)
    status = inv(cloned.root, "status")
    assert status.code == 0, status.out
    assert f"{old} still holds {len(tree) - 1} file(s) of yours" in status.err


def test_a_run_stopped_while_carrying_still_knows_the_old_target(
    with_kitti: tuple[Cloned, dict[str, bytes]], tmp_path: Path
) -> None:
    """The carry of the adopted tracked files comes before the move, after the journal names
    the new target: a run stopped there (here: a FIFO where a tracked copy was) must still
    know the old target holds the user's files, or the next run relinks without them."""
    cloned, tree = with_kitti
    old = cloned.data / PROJECT / "data"
    new_root = tmp_path / "bigdisk"
    tracked = old / "scannet" / "batch_load_scannet_data.py"
    tracked.unlink()
    os.mkfifo(tracked)
    run = inv(cloned.root, "link-data", "--move-data", "--dataset-path", str(new_root))
    assert run.code == 1, run.out
    assert entry(cloned)["moving_from"] == str(old)
    tracked.unlink()
    tracked.write_bytes(MMDET3D_DATA["data/scannet/batch_load_scannet_data.py"])
    run = inv(cloned.root, "link-data", "--dataset-path", str(new_root))
    assert_clean_error(run, "refused")
    assert str(old) in run.out and "--move-data" in run.err
    run = inv(cloned.root, "link-data", "--move-data", "--dataset-path", str(new_root))
    assert run.code == 0, run.err
    assert_holds(new_root / PROJECT / "data", tree)
    assert_tracked_intact(cloned)


def _move_back(cloned: Cloned, tree: dict[str, bytes], old: Path, new: Path) -> None:
    """Link back to the first root and put the whole tree there again."""
    run = inv(cloned.root, "link-data", "--leave-data", "--dataset-path", str(cloned.data))
    assert run.code == 0, run.err
    for relative, data in tree.items():
        (old / relative).parent.mkdir(parents=True, exist_ok=True)
        (old / relative).write_bytes(data)
        (new / relative).unlink()


def test_status_and_unlink_cover_a_one_off_project(cloned: Cloned) -> None:
    """`link-data --projects mmdetection` (a one-off flag) links mmdetection/data; status
    shows it and unlink removes it without the flag, though MMLAB_PROJECTS does not name it."""
    assert inv(cloned.root, "env", "--projects", PROJECT).code == 0
    run = inv(cloned.root, "link-data", "--projects", "mmdetection")
    assert run.code == 0, run.err
    location = cloned.ext / "mmdetection" / "data"
    assert location.is_symlink()
    found = json.loads(inv(cloned.root, "status", "--json").out)
    shown = {link["location"]: link for link in found["links"]}
    assert shown[str(location)]["state"] == "ok"
    assert shown[str(location)]["in_projects"] is False
    plain = inv(cloned.root, "status")
    assert f"link {location}: ok" in plain.out
    run = inv(cloned.root, "unlink")
    assert run.code == 0, run.err
    assert not os.path.lexists(location)
    assert str(location) not in json.loads((cloned.root / JOURNAL).read_text())["links"]
    assert git_status(cloned.ext / "mmdetection") == ""


LOCATION = "/w/mmlab_extension/mmdetection3d/data"
HOSTILE_FIELDS: list[tuple[str, str, object]] = [
    ("moving_from", "relative", "mmlab_dataset/mmdetection3d/data"),
    ("moving_from", "climbing out", "/d/mmdetection3d/data/../../../etc/data"),
    ("moving_from", "another project", "/d/mmdetection/data"),
    ("moving_from", "the location itself", LOCATION),
    ("moving_from", "inside the extension", "/w/mmlab_extension/x/mmdetection3d/data"),
    ("moving_from", "a number", 7),
    ("moving_from", "a list", ["/d/mmdetection3d/data"]),
    ("moving_from", "empty", ""),
    ("moving_from", "a NUL", "/d/mmdetection3d/da\0ta"),
    ("left_data_in", "a string", "/d/mmdetection3d/data"),
    ("left_data_in", "a number inside", [3]),
    ("left_data_in", "null inside", [None]),
    ("left_data_in", "another leaf", ["/d/mmdetection3d/checkpoints"]),
    ("left_data_in", "relative inside", ["d/mmdetection3d/data"]),
]


@pytest.mark.parametrize(
    ("field", "value"),
    [(field, value) for field, _, value in HOSTILE_FIELDS],
    ids=[f"{field}: {what}" for field, what, _ in HOSTILE_FIELDS],
)
def test_hostile_values_of_the_new_journal_fields_are_damage(field: str, value: object) -> None:
    from mmlab_bootstrap.links.journal import Damage, validated

    entry = {"target": "/e/mmdetection3d/data", "linked": True, field: value}
    with pytest.raises(Damage):
        validated({"version": 1, "links": {LOCATION: entry}})


def test_old_and_new_journals_load() -> None:
    from mmlab_bootstrap.links.journal import validated

    old = {"target": "/e/mmdetection3d/data", "linked": True, "adopted_tracked": []}
    new = {
        **old,
        "moving_from": None,
        "left_data_in": ["/d/mmdetection3d/data", "/c/mmdetection3d/data"],
    }
    for entry in (old, new, {**old, "moving_from": "/d/mmdetection3d/data"}):
        assert validated({"version": 1, "links": {LOCATION: entry}}) == {LOCATION: entry}


@pytest.mark.parametrize("how", ["gone", "a symlink"])
def test_a_recorded_link_whose_project_folder_is_no_more_is_left_alone(
    cloned: Cloned, tmp_path: Path, how: str
) -> None:
    """The journal records mmdetection/data, then the project folder goes (or becomes a
    symlink out of the extension): status names the location, unlink leaves it alone with a
    warning and does the rest; nothing outside is touched."""
    assert inv(cloned.root, "env", "--projects", PROJECT).code == 0
    assert inv(cloned.root, "link-data", "--projects", "mmdetection").code == 0
    project = cloned.ext / "mmdetection"
    elsewhere = tmp_path / "elsewhere"
    project.rename(elsewhere)
    if how == "a symlink":
        project.symlink_to(elsewhere)
    before = snapshot(elsewhere)
    found = json.loads(inv(cloned.root, "status", "--json").out)
    assert str(project / "data") in [link["location"] for link in found["links"]]
    if how == "gone":
        assert any(str(project / "data") in problem for problem in found["problems"])
    run = inv(cloned.root, "unlink", "--data")
    assert run.code == 0, run.err
    assert f"left alone: {project / 'data'}" in run.err
    assert snapshot(elsewhere) == before
    assert not (cloned.ext / PROJECT / "data").is_symlink()

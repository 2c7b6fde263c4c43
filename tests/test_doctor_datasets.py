"""`doctor`'s dataset checks on trees built here (tiny files): complete, each required part
missing, wrong case, old- and new-format info files, dangling and outside symlinks, and a
folder of 100 000 entries that the bounded reads never list."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmlab_bootstrap.doctor.dataset_specs import COCO, KITTI, NUSCENES
from mmlab_bootstrap.doctor.datasets import check_data
from mmlab_bootstrap.doctor.pickles import (
    CURRENT,
    NOT_PICKLE,
    OLD,
    UNKNOWN,
    head_format,
    info_format,
)
from mmlab_bootstrap.output.findings import ERROR, OK, WARNING, Finding

from .lib.datatrees import (
    coco,
    current_infos,
    kitti,
    new_checkout,
    nuscenes,
    old_checkout,
    old_kitti_infos,
    old_nuscenes_infos,
    touch,
    write_pickle,
)


class Tree:
    """A project folder whose `data` is a link into a storage root, as `link-data` makes it."""

    def __init__(self, base: Path) -> None:
        self.root = base / "storage"
        self.target = self.root / "mmdetection3d" / "data"
        self.target.mkdir(parents=True)
        self.project = new_checkout(base / "ext" / "mmdetection3d")
        self.data = self.project / "data"
        self.data.symlink_to(self.target)

    def check(self) -> tuple[dict[str, object], list[Finding]]:
        return check_data(self.data, self.project, self.root)

    def problems(self) -> list[Finding]:
        return [f for f in self.check()[1] if f.level == ERROR]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def test_complete_datasets_have_no_problem(tree: Tree) -> None:
    kitti(tree.data / "kitti", ids=11)
    nuscenes(tree.data / "nuscenes")
    coco(tree.data / "coco")
    info, findings = tree.check()
    assert [f for f in findings if f.level != OK] == []
    assert sorted(f.subject for f in findings) == [
        "mmdetection3d/data/coco", "mmdetection3d/data/kitti", "mmdetection3d/data/nuscenes",
    ]  # fmt: skip
    by_name = {d["name"]: d for d in info["datasets"]}  # type: ignore[attr-defined]
    assert by_name["KITTI"]["sampled_ids"] == ["000000", "000005", "000010"]
    assert all(by_name["KITTI"]["generated"].values())
    assert set(by_name["KITTI"]["info_formats"].values()) == {CURRENT}
    assert by_name["nuScenes"]["versions"] == ["v1.0-trainval"]


@pytest.mark.parametrize(
    ("make", "layout"),
    [(kitti, KITTI), (nuscenes, NUSCENES), (coco, COCO)],
    ids=["kitti", "nuscenes", "coco"],
)
def test_each_missing_required_part_is_one_error(tree: Tree, make: object, layout: object) -> None:
    """Every required file or folder, taken away alone, is named, with a hint to download."""
    from mmlab_bootstrap.doctor.dataset_specs import Layout

    assert isinstance(layout, Layout) and callable(make)
    folder = tree.data / layout.name
    for part in layout.required:
        shutil.rmtree(folder, ignore_errors=True)
        make(folder)
        path = folder / part.rstrip("/")
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        problems = tree.problems()
        named = [f for f in problems if f.subject.endswith(f"/{layout.name}/{part}")]
        assert len(named) == 1, (part, problems)
        assert named[0].text == "missing" and "download" in named[0].hint
        assert layout.guides[0] in named[0].hint or layout.guides[1] in named[0].hint


def test_an_empty_required_folder_is_reported(tree: Tree) -> None:
    kitti(tree.data / "kitti")
    shutil.rmtree(tree.data / "kitti" / "testing" / "calib")
    (tree.data / "kitti" / "testing" / "calib").mkdir()
    assert [(f.subject, f.text) for f in tree.problems()] == [
        ("mmdetection3d/data/kitti/testing/calib/", "empty")
    ]


def test_missing_sampled_ids_and_generated_files(tree: Tree) -> None:
    """A sampled id's files are checked; each generated file is present or missing, with
    the create_data.py line that makes it."""
    folder = kitti(tree.data / "kitti", ids=9, generated=False)
    (folder / "training" / "velodyne" / "000008.bin").unlink()  # the last id of train.txt
    (folder / "training" / "planes").mkdir()
    problems = tree.problems()
    velodyne = "mmdetection3d/data/kitti/training/velodyne/000008.bin"
    assert (velodyne, "missing (id 000008 of train.txt)") in [(f.subject, f.text) for f in problems]
    generated = [f for f in problems if f.text == "missing (generated)"]
    assert [f.subject.split("kitti/", 1)[1] for f in generated] == list(KITTI.generated)
    assert generated[0].hint == (
        f"cd {tree.project} && python tools/create_data.py kitti --root-path ./data/kitti"
        " --out-dir ./data/kitti --extra-tag kitti --with-plane"
    )


def test_nuscenes_mini_gets_its_version_in_the_command(tree: Tree) -> None:
    folder = nuscenes(tree.data / "nuscenes", "v1.0-mini")
    (folder / "nuscenes_infos_val.pkl").unlink()
    (hint,) = {f.hint for f in tree.problems()}
    assert hint.endswith("--extra-tag nuscenes --version v1.0-mini")
    shutil.rmtree(folder / "v1.0-mini")
    assert "no v1.0-* metadata folder" in " ".join(f.text for f in tree.problems())


def test_names_are_case_exact(tree: Tree) -> None:
    """`data/KITTI` is reported with the expected name; so is `imagesets` inside."""
    kitti(tree.data / "KITTI")
    (problem,) = tree.problems()
    assert problem.subject == "mmdetection3d/data/KITTI"
    assert "'kitti'" in problem.text and problem.hint.endswith(f"'{tree.data / 'kitti'}'")
    (tree.data / "KITTI").rename(tree.data / "kitti")
    (tree.data / "kitti" / "ImageSets").rename(tree.data / "kitti" / "imagesets")
    texts = {f.text for f in tree.problems()}
    assert "missing (found 'imagesets': names are case-exact)" in texts


@pytest.mark.parametrize("protocol", [0, 2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_info_format_is_told_from_the_opcodes(tmp_path: Path, protocol: int) -> None:
    """Current, old (a list; a dict with `infos`), another pickle, no pickle: never unpickled
    (a pickle that would run code when loaded is told apart all the same)."""
    cases = {
        "new.pkl": (current_infos("kitti", 5000), CURRENT),
        "old_kitti.pkl": (old_kitti_infos(5000), OLD),
        "old_nuscenes.pkl": (old_nuscenes_infos(5000), OLD),
        "dbinfos.pkl": ({"Car": [1, 2]}, UNKNOWN),
    }
    for name, (value, expected) in cases.items():
        write_pickle(tmp_path / name, value, protocol)
        assert info_format(tmp_path / name) == expected, name
    assert info_format(touch(tmp_path / "empty.pkl", b"")) == NOT_PICKLE
    assert info_format(touch(tmp_path / "png.pkl", b"\x89PNG\r\n")) == NOT_PICKLE
    assert info_format(tmp_path / "absent.pkl") == NOT_PICKLE
    marker = tmp_path / "ran"
    hostile = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    assert head_format(hostile) == UNKNOWN and not marker.exists()


KEYS = st.sampled_from(["infos", "metainfo", "data_list", "metadata"]) | st.text(max_size=6)
VALUES = st.recursive(
    st.none() | st.integers() | st.floats() | st.text(max_size=8) | KEYS | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=40,
)


@given(VALUES, st.lists(VALUES, max_size=5), st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_any_info_content_keeps_its_format(
    meta: object, items: list[object], protocol: int
) -> None:
    """Whatever the infos hold (even the other format's key names, nested), the top-level
    container and its first key decide."""
    current = {"metainfo": meta, "data_list": items}
    old_nuscenes = {"infos": items, "metadata": meta}
    for value, expected in ((current, CURRENT), (old_nuscenes, OLD), (items, OLD)):
        assert head_format(pickle.dumps(value, protocol=protocol)[:8192]) == expected


def test_old_format_info_files_name_the_converter(tree: Tree) -> None:
    kitti(tree.data / "kitti", infos=old_kitti_infos())
    nuscenes(tree.data / "nuscenes", infos=old_nuscenes_infos())
    problems = tree.problems()
    assert len(problems) == 6 and all("old format" in f.text for f in problems)
    assert problems[0].hint == (
        f"cd {tree.project} && python tools/dataset_converters/update_infos_to_v2.py"
        " --dataset kitti --pkl-path ./data/kitti/kitti_infos_train.pkl --out-dir ./data/kitti"
    )


def test_an_old_checkout_wants_the_old_format(tmp_path: Path) -> None:
    """mmdetection3d 1.0 (tools/data_converter, no update_infos_to_v2.py) reads the old
    format: there the new one is the error, and the hint makes the files again."""
    tree = Tree(tmp_path)
    shutil.rmtree(tree.project / "tools")
    old_checkout(tree.project)
    kitti(tree.data / "kitti", infos=old_kitti_infos())
    assert tree.problems() == []
    write_pickle(tree.data / "kitti" / "kitti_infos_val.pkl", current_infos("kitti"))
    (problem,) = tree.problems()
    assert "new format" in problem.text and "create_data.py kitti" in problem.hint


def test_a_damaged_info_file_is_an_error(tree: Tree) -> None:
    folder = kitti(tree.data / "kitti")
    (folder / "kitti_infos_test.pkl").write_bytes(b"")
    (problem,) = tree.problems()
    assert problem.text == "not an info file (not a pickle)"


def test_dangling_and_outside_symlinks(tree: Tree, tmp_path: Path) -> None:
    """Dangling: an error. Leading outside the storage root: a warning to mount it too.
    Inside the root: fine. Unknown folders are listed, not errors."""
    outside = kitti(tmp_path / "elsewhere" / "kitti")
    (tree.data / "kitti").symlink_to(outside)
    (tree.data / "nuscenes").symlink_to(tmp_path / "gone")
    inside = coco(tree.root / "shared" / "coco")
    (tree.data / "coco").symlink_to(inside)
    (tree.data / "scannet").mkdir()
    info, findings = tree.check()
    levels = {(f.level, f.subject) for f in findings if f.level != OK}
    assert levels == {
        (WARNING, "mmdetection3d/data/kitti"),
        (ERROR, "mmdetection3d/data/nuscenes"),
        ("info", "mmdetection3d/data/scannet"),
    }
    warning = next(f for f in findings if f.level == WARNING)
    assert str(outside) in warning.hint and "container" in warning.hint
    symlinks: list[dict[str, str]] = info["symlinks"]  # type: ignore[assignment]
    assert [(s["path"], s["problem"]) for s in symlinks] == [
        (str(tree.data / "kitti"), "outside"), (str(tree.data / "nuscenes"), "dangling"),
    ]  # fmt: skip
    assert info["unknown"] == ["scannet"]
    (outside / "training" / "calib_link").symlink_to(tmp_path / "nothing")
    (outside / "training" / "planes").symlink_to(outside / "testing")  # within the dataset
    (outside / "ImageSets" / "extra").symlink_to(tmp_path / "elsewhere")
    info, findings = tree.check()
    assert (ERROR, "mmdetection3d/data/kitti/training/calib_link") in {
        (f.level, f.subject) for f in findings
    }
    warned = {f.subject for f in findings if f.level == WARNING}
    assert warned == {"mmdetection3d/data/kitti", "mmdetection3d/data/kitti/ImageSets/extra"}
    assert len(info["symlinks"]) == 4  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_huge_folder_is_never_listed(tree: Tree) -> None:
    """100 000 entries in training/velodyne: the check reads one of them, plus the sampled
    ids, and stays fast."""
    folder = kitti(tree.data / "kitti", ids=3)
    velodyne = folder / "training" / "velodyne"
    for number in range(3, 100_003):
        os.close(os.open(velodyne / f"{number:06d}.bin", os.O_CREAT | os.O_WRONLY, 0o644))
    _listed.clear()
    _listing[0] = True
    start = time.perf_counter()
    try:
        assert tree.problems() == []
    finally:
        took = time.perf_counter() - start
        _listing[0] = False
    assert took < 0.5, took
    # the huge folder is opened once (to see it is not empty: one entry read), never listed
    assert _listed.count(os.path.realpath(velodyne)) == 1, _listed


_listing = [False]
_listed: list[str] = []


def _audit(event: str, args: tuple[object, ...]) -> None:
    path = args[0] if _listing[0] and event == "os.scandir" and args else None
    if isinstance(path, str | bytes | os.PathLike):
        _listed.append(os.fsdecode(os.path.realpath(path)))


sys.addaudithook(_audit)  # hooks cannot be removed; this one records only while asked to

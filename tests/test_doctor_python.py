"""`doctor`'s Python section: version bounds read statically from sources in the real shape,
and fake interpreters (venvs holding fake dist-info folders) checked against them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmlab_bootstrap.output.findings import ERROR, INFO, OK, WARNING, Finding
from mmlab_bootstrap.pythonenv.interpreter import PythonError
from mmlab_bootstrap.pythonenv.mmcv_wheels import mmcv_index
from mmlab_bootstrap.pythonenv.packages import python_section
from mmlab_bootstrap.pythonenv.version_ranges import (
    Bound,
    Range,
    init_ranges,
    requirement_ranges,
    stricter,
    sub_project_ranges,
    version_key,
)

from .lib.fakepython import (
    MMDET3D_10_INIT,
    MMDET3D_10_MMINSTALL,
    MMDET3D_INIT,
    MMDET3D_MMINSTALL,
    MMDET_INIT,
    FakePython,
    sub_projects,
    write,
)


def ranges_text(ranges: list[Range]) -> dict[str, str]:
    return {found.package: found.text() for found in ranges}


def test_bounds_from_init_constants_in_the_real_shape() -> None:
    """`<pkg>_minimum_version`/`_maximum_version`, the maximum excluded by the `<` of
    mmengine's digit_version comparison (1.1+), included by the `<=` of 1.0's own one."""
    assert ranges_text(init_ranges(MMDET3D_INIT, "x")) == {
        "mmcv": ">=2.0.0rc4,<2.2.0", "mmengine": ">=0.8.0,<1.0.0", "mmdet": ">=3.0.0rc5,<3.4.0",
    }  # fmt: skip
    assert ranges_text(init_ranges(MMDET_INIT, "x")) == {
        "mmcv": ">=2.0.0rc4,<2.2.0", "mmengine": ">=0.7.1,<1.0.0",
    }  # fmt: skip
    assert ranges_text(init_ranges(MMDET3D_10_INIT, "x")) == {
        "mmcv": ">=1.5.2,<=1.7.0", "mmdet": ">=2.24.0,<=3.0.0",
    }  # fmt: skip
    assert init_ranges("this is ( not python", "x") == []


REAL = Path("/work/real/gh/open-mmlab/mmdetection3d.git")  # the mirror of the real repositories
RECORDED = "9556958fe1c6fe432d55a9f98781b8fdd90f4e9c"  # what the real superproject records


def bounds(text: str) -> dict[str, str]:
    return ranges_text(init_ranges(text, "x") or requirement_ranges(text, "x"))


@pytest.mark.skipif(not REAL.is_dir(), reason="no mirror of the real repositories here")
@pytest.mark.parametrize(
    ("commit", "init", "mminstall"),
    [("HEAD", MMDET3D_INIT, MMDET3D_MMINSTALL),
     (RECORDED, MMDET3D_10_INIT, MMDET3D_10_MMINSTALL)],
    ids=["1.4", "1.0.0rc4"],
)  # fmt: skip
def test_the_fixtures_are_the_real_sources(commit: str, init: str, mminstall: str) -> None:
    """The fixture sources give the bounds mmdetection3d's own give (1.0's also bounds mmseg,
    which doctor does not look at)."""
    for path, text in (("mmdet3d/__init__.py", init), ("requirements/mminstall.txt", mminstall)):
        real = subprocess.run(
            ["git", "-C", str(REAL), "show", f"{commit}:{path}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert bounds(text).items() <= bounds(real).items()
        assert set(bounds(real)) - set(bounds(text)) <= {"mmseg"}


def test_bounds_from_mminstall_lines_with_and_without_bounds() -> None:
    text = (
        "# a comment\n-r runtime.txt\nmmengine\nmmcv-full>=1.4.8,<=1.6.0\n"
        "mmdet >= 3.0.0 , < 3.3.0  # pinned\nmmdeploy==1.3.1\nnumpy; python_version<'3.8'\n"
    )
    assert ranges_text(requirement_ranges(text, "x")) == {
        "mmengine": "any version", "mmcv": ">=1.4.8,<=1.6.0", "mmdet": ">=3.0.0,<3.3.0",
        "mmdeploy": ">=1.3.1,<=1.3.1", "numpy": "any version",
    }  # fmt: skip
    assert ranges_text(requirement_ranges(MMDET3D_10_MMINSTALL, "x"))["mmcv"] == ">=1.4.8,<=1.6.0"


def test_disagreeing_sources_give_the_stricter_range(tmp_path: Path) -> None:
    """mmdetection3d's __init__.py says mmdet <3.4.0, its mminstall.txt <3.3.0."""
    sub_projects(tmp_path)
    mmdet = [r for r in sub_project_ranges(tmp_path, "mmdetection3d") if r.package == "mmdet"]
    assert sorted(r.text() for r in mmdet) == [">=3.0.0,<3.3.0", ">=3.0.0rc5,<3.4.0"]
    used = stricter(mmdet, "mmdet")
    assert used.text() == ">=3.0.0,<3.3.0"
    assert used.accepts("3.2.0") and used.accepts("3.3.0") is False
    assert used.accepts("3.0.0rc6") is False and used.accepts("nonsense") is None
    same = [Range("p", "a", upper=Bound("2.0", True)), Range("p", "b", upper=Bound("2.0", False))]
    assert stricter(same, "p").text() == "<2.0"


def test_versions_order_as_digit_version_does() -> None:
    ordered = [
        "1.7.0",
        "2.0.0rc1",
        "2.0.0rc4",
        "2.0.0",
        "2.0.0.post1",
        "2.0.1",
        "2.1",
        "2.1.2+cu118",
    ]
    keys = [version_key(v) or () for v in ordered]
    assert keys[:-1] == sorted(keys[:-1]) and keys[-1] == version_key("2.1.2")
    assert version_key("2.1") == version_key("2.1.0") and version_key("parrots") is None


@given(st.lists(st.integers(0, 40), min_size=1, max_size=4), st.integers(0, 9))
def test_a_pre_release_comes_before_its_release(release: list[int], rc: int) -> None:
    text = ".".join(map(str, release))
    assert version_key(f"{text}rc{rc}") < version_key(text)  # type: ignore[operator]


@pytest.fixture
def fake(tmp_path: Path) -> FakePython:
    return FakePython(tmp_path / "venv")


def section(
    extension: Path, fake: FakePython, projects: tuple[str, ...] = ("mmdetection3d",)
) -> tuple[dict[str, object], dict[str, list[Finding]]]:
    info, findings = python_section(extension, projects, str(fake.python), os.environ)
    by_subject: dict[str, list[Finding]] = {}
    for finding in findings:
        by_subject.setdefault(finding.subject, []).append(finding)
    return info, by_subject


def healthy_install(fake: FakePython, extension: Path) -> None:
    fake.install("torch", "2.1.2+cu118", cuda="11.8")
    fake.install("mmcv", "2.1.0")
    fake.install("mmengine", "0.10.3")
    fake.install("mmdet", "3.2.0", editable=extension / "mmdetection")
    fake.install("mmdet3d", "1.4.0", editable=extension / "mmdetection3d")


def test_a_healthy_environment_is_one_line_each(tmp_path: Path, fake: FakePython) -> None:
    """torch's CUDA is read from torch/version.py (its __init__ would fail if imported)."""
    extension = sub_projects(tmp_path / "ext")
    healthy_install(fake, extension)
    info, found = section(extension, fake)
    for package in ("torch", "mmcv", "mmengine", "mmdet", "mmdet3d"):
        assert [f.level for f in found[package]] == [OK], found[package]
    assert [f.level for f in found["mmdeploy"]] == [INFO]  # not needed by anything here
    assert found["torch"][0].text == "2.1.2+cu118 (CUDA 11.8)"
    mmdet = found["mmdet"][0].text
    assert "mmdetection3d/mmdet3d/__init__.py says >=3.0.0rc5,<3.4.0" in mmdet
    assert "mmdetection3d/requirements/mminstall.txt says >=3.0.0,<3.3.0" in mmdet
    assert "the stricter is used" in mmdet and "needs >=3.0.0,<3.3.0" in mmdet
    (wheels,) = found["mmcv wheels"]
    url = "https://download.openmmlab.com/mmcv/dist/cu118/torch2.1/index.html"
    assert wheels.level == INFO and f"-m pip install mmcv==2.1.0 -f {url}" in wheels.text
    assert info["torch_cuda"] == "11.8"
    assert info["packages"]["mmdet3d"]["editable"] is True  # type: ignore[index]


def test_versions_outside_the_range_are_errors(tmp_path: Path, fake: FakePython) -> None:
    extension = sub_projects(tmp_path / "ext")
    healthy_install(fake, extension)
    fake.uninstall("mmdet")
    fake.install("mmdet", "3.3.0", editable=extension / "mmdetection")
    _, found = section(extension, fake)
    (mmdet,) = found["mmdet"]
    assert mmdet.level == ERROR and mmdet.text.startswith("3.3.0 installed, outside >=3.0.0,<3.3.0")


def test_missing_packages_name_their_fix(tmp_path: Path, fake: FakePython) -> None:
    extension = sub_projects(tmp_path / "ext")
    _, found = section(extension, fake)
    assert {p: found[p][0].level for p in ("torch", "mmcv", "mmengine", "mmdet", "mmdet3d")} == {
        "torch": ERROR, "mmcv": ERROR, "mmengine": ERROR, "mmdet": ERROR, "mmdet3d": ERROR,
    }  # fmt: skip
    assert found["mmdet3d"][0].hint == (
        f"cd {extension / 'mmdetection3d'} && {fake.python} -m pip install -v -e ."
    )
    assert "mmcv wheels" not in found  # no torch: no pair to look up
    mim = f"{fake.python} -m pip install openmim && {fake.python} -m mim install"
    assert found["mmcv"][0].hint == f"{mim} 'mmcv>=2.0.0rc4,<2.2.0'"  # never a build from source
    write(extension / "mmdetection3d" / "mmdet3d" / "__init__.py", MMDET3D_10_INIT)
    write(extension / "mmdetection3d" / "requirements" / "mminstall.txt", MMDET3D_10_MMINSTALL)
    shutil.rmtree(extension / "mmdetection")
    _, found = section(extension, fake)
    assert found["mmcv"][0].hint == f"{mim} 'mmcv-full>=1.5.2,<=1.6.0'"  # mmcv 1.x's name


def test_an_editable_install_from_another_checkout_is_an_error(
    tmp_path: Path, fake: FakePython
) -> None:
    """The classic "edited the code, nothing changed"; a `setup.py develop` install too."""
    extension = sub_projects(tmp_path / "ext")
    other = sub_projects(tmp_path / "other")
    healthy_install(fake, extension)
    fake.uninstall("mmdet3d")
    fake.install("mmdet3d", "1.4.0", editable=other / "mmdetection3d")
    _, found = section(extension, fake)
    assert [f.level for f in found["mmdet3d"]] == [OK, ERROR]
    error = found["mmdet3d"][1]
    assert f"installed editable from {other / 'mmdetection3d'}" in error.text
    assert error.hint.startswith(f"cd {extension / 'mmdetection3d'} && ")
    fake.uninstall("mmdet3d")
    fake.install_develop("mmdet3d", "1.4.0", other / "mmdetection3d")
    _, found = section(extension, fake)
    assert [f.level for f in found["mmdet3d"]] == [OK, ERROR]
    fake.install_develop("mmdet3d", "1.4.0", extension / "mmdetection3d")
    _, found = section(extension, fake)
    assert [f.level for f in found["mmdet3d"]] == [OK]


def test_an_import_from_another_checkout_on_the_path_is_an_error(
    tmp_path: Path, fake: FakePython
) -> None:
    """PYTHONPATH leading to another checkout makes `import mmdet3d` load that one, whatever
    is installed: located with importlib.util.find_spec, never imported."""
    extension = sub_projects(tmp_path / "ext")
    other = sub_projects(tmp_path / "other")
    write(other / "mmdetection3d" / "mmdet3d" / "__init__.py", "raise SystemExit('imported')\n")
    healthy_install(fake, extension)
    environ = {**os.environ, "PYTHONPATH": str(other / "mmdetection3d")}
    info, findings = python_section(extension, ("mmdetection3d",), str(fake.python), environ)
    errors = [f for f in findings if f.level == ERROR]
    assert [(f.subject, f.text.split(",")[0]) for f in errors] == [
        ("mmdet3d", f"`import mmdet3d` loads it from {other / 'mmdetection3d'}")
    ]
    assert "PYTHONPATH" in errors[0].hint
    assert info["imports"]["mmdet3d"] == str(other / "mmdetection3d")  # type: ignore[index]
    environ["PYTHONPATH"] = str(extension / "mmdetection3d")  # this workspace's: fine
    _, findings = python_section(extension, ("mmdetection3d",), str(fake.python), environ)
    assert [f for f in findings if f.level == ERROR] == []


def test_an_installed_package_where_the_workspace_has_the_checkout_warns(
    tmp_path: Path, fake: FakePython
) -> None:
    extension = sub_projects(tmp_path / "ext")
    healthy_install(fake, extension)
    for stale in fake.site.glob("mmdet3d-*.dist-info"):
        (stale / "direct_url.json").unlink()
    _, found = section(extension, fake)
    assert [f.level for f in found["mmdet3d"]] == [OK, WARNING]
    assert "edits there change nothing" in found["mmdet3d"][1].text


def test_no_prebuilt_mmcv_wheel_warns_of_a_build_from_source(
    tmp_path: Path, fake: FakePython
) -> None:
    extension = sub_projects(tmp_path / "ext")
    healthy_install(fake, extension)
    for stale in fake.site.glob("torch-*.dist-info"):
        (stale / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.4.0\n")
    (fake.site / "torch" / "version.py").write_text("cuda = '12.1'\n")
    _, found = section(extension, fake)
    (wheels,) = found["mmcv wheels"]  # 12.1/2.4 has only mmcv 2.2.0, outside <2.2.0
    assert wheels.level == WARNING and "pip would build mmcv from source" in wheels.text
    assert mmcv_index("2.4.0", "12.1")[0].endswith("/cu121/torch2.4/index.html")
    assert mmcv_index("2.1.0", None)[0].endswith("/cpu/torch2.1/index.html")


def test_a_checkout_outside_what_another_sub_project_accepts_warns(
    tmp_path: Path, fake: FakePython
) -> None:
    """The real superproject records mmcv 1.6.1 beside an mmdetection3d that wants <=1.6.0."""
    extension = sub_projects(tmp_path / "ext", mmcv_version="2.2.0")
    healthy_install(fake, extension)
    _, found = section(extension, fake)
    assert [f.level for f in found["mmcv"]] == [OK, WARNING]
    assert "mmcv checkout is 2.2.0, outside >=2.0.0rc4,<2.2.0" in found["mmcv"][1].text


def test_cuda_home_and_nvcc_are_reported(tmp_path: Path, fake: FakePython) -> None:
    """`CUDA_HOME`'s nvcc (its release) beside torch's CUDA; another release warns."""
    extension = sub_projects(tmp_path / "ext")
    healthy_install(fake, extension)
    home = tmp_path / "cuda"
    nvcc = write(
        home / "bin" / "nvcc", "#!/bin/sh\necho 'Cuda compilation tools, release 11.8, V11.8.89'\n"
    )
    nvcc.chmod(0o755)
    environ = {**os.environ, "CUDA_HOME": str(home)}
    info, findings = python_section(extension, ("mmdetection3d",), str(fake.python), environ)
    assert info["cuda_toolkit"] == {
        "cuda_home": str(home),
        "nvcc": str(nvcc),
        "nvcc_release": "11.8",
        "nvcc_problem": None,
    }
    (cuda,) = [f for f in findings if f.subject == "cuda"]
    assert cuda.level == INFO and cuda.text == f"CUDA_HOME {home}; nvcc 11.8 ({nvcc})"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.1, V12.1.105'\n")
    _, findings = python_section(extension, ("mmdetection3d",), str(fake.python), environ)
    (cuda,) = [f for f in findings if f.subject == "cuda"]
    assert cuda.level == WARNING and "differs from torch's CUDA 11.8" in cuda.text


def test_a_relative_interpreter_path_is_taken_from_the_current_folder(
    tmp_path: Path, fake: FakePython, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(fake.folder)
    info, _ = python_section(tmp_path, (), os.path.join("bin", "python"), os.environ)
    assert info["interpreter"] == str(fake.python)


@pytest.mark.parametrize("kind", ["missing", "not on PATH", "folder", "text file"])
def test_something_that_is_not_an_interpreter_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    given = {
        "missing": str(tmp_path / "nothing" / "python"),
        "not on PATH": "python-that-does-not-exist",
        "folder": str(tmp_path),
        "text file": str(write(tmp_path / "notes.txt", "hello\n")),
    }[kind]
    with pytest.raises(PythonError) as raised:
        python_section(tmp_path, (), given, os.environ)
    assert "--python" in raised.value.message and "--python" in raised.value.hint


def test_a_program_that_is_no_python_is_one_finding(tmp_path: Path) -> None:
    script = write(tmp_path / "fake-python", "#!/bin/sh\necho not json\n")
    script.chmod(0o755)
    info, findings = python_section(tmp_path, (), str(script), os.environ)
    assert findings[0].level == ERROR and findings[0].subject == "python"
    assert "is not a Python interpreter this can ask" in findings[0].text
    assert "--python" in findings[0].hint and info["version"] is None

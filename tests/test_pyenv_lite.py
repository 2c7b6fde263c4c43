"""`MMLAB_MMCV_PACKAGE=mmcv-lite` (PyPI's mmcv 2.x without compiled ops, for when no prebuilt
mmcv wheel can be reached) and what the real-package trial (bench/pyenv_real_trial.py) found:
against stand-in wheels on 127.0.0.1 (a PyPI-shaped index with mmcv-lite wheels beside an
mmcv sdist that fails loudly, a PyTorch-style CPU index, no mmcv wheel page at all) and
mmdetection3d v1.4.0's shape."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.pythonenv.pages import Interpreter, page_wheels
from mmlab_bootstrap.pythonenv.pairs import choose_pair
from mmlab_bootstrap.pythonenv.plan import (
    OVERRIDES_FILE,
    PythonEnvError,
    plan_requirements,
)

from .conftest import assert_clean_error, inv
from .lib.ckptfixture import checkpoint, random_bytes, write_index
from .lib.fakepython import write
from .lib.httpserve import Faults, Served
from .lib.pyenvfixture import environ as pyenv_environ
from .lib.pyenvfixture import imported, loopback_only, served_indexes
from .lib.wheelfixture import (
    CP,
    MANYLINUX,
    PLATFORM,
    STANDIN_SETUPTOOLS,
    Indexes,
    failing_sdist,
    mmcv_lite_files,
    mmengine_files,
    package_files,
    page,
    rc4_workspace,
    torch_files,
    v14_workspace,
    wheel,
)

DEAD = "http://127.0.0.1:9/"  # nothing listens there: a page read from it fails at once
LITE_ENV = {"MMLAB_MMCV_PACKAGE": "mmcv-lite"}
LITE_MODULES = ("mmcv", "mmengine", "mmdet", "torch")  # (no mmseg, no numba)


def lite_indexes(folder: Path) -> Indexes:
    indexes = Indexes()
    native = f"{CP}-{CP}-{PLATFORM}"
    torch = wheel(folder, "torch", "2.1.0+cpu", torch_files("2.1.0+cpu", None), tag=native)
    indexes.simple("whl/cpu", [torch])
    on_pypi = f"{CP}-{CP}-{MANYLINUX}"
    mim = ("mmcv>=2.0.0rc4,<2.2.0 ; extra == 'mim'", "mmengine>=0.7.1,<1.0.0 ; extra == 'mim'")
    pypi = [
        wheel(folder, "mmcv-lite", "2.1.0", mmcv_lite_files("2.1.0"), tag=on_pypi),
        wheel(folder, "mmcv-lite", "2.2.0", mmcv_lite_files("2.2.0"), tag=on_pypi),
        failing_sdist(folder, "mmcv", "2.1.0"),  # as on PyPI: mmcv 2.x is sdist-only there
        wheel(folder, "mmengine", "0.10.7", mmengine_files("0.10.7")),
        wheel(folder, "mmdet", "3.2.0", package_files("mmdet", "3.2.0"), requires=mim),
        wheel(folder, "mmdet", "3.3.0", package_files("mmdet", "3.3.0"), requires=mim),
        # nuscenes-devkit's shape: its newest release caps a dependency at releases that have
        # only an sdist for this Python; an older one does not
        wheel(folder, "capper", "1.0", package_files("capper", "1.0"), requires=("plotlib",)),
        wheel(folder, "capper", "2.0", package_files("capper", "2.0"), requires=("plotlib<3",)),
        failing_sdist(folder, "plotlib", "2.0"),
        wheel(folder, "plotlib", "3.0", package_files("plotlib", "3.0")),
        wheel(folder, "setuptools", "65.5.0", STANDIN_SETUPTOOLS),
        wheel(folder, "wheel", "0.43.0", {"wheel/__init__.py": ""}),
    ]
    indexes.simple("simple", pypi)
    return indexes


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_indexes(lite_indexes(tmp_path_factory.mktemp("wheels"))) as served:
        yield served


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch, uv_offline=True)  # a user's uv setting: ignored by the tool


def environ(served: Served, **more: str) -> dict[str, str]:
    """CPU wheels; download.openmmlab.com blocked."""
    return pyenv_environ(served, cuda="cpu", mmcv_index=DEAD, **more)


@pytest.fixture
def ws(workspace: Path) -> Path:
    v14_workspace(workspace / "mmlab_extension")
    return workspace


def test_lite_builds_a_2x_environment_with_no_wheel_page(ws: Path, index: Served) -> None:
    """With the wheel pages unreachable, the default names both ways out; with mmcv-lite
    the environment is built from PyPI's wheels (no page read, the mmcv sdist never fetched,
    no `[mim]` extra pulling mmcv in), imports, and says the ops are not built; a re-run
    asks nothing; doctor reports the known state."""
    refused = inv(ws, "python-env", env=environ(index))
    assert_clean_error(refused, "127.0.0.1:9", "refused the connection")
    hint = refused.err.splitlines()[1]
    assert "MMLAB_MMCV_INDEX" in hint and "MMLAB_MMCV_PACKAGE=mmcv-lite" in hint
    assert not (ws / ".venvs").exists()

    env = environ(index, **LITE_ENV)
    built = inv(ws, "python-env", env=env)
    assert built.code == 0, built.out + built.err
    assert "cpu + torch 2.1: chosen: torch 2.1.0+cpu, mmcv-lite (no wheel page needed)" in built.out
    assert "imports torch, mmcv, mmengine, mmdet, mmdet3d in the new" in built.out
    assert "mmcv.ops: not built: mmcv-lite has no compiled ops" in built.out
    assert "doctor:" not in built.out + built.err
    lock = (ws / "python-env.mmdetection3d.cpu.lock.txt").read_text()
    assert "mmcv-lite==2.1.0 \\" in lock and "\nmmcv==" not in lock and "mmdet==3.2.0" in lock
    assert "# mmcv-page: \n" in lock
    assert not [r for r in index.requests if r.path.endswith(".tar.gz")]
    assert not [r for r in index.requests if "/mmcv/" in r.path and "simple/mmcv/" in r.path]
    found = imported(ws / ".venvs" / "mmdetection3d", LITE_MODULES, ops=False)
    assert (found["mmcv"], found["mmdet"], found["torch"]) == ("2.1.0", "3.2.0", "2.1.0+cpu")
    assert "_ext" in found["ops"]
    assert found["mmdet3d"] == str(ws / "mmlab_extension/mmdetection3d/mmdet3d/__init__.py")

    asked = len(index.requests)
    again = inv(ws, "python-env", env=env)
    assert again.code == 0 and "up to date" in again.out and len(index.requests) == asked

    doctor = inv(ws, "doctor", env=env)
    assert "mmcv.ops: not built: mmcv-lite has no compiled ops" in doctor.out, doctor.out
    assert "build mmcv from source" not in doctor.out + doctor.err
    assert "ok mmcv: 2.1.0" in doctor.out


def test_dry_lite_reads_no_wheel_page_and_changes_nothing(ws: Path, index: Served) -> None:
    run = inv(ws, "--dry", "python-env", env=environ(index, **LITE_ENV))
    assert run.code == 0, run.err
    assert (
        "mmdetection3d: mmcv-lite<2.2.0," in run.out and "MMLAB_MMCV_PACKAGE=mmcv-lite" in run.out
    )
    assert "mmdet<3.3.0" in run.out and "mmdet[mim]" not in run.out
    assert not (ws / ".venvs").exists() and not list(ws.glob("python-env.*.lock.txt"))


def test_switching_to_lite_resolves_again(ws: Path, index: Served) -> None:
    """The lock records what it was resolved from: MMLAB_MMCV_PACKAGE changes it."""
    env = environ(index, **LITE_ENV)
    assert inv(ws, "--dry", "python-env", env=env).code == 0
    found = plan_requirements(
        ws / "mmlab_extension", "mmdetection3d", ws / OVERRIDES_FILE, "mmcv-lite"
    )
    default = plan_requirements(ws / "mmlab_extension", "mmdetection3d", ws / OVERRIDES_FILE)
    assert found.series.mmcv == "mmcv-lite" and not found.series.compiled_ops
    assert default.series.mmcv == "mmcv" and default.series.compiled_ops
    assert found.line("mmcv-lite") is not None and found.line("mmcv") is None
    spec = found.specifier("mmcv-lite")
    assert spec.contains("2.1.0") and not spec.contains("2.2.0") and not spec.contains("1.7.2")
    lite_mmdet, default_mmdet = found.line("mmdet"), default.line("mmdet")
    assert lite_mmdet is not None and "[mim]" not in lite_mmdet.requirement
    assert default_mmdet is not None and "[mim]" in default_mmdet.requirement


@pytest.mark.parametrize("line", ["mmcv>=2.1  # the full one", "mmcv-full<2  # 1.x"])
def test_lite_refuses_an_override_naming_another_mmcv(tmp_path: Path, line: str) -> None:
    extension = v14_workspace(tmp_path / "ext")
    write(tmp_path / OVERRIDES_FILE, line + "\n")
    with pytest.raises(PythonEnvError) as raised:
        plan_requirements(extension, "mmdetection3d", tmp_path / OVERRIDES_FILE, "mmcv-lite")
    assert "must not hold" in raised.value.message


def test_lite_in_a_1x_workspace_is_refused(workspace: Path, index: Served) -> None:
    rc4_workspace(workspace / "mmlab_extension")
    run = inv(workspace, "python-env", env=environ(index, **LITE_ENV))
    assert_clean_error(run, "mmcv-lite", "mmcv 2.x only", "OpenMMLab 1.x", "1.6.1")
    assert "--mmcv-package auto" in run.err
    assert not (workspace / ".venvs").exists()
    assert not list(workspace.glob("python-env.*.lock.txt"))


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("mmcv", "must be auto or mmcv-lite"),
        ("mmcv-full", "must be auto or mmcv-lite"),
        ("MMCV-LITE", "must be auto or mmcv-lite"),
        ("mmcv_lite", "must be auto or mmcv-lite"),
        ("lite", "must be auto or mmcv-lite"),
        ("mmcv-lite ", "must be auto or mmcv-lite"),
        ("auto auto", "must be auto or mmcv-lite"),
        ("mmcv\u2010lite", "must be auto or mmcv-lite"),  # a Unicode hyphen
        ("-x", "must be auto or mmcv-lite"),
        ("auto;rm -rf /", "must be auto or mmcv-lite"),
        ("mmcv-lite\n", "contains"),
        ("auto\x00", "contains"),
        ("", "is empty"),
    ],
)
def test_bad_mmcv_package_values_are_refused(
    ws: Path, index: Served, value: str, said: str
) -> None:
    """A flag value, as a user types it: one error naming the variable, nothing changed."""
    before = sorted(p.name for p in ws.iterdir())
    run = inv(ws, "python-env", "--mmcv-package", value, env=environ(index))
    assert_clean_error(run, "MMLAB_MMCV_PACKAGE", said)
    assert sorted(p.name for p in ws.iterdir()) == before


def test_a_bad_value_in_the_environment_is_refused(ws: Path, index: Served) -> None:
    run = inv(ws, "python-env", env=environ(index, MMLAB_MMCV_PACKAGE="mmcv-ful"))
    assert_clean_error(run, "MMLAB_MMCV_PACKAGE (from environment)", "mmcv-ful")
    assert "unset MMLAB_MMCV_PACKAGE" in run.err or "--mmcv-package" in run.err


def test_a_page_without_the_version_names_both_ways_out() -> None:
    """The mmcv page is there but lists no mmcv 2.x in range for this Python: the hint names
    the mirror variable and mmcv-lite (a 1.x workspace's hint does not: no lite there)."""
    python = Interpreter(sys.executable, 3, 11, "x86_64", "linux")
    torch_page = page("torch", [("torch-2.1.0%2Bcpu-cp311-cp311-linux_x86_64.whl", "t")])
    mmcv_page = page("mmcv", [("mmcv-2.0.0-cp38-cp38-manylinux1_x86_64.whl", "m")])

    def read(url: str) -> str | None:
        if url.endswith("/torch/"):
            return torch_page.decode()
        return mmcv_page.decode() if url.endswith("torch2.1/index.html") else None

    for name, lite in (("mmcv", True), ("mmcv-full", False)):
        with pytest.raises(PythonEnvError) as raised:
            choose_pair(
                ("cpu",),
                torch_spec=SpecifierSet(),
                mmcv_name=name,
                mmcv_spec=SpecifierSet(">=2.1" if lite else "<2"),
                interpreter=python,
                read=read,
                torch_base="http://mirror/whl/",
                mmcv_base="http://mirror/",
            )
        assert "MMLAB_MMCV_INDEX" in raised.value.hint or "MMLAB_PYTHON" in raised.value.hint
        assert ("MMLAB_MMCV_PACKAGE=mmcv-lite" in raised.value.hint) is lite, raised.value.hint
    assert page_wheels(torch_page.decode(), "http://mirror/whl/cpu/torch/")


def test_wheels_first_avoids_a_source_build(ws: Path, index: Served) -> None:
    """capper 2.0 caps plotlib below its first wheel (nuscenes-devkit 1.1.11 and matplotlib
    <3.6 on CPython 3.11): the lock takes capper 1.0 and plotlib's wheel, and no sdist is
    fetched, where a plain resolution pinned the sdist for `sync` to build."""
    write(ws / "mmlab_extension" / "mmdetection3d" / "requirements" / "runtime.txt", "capper\n")
    asked = len(index.requests)
    run = inv(ws, "python-env", env=environ(index, **LITE_ENV))
    assert run.code == 0, run.out + run.err
    lock = (ws / "python-env.mmdetection3d.cpu.lock.txt").read_text()
    assert "capper==1.0 \\" in lock and "plotlib==3.0 \\" in lock, lock
    assert "no resolution from wheels alone" not in run.out + run.err
    assert not [r for r in index.requests[asked:] if r.path.endswith(".tar.gz")]


def test_verify_says_lite_has_no_ops_and_does_not_run_the_demo(workspace: Path) -> None:
    """`inv verify` on an mmcv-lite environment: the compiled-ops layer is a known state (not
    a failure); the demo, whose model needs the ops, is not run and says why."""
    venv = workspace / "trainenv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python*/site-packages")
    write(site / "torch" / "__init__.py", "__version__ = '2.1.0'\nclass cuda:\n"
          "    is_available = staticmethod(lambda: False)\n")  # fmt: skip
    for path, text in mmcv_lite_files("2.1.0").items():
        write(site / path, text)
    write(site / "mmcv_lite-2.1.0.dist-info" / "METADATA", "Name: mmcv-lite\nVersion: 2.1.0\n")
    write(site / "mmdet" / "__init__.py", "__version__ = '3.2.0'\n")
    write(site / "mmdet3d" / "__init__.py", "__version__ = '1.4.0'\n")
    write(site / "mmdet3d" / "apis.py", "raise SystemExit('THE DEMO RAN')\n")
    model = "hv_pointpillars_secfpn_6x8_160e_kitti-3d-car"
    project = workspace / "mmlab_extension" / "mmdetection3d"
    car = checkpoint("mmdetection3d", model, random_bytes(2000), stem=model)
    write_index(project, [car])
    write(project / car.config, "model = dict(type='VoxelNet')\n")
    write(project / "demo" / "pcd_demo.py", "import mmdet3d.apis\n")
    write(project / "demo" / "data" / "kitti" / "kitti_000008.bin", "\0" * 64)
    final = workspace / "mmlab_checkpoints" / "mmdetection3d" / "checkpoints" / car.file_name
    final.parent.mkdir(parents=True)
    final.write_bytes(car.data)
    ckptstore.write_record(final, hashlib.sha256(car.data).hexdigest(), car.url)

    run = inv(workspace, "verify", "--python", str(venv / "bin" / "python"))
    assert run.code == 1, run.out + run.err
    assert "compiled ops: not built: mmcv-lite has no compiled ops" in run.out
    demo = next(line for line in run.lines if line.startswith("demo: "))
    assert "not run" in demo and "needs mmcv's compiled ops" in demo, run.out
    assert "THE DEMO RAN" not in run.out + run.err
    assert "--mmcv-package auto" in run.out
    record = json.loads((workspace / ".mmlab-bootstrap-verify.json").read_text())
    states = {entry["layer"]: entry["ok"] for entry in record["layers"]}
    assert states == {
        "interpreter": True, "imports": True, "compiled ops": True, "checkpoint": True,
        "demo": False,
    }  # fmt: skip


def test_an_index_that_lists_a_file_it_does_not_serve_is_named(ws: Path, index: Served) -> None:
    """The trial's first break: a torch index that lists its wheel but refuses to serve it
    (there, a mirror without HEAD) is the index's fault, said as such, not a conflict."""
    torch_file = next(path for path in index.files if path.startswith("whl/cpu/files/torch-"))
    index.faults[torch_file] = Faults(always=404)
    try:
        run = inv(ws, "python-env", env=environ(index, **LITE_ENV))
    finally:
        del index.faults[torch_file]
    assert_clean_error(run, "resolving mmdetection3d's environment", "404")
    hint = run.err.splitlines()[1]
    assert "MMLAB_TORCH_INDEX" in hint and "HEAD" in hint and "loosen" not in hint
    assert not (ws / ".venvs").exists() and not list(ws.glob("python-env.*.lock.txt"))


def test_lite_pair_reads_no_mmcv_page_and_takes_the_newest_torch() -> None:
    python = Interpreter(sys.executable, 3, 11, "x86_64", "linux")
    links = [(f"torch-{v}%2Bcpu-cp311-cp311-linux_x86_64.whl", v) for v in ("2.1.0", "2.4.1")]
    asked: list[str] = []

    def read(url: str) -> str | None:
        asked.append(url)
        return page("torch", links).decode() if url.endswith("/cpu/torch/") else None

    def no_page(url: str) -> str | None:
        raise AssertionError(f"an mmcv page was read: {url}")

    pair = choose_pair(
        ("cpu",),
        torch_spec=SpecifierSet(),
        mmcv_name="mmcv-lite",
        mmcv_spec=SpecifierSet("<2.2.0"),
        interpreter=python,
        read=read,
        torch_base="http://mirror/whl/",
        mmcv_base="http://blocked/",
        read_mmcv=no_page,
    )
    assert (str(pair.torch), pair.mmcv, pair.mmcv_page) == ("2.4.1+cpu", None, None)
    assert asked == ["http://mirror/whl/cpu/torch/"]
    with pytest.raises(PythonEnvError) as raised:
        choose_pair(
            ("cpu",),
            torch_spec=SpecifierSet("<2"),
            mmcv_name="mmcv-lite",
            mmcv_spec=SpecifierSet(),
            interpreter=python,
            read=read,
            torch_base="http://mirror/whl/",
            mmcv_base="http://blocked/",
            read_mmcv=no_page,
        )
    assert (
        raised.value.message
        == "no torch to install beside mmcv-lite: cpu: no torch <2 for Python 3.11"
    )
    assert "MMLAB_TORCH_INDEX" in raised.value.hint

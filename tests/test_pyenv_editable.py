"""`inv python-env`'s kept editable wheels (pythonenv.editable): a rebuild of a venv from the
lock runs the checkout's setup.py zero times, the install is still editable, whatever can
change the wheel builds it again, and a damaged or planted entry is refused and rebuilt."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmlab_bootstrap.pythonenv.editable import (
    CACHE_FOLDER,
    WHEEL_LIMIT,
    WheelRefused,
    checked_wheel,
    lock_pins,
    plan_editable,
)
from mmlab_bootstrap.pythonenv.pages import Interpreter

from .conftest import inv
from .lib.fakepython import write
from .lib.gitfixture import git
from .lib.httpserve import Served
from .lib.pyenvfixture import (
    OVERRIDE,
    environ,
    loopback_only,
    python_env_until,
    rc4,
    served_indexes,
    stand_in_indexes,
)

# mmdet3d's shape: imports torch; every run appends a line to a file beside the workspace.
COUNTING_SETUP_PY = """\
import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
from setuptools import find_packages, setup

with open({runs!r}, "a") as runs:
    runs.write("run\\n")
setup(name='mmdet3d', version={version!r}, packages=find_packages())
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_indexes(stand_in_indexes(tmp_path_factory.mktemp("wheels"))) as served:
        yield served


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch)


class Checkout:
    def __init__(self, ws: Path) -> None:
        self.ws = ws
        self.path = ws / "mmlab_extension" / "mmdetection3d"
        self.runs_file = ws.parent / "setup-runs.txt"
        self.venv = ws / ".venvs" / "mmdetection3d"
        self.cache = ws / CACHE_FOLDER

    def setup_py(self, version: str = "1.0.0rc4") -> None:
        write(
            self.path / "setup.py",
            COUNTING_SETUP_PY.format(runs=str(self.runs_file), version=version),
        )

    def commit(self, message: str = "a commit") -> None:
        git("add", "-A", cwd=self.path)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)

    @property
    def runs(self) -> int:
        return len(self.runs_file.read_text().splitlines()) if self.runs_file.exists() else 0

    def entries(self) -> list[Path]:
        if not self.cache.is_dir():
            return []
        return sorted(p for p in self.cache.iterdir() if not p.name.startswith("."))

    def python(self, script: str) -> str:
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-I", "-c", script],
            capture_output=True,
            check=True,
            cwd=self.ws.parent,
        )
        return done.stdout.decode().strip()


@pytest.fixture
def checkout(workspace: Path) -> Checkout:
    rc4(workspace, overrides=OVERRIDE)
    found = Checkout(workspace)
    found.setup_py()
    write(found.path / ".gitignore", "__pycache__/\n*.egg-info/\n")  # (as the real one)
    git("init", "-q", cwd=found.path)
    found.commit("the checkout")
    return found


def build(checkout: Checkout, index: Served, *args: str, **more: str) -> str:
    run = inv(checkout.ws, *args, "python-env", env={**environ(index), **more})
    assert run.code == 0, run.out + run.err
    return run.out + run.err


def rebuild(checkout: Checkout, index: Served, **more: str) -> str:
    shutil.rmtree(checkout.venv)
    return build(checkout, index, **more)


def test_a_rebuild_from_the_lock_runs_no_setup_py(checkout: Checkout, index: Served) -> None:
    """The first build runs setup.py once (uv's `-e` ran it twice) and keeps the wheel; a
    rebuild runs it zero times; the install is editable (an edit shows without reinstall;
    uv lists it as editable, with uv's own direct_url.json)."""
    said = build(checkout, index)
    assert checkout.runs == 1, said
    assert len(checkout.entries()) == 1
    shutil.rmtree(checkout.ws / ".venvs")  # all the venvs: the kept wheels are elsewhere
    said = build(checkout, index)
    assert checkout.runs == 1, said
    assert "no setup.py run" in said
    assert checkout.python("import mmdet3d; print(mmdet3d.__file__)") == str(
        checkout.path / "mmdet3d" / "__init__.py"
    )
    write(checkout.path / "mmdet3d" / "edited.py", "SHOWN = 'yes'\n")
    assert checkout.python("from mmdet3d.edited import SHOWN; print(SHOWN)") == "yes"

    site = next(checkout.venv.glob("lib/python*/site-packages"))
    info = site / "mmdet3d-1.0.0rc4.dist-info"
    url = json.loads((info / "direct_url.json").read_text())
    assert url == {"url": checkout.path.as_uri(), "dir_info": {"editable": True}}
    listed = subprocess.run(
        [_uv(), "pip", "list", "--no-config", "--editable", "--format", "json",
         "--python", str(checkout.venv / "bin" / "python")],
        capture_output=True, check=True,
    )  # fmt: skip
    editables = json.loads(listed.stdout)
    assert [(e["name"], e.get("editable_project_location")) for e in editables] == [
        ("mmdet3d", str(checkout.path))
    ]
    doctor = json.loads(inv(checkout.ws, "doctor", "--json", env=environ(index)).out)
    assert doctor["python"]["packages"]["mmdet3d"]["editable"] is True


def _uv() -> str:
    import uv

    return str(uv.find_uv_bin())


def _new_commit(checkout: Checkout) -> None:
    checkout.setup_py(version="1.0.0rc5")
    checkout.commit("a new version")


def _new_empty_commit(checkout: Checkout) -> None:
    checkout.commit("nothing changed but HEAD")


CHANGES: dict[str, Callable[[Checkout], None]] = {
    "setup.py changed and committed": _new_commit,
    "a new commit": _new_empty_commit,
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_a_new_commit_builds_again(checkout: Checkout, index: Served, change: str) -> None:
    build(checkout, index)
    CHANGES[change](checkout)
    said = rebuild(checkout, index)
    assert checkout.runs == 2, said
    assert len(checkout.entries()) == 1  # the older entry of this checkout is replaced
    version = checkout.python("import importlib.metadata as m; print(m.version('mmdet3d'))")
    assert version == ("1.0.0rc5" if change.startswith("setup.py") else "1.0.0rc4")
    said = rebuild(checkout, index)
    assert checkout.runs == 2, said


def test_a_dirty_checkout_is_built_every_time_and_never_kept(
    checkout: Checkout, index: Served
) -> None:
    build(checkout, index)
    kept = checkout.entries()
    checkout.setup_py(version="1.0.0rc6")  # not committed
    shutil.rmtree(checkout.venv)
    dry = inv(checkout.ws, "--dry", "python-env", env=environ(index))
    assert "uncommitted changes or untracked files" in dry.out, dry.out
    said = build(checkout, index)
    assert checkout.runs == 2 and "uncommitted changes" in said
    assert checkout.entries() == kept
    assert checkout.python("import importlib.metadata as m; print(m.version('mmdet3d'))") == (
        "1.0.0rc6"
    )
    rebuild(checkout, index)
    assert checkout.runs == 3
    write(checkout.path / "notes.txt", "an untracked file\n")
    git("checkout", "--", "setup.py", cwd=checkout.path)
    rebuild(checkout, index)
    assert checkout.runs == 4
    shutil.rmtree(checkout.path / ".git")  # files alone (no repository): never kept either
    said = rebuild(checkout, index)
    assert checkout.runs == 5 and "not a git checkout of its own" in said
    assert checkout.entries() == kept


def test_another_interpreter_builds_again(
    checkout: Checkout, index: Served, tmp_path: Path
) -> None:
    build(checkout, index)
    other = tmp_path / "bin" / "python3"
    other.parent.mkdir()
    other.symlink_to(sys.executable)
    build(checkout, index, MMLAB_PYTHON=str(other))  # the marker names the interpreter
    assert checkout.runs == 2
    assert len(checkout.entries()) == 1


def test_setuptools_and_the_interpreter_are_in_the_key(checkout: Checkout) -> None:
    from mmlab_bootstrap.git import Git
    from mmlab_bootstrap.output import Reporter

    git_ = Git(Reporter())
    python = Interpreter(sys.executable, 3, 11, "x86_64", "linux")
    keys = {
        plan_editable(git_, checkout.path, python, {"setuptools": "65.5.0"}).key,
        plan_editable(git_, checkout.path, python, {"setuptools": "82.0.0"}).key,
        plan_editable(git_, checkout.path, python, {"setuptools": "65.5.0", "wheel": "1"}).key,
        plan_editable(
            git_, checkout.path, Interpreter(sys.executable, 3, 10, "x86_64", "linux"), {}
        ).key,
    }
    assert len(keys) == 4 and None not in keys
    assert lock_pins("setuptools==65.5.0 \\\n    --hash=sha256:ab\nWheel==0.43.0 \\\n") == {
        "setuptools": "65.5.0",
        "wheel": "0.43.0",
    }


def _zip(files: dict[str, str]) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return data.getvalue()


def _planted_code(entry: Path) -> None:
    """The kept wheel with a .pth changed (code that would run at every start)."""
    with zipfile.ZipFile(entry) as archive:
        files = {n: archive.read(n).decode() for n in archive.namelist()}
    pth = next(n for n in files if n.endswith(".pth"))
    files[pth] = "import sys; print('PLANTED-RAN')\n"
    entry.write_bytes(_zip(files))


def _other_name(entry: Path) -> None:
    with zipfile.ZipFile(entry) as archive:
        files = {
            n.replace("mmdet3d-1.0.0rc4.dist-info", "evil-1.0.dist-info"): archive.read(n).decode()
            for n in archive.namelist()
        }
    entry.write_bytes(_zip(files))


def _symlink(entry: Path) -> None:
    elsewhere = entry.parent.parent.parent / "elsewhere.whl"
    shutil.copy(entry, elsewhere)
    entry.unlink()
    entry.symlink_to(elsewhere)


def _fifo(entry: Path) -> None:
    entry.unlink()
    os.mkfifo(entry)


def _huge(entry: Path) -> None:
    with open(entry, "r+b") as handle:
        handle.truncate(WHEEL_LIMIT + 1)


def _not_a_zip(entry: Path) -> None:
    entry.write_bytes(b"not a zip at all\n" * 10)


def _cut_short(entry: Path) -> None:
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2])


def _outside(entry: Path) -> None:
    with zipfile.ZipFile(entry) as archive:
        files = {n: archive.read(n).decode() for n in archive.namelist()}
    files["../../escape.py"] = "x = 1\n"
    entry.write_bytes(_zip(files))


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "a symlink": (_symlink, "symlink"),
    "a FIFO": (_fifo, "FIFO"),
    "huge": (_huge, "more than"),
    "not a zip": (_not_a_zip, "not a readable zip"),
    "cut short": (_cut_short, "not a readable zip"),
    "a .pth changed": (_planted_code, "does not match its RECORD line"),
    "another name inside": (_other_name, "a second dist-info folder"),
    "a member outside": (_outside, "a member outside the wheel"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_damaged_or_planted_entry_is_refused_and_built_again(
    checkout: Checkout, index: Served, case: str
) -> None:
    build(checkout, index)
    [entry] = checkout.entries()
    spoil, reason = HOSTILE[case]
    spoil(entry)
    said = rebuild(checkout, index)
    assert said.count("not a usable editable wheel") == 1 and reason in said, said
    assert checkout.runs == 2
    [again] = checkout.entries()
    assert again.name == entry.name and again.is_file() and not again.is_symlink()
    checked_wheel(again, again.name.split(".", 1)[1])  # whole again
    assert checkout.python("import mmdet3d; print(mmdet3d.__file__)") == str(
        checkout.path / "mmdet3d" / "__init__.py"
    )  # (and nothing planted ran)


def test_a_folder_in_an_entry_s_place_is_left_alone(checkout: Checkout, index: Served) -> None:
    build(checkout, index)
    [entry] = checkout.entries()
    entry.unlink()
    write(entry / "precious.txt", "the user's\n")
    said = rebuild(checkout, index)
    assert "not a usable editable wheel" in said and checkout.runs == 2
    assert (entry / "precious.txt").read_text() == "the user's\n"


def test_checked_wheel_refuses_a_name_that_is_no_wheel(tmp_path: Path) -> None:
    write(tmp_path / "x", "")
    with pytest.raises(WheelRefused, match="not a wheel's name"):
        checked_wheel(tmp_path / "x", "../x.whl")


def test_dry_writes_no_entry_and_says_where_the_wheel_comes_from(
    checkout: Checkout, index: Served
) -> None:
    build(checkout, index)
    shutil.rmtree(checkout.cache)
    shutil.rmtree(checkout.venv)
    dry = inv(checkout.ws, "--dry", "python-env", env=environ(index))
    assert dry.code == 0 and "built, then kept in" in dry.out, dry.out
    assert not checkout.cache.exists() and checkout.runs == 1
    build(checkout, index)
    shutil.rmtree(checkout.venv)
    dry = inv(checkout.ws, "--dry", "python-env", env=environ(index))
    assert "from the kept wheel" in dry.out, dry.out
    assert not checkout.venv.exists() and checkout.runs == 2


def test_a_checkout_with_a_pyproject_is_left_to_uv(checkout: Checkout, index: Served) -> None:
    write(checkout.path / "pyproject.toml", "[project]\nname = 'x'\n")
    checkout.commit("a pyproject")
    said = build(checkout, index, "--dry")
    assert "it has a pyproject.toml: installed by uv" in said
    write(checkout.path / "pyproject.toml", "")  # (uv then uses setuptools' legacy backend)
    checkout.commit("an empty pyproject")
    build(checkout, index)
    first = checkout.runs
    rebuild(checkout, index)  # uv's `-e` again: built every time, nothing kept
    assert checkout.runs == 2 * first and checkout.entries() == []
    assert checkout.python("import mmdet3d; print(mmdet3d.__file__)").startswith(str(checkout.path))


def test_a_kill_mid_write_is_finished_by_the_next_run(
    checkout: Checkout, index: Served, tmp_path: Path
) -> None:
    """A run killed while the wheel is built leaves no entry; a temporary of a killed write
    is removed; the next run builds and keeps the wheel."""
    gate = tmp_path / "gate"
    env = {**os.environ, **environ(index), "STANDIN_BUILD_WAIT": str(gate)}
    with python_env_until(checkout.ws, env, Path(f"{gate}.started")):
        pass  # killed there
    assert checkout.entries() == []
    leftover = checkout.cache / ".0123456789abcdef0123456789abcdef.x.whl.tmp-0badc0de"
    write(leftover, "half a wheel")
    said = build(checkout, index)
    assert not leftover.exists() and "left by an interrupted run" in said
    assert len(checkout.entries()) == 1
    said = rebuild(checkout, index)
    assert "no setup.py run" in said


@pytest.mark.parametrize("kind", ["a symlink", "a file"])
def test_a_cache_folder_that_is_not_a_folder_is_not_used(
    checkout: Checkout, index: Served, tmp_path: Path, kind: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "a symlink":
        checkout.cache.symlink_to(elsewhere)
    else:
        write(checkout.cache, "the user's\n")
    said = build(checkout, index)
    assert said.count("editable wheels are neither read from it nor kept there") == 1, said
    rebuild(checkout, index)
    assert checkout.runs == 2 and list(elsewhere.iterdir()) == []
    if kind == "a file":
        assert checkout.cache.read_text() == "the user's\n"

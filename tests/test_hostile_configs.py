"""Hostile configs named to `fetch-checkpoints --config`, read by the training interpreter's
loader (the stand-in of `tests/lib/fakemmcv`) and statically: each ends with one clear
`error:` and `hint:` (or reads what it can), never a traceback, never a hang, nothing written
outside the workspace, and the same outcome with either reader."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import inv
from .lib.ckptfixture import checkpoint, write_index
from .lib.fakemmcv import training_env
from .lib.fakepython import write

Make = Callable[[Path], str]  # makes the config under the folder given; the --config text


def listing(folder: Path) -> list[tuple[str, int, int, int]]:
    """Each entry under `folder` (its type, size and mtime; never opened: a FIFO is there)."""
    found = []
    for where, dirs, files in os.walk(folder):
        for name in dirs + files:
            seen = os.lstat(os.path.join(where, name))
            found.append((os.path.join(where, name), seen.st_mode, seen.st_size, seen.st_mtime_ns))
    return sorted(found)


def _text(name: str, text: str) -> Make:
    def make(folder: Path) -> str:
        write(folder / name, text)
        return str(folder / name)

    return make


def _fifo_link(folder: Path) -> str:
    os.mkfifo(folder / "fifo")
    (folder / "fifo.py").symlink_to("fifo")
    return str(folder / "fifo.py")


def _folder(folder: Path) -> str:
    (folder / "dir.py").mkdir()
    return str(folder / "dir.py")


def _cycle(folder: Path) -> str:
    write(folder / "a.py", "_base_ = ['b.py']\nx = 1\n")
    write(folder / "b.py", "_base_ = ['a.py']\ny = 2\n")
    return str(folder / "a.py")


def _base_fifo(folder: Path) -> str:
    os.mkfifo(folder / "pipe.py")
    write(folder / "c.py", "_base_ = './pipe.py'\n")
    return str(folder / "c.py")


def _big(folder: Path) -> str:
    write(folder / "big.py", "load_from = None\n" + "x = 1\n" * ((1 << 20) // 6 + 1))
    return str(folder / "big.py")


def _big_base(folder: Path) -> str:
    write(folder / "big.py", "x = 1\n" * ((1 << 20) // 6 + 1))
    write(folder / "c.py", "_base_ = 'big.py'\n")
    return str(folder / "c.py")


def _not_utf8_name(folder: Path) -> str:
    name = os.fsdecode(b"\xff.py")
    write(folder / name, "load_from = None\n")
    return str(folder / name)


def _relative_outside(folder: Path) -> str:
    write(folder / "rel.py", "load_from = None\n")
    return os.path.relpath(folder / "rel.py", folder.parent / "ws" / "mmlab_extension")


OK, FAILS = 0, 1
CAR = checkpoint("mmdetection3d", "pointpillars_car", b"car" * 100)
CASES = [
    pytest.param(_fifo_link, FAILS, "is a FIFO (named pipe), not a regular file", id="fifo-link"),
    pytest.param(_folder, FAILS, "is a folder, not a regular file", id="a-folder"),
    pytest.param(_cycle, FAILS, "is its own base (a.py -> b.py -> a.py)", id="base-cycle"),
    pytest.param(
        _text("p.py", "_base_ = '/etc/passwd'\n"), OK, "is not a .py config; not read", id="passwd"
    ),
    pytest.param(
        _text("z.py", "_base_ = '/dev/zero'\n"), OK, "is not a .py config; not read", id="dev-zero"
    ),
    pytest.param(
        _text("u.py", "_base_ = 'http://127.0.0.1:1/x.py'\n"), FAILS, "is a URL", id="url-base"
    ),
    pytest.param(_base_fifo, FAILS, "FIFO (named pipe), not a regular file", id="base-fifo"),
    pytest.param(_big, FAILS, "holds more than 1048576 bytes", id="over-1-MiB"),
    pytest.param(_big_base, FAILS, "holds more than 1048576 bytes", id="base-over-1-MiB"),
    pytest.param(
        _text("e.py", "import os\nfor i in range(1000):\n    os.environ.get(f'V{i}')\n"),
        OK,
        "",
        id="1000-variables",
    ),
    pytest.param(_not_utf8_name, OK, "", id="not-utf8-name"),
    pytest.param(_relative_outside, OK, "", id="relative-outside"),
    pytest.param(
        _text(
            "o.py",
            f"load_from = '/nowhere-writable/mmdetection3d/checkpoints/{CAR.file_name}'\n",
        ),
        FAILS,
        "outside the workspace and the storage roots: not written",
        id="load-from-outside",
    ),
]


@pytest.mark.parametrize("loader", [True, False], ids=["loader", "static"])
@pytest.mark.parametrize(("make", "code", "says"), CASES)
def test_a_hostile_config(
    workspace: Path, tmp_path: Path, loader: bool, make: Make, code: int, says: str
) -> None:
    write_index(
        workspace / "mmlab_extension" / "mmdetection3d",
        [CAR],
    )
    if loader:
        training_env(workspace / ".venvs" / "mmdetection3d")
    outside = tmp_path / "configs"
    outside.mkdir()
    name = make(outside)
    before = listing(outside)
    dry = inv(workspace, "--dry", "fetch-checkpoints", "--config", name)
    run = inv(workspace, "fetch-checkpoints", "--config", name)
    for done in (dry, run):
        assert "Traceback" not in done.err
        if code == FAILS:  # one error and one hint, after warnings (the loader's, the weights')
            lines = done.err.splitlines()
            assert done.code == 1 and len(lines) >= 2, done.err
            assert all(line.startswith("warning: ") for line in lines[:-2]), done.err
            assert lines[-2].startswith("error: ") and lines[-1].startswith("hint: "), done.err
            assert says in done.err, done.err
            warned = [line for line in lines if " statically: " in line]
            assert len(warned) <= (1 if loader else 0), done.err
        else:
            assert done.code == 0, done.out + done.err
            assert says in done.err
    assert listing(outside) == before
    assert not os.path.lexists("/nowhere-writable")
    if name.endswith("/e.py") and loader:
        assert "V0, V1, V2, V3, V4 and 995 more" in run.err  # one line, not a thousand names


@pytest.mark.parametrize("make", [_fifo_link, _folder], ids=["fifo-link", "a-folder"])
def test_mmlab_checkpoints_naming_what_is_not_a_config(
    workspace: Path, tmp_path: Path, make: Make
) -> None:
    """Found trying it: naming it in MMLAB_CHECKPOINTS made `status` and `doctor` end with the
    error instead of naming it; `fetch-checkpoints` names what it is."""
    write_index(workspace / "mmlab_extension" / "mmdetection3d", [CAR])
    outside = tmp_path / "configs"
    outside.mkdir()
    env = {"MMLAB_CHECKPOINTS": make(outside)}
    fetch = inv(workspace, "fetch-checkpoints", env=env)
    assert fetch.code == 1 and "not a regular file" in fetch.err, fetch.err
    assert fetch.err.splitlines()[-2].startswith("error: ")
    for task in ("status", "doctor"):
        run = inv(workspace, task, env=env)
        assert "error:" not in run.err and "Traceback" not in run.err, run.err
        assert env["MMLAB_CHECKPOINTS"] in run.out, run.out

"""One loader run per command, none for a command that changes nothing: the training
interpreter's answers about configs are kept (in the process and beside `.env`) with what they
depend on (the interpreter, every file the load opened, the variables it read) and used again
only while all of it is unchanged. `env` reads the configs as `fetch-checkpoints` does.

The training interpreter is the stand-in of `tests/lib/fakemmcv` whose `mmcv` appends a line to
the file `LOADER_STARTS` names each time it is imported: once per loader run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints import configcache

from .conftest import Cloned, inv, snapshot
from .lib.fakemmcv import training_env
from .lib.fakepython import write

CONFIG = "mmdetection3d/configs/cached/cached.py"
CACHE = ".mmlab-bootstrap-configs.json"
BASE = "model = dict(type='VoxelNet')\n"
COUNTING = (
    "\nif 'LOADER_STARTS' in os.environ:\n"
    "    with open(os.environ['LOADER_STARTS'], 'a') as _starts:\n"
    "        _starts.write('started\\n')\n"
)


class Workspace:
    """A cloned workspace whose MMLAB_CHECKPOINTS names one config (with a `_base_` file),
    and a counting training environment."""

    def __init__(self, cloned: Cloned) -> None:
        self.root = cloned.root
        self.config = cloned.ext / CONFIG
        self.base = cloned.ext / "mmdetection3d/configs/cached/base.py"
        write(self.base, BASE)
        write(self.config, "_base_ = './base.py'\nimport os\nroot = os.environ.get('ODD_ROOT')\n")
        self.starts = self.root.parent / "loader-starts.txt"
        self.venv = self.root / ".venvs" / "mmdetection3d"
        python = training_env(self.venv)
        (site,) = (self.venv / "lib").glob("python*/site-packages")
        init = site / "mmcv" / "__init__.py"
        init.write_text(init.read_text() + COUNTING)
        self.python = python
        self.env = {"MMLAB_CHECKPOINTS": CONFIG, "LOADER_STARTS": str(self.starts)}

    @staticmethod
    def new_process() -> None:
        """Forget what this process kept, as the next command (a new process) has nothing
        but the cache file (`inv` runs in this process)."""
        configcache._MEMORY.clear()
        configcache._USED.clear()

    def count(self) -> int:
        return len(self.starts.read_text().splitlines()) if self.starts.exists() else 0

    def run(self, *args: str, **more: str) -> tuple[int, str]:
        self.new_process()
        done = inv(self.root, *args, env={**self.env, **more})
        # (status is unhealthy in a workspace not bootstrapped: only its reading matters)
        assert done.code == 0 or "status" in args, done.out + done.err
        assert "Traceback" not in done.err
        return self.count(), done.out + done.err


@pytest.fixture
def ws(cloned: Cloned) -> Workspace:
    return Workspace(cloned)


def test_bootstrap_starts_the_interpreter_once_and_a_no_op_status_not_at_all(
    ws: Workspace,
) -> None:
    """bootstrap's env step, fetch step and final check share one loader run; its answer is
    kept beside .env, so the next status, doctor and bootstrap start no interpreter."""
    count, out = ws.run("bootstrap")
    assert count == 1, out
    assert f"{CONFIG}: read by mmcv 1.6.1 Config.fromfile in {ws.python}" in out
    assert (ws.root / CACHE).is_file()
    for args in (("status",), ("status", "--json"), ("bootstrap",)):
        count, out = ws.run(*args)
        assert count == 1, (args, out)
    ws.new_process()
    inv(ws.root, "doctor", "--json", env=ws.env)  # (unhealthy: the stand-in has no torch)
    assert ws.count() == 1
    status = json.loads(inv(ws.root, "status", "--json", env=ws.env).out)
    assert status["configs"][0]["reader"] == f"mmcv 1.6.1 Config.fromfile in {ws.python}"
    assert status["configs"][0]["variables"] == ["ODD_ROOT"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda w: w.config.write_text(w.config.read_text() + "x = 1\n"), id="config"),
        pytest.param(lambda w: w.base.write_text(BASE + "y = 2\n"), id="base"),
        pytest.param(  # same size, same mtime: only the content says it changed
            lambda w: _same_stat(w.base, BASE.replace("Voxel", "Noxel")), id="base-same-stat"
        ),
        pytest.param(lambda w: _touch_site(w.venv), id="interpreter-packages"),
    ],
)
def test_a_changed_config_or_interpreter_is_read_again(
    ws: Workspace, change: Callable[[Workspace], None]
) -> None:
    assert ws.run("fetch-checkpoints")[0] == 1
    assert ws.run("status")[0] == 1
    change(ws)
    assert ws.run("status")[0] == 2
    assert ws.run("fetch-checkpoints")[0] == 3  # (status keeps nothing on disk)
    assert ws.run("status")[0] == 3


def _same_stat(path: Path, text: str) -> None:
    before = os.stat(path)
    assert len(text) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _touch_site(venv: Path) -> None:
    (site,) = (venv / "lib").glob("python*/site-packages")
    write(site / "newpackage" / "__init__.py", "")


def test_a_variable_the_config_reads_is_part_of_the_key(ws: Workspace) -> None:
    assert ws.run("fetch-checkpoints")[0] == 1
    assert ws.run("status", ODD_ROOT="/somewhere")[0] == 2
    assert ws.run("status")[0] == 2  # (the answer kept on disk is for it unset)
    assert ws.run("status", UNRELATED="x")[0] == 2


def test_dry_keeps_nothing_on_disk(ws: Workspace) -> None:
    before = snapshot(ws.root)
    count, _ = ws.run("--dry", "fetch-checkpoints")
    assert count == 1
    assert snapshot(ws.root) == before


HOSTILE_CACHES = [
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b"[" * 100000, id="nested-deeply"),
    pytest.param(b'{"version": 1, "kept": []}', id="other-version"),
    pytest.param(b'{"version": 2, "kept": [1, "x", null]}', id="wrong-records"),
    pytest.param(b" " * (5 << 20), id="too-big"),
    pytest.param(None, id="a-symlink"),
    pytest.param("forged-escapes", id="forged-escapes"),
    pytest.param("forged-weights", id="forged-nul"),
    pytest.param("fifo", id="a-fifo"),
]


@pytest.mark.parametrize("content", HOSTILE_CACHES)
def test_a_hostile_cache_file_is_ignored(
    ws: Workspace, tmp_path: Path, content: bytes | str | None
) -> None:
    """Whatever is in the cache file, it is read bounded, as a regular file of the tool's own,
    each entry checked as the loader's answer is; what is wrong with it is ignored (the
    interpreter runs), never shown, never followed."""
    assert ws.run("fetch-checkpoints")[0] == 1
    cache = ws.root / CACHE
    kept = json.loads(cache.read_text())
    if isinstance(content, bytes):
        cache.write_bytes(content)
    elif content is None:
        outside = tmp_path / "elsewhere.json"
        outside.write_text(cache.read_text())
        cache.unlink()
        cache.symlink_to(outside)
    elif content == "fifo":
        cache.unlink()
        os.mkfifo(cache)
    else:
        entry = kept["kept"][0]
        if content == "forged-escapes":
            entry["loader"] = "\x1b[2Jmmcv"
        else:
            entry["entry"]["weights"] = [["load_from", "/a\0b.pth"]]
        cache.write_text(json.dumps(kept))
    count, out = ws.run("status")
    assert count == 2, out
    assert "\x1b[2J" not in out and "\0" not in out
    if content is None:  # a command that keeps answers never writes through the link
        outside = tmp_path / "elsewhere.json"
        before = outside.read_bytes()
        ws.run("fetch-checkpoints")
        assert outside.read_bytes() == before and cache.is_symlink()


def test_env_reads_the_configs_as_fetch_checkpoints_does(ws: Workspace) -> None:
    """A variable only the loader sees (its name is computed), and one only the static reader
    sees (in a branch never taken): `env` names what `fetch-checkpoints` names, with the
    training environment and without."""
    ws.config.write_text(
        "import os\n"
        "name = ''.join(['LOADED', '_ONLY'])\n"
        "os.environ.get(name)\n"
        "if False:\n"
        "    os.environ['STATIC_ONLY']\n"
        "x = os.environ['LOADED_NEEDED'] if name == 'LOADED_ONLY' else None\n"
    )
    env_out = inv(ws.root, "env", env={**ws.env, "LOADED_NEEDED": "1"}).err
    fetch = inv(ws.root, "fetch-checkpoints", env={**ws.env, "LOADED_NEEDED": "1"})
    assert "LOADED_NEEDED, which .env does not set" in env_out
    assert "LOADED_NEEDED, which .env does not set" in fetch.err
    assert "STATIC_ONLY" not in env_out and "STATIC_ONLY" not in fetch.err
    # without a training environment both read statically, and agree again
    (ws.venv / "bin" / "python").unlink()
    (ws.venv / "mmlab-bootstrap-env.json").unlink()
    env_static = inv(ws.root, "env", env={**ws.env, "LOADED_NEEDED": "1"}).err
    fetch_static = inv(ws.root, "fetch-checkpoints", env={**ws.env, "LOADED_NEEDED": "1"}).err
    assert "STATIC_ONLY" in env_static and "STATIC_ONLY" in fetch_static


def test_env_warns_once_when_the_interpreter_fails(ws: Workspace) -> None:
    ws.python.unlink()
    ws.python.write_text("#!/nowhere/python\n")
    ws.python.chmod(0o755)
    run = inv(ws.root, "env", env=ws.env)
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if "read the configs statically" in line]
    assert len(warnings) == 1 and "does not start" in warnings[0], run.err


def test_an_answer_of_another_version_of_the_tool_is_asked_again(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found trying it: an answer kept by a tool whose loader script did not yet refuse a
    config over 1 MiB was used by the next version. The script is part of the key."""
    assert ws.run("fetch-checkpoints")[0] == 1
    monkeypatch.setattr(configcache, "SCRIPT", configcache.SCRIPT + "\n# another version\n")
    assert ws.run("status")[0] == 2

"""`inv python-env` tried as a new user and as an attacker (issue 23), against the stand-in
indexes served on 127.0.0.1: one hostile-input table per surface (the overrides file, the
lock, MMLAB_PYTHON, MMLAB_VENVS_PATH and the other variables, what sits in the venvs folder),
each row ending in one `error:` and one `hint:` line with nothing changed, or in one healthy
environment; and what a kill, a Ctrl-C or a second workspace sharing the venvs folder
leaves behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmlab_bootstrap.pythonenv import interpreter as asked
from mmlab_bootstrap.pythonenv import pages as wheelpages
from mmlab_bootstrap.pythonenv.build import MARKER

from .conftest import Run, assert_clean_error, inv
from .lib.fakepython import write
from .lib.httpserve import Served
from .lib.pyenvfixture import (
    OVERRIDE,
    environ,
    held,
    loopback_only,
    python_env_until,
    rc4,
    served_indexes,
    stand_in_indexes,
)

LOCK = "python-env.mmdetection3d.cu113.lock.txt"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    indexes = stand_in_indexes(tmp_path_factory.mktemp("wheels"))
    with served_indexes(indexes, max_requests=20000) as served:
        yield served


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    loopback_only(monkeypatch)


@pytest.fixture
def ws(workspace: Path) -> Path:
    return rc4(workspace, overrides=OVERRIDE)


def tree(folder: Path) -> dict[str, float]:
    """Every path below `folder` and its modification time (nothing changed: equal), but
    the workspace's lock file, which every run that may change something takes."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.lstat().st_mtime
        for p in folder.rglob("*")
        if p.name != ".mmlab-bootstrap.lock"
    }


def healthy(venv: Path) -> None:
    script = "import mmcv.ops, mmdet, mmseg, mmdet3d, numba, torch; print(mmcv.__version__)"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", script], capture_output=True, check=False
    )
    assert done.returncode == 0 and done.stdout == b"1.6.0\n", done.stderr
    assert sorted(p.name for p in venv.parent.iterdir()) == [venv.name]


def built(ws: Path, served: Served) -> Path:
    run = inv(ws, "python-env", env=environ(served))
    assert run.code == 0, run.err
    return ws / ".venvs" / "mmdetection3d"


# -- python-env.overrides.txt -------------------------------------------------------------
@dataclass
class Override:
    """One overrides file: its bytes (or a maker for what is no regular file), and the
    error it ends in (None: accepted, and said under --dry)."""

    data: bytes = b""
    said: str | None = None
    make: Callable[[Path], None] | None = None
    asks: bool = False  # the error needs the pages (the pair), else nothing is asked


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _link_out(path: Path) -> None:
    secret = write(path.parent.parent / "netrc", "machine h login me password s3cret\n")
    path.symlink_to(secret)


def _link_in(path: Path) -> None:
    kept = write(path.parent / "mmlab_extension" / "overrides.txt", OVERRIDE)
    path.symlink_to(kept)


OVERRIDES = {
    "a line without a reason": Override(b"numba>=0.57\n", "gives no reason"),
    "-e smuggled in": Override(b"-e /tmp/evil  # mine\n", "is an option"),
    "--index-url smuggled in": Override(b"--index-url http://evil.example/  # fast\n", "option"),
    "-r other.txt": Override(b"-r other.txt  # more\n", "is an option"),
    "indented option": Override(b"  --extra-index-url=http://e/  # x\n", "is an option"),
    "a URL requirement": Override(b"numba @ https://evil.example/n.whl  # fork\n", "a URL"),
    "NUL bytes": Override(b"numba>=0.57  # r\x00\n", "control characters"),
    "not UTF-8": Override(b"numba>=0.57  # \xff\xfe\n", "is not UTF-8"),
    "10 MB": Override(b"# x\n" * (10 << 18), "more than 65536 bytes"),
    "a symlink to /dev/zero": Override(make=_dev_zero, said="leading out of"),
    "a FIFO": Override(make=_fifo, said="FIFO"),
    "a symlink out of the workspace": Override(make=_link_out, said="leading out of"),
    "a symlink within the workspace": Override(make=_link_in),
    "mmcv overridden to a version with only an sdist": Override(
        (OVERRIDE + "mmcv-full==1.5.3  # the old one\n").encode(),
        "no prebuilt mmcv-full ==1.5.3 wheel",
        asks=True,
    ),
    "CRLF endings": Override(OVERRIDE.replace("\n", "\r\n").encode()),
    "a byte order mark first": Override(b"\xef\xbb\xbf" + OVERRIDE.encode()),
}


@pytest.mark.parametrize("name", OVERRIDES)
def test_hostile_overrides(ws: Path, index: Served, name: str) -> None:
    row = OVERRIDES[name]
    path = ws / "python-env.overrides.txt"
    path.unlink()
    if row.make is not None:
        row.make(path)
    else:
        path.write_bytes(row.data)
    before, asked_before = tree(ws), len(index.requests)
    run = inv(ws, "--dry", "python-env", env=environ(index))
    assert tree(ws) == before
    if row.said is None:
        assert run.code == 0, run.err
        assert "override numba>=0.57  # numba==0.53.0 has no wheel" in run.out
        return
    assert_clean_error(run, row.said)
    assert "python-env.overrides.txt" in run.err and "s3cret" not in run.err
    assert row.asks or len(index.requests) == asked_before


# -- the lock ----------------------------------------------------------------------------
def _hash_changed(text: str) -> str:
    at = text.index("--hash=sha256:") + len("--hash=sha256:")
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :]


def _pin_removed(text: str) -> str:
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("numba=="))
    return "".join(lines[:at] + lines[at + 2 :])


def _cut_at_a_line(text: str) -> str:
    return "".join(text.splitlines(keepends=True)[:9])


LOCKS: dict[str, tuple[Callable[[str], str], str]] = {
    "a hash changed": (_hash_changed, "was changed after inv python-env wrote it"),
    "a pin taken out": (_pin_removed, "was changed after inv python-env wrote it"),
    "cut short at a line end": (_cut_at_a_line, "was changed after inv python-env wrote it"),
    "cut short mid-line": (lambda text: text[: len(text) // 2], "is not a pinned requirement"),
    "junk appended": (lambda text: text + "junk\n", "is not a pinned requirement"),
    "without its digest": (
        lambda text: "".join(line for line in text.splitlines(True) if "# digest:" not in line),
        "has no digest line: an older inv python-env wrote it",
    ),
    "an index moved elsewhere": (
        lambda text: text.replace("# mmcv-page: http://", "# mmcv-page: http://evil.", 1),
        "was changed after inv python-env wrote it",
    ),
}


def test_a_lock_with_crlf_endings_is_the_same_lock(ws: Path, index: Served) -> None:
    """As git checks it out with autocrlf (or an editor on Windows saves it): nothing to do."""
    venv = built(ws, index)
    lock = ws / LOCK
    lock.write_bytes(lock.read_bytes().replace(b"\n", b"\r\n"))
    asked = len(index.requests)
    for flags in ([], ["--locked"]):
        run = inv(ws, "python-env", *flags, env=environ(index))
        assert run.code == 0 and f"up to date: {venv}" in run.out, run.out + run.err
    assert len(index.requests) == asked


@pytest.mark.parametrize("name", LOCKS)
def test_hostile_locks(ws: Path, index: Served, name: str) -> None:
    """A lock edited by hand is refused before anything is installed from it: the venv made
    from the lock as written is untouched, and no `.partial` is left."""
    venv = built(ws, index)
    edit, said = LOCKS[name]
    lock = ws / LOCK
    lock.write_text(edit(lock.read_text()))
    before = tree(ws / ".venvs")
    assert_clean_error(inv(ws, "python-env", env=environ(index)), said)
    assert_clean_error(inv(ws, "python-env", "--locked", env=environ(index)), said)
    assert tree(ws / ".venvs") == before
    healthy(venv)
    rewritten = inv(ws, "python-env", "--update", env=environ(index))  # writes it again
    assert rewritten.code == 0, rewritten.err
    assert "--update writes it again" in rewritten.err
    assert inv(ws, "python-env", "--locked", env=environ(index)).code == 0
    healthy(venv)


def test_a_lock_linked_out_of_the_workspace_is_not_read(
    ws: Path, index: Served, tmp_path: Path
) -> None:
    secret = write(tmp_path / "netrc", "machine h login me password s3cret\n")
    (ws / LOCK).symlink_to(secret)
    run = inv(ws, "python-env", env=environ(index))
    assert_clean_error(run, "leading out of the workspace")
    assert "s3cret" not in run.err
    run = inv(ws, "python-env", "--update", env=environ(index))  # nor written through
    assert_clean_error(run, "leading out of the workspace")
    assert secret.read_text() == "machine h login me password s3cret\n"


def test_a_lock_of_another_tag_is_refused(ws: Path, index: Served) -> None:
    built(ws, index)
    shutil.copy(ws / LOCK, ws / "python-env.mmdetection3d.cpu.lock.txt")
    env = {**environ(index), "MMLAB_CUDA": "cpu"}
    assert_clean_error(
        inv(ws, "python-env", "--locked", env=env), "is a lock for another accelerator"
    )


def test_the_lock_holds_no_credentials_and_is_installed_with_them(ws: Path, index: Served) -> None:
    """Index URLs with a user and password: the lock (committed to share) and the output
    never hold them; installing from the lock on a cold cache still sends them."""
    host = index.url.removeprefix("http://")
    env = {
        **environ(index),
        "MMLAB_PYPI_INDEX": f"http://alice:s3cret@{host}simple/",
        "MMLAB_TORCH_INDEX": f"http://bob:t0rch@{host}whl/",
    }
    run = inv(ws, "python-env", env=env)
    assert run.code == 0, run.err
    lock = (ws / LOCK).read_text()
    assert "# pypi-index: http://***@" in lock and "# torch-index: http://***@" in lock
    shutil.rmtree(ws / ".venvs")
    shutil.rmtree(Path(os.environ["HOME"]) / ".cache" / "uv")
    asked = len(index.requests)
    again = inv(ws, "python-env", "--locked", env=env)
    assert again.code == 0, again.err
    sent = [a for a in index.authorizations[asked:] if a]
    assert sent, "the lock's indexes were asked without their credentials"
    for text in (lock, run.out, run.err, again.out, again.err):
        assert "s3cret" not in text and "t0rch" not in text


# -- MMLAB_PYTHON and the other variables ----------------------------------------------------
SCRIPTS = {
    "hangs": "sleep 100\n",
    "prints 100 MB": "head -c 100000000 /dev/zero | tr '\\0' x\n",
    "says it is Python 2": (
        'echo \'{"version": [2, 7], "implementation": "cpython", "machine": "x86_64",'
        ' "system": "linux2"}\'\n'
    ),
    "answers the probe but is no Python": (
        'echo \'{"version": [3, 11], "implementation": "cpython", "machine": "x86_64",'
        ' "system": "linux"}\'\n'
    ),
}
PYTHONS = {
    "nonexistent": ("/nonexistent/python3", "is not an interpreter here"),
    "a directory": ("{tmp}", "is not an interpreter here"),
    "a name not on PATH": ("python3-nowhere", "is not an interpreter here"),
    "hangs": ("{tmp}/hangs", "was stopped: it did not finish within 1 s"),
    "prints 100 MB": ("{tmp}/prints 100 MB", "was stopped: it printed more than"),
    "says it is Python 2": ("{tmp}/says it is Python 2", "is Python 2.7"),
    "a path with a newline": ("{tmp}/x\ny", "control character"),
}


@pytest.mark.parametrize("name", PYTHONS)
def test_hostile_interpreters(
    ws: Path, index: Served, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheelpages, "PROBE_TIMEOUT", 1)
    for script, body in SCRIPTS.items():
        path = write(tmp_path / script, "#!/bin/sh\n" + body)
        path.chmod(0o755)
    value, said = PYTHONS[name]
    before, asked_before = tree(ws), len(index.requests)
    run = inv(ws, "python-env", env={**environ(index), "MMLAB_PYTHON": value.format(tmp=tmp_path)})
    assert_clean_error(run, said)
    assert "MMLAB_PYTHON" in run.err and tree(ws) == before
    assert len(index.requests) == asked_before


def test_an_interpreter_uv_cannot_ask_is_named(ws: Path, index: Served, tmp_path: Path) -> None:
    """It answers the tool's probe as CPython 3.11 would, but is a shell script: uv cannot
    inspect it, and the hint names MMLAB_PYTHON (not the overrides)."""
    liar = write(tmp_path / "liar", "#!/bin/sh\n" + SCRIPTS["answers the probe but is no Python"])
    liar.chmod(0o755)
    run = inv(ws, "python-env", env={**environ(index), "MMLAB_PYTHON": str(liar)})
    assert_clean_error(run, "Failed to inspect Python interpreter")
    assert "MMLAB_PYTHON" in run.err.splitlines()[1]
    assert not (ws / ".venvs").exists()


VARIABLES = {
    "MMLAB_VENVS_PATH a file": ("MMLAB_VENVS_PATH", "{tmp}/a-file", "is not a folder"),
    "MMLAB_VENVS_PATH a symlink loop": ("MMLAB_VENVS_PATH", "{tmp}/loop1", "leads to no folder"),
    "MMLAB_VENVS_PATH below a file": ("MMLAB_VENVS_PATH", "{tmp}/a-file/venvs", "is a file"),
    "MMLAB_VENVS_PATH in a checkout": (
        "MMLAB_VENVS_PATH",
        "mmlab_extension/mmdetection3d/venvs",
        "is in the sub-projects' checkouts",
    ),
    "MMLAB_VENVS_PATH the checkouts": ("MMLAB_VENVS_PATH", "mmlab_extension", "checkouts"),
    "MMLAB_CUDA cu99999": ("MMLAB_CUDA", "cu99999", "is not cpu or a CUDA tag"),
    "MMLAB_CUDA ../x": ("MMLAB_CUDA", "../x", "is not cpu or a CUDA tag"),
    "MMLAB_TORCH_INDEX file://": ("MMLAB_TORCH_INDEX", "file:///tmp/", "is not an http://"),
    "MMLAB_MMCV_INDEX file://": ("MMLAB_MMCV_INDEX", "file:///tmp/", "is not an http://"),
    "MMLAB_PYPI_INDEX file://": ("MMLAB_PYPI_INDEX", "file:///etc/", "is not an http://"),
    "MMLAB_PYPI_INDEX with a newline": ("MMLAB_PYPI_INDEX", "http://a/\nb", "control character"),
}


@pytest.mark.parametrize("name", VARIABLES)
def test_hostile_variables(ws: Path, index: Served, tmp_path: Path, name: str) -> None:
    write(tmp_path / "a-file", "mine\n")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    variable, value, said = VARIABLES[name]
    before, asked_before = tree(ws), len(index.requests)
    run = inv(ws, "python-env", env={**environ(index), variable: value.format(tmp=tmp_path)})
    assert_clean_error(run, said)
    assert variable in run.err and tree(ws) == before and len(index.requests) == asked_before
    assert (tmp_path / "a-file").read_text() == "mine\n"


def test_a_trailing_slash_less_index_base_works(ws: Path, index: Served) -> None:
    env = environ(index)
    env = {
        name: value.rstrip("/") if name.endswith("INDEX") else value for name, value in env.items()
    }
    run = inv(ws, "--dry", "python-env", env=env)
    assert run.code == 0, run.err
    assert "cu113 + torch 1.11: chosen" in run.out


# -- what sits in the venvs folder ----------------------------------------------------------
def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*")) / "site-packages"


def _python_a_script(venv: Path) -> None:
    (venv / "bin" / "python").unlink()
    write(venv / "bin" / "python", "#!/bin/sh\necho junk\n").chmod(0o755)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "a dist-info deleted": (
        lambda venv: shutil.rmtree(next(_site(venv).glob("numba-*.dist-info"))),
        "no numba 0.57.0",
    ),
    "the editable's dist-info deleted": (
        lambda venv: shutil.rmtree(next(_site(venv).glob("mmdet3d-*.dist-info"))),
        "no mmdet3d",
    ),
    "site-packages deleted": (lambda venv: shutil.rmtree(_site(venv)), "no lib/python"),
    "lib deleted": (lambda venv: shutil.rmtree(venv / "lib"), "no lib/python"),
    "pyvenv.cfg deleted": (lambda venv: (venv / "pyvenv.cfg").unlink(), "no pyvenv.cfg"),
    "bin/python replaced by a script": (_python_a_script, "bin/python is not the link"),
}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_half_deleted_venv_is_made_again(ws: Path, index: Served, name: str) -> None:
    """A venv the tool made, partly deleted by hand, is not `up to date`: made again (from
    the lock, no resolution), then a re-run has nothing to do and asks nothing."""
    venv = built(ws, index)
    damage, said = DAMAGE[name]
    damage(venv)
    run = inv(ws, "python-env", env=environ(index))
    assert run.code == 0, run.err
    assert f"{venv} is incomplete ({said}" in run.err
    healthy(venv)
    asked = len(index.requests)
    again = inv(ws, "python-env", env=environ(index))
    assert again.code == 0 and f"up to date: {venv}" in again.out
    assert len(index.requests) == asked


def _marker_symlink(venv: Path) -> None:
    data = (venv / MARKER).read_text()
    (venv / MARKER).unlink()
    elsewhere = write(venv.parent.parent / "planted.json", data)
    (venv / MARKER).symlink_to(elsewhere)


def _marker_huge(venv: Path) -> None:
    said = json.loads((venv / MARKER).read_text())
    said["padding"] = "x" * (1 << 20)
    (venv / MARKER).write_text(json.dumps(said))


def _no_marker(venv: Path) -> None:
    (venv / MARKER).unlink()


FOREIGN = {
    "the marker planted as a symlink": _marker_symlink,
    "a huge marker": _marker_huge,
    "no marker (the user's own venv)": _no_marker,
}


@pytest.mark.parametrize("name", FOREIGN)
def test_a_venv_not_provably_the_tool_s_is_never_touched(
    ws: Path, index: Served, name: str
) -> None:
    venv = built(ws, index)
    FOREIGN[name](venv)
    (venv / "lib").rename(venv / "lib.moved")  # (what would be made again if it were ours)
    before = tree(ws / ".venvs")
    run = inv(ws, "python-env", "--update", env=environ(index))
    assert_clean_error(run, "was not made by inv python-env")
    assert tree(ws / ".venvs") == before


def test_a_failed_build_leaves_no_partial_venv(ws: Path, index: Served) -> None:
    """The checkout's setup.py fails: one error, and neither `.partial` nor a venv left."""
    write(ws / "mmlab_extension" / "mmdetection3d" / "setup.py", "raise SystemExit('broken')\n")
    run = inv(ws, "python-env", env=environ(index))
    assert_clean_error(run, "editable")
    assert sorted(p.name for p in (ws / ".venvs").iterdir()) == []


def test_a_partial_venv_a_live_run_holds_is_left_alone(ws: Path, index: Served) -> None:
    """Two workspaces with one MMLAB_VENVS_PATH: the `.partial` venv the other's live run is
    making (it holds its flock) is never removed as a leftover."""
    partial = write(ws / ".venvs" / ".mmdetection3d.partial" / "pyvenv.cfg", "home = /x\n").parent
    with held(partial):
        run = inv(ws, "python-env", env=environ(index))
        assert_clean_error(run, "is being made by another run right now")
        assert (partial / "pyvenv.cfg").is_file()
        assert not (ws / ".venvs" / "mmdetection3d").exists()
    run = inv(ws, "python-env", env=environ(index))  # the holder is gone: a leftover now
    assert run.code == 0, run.err
    healthy(ws / ".venvs" / "mmdetection3d")


def test_another_workspace_s_venv_is_never_replaced(
    ws: Path, index: Served, tmp_path: Path
) -> None:
    shared = tmp_path / "shared-venvs"
    other = rc4(tmp_path / "other", overrides=OVERRIDE)
    shutil.copy(ws / "tasks.py", other / "tasks.py")
    env = {**environ(index), "MMLAB_VENVS_PATH": str(shared)}
    assert inv(other, "python-env", env=env).code == 0
    before = tree(shared)
    run = inv(ws, "python-env", env=env)
    assert_clean_error(run, "is the environment of another workspace")
    assert str(other / "mmlab_extension" / "mmdetection3d") in run.err
    assert tree(shared) == before
    shutil.rmtree(other / "mmlab_extension")  # that workspace is gone: its venv may go
    run = inv(ws, "python-env", env=env)
    assert run.code == 0, run.err
    healthy(shared / "mmdetection3d")


def test_the_same_workspace_by_another_path_is_not_another_workspace(
    ws: Path, index: Served, tmp_path: Path
) -> None:
    """The workspace reached through a symlink (a home folder linked to a data disk) is the
    same workspace: its venv is its own."""
    built(ws, index)
    alias = tmp_path / "alias"
    alias.symlink_to(ws)
    run = inv(alias, "python-env", env=environ(index))
    assert run.code == 0, run.err
    healthy(ws / ".venvs" / "mmdetection3d")


# -- interruptions, and the doctor on a broken venv ------------------------------------------
def test_ctrl_c_mid_build_is_one_line_and_the_next_run_finishes(
    ws: Path, index: Served, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    env = {**os.environ, **environ(index), "STANDIN_BUILD_WAIT": str(gate)}
    started = Path(f"{gate}.started")
    with python_env_until(ws, env, started, output=subprocess.PIPE) as process:
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    said = err.decode()
    assert process.returncode == 130, said
    assert said.splitlines()[0] == "error: interrupted" and "Traceback" not in said
    assert len(said.splitlines()) == 2 and said.splitlines()[1].startswith("hint: ")
    run = inv(ws, "python-env", env=environ(index))
    assert run.code == 0, run.err
    healthy(ws / ".venvs" / "mmdetection3d")


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("sleep 100\n", "was stopped: it did not finish within 1 s"),
        ("head -c 3000000 /dev/zero\n", "was stopped: it printed more than"),
        ("echo '{junk'\n", "its answer is not JSON"),
    ],
    ids=["hangs", "floods", "junk"],
)
def test_doctor_on_a_venv_whose_interpreter_misbehaves(
    ws: Path, index: Served, body: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = built(ws, index)
    monkeypatch.setattr(asked, "PROBE_TIMEOUT", 1)
    (venv / "bin" / "python").unlink()
    write(venv / "bin" / "python", "#!/bin/sh\n" + body).chmod(0o755)
    run: Run = inv(ws, "doctor", env=environ(index))
    assert run.code == 1 and "Traceback" not in run.out + run.err
    found = [line for line in run.out.splitlines() if line.strip().startswith("python: ")]
    assert len(found) == 1 and said in found[0], run.out


COUNTING_PYTHON = """\
#!/bin/sh
# MMLAB_PYTHON for a kill test: counts its calls; at call $KILL_AT says so and waits
n=$(( $(cat "{count}" 2>/dev/null || echo 0) + 1 )); echo $n > "{count}"
if [ "$n" = "$KILL_AT" ]; then touch "{said}"; sleep 120; fi
exec "{python}" "$@"
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "call", [1, 2, 3], ids=["probing the interpreter", "uv resolving", "uv making the venv"]
)
def test_a_kill_at_each_call_of_the_interpreter_is_finished_by_the_next_run(
    ws: Path, index: Served, tmp_path: Path, call: int
) -> None:
    """A real `inv python-env` and its process group SIGKILLed while the base interpreter is
    asked (by the tool, by uv resolving, by uv making the venv): the next run finishes with
    one healthy venv and no leftover (uv's scratch folder, a `.partial`, a lock temporary)."""
    said = tmp_path / "said"
    python = write(
        tmp_path / "python3",
        COUNTING_PYTHON.format(
            count=tmp_path / "count", said=said, python=os.path.realpath(sys.executable)
        ),
    )
    python.chmod(0o755)
    env = {**os.environ, **environ(index), "MMLAB_PYTHON": str(python), "KILL_AT": str(call)}
    with python_env_until(ws, env, said, never="the call never came"):
        pass  # killed there
    run = inv(ws, "python-env", env=environ(index))
    assert run.code == 0, run.err
    healthy(ws / ".venvs" / "mmdetection3d")
    temporaries = (".mmlab-python-env-", ".python-env")
    assert [p.name for p in ws.iterdir() if p.name.startswith(temporaries)] == []

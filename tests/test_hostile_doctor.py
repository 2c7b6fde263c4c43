"""`doctor` against hostile input: fake interpreters whose answer has another shape, that print
without end, never exit or leave a child holding the pipe; an `nvcc` that prints forever;
dataset trees with folders the user cannot read (a second user, `nobody`), FIFOs, devices,
symlink loops, files where folders must be and an id list over the read limit.

Each case: no traceback, the other findings still reported, the exit code as documented
(1: not ready), and a time bound enforced here (an alarm), so a hang fails instead of waiting.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from mmlab_bootstrap.doctor import datasets
from mmlab_bootstrap.doctor.datasets import IDS_LIMIT, check_data
from mmlab_bootstrap.output.findings import ERROR, OK, WARNING, Finding
from mmlab_bootstrap.pythonenv import interpreter as pyenv
from mmlab_bootstrap.pythonenv.packages import python_section

from .conftest import BIN, Cloned, folder_outside, inv, run_cli
from .lib.datatrees import coco, kitti, new_checkout, nuscenes, touch
from .lib.fakepython import write

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


class Hung(Exception):
    """The alarm of `bounded` rang: what the test ran did not end in time."""


@pytest.fixture
def bounded() -> Iterator[None]:
    """Fail the test (raising in it) if it runs for more than 60 s."""

    def ring(_: int, __: FrameType | None) -> None:
        raise Hung("did not end within 60 s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's and nvcc's time limits, short enough for a test (the caps are the real
    ones)."""
    monkeypatch.setattr(pyenv, "PROBE_TIMEOUT", 3)
    monkeypatch.setattr(pyenv, "NVCC_TIMEOUT", 3)


def answer(**changed: Any) -> dict[str, Any]:
    """A probe answer of the right shape, with fields changed."""
    torch = {"version": "2.1.2", "editable": False, "source": None, "location": "/x", "cuda": None}
    right: dict[str, Any] = {
        "python": "3.11.7",
        "executable": "/usr/bin/python3",
        "prefix": "/usr",
        "packages": {"torch": torch},
        "imports": {"torch": "/x"},
    }
    right.update(changed)
    return right


def package(**changed: Any) -> dict[str, Any]:
    return answer(packages={"torch": {**answer()["packages"]["torch"], **changed}})


DEEP = 100_000
# Fake interpreters: what each prints as its answer (a JSON text) or the shell script it is.
ANSWERS: dict[str, tuple[str, str]] = {
    "a list": ("[]", "the answer is a list, not an object"),
    "null": ("null", "the answer is null, not an object"),
    "a string": ('"hello"', "the answer is a string, not an object"),
    "a number": ("3", "the answer is a number, not an object"),
    "no packages": (json.dumps({"python": "3.11"}), "the answer has no 'executable'"),
    "packages a list": (json.dumps(answer(packages=[])), "packages is a list, not an object"),
    "a package a string": (json.dumps(answer(packages={"torch": "2.1"})), "packages.torch is a"),
    "a version a number": (json.dumps(package(version=2.1)), "packages.torch.version is a number"),
    "editable a string": (json.dumps(package(editable="yes")), "editable is a string"),
    "cuda a list": (json.dumps(package(cuda=["11.8"])), "packages.torch.cuda is a list"),
    "a field not asked": (json.dumps(package(extra=1)), "which was not asked for"),
    "a package not asked": (
        json.dumps(answer(packages={"evil": answer()["packages"]["torch"]})),
        "packages names 'evil', which was not asked for",
    ),
    "imports a list": (json.dumps(answer(imports=["torch"])), "the answer.imports is a list"),
    "an import a number": (
        json.dumps(answer(imports={"torch": 1})),
        "imports['torch'] is a number",
    ),
    "python a number": (json.dumps(answer(python=3.11)), "the answer.python is a number"),
    "deeply nested": ("[" * DEEP + "]" * DEEP, "JSON nested too deeply"),
    "huge": (json.dumps(answer(python="3" * (2 << 20))), "it printed more than 1048576 bytes"),
    "not JSON": ("Python 3.11.7\n", "its answer is not JSON"),
}
SCRIPTS: dict[str, tuple[str, str]] = {
    "endless output": ("exec yes", "it printed more than 1048576 bytes"),
    "endless output on stderr": ("exec yes >&2", "it printed more than 1048576 bytes"),
    "never exits": ("exec sleep 3600", "it did not finish within 3 s"),
    "never exits, its stdout closed": ("exec sleep 3600 >&-", "it did not finish within 3 s"),
    "its child prints forever": ("yes &\nwait", "it printed more than 1048576 bytes"),
    "fails": ("echo 'SyntaxError: bad' >&2\nexit 1", "this can ask (SyntaxError: bad)"),
}


def fake_interpreter(folder: Path, case: str) -> Path:
    """An executable standing in for the interpreter: it prints a canned answer or runs a
    script."""
    if case in ANSWERS:
        (folder / "answer.json").write_text(ANSWERS[case][0])
        body = f"exec cat '{folder / 'answer.json'}'"
    else:
        body = SCRIPTS[case][0]
    script = write(folder / "python", f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("case", [*ANSWERS, *SCRIPTS])
@pytest.mark.usefixtures("bounded", "short_limits")
def test_an_interpreter_answering_something_else_is_one_finding(tmp_path: Path, case: str) -> None:
    """One error finding naming what is wrong; the section goes on (the CUDA toolkit is still
    looked at); no exception."""
    python = fake_interpreter(tmp_path, case)
    info, findings = python_section(tmp_path, (), str(python), os.environ)
    first, *rest = findings
    assert first.level == ERROR and first.subject == "python", findings
    expected = (ANSWERS.get(case) or SCRIPTS[case])[1]
    assert expected in first.text, first.text
    assert "--python" in first.text and first.hint
    assert [f.subject for f in rest] == ["cuda"]
    assert info["version"] is None and info["packages"] == {}


def pid_gone(pid: int) -> bool:
    """Whether a process has ended (gone, or a zombie nobody reaped yet); waits a bounded
    while for a kill to land."""
    for _ in range(200):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.usefixtures("bounded")
def test_a_child_holding_the_pipe_neither_holds_doctor_nor_outlives_it(tmp_path: Path) -> None:
    """The interpreter answers (the real probe) but leaves a child that keeps its stdout open
    for an hour: the answer is used at once, the child is killed with the group."""
    pids = tmp_path / "child.pid"
    python = write(
        tmp_path / "python",
        f"#!/bin/sh\nsleep 3600 &\necho $! > '{pids}'\nexec '{sys.executable}' \"$@\"\n",
    )
    python.chmod(0o755)
    info, findings = python_section(tmp_path, (), str(python), os.environ)
    assert info["version"] == sys.version.split()[0], findings  # not stopped by the time limit
    assert not [f for f in findings if f.subject == "python"]
    assert pid_gone(int(pids.read_text()))


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("exec yes 'Cuda compilation tools, release 11.8'", "printed more than 65536 bytes"),
        ("exec sleep 3600", "did not finish within 3 s"),
        ("echo 'release 11.8'\nsleep 3600 &\nexit 0", None),
    ],
    ids=["prints forever", "never exits", "leaves a child"],
)
@pytest.mark.usefixtures("bounded", "short_limits")
def test_an_nvcc_that_misbehaves_is_stopped(tmp_path: Path, body: str, said: str | None) -> None:
    """The `nvcc` on the training run's PATH, read with the same caps; the interpreter's own
    answer is unaffected."""
    bin_folder = tmp_path / "bin"
    write(bin_folder / "nvcc", f"#!/bin/sh\n{body}\n").chmod(0o755)
    environ = {**os.environ, "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}"}
    environ.pop("CUDA_HOME", None)
    environ.pop("CUDA_PATH", None)
    info, findings = python_section(tmp_path, (), sys.executable, environ)
    (cuda,) = [f for f in findings if f.subject == "cuda"]
    toolkit = info["cuda_toolkit"]
    assert toolkit["nvcc"] == str(bin_folder / "nvcc")
    if said is None:
        assert toolkit["nvcc_release"] == "11.8" and toolkit["nvcc_problem"] is None
    else:
        assert cuda.level == WARNING and said in cuda.text and toolkit["nvcc_release"] is None
    assert info["version"] == sys.version.split()[0]


@pytest.mark.usefixtures("bounded", "short_limits")
def test_a_wait_for_the_interpreter_or_nvcc_is_never_silent(cloned: Cloned, tmp_path: Path) -> None:
    """An interpreter and an `nvcc` that say nothing until their time limit: each heartbeat
    names the program waited for, on stderr (stdout stays the one JSON document)."""
    python = write(tmp_path / "python", "#!/bin/sh\nexec sleep 3600\n")
    python.chmod(0o755)
    bin_folder = tmp_path / "bin"
    write(bin_folder / "nvcc", "#!/bin/sh\nexec sleep 3600\n").chmod(0o755)
    path = f"{bin_folder}{os.pathsep}{os.environ['PATH']}"
    env = {"MMLAB_HEARTBEAT": "1", "PATH": path, "CUDA_HOME": "", "CUDA_PATH": ""}
    run = inv(cloned.root, "doctor", "--json", "--python", str(python), env=env)
    assert run.code == 1, run.err
    json.loads(run.out)
    for program in (python, bin_folder / "nvcc"):
        assert f"note: … still waiting for {program} (" in run.err, run.err
    assert "Traceback" not in run.err


class Tree:
    """A project folder whose `data` is a link into a storage root, as `link-data` makes it
    (the same shape as test_doctor_datasets' Tree)."""

    def __init__(self, base: Path) -> None:
        self.root = base / "storage"
        self.target = self.root / "mmdetection3d" / "data"
        self.target.mkdir(parents=True)
        self.project = new_checkout(base / "ext" / "mmdetection3d")
        self.data = self.project / "data"
        self.data.symlink_to(self.target)

    def arguments(self) -> tuple[Path, Path, Path]:
        return self.data, self.project, self.root

    def check(self) -> tuple[dict[str, Any], list[Finding]]:
        return check_data(self.data, self.project, self.root)


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def replace_with_link(path: Path, target: str) -> None:
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    path.symlink_to(target)


def replace_with_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_text("not a folder\n")


def replace_with_folder(path: Path) -> None:
    path.unlink()
    (path / "a").mkdir(parents=True)


# Hostile dataset trees: what is done to a complete KITTI, the subject named, its text.
KITTI_TREES = {
    "train.txt a FIFO": (
        lambda k: fifo(k / "ImageSets" / "train.txt"),
        "kitti/ImageSets/train.txt",
        "is a FIFO (named pipe), where a regular file is expected",
    ),
    "an info file a FIFO": (
        lambda k: fifo(k / "kitti_infos_val.pkl"),
        "kitti/kitti_infos_val.pkl",
        "is a FIFO (named pipe), where a regular file is expected",
    ),
    "train.txt a link to /dev/zero": (
        lambda k: replace_with_link(k / "ImageSets" / "train.txt", "/dev/zero"),
        "kitti/ImageSets/train.txt",
        "is a character device, where a regular file is expected",
    ),
    "an info file a link to /dev/urandom": (
        lambda k: replace_with_link(k / "kitti_infos_train.pkl", "/dev/urandom"),
        "kitti/kitti_infos_train.pkl",
        "is a character device, where a regular file is expected",
    ),
    "an info file that gives an I/O error": (
        lambda k: replace_with_link(k / "kitti_infos_train.pkl", "/proc/self/mem"),
        "kitti/kitti_infos_train.pkl",
        "cannot be read: Input/output error",
    ),
    "a required folder a symlink loop": (
        lambda k: replace_with_link(k / "training" / "calib", "calib"),
        "kitti/training/calib",
        "cannot be read: a symlink loop",
    ),
    "a folder on the way a symlink loop": (
        lambda k: replace_with_link(k / "training", "training"),
        "kitti/training",
        "cannot be read: a symlink loop",
    ),
    "a required folder a file": (
        lambda k: replace_with_file(k / "training" / "label_2"),
        "kitti/training/label_2",
        "is a regular file, where a folder is expected",
    ),
    "a folder on the way a file": (
        lambda k: replace_with_file(k / "training"),
        "kitti/training",
        "is a regular file, where a folder is expected",
    ),
    "train.txt a folder": (
        lambda k: replace_with_folder(k / "ImageSets" / "train.txt"),
        "kitti/ImageSets/train.txt",
        "is a folder, where a regular file is expected",
    ),
    "the dataset a symlink loop": (
        lambda k: replace_with_link(k, "kitti"),
        "kitti",
        "cannot be read: a symlink loop",
    ),
}


@pytest.mark.parametrize("case", KITTI_TREES)
@pytest.mark.usefixtures("bounded")
def test_an_entry_that_cannot_be_read_is_one_finding(tmp_path: Path, case: str) -> None:
    """One error naming the entry and why, nothing under it called missing, the other
    datasets still checked (a complete nuScenes and COCO beside it are ok)."""
    tree = Tree(tmp_path)
    change, subject, text = KITTI_TREES[case]
    change(kitti(tree.data / "kitti"))
    nuscenes(tree.data / "nuscenes")
    coco(tree.data / "coco")
    info, findings = tree.check()
    problems = [(f.subject, f.text) for f in findings if f.level == ERROR]
    named = [
        f for f in findings if f.subject == f"mmdetection3d/data/{subject}" and f.level == ERROR
    ]
    assert len(named) == 1 and text in named[0].text, problems
    assert named[0].level == ERROR and named[0].hint
    assert problems == [(named[0].subject, named[0].text)], problems
    oks = {f.subject for f in findings if f.level == OK}
    assert oks == {"mmdetection3d/data/nuscenes", "mmdetection3d/data/coco"}
    assert [u["path"] for u in info["unreadable"]] == [str(tree.data / subject)]


@pytest.mark.usefixtures("bounded")
def test_a_loop_and_a_fifo_among_the_top_entries(tmp_path: Path) -> None:
    """`data/` itself holding a looping link and a FIFO: the loop is named, the FIFO is no
    dataset (listed as not checked is for folders only), the datasets are checked."""
    tree = Tree(tmp_path)
    kitti(tree.data / "kitti")
    (tree.data / "loop").symlink_to("loop")
    os.mkfifo(tree.data / "pipe")
    _, findings = tree.check()
    assert [(f.level, f.subject) for f in findings if f.level != OK] == [
        (ERROR, "mmdetection3d/data/loop")
    ]
    assert [f.subject for f in findings if f.level == OK] == ["mmdetection3d/data/kitti"]


def long_id_list(folder: Path, lines: int) -> list[str]:
    """A train.txt of `lines` ids of 6 digits, more bytes than IDS_LIMIT, whose limit cuts a
    line; the training files of the ids a read up to the limit samples. Returns them."""
    width = 7  # "%06d\n"
    assert lines * width > IDS_LIMIT and IDS_LIMIT % width
    (folder / "ImageSets" / "train.txt").write_bytes(b"".join(b"%06d\n" % i for i in range(lines)))
    whole = IDS_LIMIT // width
    sampled = [f"{i:06d}" for i in (0, whole // 2, whole - 1)]
    for name in sampled:
        for part in ("velodyne/{}.bin", "image_2/{}.png", "calib/{}.txt", "label_2/{}.txt"):
            touch(folder / "training" / part.format(name))
    return sampled


@pytest.mark.usefixtures("bounded")
def test_an_id_list_over_the_limit_drops_the_cut_line(tmp_path: Path) -> None:
    """The line the read limit cuts is not an id: the last id sampled is the last whole line
    read, and the finding says the list was read in part."""
    tree = Tree(tmp_path)
    folder = kitti(tree.data / "kitti", ids=1)
    sampled = long_id_list(folder, 700_000)
    info, findings = tree.check()
    assert [f for f in findings if f.level == ERROR] == []
    (found,) = info["datasets"]
    assert found["sampled_ids"] == sampled and found["ids_read_in_part"] is True
    (ok,) = findings
    assert ok.text == "KITTI layout complete, 3 sampled id(s) found"
    (folder / "training" / "velodyne" / f"{sampled[-1]}.bin").unlink()
    (missing,) = [f for f in tree.check()[1] if f.level == ERROR]
    assert missing.text == (
        f"missing (id {sampled[-1]} of the first {IDS_LIMIT} bytes of train.txt (read in part))"
    )


@pytest.mark.usefixtures("bounded")
def test_an_id_list_of_one_line_over_the_limit(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    folder = kitti(tree.data / "kitti", ids=1)
    (folder / "ImageSets" / "train.txt").write_bytes(b"0" * (IDS_LIMIT + 10))
    (problem,) = [f for f in tree.check()[1] if f.level == ERROR]
    assert problem.subject == "mmdetection3d/data/kitti/ImageSets/train.txt"
    assert problem.text == f"holds no whole line in its first {IDS_LIMIT} bytes"


@pytest.fixture
def shared_base() -> Iterator[Path]:
    """A folder every user may enter (the test's own tmp_path is root's alone), for running
    the tool as `nobody`."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the tool as an unprivileged user")
    base = folder_outside("mmlab-doctor-")
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


CHECK_AS_NOBODY = """
import json, sys
from pathlib import Path
from mmlab_bootstrap.doctor.datasets import check_data
data, project, root = map(Path, sys.argv[1:])
info, findings = check_data(data, project, root)
print(json.dumps([[f.level, f.subject, f.text, f.hint] for f in findings]))
"""


@pytest.mark.usefixtures("bounded")
def test_folders_another_user_cannot_read(shared_base: Path) -> None:
    """As `nobody`: a KITTI folder on the way, a whole COCO and an info file it may not read
    are one finding each (owner and mode named, the hint says how to open them); what lies
    under them is not called missing; nuScenes beside them is still checked."""
    tree = Tree(shared_base)
    folder = kitti(tree.data / "kitti")
    nuscenes(tree.data / "nuscenes")
    coco(tree.data / "coco")
    (folder / "training").chmod(0o700)
    (folder / "kitti_infos_val.pkl").chmod(0o600)
    (tree.data / "coco").chmod(0o700)
    done = subprocess.run(
        [*NOBODY, str(BIN / "python"), "-c", CHECK_AS_NOBODY, *map(str, tree.arguments())],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=shared_base,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    findings = json.loads(done.stdout)
    errors = {subject: (text, hint) for level, subject, text, hint in findings if level == ERROR}
    assert sorted(errors) == [
        "mmdetection3d/data/coco",
        "mmdetection3d/data/kitti/kitti_infos_val.pkl",
        "mmdetection3d/data/kitti/training",
    ], findings
    text, hint = errors["mmdetection3d/data/kitti/training"]
    assert text == "cannot be read: permission denied (owner root, mode 0700)"
    assert f"chmod -R a+rX '{os.path.realpath(folder / 'training')}'" in hint
    assert [subject for level, subject, _, _ in findings if level == OK] == [
        "mmdetection3d/data/nuscenes"
    ]


@pytest.mark.usefixtures("bounded")
def test_doctor_as_another_user_reports_everything(shared_base: Path, cloned: Cloned) -> None:
    """The whole `inv doctor` as `nobody` in its own workspace, whose dataset folders hold one
    it may not read, with an interpreter whose answer has another shape: every section is
    shown, exit 1, no traceback, and no hint says a re-run finishes anything."""
    root = shared_base / "ws"
    shutil.copytree(cloned.root, root, symlinks=True)
    assert inv(root, "bootstrap").code == 0
    kitti(root / "mmlab_extension" / "mmdetection3d" / "data" / "kitti")
    python = fake_interpreter(shared_base, "a list")
    subprocess.run(["chown", "-R", "65534:65534", str(root)], check=True)
    locked = root / "mmlab_extension" / "mmdetection3d" / "data" / "kitti" / "training"
    os.chown(locked, 0, 0)
    locked.chmod(0o700)
    other = root / "mmlab_dataset" / "mmdetection" / "data"  # the target of a `data` link
    os.chown(other, 0, 0)
    other.chmod(0o700)
    run = run_cli(
        [*NOBODY, str(BIN / "inv"), "doctor", "--python", str(python)],
        root,
        {"HOME": str(root)},
        timeout=60,
    )
    assert run.code == 1 and "Traceback" not in run.out + run.err, run.err
    assert "  mmdetection3d/data/kitti/training: cannot be read: permission denied" in run.out
    assert (
        f"  mmdetection/data: cannot be read: permission denied ('{other}', owner root,"
        " mode 0700); hint: ask its owner to make it readable for you (e.g. chmod -R a+rX"
        f" '{other}')"
    ) in run.out
    assert "the interpreter's answer is not what was asked (the answer is a list" in run.out
    assert "datasets:" in run.lines and run.lines[-1].startswith("doctor: ")
    assert "finishes" not in run.out + run.err and "again" not in run.err


@pytest.mark.slow
@pytest.mark.usefixtures("bounded", "short_limits")
def test_doctor_goes_on_past_every_hostile_input_at_once(cloned: Cloned, tmp_path: Path) -> None:
    """A FIFO id list, a looping dataset folder, a FIFO info file, an interpreter that never
    stops printing, an nvcc that never exits: every section still reported, exit 1."""
    assert inv(cloned.root, "bootstrap").code == 0
    data = cloned.ext / "mmdetection3d" / "data"
    folder = kitti(data / "kitti")
    fifo(folder / "ImageSets" / "train.txt")
    nuscenes(data / "nuscenes")
    fifo(data / "nuscenes" / "nuscenes_infos_val.pkl")
    (data / "coco").symlink_to("coco")
    python = fake_interpreter(tmp_path, "endless output")
    write(tmp_path / "bin" / "nvcc", "#!/bin/sh\nexec sleep 3600\n").chmod(0o755)
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    run = inv(cloned.root, "doctor", "--json", "--python", str(python), env={"PATH": path})
    assert run.code == 1 and "Traceback" not in run.out + run.err, run.err
    found = json.loads(run.out)
    subjects = {f["subject"]: f["text"] for f in found["findings"] if f["level"] != OK}
    assert subjects["mmdetection3d/data/kitti/ImageSets/train.txt"].startswith("is a FIFO")
    assert subjects["mmdetection3d/data/nuscenes/nuscenes_infos_val.pkl"].startswith("is a FIFO")
    assert subjects["mmdetection3d/data/coco"].startswith("cannot be read: a symlink loop")
    assert "printed more than 1048576 bytes" in subjects["python"]
    assert "did not finish within 3 s" in subjects["cuda"]
    assert found["healthy"] is False and found["status"]["healthy"] is True
    text = inv(cloned.root, "doctor", "--python", str(python), env={"PATH": path})
    assert text.code == 1 and "finishes" not in text.out + text.err


@pytest.mark.usefixtures("bounded")
def test_ctrl_c_while_the_interpreter_is_asked(cloned: Cloned, tmp_path: Path) -> None:
    """Ctrl-C while the interpreter is asked: exit 130, a hint that promises nothing to
    finish (doctor changed nothing), and the interpreter with its children is gone."""
    started = tmp_path / "started"
    pids = tmp_path / "pids"
    python = write(
        tmp_path / "python",
        f"#!/bin/sh\nsleep 3600 &\necho $$ $! > '{pids}'\ntouch '{started}'\nwait\n",
    )
    python.chmod(0o755)
    doctor = subprocess.Popen(
        [str(BIN / "inv"), "doctor", "--python", str(python)],
        cwd=cloned.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        for _ in range(600):
            if started.exists() or doctor.poll() is not None:
                break
            time.sleep(0.05)
        assert started.exists(), "the interpreter was never asked"
        doctor.send_signal(signal.SIGINT)
        out, err = doctor.communicate(timeout=30)
    finally:
        doctor.kill()
        doctor.wait()
    assert doctor.returncode == 130 and "Traceback" not in out + err, err
    assert err.splitlines()[-2:] == [
        "error: interrupted",
        "hint: run the same command again to see it all (it changed nothing)",
    ]
    assert all(pid_gone(int(pid)) for pid in pids.read_text().split())


def test_the_reads_of_the_dataset_checks_go_through_the_scan() -> None:
    """No dataset module opens, lists or stats on its own: every read is the Scan's (or
    read_head's), so each failure is a finding."""
    from mmlab_bootstrap.doctor import dataset_specs as datalayouts
    from mmlab_bootstrap.doctor import pickles as pickleformat

    for module in (datasets, datalayouts, pickleformat):
        source = Path(module.__file__ or "").read_text()
        for call in ("open(", ".is_file()", ".is_dir()", ".exists()", "scandir(", ".stat("):
            assert call not in source, (module.__name__, call)


TABLE = Path("mmcv") / "docs" / "en" / "_static" / "version.json"
# mmcv's wheel table in the workspace's checkout, as it should not be.
TABLES = {
    "a FIFO": lambda path: os.mkfifo(path),
    "a link to /dev/zero": lambda path: path.symlink_to("/dev/zero"),
    "over the limit": lambda path: path.write_text(json.dumps({"Linux": ["x" * (2 << 20)]})),
    "a list": lambda path: path.write_text("[]"),
    "rows not a list": lambda path: path.write_text('{"Linux": 5}'),
    "versions a number": lambda path: path.write_text(
        json.dumps({"Linux": [{"cuda": "cpu", "torch": "2.1.x", "mmcv": 5}]})
    ),
    "deeply nested": lambda path: path.write_text("[" * DEEP + "]" * DEEP),
}


@pytest.mark.parametrize("case", TABLES)
@pytest.mark.usefixtures("bounded")
def test_a_hostile_wheel_table_is_no_table(tmp_path: Path, case: str) -> None:
    """The table is read as a regular file of at most 1 MiB, every value typed: none of
    these hangs or raises; the wheel line still names the index."""
    (tmp_path / TABLE).parent.mkdir(parents=True)
    TABLES[case](tmp_path / TABLE)
    (tmp_path / "answer.json").write_text(json.dumps(answer()))
    python = write(tmp_path / "python", f"#!/bin/sh\nexec cat '{tmp_path / 'answer.json'}'\n")
    python.chmod(0o755)
    info, findings = python_section(tmp_path, (), str(python), os.environ)
    (wheels,) = [f for f in findings if f.subject == "mmcv wheels"]
    if case == "versions a number":  # mmcv's table, listing no wheel for the pair
        assert info["mmcv_wheels"]["versions"] == [] and wheels.level == WARNING
    else:
        assert info["mmcv_wheels"]["versions"] is None
        assert "(no mmcv table in the workspace to check)" in wheels.text


@pytest.mark.parametrize("printed", [0, 1, 4095, 4096, 4097, 100_000])
@pytest.mark.usefixtures("bounded")
def test_the_byte_cap_is_exact(printed: int) -> None:
    """Up to the cap a program's output is whole and it ends by itself; past it, it is
    stopped, with the cap's worth kept (both streams count)."""
    from mmlab_bootstrap.proc.bounded import run_bounded

    half = printed // 2
    script = f"printf '%{half}s' '' ; printf '%{printed - half}s' '' >&2"
    ran = run_bounded(["sh", "-c", script], seconds=30, max_bytes=4096)
    if printed <= 4096:
        assert (ran.code, ran.stopped, len(ran.out) + len(ran.err)) == (0, None, printed)
    else:
        assert ran.code is None and ran.stopped == "it printed more than 4096 bytes"
        assert len(ran.out) + len(ran.err) == 4096

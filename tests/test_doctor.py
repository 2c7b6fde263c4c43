"""`inv doctor` as the user runs it: status's checks, the datasets and a fake training
environment; exit 0 when ready, 1 otherwise; `--json` with its documented keys; nothing
changes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cloned, assert_clean_error, inv, inv_process, snapshot
from .lib.datatrees import kitti, new_checkout, nuscenes, old_nuscenes_infos
from .lib.fakepython import FakePython, sub_projects

KEYS = {"healthy", "problems", "warnings", "status", "datasets", "python", "findings", "verify"}


@pytest.fixture
def ready(cloned: Cloned, tmp_path: Path) -> tuple[Cloned, FakePython]:
    """A bootstrapped workspace with a complete KITTI and a training environment that fits."""
    assert inv(cloned.root, "bootstrap").code == 0
    sub_projects(cloned.ext)
    new_checkout(cloned.ext / "mmdetection3d")
    kitti(cloned.ext / "mmdetection3d" / "data" / "kitti")
    fake = FakePython(tmp_path / "venv")
    fake.install("torch", "2.1.2+cu118", cuda="11.8")
    fake.install("mmcv", "2.1.0")
    fake.install("mmengine", "0.10.3")
    fake.install("mmdet", "3.2.0", editable=cloned.ext / "mmdetection")
    fake.install("mmdet3d", "1.4.0", editable=cloned.ext / "mmdetection3d")
    return cloned, fake


def doctor_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    run = inv(root, "doctor", "--json", *args)
    return run.code, json.loads(run.out)


def test_a_ready_workspace(ready: tuple[Cloned, FakePython]) -> None:
    """Exit 0 with the documented keys, in JSON and as text; nothing changes."""
    cloned, fake = ready
    before = snapshot(cloned.root)
    code, found = doctor_json(cloned.root, "--python", str(fake.python))
    assert code == 0, found["problems"]
    assert set(found) == KEYS
    assert found["status"]["healthy"] and found["problems"] == []
    (data,) = [d for d in found["datasets"] if d["project"] == "mmdetection3d"]
    assert [d["name"] for d in data["datasets"]] == ["KITTI"]
    assert found["python"]["packages"]["mmdet3d"]["version"] == "1.4.0"
    assert found["python"]["mmcv_wheels"]["versions"] == ["2.2.0", "2.1.0"]
    assert {f["section"] for f in found["findings"]} == {"datasets", "python"}
    assert set(found["findings"][0]) == {"section", "level", "subject", "text", "hint"}
    text = inv(cloned.root, "doctor", "--python", str(fake.python))
    assert text.code == 0 and text.lines[-1] == "ready to train"
    assert (
        "  ok mmdetection3d/data/kitti: KITTI layout complete, 3 sampled id(s) found" in text.lines
    )
    assert snapshot(cloned.root) == before


def test_problems_are_one_line_each_with_a_hint(ready: tuple[Cloned, FakePython]) -> None:
    """A wrongly named dataset, an old info file and an editable install from elsewhere:
    exit 1, each problem one line holding its hint, in the text and in `problems`."""
    cloned, fake = ready
    data = cloned.ext / "mmdetection3d" / "data"
    (data / "kitti").rename(data / "Kitti")
    nuscenes(data / "nuscenes", infos=old_nuscenes_infos())
    fake.uninstall("mmdet3d")
    fake.install("mmdet3d", "1.4.0", editable=cloned.root / "elsewhere" / "mmdetection3d")
    code, found = doctor_json(cloned.root, "--python", str(fake.python))
    assert code == 1 and found["status"]["healthy"]
    problems = found["problems"]
    assert any(p.startswith("mmdetection3d/data/Kitti: a KITTI folder must be named 'kitti'")
               and "; hint: mv " in p for p in problems), problems  # fmt: skip
    assert any(p.startswith("mmdet3d: installed editable from ") for p in problems), problems
    old = [p for p in problems if "info file in the old format" in p]
    assert len(old) == 2 and all("update_infos_to_v2.py --dataset nuscenes" in p for p in old)
    text = inv(cloned.root, "doctor", "--python", str(fake.python))
    assert text.code == 1 and text.lines[-1].startswith(f"doctor: {len(problems)} problem(s)")
    for problem in problems:
        assert f"  {problem}" in text.lines


def test_the_datasets_follow_the_storage_root(ready: tuple[Cloned, FakePython]) -> None:
    """A dataset linked from outside the storage root is a warning (mount it too)."""
    cloned, fake = ready
    data = cloned.ext / "mmdetection3d" / "data"
    elsewhere = cloned.root.parent / "disk2" / "kitti"
    shutil.move(str(data / "kitti"), str(elsewhere))
    (data / "kitti").symlink_to(elsewhere)
    code, found = doctor_json(cloned.root, "--python", str(fake.python))
    assert code == 0
    assert any("mount this path too when you run in a container" in w for w in found["warnings"])


def test_a_workspace_not_set_up_is_not_ready(cloned: Cloned, tmp_path: Path) -> None:
    """status's problems are doctor's problems (no link yet), and it still looks at Python."""
    fake = FakePython(tmp_path / "venv")
    code, found = doctor_json(cloned.root, "--python", str(fake.python))
    assert code == 1 and not found["status"]["healthy"]
    assert set(found["status"]["problems"]) <= set(found["problems"])
    (data,) = found["datasets"]  # the tracked files under data/ are not datasets
    assert data["datasets"] == [] and data["unknown"] == ["lyft", "s3dis", "scannet"]
    assert found["python"]["packages"]["torch"]["version"] is None


def test_not_an_interpreter_is_one_error(cloned: Cloned, tmp_path: Path) -> None:
    """No executable there: one error before anything is shown. A program that runs but is
    no Python it can ask: one problem, and the rest of the report (exit 1)."""
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\necho nothing to see\n")
    os.chmod(script, 0o755)
    run = inv(cloned.root, "doctor", "--python", str(script))
    assert run.code == 1 and run.err == "" and "Traceback" not in run.out
    said = f"  python: --python '{script}' is not a Python interpreter this can ask"
    assert any(line.startswith(said) for line in run.lines), run.out
    assert "datasets:" in run.lines and run.lines[-1].startswith("doctor: ")
    assert_clean_error(inv(cloned.root, "doctor", "--python", "nosuch3"), "not on PATH")


def test_the_default_interpreter_is_python3_on_path(cloned: Cloned, tmp_path: Path) -> None:
    """Without --python, the `python3` first on PATH is asked (a real process)."""
    fake = FakePython(tmp_path / "venv")
    fake.install("torch", "2.0.1", cuda=None)
    assert (fake.folder / "bin" / "python3").exists()  # venv makes it
    path = f"{fake.folder / 'bin'}{os.pathsep}{os.environ['PATH']}"
    run = inv_process(cloned.root, "doctor", "--json", env={"PATH": path})
    found = json.loads(run.out)
    assert found["python"]["interpreter"] == str(fake.folder / "bin" / "python3")
    assert found["python"]["packages"]["torch"]["version"] == "2.0.1"

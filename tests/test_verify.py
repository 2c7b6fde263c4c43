"""`inv verify` with a stand-in training interpreter: a real venv holding small stand-ins of
torch, mmcv (with ops), mmdet and mmdet3d (whose `apis` write the demo's result files), and
mmdetection3d's own demo script on its bundled point cloud."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints import store as ckptstore

from .conftest import inv
from .lib.ckptfixture import checkpoint, random_bytes, write_index
from .lib.fakepython import write

# mmdetection3d 1.0.0rc4's demo/pcd_demo.py, as it is.
PCD_DEMO = """\
# Copyright (c) OpenMMLab. All rights reserved.
from argparse import ArgumentParser

from mmdet3d.apis import inference_detector, init_model, show_result_meshlab


def main():
    parser = ArgumentParser()
    parser.add_argument('pcd', help='Point cloud file')
    parser.add_argument('config', help='Config file')
    parser.add_argument('checkpoint', help='Checkpoint file')
    parser.add_argument(
        '--device', default='cuda:0', help='Device used for inference')
    parser.add_argument(
        '--score-thr', type=float, default=0.0, help='bbox score threshold')
    parser.add_argument(
        '--out-dir', type=str, default='demo', help='dir to save results')
    parser.add_argument(
        '--show',
        action='store_true',
        help='show online visualization results')
    parser.add_argument(
        '--snapshot',
        action='store_true',
        help='whether to save online visualization results')
    args = parser.parse_args()

    # build the model from a config file and a checkpoint file
    model = init_model(args.config, args.checkpoint, device=args.device)
    # test a single image
    result, data = inference_detector(model, args.pcd)
    # show the results
    show_result_meshlab(
        data,
        result,
        args.out_dir,
        args.score_thr,
        show=args.show,
        snapshot=args.snapshot,
        task='det')


if __name__ == '__main__':
    main()
"""

APIS = """\
import os, pathlib, sys, time
BEHAVIOUR = {behaviour!r}

def init_model(config, checkpoint, device):
    assert os.path.isfile(config) and os.path.isfile(checkpoint), (config, checkpoint)
    assert device == {device!r}, device
    assert os.environ.get("MPLBACKEND") == "Agg" and "DISPLAY" not in os.environ
    if BEHAVIOUR == "raise":
        raise RuntimeError("voxelization is not implemented on cpu")
    if BEHAVIOUR == "hang":
        time.sleep(60)
    return object()

def inference_detector(model, pcd):
    return [dict(boxes_3d=[1])], dict(pcd=pcd)

def show_result_meshlab(data, result, out_dir, score_thr, show, snapshot, task):
    if BEHAVIOUR == "silent":
        return
    stem = pathlib.Path(data["pcd"]).stem
    folder = pathlib.Path(out_dir) / stem
    folder.mkdir(parents=True)
    (folder / (stem + "_points.obj")).write_text("v 0 0 0\\n")
    (folder / (stem + "_pred.obj")).write_text("v 1 1 1\\n")
"""

MODEL = "hv_pointpillars_secfpn_6x8_160e_kitti-3d-car"


@dataclass
class Stand:
    root: Path
    python: Path
    site: Path
    final: Path


def stand_in(root: Path, *, behaviour: str = "ok", ops: bool = True, cuda: bool = False) -> Stand:
    venv = root / "trainenv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python*/site-packages")
    write(
        site / "torch" / "__init__.py",
        f"__version__ = '1.11.0'\nclass cuda:\n    is_available = staticmethod(lambda: {cuda})\n",
    )
    write(site / "mmcv" / "__init__.py", "__version__ = '1.6.1'\n")
    write(
        site / "mmcv" / "ops" / "__init__.py",
        "" if ops else "raise ImportError('libc10_cuda.so: cannot open shared object file')\n",
    )
    write(site / "mmdet" / "__init__.py", "__version__ = '2.26.0'\n")
    write(site / "mmdet3d" / "__init__.py", "__version__ = '1.0.0rc4'\n")
    device = "cuda:0" if cuda else "cpu"
    write(site / "mmdet3d" / "apis.py", APIS.format(behaviour=behaviour, device=device))
    project = root / "mmlab_extension" / "mmdetection3d"
    car = checkpoint("mmdetection3d", MODEL, random_bytes(2000), stem=MODEL)
    write_index(project, [car])
    write(project / car.config, "model = dict(type='VoxelNet')\n")
    write(project / "demo" / "pcd_demo.py", PCD_DEMO)
    (project / "demo" / "data" / "kitti").mkdir(parents=True)
    (project / "demo" / "data" / "kitti" / "kitti_000008.bin").write_bytes(b"\0" * 64)
    final = root / "mmlab_checkpoints" / "mmdetection3d" / "checkpoints" / car.file_name
    final.parent.mkdir(parents=True)
    final.write_bytes(car.data)
    ckptstore.write_record(final, hashlib.sha256(car.data).hexdigest(), car.url)
    return Stand(root, venv / "bin" / "python", site, final)


def test_every_layer_passes_and_doctor_includes_the_result(workspace: Path) -> None:
    stand = stand_in(workspace)
    run = inv(workspace, "verify", "--python", str(stand.python))
    assert run.code == 0, run.err
    for layer in ("interpreter", "imports", "compiled ops", "checkpoint", "demo"):
        assert any(line.startswith(f"{layer}: ") for line in run.lines), (layer, run.out)
    assert "imports: torch 1.11.0, mmcv 1.6.1, mmdet 2.26.0, mmdet3d 1.0.0rc4" in run.out
    assert "--device cpu: wrote kitti_000008_pred.obj" in run.out
    doctor = inv(workspace, "doctor", "--json", "--python", str(stand.python))
    found = json.loads(doctor.out)
    assert found["verify"]["ok"] is True
    assert [layer["ok"] for layer in found["verify"]["layers"]] == [True] * 5


def test_a_gpu_runs_the_demo_on_cuda(workspace: Path) -> None:
    stand = stand_in(workspace, cuda=True)
    run = inv(workspace, "verify", "--python", str(stand.python))
    assert run.code == 0, run.err
    assert "--device cuda:0: wrote" in run.out


def test_dry_runs_nothing(workspace: Path) -> None:
    stand = stand_in(workspace)
    run = inv(workspace, "--dry", "verify", "--python", str(stand.python))
    assert run.code == 0, run.err
    assert "would run mmdetection3d's demo/pcd_demo.py" in run.out
    assert not (workspace / ".mmlab-bootstrap-verify.json").exists()


@pytest.mark.parametrize(
    ("change", "layer", "text", "hint"),
    [
        pytest.param("no-python", "interpreter", "does not start", "python-env", id="missing"),
        pytest.param("shell", "interpreter", "did not answer", "python-env", id="not-python"),
        pytest.param(
            "no-mmdet3d", "imports", "mmdet3d: ModuleNotFoundError", "python-env", id="import"
        ),
        pytest.param("no-ops", "compiled ops", "libc10_cuda.so", "MMLAB_MMCV_INDEX", id="ops"),
        pytest.param(
            "no-checkpoint",
            "checkpoint",
            "is missing",
            "fetch-checkpoints --model",
            id="checkpoint",
        ),
        pytest.param(
            "raise", "demo", "voxelization is not implemented on cpu", "MMLAB_CUDA", id="demo-fails"
        ),
        pytest.param("silent", "demo", "wrote no predicted boxes", "python-env", id="no-result"),
        pytest.param("hang", "demo", "did not finish within", "python-env", id="hangs"),
        pytest.param("flood", "interpreter", "did not answer", "python-env", id="floods"),
    ],
)
def test_the_first_failing_layer_is_named_with_its_fix(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    layer: str,
    text: str,
    hint: str,
) -> None:
    behaviour = change if change in ("raise", "silent", "hang") else "ok"
    stand = stand_in(workspace, behaviour=behaviour, ops=change != "no-ops")
    python = str(stand.python)
    if change == "no-python":
        python = str(workspace / "nowhere" / "python")
    elif change in ("shell", "flood"):
        script = workspace / "fake-python"
        body = "echo hello" if change == "shell" else "yes MMLAB-VERIFY"
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
        python = str(script)
        monkeypatch.setattr("mmlab_bootstrap.pythonenv.verify.OUTPUT_LIMIT", 1 << 16)
    elif change == "no-mmdet3d":
        (stand.site / "mmdet3d" / "__init__.py").write_text("import not_there\n")
    elif change == "no-checkpoint":
        stand.final.unlink()
    elif change == "hang":
        monkeypatch.setattr("mmlab_bootstrap.pythonenv.verify.DEMO_SECONDS", 1.0)
    run = inv(workspace, "verify", "--python", python)
    assert run.code == 1
    failed = [line for line in run.lines if line.startswith(f"{layer}: ")]
    assert failed and text in failed[0], run.out + run.err
    assert hint in run.out
    record = json.loads((workspace / ".mmlab-bootstrap-verify.json").read_text())
    assert record["ok"] is False
    states = {entry["layer"]: entry["ok"] for entry in record["layers"]}
    assert states[layer] is False
    doctor = json.loads(inv(workspace, "doctor", "--json").out)
    assert any(f"the last inv verify failed at {layer}" in p for p in doctor["problems"])


def test_without_a_training_interpreter_it_names_python_env(workspace: Path) -> None:
    run = inv(workspace, "verify")
    assert run.code == 1
    assert "there is no training interpreter" in run.err
    assert "python-env" in run.err


def test_the_demo_output_of_a_killed_run_is_removed_by_the_next(workspace: Path) -> None:
    """A run killed while the demo ran leaves its output folder in the workspace
    (`.mmlab-verify-` and 8 of tempfile's letters, as older versions named it): the next run
    removes it, and leaves none of its own."""
    stand = stand_in(workspace)
    left = write(workspace / ".mmlab-verify-k3_x9zqa" / "kitti_000008_pred.obj", "v 0 0 0\n")
    mine = write(workspace / ".mmlab-verify-notmine" / "keep", "")
    run = inv(workspace, "verify", "--python", str(stand.python))
    assert run.code == 0, run.err
    assert f"removed {left.parent} (left by an interrupted run)" in run.out
    assert not left.parent.exists() and mine.exists()
    assert sorted(p.name for p in workspace.glob(".mmlab-verify-*")) == [mine.parent.name]

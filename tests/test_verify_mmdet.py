"""`inv verify` with mmdetection's own demo, `demo/image_demo.py` on `demo/demo.jpg`, as the
checkout's script takes its arguments (2.x: `img config checkpoint --out-file F`; 3.x's
inferencer: `inputs model --weights W --out-dir D`), and the demo picked per project. The
training interpreter is a stand-in: a real venv holding small torch, mmcv and mmdet stand-ins
whose `apis` write the drawn image; the demo scripts are stand-ins with the real flags."""

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

MODEL = "faster_rcnn_r50_fpn_1x_coco"
MODEL_3D = "hv_pointpillars_secfpn_6x8_160e_kitti-3d-car"

# Stand-ins with the flags of mmdetection's demo/image_demo.py of each generation.
DEMO_2X = """\
from argparse import ArgumentParser
from mmdet.apis import inference_detector, init_detector, show_result_pyplot

parser = ArgumentParser()
parser.add_argument('img')
parser.add_argument('config')
parser.add_argument('checkpoint')
parser.add_argument('--out-file', default='')
parser.add_argument('--device', default='cuda:0')
parser.add_argument('--score-thr', type=float, default=0.3)
args = parser.parse_args()
model = init_detector(args.config, args.checkpoint, device=args.device)
result = inference_detector(model, args.img)
show_result_pyplot(model, args.img, result, score_thr=args.score_thr,
                   out_file=args.out_file if args.out_file != '' else None)
"""
DEMO_3X = """\
from argparse import ArgumentParser
from mmdet.apis import DetInferencer

parser = ArgumentParser()
parser.add_argument('inputs', type=str)
parser.add_argument('model', type=str)
parser.add_argument('--weights', default=None)
parser.add_argument(
    '--out-dir', type=str, default='outputs')
parser.add_argument('--device', default='cuda:0')
parser.add_argument('--show', action='store_true')
args = vars(parser.parse_args())
inferencer = DetInferencer(model=args.pop('model'), weights=args.pop('weights'),
                           device=args.pop('device'))
inferencer(**args)
"""
DEMO_WINDOW_ONLY = """\
from argparse import ArgumentParser
from mmdet.apis import inference_detector, init_detector, show_result_pyplot

parser = ArgumentParser()
parser.add_argument('img')
parser.add_argument('config')
parser.add_argument('checkpoint')
parser.add_argument('--device', default='cuda:0')
args = parser.parse_args()
model = init_detector(args.config, args.checkpoint, device=args.device)
show_result_pyplot(model, args.img, inference_detector(model, args.img))
"""

APIS = """\
import os, pathlib

def _check(config, checkpoint, device):
    assert os.path.isfile(config) and os.path.isfile(checkpoint), (config, checkpoint)
    assert device == 'cpu', device
    assert os.environ.get('MPLBACKEND') == 'Agg' and 'DISPLAY' not in os.environ

def init_detector(config, checkpoint, device):
    _check(config, checkpoint, device)
    return object()

def inference_detector(model, img):
    assert os.path.isfile(img), img
    return [[0, 0, 1, 1, 0.9]]

def show_result_pyplot(model, img, result, score_thr=0.3, out_file=None, **kwargs):
    if out_file is None:
        raise RuntimeError('cannot connect to X server')
    pathlib.Path(out_file).write_bytes(b'drawn')

class DetInferencer:
    def __init__(self, model, weights, device):
        _check(model, weights, device)

    def __call__(self, inputs, out_dir, show=False):
        assert not show
        (pathlib.Path(out_dir) / 'vis').mkdir(parents=True)
        (pathlib.Path(out_dir) / 'vis' / pathlib.Path(inputs).name).write_bytes(b'drawn')
        (pathlib.Path(out_dir) / 'preds').mkdir()
"""

PCD_APIS = """\
import pathlib

def init_model(config, checkpoint, device):
    return object()

def inference_detector(model, pcd):
    return [dict(boxes_3d=[1])], dict(pcd=pcd)

def show_result_meshlab(data, result, out_dir, score_thr, show, snapshot, task):
    stem = pathlib.Path(data['pcd']).stem
    (pathlib.Path(out_dir) / stem).mkdir(parents=True)
    (pathlib.Path(out_dir) / stem / (stem + '_pred.obj')).write_text('v 1 1 1\\n')
"""

PCD_DEMO = """\
import sys
from mmdet3d.apis import inference_detector, init_model, show_result_meshlab
pcd, config, checkpoint = sys.argv[1:4]
out_dir = sys.argv[sys.argv.index('--out-dir') + 1]
model = init_model(config, checkpoint, device='cpu')
result, data = inference_detector(model, pcd)
show_result_meshlab(data, result, out_dir, 0.0, show=False, snapshot=False, task='det')
"""


@dataclass
class Stand:
    root: Path
    python: Path

    @property
    def extension(self) -> Path:
        return self.root / "mmlab_extension"


def stored(root: Path, project: str, name: str, stem: str = "") -> None:
    """A model in the project's index, its config, and its checkpoint verified in storage."""
    found = checkpoint(project, name, random_bytes(1500), stem=stem)
    folder = root / "mmlab_extension" / project
    write_index(folder, [found])
    write(folder / found.config, "model = dict(type='FasterRCNN')\n")
    final = root / "mmlab_checkpoints" / project / "checkpoints" / found.file_name
    final.parent.mkdir(parents=True, exist_ok=True)
    final.write_bytes(found.data)
    ckptstore.write_record(final, hashlib.sha256(found.data).hexdigest(), "https://x/y.pth")


def stand_in(root: Path, demo: str = DEMO_2X, venv: Path | None = None) -> Stand:
    venv = venv or root / "trainenv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python*/site-packages")
    write(
        site / "torch" / "__init__.py",
        "__version__ = '1.11.0'\nclass cuda:\n    is_available = staticmethod(lambda: False)\n",
    )
    write(site / "mmcv" / "__init__.py", "__version__ = '1.6.1'\n")
    write(site / "mmcv" / "ops" / "__init__.py", "")
    write(site / "mmdet" / "__init__.py", "__version__ = '2.26.0'\n")
    write(site / "mmdet" / "apis.py", APIS)
    write(site / "mmdet3d" / "__init__.py", "__version__ = '1.0.0rc4'\n")
    write(site / "mmdet3d" / "apis.py", PCD_APIS)
    project = root / "mmlab_extension" / "mmdetection"
    stored(root, "mmdetection", MODEL)
    write(project / "demo" / "image_demo.py", demo)
    (project / "demo" / "demo.jpg").write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    return Stand(root, venv / "bin" / "python")


def with_mmdetection3d(stand: Stand) -> None:
    project = stand.extension / "mmdetection3d"
    stored(stand.root, "mmdetection3d", MODEL_3D, stem=MODEL_3D)
    write(project / "demo" / "pcd_demo.py", PCD_DEMO)
    write(project / "demo" / "data" / "kitti" / "kitti_000008.bin", "\0" * 64)


@pytest.mark.parametrize(
    ("demo", "how"),
    [pytest.param(DEMO_2X, "2.x --out-file", id="2.x"), pytest.param(DEMO_3X, "3.x", id="3.x")],
)
def test_mmdetections_image_demo_passes_headless(workspace: Path, demo: str, how: str) -> None:
    stand = stand_in(workspace, demo)
    run = inv(workspace, "verify", "--python", str(stand.python))
    assert run.code == 0, run.out + run.err
    layers = [line for line in run.lines if line.split(":")[0] in ("interpreter", "imports")]
    assert len(layers) == 2, run.out
    assert "imports: torch 1.11.0, mmcv 1.6.1, mmdet 2.26.0" in run.out
    assert "mmdet3d" not in run.out
    assert f"checkpoint: mmdetection:{MODEL}" in run.out
    assert (
        f"demo: demo/image_demo.py demo/demo.jpg configs/faster/{MODEL}.py … --device cpu:"
        " wrote demo.jpg" in run.out
    ), how
    record = json.loads((workspace / ".mmlab-bootstrap-verify.json").read_text())
    assert record["ok"] is True and record["model"] == MODEL
    assert record["project"] == "mmdetection"
    assert not list(workspace.glob(".mmlab-verify-*"))  # the temporary folder is gone


def test_a_demo_that_can_only_show_a_window_is_named(workspace: Path) -> None:
    stand = stand_in(workspace, DEMO_WINDOW_ONLY)
    run = inv(workspace, "verify", "--python", str(stand.python))
    assert run.code == 1
    failed = [line for line in run.lines if line.startswith("demo: ")]
    assert failed and "it can only show its result in a window" in failed[0], run.out


def test_a_demo_that_writes_nothing_fails_the_demo_layer(workspace: Path) -> None:
    stand = stand_in(
        workspace,
        DEMO_2X.replace("out_file=args.out_file if args.out_file != '' else None", "out_file=None"),
    )
    run = inv(workspace, "verify", "--python", str(stand.python))
    assert run.code == 1
    failed = [line for line in run.lines if line.startswith("demo: ")]
    assert failed and "cannot connect to X server" in failed[0], run.out


@pytest.mark.parametrize(
    ("projects", "model", "demo"),
    [
        pytest.param(None, None, "demo/image_demo.py", id="first-of-MMLAB_PROJECTS"),
        pytest.param("mmdetection3d mmdetection", None, "demo/pcd_demo.py", id="order"),
        pytest.param(None, f"mmdetection3d:{MODEL_3D}", "demo/pcd_demo.py", id="model-names-it"),
        pytest.param("mmdetection3d", f"mmdetection:{MODEL}", "demo/image_demo.py", id="named"),
    ],
)
def test_the_demo_is_picked_per_project(
    workspace: Path, projects: str | None, model: str | None, demo: str
) -> None:
    stand = stand_in(workspace)
    with_mmdetection3d(stand)
    args = ["verify", "--python", str(stand.python), *(["--model", model] if model else [])]
    run = inv(workspace, *args, env={"MMLAB_PROJECTS": projects} if projects else None)
    assert run.code == 0, run.out + run.err
    assert f"demo: {demo}" in run.out


def test_the_venv_of_a_project_runs_its_demo(workspace: Path) -> None:
    """The interpreter inv python-env made for mmdetection3d runs mmdetection3d's demo, though
    mmdetection comes first in MMLAB_PROJECTS."""
    venv = workspace / ".venvs" / "mmdetection3d"
    stand = stand_in(workspace, venv=venv)
    with_mmdetection3d(stand)
    write(venv / "mmlab-bootstrap-env.json", json.dumps({"made_by": "mmlab-bootstrap"}))
    run = inv(workspace, "verify")
    assert run.code == 0, run.out + run.err
    assert "demo: demo/pcd_demo.py" in run.out
    assert "mmdet3d 1.0.0rc4" in run.out


def test_dry_names_the_projects_demo(workspace: Path) -> None:
    stand = stand_in(workspace)
    run = inv(workspace, "--dry", "verify", "--python", str(stand.python))
    assert run.code == 0, run.err
    assert f"would run mmdetection's demo/image_demo.py with {MODEL} in" in run.out
    assert not (workspace / ".mmlab-bootstrap-verify.json").exists()

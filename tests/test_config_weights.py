"""`fetch-checkpoints --config`: every weight a config loads, put where training reads it;
stand-in weights served on 127.0.0.1 through MMLAB_CHECKPOINT_MIRROR."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints.configread import read_config

from .conftest import inv, snapshot
from .lib.ckptfixture import Checkpoint, checkpoint, random_bytes, write_index
from .lib.httpserve import Served, serving

CONFIG = "mmdetection3d_extension/configs/pointpillars/pp_car.py"


def hub_file(stem: str, data: bytes) -> str:
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"


@dataclass
class Setup:
    root: Path
    served: Served
    car: Checkpoint
    regnet: str  # file names in torch's cache
    resnet: str
    data: dict[str, bytes]

    @property
    def extension(self) -> Path:
        return self.root / "mmlab_extension"

    @property
    def hub(self) -> Path:
        return self.root / "mmlab_checkpoints" / "torch" / "hub" / "checkpoints"

    @property
    def load_from(self) -> Path:
        return self.extension / "mmdetection3d/checkpoints/pointpillars" / self.car.file_name

    @property
    def final(self) -> Path:
        return self.root / "mmlab_checkpoints/mmdetection3d/checkpoints" / self.car.file_name


def write_config(extension: Path, car: Checkpoint, extra: str = "") -> None:
    folder = extension / "mmdetection3d_extension" / "configs"
    (folder / "_base_").mkdir(parents=True, exist_ok=True)
    (folder / "pointpillars").mkdir(parents=True, exist_ok=True)
    (folder / "_base_" / "model.py").write_text(
        "model = dict(\n"
        "    backbone=dict(type='RegNet',\n"
        "        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://regnetx_400mf')),\n"
        "    img_backbone=dict(type='ResNet', pretrained='torchvision://resnet50'))\n"
    )
    (extension / CONFIG).write_text(
        "import os\n"
        "_base_ = ['../_base_/model.py']\n"
        "mmlab_extension_path = os.environ['MMLAB_EXTENSION_PATH']\n"
        "load_from = (mmlab_extension_path\n"
        "    + '/mmdetection3d/checkpoints/pointpillars/'\n"
        f"    + '{car.file_name}')\n" + extra
    )


@pytest.fixture
def setup(workspace: Path) -> Iterator[Setup]:
    car = checkpoint("mmdetection3d", "pointpillars_car", random_bytes(5000))
    extension = workspace / "mmlab_extension"
    write_index(extension / "mmdetection3d", [car])
    regnet_data, resnet_data = random_bytes(3000), random_bytes(4000)
    regnet, resnet = hub_file("regnetx_400mf", regnet_data), hub_file("resnet50", resnet_data)
    zoo = extension / "mmcv" / "mmcv" / "model_zoo"
    zoo.mkdir(parents=True)
    (zoo / "open_mmlab.json").write_text(
        json.dumps({"regnetx_400mf": f"https://download.openmmlab.com/pretrain/{regnet}"})
    )
    (zoo / "torchvision_0.12.json").write_text(
        json.dumps({"resnet50": f"https://download.pytorch.org/models/{resnet}"})
    )
    (zoo / "mmcls.json").write_text("{}")
    write_config(extension, car)
    data = {
        f"/{car.path}": car.data,
        f"/pretrain/{regnet}": regnet_data,
        f"/download.pytorch.org/models/{resnet}": resnet_data,
    }
    with serving() as served:
        served.files = {path.lstrip("/"): value for path, value in data.items()}
        (workspace / ".env").write_text(f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n")
        yield Setup(workspace, served, car, regnet, resnet, data)


def test_dry_lists_every_weight_and_changes_nothing(setup: Setup) -> None:
    before = snapshot(setup.root)
    run = inv(setup.root, "--dry", "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.err
    url = setup.served.url
    assert f"would download hub:{setup.regnet} from {url}pretrain/{setup.regnet}" in run.out
    assert f"to {setup.hub / setup.regnet}" in run.out
    assert (
        f"would download hub:{setup.resnet} from {url}download.pytorch.org/models/{setup.resnet}"
        in run.out
    )
    assert f"would download mmdetection3d:pointpillars_car from {url}{setup.car.path}" in run.out
    assert f"would link {setup.load_from} -> {setup.final} ({CONFIG} load_from)" in run.out
    assert snapshot(setup.root) == before
    assert not setup.served.requests


def test_every_weight_lands_where_training_reads_it_and_a_rerun_fetches_nothing(
    setup: Setup,
) -> None:
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.err
    assert (setup.hub / setup.regnet).read_bytes() == setup.data[f"/pretrain/{setup.regnet}"]
    assert (setup.hub / f".{setup.resnet}.verified.json").is_file()
    assert setup.load_from.is_symlink()
    assert setup.load_from.read_bytes() == setup.car.data  # through the link, one copy
    assert os.path.realpath(setup.load_from) == str(setup.final)
    # the path the config names resolves, read as training reads it
    known = {"MMLAB_EXTENSION_PATH": str(setup.extension)}
    weights = {w.key: w.value for w in read_config(setup.extension / CONFIG, known).weights}
    assert Path(str(weights["load_from"])).is_file()
    requests = len(setup.served.requests)
    assert requests == 3
    again = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert again.code == 0, again.err
    assert len(setup.served.requests) == requests
    assert f"up to date: hub:{setup.regnet}" in again.out
    assert f"up to date: {CONFIG} load_from" in again.out
    assert not any(line.startswith(("fetched", "linked")) for line in again.lines)


def test_configs_in_mmlab_checkpoints_are_read(setup: Setup) -> None:
    env = setup.root / ".env"
    env.write_text(env.read_text() + f"MMLAB_CHECKPOINTS='{CONFIG}'\n")
    run = inv(setup.root, "fetch-checkpoints")
    assert run.code == 0, run.err
    assert (setup.hub / setup.resnet).is_file()
    assert setup.load_from.is_symlink()


def test_a_file_of_yours_at_the_load_from_path_is_left_as_it_is(setup: Setup) -> None:
    setup.load_from.parent.mkdir(parents=True)
    setup.load_from.write_bytes(b"mine")
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.err
    assert setup.load_from.read_bytes() == b"mine"
    assert "is there and is not a link to" in run.err + run.out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            "load_from = os.environ['NOT_SET_ANYWHERE'] + '/x.pth'\n",
            "NOT_SET_ANYWHERE is not set",
            id="unset-variable",
        ),
        pytest.param("load_from = '/nowhere/own-12345678.pth'\n", "no model", id="unpublished"),
        pytest.param(
            "model = dict(neck=dict(pretrained='open-mmlab://not_in_the_table'))\n",
            "is not in mmcv's open_mmlab.json",
            id="unknown-name",
        ),
        pytest.param(
            "model = dict(neck=dict(pretrained='https://h.invalid/a/.hidden'))\n",
            "starts with '.'",
            id="hostile-url-name",
        ),
    ],
)
def test_weights_that_cannot_be_put_in_place_are_named(
    setup: Setup, extra: str, message: str
) -> None:
    write_config(setup.extension, setup.car, extra)
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 1
    assert message in run.err + run.out
    assert "cannot be put in place" in run.err


@pytest.mark.parametrize("where", ["outside", "through-a-link"])
def test_a_load_from_outside_the_workspace_is_never_written(
    setup: Setup, tmp_path: Path, where: str
) -> None:
    """A published file name at a path outside the workspace and storage (or reached through
    a symlink in the workspace that leads outside) is named, and nothing is written there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if where == "outside":
        target = elsewhere / setup.car.file_name
        extra = f"load_from = '{target}'\n"
    else:
        (setup.extension / "mmdetection3d").mkdir(exist_ok=True)
        (setup.extension / "mmdetection3d" / "checkpoints").symlink_to(elsewhere)
        target = elsewhere / "pointpillars" / setup.car.file_name
        extra = ""
    write_config(setup.extension, setup.car, extra)
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 1
    assert "outside the workspace and the storage roots: not written" in run.err
    assert list(elsewhere.iterdir()) == []
    assert not os.path.lexists(target)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param("no/such.py", "there is no config", id="missing"),
        pytest.param("/etc/passwd", "there is no config", id="not-py"),
        pytest.param("mmdetection3d_extension", "there is no config", id="folder"),
    ],
)
def test_hostile_config_flags(setup: Setup, config: str, message: str) -> None:
    run = inv(setup.root, "fetch-checkpoints", "--config", config)
    assert run.code == 1
    assert message in run.err
    assert not setup.served.requests


def test_admlops_path_is_the_extension_path_and_unknown_variables_are_named(
    setup: Setup,
) -> None:
    """The superproject's later configs read ADMLOPS_PATH (admlops is its later name): it
    resolves to the workspace; a name nothing sets is named, and is a problem for status."""
    write_config(
        setup.extension,
        setup.car,
        "ADMLOPS_PATH = os.environ['ADMLOPS_PATH']\n"
        "data_root = os.environ['MY_DATA_ROOT'] + '/kitti/'\n"
        "load_from = ADMLOPS_PATH + '/mmdetection3d/checkpoints/pointpillars/'"
        f" + '{setup.car.file_name}'\n",
    )
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.err
    assert setup.load_from.is_symlink()
    assert "reads MY_DATA_ROOT, which .env does not set" in run.err
    assert "ADMLOPS_PATH," not in run.err
    env = setup.root / ".env"
    env.write_text(env.read_text() + f"MMLAB_CHECKPOINTS='{CONFIG}'\n")
    status = inv(setup.root, "status", "--json")
    found = json.loads(status.out)
    (config,) = found["configs"]
    assert config["variables"] == ["MMLAB_EXTENSION_PATH", "ADMLOPS_PATH", "MY_DATA_ROOT"]
    assert config["unknown"] == ["MY_DATA_ROOT"]
    assert f"config {CONFIG} reads MY_DATA_ROOT, which .env does not set" in found["problems"]
    env_run = inv(setup.root, "env")
    assert env_run.code == 0, env_run.err
    assert f"{CONFIG} reads MY_DATA_ROOT, which .env does not set" in env_run.err
    assert "ADMLOPS_PATH" not in env_run.err  # (known: written with its reason)
    assert (
        "# read by the workspace's configs: the superproject's folder: admlops" in env.read_text()
    )


def test_status_names_a_config_whose_weights_are_not_in_place(setup: Setup) -> None:
    env = setup.root / ".env"
    env.write_text(env.read_text() + f"MMLAB_CHECKPOINTS='{CONFIG}'\n")
    before = inv(setup.root, "status", "--json")
    found = json.loads(before.out)
    missing = [p for p in found["problems"] if p.startswith(f"config {CONFIG}")]
    assert len(missing) == 3, missing  # two backbones and load_from's checkpoint
    assert any(f"hub:{setup.regnet}" in p or setup.regnet in p for p in missing)
    assert not any("not in the model index" in p for p in found["problems"])
    shown = inv(setup.root, "status")
    assert f"config {CONFIG}: NOT ready; reads MMLAB_EXTENSION_PATH" in shown.out + shown.err
    assert inv(setup.root, "fetch-checkpoints").code == 0
    after = json.loads(inv(setup.root, "status", "--json").out)
    assert not [p for p in after["problems"] if p.startswith("config ")]
    assert after["configs"][0]["ready"] is True
    setup.load_from.unlink()
    gone = json.loads(inv(setup.root, "status", "--json").out)
    assert (
        f"config {CONFIG} load_from: {setup.load_from} does not link to {setup.final}"
        in (gone["problems"])
    )


REAL_GH = Path("/work/real/gh")
REAL_EXTENSION = REAL_GH / "windzu/mmlab_extension.git"


def _real_workspace(root: Path) -> None:
    import subprocess

    def recorded(name: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(REAL_EXTENSION), "ls-tree", "HEAD", name],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return out.split()[2]

    def unpack(repo: Path, commit: str, paths: list[str], into: Path) -> None:
        data = subprocess.run(
            ["git", "-C", str(repo), "archive", commit, *paths], capture_output=True, check=True
        ).stdout
        into.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "x"], input=data, cwd=into, check=True)

    extension = root / "mmlab_extension"
    unpack(REAL_EXTENSION, "HEAD", ["mmdetection3d_extension"], extension)
    unpack(
        REAL_GH / "open-mmlab/mmdetection3d.git",
        recorded("mmdetection3d"),
        ["configs", "model-index.yml"],
        extension / "mmdetection3d",
    )
    unpack(
        REAL_GH / "open-mmlab/mmcv.git", recorded("mmcv"), ["mmcv/model_zoo"], extension / "mmcv"
    )


@pytest.mark.skipif(not REAL_EXTENSION.is_dir(), reason="no mirror of the real repositories")
def test_the_real_configs_under_dry(workspace: Path) -> None:
    """The superproject's pointpillars config and a recorded mmdetection3d config with
    backbones: every weight listed with its source and destination, no request made."""
    _real_workspace(workspace)
    nus = (
        "mmdetection3d_extension/configs/pointpillars/hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d.py"
    )
    votenet = "mmdetection3d:configs/imvotenet/imvotenet_stage2_16x8_sunrgbd-3d-10class.py"
    with serving() as served:
        run = inv(
            workspace, "--dry", "fetch-checkpoints", "--config", nus, "--config", votenet,
            env={"MMLAB_CHECKPOINT_MIRROR": served.url, "MMLAB_PROJECTS": "mmdetection3d"},
        )  # fmt: skip
        assert not served.requests
    assert run.code == 0, run.err
    name = "hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d_20210826_104936-fca299c1.pth"
    link = workspace / "mmlab_extension/mmdetection3d/checkpoints/pointpillars" / name
    final = workspace / "mmlab_checkpoints/mmdetection3d/checkpoints" / name
    assert f"would link {link} -> {final} ({nus} load_from)" in run.out
    assert "would download mmdetection3d:hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d from" in run.out
    hub = workspace / "mmlab_checkpoints/torch/hub/checkpoints"
    assert f"to {hub}/resnet50-" in run.out or f"to {hub}/" in run.out
    assert f"from {served.url}mmdetection3d/v0.1.0_models/imvotenet/" in run.out

"""Reading an OpenMMLab config statically: bases, weights, environment variables; hostile
configs never run and never hang; the real recorded configs read."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints.configread import (
    FILE_LIMIT,
    MAX_DEPTH,
    ConfigError,
    Unresolved,
    WeightRef,
    read_config,
)
from mmlab_bootstrap.checkpoints.modelzoo import read_zoo, url_file_name

REAL_GH = Path("/work/real/gh")
REAL_MMDET3D = REAL_GH / "open-mmlab/mmdetection3d.git"
REAL_EXTENSION = REAL_GH / "windzu/mmlab_extension.git"
REAL_MMCV = REAL_GH / "open-mmlab/mmcv.git"
KNOWN = {"MMLAB_EXTENSION_PATH": "/ws", "ADMLOPS_PATH": "/ws"}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def values(weights: list[WeightRef]) -> dict[str, object]:
    return {w.key: w.value for w in weights}


def test_load_from_of_an_environment_variable_and_a_base(tmp_path: Path) -> None:
    """The superproject's shape: a name bound from os.environ, `+` onto it, a base's backbone."""
    write(
        tmp_path,
        "_base_/model.py",
        "model = dict(type='X', backbone=dict(type='ResNet',\n"
        "    init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))\n"
        "load_from = 'overridden.pth'\n",
    )
    config = write(
        tmp_path,
        "configs/pp.py",
        "import os\nfrom os import path as osp\n"
        "_base_ = ['../_base_/model.py']\n"
        "root = os.environ['MMLAB_EXTENSION_PATH']\n"
        "pre = os.getenv('NOT_SET', 'fallback')\n"
        "load_from = (root\n + '/mmdetection3d/checkpoints/pointpillars/'\n + 'x-fca299c1.pth')\n"
        "other = osp.join(root, f'{pre}/y.pth')\n",
    )
    found = read_config(config, KNOWN)
    assert values(found.weights) == {
        "load_from": "/ws/mmdetection3d/checkpoints/pointpillars/x-fca299c1.pth",
        "model.backbone.init_cfg.checkpoint": "torchvision://resnet50",
    }
    assert found.variables == ["MMLAB_EXTENSION_PATH", "NOT_SET"]
    assert [e.has_default for e in found.env] == [False, True]
    assert len(found.files) == 2


def test_child_overrides_and_delete(tmp_path: Path) -> None:
    """mmcv's merge: a child's `pretrained=None` and `_delete_=True` drop the base's weight."""
    write(
        tmp_path, "b.py", "model = dict(pretrained='open-mmlab://regnetx_400mf', neck=dict(a=1))\n"
    )
    child = write(tmp_path, "c.py", "_base_ = './b.py'\nmodel = dict(pretrained=None)\n")
    assert read_config(child, {}).weights == []
    other = write(
        tmp_path,
        "d.py",
        "_base_ = 'b.py'\nmodel = {'_delete_': True, 'backbone': {'pretrained': 'mmcls://vgg11'}}\n",
    )
    assert values(read_config(other, {}).weights) == {"model.backbone.pretrained": "mmcls://vgg11"}


def test_an_unset_variable_leaves_load_from_unresolved(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "c.py",
        "import os\nADMLOPS_PATH = os.environ['ADMLOPS_PATH']\n"
        "load_from = ADMLOPS_PATH + '/checkpoints/y.pth'\n",
    )
    found = read_config(config, {})
    value = values(found.weights)["load_from"]
    assert isinstance(value, Unresolved)
    assert "ADMLOPS_PATH is not set" in value.why
    assert found.variables == ["ADMLOPS_PATH"]
    assert values(read_config(config, {"ADMLOPS_PATH": "/a"}).weights) == {
        "load_from": "/a/checkpoints/y.pth"
    }


TRAP = "/tmp/mmlab-configread-trap"  # a file no hostile config may ever create


@pytest.mark.parametrize(
    ("text", "weights"),
    [
        pytest.param(
            f"__import__('os').system('touch {TRAP}')\nload_from = 'a.pth'\n",
            {"load_from": "a.pth"},
            id="import-call-never-runs",
        ),
        pytest.param(
            f"load_from = __import__('os').system('touch {TRAP}')\n",
            {"load_from": "unresolved"},
            id="import-call-as-value",
        ),
        pytest.param(
            "load_from = open('/etc/passwd').read()\n", {"load_from": "unresolved"}, id="open"
        ),
        pytest.param(
            "x = 'a'\n" + "x = x + x\n" * 40 + "load_from = x\n",
            {"load_from": "unresolved"},
            id="exponential-string",
        ),
        pytest.param("load_from = 'a' * 10**12\n", {"load_from": "unresolved"}, id="repeat"),
        pytest.param("load_from = 3\n", {"load_from": "unresolved"}, id="wrong-type"),
        pytest.param("load_from = b'x.pth'\n", {"load_from": "unresolved"}, id="bytes"),
        pytest.param(
            "model = dict(init_cfg=dict(type='Pretrained', checkpoint=dict(a=1)))\n",
            {"model.init_cfg.checkpoint": "unresolved"},
            id="checkpoint-a-dict",
        ),
        pytest.param(
            "if True:\n    load_from = 'a.pth'\n", {"load_from": "unresolved"}, id="inside-if"
        ),
        pytest.param(
            "def f():\n    return 'a'\nload_from = f()\n", {"load_from": "unresolved"}, id="call"
        ),
        pytest.param("load_from = undefined_name\n", {"load_from": "unresolved"}, id="unbound"),
        pytest.param(
            "import os\nload_from = os.environ[os.sep]\n", {"load_from": "unresolved"}, id="env"
        ),
        pytest.param(
            "load_from = " + "(" * 150 + "'a'" + ")" * 150 + "\n",
            {"load_from": "a"},
            id="parenthesised",
        ),
        pytest.param(
            "load_from = " + "[" * 200 + "]" * 200 + "\n",
            {"load_from": "unresolved"},
            id="deep-list",
        ),
        pytest.param("model = dict(pretrained=True)\n", {}, id="pretrained-a-bool"),
        pytest.param("x = {[]: 1}\n", {}, id="unhashable-key"),
        pytest.param("load_from = {{_base_.x}}\n", {"load_from": "unresolved"}, id="base-var"),
        pytest.param("load_from = f'{1:>10}'\n", {"load_from": "unresolved"}, id="fstring-fmt"),
    ],
)
def test_hostile_configs_are_read_never_run(
    tmp_path: Path, text: str, weights: dict[str, str]
) -> None:
    config = write(tmp_path, "c.py", text)
    found = read_config(config, {})
    shown = {
        w.key: ("unresolved" if isinstance(w.value, Unresolved) else w.value) for w in found.weights
    }
    assert shown == weights
    assert not os.path.exists(TRAP)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param({"c.py": "_base_ = 'c.py'\n"}, "is its own base", id="self-cycle"),
        pytest.param(
            {"c.py": "_base_ = 'd.py'\n", "d.py": "_base_ = ['c.py']\n"},
            "is its own base",
            id="cycle",
        ),
        pytest.param({"c.py": "_base_ = 'missing.py'\n"}, "there is no config", id="missing-base"),
        pytest.param({"c.py": "_base_ = 3\n"}, "not a file name", id="base-an-int"),
        pytest.param({"c.py": "_base_ = [1]\n"}, "not a file name", id="base-list-of-int"),
        pytest.param({"c.py": "load_from = (\n"}, "not valid Python", id="syntax"),
        pytest.param({"c.py": "x = 1\0\n"}, "not valid Python", id="nul-byte"),
        pytest.param({"c.py": "#" * (FILE_LIMIT + 1)}, "more than", id="huge"),
        pytest.param({"c.py": "_base_ = 'dir.py'\n", "dir.py/x": ""}, "a folder", id="folder"),
        pytest.param(
            {"c.py": "x = " + "-" * 300000 + "1\n"}, "", id="deep-expression"
        ),  # (parses or is refused; never a traceback)
    ],
)
def test_hostile_config_files_are_refused(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    try:
        read_config(tmp_path / "c.py", {})
    except ConfigError as error:
        assert message in error.message
    else:
        assert not message


def test_a_long_chain_of_bases_is_bounded(tmp_path: Path) -> None:
    for number in range(MAX_DEPTH + 3):
        write(tmp_path, f"c{number}.py", f"_base_ = 'c{number + 1}.py'\n")
    write(tmp_path, f"c{MAX_DEPTH + 3}.py", "load_from = 'a.pth'\n")
    with pytest.raises(ConfigError, match="levels of _base_"):
        read_config(tmp_path / "c0.py", {})


def test_a_fifo_config_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "c.py")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_config(tmp_path / "c.py", {})


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        pytest.param("[1, 2]", "not a table", id="a-list"),
        pytest.param('{"a": 1}', "not a table", id="not-strings"),
        pytest.param("{", "not JSON", id="not-json"),
        pytest.param(" " * (2 << 20), "more than", id="huge"),
    ],
)
def test_hostile_mmcv_tables(tmp_path: Path, table: str, problem: str) -> None:
    folder = tmp_path / "mmcv" / "mmcv" / "model_zoo"
    folder.mkdir(parents=True)
    (folder / "open_mmlab.json").write_text(table)
    zoo = read_zoo(tmp_path / "mmcv")
    assert any(problem in text for text in zoo.problems)
    assert zoo.url("open-mmlab://a") == (None, "mmcv's table open_mmlab.json was not read")


def test_table_lookups(tmp_path: Path) -> None:
    folder = tmp_path / "mmcv" / "mmcv" / "model_zoo"
    folder.mkdir(parents=True)
    (folder / "open_mmlab.json").write_text(
        json.dumps({"new": "https://download.openmmlab.com/a/new-12345678.pth", "loc": "x.pth"})
    )
    (folder / "deprecated.json").write_text(json.dumps({"old": "new"}))
    (folder / "torchvision_0.12.json").write_text(
        json.dumps({"resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth"})
    )
    zoo = read_zoo(tmp_path / "mmcv")
    assert zoo.url("open-mmlab://old")[0] == "https://download.openmmlab.com/a/new-12345678.pth"
    assert zoo.url("open-mmlab://loc")[0] is None
    assert "not in mmcv's mmcls.json" not in zoo.url("mmcls://x")[1]  # (no table: said)
    assert zoo.url("torchvision://nope")[1] == "'nope' is not in mmcv's torchvision_0.12.json"
    assert url_file_name("https://h/a/b%20c-1.pth?x=1") == "b c-1.pth"


def _archive(repo: Path, commit: str, paths: list[str], into: Path) -> None:
    data = subprocess.run(
        ["git", "-C", str(repo), "archive", commit, *paths], capture_output=True, check=True
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "x"], input=data, cwd=into, check=True)


def _recorded(name: str) -> str:
    line = subprocess.run(
        ["git", "-C", str(REAL_EXTENSION), "ls-tree", "HEAD", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return line[2]


@pytest.mark.skipif(
    not (REAL_MMDET3D.is_dir() and REAL_EXTENSION.is_dir() and REAL_MMCV.is_dir()),
    reason="no mirror of the real repositories",
)
def test_the_real_configs(tmp_path: Path) -> None:
    """Every config of the recorded mmdetection3d reads; its backbone names resolve through
    the recorded mmcv's tables; the superproject's configs give what training would load."""
    _archive(REAL_MMDET3D, _recorded("mmdetection3d"), ["configs"], tmp_path / "mmdetection3d")
    _archive(REAL_MMCV, _recorded("mmcv"), ["mmcv/model_zoo"], tmp_path / "mmcv")
    _archive(REAL_EXTENSION, "HEAD", ["mmdetection3d_extension"], tmp_path)
    zoo = read_zoo(tmp_path / "mmcv")
    assert zoo.problems == []
    configs = sorted((tmp_path / "mmdetection3d" / "configs").rglob("*.py"))
    names: set[str] = set()
    for config in configs:
        found = read_config(config, {})
        for weight in found.weights:
            assert isinstance(weight.value, str), (config, weight)
            names.add(weight.value)
    assert len(configs) > 150
    assert {"open-mmlab://regnetx_400mf", "torchvision://resnet50"} <= names
    for name in names:
        if name.startswith(("open-mmlab://", "torchvision://")):
            assert zoo.url(name)[0] is not None, name
    extension = tmp_path / "mmdetection3d_extension" / "configs"
    nus = read_config(
        extension / "pointpillars/hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d.py", KNOWN
    )
    assert values(nus.weights)["load_from"] == (
        "/ws/mmdetection3d/checkpoints/pointpillars/"
        "hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d_20210826_104936-fca299c1.pth"
    )
    usd = read_config(
        extension / "pointpillars/hv_pointpillars_fpn_sbn-all_4x8_2x_usd-3d.py", KNOWN
    )
    assert usd.variables == ["ADMLOPS_PATH"]
    value = values(usd.weights)["load_from"]  # the config uses a name it never binds
    assert isinstance(value, Unresolved) and "mmlab_extension_path" in value.why

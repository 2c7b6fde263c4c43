"""The held-out goal of config-aware fetching, end to end on the real repositories: after
`bootstrap` (the superproject and its submodules from the real-repository stand-in, stand-in
weight files served on 127.0.0.1 through MMLAB_CHECKPOINT_MIRROR) with the network cut, every
weight `tools/train.py` would load for the configs named in MMLAB_CHECKPOINTS is present and
verified, and its path resolves from the config as training resolves it; a second run fetches
nothing.

"As training resolves it" is done here without the tool's code: each config is executed in a
separate Python process (a stand-in of mmcv's `Config.fromfile`: the file and its `_base_`
files executed and merged, with the environment of a shell that sourced `.env`), its
`load_from` and every `pretrained` / `init_cfg=dict(type='Pretrained')` checkpoint collected,
and each name mapped as mmcv's `load_checkpoint` maps it: a local path is read as it is; an
`open-mmlab://`, `torchvision://` or `mmcls://` name through the workspace mmcv checkout's
tables to a URL, and a URL to `$TORCH_HOME/hub/checkpoints/<last part of its path>`, the file
torch.hub's `load_state_dict_from_url` reads without downloading when it is there.

The stand-in bytes cannot match the sha256 prefix a real file name promises (`…-fca299c1.pth`:
32 bits), so the names are made to promise none (`index._HASH_SUFFIX` never matches): each
file is still checked against its Content-Length, recorded with its full sha256, and compared
here with the bytes served for its URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from dotenv import dotenv_values

from mmlab_bootstrap.checkpoints import store as ckptstore

from .conftest import inv
from .lib.fakemmcv import training_env as training_venv
from .lib.httpserve import serving

REAL_GH = Path("/work/real/gh")
CONFIGS = {
    # the superproject's own config: load_from = $MMLAB_EXTENSION_PATH/…/<published file>.pth
    "mmdetection3d_extension/configs/pointpillars/hv_pointpillars_fpn_sbn-all_4x8_2x_nus-3d.py",
    # a recorded config whose backbone is open-mmlab://regnetx_400mf (in its _base_ model)
    "mmdetection3d:configs/regnet/hv_pointpillars_regnet-400mf_fpn_sbn-all_4x8_2x_nus-3d.py",
    # a recorded config whose load_from is an https URL of download.openmmlab.com
    "mmdetection3d:configs/imvotenet/imvotenet_stage2_16x8_sunrgbd-3d-10class.py",
}

# Run in a separate interpreter: the config executed as mmcv 1.x's Config.fromfile does (its
# bases first, merged key by key unless `_delete_=True`), then the weights training loads.
TRAINING_READS = """\
import json, os, sys, types

def merge(child, base):
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) \\
                and not value.get('_delete_', False):
            merged[key] = merge(value, merged[key])
        elif isinstance(value, dict):
            merged[key] = {k: v for k, v in value.items() if k != '_delete_'}
        else:
            merged[key] = value
    return merged

def fromfile(filename):
    namespace = {'__file__': filename}
    with open(filename) as source:
        exec(compile(source.read(), filename, 'exec'), namespace)
    bases = namespace.get('_base_', [])
    merged = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged.update(fromfile(os.path.join(os.path.dirname(filename), base)))
    own = {k: v for k, v in namespace.items() if not k.startswith('__') and k != '_base_'
           and not isinstance(v, (types.ModuleType, types.FunctionType))}
    return merge(own, merged)

def weights(value, out):
    if isinstance(value, dict):
        if isinstance(value.get('pretrained'), str):
            out.append(value['pretrained'])
        if value.get('type') == 'Pretrained' and value.get('checkpoint'):
            out.append(value['checkpoint'])
        for key, inner in value.items():
            if key != 'load_from':
                weights(inner, out)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            weights(inner, out)
    return out

config = fromfile(sys.argv[1])
found = ([config['load_from']] if config.get('load_from') else []) + weights(config, [])
print(json.dumps(found))
"""


class StandIns(dict[str, bytes]):
    """Whatever path the mirror is asked for: bytes of its own (a stand-in weight file)."""

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path.endswith(".pth")

    def __missing__(self, path: str) -> bytes:
        seed = hashlib.sha256(path.encode()).digest()
        self[path] = data = b"stand-in weights " + seed * 64
        return data


def training_env(root: Path) -> dict[str, str]:
    """What a shell that sourced `.env` has (python-dotenv reads it as such a shell does)."""
    values = {k: v for k, v in dotenv_values(root / ".env").items() if v is not None}
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **values}


def weights_training_loads(root: Path, config: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", TRAINING_READS, str(config)],
        env=training_env(root),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=config.parent,
    )
    found = json.loads(done.stdout)
    assert isinstance(found, list)
    return [str(name) for name in found]


def where_training_reads(root: Path, name: str) -> tuple[Path, str]:
    """The file training reads for the weight `name`, and the URL it would download it from
    when the file were not there (mmcv's load_checkpoint, then torch.hub's cache)."""
    zoo = root / "mmlab_extension" / "mmcv" / "mmcv" / "model_zoo"

    def table(file_name: str) -> dict[str, str]:
        return dict(json.loads((zoo / file_name).read_text()))

    url = name
    if name.startswith("open-mmlab://"):
        key = name[len("open-mmlab://") :]
        key = table("deprecated.json").get(key, key)
        url = table("open_mmlab.json")[key]
    elif name.startswith("torchvision://"):
        url = table("torchvision_0.12.json")[name[len("torchvision://") :]]
    elif name.startswith("mmcls://"):
        url = table("mmcls.json")[name[len("mmcls://") :]]
    elif not name.startswith(("http://", "https://")):
        return Path(name), ""  # a local path, read as it is
    torch_home = Path(training_env(root)["TORCH_HOME"])
    file_name = os.path.basename(unquote(urlsplit(url).path))
    return torch_home / "hub" / "checkpoints" / file_name, url


@pytest.mark.skipif(
    not (REAL_GH / "windzu/mmlab_extension.git").is_dir(),
    reason="no mirror of the real repositories",
)
def test_after_bootstrap_every_weight_training_loads_is_in_place_offline(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "mmlab_bootstrap.checkpoints.index._HASH_SUFFIX", re.compile(r"(?!)")
    )  # (see the module's docstring)
    env = {
        "MMLAB_GIT_MIRROR": f"file://{REAL_GH}/",
        "MMLAB_PROJECTS": "mmdetection3d",
        "MMLAB_CHECKPOINTS": " ".join(sorted(CONFIGS)),
    }
    served = StandIns()
    with serving() as server:
        server.files = served  # type: ignore[assignment]
        run = inv(workspace, "bootstrap", env={**env, "MMLAB_CHECKPOINT_MIRROR": server.url})
        assert run.code == 0, run.out + run.err
        requests = len(server.requests)
        mirror = server.url
    # the network is cut: nothing listens at the mirror any more
    # three weights of the configs, and the checkpoints of the two configs the index publishes
    assert requests == 5, server.requests
    assert "read by the static reader" in run.out  # (no training environment yet)

    extension = workspace / "mmlab_extension"
    checked = 0
    for text in sorted(CONFIGS):
        project, _, rest = text.rpartition(":")
        config = extension / project / rest if project else extension / text
        names = weights_training_loads(workspace, config)
        assert names, text
        for name in names:
            path, url = where_training_reads(workspace, name)
            assert path.is_file(), (text, name, path)
            if url:  # downloaded by torch.hub at training time, unless it is there
                source = urlsplit(url)
                served_path = source.path.lstrip("/")
                if source.netloc != "download.openmmlab.com":
                    served_path = source.netloc + source.path
                expected = served[unquote(served_path)]
            else:  # a load_from path: a link to the model's checkpoint in storage
                (expected,) = [
                    data for key, data in served.items() if key.endswith("/" + path.name)
                ]
                assert path.is_symlink(), path  # never a second copy
            assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(expected).digest()
            real = Path(os.path.realpath(path))
            assert ckptstore.check_state(real, None)[0] == "verified", (name, real)
            record = ckptstore.recorded(real)
            assert record is not None and record.sha256 == hashlib.sha256(expected).hexdigest()
            checked += 1
    assert checked == 3  # nus load_from (a link), regnetx_400mf, imvotenet's load_from URL

    status = json.loads(inv(workspace, "status", "--json").out)
    assert {c["config"] for c in status["configs"]} == CONFIGS
    assert all(c["ready"] for c in status["configs"]), status["configs"]

    # a second run, with the git mirror gone too: nothing fetched, nothing downloaded
    cut = {**env, "MMLAB_GIT_MIRROR": f"file://{workspace}/no-network/"}
    again = inv(workspace, "bootstrap", env={**cut, "MMLAB_CHECKPOINT_MIRROR": mirror})
    assert again.code == 0, again.out + again.err
    assert not any(line.startswith(("fetched", "linked", "[1/")) for line in again.lines)
    assert "clone: up to date" in again.out
    assert "fetch-checkpoints: up to date" in again.out
    assert len(server.requests) == requests

    # with a training environment, its loader reads the real configs: the same weights, the
    # same variables, every one in place, and still nothing fetched
    python = training_venv(workspace / ".venvs" / "mmdetection3d")
    loaded = json.loads(inv(workspace, "status", "--json").out)
    for static, by_loader in zip(status["configs"], loaded["configs"], strict=True):
        assert static["reader"] == "the static reader"
        assert by_loader["reader"] == f"mmcv 1.6.1 Config.fromfile in {python}", by_loader
        for key in ("config", "ready", "missing", "variables", "unknown"):
            assert static[key] == by_loader[key], (key, static, by_loader)
    third = inv(workspace, "bootstrap", env={**cut, "MMLAB_CHECKPOINT_MIRROR": mirror})
    assert third.code == 0, third.out + third.err
    assert third.out.count(f"read by mmcv 1.6.1 Config.fromfile in {python}") == 3
    assert "fetch-checkpoints: up to date" in third.out

"""Configs read the way training reads them: the sub-project's own loader (`mmcv.Config.fromfile`)
in the training interpreter `inv python-env` made, bounded and its answer checked; the static
reader when there is none or it fails (one warning naming why); never a config executed in the
tool's own process. The training interpreter is a stand-in (`tests/lib/fakemmcv`): a real venv
whose `mmcv` has a tiny `Config.fromfile` that executes the config file (in that interpreter,
as mmcv does)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import inv, snapshot
from .lib.ckptfixture import Checkpoint, checkpoint, random_bytes, write_index
from .lib.fakemmcv import MARKER, training_env
from .lib.fakepython import write
from .lib.httpserve import Served, serving

CONFIG = "mmdetection3d_extension/configs/pointpillars/pp_car.py"
BASE = (
    "model = dict(\n"
    "    backbone=dict(type='RegNet',\n"
    "        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://regnetx_400mf')))\n"
)


@dataclass
class Setup:
    root: Path
    served: Served
    car: Checkpoint
    regnet: str

    @property
    def extension(self) -> Path:
        return self.root / "mmlab_extension"

    @property
    def venv(self) -> Path:
        return self.root / ".venvs" / "mmdetection3d"

    @property
    def load_from(self) -> Path:
        return self.extension / "mmdetection3d/checkpoints/pointpillars" / self.car.file_name

    def config(self, text: str) -> None:
        write(self.extension / CONFIG, text)

    def training_env(self) -> None:
        """A venv as inv python-env leaves it, holding the stand-in mmcv."""
        training_env(self.venv)

    def hostile_env(self, body: str) -> None:
        """A 'training interpreter' that is this Python running `body` (whatever it is
        asked), in a venv folder marked as inv python-env's."""
        python = self.venv / "bin" / "python"
        write(python, f"#!{sys.executable}\nimport sys, time\n{body}\n")
        python.chmod(0o755)
        write(self.venv / MARKER, json.dumps({"made_by": "mmlab-bootstrap"}))


@pytest.fixture
def setup(workspace: Path) -> Iterator[Setup]:
    car = checkpoint("mmdetection3d", "pointpillars_car", random_bytes(5000))
    extension = workspace / "mmlab_extension"
    write_index(extension / "mmdetection3d", [car])
    regnet_data = random_bytes(3000)
    regnet = f"regnetx_400mf-{hashlib.sha256(regnet_data).hexdigest()[:8]}.pth"
    zoo = extension / "mmcv" / "mmcv" / "model_zoo"
    write(
        zoo / "open_mmlab.json",
        json.dumps({"regnetx_400mf": f"https://download.openmmlab.com/pretrain/{regnet}"}),
    )
    write(zoo / "torchvision_0.12.json", "{}")
    write(zoo / "mmcls.json", "{}")
    write(extension / "mmdetection3d_extension/configs/_base_/model.py", BASE)
    found = Setup(workspace, None, car, regnet)  # type: ignore[arg-type]
    found.config(
        "import os\n"
        "_base_ = ['../_base_/model.py']\n"
        "load_from = (os.environ['MMLAB_EXTENSION_PATH']\n"
        f"    + '/mmdetection3d/checkpoints/pointpillars/{car.file_name}')\n"
    )
    with serving() as served:
        served.files = {car.path: car.data, f"pretrain/{regnet}": regnet_data}
        (workspace / ".env").write_text(f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n")
        found.served = served
        yield found


# A config only the loader works out: its load_from is made by a function it defines.
COMPUTED = """\
import os
_base_ = ['../_base_/model.py']

def under(*parts):
    return '/'.join(parts)

load_from = under(os.environ['MMLAB_EXTENSION_PATH'], 'mmdetection3d', 'checkpoints',
                  'pointpillars', {name!r})
with open(os.environ['CONFIG_RAN'], 'a') as ran:
    ran.write(str(os.getpid()) + '\\n')
"""


def test_the_loader_reads_what_the_static_reader_cannot(setup: Setup) -> None:
    """With a training environment, the sub-project's loader reads the config (a function
    call the static reader refuses); its weights are put in place, and it ran in the training
    interpreter, never in this process."""
    setup.config(COMPUTED.format(name=setup.car.file_name))
    ran = setup.root / "config-ran.txt"
    env = {"CONFIG_RAN": str(ran)}
    setup.training_env()
    python = setup.venv / "bin" / "python"
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG, env=env)
    assert run.code == 0, run.out + run.err
    assert f"{CONFIG}: read by mmcv 1.6.1 Config.fromfile in {python}" in run.out
    assert "statically" not in run.err
    assert setup.load_from.is_symlink() and setup.load_from.read_bytes() == setup.car.data
    hub = setup.root / "mmlab_checkpoints/torch/hub/checkpoints" / setup.regnet
    assert hub.is_file()
    pids = ran.read_text().split()
    assert pids and str(os.getpid()) not in pids  # executed, but by the training interpreter
    # status and doctor say which reader read it
    (setup.root / ".env").write_text(
        (setup.root / ".env").read_text() + f"MMLAB_CHECKPOINTS='{CONFIG}'\n"
    )
    status = json.loads(inv(setup.root, "status", "--json", env=env).out)
    (config,) = status["configs"]
    assert config["missing"] == [] and config["unknown"] == ["CONFIG_RAN"]  # (not in .env)
    assert config["reader"] == f"mmcv 1.6.1 Config.fromfile in {python}"
    assert config["variables"] == ["MMLAB_EXTENSION_PATH", "CONFIG_RAN"]
    doctor = json.loads(inv(setup.root, "doctor", "--json", env=env).out)
    assert doctor["status"]["configs"][0]["reader"] == config["reader"]
    assert "read by mmcv 1.6.1" in inv(setup.root, "status", env=env).out


def test_without_a_training_environment_no_config_is_executed(setup: Setup) -> None:
    """The same config, no training environment: the static reader, which executes nothing
    (the config's own write never happens), names the weight it cannot work out."""
    setup.config(COMPUTED.format(name=setup.car.file_name))
    ran = setup.root / "config-ran.txt"
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG, env={"CONFIG_RAN": str(ran)})
    assert run.code == 1
    assert f"{CONFIG}: read by the static reader" in run.out
    assert "a call of under (never run)" in run.err
    assert not ran.exists()
    assert not setup.load_from.exists()


def test_dry_says_which_reader_reads_and_changes_nothing(setup: Setup) -> None:
    setup.training_env()
    before = snapshot(setup.root)
    run = inv(setup.root, "--dry", "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.err
    assert f"{CONFIG}: read by mmcv 1.6.1 Config.fromfile in {setup.venv}/bin/python" in run.out
    assert f"would link {setup.load_from}" in run.out
    assert snapshot(setup.root) == before
    assert not setup.served.requests


def test_the_loader_and_the_static_reader_agree_on_a_plain_config(setup: Setup) -> None:
    """Weights and variables read the same either way (the loader's answer is used)."""
    env = setup.root / ".env"
    env.write_text(env.read_text() + f"MMLAB_CHECKPOINTS='{CONFIG}'\n")
    static = json.loads(inv(setup.root, "status", "--json").out)["configs"][0]
    setup.training_env()
    loaded = json.loads(inv(setup.root, "status", "--json").out)["configs"][0]
    assert static["reader"] == "the static reader"
    assert loaded["reader"].startswith("mmcv 1.6.1 Config.fromfile")
    for key in ("missing", "variables", "unknown", "ready"):
        assert static[key] == loaded[key], key


def test_a_config_the_loader_cannot_load_is_read_statically(setup: Setup) -> None:
    """The loader stops at an unset variable (KeyError, as training would): one warning, then
    the static reader names the same variable."""
    setup.training_env()
    setup.config("import os\nload_from = os.environ['NOT_SET_ANYWHERE'] + '/x.pth'\n")
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 1
    warnings = [line for line in run.err.splitlines() if "statically" in line]
    assert len(warnings) == 1, run.err
    assert "could not load it: KeyError: 'NOT_SET_ANYWHERE'" in warnings[0]
    assert "NOT_SET_ANYWHERE is not set" in run.err + run.out


def answer(configs: object, loader: object = "mmcv 9 Config.fromfile") -> str:
    return "MMLAB-CONFIG " + json.dumps({"loader": loader, "configs": configs})


def entry(weights: object, env: object = ()) -> dict[str, object]:
    return {"path": "{path}", "ok": True, "weights": weights, "env": list(env)}  # type: ignore[call-overload]


def said(text: str, code: int = 0) -> str:
    """An interpreter body printing `text` (with `{path}` the config asked) and exiting."""
    return (
        f"text = {text!r}.replace('{{path}}', sys.argv[-1])\n"
        f"sys.stdout.write(text + '\\n')\nsys.exit({code})"
    )


HOSTILE = [
    pytest.param("time.sleep(30)", "did not finish within 1 s", id="hangs"),
    pytest.param(
        "while True: sys.stdout.write('MMLAB-CONFIG ' * 4096)",
        "printed more than 65536 bytes",
        id="endless-output",
    ),
    pytest.param(said("MMLAB-CONFIG {not json"), "its answer is not JSON", id="invalid-json"),
    pytest.param(said("MMLAB-CONFIG " + "[" * 20000), "not JSON", id="nested-deeply"),
    pytest.param(said(answer([], loader=5)), "loader is not a string", id="wrong-type"),
    pytest.param(said(answer([])), "not one entry for each", id="no-entry"),
    pytest.param(
        said(answer([entry([["load_from", "/x.pth"]])]).replace("{path}", "/etc/other.py")),
        "is not one",
        id="another-path",
    ),
    pytest.param(said(answer([entry([["k", "v"]] * 1001)])), "more than 1000 items", id="too-many"),
    pytest.param(said(answer([entry([["load_from", "/a\0b.pth"]])])), "NUL", id="nul"),
    pytest.param(said(answer([entry([["load_from", ["/x.pth"]]])])), "neither", id="list-value"),
    pytest.param(
        said(answer([entry([], env=[["BAD NAME", True]])])), "variable read", id="bad-variable"
    ),
    pytest.param(said(answer([entry([])]), code=1), "exited 1", id="exits-1"),
    pytest.param(
        "sys.stderr.write('Traceback (most recent call last):\\n  File x\\n"
        "ZeroDivisionError: division by zero\\n'); sys.exit(1)",
        "exited 1: File x | ZeroDivisionError: division by zero",
        id="traceback",
    ),
    pytest.param("sys.exit(0)", "exited 0: no answer", id="says-nothing"),
    pytest.param(
        said("MMLAB-CONFIG " + json.dumps({"error": "neither mmcv.Config nor mmengine"})),
        "neither mmcv.Config nor mmengine",
        id="no-loader",
    ),
    pytest.param(said("\x1b[2J\x1b[H", code=3), "exited 3: '\\x1b[2J\\x1b[H'", id="escapes"),
]


@pytest.mark.parametrize(("body", "why"), HOSTILE)
def test_a_hostile_interpreter_falls_back_to_the_static_reader(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, body: str, why: str
) -> None:
    if "sleep" in body:  # (only there: a slow start on a busy machine is no hang)
        monkeypatch.setattr("mmlab_bootstrap.checkpoints.configload.LOAD_SECONDS", 1.0)
    monkeypatch.setattr("mmlab_bootstrap.checkpoints.configload.OUTPUT_LIMIT", 1 << 16)
    setup.hostile_env(body)
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.out + run.err
    warnings = [line for line in run.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, run.err
    python = setup.venv / "bin" / "python"
    assert f"read the configs statically: the training interpreter {python}: " in warnings[0]
    assert why in warnings[0], warnings[0]
    assert "Traceback" not in run.err
    assert f"{CONFIG}: read by the static reader" in run.out
    assert setup.load_from.is_symlink()


def test_an_interpreter_that_does_not_start_falls_back(setup: Setup) -> None:
    setup.hostile_env("")
    python = setup.venv / "bin" / "python"
    python.write_text("#!/nowhere/python\n")
    run = inv(setup.root, "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.err
    assert "the training interpreter" in run.err and "does not start" in run.err
    assert setup.load_from.is_symlink()


def test_what_the_loader_and_the_standard_library_read_is_not_the_configs(setup: Setup) -> None:
    """Found with mmcv 1.6.1 on the real configs: its temporary copy of the config read TMPDIR,
    TEMP and TMP, which were then named as variables the config reads."""
    setup.training_env()
    (site,) = (setup.venv / "lib").glob("python*/site-packages")
    init = site / "mmcv" / "__init__.py"
    init.write_text(
        init.read_text().replace(
            "def _file2dict(filename):\n",
            "def _file2dict(filename):\n"
            "    import locale, tempfile\n"
            "    os.environ.get('MMCV_HOME')\n"
            "    locale.getdefaultlocale()\n",
        )
    )
    env = setup.root / ".env"
    env.write_text(env.read_text() + f"MMLAB_CHECKPOINTS='{CONFIG}'\n")
    (config,) = json.loads(inv(setup.root, "status", "--json").out)["configs"]
    assert config["reader"].startswith("mmcv 1.6.1"), config
    assert config["variables"] == ["MMLAB_EXTENSION_PATH"]


def test_with_mmcv_2_the_loader_is_mmengines(setup: Setup) -> None:
    """mmcv 2.x has no Config: the config is loaded by mmengine's, as mmdet 3.x trains."""
    setup.training_env()
    (site,) = (setup.venv / "lib").glob("python*/site-packages")
    loader = (site / "mmcv" / "__init__.py").read_text().replace("1.6.1", "0.10.7")
    write(site / "mmengine" / "__init__.py", "__version__ = '0.10.7'\n")
    write(site / "mmengine" / "config" / "__init__.py", "from .config import Config\n")
    write(site / "mmengine" / "config" / "config.py", loader)
    (site / "mmcv" / "__init__.py").write_text("__version__ = '2.1.0'\n")
    run = inv(setup.root, "--dry", "fetch-checkpoints", "--config", CONFIG)
    assert run.code == 0, run.err
    assert f"{CONFIG}: read by mmengine 0.10.7 Config.fromfile in" in run.out
    assert "statically" not in run.err

"""`inv verify`: does the workspace run? In the training interpreter (the venv `inv
python-env` made, else `--python`), layer by layer, stopping at the first that fails:

1. interpreter: it starts and says its version;
2. imports: torch, mmcv, mmdet (and mmdet3d for mmdetection3d's demo) import;
3. compiled ops: `mmcv.ops` imports (mmcv's `_ext`, the prebuilt wheel's C++/CUDA ops);
4. checkpoint: the demo model's checkpoint is in storage, verified;
5. demo: the sub-project's own demo with that checkpoint, headless, on the GPU when torch
   sees one, else `--device cpu`, writing its result into a temporary folder:
   mmdetection3d's `demo/pcd_demo.py` on its bundled KITTI point cloud must write the
   predicted boxes (`*_pred.obj`); mmdetection's `demo/image_demo.py` on `demo/demo.jpg` must
   write the drawn image (`--out-file` of 2.x, `--out-dir` of 3.x's inferencer, whichever
   that checkout's script takes).

Which sub-project's demo: the one `--model project:name` names, else the one whose venv is
the interpreter, else the first of MMLAB_PROJECTS with a demo in its checkout.

Every program runs through `boundedrun.run_bounded` (time and output capped, its process group
killed at the end). The result is one line per layer, the first failure with the command that
fixes it, and a record beside `.env` (`.mmlab-bootstrap-verify.json`) that `doctor --json`
includes.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import (
    UNLOCKED,
    FileRefused,
    read_regular,
    sweep,
    temporary_folder,
    write_atomically,
)
from mmlab_bootstrap.proc import run_bounded
from mmlab_bootstrap.run import Session
from mmlab_bootstrap.settings import Settings

RECORD = ".mmlab-bootstrap-verify.json"
VERIFY_TEMPORARY = ".mmlab-verify-{scratch}"  # the demo's output, in the workspace
LITE = "mmcv-lite"  # (plan's name: verify stays independent of the planner)
RECORD_LIMIT = 1 << 20
PROBE_SECONDS = 120.0
DEMO_SECONDS = 900.0
OUTPUT_LIMIT = 1 << 20
SCRIPT_LIMIT = 1 << 20  # bytes of a demo script read for its flags


@dataclass(frozen=True)
class Demo:
    """A sub-project's own demo: the modules it imports, its script and input (relative to
    the checkout), and the model whose checkpoint it loads by default."""

    project: str
    modules: tuple[str, ...]
    script: str
    default_model: str


DEMOS = {
    "mmdetection3d": Demo(
        "mmdetection3d",
        ("torch", "mmcv", "mmdet", "mmdet3d"),
        "demo/pcd_demo.py",
        "hv_pointpillars_secfpn_6x8_160e_kitti-3d-car",
    ),
    "mmdetection": Demo(
        "mmdetection",
        ("torch", "mmcv", "mmdet"),
        "demo/image_demo.py",
        "faster_rcnn_r50_fpn_1x_coco",
    ),
}
PROJECT = "mmdetection3d"
LAYERS = ("interpreter", "imports", "compiled ops", "checkpoint", "demo")
# Run in the training interpreter: its standard library only, then the imports one by one.
PROBE = """\
import importlib, json, sys, traceback
found = {"version": sys.version.split()[0], "executable": sys.executable, "imports": {}}
for name in %r:
    try:
        module = importlib.import_module(name)
        found["imports"][name] = [None, str(getattr(module, "__version__", ""))]
    except BaseException as error:
        found["imports"][name] = [type(error).__name__ + ": " + str(error)[:300], None]
try:
    importlib.import_module("mmcv.ops")
    found["ops"] = None
except BaseException as error:
    found["ops"] = type(error).__name__ + ": " + str(error)[:300]
try:  # mmcv-lite (MMLAB_MMCV_PACKAGE): PyPI's mmcv without compiled ops, and no other mmcv
    from importlib import metadata
    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in metadata.distributions()}
    found["lite"] = "mmcv-lite" in names and not names & {"mmcv", "mmcv-full"}
except BaseException:
    found["lite"] = False
try:
    import torch
    found["cuda"] = bool(torch.cuda.is_available())
except BaseException:
    found["cuda"] = False
print("MMLAB-VERIFY " + json.dumps(found))
"""


class VerifyError(BootstrapError):
    """The workspace does not run (the layer that failed, and its fix)."""


@dataclass(frozen=True)
class Layer:
    layer: str
    ok: bool | None  # None: not tried (an earlier layer failed)
    text: str
    hint: str = ""


def record_path(root: Path) -> Path:
    return root / RECORD


def last_result(root: Path) -> dict[str, Any] | None:
    """The record of the last `inv verify` (None: none, or not one this tool wrote)."""
    try:
        data = read_regular(record_path(root), "", own=True, limit=RECORD_LIMIT)
        found: Any = json.loads(data) if data else None
    except (OSError, ValueError, FileRefused):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("layers"), list):
        return None
    return found


def _tail(data: bytes, lines: int = 3) -> str:
    text = data.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:])[:400]


def _environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """What the demo runs with: the environment, `.env`'s exports, and no display."""
    # startup: the checkpoints code only when the demo is about to run
    from mmlab_bootstrap.checkpoints import config_environment

    found = config_environment(settings, environ.items())
    found.pop("DISPLAY", None)
    found.update(MPLBACKEND="Agg", QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
    return found


def run_layers(
    settings: Settings,
    python: str,
    environ: Mapping[str, str],
    program: str,
    model_name: str,
    demo: Demo = DEMOS[PROJECT],
) -> list[Layer]:
    """Each layer in turn, up to the first that fails."""
    # startup: the checkpoints code only when the demo is about to run
    from mmlab_bootstrap.checkpoints import ModelError, final_path, find, read_index

    env = _environment(settings, environ)
    layers: list[Layer] = []
    fix_env = f"{program} python-env"

    def fail(layer: str, text: str, hint: str) -> list[Layer]:
        layers.append(Layer(layer, False, text, hint))
        for later in LAYERS[len(layers) :]:
            layers.append(Layer(later, None, "not tried"))
        return layers

    try:
        probed = run_bounded(
            [python, "-c", PROBE % (demo.modules,)],
            seconds=PROBE_SECONDS,
            max_bytes=OUTPUT_LIMIT,
            env=env,
            cwd="/",  # (no folder of the workspace on its path)
        )
    except OSError as error:
        return fail("interpreter", f"{shown(python)} does not start: {error.strerror}", fix_env)
    answer: Any = None
    for line in probed.out.decode("utf-8", "replace").splitlines():
        if line.startswith("MMLAB-VERIFY "):
            try:
                answer = json.loads(line[len("MMLAB-VERIFY ") :])
            except ValueError:
                answer = None
    if (
        probed.stopped
        or not isinstance(answer, dict)
        or not isinstance(answer.get("imports"), dict)
    ):
        why = probed.stopped or f"exit {probed.code}: {_tail(probed.err) or 'no answer'}"
        return fail("interpreter", f"{shown(python)} did not answer ({why})", fix_env)
    layers.append(
        Layer("interpreter", True, f"{python} (Python {str(answer.get('version'))[:20]})")
    )
    imports: dict[str, Any] = answer["imports"]
    failed = [
        f"{name}: {str(value[0])[:200]}"
        for name, value in imports.items()
        if not (isinstance(value, list) and len(value) == 2 and value[0] is None)
    ]
    if failed:
        return fail("imports", "; ".join(failed), f"{fix_env} (it installs and checks them)")
    versions = ", ".join(f"{name} {imports[name][1]}" for name in demo.modules if name in imports)
    layers.append(Layer("imports", True, versions))
    lite = answer.get("lite") is True and answer.get("ops") is not None
    if lite:  # a known state, not a failure: said here, and the demo is not run
        layers.append(Layer("compiled ops", True, f"not built: {LITE} has no compiled ops"))
    elif answer.get("ops") is not None:
        return fail(
            "compiled ops",
            f"mmcv.ops does not import: {str(answer['ops'])[:300]}",
            f"{fix_env} --update (mmcv must be the prebuilt wheel of this torch/CUDA pair;"
            " MMLAB_CUDA, MMLAB_MMCV_INDEX)",
        )
    cuda = answer.get("cuda") is True
    if not lite:
        layers.append(Layer("compiled ops", True, "mmcv.ops imports"))
    try:
        project_only = (demo.project,)
        model = find(
            read_index(settings.extension_path, project_only, []),
            model_name,
            project_only,
            program,
        )
    except ModelError as error:
        return fail("checkpoint", error.message, error.hint)
    if model.file_name is None:
        return fail("checkpoint", f"{model.label} {model.file_problem}", "name another --model")
    final = final_path(settings, model)
    state = ckptstore.check_state(final, model.hash_prefix)[0]
    if state != "verified":
        return fail(
            "checkpoint",
            f"{model.label}'s checkpoint is {state} ({final})",
            f"{program} fetch-checkpoints --model {model.label}",
        )
    layers.append(Layer("checkpoint", True, f"{model.label}: {final} (verified)"))
    if lite:
        return fail(
            "demo",
            f"not run: {model.label} needs mmcv's compiled ops, which {LITE} does not have"
            f" (MMLAB_MMCV_PACKAGE={LITE}): models that need them cannot run in this environment",
            f"for the ops: {program} env --mmcv-package auto (with an MMLAB_MMCV_INDEX that is"
            f" reachable from here), then {fix_env} --update",
        )
    device = "cuda:0" if cuda else "cpu"
    project = settings.extension_path / demo.project
    with temporary_folder(settings.root, VERIFY_TEMPORARY) as out:  # in the workspace
        config = str(project / model.config.removeprefix("./"))
        planned = (
            _pcd_demo(project, python, config, str(final), device, out)
            if demo.project == "mmdetection3d"
            else _image_demo(project, python, config, str(final), device, out)
        )
        if isinstance(planned, str):
            return fail("demo", planned, f"{program} clone (the {demo.project} checkout)")
        command, shown_command, wanted, what = planned
        shown_command += f" {model.config.removeprefix('./')} … --device {device}"
        try:
            ran = run_bounded(
                command, seconds=DEMO_SECONDS, max_bytes=OUTPUT_LIMIT, env=env, cwd=str(project)
            )
        except OSError as error:
            return fail("demo", f"the demo does not start: {error.strerror}", fix_env)
        written = sorted(p.name for p in out.rglob("*") if p.is_file() and wanted.match(p.name))
        if ran.stopped or ran.code != 0 or not written:
            why = ran.stopped or (
                f"exit {ran.code}: {_tail(ran.err) or _tail(ran.out)}"
                if ran.code != 0
                else f"it wrote no {what}"
            )
            hint = (
                f"{fix_env} --update (the ops of this model may need a GPU: MMLAB_CUDA)"
                if device == "cpu"
                else f"{fix_env} --update"
            )
            return fail("demo", f"{shown_command}: {why}", hint)
        layers.append(Layer("demo", True, f"{shown_command}: wrote {', '.join(written)}"))
    return layers


# the command, as shown, the names of what it writes, and those said in words
Planned = tuple[list[str], str, "re.Pattern[str]", str]


def _pcd_demo(
    project: Path, python: str, config: str, checkpoint: str, device: str, out: Path
) -> Planned | str:
    """mmdetection3d's demo/pcd_demo.py on its first bundled KITTI point cloud (or why not)."""
    points = sorted((project / "demo" / "data" / "kitti").glob("*.bin"))
    script = project / "demo" / "pcd_demo.py"
    if not points or not script.is_file():
        return f"no demo/pcd_demo.py or demo/data/kitti/*.bin in {project}"
    command = [python, str(script), str(points[0]), config, checkpoint]
    command += ["--device", device, "--out-dir", str(out)]
    shown_command = f"demo/pcd_demo.py demo/data/kitti/{points[0].name}"
    boxes = "predicted boxes (*_pred.obj)"
    return command, shown_command, re.compile(r".*_pred\.obj\Z"), boxes


def _image_demo(
    project: Path, python: str, config: str, checkpoint: str, device: str, out: Path
) -> Planned | str:
    """mmdetection's demo/image_demo.py on demo/demo.jpg, as that checkout's script takes it:
    3.x's inferencer (`inputs model --weights W --out-dir D`), 2.x's (`img config checkpoint
    --out-file F`); or why not (a script that can only show a window)."""
    script, image = project / "demo" / "image_demo.py", project / "demo" / "demo.jpg"
    if not script.is_file() or not image.is_file():
        return f"no demo/image_demo.py or demo/demo.jpg in {project}"
    try:
        text = (read_regular(script, "", limit=SCRIPT_LIMIT) or b"").decode("utf-8", "replace")
    except (OSError, FileRefused):
        return f"{script} cannot be read"
    flags = set(re.findall(r"add_argument\(\s*['\"](--[\w-]+)['\"]", text))
    shown_command = "demo/image_demo.py demo/demo.jpg"
    written, what = re.compile(r".*\.(jpg|jpeg|png)\Z"), "drawn image (*.jpg, *.png)"
    if {"--weights", "--out-dir"} <= flags:  # 3.x: DetInferencer, into <out-dir>/vis/
        command = [python, str(script), str(image), config, "--weights", checkpoint]
        command += ["--device", device, "--out-dir", str(out)]
        return command, shown_command, written, what
    if "--out-file" in flags:  # 2.x: show_result_pyplot(out_file=...)
        command = [python, str(script), str(image), config, checkpoint]
        command += ["--device", device, "--out-file", str(out / image.name)]
        return command, shown_command, written, what
    return (
        f"{script} takes neither --out-file nor --weights/--out-dir: it can only show its"
        " result in a window (an mmdetection older than 2.x's --out-file)"
    )


def demo_for(settings: Settings, python: str, model: str | None) -> Demo:
    """The demo to run: of the project `--model project:name` names, else of the project
    whose venv `python` is, else of the first of MMLAB_PROJECTS whose checkout has its demo
    script (else the first with a demo, whose layer then names what is missing)."""
    named = (model or "").rpartition(":")[0]
    if named in DEMOS:
        return DEMOS[named]
    venv = Path(os.path.abspath(python)).parent.parent
    if venv.parent == Path(os.path.abspath(settings.venvs_path)) and venv.name in DEMOS:
        return DEMOS[venv.name]
    known = [DEMOS[p] for p in settings.projects if p in DEMOS]
    for demo in known:
        if (settings.extension_path / demo.project / demo.script).is_file():
            return demo
    return (known or [DEMOS[PROJECT]])[0]


def _first_model(settings: Settings, demo: Demo) -> str:
    """The first model of MMLAB_CHECKPOINTS the demo's project publishes, else the first
    one for it, else the demo's default."""
    # startup: the checkpoints code only when the demo is about to run
    from mmlab_bootstrap.checkpoints import ModelError, find, read_index

    names = [
        n
        for n in settings.checkpoint_models
        if not n.endswith(".py") and n.rpartition(":")[0] in ("", demo.project)
    ]
    if not names:
        return demo.default_model
    try:
        index = read_index(settings.extension_path, (demo.project,), [])
    except BootstrapError:
        return names[0]
    for name in names:
        try:
            find(index, name, (demo.project,), "inv")
        except ModelError:
            continue
        return name
    return names[0]  # (the checkpoint layer names what is wrong with it)


def verify_step(session: Session, *, python: str | None, model: str | None) -> bool:
    """Run the layers, print one line each, record the result; whether all passed."""
    # startup: the environment builder (uv, packaging) only when no --python names one
    from mmlab_bootstrap.pythonenv.build import workspace_python

    settings = session.settings({})
    session.changes.after_changes(lambda: _remove_scratch(session, settings.root))
    report, program = session.report, session.report.program
    chosen = python or workspace_python(settings)
    if chosen is None:
        raise VerifyError(
            "there is no training interpreter: inv python-env has made none in"
            f" {settings.venvs_path}",
            f"build it: {program} python-env (or name one: {program} verify --python PATH)",
        )
    demo = demo_for(settings, chosen, model)
    name = model or _first_model(settings, demo)
    started = time.time()

    def run() -> list[Layer]:
        layers = run_layers(settings, chosen, session.environ, program, name, demo)
        document = {
            "ok": all(layer.ok for layer in layers),
            "python": chosen,
            "project": demo.project,
            "model": name,
            "at": int(started),
            "layers": [asdict(layer) for layer in layers],
        }
        text = json.dumps(document, indent=2) + "\n"
        write_atomically(record_path(session.root), text, own=True)
        return layers

    layers = session.changes.make(
        f"run {demo.project}'s {demo.script} with {name} in {chosen} (after its imports)"
        f" and record the result in {record_path(session.root)}",
        run,
    )
    if layers is None:
        return True
    for layer in layers:
        if layer.ok:
            report.done(f"{layer.layer}: {layer.text}")
        elif layer.ok is None:
            report.info(f"{layer.layer}: {layer.text}")
        else:
            report.problem(f"{layer.layer}: {layer.text}")
            report.info(f"hint: {layer.hint}")
    ok = all(layer.ok for layer in layers)
    if ok:
        report.done("the workspace runs: every layer passed")
    return ok


def _remove_scratch(session: Session, root: Path) -> None:
    """The demo's output folders of runs killed while it ran (never one a live run uses: it
    holds it locked, see fs.temporary_folder)."""
    for left in sweep(root, VERIFY_TEMPORARY, rule=UNLOCKED, files=False, folders=True):
        session.report.done(f"removed {left} (left by an interrupted run)")


def doctor_section(root: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The last verify's record for `doctor --json`, and a problem when it failed."""
    found = last_result(root)
    if found is None:
        return None, []
    if found.get("ok") is True:
        return found, []
    for layer in found["layers"]:
        if isinstance(layer, dict) and layer.get("ok") is False:
            return found, [
                f"the last inv verify failed at {layer.get('layer')}: {layer.get('text')};"
                f" hint: {layer.get('hint')}"
            ]
    return found, ["the last inv verify did not pass"]

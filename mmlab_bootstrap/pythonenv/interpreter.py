"""The Python environment that trains: asked in a subprocess of that interpreter, using only
its standard library (`importlib.metadata`): nothing is imported from the packages, not even
torch (its CUDA version is read from `torch/version.py`)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from typing import Any

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.proc import run_bounded

PROBE_TIMEOUT = 60  # seconds: a cold interpreter on a network disk can be slow
PROBE_BYTES = 1 << 20  # what the interpreter may print (its answer is a few kilobytes)
NVCC_TIMEOUT = 10
NVCC_BYTES = 64 << 10
# The distributions looked at (mmcv 1.x was `mmcv-full`; `mmcv-lite` has no compiled ops).
WANTED = ("torch", "mmcv", "mmcv-full", "mmcv-lite", "mmengine", "mmdet", "mmdet3d", "mmdeploy")

PROBE = r"""
import importlib.util, json, os, re, sys
from importlib import metadata
from urllib.parse import unquote, urlparse
wanted = set(sys.argv[1:])
found = {}
for dist in metadata.distributions():
    name = re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower()
    if name not in wanted or name in found:
        continue  # the first on sys.path is the one that imports
    path = getattr(dist, "_path", None)
    info = {"version": dist.version, "editable": False, "source": None,
            "location": str(path) if path is not None else None, "cuda": None}
    text = dist.read_text("direct_url.json")
    if text:
        try:
            direct = json.loads(text)
        except ValueError:
            direct = {}
        url = direct.get("url") or ""
        if (direct.get("dir_info") or {}).get("editable"):
            info["editable"] = True
            if url.startswith("file:"):
                info["source"] = unquote(urlparse(url).path)
    elif path is not None and str(path).endswith(".egg-info"):
        parts = set(os.path.normpath(str(path)).split(os.sep))
        if not parts & {"site-packages", "dist-packages"}:
            info["editable"] = True  # `setup.py develop`: the egg-info sits in the source
            info["source"] = os.path.dirname(os.path.abspath(str(path)))
    if name == "torch":
        try:
            version_py = dist.locate_file("torch/version.py")
            with open(str(version_py), encoding="utf-8") as file:
                match = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]",
                                  file.read(), re.MULTILINE)
            info["cuda"] = match.group(1) if match else None
        except OSError:
            pass
    found[name] = info
imports = {}
for module in ("torch", "mmcv", "mmengine", "mmdet", "mmdet3d", "mmdeploy"):
    try:  # where `import module` would load it from: located, never imported
        spec = importlib.util.find_spec(module)
    except Exception:
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if locations:
        imports[module] = os.path.dirname(os.path.abspath(locations[0]))
print(json.dumps({"python": sys.version.split()[0], "executable": sys.executable,
                  "prefix": sys.prefix, "packages": found, "imports": imports}))
"""


class PythonError(BootstrapError):
    """The interpreter given with `--python` cannot be asked."""


def interpreter(given: str | None) -> str:
    """The interpreter to ask: `--python PATH` (or a name on PATH), default `python3`."""
    name = given or "python3"
    path = shutil.which(name) if os.sep not in name else name
    if path is None or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise PythonError(
            f"--python {shown(name)} is not an interpreter"
            f" ({'not on PATH' if os.sep not in name else 'no executable file there'})",
            "pass the interpreter that trains, e.g."
            " inv doctor --python ~/miniconda3/envs/openmmlab/bin/python",
        )
    return os.path.abspath(path)  # kept a link (a venv's python is one), never resolved


def probe(
    python: str, environ: Mapping[str, str], say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """What the interpreter has installed (see PROBE), its answer checked as a whole; a
    PythonError when it is no Python 3.8+ or its answer is not what was asked."""
    hint = (
        "pass a Python 3.8+ interpreter, e.g."
        " inv doctor --python ~/miniconda3/envs/openmmlab/bin/python"
    )
    try:
        done = run_bounded(
            [python, "-B", "-c", PROBE, *WANTED],  # -B: it writes no bytecode
            seconds=PROBE_TIMEOUT,
            max_bytes=PROBE_BYTES,
            env=environ,  # PYTHONPATH and the like, as the training run has them
            cwd=os.path.abspath(os.sep),  # no package of the current folder shadows one
            say=say,
        )
    except OSError as error:
        raise PythonError(f"--python {shown(python)} could not be run: {error}", hint) from None
    if done.stopped:
        raise PythonError(
            f"--python {shown(python)} was stopped: {done.stopped}, and the interpreter's"
            " answer is not what was asked",
            f"check that {shown(python)} -c pass ends at once and prints nothing (a"
            " sitecustomize.py or .pth file may wait or print), or pass another interpreter",
        )
    if done.code != 0:
        said = done.err.decode("utf-8", "replace").strip().splitlines()
        reason = said[-1] if said else f"exit status {done.code}"
        raise PythonError(
            f"--python {shown(python)} is not a Python interpreter this can ask ({reason})", hint
        )
    try:
        answer = json.loads(done.out.decode("utf-8", "replace"))
    except ValueError:
        raise PythonError(
            f"--python {shown(python)} is not a Python interpreter this can ask"
            " (its answer is not JSON)",
            hint,
        ) from None
    except RecursionError:
        answer = None
        wrong: str | None = "JSON nested too deeply"
    else:
        wrong = answer_problem(answer)
    if wrong is not None:
        raise PythonError(
            f"--python {shown(python)}: the interpreter's answer is not what was asked ({wrong})",
            hint,
        )
    packages = answer["packages"]
    for alias in ("mmcv-full", "mmcv-lite"):  # mmcv under its other names
        if "mmcv" not in packages and alias in packages:
            packages["mmcv"] = {**packages[alias], "distribution": alias}
    return dict(answer)


# The probe's answer: each field and its type (a tuple: any of them).
ANSWER = {"python": str, "executable": str, "prefix": str, "packages": dict, "imports": dict}
PACKAGE = {
    "version": str,
    "editable": bool,
    "source": (str, type(None)),
    "location": (str, type(None)),
    "cuda": (str, type(None)),
}


def answer_problem(answer: object) -> str | None:
    """What makes the probe's answer other than what PROBE prints (every field with its type,
    no other field), or None when it is that."""
    problem = _fields(answer, ANSWER, "the answer")
    if problem is not None:
        return problem
    assert isinstance(answer, dict)
    for name, package in answer["packages"].items():
        if name not in WANTED:
            return f"packages names {shown(str(name))}, which was not asked for"
        problem = _fields(package, PACKAGE, f"packages.{name}")
        if problem is not None:
            return problem
    for module, folder in answer["imports"].items():
        if not isinstance(folder, str):
            return f"imports[{shown(str(module))}] is {_kind(folder)}, not a string"
    return None


def _fields(value: object, wanted: Mapping[str, Any], where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where} is {_kind(value)}, not an object"
    missing = [name for name in wanted if name not in value]
    if missing:
        return f"{where} has no {missing[0]!r}"
    other = [name for name in value if name not in wanted]
    if other:
        return f"{where} has {shown(str(other[0]))}, which was not asked for"
    for name, kinds in wanted.items():
        if not isinstance(value[name], kinds):
            expected = " or ".join(
                _kind(kind()) for kind in (kinds if isinstance(kinds, tuple) else (kinds,))
            )
            return f"{where}.{name} is {_kind(value[name])}, not {expected}"
    return None


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def cuda_toolkit(
    environ: Mapping[str, str], say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """`CUDA_HOME` (or `CUDA_PATH`) and what `nvcc --version` says, when there is one (the
    nvcc on the PATH the training run has, unless `CUDA_HOME` holds one)."""
    home = environ.get("CUDA_HOME") or environ.get("CUDA_PATH") or None
    nvcc = None
    if home and os.access(os.path.join(home, "bin", "nvcc"), os.X_OK):
        nvcc = os.path.join(home, "bin", "nvcc")
    else:
        nvcc = shutil.which("nvcc", path=environ.get("PATH", os.defpath))
    release = problem = None
    if nvcc is not None:
        try:
            done = run_bounded(
                [nvcc, "--version"],
                seconds=NVCC_TIMEOUT,
                max_bytes=NVCC_BYTES,
                env=environ,
                say=say,
            )
        except OSError as error:
            problem = f"it could not be run: {error.strerror or error}"
        else:
            match = re.search(r"release (\d+\.\d+)", done.out.decode("utf-8", "replace"))
            release = match.group(1) if match and not done.stopped else None
            problem = f"`nvcc --version` was stopped: {done.stopped}" if done.stopped else None
    return {"cuda_home": home, "nvcc": nvcc, "nvcc_release": release, "nvcc_problem": problem}

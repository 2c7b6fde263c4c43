"""The Python environment that trains: asked in a subprocess of that interpreter, using only
its standard library (`importlib.metadata`): nothing is imported from the packages, not even
torch (its CUDA version is read from `torch/version.py`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from .errors import BootstrapError, shown

PROBE_TIMEOUT = 60  # seconds: a cold interpreter on a network disk can be slow
NVCC_TIMEOUT = 10
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


def probe(python: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """What the interpreter has installed (see PROBE); a PythonError when it is no Python 3.8+."""
    hint = (
        "pass a Python 3.8+ interpreter, e.g."
        " inv doctor --python ~/miniconda3/envs/openmmlab/bin/python"
    )
    try:
        done = subprocess.run(
            [python, "-B", "-c", PROBE, *WANTED],  # -B: it writes no bytecode
            env=dict(environ),  # PYTHONPATH and the like, as the training run has them
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            cwd=os.path.abspath(os.sep),  # no package of the current folder shadows one
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PythonError(f"--python {shown(python)} could not be run: {error}", hint) from None
    try:
        found = json.loads(done.stdout.decode("utf-8", "replace"))
    except ValueError:
        found = None
    if done.returncode != 0 or not isinstance(found, dict) or "packages" not in found:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = said[-1] if said else f"exit status {done.returncode}"
        raise PythonError(
            f"--python {shown(python)} is not a Python interpreter this can ask ({reason})", hint
        )
    found.setdefault("imports", {})
    packages = found["packages"]
    for alias in ("mmcv-full", "mmcv-lite"):  # mmcv under its other names
        if "mmcv" not in packages and alias in packages:
            packages["mmcv"] = {**packages[alias], "distribution": alias}
    return found


def cuda_toolkit(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    """`CUDA_HOME` (or `CUDA_PATH`) and what `nvcc --version` says, when there is one."""
    home = environ.get("CUDA_HOME") or environ.get("CUDA_PATH") or None
    nvcc = None
    if home and os.access(os.path.join(home, "bin", "nvcc"), os.X_OK):
        nvcc = os.path.join(home, "bin", "nvcc")
    else:
        nvcc = shutil.which("nvcc")
    release = None
    if nvcc is not None:
        try:
            said = subprocess.run(
                [nvcc, "--version"], capture_output=True, timeout=NVCC_TIMEOUT, check=False
            ).stdout.decode("utf-8", "replace")
            match = re.search(r"release (\d+\.\d+)", said)
            release = match.group(1) if match else None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return {"cuda_home": home, "nvcc": nvcc, "nvcc_release": release}

"""The Python environment against what the workspace's sub-projects require: one line for
each of torch, mmcv, mmengine, mmdet, mmdet3d and mmdeploy, editable installs from another
checkout, and whether mmcv has a prebuilt wheel for the torch/CUDA pair."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmlab_bootstrap.output import ERROR, INFO, OK, WARNING, Finding
from mmlab_bootstrap.pythonenv.interpreter import PythonError, cuda_toolkit, interpreter, probe
from mmlab_bootstrap.pythonenv.mmcv_wheels import mmcv_name, mmcv_wheels
from mmlab_bootstrap.pythonenv.version_ranges import (
    PACKAGES,
    Range,
    checkout_version,
    stricter,
    sub_project_ranges,
)

CHECKED = ("torch", "mmcv", "mmengine", "mmdet", "mmdet3d", "mmdeploy")
FOLDERS = {package: folder for folder, package in PACKAGES.items()}
LITE = "mmcv-lite"
LITE_FINDING = Finding(
    INFO,
    "mmcv.ops",
    f"not built: {LITE} has no compiled ops (MMLAB_MMCV_PACKAGE={LITE}); models that need"
    " them (mmdetection3d's voxel-based detectors among them) cannot run",
    "for the ops: inv env --mmcv-package auto (with an MMLAB_MMCV_INDEX reachable from here),"
    " then inv python-env --update",
)
TORCH_HINT = "install PyTorch built for your CUDA (https://pytorch.org/get-started/locally/)"


def python_section(
    extension: Path,
    projects: tuple[str, ...],
    given: str | None,
    environ: Mapping[str, str],
    say: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[Finding]]:
    """The interpreter's packages checked against the bounds the sub-projects' sources set.

    A `--python` that is no executable is an error (a PythonError, before anything is shown);
    one that cannot be asked, or answers something else, is one error finding. `say` gets
    a line every heartbeat while the interpreter or nvcc is being waited for."""
    python = interpreter(given)
    try:
        found = probe(python, environ, say)
    except PythonError as error:
        failed = Finding(ERROR, "python", error.message, error.hint)
        return _unasked(python, environ, failed, say)
    installed: dict[str, Any] = found["packages"]
    folders = [folder for folder in PACKAGES if (extension / folder).is_dir()]
    ranges = [found for folder in folders for found in sub_project_ranges(extension, folder)]
    findings: list[Finding] = []
    info: dict[str, Any] = {
        "interpreter": python,
        "version": found["python"],
        "executable": found["executable"],
        "prefix": found["prefix"],
        "packages": {},
        "imports": found["imports"],
    }
    pip = f"{python} -m pip install"
    effective: dict[str, Range | None] = {}
    for package in CHECKED:
        own = [r for r in ranges if r.package == package]
        bounded = [r for r in own if r.lower or r.upper]
        effective[package] = stricter(bounded, package) if bounded else None
    wheel_info, wheel_findings, wheel_command = mmcv_wheels(
        extension, installed.get("torch"), effective["mmcv"], pip
    )
    lite = (installed.get("mmcv") or {}).get("distribution") == LITE
    if lite:  # no prebuilt wheel is needed, and no build would be made
        wheel_findings, wheel_command = [LITE_FINDING], ""
    for package in CHECKED:
        own = [r for r in ranges if r.package == package]
        limit = effective[package]
        folder = FOLDERS.get(package)
        checkout = extension / folder if folder and folder in folders else None
        have = installed.get(package)
        entry: dict[str, Any] = {
            **(have or {"version": None, "editable": False, "source": None, "location": None}),
            "required": limit.text() if limit else None,
            "sources": [{"source": r.source, "range": r.text()} for r in own],
            "accepted": None,
        }
        info["packages"][package] = entry
        sources = _sources(own)
        if package == "mmcv" and wheel_command:
            fix = wheel_command
        elif package == "mmcv" and folder not in projects:  # a build from source takes hours
            fix = f"{pip} openmim && {python} -m mim install '{mmcv_name(limit)}{_text(limit)}'"
        elif checkout is not None:
            fix = f"cd {checkout} && {pip} -v -e ."
        elif package == "torch":
            fix = TORCH_HINT
        else:
            fix = f"{pip} '{package}{_text(limit)}'"
        if checkout is not None:
            findings += _shadowed(package, found["imports"].get(package), have, checkout, pip)
        if have is None:
            needed = bool(own) or package == "torch" or (folder in projects)
            text = "not installed" + (f" (needs {limit.text()}{sources})" if limit else "")
            findings.append(
                Finding(ERROR if needed else INFO, package, text, fix if needed else "")
            )
            continue
        version = have["version"]
        accepted = limit.accepts(version) if limit else True
        entry["accepted"] = accepted
        if accepted is False:
            text = f"{version} installed, outside {limit.text() if limit else ''}{sources}"
            findings.append(Finding(ERROR, package, text, fix))
        elif accepted is None:
            text = f"{version} installed; cannot compare it with {limit.text() if limit else ''}"
            findings.append(Finding(WARNING, package, text + sources, fix))
        else:
            cuda = f" (CUDA {have.get('cuda') or 'none: CPU only'})" if package == "torch" else ""
            needs = f", needs {limit.text()}{sources}" if limit else ""
            findings.append(Finding(OK, package, f"{version}{cuda}{needs}"))
        if checkout is not None:
            findings += _editable(package, have, checkout, folder in projects, pip)
    findings += _checkout_versions(extension, folders, effective)
    info["torch_cuda"] = (installed.get("torch") or {}).get("cuda")
    info["cuda_toolkit"] = cuda_toolkit(environ, say)
    findings += _toolkit(info["torch_cuda"], info["cuda_toolkit"])
    info["mmcv_wheels"] = wheel_info
    findings += wheel_findings
    return info, findings


def _unasked(
    python: str,
    environ: Mapping[str, str],
    failed: Finding,
    say: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[Finding]]:
    """The section of an interpreter that gave no usable answer: that error, and the CUDA
    toolkit (which does not depend on it)."""
    toolkit = cuda_toolkit(environ, say)
    info: dict[str, Any] = {
        "interpreter": python,
        "version": None,
        "executable": None,
        "prefix": None,
        "packages": {},
        "imports": {},
        "torch_cuda": None,
        "cuda_toolkit": toolkit,
        "mmcv_wheels": None,
    }
    return info, [failed, *_toolkit(None, toolkit)]


def _text(limit: Range | None) -> str:
    return limit.text() if limit else ""


def _sources(ranges: list[Range]) -> str:
    """Where a range comes from; two sources that disagree are both named."""
    if not ranges:
        return ""
    said = sorted({(r.source, r.text()) for r in ranges if r.lower or r.upper})
    if len({text for _, text in said}) > 1:
        listed = "; ".join(f"{source} says {text}" for source, text in said)
        return f" ({listed}: the stricter is used)"
    return f" ({' and '.join(source for source, _ in said)})" if said else ""


def _editable(
    package: str, have: Mapping[str, Any], checkout: Path, worked_on: bool, pip: str
) -> list[Finding]:
    """An editable install from another checkout is an error (edits here change nothing)."""
    fix = f"cd {checkout} && {pip} -v -e ."
    if have.get("editable"):
        source = have.get("source")
        if source and os.path.realpath(source) != os.path.realpath(checkout):
            return [
                Finding(
                    ERROR,
                    package,
                    f"installed editable from {source}, not from this"
                    f" workspace's {checkout}: edits here change nothing",
                    fix,
                )
            ]
        return []
    if worked_on:
        return [
            Finding(
                WARNING,
                package,
                f"installed from a package, not from this workspace's"
                f" {checkout}: edits there change nothing",
                fix,
            )
        ]
    return []


def _shadowed(
    package: str, loaded: str | None, have: Mapping[str, Any] | None, checkout: Path, pip: str
) -> list[Finding]:
    """`import package` loading a source folder other than this workspace's checkout (through
    PYTHONPATH or a .pth file), where no editable install already says so."""
    if loaded is None or {"site-packages", "dist-packages"} & set(Path(loaded).parts):
        return []
    real = os.path.realpath(loaded)
    source = (have or {}).get("source")
    if real == os.path.realpath(checkout) or (source and os.path.realpath(source) == real):
        return []
    return [
        Finding(ERROR, package, f"`import {package}` loads it from {loaded}, not from this"
                f" workspace's {checkout} (PYTHONPATH or a .pth file): edits here change nothing",
                f"take {loaded} out of PYTHONPATH, then: cd {checkout} && {pip} -v -e .")
    ]  # fmt: skip


def _checkout_versions(
    extension: Path, folders: list[str], effective: Mapping[str, Range | None]
) -> list[Finding]:
    """A sub-project checked out at a version another sub-project does not accept."""
    findings = []
    for folder in folders:
        package = PACKAGES[folder]
        version = checkout_version(extension, folder)
        limit = effective.get(package)
        if version and limit and limit.accepts(version) is False:
            findings.append(
                Finding(
                    WARNING,
                    package,
                    f"this workspace's {folder} checkout is {version},"
                    f" outside {limit.text()} ({limit.source}): installing it breaks that",
                    f"install a release within {limit.text()} instead of the checkout",
                )
            )
    return findings


def _toolkit(torch_cuda: str | None, toolkit: Mapping[str, Any]) -> list[Finding]:
    release = toolkit.get("nvcc_release")
    home = toolkit.get("cuda_home") or "unset"
    if toolkit.get("nvcc") is None:
        return [Finding(INFO, "cuda", f"CUDA_HOME {home}; no nvcc (only needed to build mmcv)")]
    text = f"CUDA_HOME {home}; nvcc {release or 'of unknown release'} ({toolkit['nvcc']})"
    if toolkit.get("nvcc_problem"):
        hint = "check that this nvcc is the CUDA compiler (nvcc --version prints its release)"
        return [Finding(WARNING, "cuda", f"{text}: {toolkit['nvcc_problem']}", hint)]
    if torch_cuda and release and release != torch_cuda:
        return [
            Finding(
                WARNING,
                "cuda",
                f"{text} differs from torch's CUDA {torch_cuda}",
                f"set CUDA_HOME to a CUDA {torch_cuda} toolkit before building mmcv",
            )
        ]
    return [Finding(INFO, "cuda", text)]

"""The stand-in indexes of `inv python-env`'s tests and benchmark: mmdetection3d 1.0.0rc4's
shape (a PyPI-shaped index with mmdet 2.x and 3.x, mmsegmentation, numba with a cp38-only pin,
mmcv-full sdists that fail loudly if built, stand-in build tools; a PyTorch-style index;
mmcv's wheel pages), the checkout's setup.py that imports torch, the variables that point
the tool at them, and what the python-env test files share: the rc4 workspace, the
network settings, what a made venv imports, a real `inv python-env` stopped mid-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .fakepython import write
from .httpserve import Served, serving
from .wheelfixture import (
    CP,
    MANYLINUX,
    PLATFORM,
    STANDIN_SETUPTOOLS,
    Indexes,
    failing_sdist,
    mmcv_files,
    package_files,
    rc4_workspace,
    torch_files,
    wheel,
)

if TYPE_CHECKING:  # (the benchmark imports this module without pytest)
    import pytest

SETUP_PY = """\
import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
from setuptools import find_packages, setup

setup(name='mmdet3d', version='1.0.0rc4', packages=find_packages())
"""
OVERRIDE = "numba>=0.57  # numba==0.53.0 has no wheel for this Python\n"


def stand_in_indexes(folder: Path) -> Indexes:
    """What the recorded workspace's environment is installed from: torch 1.12.1 and 1.11.0
    (cu113) on a PyTorch-style index; mmcv's pages (torch 1.12: mmcv-full 1.7.0 and mmcv
    2.0.0, outside rc4's range; torch 1.11: mmcv-full 1.6.0); a PyPI with mmcv-full sdists
    that fail loudly, mmdet 2.x and 3.x, mmsegmentation, numba (0.53.0 for cp38 only, and
    0.57.0), the stand-in build tools."""
    indexes = Indexes()
    native = f"{CP}-{CP}-{PLATFORM}"
    torches = [
        wheel(folder, "torch", f"{v}+cu113", torch_files(f"{v}+cu113", "11.3"), tag=native)
        for v in ("1.12.1", "1.11.0")
    ]
    indexes.simple("whl/cu113", torches)
    on_pypi = f"{CP}-{CP}-{MANYLINUX}"
    indexes.openmmlab(
        "cu113",
        "1.12",
        [
            wheel(folder / "p12", "mmcv-full", "1.7.0", mmcv_files("1.7.0"), tag=on_pypi),
            wheel(folder / "p12", "mmcv", "2.0.0", mmcv_files("2.0.0"), tag=on_pypi),
        ],
        dotted=False,
    )
    indexes.openmmlab(
        "cu113",
        "1.11",
        [wheel(folder / "p11", "mmcv-full", "1.6.0", mmcv_files("1.6.0"), tag=on_pypi)],
        dotted=True,
    )
    mim = ("mmcv>=2.0.0rc4 ; extra == 'mim'",)
    pypi = [
        failing_sdist(folder, "mmcv-full", "1.6.0"),
        failing_sdist(folder, "mmcv-full", "1.5.3"),
        wheel(folder, "mmdet", "2.28.2", package_files("mmdet", "2.28.2"),
              requires=("mmcv-full>=1.3.17 ; extra == 'mim'",)),
        wheel(folder, "mmdet", "3.0.0", package_files("mmdet", "3.0.0"), requires=mim),
        wheel(folder, "mmsegmentation", "0.30.0", package_files("mmseg", "0.30.0")),
        wheel(folder, "mmsegmentation", "1.0.0", package_files("mmseg", "1.0.0")),
        wheel(folder, "numba", "0.53.0", package_files("numba", "0.53.0"), tag="cp38-cp38-"
              "manylinux1_x86_64"),
        failing_sdist(folder, "numba", "0.53.0"),
        wheel(folder, "numba", "0.57.0", package_files("numba", "0.57.0")),
        wheel(folder, "setuptools", "65.5.0", STANDIN_SETUPTOOLS),
        wheel(folder, "wheel", "0.43.0", {"wheel/__init__.py": ""}),
    ]  # fmt: skip
    indexes.simple("simple", pypi)
    return indexes


@contextmanager
def served_indexes(indexes: Indexes, *, max_requests: int | None = None) -> Iterator[Served]:
    """`indexes` served on 127.0.0.1 for as long as the block runs (a module's `index`)."""
    served = indexes.served()
    if max_requests is not None:
        served.max_requests = max_requests
    with serving(served) as running:
        yield running


def environ(
    served: Served, *, cuda: str = "cu113", mmcv_index: str | None = None, **more: str
) -> dict[str, str]:
    """The variables that point `inv python-env` at `served` (mmcv's pages at `mmcv_index`
    instead, where given), for mmdetection3d; `more` added."""
    return {
        "MMLAB_PROJECTS": "mmdetection3d",
        "MMLAB_CUDA": cuda,
        "MMLAB_PYTHON": sys.executable,
        "MMLAB_TORCH_INDEX": served.url + "whl/",
        "MMLAB_MMCV_INDEX": served.url if mmcv_index is None else mmcv_index,
        "MMLAB_PYPI_INDEX": served.url + "simple/",
        **more,
    }


def loopback_only(
    monkeypatch: pytest.MonkeyPatch, *, uv_offline: bool = False, uv_config: bool = False
) -> None:
    """The loopback indexes reached directly, whatever proxy or pip index the machine sets;
    with `uv_offline` / `uv_config`, a user's own uv settings (which would break every run if
    honoured) set too, for the tool to ignore."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "PIP_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    if uv_offline:
        monkeypatch.setenv("UV_OFFLINE", "1")
    if uv_config:
        write(Path(os.environ["HOME"]) / ".config" / "uv" / "uv.toml", "offline = true\n")


def rc4(root: Path, *, overrides: str | None = None, setup_py: str = SETUP_PY) -> Path:
    """`root` made mmdetection3d 1.0.0rc4's workspace: its setup.py imports torch, its
    runtime pins numba==0.53.0; `overrides` written as python-env.overrides.txt, if given."""
    extension = rc4_workspace(root / "mmlab_extension")
    write(extension / "mmdetection3d" / "setup.py", setup_py)
    write(extension / "mmdetection3d" / "requirements" / "runtime.txt", "numba==0.53.0\n")
    if overrides is not None:
        write(root / "python-env.overrides.txt", overrides)
    return root


RC4_MODULES = ("mmcv", "mmdet", "mmseg", "numba", "torch")


def imported(
    venv: Path, modules: Sequence[str] = RC4_MODULES, *, ops: bool = True
) -> dict[str, str]:
    """What `venv`'s python imports: each of `modules`' version (its file where it has
    none) and mmdet3d's file; with `ops`, mmcv.ops must import, else `ops` says whether it
    does ("imports") or why not."""
    names = ", ".join(["json", *modules, "mmdet3d"])
    script = f"import {names}\n"
    if ops:
        script += "import mmcv.ops\nextra = {}\n"
    else:
        script += (
            "try:\n    import mmcv.ops\n    extra = {'ops': 'imports'}\n"
            "except ImportError as error:\n    extra = {'ops': str(error)}\n"
        )
    script += (
        "print(json.dumps({m.__name__: getattr(m, '__version__', m.__file__) for m in"
        f" ({', '.join(modules)},)}} | {{'mmdet3d': mmdet3d.__file__}} | extra))"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", script], capture_output=True, check=True
    )
    found: dict[str, str] = json.loads(done.stdout)
    return found


@contextmanager
def python_env_until(
    cwd: Path,
    env: dict[str, str],
    said: Path,
    *,
    never: str = "the build never started",
    output: int = subprocess.DEVNULL,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `inv python-env` in `cwd`, in its own process group, run until `said` exists
    (the stand-in build backend or interpreter says when it waits: not a timing assertion);
    the block then does what it tests; on leaving, the group is SIGKILLed if still running."""
    inv_bin = shutil.which("inv", path=env["PATH"])
    assert inv_bin is not None
    process = subprocess.Popen(
        [inv_bin, "python-env"],
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdout=output,
        stderr=output,
    )
    try:
        for _ in range(1200):
            if said.exists() or process.poll() is not None:
                break
            time.sleep(0.05)
        assert said.exists(), never
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


HOLD_FOLDER = (
    "import fcntl, os, sys\n"
    "d = os.open(sys.argv[1], os.O_RDONLY)\n"
    "fcntl.flock(d, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@contextmanager
def held(folder: Path) -> Iterator[None]:
    """While the block runs, another process holds an exclusive flock on `folder` (as a
    live run holds its scratch or `.partial` folder)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        yield
    finally:
        holder.kill()
        holder.wait()

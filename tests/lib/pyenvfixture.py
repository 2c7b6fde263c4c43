"""The stand-in indexes of `inv python-env`'s tests and benchmark: mmdetection3d 1.0.0rc4's
shape (a PyPI-shaped index with mmdet 2.x and 3.x, mmsegmentation, numba with a cp38-only pin,
mmcv-full sdists that fail loudly if built, stand-in build tools; a PyTorch-style index;
mmcv's wheel pages), the checkout's setup.py that imports torch, and the variables that point
the tool at them."""

from __future__ import annotations

import sys
from pathlib import Path

from .httpserve import Served
from .wheelfixture import (
    CP,
    MANYLINUX,
    PLATFORM,
    STANDIN_SETUPTOOLS,
    Indexes,
    failing_sdist,
    mmcv_files,
    package_files,
    torch_files,
    wheel,
)

SETUP_PY = """\
import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
from setuptools import find_packages, setup

setup(name='mmdet3d', version='1.0.0rc4', packages=find_packages())
"""
OVERRIDE = "numba>=0.57  # numba==0.53.0 has no wheel for this Python\n"


def stand_in_indexes(folder: Path) -> Indexes:
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


def environ(served: Served) -> dict[str, str]:
    return {
        "MMLAB_PROJECTS": "mmdetection3d",
        "MMLAB_CUDA": "cu113",
        "MMLAB_PYTHON": sys.executable,
        "MMLAB_TORCH_INDEX": served.url + "whl/",
        "MMLAB_MMCV_INDEX": served.url,
        "MMLAB_PYPI_INDEX": served.url + "simple/",
    }

"""Stand-in wheels built on the fly and the indexes that serve them on 127.0.0.1: a PEP 503
index (PyPI's shape), a PyTorch-style index (`whl/<tag>/torch/`) and download.openmmlab.com-
style pages (`mmcv/dist/<tag>/torch<X.Y>/index.html`). The sdists fail loudly when anyone tries
to build them; the stand-in setuptools runs a checkout's real-shaped `setup.py` (which imports
torch) and installs it editable through a `.pth` file, with no compiler and no network."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import platform
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from .fakepython import (
    MMDET3D_10_INIT,
    MMDET3D_10_MMINSTALL,
    MMDET3D_INIT,
    MMDET3D_MMINSTALL,
    write,
)
from .httpserve import Served

CP = f"cp{sys.version_info.major}{sys.version_info.minor}"
PLATFORM = f"linux_{platform.machine()}"
MANYLINUX = f"manylinux1_{platform.machine()}"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def wheel(
    folder: Path,
    name: str,
    version: str,
    files: dict[str, str] | None = None,
    *,
    requires: tuple[str, ...] = (),
    tag: str = "py3-none-any",
) -> Path:
    """A wheel holding `files` (path -> text) and its dist-info."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{stem}-{tag}.whl"
    info = f"{stem}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    if any("extra ==" in r for r in requires):
        extras = {r.split("extra ==")[1].strip().strip("'\"") for r in requires if "extra" in r}
        metadata += "".join(f"Provides-Extra: {e}\n" for e in sorted(extras))
    contents = {
        **(files or {}),
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
    }
    record = ""
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in contents.items():
            data = text.encode()
            archive.writestr(member, data)
            record += _record_line(member, data)
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return path


def failing_sdist(folder: Path, name: str, version: str) -> Path:
    """An sdist whose build fails loudly (mmcv from source takes hours: never here)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{name.replace('-', '_')}-{version}"
    path = folder / f"{stem}.tar.gz"
    files = {
        f"{stem}/setup.py": f"raise SystemExit('STAND-IN SDIST {name} {version} WAS BUILT')\n",
        f"{stem}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for member, text in files.items():
            data = text.encode()
            entry = tarfile.TarInfo(member)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return path


# A build backend in setuptools' place: exec's the checkout's setup.py with a `setup` that
# records its name and version, then writes an editable wheel (a .pth naming the checkout).
STANDIN_BUILD_META = r"""
import base64, hashlib, os, runpy, time, zipfile
import setuptools

def _metadata():
    setuptools._seen.clear()
    runpy.run_path("setup.py", run_name="__main__")
    return setuptools._seen["name"], setuptools._seen["version"]

def get_requires_for_build_editable(config_settings=None):
    return []

def get_requires_for_build_wheel(config_settings=None):
    return []

def _line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"

def _gate():
    # a test stops the build here (STANDIN_BUILD_WAIT=<file>): says so, waits for the file
    gate = os.environ.get("STANDIN_BUILD_WAIT")
    if gate:
        open(gate + ".started", "w").close()
        for _ in range(600):
            if os.path.exists(gate):
                return
            time.sleep(0.1)

def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _gate()
    name, version = _metadata()
    stem = f"{name.replace('-', '_')}-{version}"
    info = f"{stem}.dist-info"
    files = {
        f"__editable__.{stem}.pth": os.getcwd() + "\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: standin\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    filename = f"{stem}-0.editable-py3-none-any.whl"
    record = ""
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text.encode())
            record += _line(path, text.encode())
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return filename

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise SystemExit("STAND-IN SETUPTOOLS: only editable installs here")

def build_sdist(sdist_directory, config_settings=None):
    raise SystemExit("STAND-IN SETUPTOOLS: no sdists here")

class _Legacy:
    pass

__legacy__ = _Legacy()
for _name in ("get_requires_for_build_editable", "get_requires_for_build_wheel",
              "build_editable", "build_wheel", "build_sdist"):
    setattr(__legacy__, _name, globals()[_name])
"""
STANDIN_SETUPTOOLS = {
    "setuptools/__init__.py": (
        "_seen = {}\n"
        "def setup(**kw):\n    _seen.update(kw)\n"
        "def find_packages(*a, **kw):\n    return []\n"
    ),
    "setuptools/build_meta.py": STANDIN_BUILD_META,
}


def torch_files(version: str, cuda: str | None) -> dict[str, str]:
    """A stand-in torch: `torch/version.py`, and what mmdet3d's setup.py imports."""
    return {
        "torch/__init__.py": f"__version__ = {version!r}\nfrom . import cuda, version\n",
        "torch/version.py": f"__version__ = {version!r}\ncuda = {cuda!r}\n",
        "torch/cuda.py": "def is_available():\n    return False\n",
        "torch/utils/__init__.py": "",
        "torch/utils/cpp_extension.py": (
            "class BuildExtension: pass\nclass CppExtension: pass\nclass CUDAExtension: pass\n"
        ),
    }


def mmcv_files(version: str) -> dict[str, str]:
    """mmcv with its compiled ops (a `_ext` module in place of the .so)."""
    return {
        "mmcv/__init__.py": f"__version__ = {version!r}\n",
        "mmcv/_ext.py": "OPS = ('nms', 'roi_align')\n",
        "mmcv/ops/__init__.py": "from .._ext import OPS\n",
    }


def package_files(module: str, version: str) -> dict[str, str]:
    return {f"{module}/__init__.py": f"__version__ = {version!r}\n"}


def page(title: str, links: list[tuple[str, str]]) -> bytes:
    body = "".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a><br/>\n'
                   for href, text in links)  # fmt: skip
    return (
        f"<!DOCTYPE html><html><body><h1>{html.escape(title)}</h1>\n{body}</body></html>\n".encode()
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Indexes:
    """The files a loopback server serves (paths without the leading slash)."""

    files: dict[str, bytes | Path] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def page(self, path: str, text: bytes) -> None:
        self.files[path] = text
        self.types[path] = "text/html; charset=utf-8"

    def served(self) -> Served:
        return Served(files=dict(self.files), types=dict(self.types))

    def simple(self, prefix: str, dists: list[Path]) -> None:
        """A PEP 503 index at `<prefix>/`: a root page and one page per project."""
        by_project: dict[str, list[Path]] = {}
        for dist in dists:
            if dist.name.endswith(".whl"):
                name = str(parse_wheel_filename(dist.name)[0])
            else:
                name = canonicalize_name(dist.name.rsplit("-", 1)[0])
            by_project.setdefault(name, []).append(dist)
            self.files[f"{prefix}/files/{dist.name.replace('+', '%2B')}"] = dist
        for name, found in by_project.items():
            links = [(f"../files/{d.name.replace('+', '%2B')}#sha256={_sha(d)}", d.name)
                     for d in found]  # fmt: skip
            self.page(f"{prefix}/{name}/", page(f"Links for {name}", links))
        roots = [(f"{name}/", name) for name in sorted(by_project)]
        self.page(f"{prefix}/", page("Simple index", roots))

    def openmmlab(self, tag: str, torch_minor: str, wheels: list[Path], *, dotted: bool) -> None:
        """mmcv's page for a pair, as download.openmmlab.com writes it (absolute links)."""
        folder = f"mmcv/dist/{tag}/torch{torch_minor}{'.0' if dotted else ''}"
        for found in wheels:
            self.files[f"{folder}/{found.name}"] = found
        links = [(f"/{folder}/{w.name}", w.name) for w in wheels]
        self.page(f"{folder}/index.html", page("mmcv wheels", links))


RC4_RUNTIME = "networkx>=2.2,<2.3\nnumba==0.53.0\nnumpy\n# a comment\ntrimesh>=2.35.39,<2.35.40\n"


def rc4_workspace(extension: Path, *, mmcv: str = "1.6.1") -> Path:
    """The recorded workspace's shape: mmdetection3d 1.0.0rc4 and an mmcv checkout."""
    write(extension / "mmdetection3d" / "mmdet3d" / "__init__.py", MMDET3D_10_INIT)
    write(
        extension / "mmdetection3d" / "mmdet3d" / "version.py",
        "__version__ = '1.0.0rc4'\nshort_version = __version__\n",
    )
    write(extension / "mmdetection3d" / "requirements" / "mminstall.txt", MMDET3D_10_MMINSTALL)
    write(extension / "mmdetection3d" / "requirements" / "runtime.txt", RC4_RUNTIME)
    write(extension / "mmcv" / "mmcv" / "version.py", f"__version__ = '{mmcv}'\n")
    return extension


def mmcv_lite_files(version: str) -> dict[str, str]:
    """mmcv-lite: mmcv without its compiled ops; `mmcv.ops` fails as the real one does."""
    return {
        "mmcv/__init__.py": f"__version__ = {version!r}\n",
        "mmcv/ops/__init__.py": "from .._ext import OPS  # mmcv-lite has no _ext\n",
    }


def mmengine_files(version: str) -> dict[str, str]:
    """mmengine with the `digit_version` the OpenMMLab 2.x packages check versions with."""
    return {
        "mmengine/__init__.py": f"__version__ = {version!r}\n",
        "mmengine/utils/__init__.py": (
            "import re\n"
            "def digit_version(version_str, length=4):\n"
            "    return tuple(int(p) for p in re.findall(r'\\d+', version_str)[:3])\n"
        ),
    }


# mmdetection3d v1.4.0 (an OpenMMLab 2.x checkout), the parts the tool reads and runs.
MMDET3D_14_INIT = MMDET3D_INIT  # (the mirror's HEAD is 1.4: the same file)
MMDET3D_14_MMINSTALL = MMDET3D_MMINSTALL
MMDET3D_14_SETUP = """\
import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
from setuptools import find_packages, setup

setup(name='mmdet3d', version='1.4.0', packages=find_packages())
"""


def v14_workspace(extension: Path, *, runtime: str = "", mmcv: str = "2.1.0") -> Path:
    """An OpenMMLab 2.x workspace's shape: mmdetection3d v1.4.0 and an mmcv 2.x checkout."""
    project = extension / "mmdetection3d"
    write(project / "mmdet3d" / "__init__.py", MMDET3D_14_INIT)
    write(
        project / "mmdet3d" / "version.py",
        "__version__ = '1.4.0'\nversion_info = (1, 4, 0)\nshort_version = __version__\n",
    )
    write(project / "requirements" / "mminstall.txt", MMDET3D_14_MMINSTALL)
    write(project / "requirements" / "runtime.txt", runtime)
    write(project / "setup.py", MMDET3D_14_SETUP)
    write(extension / "mmcv" / "mmcv" / "version.py", f"__version__ = '{mmcv}'\n")
    return extension

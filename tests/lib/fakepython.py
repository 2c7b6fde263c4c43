"""Fake training environments: a real venv (no pip) whose site-packages holds fake
`*.dist-info` folders (METADATA, `direct_url.json` for editable installs), so no real torch is
needed; and sub-project sources in the real shape for the version bounds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

# mmdetection3d's mmdet3d/__init__.py at the mirror's HEAD (1.4), as it is.
MMDET3D_INIT = """\
# Copyright (c) OpenMMLab. All rights reserved.
import mmcv
import mmdet
import mmengine
from mmengine.utils import digit_version

from .version import __version__, version_info

mmcv_minimum_version = '2.0.0rc4'
mmcv_maximum_version = '2.2.0'
mmcv_version = digit_version(mmcv.__version__)

mmengine_minimum_version = '0.8.0'
mmengine_maximum_version = '1.0.0'
mmengine_version = digit_version(mmengine.__version__)

mmdet_minimum_version = '3.0.0rc5'
mmdet_maximum_version = '3.4.0'
mmdet_version = digit_version(mmdet.__version__)

assert (mmcv_version >= digit_version(mmcv_minimum_version)
        and mmcv_version < digit_version(mmcv_maximum_version)), \\
    f'MMCV=={mmcv.__version__} is used but incompatible. ' \\
    f'Please install mmcv>={mmcv_minimum_version}, <{mmcv_maximum_version}.'

assert (mmengine_version >= digit_version(mmengine_minimum_version)
        and mmengine_version < digit_version(mmengine_maximum_version)), \\
    f'MMEngine=={mmengine.__version__} is used but incompatible. ' \\
    f'Please install mmengine>={mmengine_minimum_version}, ' \\
    f'<{mmengine_maximum_version}.'

assert (mmdet_version >= digit_version(mmdet_minimum_version)
        and mmdet_version < digit_version(mmdet_maximum_version)), \\
    f'MMDET=={mmdet.__version__} is used but incompatible. ' \\
    f'Please install mmdet>={mmdet_minimum_version}, ' \\
    f'<{mmdet_maximum_version}.'

__all__ = ['__version__', 'version_info', 'digit_version']
"""
# Its requirements/mminstall.txt: mmdet <3.3.0 where __init__.py says <3.4.0.
MMDET3D_MMINSTALL = "mmcv>=2.0.0rc4,<2.2.0\nmmdet>=3.0.0,<3.3.0\nmmengine>=0.7.1,<1.0.0\n"

# mmdetection 3.x's mmdet/__init__.py (mmdetection is not mirrored here; its real shape).
MMDET_INIT = """\
# Copyright (c) OpenMMLab. All rights reserved.
import mmcv
import mmengine
from mmengine.utils import digit_version

from .version import __version__, version_info

mmcv_minimum_version = '2.0.0rc4'
mmcv_maximum_version = '2.2.0'
mmcv_version = digit_version(mmcv.__version__)

mmengine_minimum_version = '0.7.1'
mmengine_maximum_version = '1.0.0'
mmengine_version = digit_version(mmengine.__version__)

assert (mmcv_version >= digit_version(mmcv_minimum_version)
        and mmcv_version < digit_version(mmcv_maximum_version)), \\
    f'MMCV=={mmcv.__version__} is used but incompatible. ' \\
    f'Please install mmcv>={mmcv_minimum_version}, <{mmcv_maximum_version}.'

assert (mmengine_version >= digit_version(mmengine_minimum_version)
        and mmengine_version < digit_version(mmengine_maximum_version)), \\
    f'MMEngine=={mmengine.__version__} is used but incompatible. ' \\
    f'Please install mmengine>={mmengine_minimum_version}, ' \\
    f'<{mmengine_maximum_version}.'

__all__ = ['__version__', 'version_info', 'digit_version']
"""
MMDET_MMINSTALL = "mmcv>=2.0.0rc4,<2.2.0\nmmengine>=0.7.1,<1.0.0\n"

# mmdetection3d 1.0.0rc4 (the commit the real superproject records): its own digit_version,
# maxima included (`<=`), and mminstall.txt naming mmcv-full.
MMDET3D_10_INIT = """\
# Copyright (c) OpenMMLab. All rights reserved.
import mmcv

import mmdet
import mmseg
from .version import __version__, short_version


def digit_version(version_str):
    digit_version = []
    for x in version_str.split('.'):
        if x.isdigit():
            digit_version.append(int(x))
        elif x.find('rc') != -1:
            patch_version = x.split('rc')
            digit_version.append(int(patch_version[0]) - 1)
            digit_version.append(int(patch_version[1]))
    return digit_version


mmcv_minimum_version = '1.5.2'
mmcv_maximum_version = '1.7.0'
mmcv_version = digit_version(mmcv.__version__)


assert (mmcv_version >= digit_version(mmcv_minimum_version)
        and mmcv_version <= digit_version(mmcv_maximum_version)), \\
    f'MMCV=={mmcv.__version__} is used but incompatible. ' \\
    f'Please install mmcv>={mmcv_minimum_version}, <={mmcv_maximum_version}.'

mmdet_minimum_version = '2.24.0'
mmdet_maximum_version = '3.0.0'
mmdet_version = digit_version(mmdet.__version__)
assert (mmdet_version >= digit_version(mmdet_minimum_version)
        and mmdet_version <= digit_version(mmdet_maximum_version)), \\
    f'MMDET=={mmdet.__version__} is used but incompatible. ' \\
    f'Please install mmdet>={mmdet_minimum_version}, ' \\
    f'<={mmdet_maximum_version}.'

__all__ = ['__version__', 'short_version']
"""
MMDET3D_10_MMINSTALL = (
    "mmcv-full>=1.4.8,<=1.6.0\nmmdet>=2.24.0,<=3.0.0\nmmsegmentation>=0.20.0,<=1.0.0\n"
)

# A part of mmcv's docs/en/_static/version.json (the prebuilt wheels it lists).
MMCV_WHEELS = {
    "Linux": [
        {"cuda": "11.8", "torch": "2.1.x", "mmcv": ["2.2.0", "2.1.0"]},
        {"cuda": "12.1", "torch": "2.4.x", "mmcv": ["2.2.0"]},
        {"cuda": "cpu", "torch": "2.1.x", "mmcv": ["2.2.0", "2.1.0"]},
    ]
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sub_projects(extension: Path, *, mmcv_version: str = "2.1.0") -> Path:
    """mmdetection, mmdetection3d and mmcv folders with their version sources."""
    write(extension / "mmdetection3d" / "mmdet3d" / "__init__.py", MMDET3D_INIT)
    write(extension / "mmdetection3d" / "requirements" / "mminstall.txt", MMDET3D_MMINSTALL)
    write(extension / "mmdetection" / "mmdet" / "__init__.py", MMDET_INIT)
    write(extension / "mmdetection" / "requirements" / "mminstall.txt", MMDET_MMINSTALL)
    write(extension / "mmcv" / "mmcv" / "version.py", f"__version__ = '{mmcv_version}'\n")
    write(extension / "mmcv" / "docs" / "en" / "_static" / "version.json", json.dumps(MMCV_WHEELS))
    return extension


class FakePython:
    """A venv (no pip) whose site-packages the test fills with fake distributions."""

    def __init__(self, folder: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
        self.folder = folder
        self.python = folder / "bin" / "python"
        (self.site,) = (folder / "lib").glob("python*/site-packages")

    def install(
        self, name: str, version: str, *, editable: Path | None = None, cuda: str | None = None
    ) -> None:
        """A distribution's dist-info; `editable`: installed with `pip install -e` from there;
        for torch, a `torch/version.py` holding `cuda` and a `torch/__init__.py` that fails
        when imported (so nothing may import it)."""
        info = self.site / f"{name.replace('-', '_')}-{version}.dist-info"
        write(info / "METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        if editable is not None:
            direct = {"url": editable.as_uri(), "dir_info": {"editable": True}}
            write(info / "direct_url.json", json.dumps(direct))
        if name == "torch":
            write(self.site / "torch" / "__init__.py", "raise SystemExit('torch was imported')\n")
            write(
                self.site / "torch" / "version.py",
                f"__version__ = '{version}'\ncuda: Optional[str] = {cuda!r}\n",
            )

    def uninstall(self, name: str) -> None:
        """Take a distribution's dist-info folders out."""
        for info in self.site.glob(f"{name.replace('-', '_')}-*.dist-info"):
            shutil.rmtree(info)

    def install_develop(self, name: str, version: str, source: Path) -> None:
        """A `setup.py develop` install: an egg-info in the source, found through a .pth."""
        write(source / f"{name}.egg-info" / "PKG-INFO",
              f"Metadata-Version: 1.2\nName: {name}\nVersion: {version}\n")  # fmt: skip
        write(self.site / "easy-install.pth", f"{source}\n")

"""A stand-in training environment whose config loader is real enough: a venv (no pip) marked
as `inv python-env` leaves it, holding an `mmcv` whose `Config.fromfile` executes the config
file and its `_base_` files and merges them as mmcv 1.x does (`_delete_=True` included;
modules and functions left out), in that interpreter, never in the test's process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .fakepython import write

MARKER = "mmlab-bootstrap-env.json"  # what marks a venv inv python-env made

MMCV = """\
__version__ = '1.6.1'
import os, types

class Config:
    def __init__(self, cfg_dict):
        self._cfg_dict = cfg_dict

    @staticmethod
    def fromfile(filename):
        return Config(_file2dict(filename))

def _merge(child, base):
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and value.get('_delete_', False):
            merged[key] = {k: v for k, v in value.items() if k != '_delete_'}
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(value, merged[key])
        else:
            merged[key] = value
    return merged

def _file2dict(filename):
    namespace = {'__file__': filename}
    with open(filename) as source:
        exec(compile(source.read(), filename, 'exec'), namespace)
    bases = namespace.get('_base_', [])
    bases = [bases] if isinstance(bases, str) else bases
    own = {k: v for k, v in namespace.items() if not k.startswith('__') and k != '_base_'
           and not isinstance(v, (types.ModuleType, types.FunctionType))}
    merged = {}
    for base in bases:
        merged.update(_file2dict(os.path.join(os.path.dirname(filename), base)))
    return _merge(own, merged)
"""


def training_env(venv: Path) -> Path:
    """Make the venv at `venv` (e.g. `<MMLAB_VENVS_PATH>/mmdetection3d`); its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python*/site-packages")
    write(site / "mmcv" / "__init__.py", MMCV)
    write(venv / MARKER, json.dumps({"made_by": "mmlab-bootstrap"}))
    return venv / "bin" / "python"

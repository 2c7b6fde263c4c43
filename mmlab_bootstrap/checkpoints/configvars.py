"""The environment variables the workspace's configs read that are not the tool's own
settings: `.env` exports them too, so that a config imports in a shell that sourced it.

`TORCH_HOME` (where torch, and mmcv through it, caches the backbone weights a config names as
`open-mmlab://`, `torchvision://`, `mmcls://` or an http(s) URL) is MMLAB_TORCH_HOME's value.
The others are the names the superproject's configs read, each with the value it means and
the reason; a config that reads a name not known here gets it named (`unknown_variables`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from mmlab_bootstrap.settings import Settings


class ConfigVariable(NamedTuple):
    name: str
    reason: str


# Known names and why their default is what it is (values by `known_values`).
KNOWN = (
    ConfigVariable(
        "ADMLOPS_PATH",
        "the superproject's folder: admlops is mmlab_extension's later name, and its configs"
        " read ADMLOPS_PATH where older ones read MMLAB_EXTENSION_PATH",
    ),
    ConfigVariable(
        "MMDETECTION3D_DIR",
        "the workspace's mmdetection3d checkout (<MMLAB_EXTENSION_PATH>/mmdetection3d)",
    ),
)
KNOWN_NAMES = frozenset(v.name for v in KNOWN)
# Read by configs, set by the launcher or the system, never by .env.
RUNTIME = frozenset({"LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "HOME"})


def known_values(settings: Settings) -> dict[str, str]:
    """The value of every known config variable for this workspace."""
    return {
        "TORCH_HOME": str(settings.torch_home),
        "ADMLOPS_PATH": str(settings.extension_path),
        "MMDETECTION3D_DIR": str(settings.extension_path / "mmdetection3d"),
    }


def exported(settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """What `.env` exports beside the settings, and the one-line comment of each."""
    values = known_values(settings)
    helps = {
        "TORCH_HOME": "torch's cache of backbone weights (MMLAB_TORCH_HOME; written by the tool)",
        **{v.name: f"read by the workspace's configs: {v.reason}" for v in KNOWN},
    }
    return values, helps


def config_environment(settings: Settings, environ: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The variables a training shell that sourced `.env` has: its own, then the exported
    ones, then the settings (what a config reading them sees)."""
    return {**dict(environ), **known_values(settings), **settings.as_env()}


def unknown_variables(names: Iterable[str], settings: Settings) -> list[str]:
    """The names a config reads that neither `.env` nor the launcher sets."""
    own = set(settings.as_env()) | set(known_values(settings)) | RUNTIME
    return [name for name in dict.fromkeys(names) if name not in own]

"""Where every value comes from: the variables table (`variables`), precedence and checks
(`values`: flags > environment > `.env` > defaults files > defaults), the `.env` parser
that keeps the user's lines (`envfile`), values and lines refused (`envcheck`), which
values a shell holds as copies of a sourced `.env` (`sourced`), and where storage goes
(`storage`).

Plan/apply: `storage.plan_layout` plans the storage folders; the `layout` step applies it.
May import: fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.settings.envfile import EnvFile, read_defaults_file, read_env_file, render
    from mmlab_bootstrap.settings.sourced import identity, overrides
    from mmlab_bootstrap.settings.storage import (
        LEAVES,
        Folder,
        device_of,
        device_warning,
        plan_layout,
        route,
        route_note,
        storage_folder,
        storage_warnings,
    )
    from mmlab_bootstrap.settings.values import (
        DEFAULT_LAYERS,
        Settings,
        Source,
        defaults_file,
        differs,
        fix_hint,
        override_warnings,
        resolve,
    )
    from mmlab_bootstrap.settings.variables import (
        BY_NAME,
        CHECKPOINT_MIRROR,
        CHECKPOINTS,
        CHECKPOINTS_PATH,
        CUDA,
        DATASET_PATH,
        DEFAULT_JOBS,
        DOWNLOAD_JOBS,
        EXTENSION_PATH,
        EXTENSION_REF,
        EXTENSION_REPO,
        GIT_CACHE,
        GIT_CACHE_MODE,
        GIT_MIRROR,
        IDENTITY_DIGEST,
        IDENTITY_FILE,
        IDENTITY_HELP,
        MMCV_INDEX,
        MMCV_PACKAGE,
        PROJECTS,
        PYPI_INDEX,
        PYTHON,
        PYTHON_ENV,
        REQUIRE_MOUNT,
        TORCH_HOME,
        TORCH_INDEX,
        VARIABLES,
        VENVS_PATH,
        flag_help,
    )

__all__ = [
    "BY_NAME",
    "CHECKPOINTS",
    "CHECKPOINTS_PATH",
    "CHECKPOINT_MIRROR",
    "CUDA",
    "DATASET_PATH",
    "DEFAULT_JOBS",
    "DEFAULT_LAYERS",
    "DOWNLOAD_JOBS",
    "EXTENSION_PATH",
    "EXTENSION_REF",
    "EXTENSION_REPO",
    "GIT_CACHE",
    "GIT_CACHE_MODE",
    "GIT_MIRROR",
    "IDENTITY_DIGEST",
    "IDENTITY_FILE",
    "IDENTITY_HELP",
    "LEAVES",
    "MMCV_INDEX",
    "MMCV_PACKAGE",
    "PROJECTS",
    "PYPI_INDEX",
    "PYTHON",
    "PYTHON_ENV",
    "REQUIRE_MOUNT",
    "TORCH_HOME",
    "TORCH_INDEX",
    "VARIABLES",
    "VENVS_PATH",
    "EnvFile",
    "Folder",
    "Settings",
    "Source",
    "defaults_file",
    "device_of",
    "device_warning",
    "differs",
    "fix_hint",
    "flag_help",
    "identity",
    "override_warnings",
    "overrides",
    "plan_layout",
    "read_defaults_file",
    "read_env_file",
    "render",
    "resolve",
    "route",
    "route_note",
    "storage_folder",
    "storage_warnings",
]

_WHERE = {
    "BY_NAME": "variables",
    "CHECKPOINTS": "variables",
    "CHECKPOINTS_PATH": "variables",
    "CHECKPOINT_MIRROR": "variables",
    "CUDA": "variables",
    "DATASET_PATH": "variables",
    "DEFAULT_JOBS": "variables",
    "DOWNLOAD_JOBS": "variables",
    "DEFAULT_LAYERS": "values",
    "EXTENSION_PATH": "variables",
    "EXTENSION_REF": "variables",
    "EXTENSION_REPO": "variables",
    "EnvFile": "envfile",
    "Folder": "storage",
    "GIT_CACHE": "variables",
    "GIT_CACHE_MODE": "variables",
    "GIT_MIRROR": "variables",
    "IDENTITY_DIGEST": "variables",
    "IDENTITY_FILE": "variables",
    "IDENTITY_HELP": "variables",
    "LEAVES": "storage",
    "MMCV_INDEX": "variables",
    "MMCV_PACKAGE": "variables",
    "PROJECTS": "variables",
    "PYPI_INDEX": "variables",
    "PYTHON": "variables",
    "PYTHON_ENV": "variables",
    "REQUIRE_MOUNT": "variables",
    "Settings": "values",
    "Source": "values",
    "TORCH_HOME": "variables",
    "TORCH_INDEX": "variables",
    "VARIABLES": "variables",
    "VENVS_PATH": "variables",
    "defaults_file": "values",
    "device_of": "storage",
    "device_warning": "storage",
    "differs": "values",
    "fix_hint": "values",
    "flag_help": "variables",
    "identity": "sourced",
    "override_warnings": "values",
    "overrides": "sourced",
    "plan_layout": "storage",
    "read_defaults_file": "envfile",
    "read_env_file": "envfile",
    "render": "envfile",
    "resolve": "values",
    "route": "storage",
    "route_note": "storage",
    "storage_folder": "storage",
    "storage_warnings": "storage",
}


__getattr__ = lazy_surface(__name__, _WHERE)

"""The workspace variables: names, defaults, flags and one line of help each."""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

# The --jobs defaults, in one place (cli imports this module at start-up for its help lines):
DEFAULT_JOBS = 4  # repositories git fetches at once: clone, bootstrap, mirror
DOWNLOAD_JOBS = 2  # checkpoint files downloaded at once: fetch-checkpoints


class Kind(Enum):
    """How a variable's value is checked and normalised."""

    URL = "url"
    MIRROR = "mirror"
    REF = "ref"
    PATH = "path"
    PROJECTS = "projects"
    SWITCH = "switch"
    MODELS = "models"
    HTTP_MIRROR = "http_mirror"
    CACHE_MODE = "cache_mode"
    PROGRAM = "program"
    CUDA = "cuda"
    MMCV_PACKAGE = "mmcv_package"


class Variable(NamedTuple):
    """One setting of the workspace, as written in `.env`."""

    name: str
    default: str
    kind: Kind
    help: str

    @property
    def param(self) -> str:
        """The task parameter that overrides it, e.g. `extension_path`."""
        return FLAG_PARAMS[self.name]

    @property
    def flag(self) -> str:
        """The command-line flag that overrides it, e.g. `--extension-path`."""
        return "--" + self.param.replace("_", "-")


EXTENSION_REPO = "MMLAB_EXTENSION_REPO"
EXTENSION_REF = "MMLAB_EXTENSION_REF"
EXTENSION_PATH = "MMLAB_EXTENSION_PATH"
CHECKPOINTS_PATH = "MMLAB_CHECKPOINTS_PATH"
DATASET_PATH = "MMLAB_DATASET_PATH"
PROJECTS = "MMLAB_PROJECTS"
GIT_MIRROR = "MMLAB_GIT_MIRROR"
REQUIRE_MOUNT = "MMLAB_REQUIRE_MOUNT"
CHECKPOINTS = "MMLAB_CHECKPOINTS"
CHECKPOINT_MIRROR = "MMLAB_CHECKPOINT_MIRROR"
GIT_CACHE = "MMLAB_GIT_CACHE"
GIT_CACHE_MODE = "MMLAB_GIT_CACHE_MODE"
PYTHON_ENV = "MMLAB_PYTHON_ENV"
VENVS_PATH = "MMLAB_VENVS_PATH"
PYTHON = "MMLAB_PYTHON"
CUDA = "MMLAB_CUDA"
TORCH_INDEX = "MMLAB_TORCH_INDEX"
MMCV_INDEX = "MMLAB_MMCV_INDEX"
MMCV_PACKAGE = "MMLAB_MMCV_PACKAGE"
PYPI_INDEX = "MMLAB_PYPI_INDEX"
TORCH_HOME = "MMLAB_TORCH_HOME"
CACHE_MODES = ("dissociate", "share")
# What MMLAB_MMCV_PACKAGE may say: the series' own distribution with its compiled ops (auto:
# mmcv-full for OpenMMLab 1.x, mmcv for 2.x, a prebuilt wheel), or mmcv-lite (2.x only: PyPI's
# pure-Python build, no compiled ops, no wheel page needed).
MMCV_PACKAGES = ("auto", "mmcv-lite")

# Not settings: the two lines `.env` carries about itself (see `sourced`), so that a shell
# that sourced it is recognised.
IDENTITY_FILE = "MMLAB_ENV_FILE"
IDENTITY_DIGEST = "MMLAB_ENV_DIGEST"
IDENTITY_HELP = {
    IDENTITY_FILE: "written by the tool (do not edit): this file's own path and a fingerprint"
    " of each value above, so that a shell holding an older copy is recognised",
    IDENTITY_DIGEST: "written by the tool (do not edit): see MMLAB_ENV_FILE",
}

FLAG_PARAMS = {
    EXTENSION_REPO: "repo",
    EXTENSION_REF: "ref",
    EXTENSION_PATH: "extension_path",
    CHECKPOINTS_PATH: "checkpoints_path",
    DATASET_PATH: "dataset_path",
    PROJECTS: "projects",
    GIT_MIRROR: "mirror",
    REQUIRE_MOUNT: "require_mount",
    CHECKPOINTS: "checkpoint_models",
    CHECKPOINT_MIRROR: "checkpoint_mirror",
    GIT_CACHE: "git_cache",
    GIT_CACHE_MODE: "git_cache_mode",
    PYTHON_ENV: "python_env",
    VENVS_PATH: "venvs_path",
    PYTHON: "python",
    CUDA: "cuda",
    TORCH_INDEX: "torch_index",
    MMCV_INDEX: "mmcv_index",
    MMCV_PACKAGE: "mmcv_package",
    PYPI_INDEX: "pypi_index",
    TORCH_HOME: "torch_home",
}

VARIABLES: tuple[Variable, ...] = (
    Variable(
        EXTENSION_REPO,
        "https://github.com/windzu/mmlab_extension.git",
        Kind.URL,
        "superproject to clone",
    ),
    Variable(
        EXTENSION_REF,
        "",
        Kind.REF,
        "branch, tag or commit to check out (empty: the remote's default branch)",
    ),
    Variable(EXTENSION_PATH, "./mmlab_extension", Kind.PATH, "where the superproject lives"),
    Variable(CHECKPOINTS_PATH, "./mmlab_checkpoints", Kind.PATH, "storage root for checkpoints"),
    Variable(DATASET_PATH, "./mmlab_dataset", Kind.PATH, "storage root for datasets"),
    Variable(
        PROJECTS,
        "mmdetection mmdetection3d",
        Kind.PROJECTS,
        "sub-projects that get checkpoints/data links (space-separated)",
    ),
    Variable(
        GIT_MIRROR,
        "",
        Kind.MIRROR,
        "URL prefix that replaces https://github.com/ for every clone (empty: none)",
    ),
    Variable(
        REQUIRE_MOUNT,
        "0",
        Kind.SWITCH,
        "1: refuse storage roots that are not on a mounted disk (keeps data off the system disk)",
    ),
    Variable(
        CHECKPOINTS,
        "",
        Kind.MODELS,
        "models whose checkpoints fetch-checkpoints gets (space-separated project:name or name)",
    ),
    Variable(
        CHECKPOINT_MIRROR,
        "",
        Kind.HTTP_MIRROR,
        "URL prefix that replaces https://download.openmmlab.com/ for checkpoints; another"
        " host's files come from <mirror><host>/<path> (empty: none)",
    ),
    Variable(
        GIT_CACHE,
        "",
        Kind.PATH,
        "folder of bare repositories that clones fetch through and borrow objects from,"
        " shared by the workspaces that name it (empty: none; e.g. ~/.cache/mmlab-bootstrap/git)",
    ),
    Variable(
        GIT_CACHE_MODE,
        "dissociate",
        Kind.CACHE_MODE,
        "dissociate: copy the objects from the cache (saves network); share: borrow them"
        " through alternates (saves disk too; the cache must then stay)",
    ),
    Variable(
        PYTHON_ENV,
        "0",
        Kind.SWITCH,
        "1: bootstrap also builds the training environments (inv python-env)",
    ),
    Variable(
        VENVS_PATH,
        "./.venvs",
        Kind.PATH,
        "where inv python-env makes one virtualenv per project that trains",
    ),
    Variable(
        PYTHON,
        "python3",
        Kind.PROGRAM,
        "the base interpreter of the training environments (a name on PATH or a path)",
    ),
    Variable(
        CUDA,
        "",
        Kind.CUDA,
        "cpu or a CUDA tag such as cu113 for torch and mmcv (empty: what the NVIDIA driver runs)",
    ),
    Variable(
        TORCH_INDEX,
        "https://download.pytorch.org/whl/",
        Kind.HTTP_MIRROR,
        "base of the PyTorch wheel indexes (the CUDA tag is appended: .../whl/cu113)",
    ),
    Variable(
        MMCV_INDEX,
        "https://download.openmmlab.com/",
        Kind.HTTP_MIRROR,
        "base of mmcv's prebuilt wheel pages (<base>mmcv/dist/<tag>/torch<X.Y>/index.html)",
    ),
    Variable(
        MMCV_PACKAGE,
        "auto",
        Kind.MMCV_PACKAGE,
        "auto: mmcv with its compiled ops from a prebuilt wheel (mmcv-full for OpenMMLab 1.x);"
        " mmcv-lite: PyPI's build without compiled ops (2.x only; no wheel page needed)",
    ),
    Variable(
        PYPI_INDEX,
        "",
        Kind.HTTP_MIRROR,
        "the package index for everything else (empty: PIP_INDEX_URL if set, else PyPI)",
    ),
    Variable(
        TORCH_HOME,
        "",
        Kind.PATH,
        "torch's cache of the backbone weights configs load; .env exports it as TORCH_HOME too"
        " (empty: <MMLAB_CHECKPOINTS_PATH>/torch, shared by every machine sharing the storage)",
    ),
)

BY_NAME = {variable.name: variable for variable in VARIABLES}


def flag_help(*names: str) -> dict[str, str]:
    """Help texts for the override flags of the named variables, keyed by parameter."""
    return {BY_NAME[name].param: f"override {name}: {BY_NAME[name].help}" for name in names}

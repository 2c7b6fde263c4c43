"""The invoke tasks: argument parsing and help text over the steps in this package.

Each task's variable flags (`--extension-path`, …) come from the variables table; the body
gets them as `flags`, keyed by variable name. Heavier modules are imported inside the task
bodies, so that `inv --list` stays as quick as invoke itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task, task

from mmlab_bootstrap.cli.support import CONFIG_KEY, session_for, variable_flags
from mmlab_bootstrap.output import quiet_broken_pipe
from mmlab_bootstrap.settings import (
    CHECKPOINT_MIRROR,
    CHECKPOINTS,
    CHECKPOINTS_PATH,
    DATASET_PATH,
    DEFAULT_JOBS,
    DOWNLOAD_JOBS,
    EXTENSION_PATH,
    EXTENSION_REF,
    EXTENSION_REPO,
    GIT_CACHE,
    GIT_CACHE_MODE,
    GIT_MIRROR,
    MMCV_INDEX,
    MMCV_PACKAGE,
    PROJECTS,
    PYPI_INDEX,
    PYTHON,
    PYTHON_ENV,
    REQUIRE_MOUNT,
    TORCH_HOME,
    TORCH_INDEX,
    VENVS_PATH,
    flag_help,
)
from mmlab_bootstrap.settings import CUDA as CUDA_TAG

if TYPE_CHECKING:  # (the settings' values module costs start-up time)
    from mmlab_bootstrap.settings import Settings

Flags = dict[str, str | None]


# The training environment's own variables (inv python-env's flags, with the two it shares).
PYENV_ONLY = (VENVS_PATH, PYTHON, CUDA_TAG, TORCH_INDEX, MMCV_INDEX, MMCV_PACKAGE, PYPI_INDEX)
ALL_VARIABLES = (
    EXTENSION_REPO,
    EXTENSION_REF,
    EXTENSION_PATH,
    CHECKPOINTS_PATH,
    DATASET_PATH,
    PROJECTS,
    GIT_MIRROR,
    REQUIRE_MOUNT,
    CHECKPOINTS,
    CHECKPOINT_MIRROR,
    GIT_CACHE,
    GIT_CACHE_MODE,
    PYTHON_ENV,
    *PYENV_ONLY,
    TORCH_HOME,
)
ENV_HELP = {
    "rc": "also add a marked block that loads this .env to a shell rc file (e.g. ~/.bashrc)",
    "remove": "with --rc: take this workspace's block out of the rc file instead",
    "envrc": "also write .envrc (a dotenv line): direnv then loads this .env in the workspace"
    " and unloads it outside",
}


@task(auto_shortflags=False, help={**flag_help(*ALL_VARIABLES), **ENV_HELP})
@variable_flags(*ALL_VARIABLES)
def env(
    c: Context, flags: Flags, rc: str | None = None, remove: bool = False, envrc: bool = False
) -> None:
    """Write .env with every variable resolved, keeping your own lines."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.workspace import env_rc_step

    with session_for(c, "env") as session:
        env_rc_step(session, flags, rc, remove=remove, envrc=envrc)


CLONE_VARIABLES = (
    EXTENSION_REPO,
    EXTENSION_REF,
    EXTENSION_PATH,
    GIT_MIRROR,
    GIT_CACHE,
    GIT_CACHE_MODE,
)
CLONE_HELP = {
    "jobs": f"submodules fetched in parallel (default {DEFAULT_JOBS})",
    "update": "fetch the latest of the ref and update submodules to what it records",
}


@task(auto_shortflags=False, help={**flag_help(*CLONE_VARIABLES), **CLONE_HELP})
@variable_flags(*CLONE_VARIABLES)
def clone(c: Context, flags: Flags, jobs: str = str(DEFAULT_JOBS), update: bool = False) -> None:
    """Clone the superproject and submodules (shallow), or complete a clone."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.clone import clone_step
    from mmlab_bootstrap.run import jobs_flag

    with session_for(c, "clone") as session:
        clone_step(session, flags, jobs=jobs_flag(jobs, "clone"), update=update)


LAYOUT_VARIABLES = (CHECKPOINTS_PATH, DATASET_PATH, PROJECTS)


@task(auto_shortflags=False, help=flag_help(*LAYOUT_VARIABLES))
@variable_flags(*LAYOUT_VARIABLES)
def layout(c: Context, flags: Flags) -> None:
    """Create the checkpoints and data folders in the storage roots."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.workspace import layout_step

    with session_for(c, "layout") as session:
        layout_step(session, flags)


LINK_HELP = {
    "backup": "rename a folder holding your files to <name>.bak-<timestamp>, then link",
    "adopt": "move the files at a location into its target (refusing on name clashes), then link",
    "relative": "make the links relative instead of absolute",
    "keep_going": "link the locations that can be linked even when others are refused",
    "move_data": "when a storage root moved: move your files from the old target into the new"
    " one (verified, across filesystems too), then relink",
    "leave_data": "when a storage root moved: relink, leaving your files in the old target",
}


def _link_task(variable: str, leaf: str, doc: str) -> Task[Any]:
    """`link-checkpoints` or `link-data`: the same flags and body, for one variable."""

    def body(
        c: Context,
        flags: Flags,
        backup: bool = False,
        adopt: bool = False,
        relative: bool = False,
        keep_going: bool = False,
        move_data: bool = False,
        leave_data: bool = False,
    ) -> None:
        # startup: `inv --list` imports no step; each task imports its own
        from mmlab_bootstrap.links import link_step

        with session_for(c, f"link-{leaf}") as session:
            link_step(
                session,
                flags,
                variable,
                backup=backup,
                adopt=adopt,
                relative=relative,
                keep_going=keep_going,
                move_data=move_data,
                leave_data=leave_data,
            )

    body.__name__ = body.__qualname__ = f"link_{leaf}"
    body.__doc__ = doc
    variables = (EXTENSION_PATH, variable, PROJECTS)
    made: Task[Any] = task(auto_shortflags=False, help={**flag_help(*variables), **LINK_HELP})(
        variable_flags(*variables)(body)
    )
    return made


link_checkpoints = _link_task(
    CHECKPOINTS_PATH,
    "checkpoints",
    "Link <project>/checkpoints to checkpoint storage, losing nothing.",
)
link_data = _link_task(
    DATASET_PATH, "data", "Link <project>/data to dataset storage, losing nothing."
)


UNLINK_VARIABLES = (EXTENSION_PATH, CHECKPOINTS_PATH, DATASET_PATH, PROJECTS)


@task(
    auto_shortflags=False,
    help={
        **flag_help(*UNLINK_VARIABLES),
        "checkpoints": "only the checkpoints links",
        "data": "only the data links",
    },
)
@variable_flags(*UNLINK_VARIABLES)
def unlink(c: Context, flags: Flags, checkpoints: bool = False, data: bool = False) -> None:
    """Remove the managed links; put back what linking replaced."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.links import unlink_step

    chosen = (CHECKPOINTS_PATH,) * checkpoints + (DATASET_PATH,) * data
    with session_for(c, "unlink") as session:
        unlink_step(session, flags, chosen or (CHECKPOINTS_PATH, DATASET_PATH))


@task(auto_shortflags=False, help={**flag_help(*ALL_VARIABLES), **CLONE_HELP, **LINK_HELP})
@variable_flags(*ALL_VARIABLES)
def bootstrap(
    c: Context,
    flags: Flags,
    jobs: str = str(DEFAULT_JOBS),
    update: bool = False,
    backup: bool = False,
    adopt: bool = False,
    relative: bool = False,
    keep_going: bool = False,
    move_data: bool = False,
    leave_data: bool = False,
) -> None:
    """Set up everything: env, clone, layout, link-checkpoints, link-data (fetch-checkpoints)."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.run import jobs_flag
    from mmlab_bootstrap.workspace import bootstrap_steps

    with session_for(c, "bootstrap") as session:
        bootstrap_steps(
            session,
            flags,
            jobs=jobs_flag(jobs, "bootstrap"),
            update=update,
            backup=backup,
            adopt=adopt,
            relative=relative,
            keep_going=keep_going,
            move_data=move_data,
            leave_data=leave_data,
        )


FETCH_VARIABLES = (EXTENSION_PATH, CHECKPOINTS_PATH, PROJECTS, CHECKPOINT_MIRROR, TORCH_HOME)
FETCH_HELP = {
    "model": "a model to download: its metafile Name or config path, project:name when several"
    " projects have it (repeat the flag for more; default: MMLAB_CHECKPOINTS)",
    "config": "a config (relative to MMLAB_EXTENSION_PATH, project:path or absolute) whose"
    " every weight goes where training reads it: backbones into TORCH_HOME's cache, load_from"
    " as a link to the checkpoint in storage (repeat for more; MMLAB_CHECKPOINTS' configs too)",
    "search": "list the models whose name, project, config or collection holds TEXT"
    " ('' lists all) and whether each is downloaded; no network",
    "verify": "hash every file again, not trusting the record of earlier verifications",
    "accept_mismatch": "keep a file whose sha256 does not match the prefix its name promises",
    "jobs": f"files downloaded in parallel (default {DOWNLOAD_JOBS})",
}


@task(
    auto_shortflags=False,
    iterable=["model", "config"],
    help={**flag_help(*FETCH_VARIABLES), **FETCH_HELP},
)
@variable_flags(*FETCH_VARIABLES)
def fetch_checkpoints(
    c: Context,
    flags: Flags,
    model: list[str] | None = None,
    config: list[str] | None = None,
    search: str | None = None,
    verify: bool = False,
    accept_mismatch: bool = False,
    jobs: str = str(DOWNLOAD_JOBS),
) -> None:
    """Download model-zoo checkpoints into storage: resumable, verified, recorded."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.checkpoints import fetch_checkpoints_step, list_models
    from mmlab_bootstrap.run import jobs_flag

    with session_for(c, "fetch-checkpoints", changes=search is None) as session:
        if search is not None:
            list_models(session, flags, search)
            return
        fetch_checkpoints_step(
            session,
            flags,
            model or [],
            configs=config or [],
            verify=verify,
            accept_mismatch=accept_mismatch,
            jobs=jobs_flag(jobs, "fetch-checkpoints"),
            interpreter=_training_python,
        )


def _training_python(settings: Settings) -> str | None:
    """The interpreter `inv python-env` made, whose config loader reads the configs."""
    # startup: the environment builder (packaging) only when a config is read
    from mmlab_bootstrap.pythonenv import workspace_python

    return workspace_python(settings)


MIRROR_VARIABLES = (EXTENSION_REPO, EXTENSION_REF, GIT_MIRROR)
MIRROR_HELP = {
    "dest": "the folder of the mirror: DEST/<owner>/<name>.git for each github repository",
    "all_refs": "follow the submodules of every branch tip, not only of the ref",
    "jobs": f"repositories fetched in parallel (default {DEFAULT_JOBS})",
}


@task(
    auto_shortflags=False,
    positional=["dest"],
    help={**flag_help(*MIRROR_VARIABLES), **MIRROR_HELP},
)
@variable_flags(*MIRROR_VARIABLES)
def mirror(
    c: Context,
    flags: Flags,
    dest: str | None = None,
    all_refs: bool = False,
    jobs: str = str(DEFAULT_JOBS),
) -> None:
    """Create or update a team mirror (bare repositories) of the superproject and submodules."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.mirror import mirror_step
    from mmlab_bootstrap.run import jobs_flag

    with session_for(c, "mirror", changes=False) as session:
        mirror_step(session, flags, dest or "", all_refs=all_refs, jobs=jobs_flag(jobs, "mirror"))


PYENV_VARIABLES = (EXTENSION_PATH, PROJECTS, *PYENV_ONLY)
PYENV_HELP = {
    "locked": "install exactly the lock written in the workspace (fails when there is none)",
    "update": "resolve the lock again (newest versions and pair within the ranges)",
}


@task(auto_shortflags=False, help={**flag_help(*PYENV_VARIABLES), **PYENV_HELP})
@variable_flags(*PYENV_VARIABLES)
def python_env(c: Context, flags: Flags, locked: bool = False, update: bool = False) -> None:
    """Build the training environment of each project: torch, mmcv, mmdet, ... (uv, locked)."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.pythonenv import python_env_step

    with session_for(c, "python-env") as session:
        python_env_step(session, flags, locked=locked, update=update)


QUIET_HELP = "print only the problems, one line each; else one line (the exit code tells too)"


@task(
    help={
        "json": "print one JSON document instead (its keys are listed in the README)",
        "quiet": QUIET_HELP,
    }
)
def status(c: Context, json: bool = False, quiet: bool = False) -> None:
    """Show the workspace at a glance; exit 1 when something needs attention."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.workspace import status_step

    with session_for(c, "status", changes=False, looks_only=True) as session:
        healthy = status_step(session, as_json=json, quiet=quiet)
    if not healthy:
        raise Exit(code=1)


@task(
    auto_shortflags=False,
    help={
        "json": "print one JSON document instead (its keys are listed in the README)",
        "python": "the interpreter that trains (default: the python3 on PATH)",
        "quiet": QUIET_HELP,
    },
)
def doctor(c: Context, json: bool = False, python: str | None = None, quiet: bool = False) -> None:
    """Is the workspace ready to train? status, datasets, Python environment; exit 1 if not."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.doctor import doctor_step

    with session_for(c, "doctor", changes=False, looks_only=True) as session:
        ready = doctor_step(session, as_json=json, python=python, quiet=quiet)
    if not ready:
        raise Exit(code=1)


@task(
    auto_shortflags=False,
    help={
        "python": "the interpreter that trains (default: the one inv python-env made)",
        "model": "the model whose checkpoint the demo loads; project:name picks that"
        " sub-project's demo (default: the first model of MMLAB_CHECKPOINTS the demo's project"
        " publishes, else hv_pointpillars_secfpn_6x8_160e_kitti-3d-car for mmdetection3d,"
        " faster_rcnn_r50_fpn_1x_coco for mmdetection)",
    },
)
def verify(c: Context, python: str | None = None, model: str | None = None) -> None:
    """Prove the workspace runs: imports, compiled ops, checkpoint, the sub-project's demo."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.pythonenv import verify_step

    with session_for(c, "verify") as session:
        passed = verify_step(session, python=python, model=model)
    if not passed:
        raise Exit(code=1)


@task(name="help", default=True)
def help_(c: Context) -> None:
    """List the tasks (what the program alone shows); --help TASK shows a task's flags."""
    # startup: `inv --list` imports no step; each task imports its own
    from mmlab_bootstrap.output import Reporter

    program = c.config[CONFIG_KEY].get("program") or "inv"
    report = Reporter(program=program)
    width = max(len(made.name) for made in TASKS)
    report.info(f"{program} TASK [--flags]; the tasks, in the order a setup runs them:")
    for made in TASKS:
        first = (made.__doc__ or "").strip().splitlines()[0]
        report.info(f"  {made.name.replace('_', '-'):<{width}}  {first}")
    report.info(f"{program} --help TASK: its flags; {program} --dry TASK: every change, none made")


# Every task's --help says what --dry does for it (`inv --list` shows the first line only).
DRY = "With --dry before the task name it shows every change and makes none."
READ_ONLY = "It changes nothing (--dry makes no difference)."
TASKS: tuple[Task[Any], ...] = (
    bootstrap,
    env,
    clone,
    layout,
    link_checkpoints,
    link_data,
    fetch_checkpoints,
    unlink,
    mirror,
    status,
    doctor,
    verify,
)
for _made in TASKS:
    _note = READ_ONLY if _made in (status, doctor) else DRY
    if _note not in (_made.__doc__ or ""):
        _made.__doc__ = f"{_made.__doc__}\n\n{_note}"


def namespace(root: Path | None, program: str = "inv") -> Collection:
    """The task collection, for a workspace at `root` (None: the current folder at run time).

    `program` is the command the user runs (`inv`, `mmlab-bootstrap`), named in hints.
    """
    quiet_broken_pipe()
    collection = Collection(
        env,
        clone,
        layout,
        link_checkpoints,
        link_data,
        unlink,
        fetch_checkpoints,
        bootstrap,
        mirror,
        status,
        doctor,
        help_,
        python_env,
        verify,
    )
    collection.configure(
        {CONFIG_KEY: {"root": str(root) if root is not None else None, "program": program}}
    )
    return collection

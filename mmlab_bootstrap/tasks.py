"""The invoke tasks: argument parsing and help text over the steps in this package."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from .errors import BootstrapError
from .report import Reporter
from .steps import DEFAULT_JOBS, clone_step, env_step, flag_values, layout_step
from .variables import (
    CHECKPOINTS_PATH,
    DATASET_PATH,
    EXTENSION_PATH,
    EXTENSION_REF,
    EXTENSION_REPO,
    GIT_MIRROR,
    PROJECTS,
    flag_help,
)
from .workspace import Session

CONFIG_KEY = "mmlab_bootstrap"


@contextlib.contextmanager
def session_for(c: Context) -> Iterator[Session]:
    """Open a session for a task; turn domain errors into one `Exit`, with no traceback."""
    root = c.config[CONFIG_KEY]["root"] or os.getcwd()
    report = Reporter()
    try:
        yield Session(Path(root), dry=bool(c.config.run.dry), report=report)
    except BootstrapError as error:
        report.error(error.message, error.hint)
        raise Exit(code=1) from None
    except KeyboardInterrupt:
        report.error("interrupted", "run the same command again: it finishes what was started")
        raise Exit(code=130) from None
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        report.error(
            f"{error.strerror or error}{where}",
            "fix the cause, then run the same command again: it finishes what was started",
        )
        raise Exit(code=1) from None


ALL_VARIABLES = (
    EXTENSION_REPO,
    EXTENSION_REF,
    EXTENSION_PATH,
    CHECKPOINTS_PATH,
    DATASET_PATH,
    PROJECTS,
    GIT_MIRROR,
)


@task(auto_shortflags=False, help=flag_help(*ALL_VARIABLES))
def env(
    c: Context,
    repo: str | None = None,
    ref: str | None = None,
    extension_path: str | None = None,
    checkpoints_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
    mirror: str | None = None,
) -> None:
    """Write .env with every variable resolved (keeps your own lines)."""
    with session_for(c) as session:
        env_step(
            session,
            flag_values(
                repo=repo,
                ref=ref,
                extension_path=extension_path,
                checkpoints_path=checkpoints_path,
                dataset_path=dataset_path,
                projects=projects,
                mirror=mirror,
            ),
        )


CLONE_HELP = {
    **flag_help(EXTENSION_REPO, EXTENSION_REF, EXTENSION_PATH, GIT_MIRROR),
    "jobs": f"submodules fetched in parallel (default {DEFAULT_JOBS})",
    "update": "fetch the latest of the ref and update submodules to what it records",
}


@task(auto_shortflags=False, help=CLONE_HELP)
def clone(
    c: Context,
    repo: str | None = None,
    ref: str | None = None,
    extension_path: str | None = None,
    mirror: str | None = None,
    jobs: int = DEFAULT_JOBS,
    update: bool = False,
) -> None:
    """Clone the superproject and its submodules shallowly, or complete a clone."""
    with session_for(c) as session:
        flags = flag_values(repo=repo, ref=ref, extension_path=extension_path, mirror=mirror)
        clone_step(session, flags, jobs=jobs, update=update)


@task(auto_shortflags=False, help=flag_help(CHECKPOINTS_PATH, DATASET_PATH, PROJECTS))
def layout(
    c: Context,
    checkpoints_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
) -> None:
    """Create the checkpoints and data folders in the storage roots."""
    with session_for(c) as session:
        layout_step(
            session,
            flag_values(
                checkpoints_path=checkpoints_path, dataset_path=dataset_path, projects=projects
            ),
        )


@task(auto_shortflags=False, help={**flag_help(*ALL_VARIABLES), **CLONE_HELP})
def bootstrap(
    c: Context,
    repo: str | None = None,
    ref: str | None = None,
    extension_path: str | None = None,
    checkpoints_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
    mirror: str | None = None,
    jobs: int = DEFAULT_JOBS,
    update: bool = False,
) -> None:
    """Set up the whole workspace: env, clone, then layout."""
    flags = flag_values(
        repo=repo,
        ref=ref,
        extension_path=extension_path,
        checkpoints_path=checkpoints_path,
        dataset_path=dataset_path,
        projects=projects,
        mirror=mirror,
    )
    with session_for(c) as session:
        env_step(session, flags)
        clone_step(session, flags, jobs=jobs, update=update)
        layout_step(session, flags)


def namespace(root: Path | None) -> Collection:
    """The task collection, for a workspace at `root` (None: the current folder at run time)."""
    collection = Collection(env, clone, layout, bootstrap)
    collection.configure({CONFIG_KEY: {"root": str(root) if root is not None else None}})
    return collection

"""The invoke tasks: argument parsing and help text over the steps in this package."""

from __future__ import annotations

import contextlib
import json as jsonlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from .errors import BootstrapError
from .rcfile import check_rc, update_rc
from .report import Reporter, quiet_broken_pipe, silence, write_line
from .status import print_status, workspace_status
from .steps import (
    DEFAULT_JOBS,
    bootstrap_steps,
    clone_step,
    env_step,
    flag_values,
    jobs_flag,
    layout_step,
    link_step,
    task_name,
    unlink_step,
)
from .variables import (
    CHECKPOINTS_PATH,
    DATASET_PATH,
    EXTENSION_PATH,
    EXTENSION_REF,
    EXTENSION_REPO,
    GIT_MIRROR,
    PROJECTS,
    REQUIRE_MOUNT,
    flag_help,
)
from .workspace import Session

CONFIG_KEY = "mmlab_bootstrap"


@contextlib.contextmanager
def session_for(c: Context, task: str, *, changes: bool = True) -> Iterator[Session]:
    """Open a session for a task; turn domain errors into one `Exit`, with no traceback.

    A task that changes things takes the workspace lock once its input is checked
    (not under --dry), and holds it to the end.
    """
    root = Path(c.config[CONFIG_KEY]["root"] or os.getcwd())
    report = Reporter(program=c.config[CONFIG_KEY].get("program") or "inv")
    dry = bool(c.config.run.dry)
    try:
        with contextlib.ExitStack() as held:
            lock_task = task if changes and not dry else None
            yield Session(root, dry=dry, report=report, lock_task=lock_task, held=held)
    except BootstrapError as error:
        _traceback_when_debugging()
        report.error(error.message, error.hint)
        raise Exit(code=1) from None
    except BrokenPipeError:  # only from writing output the reader no longer wants
        silence(sys.stdout)
        raise Exit(code=1) from None
    except KeyboardInterrupt:
        _traceback_when_debugging()
        report.error("interrupted", "run the same command again: it finishes what was started")
        raise Exit(code=130) from None
    except OSError as error:
        _traceback_when_debugging()
        where = f" ({error.filename})" if error.filename else ""
        report.error(
            f"{error.strerror or error}{where}",
            "fix the cause, then run the same command again: it finishes what was started",
        )
        raise Exit(code=1) from None


def _traceback_when_debugging() -> None:
    """Under invoke's `--debug` (or INVOKE_DEBUG=1), the full traceback for a bug report."""
    if logging.getLogger("invoke").isEnabledFor(logging.DEBUG):
        with contextlib.suppress(OSError):
            traceback.print_exc(file=sys.stderr)


ALL_VARIABLES = (
    EXTENSION_REPO,
    EXTENSION_REF,
    EXTENSION_PATH,
    CHECKPOINTS_PATH,
    DATASET_PATH,
    PROJECTS,
    GIT_MIRROR,
    REQUIRE_MOUNT,
)


@task(
    auto_shortflags=False,
    help={
        **flag_help(*ALL_VARIABLES),
        "rc": "also add a marked block that loads this .env to a shell rc file (e.g. ~/.bashrc)",
        "remove": "with --rc: take this workspace's block out of the rc file instead",
    },
)
def env(
    c: Context,
    repo: str | None = None,
    ref: str | None = None,
    extension_path: str | None = None,
    checkpoints_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
    mirror: str | None = None,
    require_mount: str | None = None,
    rc: str | None = None,
    remove: bool = False,
) -> None:
    """Write .env with every variable resolved, keeping your own lines."""
    with session_for(c, "env") as session:
        if remove and not rc:
            raise BootstrapError("--remove goes with --rc", "run: inv env --rc ~/.bashrc --remove")
        rc_path = Path(os.path.expanduser(rc)) if rc else None
        if rc_path is not None:
            check_rc(rc_path, session.root, remove=remove)  # before .env is written
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
                require_mount=require_mount,
            ),
        )
        if rc_path is not None:
            update_rc(rc_path, session.root, session.env_path, session.changes, remove=remove)


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
    jobs: str = str(DEFAULT_JOBS),
    update: bool = False,
) -> None:
    """Clone the superproject and submodules (shallow), or complete a clone."""
    with session_for(c, "clone") as session:
        flags = flag_values(repo=repo, ref=ref, extension_path=extension_path, mirror=mirror)
        clone_step(session, flags, jobs=jobs_flag(jobs, "clone"), update=update)


@task(auto_shortflags=False, help=flag_help(CHECKPOINTS_PATH, DATASET_PATH, PROJECTS))
def layout(
    c: Context,
    checkpoints_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
) -> None:
    """Create the checkpoints and data folders in the storage roots."""
    with session_for(c, "layout") as session:
        layout_step(
            session,
            flag_values(
                checkpoints_path=checkpoints_path, dataset_path=dataset_path, projects=projects
            ),
        )


LINK_HELP = {
    "backup": "rename a folder holding your files to <name>.bak-<timestamp>, then link",
    "adopt": "move the files at a location into its target (refusing on name clashes), then link",
    "relative": "make the links relative instead of absolute",
    "keep_going": "link the locations that can be linked even when others are refused",
}


@task(
    auto_shortflags=False,
    help={**flag_help(EXTENSION_PATH, CHECKPOINTS_PATH, PROJECTS), **LINK_HELP},
)
def link_checkpoints(
    c: Context,
    extension_path: str | None = None,
    checkpoints_path: str | None = None,
    projects: str | None = None,
    backup: bool = False,
    adopt: bool = False,
    relative: bool = False,
    keep_going: bool = False,
) -> None:
    """Link <project>/checkpoints to checkpoint storage, losing nothing."""
    flags = flag_values(
        extension_path=extension_path, checkpoints_path=checkpoints_path, projects=projects
    )
    _link(c, CHECKPOINTS_PATH, flags, backup, adopt, relative, keep_going)


@task(
    auto_shortflags=False,
    help={**flag_help(EXTENSION_PATH, DATASET_PATH, PROJECTS), **LINK_HELP},
)
def link_data(
    c: Context,
    extension_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
    backup: bool = False,
    adopt: bool = False,
    relative: bool = False,
    keep_going: bool = False,
) -> None:
    """Link <project>/data to dataset storage, losing nothing."""
    flags = flag_values(extension_path=extension_path, dataset_path=dataset_path, projects=projects)
    _link(c, DATASET_PATH, flags, backup, adopt, relative, keep_going)


def _link(
    c: Context,
    variable: str,
    flags: dict[str, str | None],
    backup: bool,
    adopt: bool,
    relative: bool,
    keep_going: bool,
) -> None:
    with session_for(c, task_name(variable)) as session:
        link_step(
            session,
            flags,
            variable,
            backup=backup,
            adopt=adopt,
            relative=relative,
            keep_going=keep_going,
        )


@task(
    auto_shortflags=False,
    help={
        **flag_help(EXTENSION_PATH, CHECKPOINTS_PATH, DATASET_PATH, PROJECTS),
        "checkpoints": "only the checkpoints links",
        "data": "only the data links",
    },
)
def unlink(
    c: Context,
    extension_path: str | None = None,
    checkpoints_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
    checkpoints: bool = False,
    data: bool = False,
) -> None:
    """Remove the managed links; put back what linking replaced."""
    chosen = (CHECKPOINTS_PATH,) * checkpoints + (DATASET_PATH,) * data
    with session_for(c, "unlink") as session:
        flags = flag_values(
            extension_path=extension_path,
            checkpoints_path=checkpoints_path,
            dataset_path=dataset_path,
            projects=projects,
        )
        unlink_step(session, flags, chosen or (CHECKPOINTS_PATH, DATASET_PATH))


@task(
    auto_shortflags=False,
    help={**flag_help(*ALL_VARIABLES), **CLONE_HELP, **LINK_HELP},
)
def bootstrap(
    c: Context,
    repo: str | None = None,
    ref: str | None = None,
    extension_path: str | None = None,
    checkpoints_path: str | None = None,
    dataset_path: str | None = None,
    projects: str | None = None,
    mirror: str | None = None,
    require_mount: str | None = None,
    jobs: str = str(DEFAULT_JOBS),
    update: bool = False,
    backup: bool = False,
    adopt: bool = False,
    relative: bool = False,
    keep_going: bool = False,
) -> None:
    """Set up everything: env, clone, layout, link-checkpoints, link-data."""
    flags = flag_values(
        repo=repo,
        ref=ref,
        extension_path=extension_path,
        checkpoints_path=checkpoints_path,
        dataset_path=dataset_path,
        projects=projects,
        mirror=mirror,
        require_mount=require_mount,
    )
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
        )


@task(help={"json": "print one JSON document instead (its keys are listed in the README)"})
def status(c: Context, json: bool = False) -> None:
    """Show the workspace at a glance; exit 1 when something needs attention."""
    with session_for(c, "status", changes=False) as session:
        envfile = session.read_env()
        settings = session.settings({}, envfile)
        found = workspace_status(session, settings, envfile.values())
        if json:
            write_line(sys.stdout, jsonlib.dumps(found, indent=2))
        else:
            print_status(session, found)
    if not found["healthy"]:
        raise Exit(code=1)


def namespace(root: Path | None, program: str = "inv") -> Collection:
    """The task collection, for a workspace at `root` (None: the current folder at run time).

    `program` is the command the user runs (`inv`, `mmlab-bootstrap`), named in hints.
    """
    quiet_broken_pipe()
    collection = Collection(
        env, clone, layout, link_checkpoints, link_data, unlink, bootstrap, status
    )
    collection.configure(
        {CONFIG_KEY: {"root": str(root) if root is not None else None, "program": program}}
    )
    return collection

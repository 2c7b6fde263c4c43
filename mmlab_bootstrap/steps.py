"""The steps of a bootstrap that are not about links, each run the same way alone or chained:
settings, then a plan, then applying it through the session's `changes`; each returns a
`StepResult`. The link steps are in `link_steps`, the chain in `bootstrap`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .clone import ClonePlan, plan_clone
from .envfile import render
from .errors import BootstrapError, shown
from .git import Git
from .layout import Folder, plan_layout, route_note, storage_warnings
from .locations import LinkError, check_projects, locations, recorded_locations
from .settings import Settings
from .sourced import identity
from .status import override_warnings
from .variables import BY_NAME, IDENTITY_HELP, VARIABLES
from .workspace import Session

ENV_HEADER = (
    "mmlab-bootstrap workspace settings. `inv env` rewrites the MMLAB_ lines"
    " and keeps everything else. Load: set -a; . ./.env; set +a"
)
DEFAULT_JOBS = 4


class StepResult(NamedTuple):
    """What a step worked out and whether it changed anything (under --dry: would have)."""

    settings: Settings
    changed: bool
    plans: Sequence[object] = ()


class Counted:
    """Whether the session's changes grew between its start and `result`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.before = session.changes.made

    def result(self, settings: Settings, plans: Sequence[object] = ()) -> StepResult:
        return StepResult(settings, self.session.changes.made != self.before, plans)


def env_step(
    session: Session, flags: Mapping[str, str | None], *, load_line: bool = True
) -> StepResult:
    """Write `.env` with every variable resolved; print the line that loads it."""
    counted = Counted(session)
    settings = session.settings(flags)
    envfile = session.read_env()  # read under the lock
    for warning in override_warnings(settings, session.overrides(envfile), envfile.values()):
        session.report.warn(warning)
    wanted = settings.as_env()
    from .configvars import exported

    extra, extra_help = exported(settings)
    owned = {**wanted, **identity(session.env_path, wanted), **extra}
    descriptions = {**{v.name: v.help for v in VARIABLES}, **IDENTITY_HELP, **extra_help}
    text = render(envfile, owned, descriptions, ENV_HEADER)
    if text == envfile.text:
        session.report.unchanged(f"up to date: {session.env_path}")
    else:
        old = envfile.values()
        lines = [
            f"set {name}={value!r} (from {settings.values[name].source.label})"
            for name, value in wanted.items()
            if old.get(name) != value
        ]
        if not lines and any(old.get(name) != value for name, value in owned.items()):
            lines = [f"record which .env this is ({', '.join(IDENTITY_HELP)})"]
        session.changes.write_file(session.env_path, text, would=lines)
    for line in unset_config_variables(settings):
        session.report.warn(line)
    if load_line:
        session.report.info(f"load it in a shell: {session.load_line()}")
    return counted.result(settings)


def unset_config_variables(settings: Settings) -> list[str]:
    """The variables the configs of MMLAB_CHECKPOINTS read that `.env` does not set, named."""
    from .weights import configs_status

    try:
        configs, _ = configs_status(settings)
    except BootstrapError:
        return []
    lines: list[str] = []
    for config in configs:
        unknown = config.get("unknown")
        if isinstance(unknown, list) and unknown:
            lines.append(
                f"{config['config']} reads {', '.join(str(n) for n in unknown)}, which .env"
                f" does not set: add your own line for it to {settings.root / '.env'} (it is kept)"
            )
    return lines


def env_rc_step(
    session: Session,
    flags: Mapping[str, str | None],
    rc: str | None,
    *,
    remove: bool,
    envrc: bool = False,
) -> StepResult:
    """`env`, and with `rc` the marked block in a shell rc file that loads this `.env`; with
    `envrc`, an `.envrc` for direnv that loads it."""
    if remove and not rc:
        raise BootstrapError("--remove goes with --rc", "run: inv env --rc ~/.bashrc --remove")
    from .rcfile import check_rc, update_envrc, update_rc

    rc_path = Path(os.path.expanduser(rc)) if rc else None
    if rc_path is not None:
        check_rc(rc_path, session.root, remove=remove)  # before .env is written
    counted = Counted(session)
    settings = env_step(session, flags).settings
    if rc_path is not None:
        update_rc(rc_path, session.root, session.env_path, session.changes, remove=remove)
    if envrc:
        update_envrc(session.root, session.changes)
    return counted.result(settings)


def layout_step(session: Session, flags: Mapping[str, str | None]) -> StepResult:
    """Create the storage folders each project needs; leave existing ones alone."""
    counted = Counted(session)
    settings = session.settings(flags)
    folders: list[Folder] = plan_layout(settings)
    for warning in storage_warnings(settings):
        session.report.warn(warning)
    for folder in folders:
        if folder.exists:
            session.report.unchanged(f"exists {folder.path}{route_note(folder.path)}")
        else:
            session.changes.make_folder(folder.path, note=route_note(folder.path))
    return counted.result(settings, folders)


def clone_step(
    session: Session, flags: Mapping[str, str | None], *, jobs: int, update: bool
) -> StepResult:
    """Clone the superproject and its submodules (shallow, parallel), or complete them."""
    check_flags(jobs=jobs)
    counted = Counted(session)
    settings = session.settings(flags)
    git = workspace_git(session, settings)
    plan: ClonePlan = plan_clone(settings, git, update=update)
    if plan.changes_anything:
        from .cloner import Cloner  # (and what fetching needs: only when there is work)

        Cloner(settings, git, session.report, session.changes, jobs).apply(plan)
    else:
        session.report.unchanged(f"up to date: {plan.path}")
    return counted.result(settings, [plan])


def unlink_step(
    session: Session, flags: Mapping[str, str | None], variables: tuple[str, ...]
) -> StepResult:
    """Remove managed links and put back what linking replaced; stored data stays.
    Every location is planned before any is changed."""
    from .unlinker import Unlinker, UnlinkPlan, plan_unlink

    counted = Counted(session)
    settings = session.settings(flags)
    check_projects(settings)
    git = workspace_git(session, settings)
    plans: list[UnlinkPlan] = [
        plan_unlink(location, git, session.journal)
        for variable in variables
        for location in locations(settings, variable)
    ]
    for location in recorded_locations(settings, variables, session.journal.links):
        project = location.project_dir
        if project.is_dir() and not project.is_symlink():  # (as check_projects asks)
            plans.append(plan_unlink(location, git, session.journal))
        else:
            session.report.warn(
                f"left alone: {location.link} (recorded in the journal): {project} is not a"
                " folder of the extension now"
            )
    unlinker = Unlinker(git, session.report, session.changes, session.journal)
    for plan in plans:
        unlinker.apply(plan)
    return counted.result(settings, plans)


def status_step(session: Session, *, as_json: bool, quiet: bool = False) -> bool:
    """Show the workspace (or print it as one JSON document, or only its problems); whether
    it is healthy."""
    from .report import write_line
    from .status import workspace_status
    from .status_view import print_answer, print_status

    envfile = session.read_env()
    settings = session.settings({}, envfile)
    found = workspace_status(session, settings, envfile.values())
    if as_json:
        write_line(sys.stdout, json.dumps(found, indent=2))
    elif quiet:
        print_answer(session.report, found, "workspace healthy")
    else:
        print_status(session, found)
    return bool(found["healthy"])


def jobs_flag(value: str | int, task: str) -> int:
    """`--jobs` as given on the command line (a string, so a typo is an error, not a traceback)."""
    try:
        return int(value)
    except ValueError:
        raise BootstrapError(
            f"--jobs must be a whole number, not {shown(str(value))}", f"run: inv {task} --jobs 4"
        ) from None


def workspace_git(session: Session, settings: Settings) -> Git:
    """git for a step that changes the workspace. A `*.lock` a killed git left under the
    superproject's `.git` (its own or a submodule's) may be removed when git reports it: only
    one run of the tool holds the workspace, so nothing of its own can be using it."""
    git = Git(session.report, mirror=settings.mirror, answers=session.changes.answers)
    git.stale_locks_under = settings.extension_path / ".git"
    return git


def check_flags(
    *,
    jobs: int = DEFAULT_JOBS,
    backup: bool = False,
    adopt: bool = False,
    move_data: bool = False,
    leave_data: bool = False,
    task: str = "clone",
) -> None:
    """Flags that cannot work, refused before anything is done."""
    if jobs < 1:
        raise BootstrapError(f"--jobs must be at least 1, not {jobs}", f"run: inv {task} --jobs 4")
    if backup and adopt:
        raise LinkError(
            "--backup and --adopt contradict each other",
            f"choose one: inv {task} --backup (rename aside)"
            f" or inv {task} --adopt (move to storage)",
        )
    if move_data and leave_data:
        raise LinkError(
            "--move-data and --leave-data contradict each other",
            f"choose one: inv {task} --move-data (take your files to the new target)"
            f" or inv {task} --leave-data (leave them in the old one)",
        )


def flag_values(**params: str | None) -> dict[str, str | None]:
    """Task parameters (`extension_path=...`) keyed by the variable they override."""
    by_param = {variable.param: name for name, variable in BY_NAME.items()}
    return {by_param[param]: value for param, value in params.items()}

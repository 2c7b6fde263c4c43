"""The steps of a bootstrap, each run the same way alone or chained: plan, then apply."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .clone import Cloner, plan_clone
from .envfile import render
from .errors import BootstrapError
from .git import Git
from .layout import LEAVES, plan_layout
from .linking import Linker, Unlinker
from .links import LinkError, State, Way, check_projects, locations, plan_links
from .settings import Settings
from .variables import BY_NAME, CHECKPOINTS_PATH, DATASET_PATH, VARIABLES
from .workspace import Session

ENV_HEADER = (
    "mmlab-bootstrap workspace settings. `inv env` rewrites the MMLAB_ lines"
    " and keeps everything else. Load: set -a; . ./.env; set +a"
)


def env_step(
    session: Session, flags: Mapping[str, str | None], *, load_line: bool = True
) -> Settings:
    """Write `.env` with every variable resolved; print the line that loads it."""
    settings = session.settings(flags)
    envfile = session.read_env()  # read under the lock
    wanted = settings.as_env()
    text = render(envfile, wanted, {v.name: v.help for v in VARIABLES}, ENV_HEADER)
    report = session.report
    if text == envfile.text:
        report.unchanged(f"up to date: {session.env_path}")
    else:
        old = envfile.values()
        for name, value in wanted.items():
            if old.get(name) != value:
                source = settings.values[name].source.value
                line = f"{name}={value!r} (from {source})"
                if session.dry:
                    report.would(f"set {line}")
                else:
                    report.done(f"set {line}")
        session.changes.write_file(session.env_path, text)
    if load_line:
        report.info(f"load it in a shell: {session.load_line()}")
    return settings


def layout_step(session: Session, flags: Mapping[str, str | None]) -> Settings:
    """Create the storage folders each project needs; leave existing ones alone."""
    settings = session.settings(flags)
    folders = plan_layout(settings)
    for folder in folders:
        if folder.exists:
            session.report.unchanged(f"exists {folder.path}")
        else:
            session.changes.make_folder(folder.path)
    return settings


DEFAULT_JOBS = 4


def clone_step(
    session: Session, flags: Mapping[str, str | None], *, jobs: int, update: bool
) -> Settings:
    """Clone the superproject and its submodules (shallow, parallel), or complete them."""
    check_flags(jobs=jobs)
    settings = session.settings(flags)
    git = Git(session.report, dry=session.dry, mirror=settings.mirror)
    plan = plan_clone(settings, git)
    Cloner(settings, git, session.report, jobs).apply(plan, update=update)
    return settings


def check_flags(
    *, jobs: int = DEFAULT_JOBS, backup: bool = False, adopt: bool = False, task: str = "clone"
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


def task_name(variable: str) -> str:
    """`link-checkpoints` or `link-data`."""
    return f"link-{LEAVES[variable]}"


def link_step(
    session: Session,
    flags: Mapping[str, str | None],
    variable: str,
    *,
    backup: bool = False,
    adopt: bool = False,
    relative: bool = False,
    keep_going: bool = False,
) -> Settings:
    """Link each project's checkpoints or data folder to storage, losing nothing."""
    name = task_name(variable)
    check_flags(backup=backup, adopt=adopt, task=name)
    settings = session.settings(flags)
    plan_layout(settings, (variable,))
    if session.dry and not settings.extension_path.exists():
        for location in locations(settings, variable):  # --dry bootstrap: not cloned yet
            session.report.would(f"link {location.link} -> {location.target} (once cloned)")
        return settings
    git = Git(session.report, dry=session.dry, mirror=settings.mirror)
    way = Way.BACKUP if backup else Way.ADOPT if adopt else Way.REFUSE
    plans = plan_links(settings, variable, git, way, relative=relative)
    refused = [plan for plan in plans if plan.refused]
    linker = Linker(git, session.report, session.dry, session.journal, relative)
    for plan in plans:
        if plan.refused:
            session.report.refused(f"{plan.location.link} [{plan.state.value}]: {plan.problem}")
        elif session.dry and refused and not keep_going:
            linker.apply(plan)  # under --dry, show the whole plan before refusing
    user_data = any(
        plan.state is State.USER_DATA and plan.way is Way.REFUSE and not plan.inventory.specials
        for plan in refused
    )
    hint = (
        f"keep your files: inv {name} --backup (rename aside)"
        f" or inv {name} --adopt (move to storage)"
        if user_data
        else f"move the named files out of the way, then run: inv {name}"
    )
    if refused and not keep_going:
        raise LinkError(f"{len(refused)} link location(s) refused; nothing changed", hint)
    for plan in plans:
        if not plan.refused:
            linker.apply(plan)
    if refused:
        raise LinkError(f"{len(refused)} link location(s) refused; the others were done", hint)
    return settings


def unlink_step(
    session: Session, flags: Mapping[str, str | None], variables: tuple[str, ...]
) -> Settings:
    """Remove managed links and put back what linking replaced; stored data stays."""
    settings = session.settings(flags)
    check_projects(settings)
    git = Git(session.report, dry=session.dry, mirror=settings.mirror)
    unlinker = Unlinker(git, session.report, session.dry, session.journal)
    for variable in variables:
        for location in locations(settings, variable):
            unlinker.apply(location)
    return settings


def flag_values(**params: str | None) -> dict[str, str | None]:
    """Task parameters (`extension_path=...`) keyed by the variable they override."""
    by_param = {variable.param: name for name, variable in BY_NAME.items()}
    return {by_param[param]: value for param, value in params.items()}


BOOTSTRAP_STEPS = ("env", "clone", "layout", "link-checkpoints", "link-data")


def bootstrap_steps(
    session: Session,
    flags: Mapping[str, str | None],
    *,
    jobs: int = DEFAULT_JOBS,
    update: bool = False,
    backup: bool = False,
    adopt: bool = False,
    relative: bool = False,
    keep_going: bool = False,
) -> Settings:
    """Run every step in order; stop at the first failure, saying which steps completed."""
    check_flags(jobs=jobs, backup=backup, adopt=adopt, task="bootstrap")  # before any step acts
    ways = {"backup": backup, "adopt": adopt, "relative": relative, "keep_going": keep_going}
    steps: dict[str, Callable[[], Settings]] = {
        "env": lambda: env_step(session, flags, load_line=False),
        "clone": lambda: clone_step(session, flags, jobs=jobs, update=update),
        "layout": lambda: layout_step(session, flags),
        "link-checkpoints": lambda: link_step(session, flags, CHECKPOINTS_PATH, **ways),
        "link-data": lambda: link_step(session, flags, DATASET_PATH, **ways),
    }
    report = session.report
    report.hide_unchanged = True
    completed: list[str] = []
    for name in BOOTSTRAP_STEPS:
        before = report.changes
        try:
            settings = steps[name]()
        except (BootstrapError, KeyboardInterrupt):
            done = ", ".join(completed) or "none"
            report.info(f"bootstrap stopped at {name} (completed: {done}); run it again to go on")
            raise
        if report.changes == before:
            report.unchanged(f"{name}: up to date", always=True)
        completed.append(name)
    report.info(f"extension:   {settings.extension_path}")
    report.info(f"checkpoints: {settings.checkpoints_path}")
    report.info(f"datasets:    {settings.dataset_path}")
    report.info(f"load the settings in a shell: {session.load_line()}")
    return settings

"""The steps of a bootstrap, each run the same way alone or chained: plan, then apply."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .carryplan import carry_adopted
from .clone import Cloner, plan_clone
from .envfile import render
from .errors import BootstrapError, shown
from .git import Git
from .layout import LEAVES, plan_layout
from .linker import Linker
from .linkplan import LinkPlan, State, Way, plan_links
from .locations import LinkError, check_projects, locations
from .settings import Settings
from .status import override_warnings
from .unlinker import Unlinker
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
    for warning in override_warnings(settings, session.environ, envfile.values()):
        session.report.warn(warning)
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
    git = workspace_git(session, settings)
    plan = plan_clone(settings, git)
    Cloner(settings, git, session.report, jobs).apply(plan, update=update)
    return settings


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
    git = Git(session.report, dry=session.dry, mirror=settings.mirror)
    git.stale_locks_under = settings.extension_path / ".git"
    return git


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


@dataclass
class LinkWork:
    """One link task's plans, worked out before any link is changed."""

    name: str
    plans: list[LinkPlan]
    linker: Linker | None  # None: under --dry before the clone exists

    @property
    def refused(self) -> list[LinkPlan]:
        return [plan for plan in self.plans if plan.refused]


def plan_link_step(
    session: Session,
    settings: Settings,
    variable: str,
    *,
    way: Way,
    relative: bool,
) -> LinkWork:
    """Classify every location of one link task; print each refusal. Changes nothing."""
    name = task_name(variable)
    plan_layout(settings, (variable,))
    if session.dry and not settings.extension_path.exists():
        for location in locations(settings, variable):  # --dry bootstrap: not cloned yet
            session.report.would(f"link {location.link} -> {location.target} (once cloned)")
        return LinkWork(name, [], None)
    git = workspace_git(session, settings)
    plans = [
        carry_adopted(plan, git, session.journal.entry(plan.location.link))
        for plan in plan_links(settings, variable, git, way, relative=relative)
    ]
    for plan in plans:
        if plan.refused:
            session.report.refused(f"{plan.location.link} [{plan.state.value}]: {plan.problem}")
    return LinkWork(
        name, plans, Linker(git, session.report, session.dry, session.journal, relative)
    )


def refusal_error(works: list[LinkWork], task: str, *, done: bool) -> LinkError | None:
    """The error for refused locations (None when none was refused), with the flag that helps."""
    refused = [plan for work in works for plan in work.refused]
    if not refused:
        return None
    user_data = any(
        plan.state is State.USER_DATA and plan.way is Way.REFUSE and not plan.inventory.specials
        for plan in refused
    )
    hints = [plan.hint for plan in refused if plan.hint]
    hint = (
        f"keep your files: inv {task} --backup (rename aside) or inv {task} --adopt"
        " (move to storage)"
        if user_data
        else hints[0]
        if hints
        else f"move the named files out of the way, then run: inv {task}"
    )
    outcome = "the others were done" if done else "nothing changed"
    return LinkError(f"{len(refused)} link location(s) refused; {outcome}", hint)


def apply_link_steps(
    session: Session, works: list[LinkWork], task: str, *, keep_going: bool
) -> list[bool]:
    """Carry out planned link tasks: all of them, or (with refusals) only under --keep-going.

    Returns, per task, whether it changed (or refused) anything.
    """
    error = refusal_error(works, task, done=False)
    if error is not None and not keep_going:
        for work in works:  # under --dry, show the whole plan before refusing
            if session.dry and work.linker is not None:
                for plan in work.plans:
                    if not plan.refused:
                        work.linker.apply(plan)
        raise error
    changed = []
    for work in works:
        before = session.report.changes
        for plan in work.plans:
            if not plan.refused and work.linker is not None:
                work.linker.apply(plan)
        changed.append(bool(work.refused) or session.report.changes != before)
    error = refusal_error(works, task, done=True)
    if error is not None:
        raise error
    return changed


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
    work = plan_link_step(session, settings, variable, way=way_of(backup, adopt), relative=relative)
    apply_link_steps(session, [work], name, keep_going=keep_going)
    return settings


def way_of(backup: bool, adopt: bool) -> Way:
    """What to do with user data at a link location."""
    return Way.BACKUP if backup else Way.ADOPT if adopt else Way.REFUSE


def unlink_step(
    session: Session, flags: Mapping[str, str | None], variables: tuple[str, ...]
) -> Settings:
    """Remove managed links and put back what linking replaced; stored data stays."""
    settings = session.settings(flags)
    check_projects(settings)
    git = workspace_git(session, settings)
    unlinker = Unlinker(git, session.report, session.dry, session.journal)
    for variable in variables:
        for location in locations(settings, variable):
            unlinker.apply(location)
    return settings


def flag_values(**params: str | None) -> dict[str, str | None]:
    """Task parameters (`extension_path=...`) keyed by the variable they override."""
    by_param = {variable.param: name for name, variable in BY_NAME.items()}
    return {by_param[param]: value for param, value in params.items()}


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
    """Run every step in order; stop at the first failure, saying which steps completed.

    Both link tasks are planned before either changes anything, so every refusal shows at once.
    """
    check_flags(jobs=jobs, backup=backup, adopt=adopt, task="bootstrap")  # before any step acts

    def known_projects() -> None:
        """An unknown project is refused before `.env` or storage changes for it (once the
        superproject is there to say which projects it has)."""
        settings = session.settings(flags)
        if settings.extension_path.is_dir() and not settings.extension_path.is_symlink():
            check_projects(settings)

    known_projects()

    def layout() -> Settings:
        known_projects()  # now that the clone says which projects there are
        return layout_step(session, flags)

    report = session.report
    report.hide_unchanged = True

    def link() -> list[str]:
        settings = session.settings(flags)
        way = way_of(backup, adopt)
        works, said = [], []
        for variable in (CHECKPOINTS_PATH, DATASET_PATH):
            before = report.changes  # --dry before the clone: planning says `would link`
            works.append(plan_link_step(session, settings, variable, way=way, relative=relative))
            said.append(report.changes != before)
        changed = apply_link_steps(session, works, "bootstrap", keep_going=keep_going)
        return [
            work.name
            for work, did, planned in zip(works, changed, said, strict=True)
            if not (did or planned)
        ]

    def single(name: str, step: Callable[[], object]) -> Callable[[], list[str]]:
        def run() -> list[str]:
            before = report.changes
            step()
            return [name] if report.changes == before else []

        return run

    steps: dict[str, Callable[[], list[str]]] = {
        "env": single("env", lambda: env_step(session, flags, load_line=False)),
        "clone": single("clone", lambda: clone_step(session, flags, jobs=jobs, update=update)),
        "layout": single("layout", layout),
        "linking": link,
    }
    completed: list[str] = []
    for name, step in steps.items():
        try:
            unchanged = step()
        except (BootstrapError, KeyboardInterrupt) as error:
            done = ", ".join(completed) or "none"
            again = isinstance(error, KeyboardInterrupt) or (
                isinstance(error, BootstrapError) and error.rerun_helps
            )
            going_on = "run it again to go on" if again else "the hint says what to do first"
            report.info(f"bootstrap stopped at {name} (completed: {done}); {going_on}")
            raise
        for step_name in unchanged:
            report.unchanged(f"{step_name}: up to date", always=True)
        completed.append(name)
    settings = session.settings(flags)
    report.info(f"extension:   {settings.extension_path}")
    report.info(f"checkpoints: {settings.checkpoints_path}")
    report.info(f"datasets:    {settings.dataset_path}")
    report.info(f"load the settings in a shell: {session.load_line()}")
    return settings

"""`bootstrap`: every step in order, each alone as its own task would run it; then a check
that the workspace is healthy (what `status` looks at)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mmlab_bootstrap.checkpoints import fetch_checkpoints_step
from mmlab_bootstrap.clone import clone_step
from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.git import require_git
from mmlab_bootstrap.links import (
    apply_link_steps,
    check_link_flags,
    check_projects,
    old_data_of,
    plan_link_step,
    way_of,
)
from mmlab_bootstrap.run import Session, StepResult, check_flags
from mmlab_bootstrap.settings import (
    CHECKPOINTS,
    CHECKPOINTS_PATH,
    DATASET_PATH,
    DEFAULT_JOBS,
    Settings,
)
from mmlab_bootstrap.workspace.env import env_step
from mmlab_bootstrap.workspace.layout import layout_step
from mmlab_bootstrap.workspace.status import training_python, workspace_status


class UnhealthyError(BootstrapError):
    """The workspace is not healthy after every step ran."""


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
    move_data: bool = False,
    leave_data: bool = False,
) -> Settings:
    """Run every step in order; stop at the first failure, saying which steps completed.

    Both link tasks are planned before either changes anything, so every refusal shows at once.
    """
    check_flags(jobs=jobs, task="bootstrap")  # before any step acts
    check_link_flags(
        backup=backup,
        adopt=adopt,
        move_data=move_data,
        leave_data=leave_data,
        task="bootstrap",
    )
    require_git()  # an old git is named before `.env` is written, not at the clone
    report = session.report

    def known_projects() -> None:
        """An unknown project is refused before `.env` or storage changes for it (once the
        superproject is there to say which projects it has)."""
        settings = session.settings(flags)
        if settings.extension_path.is_dir() and not settings.extension_path.is_symlink():
            check_projects(settings)

    known_projects()
    report.hide_unchanged = True

    def layout() -> list[str]:
        known_projects()  # now that the clone says which projects there are
        return _unchanged("layout", layout_step(session, flags))

    def link() -> list[str]:
        settings = session.settings(flags)
        shown_only = not settings.extension_path.exists()  # under --dry, on a fresh workspace
        way = way_of(backup, adopt)
        works = [
            plan_link_step(
                session,
                settings,
                variable,
                way=way,
                relative=relative,
                clone_shown_only=shown_only,
                old_data=old_data_of(move_data, leave_data),
            )
            for variable in (CHECKPOINTS_PATH, DATASET_PATH)
        ]
        changed = apply_link_steps(session, works, "bootstrap", keep_going=keep_going)
        return [work.name for work, did in zip(works, changed, strict=True) if not did]

    def checkpoints() -> list[str]:
        """fetch-checkpoints, when MMLAB_CHECKPOINTS names any model."""
        settings = session.settings(flags)
        if not settings.checkpoint_models:
            return []
        if not settings.extension_path.exists():  # under --dry, on a fresh workspace
            session.changes.make(
                f"download the checkpoints of {settings[CHECKPOINTS]} (once cloned)", lambda: None
            )
            return []
        return _unchanged(
            "fetch-checkpoints",
            fetch_checkpoints_step(session, flags, (), interpreter=training_python),
        )

    def python_env() -> list[str]:
        """python-env, when MMLAB_PYTHON_ENV=1."""
        settings = session.settings(flags)
        if not settings.builds_python_env:
            return []
        if not settings.extension_path.exists():  # under --dry, on a fresh workspace
            session.changes.make(
                "build the training environments (inv python-env, once cloned)", lambda: None
            )
            return []
        # startup: the environment builder only with MMLAB_PYTHON_ENV=1
        from mmlab_bootstrap.pythonenv import python_env_step

        before = session.changes.made
        python_env_step(session, flags, locked=False, update=False)
        return [] if session.changes.made > before else ["python-env"]

    def check() -> list[str]:
        check_after(session, flags)
        return []

    def clone() -> list[str]:
        return _unchanged("clone", clone_step(session, flags, jobs=jobs, update=update))

    steps: dict[str, Callable[[], list[str]]] = {
        "env": lambda: _unchanged("env", env_step(session, flags, load_line=False)),
        "clone": clone,
        "layout": layout,
        "linking": link,
        "fetch-checkpoints": checkpoints,
        "python-env": python_env,
        "check": check,
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


def _unchanged(name: str, result: StepResult) -> list[str]:
    return [] if result.changed else [name]


def check_after(session: Session, flags: Mapping[str, str | None]) -> None:
    """Check after applying: the workspace must be healthy now (under --dry nothing changed,
    so there is nothing to check)."""

    def check() -> None:
        settings = session.settings(flags)
        found = workspace_status(session, settings, session.read_env().values(), details=False)
        if found["configs"]:
            # startup: the loader's answers are kept only when configs are named
            from mmlab_bootstrap.checkpoints import keep_config_answers

            keep_config_answers(settings.root)  # a later status need not start the interpreter
        if not found["healthy"]:
            problems = found["problems"]
            listed = "; ".join(problems[:5]) + (
                f" and {len(problems) - 5} more" if problems[5:] else ""
            )
            raise UnhealthyError(
                f"every step ran, but the workspace is not healthy: {listed}",
                "run: inv status (it shows each problem), fix what it names, then: inv bootstrap",
            )

    session.changes.after_changes(check)

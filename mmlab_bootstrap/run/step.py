"""The steps of a bootstrap that are not about links, each run the same way alone or chained:
settings, then a plan, then applying it through the session's `changes`; each returns a
`StepResult`. The link steps are in `link_steps`, the chain in `bootstrap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.run.session import Session
from mmlab_bootstrap.settings import BY_NAME, DEFAULT_JOBS, Settings


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


def check_flags(*, jobs: int = DEFAULT_JOBS, task: str = "clone") -> None:
    """`--jobs`, refused before anything is done when it cannot work."""
    if jobs < 1:
        raise BootstrapError(f"--jobs must be at least 1, not {jobs}", f"run: inv {task} --jobs 4")


def flag_values(**params: str | None) -> dict[str, str | None]:
    """Task parameters (`extension_path=...`) keyed by the variable they override."""
    by_param = {variable.param: name for name, variable in BY_NAME.items()}
    return {by_param[param]: value for param, value in params.items()}

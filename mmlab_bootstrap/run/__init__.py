"""How a task runs: its session (root, `.env`, settings, lock: `session`), the one seam every
change goes through (`changes.Changes.make`), the base of every step (`step`) and the one
work pool of parallel work, `jobs` at a time, with its stop signal (`pool`).

Plan/apply: the seam: planners return plans, appliers hand each change to `Changes.make`.
May import: settings, git, output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.run.changes import Changes
    from mmlab_bootstrap.run.pool import Stopped, WorkPool
    from mmlab_bootstrap.run.session import STATE_FILE, Session, find_root
    from mmlab_bootstrap.run.step import (
        Counted,
        StepResult,
        check_flags,
        jobs_flag,
        workspace_git,
    )

__all__ = [
    "STATE_FILE",
    "Changes",
    "Counted",
    "Session",
    "StepResult",
    "Stopped",
    "WorkPool",
    "check_flags",
    "find_root",
    "jobs_flag",
    "workspace_git",
]

_WHERE = {
    "Changes": "changes",
    "Counted": "step",
    "STATE_FILE": "session",
    "Session": "session",
    "StepResult": "step",
    "Stopped": "pool",
    "WorkPool": "pool",
    "check_flags": "step",
    "find_root": "session",
    "jobs_flag": "step",
    "workspace_git": "step",
}


__getattr__ = lazy_surface(__name__, _WHERE)

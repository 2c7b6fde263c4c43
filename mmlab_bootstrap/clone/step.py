"""The `clone` task's step: plan the superproject and its submodules, then apply."""

from __future__ import annotations

from collections.abc import Mapping

from mmlab_bootstrap.clone.plan import ClonePlan, plan_clone
from mmlab_bootstrap.run import Counted, Session, StepResult, check_flags, workspace_git


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
        # startup: the applier and what fetching needs, only when there is work
        from mmlab_bootstrap.clone.apply import Cloner

        Cloner(settings, git, session.report, session.changes, jobs).apply(plan)
    else:
        session.report.unchanged(f"up to date: {plan.path}")
    return counted.result(settings, [plan])

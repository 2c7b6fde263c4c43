"""The link steps (`link-checkpoints`, `link-data`, and both within `bootstrap`): plan every
location of every task first, refuse before anything moves, then apply through `changes`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from mmlab_bootstrap.links.carry import carry_adopted, plan_old_data
from mmlab_bootstrap.links.journal import journal_of
from mmlab_bootstrap.links.location import LinkError, Location, locations
from mmlab_bootstrap.links.plan import LinkPlan, OldData, State, Way, plan_links
from mmlab_bootstrap.links.repairs import plan_repairs
from mmlab_bootstrap.run import Counted, Session, StepResult, workspace_git
from mmlab_bootstrap.settings import (
    LEAVES,
    Settings,
    device_warning,
    plan_layout,
    route_note,
    storage_warnings,
)

if TYPE_CHECKING:
    from mmlab_bootstrap.links.apply import Linker


def task_name(variable: str) -> str:
    """`link-checkpoints` or `link-data`."""
    return f"link-{LEAVES[variable]}"


def way_of(backup: bool, adopt: bool) -> Way:
    """What to do with user data at a link location."""
    return Way.BACKUP if backup else Way.ADOPT if adopt else Way.REFUSE


def old_data_of(move_data: bool, leave_data: bool) -> OldData:
    """What a relink does with the user's data in the old target."""
    return OldData.MOVE if move_data else OldData.LEAVE if leave_data else OldData.REFUSE


@dataclass
class LinkWork:
    """One link task's plans, worked out before any link is changed."""

    name: str
    plans: list[LinkPlan]
    linker: Callable[[], Linker] | None = None  # made when a plan needs it
    # Locations of a clone that `--dry bootstrap` only showed: nothing to look at yet.
    once_cloned: list[Location] = field(default_factory=list)

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
    clone_shown_only: bool = False,
    old_data: OldData = OldData.REFUSE,
) -> LinkWork:
    """Classify every location of one link task; print each refusal. Changes nothing.

    `clone_shown_only`: the clone step before this one only showed what it would do (a
    `--dry bootstrap` of a fresh workspace), so there is nothing to look at yet.
    """
    name = task_name(variable)
    plan_layout(settings, (variable,))
    if clone_shown_only:
        return LinkWork(name, [], once_cloned=locations(settings, variable))
    git = workspace_git(session, settings)
    plans = [
        plan_repairs(
            plan_old_data(carry_adopted(plan, git, entry), git, entry, old_data), git, entry
        )
        for plan in plan_links(settings, variable, git, way, relative=relative)
        for entry in [journal_of(session).entry(plan.location.link)]
    ]
    for warning in storage_warnings(settings, (variable,)):
        session.report.warn(warning)
    for plan in plans:
        moved = device_warning(plan.location.target, journal_of(session).entry(plan.location.link))
        if moved:
            session.report.warn(moved)
    for plan in plans:
        if plan.refused:
            session.report.refused(f"{plan.location.link} [{plan.state.value}]: {plan.problem}")

    @functools.cache
    def linker() -> Linker:
        # startup: the applier and what moving files needs, only when there is work
        from mmlab_bootstrap.links.apply import Linker

        return Linker(git, session.report, session.changes, journal_of(session), relative)

    return LinkWork(name, plans, linker)


def refusal_error(works: list[LinkWork], task: str, *, done: bool) -> LinkError | None:
    """The error for refused locations (None when none was refused), with the flag that helps."""
    refused = [plan for work in works for plan in work.refused]
    if not refused:
        return None
    user_data = any(
        plan.state is State.USER_DATA and plan.way is Way.REFUSE and not plan.inventory.specials
        for plan in refused
    )
    left = any(plan.data_from and plan.old_data is OldData.REFUSE for plan in refused)
    hints = [plan.hint for plan in refused if plan.hint]
    hint = (
        f"keep your files: inv {task} --backup (rename aside) or inv {task} --adopt"
        " (move to storage)"
        if user_data
        else f"take your files along: inv {task} --move-data (a verified move into the new"
        f" target), or leave them where they are: inv {task} --leave-data"
        if left
        else hints[0]
        if hints
        else f"move the named files out of the way, then run: inv {task}"
    )
    outcome = "the others were done" if done else "nothing changed"
    return LinkError(f"{len(refused)} link location(s) refused; {outcome}", hint)


def _not_cloned(location: Location) -> None:
    raise LinkError(f"{location.project_dir} is not cloned", "run: inv clone")


def _apply(session: Session, work: LinkWork) -> None:
    for location in work.once_cloned:
        session.changes.make(
            f"link {location.link} -> {location.target} (once cloned){route_note(location.target)}",
            partial(_not_cloned, location),
        )
    for plan in work.plans:
        if plan.refused or work.linker is None:
            continue
        if plan.settled and plan.location.target.is_dir():  # no need of the applier
            note = route_note(plan.location.target)
            session.report.unchanged(f"already linked {plan.location.link}{note}")
        else:
            work.linker().apply(plan)


def apply_link_steps(
    session: Session, works: list[LinkWork], task: str, *, keep_going: bool
) -> list[bool]:
    """Carry out planned link tasks: all of them, or (with refusals) only under --keep-going.

    Returns, per task, whether it changed (or refused, or under --dry would change) anything.
    """
    error = refusal_error(works, task, done=False)
    if error is not None and not keep_going:
        for work in works:  # under --dry, show the whole plan before refusing
            session.changes.preview(partial(_apply, session, work))
        raise error
    changed = []
    for work in works:
        before = session.changes.made
        _apply(session, work)
        changed.append(bool(work.refused) or session.changes.made != before)
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
    move_data: bool = False,
    leave_data: bool = False,
) -> StepResult:
    """Link each project's checkpoints or data folder to storage, losing nothing."""
    name = task_name(variable)
    check_link_flags(
        backup=backup, adopt=adopt, move_data=move_data, leave_data=leave_data, task=name
    )
    counted = Counted(session)
    settings = session.settings(flags)
    work = plan_link_step(
        session,
        settings,
        variable,
        way=way_of(backup, adopt),
        relative=relative,
        old_data=old_data_of(move_data, leave_data),
    )
    apply_link_steps(session, [work], name, keep_going=keep_going)
    return counted.result(settings, work.plans)


def check_link_flags(
    *,
    backup: bool = False,
    adopt: bool = False,
    move_data: bool = False,
    leave_data: bool = False,
    task: str = "link-data",
) -> None:
    """Link flags that contradict each other, refused before anything is done."""
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

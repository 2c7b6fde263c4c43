"""Planning the repairs at a linked location: what a run stopped right after linking (killed,
or its output pipe closed) may have left undone. Looks only; `linker` makes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmlab_bootstrap.git import Git
from mmlab_bootstrap.links.excludes import exclude_missing
from mmlab_bootstrap.links.plan import LinkPlan, State
from mmlab_bootstrap.settings import device_warning


def plan_repairs(plan: LinkPlan, git: Git, recorded: Mapping[str, Any]) -> LinkPlan:
    """A linked location's plan with the bookkeeping it lacks: its journal record, removing a
    temporary copy a killed `--adopt` left, its exclude entry (one git command at most)."""
    if plan.state is not State.LINKED or plan.refused:
        return plan
    location = plan.location
    repairs = []
    if not recorded:
        repairs.append(f"record {location.link} in the journal")
    if device_warning(location.target, recorded):  # warned while planning
        repairs.append(f"record that {location.target} is on another filesystem now")
    if recorded.get("adopted"):
        repairs.append(f"remove what an interrupted --adopt left in {location.target}")
    # The journal notes `linked` once the exclude was seen to, and `excluded` when that meant
    # adding the block: only then is the block looked for again (a file read, and `git status`
    # only when it is gone). A link git does not show (ignored) costs a no-op run nothing.
    looked_after = recorded.get("linked") and not recorded.get("excluded")
    if not looked_after and exclude_missing(git, location):
        repairs.append(f"hide {location.link} from git status (.git/info/exclude)")
    return plan._replace(repairs=tuple(repairs)) if repairs else plan

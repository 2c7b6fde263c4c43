"""Project folders linked to storage (`link-data`, `link-checkpoints`, `unlink`): where links go
(`location`), what a location holds (`inventory`), what is in the way (`clashes`), the
planner (`plan`, `carry`, `repairs`), what `--dry` says of a plan (`describe`), the applier
(`apply`, `swap`, `skipworktree`, `excludes`), the journal (`journal`), unlinking
(`unlink`), the steps (`step`), and adopted files following upstream (`upstream`,
`upstream_apply`).

Plan/apply: `plan` / `apply`; `upstream` / `upstream_apply`; `unlink` holds both.
May import: run, settings, git, output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.links.inventory import files_of_user, git_names, skipped_files
    from mmlab_bootstrap.links.journal import Journal, JournalError
    from mmlab_bootstrap.links.location import (
        Location,
        check_projects,
        locations,
        recorded_locations,
    )
    from mmlab_bootstrap.links.plan import State, first_look
    from mmlab_bootstrap.links.step import (
        apply_link_steps,
        check_link_flags,
        link_step,
        old_data_of,
        plan_link_step,
        way_of,
    )
    from mmlab_bootstrap.links.unlink import unlink_step
    from mmlab_bootstrap.links.upstream import check_adopted, describe_adopted, linked_locations
    from mmlab_bootstrap.links.upstream_apply import update_adopted

__all__ = [
    "Journal",
    "JournalError",
    "Location",
    "State",
    "apply_link_steps",
    "check_adopted",
    "check_link_flags",
    "check_projects",
    "describe_adopted",
    "files_of_user",
    "first_look",
    "git_names",
    "link_step",
    "linked_locations",
    "locations",
    "old_data_of",
    "plan_link_step",
    "recorded_locations",
    "skipped_files",
    "unlink_step",
    "update_adopted",
    "way_of",
]

_WHERE = {
    "Journal": "journal",
    "JournalError": "journal",
    "Location": "location",
    "State": "plan",
    "apply_link_steps": "step",
    "check_adopted": "upstream",
    "check_link_flags": "step",
    "check_projects": "location",
    "describe_adopted": "upstream",
    "files_of_user": "inventory",
    "first_look": "plan",
    "git_names": "inventory",
    "link_step": "step",
    "linked_locations": "upstream",
    "locations": "location",
    "old_data_of": "step",
    "plan_link_step": "step",
    "recorded_locations": "location",
    "skipped_files": "inventory",
    "unlink_step": "unlink",
    "update_adopted": "upstream_apply",
    "way_of": "step",
}


__getattr__ = lazy_surface(__name__, _WHERE)

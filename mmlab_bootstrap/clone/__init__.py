"""The superproject and its submodules (`clone`): the planner (`plan`), the applier
(`apply`: temp-then-move), the record of started checkouts (`checkouts`), the step
(`step`), and fetching every submodule at its recorded commit (`fetch/`).

Plan/apply: `plan` / `apply`.
May import: gitcache, links, run, settings, git, output, fs, errors (enforced by `lint-
imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.clone.plan import same_repository
    from mmlab_bootstrap.clone.step import clone_step

__all__ = ["clone_step", "same_repository"]

_WHERE = {"clone_step": "step", "same_repository": "plan"}


__getattr__ = lazy_surface(__name__, _WHERE)

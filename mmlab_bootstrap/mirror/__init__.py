"""The team mirror (`mirror`): URL to folder (`places`), the planner (`plan`), the applier
(`apply`), every repository once, `--jobs` at a time (`walk`), the step (`step`).

Plan/apply: `plan` / `apply`.
May import: run, settings, git, output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.mirror.step import mirror_step

__all__ = ["mirror_step"]

_WHERE = {"mirror_step": "step"}


__getattr__ = lazy_surface(__name__, _WHERE)

"""Fetching submodules, each at its recorded commit, under one `--jobs` limit: the driver
(`submodules`), one repository at its commit (`repository`), one submodule and its
nested ones early (`nested`), what a kill left (`resume`), the shared state (`state`).

Plan/apply: applier only (driven by `clone.apply`).
May import: as clone (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.clone.fetch.submodules import SubmoduleFetcher

__all__ = ["SubmoduleFetcher"]

_WHERE = {"SubmoduleFetcher": "submodules"}


__getattr__ = lazy_surface(__name__, _WHERE)

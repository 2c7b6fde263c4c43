"""Fetching submodules, each at its recorded commit, under one `--jobs` limit: the driver
(`submodules`), one repository at its commit (`repository`), one submodule and its
nested ones early (`nested`), what a kill left (`resume`), the shared state (`state`).

Plan/apply: applier only (driven by `clone.apply`).
May import: as clone (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from typing import Any

    from mmlab_bootstrap.clone.fetch.submodules import SubmoduleFetcher

__all__ = ["SubmoduleFetcher"]

_WHERE = {"SubmoduleFetcher": "submodules"}


def __getattr__(name: str) -> Any:
    """A name of the surface, from its module (imported now if it was not yet)."""
    if name in _WHERE:
        module = f"{__name__}.{_WHERE[name]}"
        __import__(module)
        return getattr(sys.modules[module], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

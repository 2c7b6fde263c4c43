"""The team mirror (`mirror`): URL to folder (`places`), the planner (`plan`), the applier
(`apply`), every repository once, `--jobs` at a time (`walk`), the step (`step`).

Plan/apply: `plan` / `apply`.
May import: run, settings, git, output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from typing import Any

    from mmlab_bootstrap.mirror.step import mirror_step

__all__ = ["mirror_step"]

_WHERE = {"mirror_step": "step"}


def __getattr__(name: str) -> Any:
    """A name of the surface, from its module (imported now if it was not yet)."""
    if name in _WHERE:
        module = f"{__name__}.{_WHERE[name]}"
        __import__(module)
        return getattr(sys.modules[module], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The command line: the invoke tasks, their flags and help (`tasks`), the session of a task
and the one place where errors become exits (`support`), the `mmlab-bootstrap` console
script (`program`). The only package that imports invoke.

Plan/apply: none: it parses flags and calls the steps.
May import: everything (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.cli.tasks import namespace

__all__ = ["namespace"]

_WHERE = {"namespace": "tasks"}


__getattr__ = lazy_surface(__name__, _WHERE)

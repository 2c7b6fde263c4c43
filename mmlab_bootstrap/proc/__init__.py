"""Programs whose output is read from outside the tool's own code (git --version, the
training interpreter, nvcc, nvidia-smi, uv): run with a time limit and a byte cap, in a
process group of their own that is killed past either (`bounded`).

Plan/apply: no plan/apply pair: a primitive the planners and appliers use.
May import: output, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.proc.bounded import Ran, run_bounded

__all__ = ["Ran", "run_bounded"]

_WHERE = {"Ran": "bounded", "run_bounded": "bounded"}


__getattr__ = lazy_surface(__name__, _WHERE)

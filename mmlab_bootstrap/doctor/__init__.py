"""`doctor`: the step (`step`), the datasets it knows (`dataset_specs`) and their checks
(`datasets`, `scan`, `pickles`); the training environment's checks are `pythonenv`'s.

Plan/apply: read-only: it looks and reports, it changes nothing.
May import: workspace, pythonenv and every package below them (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.doctor.step import doctor_step

__all__ = ["doctor_step"]

_WHERE = {"doctor_step": "step"}


__getattr__ = lazy_surface(__name__, _WHERE)

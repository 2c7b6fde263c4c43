"""The training environment (`python-env`): requirements from the workspace (`plan`),
the torch/CUDA pair from the wheel pages (`pairs`, `pages`), the build through uv
(`build`, `uvrun`), the checkouts' editable wheels kept between builds (`editable`), and
how an environment is inspected: the interpreter asked in a subprocess (`interpreter`), its
packages against the ranges the checkouts accept (`packages`, `version_ranges`), mmcv's
prebuilt wheels (`mmcv_wheels`), and `inv verify` (`verify`: the sub-project's demo run in
it, layer by layer).

Plan/apply: `plan` and `pairs` look; `build` applies through the session's seam.
May import: checkpoints (its bounded HTTP client), run, settings, git (a checkout's
HEAD and status), output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.pythonenv.build import python_env_step, workspace_python
    from mmlab_bootstrap.pythonenv.packages import python_section
    from mmlab_bootstrap.pythonenv.verify import doctor_section, verify_step

__all__ = ["doctor_section", "python_env_step", "python_section", "verify_step", "workspace_python"]

_WHERE = {
    "doctor_section": "verify",
    "python_env_step": "build",
    "python_section": "packages",
    "verify_step": "verify",
    "workspace_python": "build",
}


__getattr__ = lazy_surface(__name__, _WHERE)

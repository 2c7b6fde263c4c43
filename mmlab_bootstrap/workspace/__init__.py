"""The composition layer: the `env` step and the rc block (`env`, `rcfile`), the `layout`
step (`layout`), the status checks and their view (`status`, `status_view`), and the
`bootstrap` chain (`bootstrap`).

Plan/apply: each step plans then applies through the session's seam.
May import: clone, links, gitcache, checkpoints, mirror, run, settings, git, output, fs,
errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.workspace.bootstrap import bootstrap_steps
    from mmlab_bootstrap.workspace.env import env_rc_step
    from mmlab_bootstrap.workspace.layout import layout_step
    from mmlab_bootstrap.workspace.status import workspace_status
    from mmlab_bootstrap.workspace.status_view import print_answer, print_status, status_step

__all__ = [
    "bootstrap_steps",
    "env_rc_step",
    "layout_step",
    "print_answer",
    "print_status",
    "status_step",
    "workspace_status",
]

_WHERE = {
    "bootstrap_steps": "bootstrap",
    "env_rc_step": "env",
    "layout_step": "layout",
    "print_answer": "status_view",
    "print_status": "status_view",
    "status_step": "status_view",
    "workspace_status": "status",
}


__getattr__ = lazy_surface(__name__, _WHERE)

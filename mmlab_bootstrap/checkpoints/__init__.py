"""Checkpoints (`fetch-checkpoints`): the model index and metafiles (`index`), the
planner (`plan`), the applier (`apply`), the step (`step`), one verified resumable download
(`download`), HTTP with its bounded tries (`http`), partial files (`partial`), records and
states (`store`), bars and heartbeat (`progress`); config-aware downloads: a config's
`_base_` chain, weights and environment reads, read statically (`configread`) or by the
sub-project's own loader in the training interpreter (`configload`; its answers kept by
`configcache`), mmcv's model-zoo tables (`modelzoo`), where each weight goes (`weights`),
what `.env` exports for the configs (`configvars`).

Plan/apply: `plan` plans (and `weights.plan_weights` for the configs), `apply` applies
through the seam, `download` (one file) on the one work pool.
May import: run, settings, output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.checkpoints.configcache import keep_config_answers
    from mmlab_bootstrap.checkpoints.configvars import config_environment, exported
    from mmlab_bootstrap.checkpoints.download import failure_text
    from mmlab_bootstrap.checkpoints.http import (
        Again,
        DownloadError,
        Job,
        Tries,
        answer_text,
        http_session,
        timeouts,
    )
    from mmlab_bootstrap.checkpoints.index import ModelError, final_path, find, read_index
    from mmlab_bootstrap.checkpoints.step import (
        checkpoints_status,
        fetch_checkpoints_step,
        list_models,
    )
    from mmlab_bootstrap.checkpoints.weights import configs_status

__all__ = [
    "Again",
    "DownloadError",
    "Job",
    "ModelError",
    "Tries",
    "answer_text",
    "checkpoints_status",
    "config_environment",
    "configs_status",
    "exported",
    "failure_text",
    "fetch_checkpoints_step",
    "final_path",
    "find",
    "http_session",
    "keep_config_answers",
    "list_models",
    "read_index",
    "timeouts",
]

_WHERE = {
    "Again": "http",
    "DownloadError": "http",
    "Job": "http",
    "ModelError": "index",
    "Tries": "http",
    "answer_text": "http",
    "checkpoints_status": "step",
    "config_environment": "configvars",
    "configs_status": "weights",
    "exported": "configvars",
    "failure_text": "download",
    "fetch_checkpoints_step": "step",
    "final_path": "index",
    "find": "index",
    "http_session": "http",
    "keep_config_answers": "configcache",
    "list_models": "step",
    "read_index": "index",
    "timeouts": "http",
}


__getattr__ = lazy_surface(__name__, _WHERE)

"""`fetch-checkpoints`: settings, then the plan (`plan`: every named model and every weight
the named configs load, checked against what storage holds), then the changes (`apply`:
records and downloads through the session's seam); `--search`'s listing; and the
`checkpoints` section of `status` (no network, no hashing)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.checkpoints.apply import apply_checkpoints
from mmlab_bootstrap.checkpoints.index import ModelError, final_path, find, read_index, search
from mmlab_bootstrap.checkpoints.plan import index_of, plan_checkpoints
from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.run import Counted, Session, StepResult, check_flags
from mmlab_bootstrap.settings import DOWNLOAD_JOBS, Settings


def fetch_checkpoints_step(
    session: Session,
    flags: Mapping[str, str | None],
    names: Sequence[str],
    *,
    configs: Sequence[str] = (),
    verify: bool = False,
    accept_mismatch: bool = False,
    jobs: int = DOWNLOAD_JOBS,
    interpreter: Callable[[Settings], str | None] | None = None,
) -> StepResult:
    """Download, verify and record the named models' checkpoints, and every weight the named
    configs load (see `weights`: read by the sub-project's loader in the training interpreter
    `interpreter` gives for the settings, when it gives one); nothing changes before every
    model is found and every file in place is checked."""
    check_flags(jobs=jobs, task="fetch-checkpoints")
    counted = Counted(session)
    settings = session.settings(flags)
    planned = plan_checkpoints(
        session,
        settings,
        names,
        configs,
        verify=verify,
        accept=accept_mismatch,
        interpreter=interpreter,
    )
    apply_checkpoints(session, settings, planned, jobs=jobs, accept=accept_mismatch)
    return counted.result(settings, planned.plans)


def list_models(session: Session, flags: Mapping[str, str | None], text: str) -> None:
    """One line per model whose name, project, config or collection holds `text`."""
    settings, report = session.settings(flags), session.report
    models = search(index_of(settings, report), text)
    for model in models:
        if model.file_name is None:
            state = "no usable checkpoint file name" if model.name_refused else "no checkpoint"
        else:
            final = final_path(settings, model)
            for odd in ckptstore.odd_files(final):
                report.warn(odd)
            state = ckptstore.check_state(final, model.hash_prefix)[0]
        report.info(f"{_plain(model.label)}  {_plain(model.config)}  [{state}]")
    report.info(f"{len(models)} model(s) match {shown(text)}")


def _plain(text: str) -> str:
    """A metafile's text as it is when it is printable, else quoted with its escapes."""
    return text if text.isprintable() else shown(text)


def checkpoints_status(settings: Settings) -> tuple[list[dict[str, Any]], list[str]]:
    """Each model MMLAB_CHECKPOINTS names, as storage holds it (no network, no hashing), and
    warnings: metafiles refused, files at the names of records and partials ignored."""
    warnings: list[str] = []
    if not settings.checkpoint_models:
        return [], warnings
    try:
        models = read_index(settings.extension_path, settings.projects, warnings)
    except BootstrapError:
        models = []
    found: list[dict[str, Any]] = []
    for name in settings.checkpoint_models:
        entry: dict[str, Any] = {"model": name, "path": None, "state": "unknown", "bytes": None}
        try:
            model = find(models, name, settings.projects, "inv")
        except ModelError:
            if not _is_config(settings, name):  # (a config's weights: weights.configs_status)
                found.append(entry)
            continue
        entry["model"] = model.label
        if model.file_name is None:
            entry["state"] = "without a checkpoint file"
            warnings.append(f"{model.label} {model.file_problem}")
        else:
            final = final_path(settings, model)
            entry["path"] = str(final)
            warnings += ckptstore.odd_files(final)
            entry["state"], entry["bytes"] = ckptstore.check_state(final, model.hash_prefix)
        found.append(entry)
    return found, warnings


def _is_config(settings: Settings, name: str) -> bool:
    # startup: configs are read only when one is named
    from mmlab_bootstrap.checkpoints.weights import config_path

    return name.endswith(".py") and config_path(settings, name) is not None

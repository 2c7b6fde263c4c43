"""`fetch-checkpoints`: settings, then a plan of every named model (found in the sub-projects'
model index, checked against what storage holds), then the downloads through the session's
`changes`; and the `checkpoints` section of `status` (no network, no hashing)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.checkpoints.index import (
    Model,
    ModelError,
    final_path,
    find,
    read_index,
    search,
)
from mmlab_bootstrap.errors import BootstrapError, redacted, shown
from mmlab_bootstrap.fs import denied
from mmlab_bootstrap.output import Reporter, human_size
from mmlab_bootstrap.run import Counted, Session, StepResult, WorkPool, check_flags
from mmlab_bootstrap.settings import (
    CHECKPOINTS,
    CHECKPOINTS_PATH,
    DOWNLOAD_JOBS,
    Settings,
    plan_layout,
)

OPENMMLAB = "https://download.openmmlab.com/"
STOP_GRACE = 2.0  # seconds the downloads get to stop after a Ctrl-C


@dataclass(frozen=True)
class CheckpointPlan:
    """One model's checkpoint: where it comes from, where it goes, and what to do."""

    model: Model
    url: str
    final: Path
    action: str  # "none", "record" (verified here, record it), "redact" or "download"
    sha256: str = ""  # for "record": the hash just computed
    mismatch: bool = False


def source_url(settings: Settings, weights: str) -> str:
    """The URL to download: MMLAB_CHECKPOINT_MIRROR in place of download.openmmlab.com."""
    mirror = settings.checkpoint_mirror
    if mirror and weights.startswith(OPENMMLAB):
        return mirror + weights[len(OPENMMLAB) :]
    return weights


def index_of(settings: Settings, report: Reporter) -> list[Model]:
    """Every model of the sub-projects' indexes; a metafile refused is named in a warning."""
    program, skipped = report.program, list[str]()
    models = read_index(settings.extension_path, settings.projects, skipped)
    for text in skipped:
        report.warn(text)
    if not models and skipped:  # there are indexes, but none could be read: they say why
        raise ModelError(
            f"no model could be read from the model indexes of {' '.join(settings.projects)}"
            f" ({len(skipped)} refused; each is named above)",
            "the sub-projects' model-index.yml and metafiles are refused as named: restore"
            f" them from git (git -C {shown(str(settings.extension_path))} submodule update"
            " --force), or check MMLAB_PROJECTS",
        )
    if not models:
        raise ModelError(
            f"no model index (model-index.yml) in the sub-projects {' '.join(settings.projects)}"
            f" under {shown(str(settings.extension_path))}",
            f"clone the workspace first: {program} clone (or check MMLAB_PROJECTS)",
        )
    return models


def wanted_models(
    settings: Settings, models: Sequence[Model], names: Sequence[str], program: str
) -> list[Model]:
    """The models `--model` (else MMLAB_CHECKPOINTS) names, each with a checkpoint URL."""
    if not names:
        raise ModelError(
            f"no model to download: give --model NAME or set {CHECKPOINTS}",
            f"list them: {program} fetch-checkpoints --search TEXT; pin a set:"
            f" {program} env --checkpoint-models 'project:name …'",
        )
    found: list[Model] = []
    for name in names:
        model = find(models, name, settings.projects, program)
        if model.file_name is None:
            raise ModelError(
                f"{model.label} {model.file_problem}",
                f"choose another model: {program} fetch-checkpoints --search"
                f" '{model.collection or model.name}'",
            )
        if model not in found:
            found.append(model)
    return found


def plan_one(
    settings: Settings,
    model: Model,
    *,
    verify: bool,
    accept: bool,
    final: Path | None = None,
    url: str | None = None,
) -> CheckpointPlan:
    """What one model needs; a file in place that does not match is refused by name.
    `final` and `url` default to the model's place in storage and its URL (mirrored)."""
    assert model.weights is not None
    url = url if url is not None else source_url(settings, model.weights)
    final = final if final is not None else final_path(settings, model)
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(ckptstore.record_path(final)).st_mode):
            raise ModelError(
                f"{shown(str(ckptstore.record_path(final)))} is a folder, where the record of"
                f" {model.label}'s verified checkpoint goes",
                f"move it aside (mv '{ckptstore.record_path(final)}'"
                f" '{ckptstore.record_path(final)}.old'), then run the same command again",
            )
    record = ckptstore.recorded(final)
    if record is not None and not verify:
        if redacted(record.url) != record.url:  # an older run recorded a credential
            return CheckpointPlan(model, record.url, final, "redact", record.sha256)
        return CheckpointPlan(model, url, final, "none")
    if not final.is_file():
        return CheckpointPlan(model, url, final, "download")
    full = ckptstore.sha256_of(final).hexdigest()
    if record is not None and record.sha256 == full:
        return CheckpointPlan(model, url, final, "none")
    mismatch = not ckptstore.hash_matches(full, model.hash_prefix)
    if mismatch and not accept:
        raise ModelError(
            f"{shown(str(final))} is there, but its sha256 {full} does not match the"
            f" {model.hash_prefix} its name promises (a truncated or corrupt file)",
            f"move it aside (mv '{final}' '{final}.bad') and run it again to download it; or,"
            " if the published file is known not to match its name: --accept-mismatch",
        )
    return CheckpointPlan(model, url, final, "record", full, mismatch)


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
    # startup: configs are read only when one is named (--config, a .py in MMLAB_CHECKPOINTS)
    from mmlab_bootstrap.checkpoints.weights import plan_weights, read_configs
    from mmlab_bootstrap.checkpoints.weights import source_url as weight_url

    check_flags(jobs=jobs, task="fetch-checkpoints")
    counted = Counted(session)
    settings = session.settings(flags)
    program = session.report.program
    model_names, config_names = split_names(
        settings, names or (() if configs else settings.checkpoint_models), configs
    )
    report = session.report
    python = interpreter(settings) if interpreter is not None and config_names else None
    reads = read_configs(
        settings, config_names, program, python=python, warn=report.warn, say=report.note
    )
    for read in reads:
        report.info(f"{read.path}: read by {read.reader}")
    if python is not None:
        # startup: the loader's answers are kept only when it ran
        from mmlab_bootstrap.checkpoints.configcache import keep_config_answers

        session.changes.after_changes(lambda: keep_config_answers(settings.root))
    if model_names or not config_names:
        index = index_of(settings, session.report)
        models = wanted_models(settings, index, model_names, program)
    else:
        index, models = read_index(settings.extension_path, settings.projects, []), []
    weights = plan_weights(settings, reads, index)
    for weight in weights:
        if weight.state == "link" and weight.model is not None and weight.model not in models:
            models.append(weight.model)
    plan_layout(settings, (CHECKPOINTS_PATH,))  # the storage root is usable
    plans = [plan_one(settings, m, verify=verify, accept=accept_mismatch) for m in models]
    hub: dict[Path, CheckpointPlan] = {}
    for weight in weights:
        if weight.state == "hub" and weight.model and weight.final and weight.final not in hub:
            hub[weight.final] = plan_one(
                settings,
                weight.model,
                verify=verify,
                accept=accept_mismatch,
                final=weight.final,
                url=weight_url(settings, weight.url),
            )
    plans += hub.values()
    changes = session.changes
    for plan in plans:
        for text in ckptstore.odd_files(plan.final):
            report.warn(text)
    for plan in plans:
        if plan.action == "none":
            report.unchanged(f"up to date: {plan.model.label} ({plan.final})")
        elif plan.action == "record":

            def record(plan: CheckpointPlan = plan) -> None:
                odd = " (does not match its name: accepted)" if plan.mismatch else ""
                try:
                    ckptstore.write_record(plan.final, plan.sha256, plan.url)
                except PermissionError as error:  # another user's record: the file is fine
                    report.warn(
                        f"verified {plan.final}, but not recorded: {denied(error).message};"
                        " each run hashes it again"
                    )
                    return
                report.done(f"verified {plan.final} (sha256 {plan.sha256[:16]}…){odd}")

            changes.make(f"record {plan.final} as verified (sha256 {plan.sha256[:16]}…)", record)
        elif plan.action == "redact":

            def redact(plan: CheckpointPlan = plan) -> None:
                ckptstore.write_record(plan.final, plan.sha256, plan.url)  # (without it)
                report.done(f"removed the credential from the record of {plan.final}")

            changes.make(f"remove the credential from the record of {plan.final}", redact)
    downloads = [plan for plan in plans if plan.action == "download"]
    if downloads:
        changes.make(
            [f"download {p.model.label} from {redacted(p.url)} to {p.final}" for p in downloads],
            lambda: _download_all(session, downloads, jobs, accept_mismatch),
        )
    if reads:
        # startup: configs are read only when one is named
        from mmlab_bootstrap.checkpoints.weights import put_in_place

        put_in_place(session, settings, reads, weights)
    return counted.result(settings, plans)


def split_names(
    settings: Settings, names: Sequence[str], configs: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The models to download and the configs to read: a name of MMLAB_CHECKPOINTS (or --model)
    that is a config file of the workspace is read as a config too, and stays a model name
    when the model index has it."""
    # startup: configs are read only when one is named
    from mmlab_bootstrap.checkpoints.configread import ConfigError
    from mmlab_bootstrap.checkpoints.weights import config_path, not_a_config

    models: list[str] = []
    found_configs = list(configs)
    index: list[Model] | None = None
    for name in names:
        if name.endswith(".py") and config_path(settings, name) is None:
            odd = not_a_config(settings, name)
            if odd is not None:
                raise ConfigError(odd, "name a config file (.py)")
        if not name.endswith(".py") or config_path(settings, name) is None:
            models.append(name)
            continue
        found_configs.append(name)
        if index is None:
            index = read_index(settings.extension_path, settings.projects, [])
        try:
            find(index, name, settings.projects, "inv")
        except ModelError:
            continue
        models.append(name)
    return models, list(dict.fromkeys(found_configs))


def _download_all(
    session: Session, plans: Sequence[CheckpointPlan], jobs: int, accept: bool
) -> None:
    """Every download, `jobs` at a time; the others finish when one fails, then the error of
    the first that failed (in the order of the plans)."""
    # startup: requests, urllib3 and tqdm only when something is downloaded
    from mmlab_bootstrap.checkpoints.download import download_file
    from mmlab_bootstrap.checkpoints.http import Cancelled, Job, http_session
    from mmlab_bootstrap.checkpoints.progress import Downloads

    http = http_session(jobs)
    with Downloads(session.report, len(plans)) as shown_progress:

        def one(plan: CheckpointPlan) -> BaseException | None:
            """One download; its error is returned (the others go on), to be raised after
            the rest."""
            job = Job(plan.model.label, plan.url, plan.final, plan.model.hash_prefix, accept)
            try:
                done = download_file(http, job, shown_progress, pool.interrupted)
            except Cancelled:
                return None
            except BaseException as error:
                shown_progress.failed(job.label)
                return error
            odd = " (does not match its name: accepted)" if done.mismatch else ""
            resumed = (
                f", {human_size(done.received)} this run" if done.received != done.size else ""
            )
            shown_progress.finished(
                job.label,
                f"downloaded {job.label}: {plan.final} ({human_size(done.size)}{resumed},"
                f" sha256 {done.sha256[:16]}…){odd}",
            )
            return None

        # A Ctrl-C: every download stops at its next chunk (partials stay); one waiting on a
        # stalled server is left behind after STOP_GRACE seconds (the partial file is whole up
        # to its last write, and the next run resumes it).
        pool = WorkPool(one, jobs, grace=STOP_GRACE, name="download")
        ended = pool.run(plans)
    http.close()
    errors = [error for _, error in ended if error is not None]
    if errors:
        raise errors[0]


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

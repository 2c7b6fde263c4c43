"""`fetch-checkpoints`'s planner: every named model found in the sub-projects' model index
and every weight the named configs load (`weights`), each checked against what storage holds
(`plan_one`); it looks and says what it finds, and returns what to do (`Planned`)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.checkpoints.index import (
    Model,
    ModelError,
    final_path,
    find,
    read_index,
    source_url,
)
from mmlab_bootstrap.errors import redacted, shown
from mmlab_bootstrap.output import Reporter
from mmlab_bootstrap.run import Session
from mmlab_bootstrap.settings import CHECKPOINTS, CHECKPOINTS_PATH, Settings, plan_layout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mmlab_bootstrap.checkpoints.configread import ConfigRead
    from mmlab_bootstrap.checkpoints.weights import Weight


@dataclass(frozen=True)
class CheckpointPlan:
    """One model's checkpoint: where it comes from, where it goes, and what to do."""

    model: Model
    url: str
    final: Path
    action: str  # "none", "record" (verified here, record it), "redact" or "download"
    sha256: str = ""  # for "record": the hash just computed
    mismatch: bool = False


@dataclass(frozen=True)
class Planned:
    """What `fetch-checkpoints` does: the checkpoints (`plans`), the configs read and the
    place of each weight they load (for `weights.put_in_place`)."""

    plans: list[CheckpointPlan]
    reads: list[ConfigRead]
    weights: list[Weight]


def plan_checkpoints(
    session: Session,
    settings: Settings,
    names: Sequence[str],
    configs: Sequence[str],
    *,
    verify: bool,
    accept: bool,
    interpreter: Callable[[Settings], str | None] | None,
) -> Planned:
    """The plan of every model `names` (else MMLAB_CHECKPOINTS) names and of every weight
    the configs load (read by the sub-project's loader in the training interpreter
    `interpreter` gives for the settings, when it gives one); a model not found or a file in
    place that does not match is refused before anything changes."""
    # startup: configs are read only when one is named (--config, a .py in MMLAB_CHECKPOINTS)
    from mmlab_bootstrap.checkpoints.weights import plan_weights, read_configs

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
    plans = [plan_one(settings, m, verify=verify, accept=accept) for m in models]
    hub: dict[Path, CheckpointPlan] = {}
    for weight in weights:
        if weight.state == "hub" and weight.model and weight.final and weight.final not in hub:
            hub[weight.final] = plan_one(
                settings,
                weight.model,
                verify=verify,
                accept=accept,
                final=weight.final,
                url=source_url(settings, weight.url),
            )
    plans += hub.values()
    for plan in plans:
        for text in ckptstore.odd_files(plan.final):
            report.warn(text)
    return Planned(plans, reads, weights)


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

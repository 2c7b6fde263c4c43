"""Every weight a config loads, put where training reads it (`fetch-checkpoints --config`).

- A weight named by URL or by an `open-mmlab://`, `torchvision://` or `mmcls://` name (mmcv's
  tables in the workspace's mmcv checkout give its URL) is what mmcv hands to torch's
  `load_url`: it goes into torch's cache, `$TORCH_HOME/hub/checkpoints/<file name of the URL>`
  (TORCH_HOME is MMLAB_TORCH_HOME, exported by `.env`), downloaded, verified and recorded as
  model-zoo checkpoints are.
- A `load_from` (or `pretrained`) path whose file name is a published checkpoint of the
  sub-projects' model index becomes a symlink to that verified checkpoint in storage (downloaded
  first when it is not there): never a second copy. Only paths in the workspace or the storage
  roots are written; a file or link of someone else's at the path is left as it is.
- What cannot be put in place (a local file no index publishes, a path relative to where
  training runs, a value the static reader could not work out) is named.

Planning reads only (no network, no hashing beyond what `plan_one` does for a file without a
record), so `status` uses the same plan to say what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.checkpoints.configcache import load_cached
from mmlab_bootstrap.checkpoints.configload import Loaded
from mmlab_bootstrap.checkpoints.configread import ConfigError, ConfigRead, Unresolved, read_config
from mmlab_bootstrap.checkpoints.configvars import config_environment, unknown_variables
from mmlab_bootstrap.checkpoints.index import Model, final_path, hash_prefix, read_index
from mmlab_bootstrap.checkpoints.modelzoo import Zoo, read_zoo, url_file_name
from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import kind, make_folders
from mmlab_bootstrap.output import some_names
from mmlab_bootstrap.run import Session
from mmlab_bootstrap.settings import Settings

HUB = "hub"  # the label's project part for a weight of torch's cache


@dataclass(frozen=True)
class Weight:
    """One weight of one config and what it needs.

    `state`: `hub` (a file of torch's cache: `model` is its stand-in model, `final` the file),
    `link` (`path` to become a link to `final`, the checkpoint of `model` in storage),
    `skip` (nothing to do, `note` says why) or `problem` (`note` says what is wrong)."""

    config: str
    key: str
    name: str  # as the config gives it
    state: str
    note: str = ""
    url: str = ""
    model: Model | None = None
    final: Path | None = None
    path: Path | None = None

    @property
    def where(self) -> str:
        return f"{self.config} {self.key}"


def config_path(settings: Settings, text: str) -> Path | None:
    """The config file `text` names: absolute, or relative to MMLAB_EXTENSION_PATH, or
    `project:path` (relative to that sub-project, as MMLAB_CHECKPOINTS names configs);
    None when there is no such file."""
    for candidate in _candidates(settings, text):
        if candidate.suffix == ".py" and candidate.is_file():
            return candidate
    return None


def _candidates(settings: Settings, text: str) -> list[Path]:
    project, _, rest = text.rpartition(":")
    if project in settings.projects and rest:
        return [settings.extension_path / project / rest]
    if os.path.isabs(text):
        return [Path(text)]
    candidates = [settings.extension_path / text]
    return candidates + [settings.extension_path / p / text for p in settings.projects]


def not_a_config(settings: Settings, text: str) -> str | None:
    """What is at the first place `text` may name that is there but not a regular file."""
    for candidate in _candidates(settings, text):
        if candidate.suffix == ".py" and os.path.lexists(candidate):
            try:
                what = kind(os.stat(candidate).st_mode)
            except OSError as error:
                what = f"unreadable ({error.strerror or error})"
            return f"the config {shown(str(candidate))} is {what}, not a regular file"
    return None


def read_configs(
    settings: Settings,
    configs: Sequence[str],
    program: str,
    *,
    python: str | None = None,
    warn: Callable[[str], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> list[ConfigRead]:
    """Each named config (ConfigError when one is missing or refused): loaded by the
    sub-project's own loader in the training interpreter `python` when there is one, else (or
    when it fails: `warn` gets one line saying why) read statically."""
    named: list[tuple[str, Path]] = []
    for text in configs:
        path = config_path(settings, text)
        odd = not_a_config(settings, text) if path is None else None
        if odd is not None:
            raise ConfigError(odd, "name a config file (.py)")
        if path is None:
            raise ConfigError(
                f"there is no config {shown(text)} (relative to MMLAB_EXTENSION_PATH"
                f" {shown(str(settings.extension_path))}, or project:path, or absolute)",
                f"name a config file, e.g. {program} fetch-checkpoints --config"
                " mmdetection3d/configs/pointpillars/"
                "hv_pointpillars_secfpn_6x8_160e_kitti-3d-car.py",
            )
        named.append((text, path))
    read_one = config_reader(settings, named, python, warn, say)
    return [read_one(text, path) for text, path in named]


def config_reader(
    settings: Settings,
    named: Sequence[tuple[str, Path]],
    python: str | None,
    warn: Callable[[str], None] | None,
    say: Callable[[str], None] | None,
) -> Callable[[str, Path], ConfigRead]:
    """How each of the `named` configs is read: the loader's answer (at most one run of
    `python` for all of them; none for those whose answer `configcache` kept and still holds)
    where it has one, else the static reader (ConfigError when it refuses the file); each
    fallback said once through `warn`."""
    environment = config_environment(settings, os.environ.items())
    loaded: Loaded | None = None
    if python is not None and named:
        paths = list(dict.fromkeys(Path(os.path.abspath(path)) for _, path in named))
        loaded = load_cached(python, paths, environment, say, settings.root)
        if loaded.refused and warn is not None:
            warn(
                f"read the configs statically: the training interpreter {python}: {loaded.refused}"
            )

    def read_one(text: str, path: Path) -> ConfigRead:
        absolute = Path(os.path.abspath(path))
        read = loaded.reads.get(absolute) if loaded is not None else None
        if read is None:
            why = ""
            if loaded is not None:
                why = loaded.refused or f"{loaded.loader} could not load it"
                failed = loaded.failed.get(absolute)
                if failed is not None:
                    why = f"{loaded.loader} in {python} could not load it: {failed}"
                    if warn is not None:  # (before the static reader's error, if it has one)
                        warn(f"read {text} statically: {why}")
            read = read_config(path, environment)
            if why:
                read.reader = f"the static reader ({why})"
        read.path = Path(text)
        return read

    return read_one


def plan_weights(
    settings: Settings, reads: Sequence[ConfigRead], models: Sequence[Model]
) -> list[Weight]:
    """What each weight of each config needs (reads only)."""
    zoo: Zoo | None = None
    planned: list[Weight] = []
    seen: set[tuple[str, str]] = set()
    for read in reads:
        label = str(read.path)
        for ref in read.weights:
            value = ref.value
            if isinstance(value, Unresolved):
                planned.append(
                    Weight(label, ref.key, value.text, "problem", f"not worked out: {value.why}")
                )
                continue
            if (ref.key, value) in seen and not value.startswith(("/", ".")):
                continue
            seen.add((ref.key, value))
            if value.startswith(("open-mmlab://", "torchvision://", "mmcls://")):
                zoo = zoo or read_zoo(settings.extension_path / "mmcv")
                url, why = zoo.url(value)
                if url is None:
                    planned.append(Weight(label, ref.key, value, "problem", why))
                    continue
                planned.append(_hub(settings, label, ref.key, value, url))
            elif value.startswith(("http://", "https://")):
                planned.append(_hub(settings, label, ref.key, value, value))
            else:
                planned.append(_local(settings, label, ref.key, value, models))
    return planned


def _hub(settings: Settings, config: str, key: str, name: str, url: str) -> Weight:
    file_name = url_file_name(url)
    problem = ckptstore.name_problem(file_name)
    if problem is not None:
        return Weight(config, key, name, "problem", f"the file name of {shown(url)} {problem}")
    model = Model(HUB, file_name, config, url)
    final = settings.torch_home / "hub" / "checkpoints" / file_name
    return Weight(config, key, name, "hub", url=url, model=model, final=final)


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether `path`, with every symlink on the way followed, lies in one of the roots (so a
    link in the workspace to elsewhere never lets a config have a file written there)."""
    real = Path(os.path.realpath(path))
    for root in roots:
        form = Path(os.path.realpath(root))
        if real == form or form in real.parents:
            return True
    return False


def _local(
    settings: Settings, config: str, key: str, value: str, models: Sequence[Model]
) -> Weight:
    if not os.path.isabs(value):
        return Weight(
            config,
            key,
            value,
            "skip",
            "a path relative to where training runs (a checkpoint of your own run); not downloaded",
        )
    path = Path(os.path.normpath(value))
    named = [m for m in models if m.file_name == path.name]
    in_path = [m for m in named if m.project in path.parts]
    model: Model | None = (in_path or named or [None])[0]  # type: ignore[list-item]
    if model is None:
        if os.path.lexists(path):
            return Weight(config, key, value, "skip", "in place (a file of yours)", path=path)
        return Weight(
            config,
            key,
            value,
            "problem",
            f"missing, and no model of the sub-projects' index publishes {shown(path.name)}",
            path=path,
        )

    final = final_path(settings, model)
    roots = (settings.extension_path, settings.checkpoints_path, settings.torch_home)
    weight = Weight(config, key, value, "link", model=model, final=final, path=path)
    if os.path.realpath(path) == os.path.realpath(final):
        return weight  # the checkpoint itself (through the project's checkpoints link)
    if not _inside(path.parent, roots):
        state = "skip" if os.path.lexists(path) else "problem"
        return Weight(
            config,
            key,
            value,
            state,
            "outside the workspace and the storage roots: not written"
            + (" (a file is there)" if state == "skip" else ""),
            model=model,
            path=path,
        )
    return weight


def link_state(weight: Weight) -> str:
    """For a `link` weight: `in place` (the path is the checkpoint or links to it),
    `missing` (nothing at the path) or `other` (a file or link of someone else's)."""
    assert weight.path is not None and weight.final is not None
    if os.path.realpath(weight.path) == os.path.realpath(weight.final):
        return "in place"
    if not os.path.lexists(weight.path):
        return "missing"
    return "other"


def link_target(weight: Weight) -> str:
    """What the link holds: relative when it lies in the same storage root as the checkpoint
    (so moving the storage root keeps it), else absolute."""
    assert weight.path is not None and weight.final is not None
    parent = os.path.realpath(weight.path.parent)
    final = os.path.realpath(weight.final)
    root = os.path.realpath(weight.final.parent.parent.parent)
    if parent == root or parent.startswith(root + os.sep):
        return os.path.relpath(final, parent)
    return final


def hub_prefix(weight: Weight) -> str | None:
    assert weight.final is not None
    return hash_prefix(weight.final.name)


def states(weights: Sequence[Weight], models_state: Mapping[Path, str]) -> list[str]:
    """One line per weight not in place (for status): `<config> <key>: <why>`."""
    lines: list[str] = []
    for weight in weights:
        if weight.state == "problem":
            lines.append(f"{weight.where}: {shown(weight.name)} {weight.note}")
        elif weight.state == "hub" and weight.final is not None:
            state = (
                models_state.get(weight.final)
                or ckptstore.check_state(weight.final, hub_prefix(weight))[0]
            )
            if state != "verified":
                lines.append(f"{weight.where}: {weight.name} is {state} in {weight.final}")
        elif weight.state == "link" and weight.final is not None:
            prefix = weight.model.hash_prefix if weight.model is not None else None
            linked = ckptstore.check_state(weight.final, prefix)[0]
            if linked != "verified":
                lines.append(f"{weight.where}: {weight.final} is {linked}")
            elif link_state(weight) != "in place":
                lines.append(f"{weight.where}: {weight.path} does not link to {weight.final}")
    return lines


class WeightsError(ConfigError):
    """Weights of the named configs that could not be put in place."""


def put_in_place(
    session: Session, settings: Settings, reads: Sequence[ConfigRead], weights: Sequence[Weight]
) -> None:
    """After the downloads: each `load_from` link made, each problem named; an error at the
    end when a weight is not in place (the rest is done by then)."""

    report, changes = session.report, session.changes
    for read in reads:
        for text in read.problems:
            report.warn(text)
        unknown = unknown_variables(read.variables, settings)
        if unknown:
            report.warn(
                f"{read.path} reads {some_names(unknown)}, which .env does not set: set them in"
                " .env (your own lines are kept) before training"
            )
    problems = [w for w in weights if w.state == "problem"]
    for weight in weights:
        if weight.state == "skip":
            report.info(f"{weight.where}: {shown(weight.name)} {weight.note}")
        if weight.state != "link":
            continue
        state = link_state(weight)
        if state == "in place":
            report.unchanged(f"up to date: {weight.where} ({weight.path})")
        elif state == "other":
            report.warn(
                f"{weight.where}: {shown(str(weight.path))} is there and is not a link to"
                f" {weight.final}; left as it is"
            )
        else:

            def link(weight: Weight = weight) -> None:
                assert weight.path is not None
                make_folders(weight.path.parent)
                os.symlink(link_target(weight), weight.path)
                report.done(f"linked {weight.path} -> {link_target(weight)} ({weight.where})")

            changes.make(f"link {weight.path} -> {weight.final} ({weight.where})", link)
    for weight in problems:
        report.warn(f"{weight.where}: {shown(weight.name)} {weight.note}")
    if problems:
        raise WeightsError(
            f"{len(problems)} weight(s) of the configs cannot be put in place (named above)",
            "set what a config reads in .env (inv env names the known ones), or download the"
            " checkpoint by hand to the path the config names",
        )


def configs_status(
    settings: Settings,
    python: str | None = None,
    say: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, object]], list[str]]:
    """Each config MMLAB_CHECKPOINTS names: whether every weight it loads is in place (no
    network, no hashing), the variables it reads and those `.env` does not set, and which
    reader read it (the training interpreter `python`'s loader when given, else static:
    `warn` gets why, as fetch-checkpoints says it); and the problems, one line each."""

    found: list[dict[str, object]] = []
    problems: list[str] = []
    names = [n for n in settings.checkpoint_models if n.endswith(".py")]
    paths = {n: config_path(settings, n) for n in names}
    named = [(n, p) for n, p in paths.items() if p is not None]
    if not named:
        return found, problems
    read_one = config_reader(settings, named, python, warn, say)
    models = read_index(settings.extension_path, settings.projects, [])
    for name, path in named:
        entry: dict[str, object] = {"config": name, "path": str(path)}
        try:
            read = read_one(name, path)
        except ConfigError as error:
            entry.update(ready=False, missing=[error.message], variables=[], unknown=[], reader="")
            problems.append(f"config {name}: {error.message}")
            found.append(entry)
            continue
        missing = states(plan_weights(settings, [read], models), {})
        required = [e.name for e in read.env if not e.has_default]
        unknown = unknown_variables(required, settings)
        entry.update(
            ready=not missing and not unknown,
            missing=missing,
            variables=read.variables,
            unknown=unknown,
            reader=read.reader,
        )
        problems += [f"config {line}" for line in missing]
        if unknown:
            problems.append(f"config {name} reads {some_names(unknown)}, which .env does not set")
        found.append(entry)
    return found, problems

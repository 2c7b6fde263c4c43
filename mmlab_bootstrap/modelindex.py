"""The models a sub-project publishes: its `model-index.yml`, which imports
`configs/*/metafile.yml`, read from the checked-out sub-project (so the checkpoints match the
code that is there). No package install, no network."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .errors import BootstrapError, close_match, shown

INDEX = "model-index.yml"
# OpenMMLab checkpoint names end in the first 8 (or more) hex digits of the file's sha256:
# `…_bbox_mAP-0.378_20200504_180032-c5925ee5.pth`. Anchored at the end, so `-0.378` never counts.
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8,64})\.pth\Z")


class ModelError(BootstrapError):
    """A model name that cannot be fetched (unknown, ambiguous, without weights), or an index
    that cannot be read."""


@dataclass(frozen=True)
class Model:
    """One entry of a metafile's `Models` list."""

    project: str
    name: str
    config: str
    weights: str | None  # the checkpoint's URL; some models publish none
    collection: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.project}:{self.name}"

    @property
    def file_name(self) -> str | None:
        """The checkpoint's file name: the last part of its URL (None: no file URL)."""
        if not self.weights:
            return None
        name = unquote(urlsplit(self.weights).path.rsplit("/", 1)[-1])
        return name if name not in ("", ".", "..") and "/" not in name else None

    @property
    def hash_prefix(self) -> str | None:
        """The sha256 prefix the file name promises (None: it promises none)."""
        return hash_prefix(self.file_name or "")


def hash_prefix(file_name: str) -> str | None:
    """The hex digits of `-<hex>.pth` at the very end of a checkpoint's file name."""
    found = _HASH_SUFFIX.search(file_name)
    return found.group(1) if found else None


def _load(path: Path) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when it is there: fast
    try:
        with open(path, "rb") as handle:
            return yaml.load(handle, Loader=loader)
    except yaml.YAMLError as error:
        raise ModelError(
            f"{shown(str(path))} is not valid YAML: {str(error).splitlines()[0]}",
            f"check the sub-project's checkout (git -C '{path.parent}' status)",
        ) from None


def read_project(project_dir: Path, project: str) -> list[Model]:
    """Every model the sub-project at `project_dir` lists (none when it has no index).
    An import the index names but the checkout lacks is skipped (sparse or older checkouts)."""
    index = project_dir / INDEX
    if not index.is_file():
        return []
    document = _load(index)
    imports = document.get("Import", []) if isinstance(document, dict) else []
    models: list[Model] = []
    models += _models(document, project)
    for entry in imports if isinstance(imports, list) else []:
        if not isinstance(entry, str) or entry.startswith("/") or ".." in entry.split("/"):
            continue
        path = project_dir / entry
        if path.is_file():
            models += _models(_load(path), project)
    return models


def _models(document: Any, project: str) -> list[Model]:
    entries = document.get("Models") if isinstance(document, dict) else None
    found: list[Model] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("Name"), str):
            continue
        weights = entry.get("Weights")
        alias = entry.get("Alias")
        aliases = [alias] if isinstance(alias, str) else alias if isinstance(alias, list) else []
        found.append(
            Model(
                project=project,
                name=entry["Name"],
                config=str(entry.get("Config") or ""),
                weights=weights.strip() if isinstance(weights, str) and weights.strip() else None,
                collection=str(entry.get("In Collection") or ""),
                aliases=tuple(str(a) for a in aliases),
            )
        )
    return found


def read_index(extension: Path, projects: Iterable[str]) -> list[Model]:
    """The models of every named sub-project that is checked out under `extension`."""
    models: list[Model] = []
    for project in projects:
        models += read_project(extension / project, project)
    return models


def _config_key(text: str, project: str) -> str:
    """A config path as compared: without `./`, the project's folder or `configs/` in front
    (some metafiles leave `configs/` out)."""
    text = text.removeprefix("./").removeprefix(f"{project}/")
    return text.removeprefix("configs/")


def _matches(model: Model, wanted: str) -> bool:
    if wanted in (model.name, *model.aliases):
        return True
    return bool(model.config) and (
        _config_key(wanted, model.project) == _config_key(model.config, model.project)
    )


def find(models: Sequence[Model], wanted: str, projects: Sequence[str], program: str) -> Model:
    """The one model `wanted` names: a metafile `Name` (or `Alias`), or a config path, with
    an optional `project:` in front; ModelError when it names none or several."""
    project, _, name = wanted.rpartition(":")
    if project and project not in projects:
        meant = close_match(project, projects)
        raise ModelError(
            f"{shown(wanted)} names the project {shown(project)}, which is not in MMLAB_PROJECTS"
            f" ({' '.join(projects)})",
            f"did you mean {program} fetch-checkpoints --model {shlex.quote(f'{meant}:{name}')}?"
            if meant is not None
            else f"name one of them, or add it: {program} env --projects '{' '.join(projects)}"
            f" {project}'",
        )
    found = [m for m in models if (not project or m.project == project) and _matches(m, name)]
    exact = [m for m in found if m.name == name]
    found = exact or found
    if not found:
        eligible = [m for m in models if not project or m.project == project]
        names = [n for m in eligible for n in (m.name, *m.aliases)]
        meant = close_match(name, names)
        raise ModelError(
            f"no model named {shown(wanted)} in the model index of"
            f" {', '.join(projects) or 'no project'}",
            f"did you mean {program} fetch-checkpoints --model"
            f" {shlex.quote(f'{project}:{meant}' if project else meant)}?"
            if meant is not None
            else f"list the models: {program} fetch-checkpoints --search '{name[:20]}'",
        )
    if len({m.project for m in found}) > 1:
        raise ModelError(
            f"{shown(wanted)} is a model of several projects:"
            f" {', '.join(sorted({m.project for m in found}))}",
            f"name one as project:name, e.g. {program} fetch-checkpoints --model {found[0].label}",
        )
    return found[0]


def search(models: Sequence[Model], text: str) -> list[Model]:
    """The models whose name, project, config or collection holds `text` (any case)."""
    needle = text.lower()
    return [
        m
        for m in models
        if needle in " ".join((m.label, m.config, m.collection, *m.aliases)).lower()
    ]

"""The models a sub-project publishes: its `model-index.yml`, which imports
`configs/*/metafile.yml`, read from the checked-out sub-project (so the checkpoints match the
code that is there). No package install, no network.

A metafile comes from outside: each is read as a regular file of at most METAFILE_LIMIT bytes,
with no YAML aliases or anchors (a few hundred bytes of them expand without bound) and no
deeper nesting than MAX_DEPTH; a project's index reads at most MAX_METAFILES of them and keeps
at most MAX_MODELS models. What is refused is named in a warning and the rest is read. A field
of the wrong type (a list where a name goes) counts as absent, never as its `str()`."""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from mmlab_bootstrap.checkpoints.store import NAME_MAX, name_problem
from mmlab_bootstrap.errors import BootstrapError, close_match, shown
from mmlab_bootstrap.fs import FileRefused, read_regular
from mmlab_bootstrap.settings import CHECKPOINTS_PATH, Settings, storage_folder

INDEX = "model-index.yml"
METAFILE_LIMIT = 1 << 20  # bytes; the largest real metafile is about 12 KiB
MAX_METAFILES = 1000  # per project; mmdetection3d has about 30
MAX_MODELS = 20000  # per project; mmdetection has about 900
MAX_DEPTH = 64  # nesting of YAML collections; real metafiles nest 6 deep
# OpenMMLab checkpoint names end in the first 8 (or more) hex digits of the file's sha256:
# `…_bbox_mAP-0.378_20200504_180032-c5925ee5.pth`. Anchored at the end, so `-0.378` never counts.
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8,64})\.pth\Z")


class ModelError(BootstrapError):
    """A model name that cannot be downloaded (unknown, ambiguous, without weights), or an index
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
        """The checkpoint's file name: the last part of its URL (None: no file URL, or one
        whose name cannot be a checkpoint's file name; `file_problem` says why)."""
        return _file_name(self.weights).name

    @property
    def file_problem(self) -> str:
        """Why the model has no `file_name`, after its label in a message ("" when it has
        one): it "publishes no checkpoint file (…)" (no Weights, no URL, or a name that cannot
        be a file's) or "publishes no usable checkpoint file name (…)" (one this tool refuses)."""
        found = _file_name(self.weights)
        return "" if found.name else f"{found.headline} ({found.reason})"

    @property
    def name_refused(self) -> bool:
        """Whether the model publishes a file whose name this tool refuses (see `file_problem`)."""
        return _file_name(self.weights).headline == NO_USABLE_NAME

    @property
    def hash_prefix(self) -> str | None:
        """The sha256 prefix the file name promises (None: it promises none)."""
        return hash_prefix(self.file_name or "")


NO_FILE = "publishes no checkpoint file"
NO_USABLE_NAME = "publishes no usable checkpoint file name"


class _Found(NamedTuple):
    name: str | None
    headline: str = ""  # NO_FILE or NO_USABLE_NAME
    reason: str = ""


def _file_name(weights: str | None) -> _Found:
    """The file name a Weights URL gives, or why it gives none: no URL, or a name that cannot
    be a file's (NO_FILE), or one this tool refuses (NO_USABLE_NAME; see `name_problem`)."""
    if not weights:
        return _Found(None, NO_FILE, "no Weights")
    said = f"Weights: {shown(weights)}"
    if any(ord(c) <= 0x20 or 0x7F <= ord(c) < 0xA0 for c in weights):
        return _Found(None, NO_FILE, f"{said} holds a space or control character")
    try:
        parts = urlsplit(weights)
    except ValueError:
        return _Found(None, NO_FILE, f"{said} is not a URL")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _Found(None, NO_FILE, f"{said} is not an http(s) URL")
    name = unquote(parts.path.rsplit("/", 1)[-1], errors="surrogateescape")
    problem = name_problem(name)
    if problem is None:
        return _Found(name)
    impossible = name in ("", ".", "..") or "/" in name or "\0" in name
    impossible |= len(name.encode("utf-8", "surrogateescape")) > NAME_MAX
    headline = NO_FILE if impossible else NO_USABLE_NAME
    return _Found(None, headline, f"{said}: its file name {shown(name)} {problem}")


def hash_prefix(file_name: str) -> str | None:
    """The hex digits of `-<hex>.pth` at the very end of a checkpoint's file name."""
    found = _HASH_SUFFIX.search(file_name)
    return found.group(1) if found else None


def _load(path: Path, skipped: list[str]) -> Any:
    """The YAML document at `path`; None (and a line in `skipped`) when it is refused."""
    # startup: PyYAML only when metafiles are read
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when it is there: fast
    try:
        data = read_regular(path, "", limit=METAFILE_LIMIT)
        if data is None:
            return None
        _check_events(yaml.parse(data, Loader=loader))
        return yaml.load(data, Loader=loader)
    except FileRefused as error:
        skipped.append(f"{error.message}; its models are left out")
    except OSError as error:
        skipped.append(
            f"{shown(str(path))} cannot be read ({error.strerror}); its models are left out"
        )
    except (yaml.YAMLError, _Refused, *_CONSTRUCTING) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        skipped.append(f"{shown(str(path))} is refused: {first}; its models are left out")
    return None


# What PyYAML's safe constructors raise, besides YAMLError, for a value that is not what its
# tag says: an int of over 4300 digits, `2020-13-45`, `!!int x`, `!!timestamp 99999-01-01`.
_CONSTRUCTING = (ValueError, TypeError, AttributeError, OverflowError)


class _Refused(Exception):
    """A YAML document this tool does not load (aliases, anchors, deep nesting)."""


def _check_events(events: Iterable[Any]) -> None:
    """Refuse aliases and anchors (an alias bomb expands a few hundred bytes without bound)
    and nesting deeper than MAX_DEPTH, from the parser's events: one pass, nothing built."""
    # startup: PyYAML only when metafiles are read
    import yaml

    depth = 0
    for event in events:
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused("it uses YAML aliases or anchors, which this tool does not read")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(f"it nests deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def read_project(project_dir: Path, project: str, skipped: list[str] | None = None) -> list[Model]:
    """Every model the sub-project at `project_dir` lists (none when it has no index).
    An import the index names but the checkout lacks is skipped (sparse or older checkouts);
    a metafile that is refused is named in `skipped` and the others are read."""
    skipped = [] if skipped is None else skipped
    index = project_dir / INDEX
    if not index.is_file():
        return []
    document = _load(index, skipped)
    imports = document.get("Import", []) if isinstance(document, dict) else []
    models: list[Model] = []
    models += _models(document, project)
    entries = (
        list(dict.fromkeys(e for e in imports if isinstance(e, str)))
        if isinstance(imports, list)
        else []
    )
    if len(entries) > MAX_METAFILES:
        skipped.append(
            f"{shown(str(index))} imports {len(entries)} metafiles; only the first"
            f" {MAX_METAFILES} are read"
        )
    for entry in entries[:MAX_METAFILES]:
        if len(models) > MAX_MODELS:
            break
        if entry.startswith("/") or ".." in entry.split("/"):
            continue
        path = project_dir / entry
        if _is_file(path):
            models += _models(_load(path, skipped), project)
    if len(models) > MAX_MODELS:
        skipped.append(
            f"{shown(str(index))} lists more than {MAX_MODELS} models; only the first"
            f" {MAX_MODELS} are read"
        )
        del models[MAX_MODELS:]
    return models


def _is_file(path: Path) -> bool:
    """Whether `path` is a regular file (after links); False for a name that cannot be one
    (a NUL, too long)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _text(value: Any) -> str:
    """A field that must be text: anything else (a number, a list, a mapping) counts as
    absent, never as its `str()`."""
    return value if isinstance(value, str) else ""


def _models(document: Any, project: str) -> list[Model]:
    entries = document.get("Models") if isinstance(document, dict) else None
    found: list[Model] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not _text(entry.get("Name")):
            continue
        weights = _text(entry.get("Weights")).strip()
        alias = entry.get("Alias")
        aliases = [alias] if isinstance(alias, str) else alias if isinstance(alias, list) else []
        found.append(
            Model(
                project=project,
                name=entry["Name"],
                config=_text(entry.get("Config")),
                weights=weights or None,
                collection=_text(entry.get("In Collection")),
                aliases=tuple(a for a in aliases if isinstance(a, str)),
            )
        )
    return found


def read_index(
    extension: Path, projects: Iterable[str], skipped: list[str] | None = None
) -> list[Model]:
    """The models of every named sub-project that is checked out under `extension`; what
    is refused is named in `skipped`."""
    models: list[Model] = []
    for project in projects:
        models += read_project(extension / project, project, skipped)
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


def final_path(settings: Settings, model: Model) -> Path:
    """Where a model's checkpoint goes: `<MMLAB_CHECKPOINTS_PATH>/<project>/checkpoints/<file>`."""
    assert model.file_name is not None
    return storage_folder(settings, CHECKPOINTS_PATH, model.project) / model.file_name


OPENMMLAB_HOSTS = ("https://download.openmmlab.com/", "http://download.openmmlab.com/")


def source_url(settings: Settings, url: str) -> str:
    """Where to download `url` from: MMLAB_CHECKPOINT_MIRROR, when set, serves
    download.openmmlab.com's files at `<mirror><path>` and every other host's at
    `<mirror><host>/<path>` (e.g. `<mirror>download.pytorch.org/models/resnet50-….pth`)."""
    mirror = settings.checkpoint_mirror
    if not mirror:
        return url
    for host in OPENMMLAB_HOSTS:
        if url.startswith(host):
            return mirror + url[len(host) :]
    scheme, _, rest = url.partition("://")
    return mirror + rest if scheme in ("http", "https") else url

"""What an OpenMMLab config needs, read statically: its `_base_` chain, the weights it loads
(`load_from`, `pretrained`, `init_cfg=dict(type='Pretrained', checkpoint=...)`) and the
environment variables it reads. Nothing of a config is ever executed in this process.

A config is Python, so it is parsed with `ast` and only a small safe subset is evaluated:
constants, lists, tuples, dicts (`{...}` and `dict(...)`), names bound earlier at the top
level, `+` on strings and lists, f-strings, `os.path.join`, and `os.environ[...]`,
`os.environ.get(...)`, `os.getenv(...)` with the values the caller knows. Anything else
becomes an `Unresolved` value that keeps its source text, so the caller can say which weight
could not be worked out and why, instead of guessing. Bases are merged as mmcv's `Config`
merges them (a dict merged key by key unless it says `_delete_=True`, the rest replaced).

Bounded: at most `MAX_FILES` files, `MAX_DEPTH` levels of bases, `FILE_LIMIT` bytes each
(read through `fsutil.read_regular`: regular files only), evaluated strings and lists of at
most `VALUE_LIMIT` characters or items, and nesting of at most `NEST_LIMIT`.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import FileRefused, read_regular

FILE_LIMIT = 1 << 20  # bytes per config file; real ones are under 20 KiB
MAX_FILES = 64  # files in one config's `_base_` tree; real ones have under 10
MAX_DEPTH = 16  # levels of `_base_`; real ones have 2
VALUE_LIMIT = 1 << 16  # characters of a string, items of a list, made while evaluating
NEST_LIMIT = 64  # nesting of expressions evaluated and of the values walked
WEIGHT_SCHEMES = ("open-mmlab://", "torchvision://", "mmcls://", "http://", "https://")


class ConfigError(BootstrapError):
    """A config that cannot be read (missing, not a file, too large, not Python)."""


@dataclass(frozen=True)
class Unresolved:
    """A value the static reader does not work out: its source text and why."""

    text: str
    why: str


@dataclass(frozen=True)
class EnvRead:
    """An environment variable a config reads, where, and whether it has a default there."""

    name: str
    file: Path
    line: int
    has_default: bool


@dataclass(frozen=True)
class WeightRef:
    """A weight the config loads: where in the merged config (`load_from`,
    `model.backbone.init_cfg.checkpoint`, ...) and its value (a str, or Unresolved)."""

    key: str
    value: str | Unresolved


@dataclass
class ConfigRead:
    """One config as read: the files of its `_base_` tree, the weights, the variables."""

    path: Path
    files: list[Path] = field(default_factory=list)
    weights: list[WeightRef] = field(default_factory=list)
    env: list[EnvRead] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reader: str = "the static reader"  # or the training interpreter's loader (`configload`)

    @property
    def variables(self) -> list[str]:
        """The names of the variables read, each once, in the order first read."""
        return list(dict.fromkeys(read.name for read in self.env))


def read_config(path: Path, known: Mapping[str, str]) -> ConfigRead:
    """Read the config at `path` and its bases; `known` holds the values of the environment
    variables the config may read (as the training run's shell would have them)."""
    found = ConfigRead(path)
    merged = _read_tree(path, known, found, depth=0, chain=())
    found.weights = list(_weights(merged))
    return found


def _read_tree(
    path: Path, known: Mapping[str, str], found: ConfigRead, depth: int, chain: tuple[Path, ...]
) -> dict[str, Any]:
    real = Path(os.path.realpath(path))
    if real in chain:
        raise ConfigError(
            f"{shown(str(path))} is its own base ({' -> '.join(p.name for p in (*chain, real))})",
            "remove the cycle from its _base_ list",
        )
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"{shown(str(found.path))} has more than {MAX_DEPTH} levels of _base_",
            "check its _base_ chain",
        )
    if len(found.files) >= MAX_FILES:
        raise ConfigError(
            f"{shown(str(found.path))} has more than {MAX_FILES} files in its _base_ tree",
            "check its _base_ lists",
        )
    found.files.append(path)
    own = _read_one(path, known, found)
    bases = own.pop("_base_", None)
    if bases is None:
        return own
    names = [bases] if isinstance(bases, str) else bases
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ConfigError(
            f"_base_ in {shown(str(path))} is not a file name or a list of them",
            "make it a string or a list of strings",
        )
    merged: dict[str, Any] = {}
    for name in names:
        if "::" in name:
            found.problems.append(
                f"{shown(str(path))}: the base {shown(name)} names another package's config"
                " (scope::path); not read"
            )
            continue
        if "://" in name:
            raise ConfigError(
                f"the base {shown(name)} of {shown(str(path))} is a URL: _base_ names files"
                " (relative to the config's folder, or absolute), as mmcv reads them",
                "put the base config beside the config and name its file",
            )
        base = (path.parent / name) if not os.path.isabs(name) else Path(name)
        if base.suffix != ".py":
            found.problems.append(
                f"{shown(str(path))}: the base {shown(name)} is not a .py config; not read"
            )
            continue
        for key, value in _read_tree(base, known, found, depth + 1, (*chain, real)).items():
            merged[key] = value  # (mmcv refuses a key in two bases; the later one is kept)
    return _merge(own, merged)


def _read_one(path: Path, known: Mapping[str, str], found: ConfigRead) -> dict[str, Any]:
    hint = "name a config file (.py) of the workspace"
    try:
        data = read_regular(path, hint, limit=FILE_LIMIT)
    except FileRefused as error:
        raise ConfigError(error.message, error.hint) from None
    except OSError as error:
        raise ConfigError(
            f"cannot read the config {shown(str(path))}: {error.strerror}", hint
        ) from None
    if data is None:
        raise ConfigError(f"there is no config at {shown(str(path))}", hint)
    try:
        tree = ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError) as error:
        raise ConfigError(
            f"{shown(str(path))} is not valid Python: {error}", "fix the config file"
        ) from None
    except (RecursionError, MemoryError):
        raise ConfigError(
            f"{shown(str(path))} nests too deeply to be read", "fix the config file"
        ) from None
    reader = _Module(path, known)
    names = reader.run(tree)
    found.env += _env_reads(tree, path, reader.os_names)
    return names


def _merge(child: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """`child` over `base`, as mmcv's Config merges a config into its bases."""
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            if value.get("_delete_") is True:
                merged[key] = {k: v for k, v in value.items() if k != "_delete_"}
            else:
                merged[key] = _merge(value, merged[key])
        else:
            merged[key] = value
    return merged


# --- the safe evaluator --------------------------------------------------------------------


class _Module:
    """Runs the top level of one config file over the safe subset."""

    def __init__(self, path: Path, known: Mapping[str, str]) -> None:
        self.path = path
        self.known = known
        self.names: dict[str, Any] = {}
        # how `os`, `os.path`, `os.environ` and `os.getenv` are spelled in this file
        self.os_names: dict[str, str] = {}

    def run(self, tree: ast.Module) -> dict[str, Any]:
        for statement in tree.body:
            self._statement(statement)
        return {
            k: v
            for k, v in self.names.items()
            if not k.startswith("__") and not isinstance(v, _OsName)
        }

    def _statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("os", "os.path"):
                    bound = alias.asname or alias.name.split(".")[0]
                    meaning = alias.name if alias.asname else "os"
                    self.os_names[bound] = meaning
                    self.names[bound] = _OsName(meaning)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if node.module == "os" and alias.name in ("path", "environ", "getenv"):
                    self.os_names[alias.asname or alias.name] = f"os.{alias.name}"
                    self.names[alias.asname or alias.name] = _OsName(f"os.{alias.name}")
                elif node.module == "os.path" and alias.name == "join":
                    self.os_names[alias.asname or alias.name] = "os.path.join"
                    self.names[alias.asname or alias.name] = _OsName("os.path.join")
                else:
                    self.names[alias.asname or alias.name] = Unresolved(
                        ast.unparse(node), "imported"
                    )
        elif isinstance(node, ast.Assign):
            value = self.value(node.value)
            for target in node.targets:
                self._bind(target, value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._bind(node.target, self.value(node.value))
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            joined = ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value)
            self._bind(node.target, self.value(ast.copy_location(joined, node)))
        elif isinstance(node, ast.Expr):
            return  # a docstring or a call whose result is not kept
        else:  # if / for / with / def / class ...: what they bind is not worked out
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                    self.names[inner.id] = Unresolved(
                        inner.id, f"bound in a {type(node).__name__.lower()} statement"
                    )

    def _bind(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.names[target.id] = value
        else:
            for inner in ast.walk(target):
                if isinstance(inner, ast.Name):
                    self.names[inner.id] = Unresolved(ast.unparse(target), "unpacked")

    def value(self, node: ast.expr, depth: int = 0) -> Any:
        if depth > NEST_LIMIT:
            return Unresolved("…", "nested too deeply")
        try:
            return self._value(node, depth + 1)
        except _Unsafe as unsafe:
            return Unresolved(_source(node), unsafe.why)

    def _value(self, node: ast.expr, depth: int) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str | int | float | bool) or node.value is None:
                return _capped(node.value)
            raise _Unsafe(f"a {type(node.value).__name__} constant")
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.value(item, depth) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            made: dict[Any, Any] = {}
            for key, item in zip(node.keys, node.values, strict=True):
                if key is None:
                    made.update(self._mapping(item, depth))
                else:
                    made[_key(self.value(key, depth))] = self.value(item, depth)
            return made
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            raise _Unsafe(f"the name {node.id} is not bound at the top level before")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.value(node.left, depth), self.value(node.right, depth)
            for side in (left, right):
                if isinstance(side, Unresolved):
                    raise _Unsafe(side.why)
            if type(left) is type(right) and isinstance(left, str | list | tuple):
                return _capped(left + right)
            raise _Unsafe("a + of values other than two strings or two lists")
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for part in node.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    parts.append(part.value)
                elif (
                    isinstance(part, ast.FormattedValue)
                    and part.format_spec is None
                    and part.conversion == -1
                ):
                    inner = self.value(part.value, depth)
                    if isinstance(inner, Unresolved):
                        raise _Unsafe(inner.why)
                    if not isinstance(inner, str | int) or isinstance(inner, bool):
                        raise _Unsafe("an f-string of a value other than a string or number")
                    parts.append(str(inner))
                else:
                    raise _Unsafe("an f-string with a format")
            return _capped("".join(parts))
        if isinstance(node, ast.Subscript):
            if self._spelled(node.value) == "os.environ":
                return self._environ(node.slice, None, depth, required=True)
            container, index = self.value(node.value, depth), self.value(node.slice, depth)
            if isinstance(container, dict) and not isinstance(index, Unresolved):
                try:
                    return container[_key(index)]
                except (KeyError, TypeError):
                    raise _Unsafe("a key that is not there") from None
            if isinstance(container, list | tuple) and type(index) is int:
                try:
                    return container[index]
                except IndexError:
                    raise _Unsafe("an index past the end") from None
            raise _Unsafe("a subscript of an unknown value")
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise _Unsafe(f"a {type(node).__name__} expression")

    def _mapping(self, node: ast.expr, depth: int) -> dict[Any, Any]:
        value = self.value(node, depth)
        if not isinstance(value, dict):
            raise _Unsafe("** of a value that is not a known dict")
        return value

    def _call(self, node: ast.Call, depth: int) -> Any:
        called = self._spelled(node.func)
        if called == "dict" and "dict" not in self.names:
            made: dict[Any, Any] = {}
            for argument in node.args:
                made.update(self._mapping(argument, depth))
            for keyword in node.keywords:
                if keyword.arg is None:
                    made.update(self._mapping(keyword.value, depth))
                else:
                    made[keyword.arg] = self.value(keyword.value, depth)
            return made
        if called == "os.path.join" and not node.keywords:
            parts = [self.value(argument, depth) for argument in node.args]
            if parts and all(isinstance(p, str) for p in parts):
                return _capped(os.path.join(*parts))
            raise _Unsafe("os.path.join of values other than strings")
        if called in ("os.environ.get", "os.getenv") and not node.keywords:
            if not node.args or len(node.args) > 2:
                raise _Unsafe(f"{called} with {len(node.args)} arguments")
            default = node.args[1] if len(node.args) == 2 else None
            return self._environ(node.args[0], default, depth, required=False)
        raise _Unsafe(f"a call of {called or _source(node.func)} (never run)")

    def _environ(
        self, name_node: ast.expr, default: ast.expr | None, depth: int, *, required: bool
    ) -> Any:
        name = self.value(name_node, depth)
        if not isinstance(name, str):
            raise _Unsafe("an environment variable whose name is not a known string")
        if name in self.known:
            return self.known[name]
        if default is not None:
            return self.value(default, depth)
        if required:
            raise _Unsafe(f"{name} is not set (training stops here with a KeyError)")
        return None

    def _spelled(self, node: ast.expr) -> str | None:
        """`os.environ.get` (as the config spells it through its own imports), `dict`, …"""
        if isinstance(node, ast.Name):
            return self.os_names.get(node.id, node.id if node.id == "dict" else None)
        if isinstance(node, ast.Attribute):
            inner = self._spelled(node.value)
            return None if inner is None or inner == "dict" else f"{inner}.{node.attr}"
        return None


@dataclass(frozen=True)
class _OsName:
    meaning: str


class _Unsafe(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _capped(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > VALUE_LIMIT:
        raise _Unsafe(f"a value of more than {VALUE_LIMIT} characters or items")
    return value


def _key(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise _Unsafe("a dict key that is not a constant")


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 200 else text[:199] + "…"


def _env_reads(tree: ast.Module, path: Path, os_names: Mapping[str, str]) -> list[EnvRead]:
    """Every `os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)` with a constant
    name anywhere in the file (read or not when training runs)."""

    def spelled(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return os_names.get(node.id)
        if isinstance(node, ast.Attribute):
            inner = spelled(node.value)
            return None if inner is None else f"{inner}.{node.attr}"
        return None

    found: list[EnvRead] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.expr):
            continue
        name_node: ast.expr | None = None
        has_default = False
        if isinstance(node, ast.Subscript) and spelled(node.value) == "os.environ":
            name_node = node.slice
        elif isinstance(node, ast.Call) and spelled(node.func) in ("os.environ.get", "os.getenv"):
            name_node = node.args[0] if node.args else None
            has_default = len(node.args) > 1
        if isinstance(name_node, ast.Constant) and isinstance(name_node.value, str):
            found.append(EnvRead(name_node.value, path, node.lineno, has_default))
    return sorted(found, key=lambda read: read.line)


# --- the weights of a merged config --------------------------------------------------------


def _weights(merged: Mapping[str, Any]) -> Iterator[WeightRef]:
    seen: set[tuple[str, str]] = set()
    load_from = merged.get("load_from")
    if load_from is not None:
        yield WeightRef("load_from", _weight_value(load_from))
    for key, value in _walk(merged, "", 0):
        marker = (key, repr(value))
        if marker not in seen:
            seen.add(marker)
            yield WeightRef(key, value)


def _weight_value(value: Any) -> str | Unresolved:
    if isinstance(value, str | Unresolved):
        return value
    return Unresolved(repr(value)[:200], f"a {type(value).__name__}, not a path or URL")


def _walk(value: Any, where: str, depth: int) -> Iterator[tuple[str, str | Unresolved]]:
    if depth > NEST_LIMIT:
        return
    if isinstance(value, dict):
        pretrained = value.get("pretrained")
        if pretrained is not None and not isinstance(pretrained, bool):
            yield f"{where}pretrained", _weight_value(pretrained)
        if value.get("type") == "Pretrained" and value.get("checkpoint") is not None:
            yield f"{where}checkpoint", _weight_value(value["checkpoint"])
        for key, inner in value.items():
            if isinstance(key, str) and key != "load_from":
                yield from _walk(inner, f"{where}{key}.", depth + 1)
    elif isinstance(value, list | tuple):
        for number, inner in enumerate(value):
            yield from _walk(inner, f"{where}{number}.", depth + 1)

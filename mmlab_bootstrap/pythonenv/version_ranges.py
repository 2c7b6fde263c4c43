"""The version ranges the sub-projects accept, read statically from their own sources.

Two kinds of source, never imported: the `<pkg>_minimum_version` / `<pkg>_maximum_version`
constants of a package's `__init__.py` (with the `digit_version` comparison of its `assert`
telling whether the maximum is included), and `requirements/mminstall.txt` lines such as
`mmcv>=2.0.0rc4,<2.2.0`. Where the sources of one sub-project disagree, both are kept and the
stricter bound is used.
"""

from __future__ import annotations

import ast
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from mmlab_bootstrap.fs import read_head

# The sub-projects' folders and the package each installs (and whose sources say what it needs).
PACKAGES = {
    "mmcv": "mmcv",
    "mmdetection": "mmdet",
    "mmdetection3d": "mmdet3d",
    "mmdeploy": "mmdeploy",
}
# Other names of a package in requirement files (mmcv 1.x was `mmcv-full`).
ALIASES = {"mmcv-full": "mmcv", "mmcv-lite": "mmcv", "mmsegmentation": "mmseg"}
SOURCE_LIMIT = 1 << 20  # a source file larger than this is not read


def version_key(text: str) -> Version | None:
    """A sort key for a version: PEP 440 through `packaging`, without its local part (a
    `+cu118` build is the release it builds), which orders them as `digit_version` does:
    2.0.0rc4 < 2.0.0 < 2.0.0.post1; None when it is not a version. (Comparisons with bounds
    stay ours, not `SpecifierSet`'s: PEP 440's `<2.2.0` leaves out 2.2.0rc1, which the
    sub-projects' own `digit_version` checks accept.)"""
    try:
        return Version(Version(text.strip()).public)
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Bound:
    """One end of a range: a version, whether it is included."""

    version: str
    inclusive: bool

    def text(self, lower: bool) -> str:
        return (">=" if self.inclusive else ">") if lower else ("<=" if self.inclusive else "<")


@dataclass(frozen=True)
class Range:
    """The versions one source accepts for one package."""

    package: str
    source: str  # e.g. mmdetection3d/requirements/mminstall.txt
    lower: Bound | None = None
    upper: Bound | None = None

    def text(self) -> str:
        parts = [
            f"{b.text(lower)}{b.version}"
            for b, lower in ((self.lower, True), (self.upper, False))
            if b
        ]
        return ",".join(parts) or "any version"

    def accepts(self, version: str) -> bool | None:
        """Whether the range holds the version (None: it cannot be compared)."""
        key = version_key(version)
        if key is None:
            return None
        for bound, lower in ((self.lower, True), (self.upper, False)):
            if bound is None:
                continue
            limit = version_key(bound.version)
            if limit is None:
                return None
            if lower and (key < limit or (key == limit and not bound.inclusive)):
                return False
            if not lower and (key > limit or (key == limit and not bound.inclusive)):
                return False
        return True


def stricter(ranges: list[Range], package: str) -> Range:
    """The intersection of several ranges of one package: the highest lower bound and the
    lowest upper bound (of equal versions, the excluding one)."""
    lower: Bound | None = None
    upper: Bound | None = None
    for found in ranges:
        if _usable(found.lower) and (lower is None or _tighter(found.lower, lower, True)):
            lower = found.lower
        if _usable(found.upper) and (upper is None or _tighter(found.upper, upper, False)):
            upper = found.upper
    sources = " and ".join(sorted({found.source for found in ranges}))
    return Range(package, sources, lower, upper)


def _usable(bound: Bound | None) -> bool:
    return bound is not None and version_key(bound.version) is not None


def _tighter(new: Bound | None, old: Bound, lower_end: bool) -> bool:
    assert new is not None
    new_key, old_key = version_key(new.version), version_key(old.version)
    assert new_key is not None and old_key is not None
    if new_key != old_key:
        return new_key > old_key if lower_end else new_key < old_key
    return old.inclusive and not new.inclusive


def init_ranges(text: str, source: str) -> list[Range]:
    """The `<pkg>_minimum_version` / `<pkg>_maximum_version` string constants of a module,
    with each maximum included only when the module's comparison says `<=`."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    constants: dict[str, str] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            constants[node.targets[0].id] = node.value.value
    inclusive = _included_maxima(tree)
    ranges = []
    for name, value in constants.items():
        match = re.fullmatch(r"(\w+?)_minimum_version", name)
        if match is None:
            continue
        package = match.group(1)
        maximum = constants.get(f"{package}_maximum_version")
        upper = Bound(maximum, inclusive.get(package, False)) if maximum else None
        ranges.append(Range(package, source, Bound(value, True), upper))
    return ranges


def _included_maxima(tree: ast.Module) -> dict[str, bool]:
    """Per package, whether its comparison reads
    `version <= digit_version(<pkg>_maximum_version)` (the maximum included)."""
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        right = node.comparators[0]
        if isinstance(right, ast.Call) and right.args:
            right = right.args[0]
        if isinstance(right, ast.Name) and right.id.endswith("_maximum_version"):
            package = right.id[: -len("_maximum_version")]
            found[package] = isinstance(node.ops[0], ast.LtE)
    return found


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;#]*)")


def requirement_ranges(text: str, source: str) -> list[Range]:
    """The bounds of `requirements/*.txt` lines (`mmcv>=2.0.0rc4,<2.2.0`; `mmengine` alone:
    any version). `==X` is both bounds; `~=`, `!=` and options (`-r`, `-f`) are left out."""
    ranges = []
    for line in text.splitlines():
        match = _REQUIREMENT.match(line)
        if match is None or line.lstrip().startswith("-"):
            continue
        lower: Bound | None = None
        upper: Bound | None = None
        for spec in match.group(2).split(","):
            spec_match = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*([\w.+!-]+)\s*", spec)
            if spec_match is None:
                continue
            op, version = spec_match.groups()
            if op in (">=", ">", "=="):
                lower = Bound(version, op != ">")
            if op in ("<=", "<", "=="):
                upper = Bound(version, op != "<")
        package = match.group(1).lower().replace("_", "-")
        package = ALIASES.get(package, package)
        ranges.append(Range(package, source, lower, upper))
    return ranges


def _read(path: Path) -> str | None:
    """A source file's text: a regular file of at most SOURCE_LIMIT bytes, in UTF-8."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text, whole = read_head(path, SOURCE_LIMIT)
        return text.decode("utf-8") if whole else None
    return None


def sub_project_ranges(extension: Path, folder: str) -> list[Range]:
    """What one sub-project of the workspace says it needs (its checkout, read, never run)."""
    ranges: list[Range] = []
    package = PACKAGES.get(folder)
    if package is not None:
        text = _read(extension / folder / package / "__init__.py")
        if text is not None:
            ranges += init_ranges(text, f"{folder}/{package}/__init__.py")
    text = _read(extension / folder / "requirements" / "mminstall.txt")
    if text is not None:
        ranges += requirement_ranges(text, f"{folder}/requirements/mminstall.txt")
    return ranges


def checkout_version(extension: Path, folder: str) -> str | None:
    """The `__version__` a sub-project's checkout declares in `<pkg>/version.py`."""
    package = PACKAGES.get(folder)
    text = _read(extension / folder / package / "version.py") if package else None
    if text is None:
        return None
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return match.group(1) if match else None

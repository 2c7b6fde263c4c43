"""What a training environment must hold, derived from the workspace alone (no network): the
bounds `doctor` reads (`versionbounds`), each sub-project's `requirements/runtime.txt`,
OpenMMLab's 1.x/2.x series rule (decided by the workspace's mmcv checkout), the team's
`python-env.overrides.txt` beside `.env`, and the checkouts installed editable.

The series rule exists because the sources' own bounds are not enough: mmdetection3d 1.0.0rc4
accepts mmdet `<=3.0.0`, and mmdet 3.0.0 installs cleanly but needs mmcv 2.x, declared only
under its `[mim]` extra; both mmcv-full 1.x and mmcv 2.x own the `mmcv` import package.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import is_inside, read_regular
from mmlab_bootstrap.pythonenv.version_ranges import Range, checkout_version, sub_project_ranges

OVERRIDES_FILE = "python-env.overrides.txt"
OVERRIDES_LIMIT = 64 * 1024  # bytes: a team's override file is a few lines
LINE_LIMIT = 400  # characters in one override line
RUNTIME_LIMIT = 1 << 20

# The sub-projects that train, and the package each installs (editable, from the checkout).
TRAINING = {"mmdetection": "mmdet", "mmdetection3d": "mmdet3d"}
# Build tools: the checkouts are installed without build isolation (mmdet3d's setup.py imports
# torch), so these must be in the environment first.
BUILD_TOOLS = ("setuptools", "wheel")
# versionbounds' package names -> distribution names (mmcv's depends on the series).
DISTRIBUTIONS = {"mmseg": "mmsegmentation"}


@dataclass(frozen=True)
class Series:
    """One side of OpenMMLab's 1.x/2.x split."""

    major: int
    mmcv: str  # the distribution that carries mmcv with its compiled ops
    excluded: tuple[str, ...]  # distributions that must not be installed beside it
    bounds: dict[str, str]  # a specifier each named distribution must also meet
    torch: str = ""  # the torch releases mmcv of the series has wheels for at all

    @property
    def compiled_ops(self) -> bool:
        """Whether its mmcv carries the compiled ops (mmcv-lite does not)."""
        return self.mmcv != LITE


SERIES = {
    1: Series(
        1,
        "mmcv-full",
        ("mmcv", "mmcv-lite", "mmengine"),
        {"mmcv-full": "<2", "mmdet": "<3", "mmsegmentation": "<1", "mmdet3d": "<1.1"},
        "<2.2",  # mmcv-full's last release (1.7.2) has wheels up to torch 2.1
    ),
    2: Series(
        2,
        "mmcv",
        ("mmcv-full",),
        {
            "mmcv": ">=2.0.0rc1",
            "mmdet": ">=3.0.0rc0",
            "mmsegmentation": ">=1.0.0rc0",
            "mmdet3d": ">=1.1.0rc0",
        },
    ),
}
MMCV_NAMES = ("mmcv", "mmcv-full", "mmcv-lite")
# MMLAB_MMCV_PACKAGE=mmcv-lite: PyPI's pure-Python mmcv (2.x only), installed with no wheel page
# when no prebuilt mmcv wheel is reachable (download.openmmlab.com blocked); no compiled ops.
LITE = "mmcv-lite"
# OpenMMLab packages whose `[mim]` extra declares what they need of mmcv (mmdet 3.0.0 needs
# mmcv >= 2.0.0rc4 only there): installed with it, so that the resolver sees it.
MIM_EXTRA = ("mmdet", "mmsegmentation")


class PythonEnvError(BootstrapError):
    """The training environment cannot be planned or built."""


@dataclass(frozen=True)
class Line:
    """One requirement of the environment and the sources that ask for it."""

    name: str  # canonical distribution name
    requirement: str  # PEP 508 text
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Override:
    """One line of python-env.overrides.txt: a requirement that replaces every other one of
    its distribution, and the team's reason for it."""

    name: str
    requirement: str
    reason: str
    number: int


@dataclass(frozen=True)
class EnvRequirements:
    """Everything one project's environment must hold, before a torch/CUDA pair is chosen."""

    project: str
    series: Series
    lines: tuple[Line, ...]
    overrides: tuple[Override, ...]
    editables: tuple[Path, ...]
    overrides_path: Path
    series_reason: str = ""

    def line(self, name: str) -> Line | None:
        return next((line for line in self.lines if line.name == name), None)

    def specifier(self, name: str) -> SpecifierSet:
        """What the environment accepts of a distribution: an override wins over the rest."""
        for override in self.overrides:
            if override.name == name:
                return Requirement(override.requirement).specifier
        found = self.line(name)
        return Requirement(found.requirement).specifier if found else SpecifierSet()

    def requirements_text(self) -> str:
        """The requirements as uv reads them, each with where it comes from."""
        return "".join(f"{line.requirement}  # {', '.join(line.sources)}\n" for line in self.lines)

    def overrides_text(self) -> str:
        return "".join(f"{o.requirement}  # {o.reason}\n" for o in self.overrides)


def series_of(extension: Path, ranges: list[Range]) -> tuple[Series, str]:
    """The series: from the mmcv checkout's version, else from the mmcv range the project
    accepts; and what decided it."""
    version = checkout_version(extension, "mmcv")
    if version is not None:
        try:
            major = Version(version).major
        except InvalidVersion:
            major = 0
        if major in SERIES:
            return SERIES[major], f"the mmcv checkout is {version}"
    uppers = [_version(r.upper.version) for r in ranges if r.package == "mmcv" and r.upper]
    known = [upper for upper in uppers if upper is not None]
    if known:
        least = min(known)  # the tightest upper bound decides
        return SERIES[1 if least <= Version("2.0.0") else 2], f"mmcv is bounded by {least}"
    raise PythonEnvError(
        "cannot tell OpenMMLab 1.x from 2.x for this workspace: no mmcv checkout with a"
        " version, and no bounded mmcv range",
        "run inv clone (the superproject records the mmcv checkout that decides it)",
    )


def with_package(series: Series, reason: str, package: str) -> Series:
    """The series with the mmcv distribution MMLAB_MMCV_PACKAGE asks for: `auto` keeps the
    series' own (with its compiled ops); `mmcv-lite` takes its place, 2.x only."""
    if package != LITE:
        return series
    if series.major != 2:
        raise PythonEnvError(
            f"MMLAB_MMCV_PACKAGE is mmcv-lite, which exists for mmcv 2.x only, but this is an"
            f" OpenMMLab {series.major}.x workspace ({reason})",
            "set it back: inv env --mmcv-package auto (mmcv-full from a prebuilt wheel page:"
            " MMLAB_MMCV_INDEX), or check out an OpenMMLab 2.x set of sub-projects",
        )
    bounds = {(LITE if name == "mmcv" else name): bound for name, bound in series.bounds.items()}
    return replace(series, mmcv=LITE, excluded=("mmcv", "mmcv-full"), bounds=bounds)


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _specifiers(found: Range) -> list[str]:
    parts = []
    if found.lower is not None:
        parts.append(f"{found.lower.text(True)}{found.lower.version}")
    if found.upper is not None:
        parts.append(f"{found.upper.text(False)}{found.upper.version}")
    return parts


def runtime_lines(text: str, source: str) -> list[tuple[Requirement, str]]:
    """The requirements of a `requirements/*.txt` (options and comments left out); a line
    that is no requirement is an error naming it."""
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise PythonEnvError(
                f"{source}:{number} is not a requirement: {shown(line)} ({error})",
                f"give the distribution a line in {OVERRIDES_FILE}, or fix the checkout",
            ) from None
        found.append((requirement, f"{source}:{number}"))
    return found


class _Merged:
    """Requirements of one distribution (and one marker) gathered from several sources."""

    def __init__(self, name: str, marker: str) -> None:
        self.name = name
        self.marker = marker
        self.extras: set[str] = set()
        self.specifiers: list[str] = []
        self.sources: list[str] = []

    def add(self, specifiers: list[str], source: str, extras: frozenset[str] = frozenset()) -> None:
        self.specifiers += [s for s in specifiers if s not in self.specifiers]
        self.extras |= extras
        if source not in self.sources:
            self.sources.append(source)

    def line(self) -> Line:
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        specifier = str(tightest(SpecifierSet(",".join(self.specifiers))))
        marker = f" ; {self.marker}" if self.marker else ""
        return Line(self.name, f"{self.name}{extras}{specifier}{marker}", tuple(self.sources))


def tightest(specifier: SpecifierSet) -> SpecifierSet:
    """The same versions with fewer words: of the lower and of the upper bounds the tightest
    (at one version, the excluding one), and another kept only where dropping it could change
    what is accepted. PEP 440 makes `<V` refuse V's pre-releases and `>V` its post-releases, so
    a bound is dropped only when the tightest one's release is strictly beyond it (`<=1.0rc1`
    does not make `<1.0` redundant); other operators are kept as they are."""
    kept = [s for s in specifier if s.operator not in ("<", "<=", ">", ">=")]
    try:
        lows = [
            (Version(s.version), s.operator == ">", s) for s in specifier if s.operator[0] == ">"
        ]
        ups = [
            (Version(s.version), s.operator == "<", s) for s in specifier if s.operator[0] == "<"
        ]
    except InvalidVersion:
        return specifier
    if lows:
        low = max(lows, key=lambda bound: (bound[0], bound[1]))
        kept += [low[2]] + [s for v, _, s in lows if s is not low[2] and not _beyond(low[0], v)]
    if ups:
        up = min(ups, key=lambda bound: (bound[0], not bound[1]))
        kept += [up[2]] + [s for v, _, s in ups if s is not up[2] and not _beyond(v, up[0])]
    return SpecifierSet(",".join(str(s) for s in kept))


def _beyond(high: Version, low: Version) -> bool:
    """Whether `high`'s release (1.2 of 1.2rc1, 1.2.post3) is strictly above `low`'s."""
    width = max(len(high.release), len(low.release))
    return high.release + (0,) * (width - len(high.release)) > low.release + (0,) * (
        width - len(low.release)
    )


def plan_requirements(
    extension: Path, project: str, overrides_path: Path, mmcv_package: str = "auto"
) -> EnvRequirements:
    """The requirements of `project`'s environment, from its checkout (read, never run);
    `mmcv_package` is MMLAB_MMCV_PACKAGE (`auto` or `mmcv-lite`)."""
    checkout = extension / project
    if project not in TRAINING or not checkout.is_dir():
        trains = " ".join(TRAINING)
        raise PythonEnvError(
            f"{shown(project)} is no sub-project that trains here"
            + ("" if project in TRAINING else f" (those are: {trains})")
            + ("" if checkout.is_dir() else f"; {shown(str(checkout))} does not exist"),
            "run inv clone first, or name projects that train: inv env --projects mmdetection3d",
        )
    ranges = sub_project_ranges(extension, project)
    series, reason = series_of(extension, ranges)
    series = with_package(series, reason, mmcv_package)
    merged: dict[tuple[str, str], _Merged] = {}

    def add(
        name: str,
        specifiers: list[str],
        source: str,
        marker: str = "",
        extras: frozenset[str] = frozenset(),
    ) -> None:
        name = canonicalize_name(name)
        if name in MMCV_NAMES:
            name = series.mmcv
        merged.setdefault((name, marker), _Merged(name, marker)).add(specifiers, source, extras)

    add("torch", [], "every training environment")
    for tool in BUILD_TOOLS:
        add(tool, [], "to install the checkouts without build isolation")
    for found in ranges:
        package = DISTRIBUTIONS.get(found.package, found.package)
        if package == TRAINING[project]:
            continue  # the checkout itself, installed editable
        add(package, _specifiers(found), found.source)
    runtime = checkout / "requirements" / "runtime.txt"
    text = _read_text(runtime, RUNTIME_LIMIT)
    if text is not None:
        for requirement, source in runtime_lines(text, f"{project}/requirements/runtime.txt"):
            add(
                requirement.name,
                [str(s) for s in requirement.specifier],
                source,
                str(requirement.marker) if requirement.marker else "",
                extras=frozenset(requirement.extras),
            )
    add(series.mmcv, [], f"OpenMMLab {series.major}.x")
    if not series.compiled_ops:
        add(series.mmcv, [], f"MMLAB_MMCV_PACKAGE={LITE}")
    if series.major == 2:
        add("mmengine", [], "OpenMMLab 2.x")
    names = {name for name, _ in merged}
    for name, bound in series.bounds.items():
        if name in names:
            for key in [k for k in merged if k[0] == name]:
                merged[key].add([bound], f"OpenMMLab {series.major}.x")
    for key, gathered in merged.items():
        # what mim would install beside it (mmdet 3's mmcv range); not with mmcv-lite, as
        # the extra names `mmcv` itself (sdist-only on PyPI), which must not come beside it
        if key[0] in MIM_EXTRA and series.compiled_ops:
            gathered.extras |= {"mim"}
    _check_checkout(extension, project, series)
    overrides = read_overrides(overrides_path, series)
    lines = tuple(sorted((m.line() for m in merged.values()), key=lambda line: line.name))
    for line in lines:
        _check_satisfiable(line, overrides, overrides_path)
    return EnvRequirements(project, series, lines, overrides, (checkout,), overrides_path, reason)


def _check_checkout(extension: Path, project: str, series: Series) -> None:
    """The checkout installed editable must itself belong to the series."""
    package = TRAINING[project]
    version = checkout_version(extension, project)
    bound = series.bounds.get(package)
    if version is None or bound is None:
        return
    try:
        fits = SpecifierSet(bound).contains(version, prereleases=True)
    except InvalidVersion:
        return
    if not fits:
        raise PythonEnvError(
            f"the {project} checkout is {version}, but the mmcv checkout makes this an"
            f" OpenMMLab {series.major}.x workspace ({package}{bound})",
            "check out matching commits of the sub-projects: inv clone --update (the"
            " superproject records a matching set)",
        )


def _check_satisfiable(line: Line, overrides: tuple[Override, ...], path: Path) -> None:
    """Sources that contradict each other (no version meets all their bounds) need an
    override; said here, before anything is resolved."""
    if any(o.name == line.name for o in overrides):
        return
    specifier = Requirement(line.requirement).specifier
    try:
        pins = [Version(s.version) for s in specifier if s.operator == "=="]
        lows = [
            (Version(s.version), s.operator == ">=") for s in specifier if s.operator in (">", ">=")
        ]
        highs = [
            (Version(s.version), s.operator == "<=") for s in specifier if s.operator in ("<", "<=")
        ]
    except InvalidVersion:
        return  # a wildcard or legacy version: the resolver judges it
    empty = any(not specifier.contains(pin, prereleases=True) for pin in pins)
    if lows and highs:
        low, low_in = max(lows, key=lambda bound: (bound[0], not bound[1]))
        high, high_in = min(highs, key=lambda bound: (bound[0], bound[1]))
        empty = empty or low > high or (low == high and not (low_in and high_in))
    if empty:
        raise PythonEnvError(
            f"no version of {line.name} meets {specifier} (from {', '.join(line.sources)})",
            f"add a line for it to {path}, e.g. '{line.name}>=X  # why'",
        )


def linked_outside(path: Path) -> None:
    """A team file of the workspace (the overrides, a lock) that is a symlink leading out of
    the workspace is refused unread: its lines would be quoted in errors (a link committed
    by someone else to ~/.netrc, say)."""
    if path.is_symlink() and not is_inside(path, path.parent):
        raise PythonEnvError(
            f"{shown(str(path))} is a symlink leading out of the workspace (to"
            f" {shown(os.readlink(path))}); it is not read",
            f"make {path.name} a file of the workspace (commit it), or a link within it",
        )


def _read_text(path: Path, limit: int) -> str | None:
    hint = f"make {path} a regular file (UTF-8 text)"
    data = read_regular(path, hint, limit=limit)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PythonEnvError(f"{shown(str(path))} is not UTF-8 text", hint) from None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def read_overrides(path: Path, series: Series) -> tuple[Override, ...]:
    """python-env.overrides.txt: one requirement a line in uv's overrides format, each with a
    `# reason`; no options, no URLs, nothing the series rules out, one line a distribution."""
    linked_outside(path)
    text = _read_text(path, OVERRIDES_LIMIT)
    if text is None:
        return ()
    text = text.removeprefix("\ufeff")  # (the byte order mark some editors write first)
    found: list[Override] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.strip() and not raw.strip().startswith("#"):
            override = _override(raw, number, path, series)
            if any(o.name == override.name for o in found):
                raise _bad_override(path, number, raw, f"names {override.name} a second time")
            found.append(override)
    return tuple(found)


def _bad_override(path: Path, number: int, raw: str, what: str, fix: str = "") -> PythonEnvError:
    return PythonEnvError(
        f"{path}:{number} {what}: {shown(raw[:LINE_LIMIT])}",
        fix
        or f"write one requirement and a reason per line in {path},"
        " e.g. 'numba>=0.56  # 0.53.0 has wheels for CPython <= 3.9 only'",
    )


def _override(raw: str, number: int, path: Path, series: Series) -> Override:
    """One line of the overrides file, checked."""
    if len(raw) > LINE_LIMIT:
        raise _bad_override(path, number, raw, f"is longer than {LINE_LIMIT} characters")
    if _CONTROL.search(raw):
        raise _bad_override(path, number, raw, "holds control characters")
    requirement_text, hash_sign, reason = raw.strip().partition("#")
    requirement_text, reason = requirement_text.strip(), reason.strip()
    if requirement_text.startswith("-"):
        raise _bad_override(path, number, raw, "is an option, not a requirement")
    if not hash_sign or not reason:
        raise _bad_override(path, number, raw, "gives no reason (a '# why' after the requirement)")
    try:
        requirement = Requirement(requirement_text)
    except InvalidRequirement:
        raise _bad_override(path, number, raw, "is not a requirement") from None
    if requirement.url:
        raise _bad_override(path, number, raw, "names a URL; overrides here name versions only")
    name = canonicalize_name(requirement.name)
    if name in series.excluded:
        raise _bad_override(
            path,
            number,
            raw,
            f"names {name}, which an OpenMMLab {series.major}.x environment must not hold",
            f"take the line out of {path} (the mmcv checkout decides the series)",
        )
    return Override(name, str(requirement), reason, number)

"""The torch/CUDA pair of a training environment: chosen, never guessed.

The accelerator tags come from `MMLAB_CUDA` (`cpu`, `cu113`, …) or the NVIDIA driver
(`/sys/module/nvidia/version`, else `nvidia-smi`); for each tag, newest first, the torch index
lists the torch releases with a wheel for the interpreter (within the torch range), and for
each torch minor, newest first, the mmcv wheel page says whether a prebuilt mmcv wheel within
the range exists for it. The first (newest) pair that has both wins; every pair looked at is
kept, with why it lost, for `--dry`.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import read_regular
from mmlab_bootstrap.proc import run_bounded
from mmlab_bootstrap.pythonenv.pages import Interpreter, Reader, Wheel, page_wheels
from mmlab_bootstrap.pythonenv.plan import LITE, PythonEnvError

# CUDA builds of torch, newest first; and the oldest driver that runs each CUDA major.minor.
CUDA_TAGS = ("cu128", "cu126", "cu124", "cu121", "cu118", "cu117", "cu116", "cu115",
             "cu113", "cu111", "cu102", "cu101")  # fmt: skip
DRIVER_MINIMUM = ((12, "525.60.13"), (11, "450.80.02"), (10, "418.39"))
DRIVER_FILE = Path("/sys/module/nvidia/version")
SMI_TIMEOUT = 10
SMI_LIMIT = 4096
MAX_PAGES = 40  # torch minors whose mmcv page is read while looking for a pair


def cuda_of(tag: str) -> tuple[int, int] | None:
    """`cu113` -> (11, 3); None for `cpu`."""
    match = re.fullmatch(r"cu(\d+)(\d)", tag)
    return (int(match.group(1)), int(match.group(2))) if match else None


def driver_version(environ_path: str | None = None) -> str | None:
    """The NVIDIA driver's version: the kernel module's, else what `nvidia-smi` says (bounded
    in time and output); None when there is no driver."""
    data = read_regular(DRIVER_FILE, "", limit=64) if DRIVER_FILE.parent.is_dir() else None
    if data:
        text = data.decode("ascii", "replace").strip()
        if re.fullmatch(r"\d+(\.\d+){1,2}", text):
            return text
    smi = shutil.which("nvidia-smi", path=environ_path)
    if smi is None:
        return None
    try:
        done = run_bounded(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            seconds=SMI_TIMEOUT,
            max_bytes=SMI_LIMIT,
        )
    except OSError:
        return None
    first = done.out.decode("ascii", "replace").strip().splitlines()
    if done.code == 0 and first and re.fullmatch(r"\d+(\.\d+){1,2}", first[0].strip()):
        return first[0].strip()
    return None


def accelerator_tags(cuda: str, driver: str | None) -> tuple[tuple[str, ...], str]:
    """The tags to try, newest first, and why: `MMLAB_CUDA` when set, else every CUDA the
    driver runs (and `cpu` without a driver)."""
    if cuda:
        return (cuda,), f"MMLAB_CUDA={cuda}"
    if driver is None:
        return ("cpu",), "no NVIDIA driver found: CPU only (set MMLAB_CUDA to choose)"
    runs = Version(driver)
    majors = [major for major, least in DRIVER_MINIMUM if runs >= Version(least)]
    top = max(majors) if majors else None
    tags = tuple(t for t in CUDA_TAGS if top is not None and (cuda_of(t) or (0, 0))[0] <= top)
    if not tags:
        return ("cpu",), f"NVIDIA driver {driver} runs no CUDA build of torch: CPU only"
    return tags, f"NVIDIA driver {driver} runs CUDA {top}.x and older"


@dataclass(frozen=True)
class Considered:
    """One pair looked at, and what decided it."""

    tag: str
    torch: str
    why: str


@dataclass(frozen=True)
class Pair:
    """The chosen torch build and mmcv wheel, with where each comes from."""

    tag: str
    torch: Version  # with its local tag, e.g. 1.12.1+cu113
    torch_index: str  # the PEP 503 index to install torch from
    mmcv: Wheel | None  # None: mmcv-lite, resolved from the package index like the rest
    mmcv_page: str | None  # the page to find the mmcv wheel in (uv's --find-links)
    considered: tuple[Considered, ...] = field(default=())


def _minor(version: Version) -> str:
    return f"{version.major}.{version.minor}"


def torch_builds(
    wheels: list[Wheel], tag: str, interpreter: Interpreter, spec: SpecifierSet
) -> dict[str, Version]:
    """The newest torch release of each minor with a wheel of `tag` for the interpreter."""
    found: dict[str, Version] = {}
    for wheel in wheels:
        local = wheel.version.local
        if wheel.name != "torch" or local not in (None, tag) or not interpreter.installs(wheel):
            continue
        if not spec.contains(Version(wheel.version.public)):
            continue
        minor = _minor(wheel.version)
        if minor not in found or wheel.version > found[minor]:
            found[minor] = wheel.version
    return dict(sorted(found.items(), key=lambda item: Version(item[0]), reverse=True))


def mmcv_pages(mmcv_base: str, tag: str, minor: str) -> tuple[str, str]:
    """The two names download.openmmlab.com gives a pair's page."""
    root = f"{mmcv_base.rstrip('/')}/mmcv/dist/{tag}"
    return f"{root}/torch{minor}/index.html", f"{root}/torch{minor}.0/index.html"


def choose_pair(
    tags: tuple[str, ...],
    *,
    torch_spec: SpecifierSet,
    mmcv_name: str,
    mmcv_spec: SpecifierSet,
    interpreter: Interpreter,
    read: Reader,
    torch_base: str,
    mmcv_base: str,
    read_mmcv: Reader | None = None,
) -> Pair:
    """The newest pair with a torch wheel and a prebuilt mmcv wheel for the interpreter
    (`read` reads the torch index; `read_mmcv`, when given, mmcv's pages). With mmcv-lite
    (no compiled ops, so no build to match) no page is read: the newest torch wins."""
    considered: list[Considered] = []
    read_page = _explained(read_mmcv or read, mmcv_name)
    existing: list[str] = []  # pairs with some mmcv wheel in range (another Python, say)
    pages = 0
    for tag in tags:
        torch_index = f"{torch_base.rstrip('/')}/{tag}/"
        text = read(f"{torch_index}torch/")
        if text is None:
            considered.append(Considered(tag, "-", f"the torch index has no {tag}"))
            continue
        builds = torch_builds(
            page_wheels(text, f"{torch_index}torch/"), tag, interpreter, torch_spec
        )
        if not builds:
            considered.append(
                Considered(
                    tag, "-", f"no torch{_within(torch_spec)} for Python {interpreter.version}"
                )
            )
        for minor, torch in builds.items():
            if mmcv_name == LITE:
                considered.append(
                    Considered(tag, minor, f"chosen: torch {torch}, {LITE} (no wheel page needed)")
                )
                return Pair(tag, torch, torch_index, None, None, tuple(considered))
            if pages >= MAX_PAGES:
                considered.append(Considered(tag, minor, f"not read: {MAX_PAGES} pages read"))
                break
            wheels, page = _mmcv_page(read_page, mmcv_base, tag, minor)
            pages += 1
            if page is None:
                considered.append(Considered(tag, minor, "no mmcv wheel page"))
                continue
            named = [w for w in wheels if w.name == mmcv_name]
            fitting = [w for w in named if mmcv_spec.contains(w.version)]
            usable = [w for w in fitting if interpreter.installs(w)]
            if fitting:
                existing.append(f"{tag} + torch {minor} ({_versions(fitting)})")
            if usable:
                best = max(usable, key=lambda w: w.version)
                considered.append(
                    Considered(tag, minor, f"chosen: torch {torch}, {mmcv_name} {best.version}")
                )
                return Pair(tag, torch, torch_index, best, page, tuple(considered))
            if fitting:
                why = f"{mmcv_name} {_versions(fitting)} but not for Python {interpreter.version}"
            elif named:
                why = f"only {mmcv_name} {_versions(named)}, outside {mmcv_spec}"
            else:
                why = f"no {mmcv_name} wheel"
            considered.append(Considered(tag, minor, why))
    listed = "; ".join(f"{c.tag} torch {c.torch}: {c.why}" for c in considered[:8])
    if pages >= MAX_PAGES:
        listed += f"; stopped after {MAX_PAGES} pages"
    if mmcv_name == LITE:
        raise PythonEnvError(
            f"no torch to install beside {LITE}: "
            + "; ".join(f"{c.tag}: {c.why}" for c in considered[:8]),
            "set MMLAB_TORCH_INDEX to an index that has it, or MMLAB_CUDA to another tag",
        )
    raise PythonEnvError(
        f"no prebuilt {mmcv_name}{_within(mmcv_spec)} wheel for Python {interpreter.version}"
        f" with any torch of {', '.join(tags)} ({listed})",
        (
            f"pairs with wheels for another Python: {'; '.join(existing[:6])}:"
            " set MMLAB_PYTHON to an interpreter they support"
            if existing
            else "set MMLAB_CUDA to one tag the mmcv wheel pages list (e.g. cu113 or cpu),"
            " MMLAB_MMCV_INDEX to a mirror of the pages that has the wheel, or loosen the range"
            " in python-env.overrides.txt" + lite_hint(mmcv_name) + "; mmcv is never built here"
        ),
    )


def lite_hint(mmcv_name: str) -> str:
    """The way out when no prebuilt mmcv 2.x wheel can be had (said in the hint)."""
    if mmcv_name != "mmcv":
        return ""  # mmcv-lite exists for 2.x only
    return f"; or, without compiled ops, MMLAB_MMCV_PACKAGE={LITE} (PyPI's wheel)"


def _explained(read: Reader, mmcv_name: str) -> Reader:
    """`read`, whose error for a page that cannot be reached names both ways out."""

    def explained(url: str) -> str | None:
        try:
            return read(url)
        except PythonEnvError as error:
            raise PythonEnvError(
                error.message,
                "set MMLAB_MMCV_INDEX to a mirror of mmcv's wheel pages that is reachable"
                f" from here (inv env --mmcv-index URL){lite_hint(mmcv_name)}",
                rerun_helps=error.rerun_helps,
            ) from None

    return explained


def _within(spec: SpecifierSet) -> str:
    return f" {spec}" if str(spec) else ""


def _versions(wheels: list[Wheel]) -> str:
    versions = sorted({w.version for w in wheels}, reverse=True)
    return ", ".join(str(v) for v in versions[:4]) + (" …" if len(versions) > 4 else "")


def _mmcv_page(read: Reader, base: str, tag: str, minor: str) -> tuple[list[Wheel], str | None]:
    for url in mmcv_pages(base, tag, minor):
        text = read(url)
        if text is not None:
            return page_wheels(text, url), url
    return [], None


def check_cuda(value: str) -> str | None:
    """What is wrong with an MMLAB_CUDA value (None: nothing)."""
    if value in ("", "cpu") or re.fullmatch(r"cu\d{2,4}", value):
        return None
    return f"is not cpu or a CUDA tag such as cu113: {shown(value)}"


def safe_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None

"""uv, driven by subprocess with explicit flags: the uv this package depends on (never one on
PATH), no user or project configuration (`--no-config`, every `UV_*` variable cleared), and
mmcv only ever as a prebuilt wheel (`--only-binary`). Output is kept to its last lines, for
the error a failure ends with."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.proc import run_bounded
from mmlab_bootstrap.pythonenv.plan import MMCV_NAMES, PythonEnvError

RESOLVE_TIMEOUT = 900  # seconds for `uv pip compile` (index pages, metadata)
INSTALL_TIMEOUT = 3 * 3600  # `uv pip sync`: a CUDA torch is GBs on a slow line
TAIL = 40  # lines of uv's output kept for messages
# Variables of the caller's shell that would steer uv or the interpreter it asks.
CLEARED = ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")

UV_OUTPUT_LIMIT = 64 << 20  # bytes of uv's output (a resolution's report is some KiB)


def uv_binary() -> str:
    """The uv executable of the `uv` wheel this package depends on."""
    try:
        # startup: the uv package only when uv is about to run
        import uv
    except ImportError:
        raise PythonEnvError(
            "uv is not installed beside mmlab-bootstrap", "reinstall it: pip install -e ."
        ) from None
    try:
        return str(uv.find_uv_bin())
    except FileNotFoundError:
        raise PythonEnvError(
            "the uv package has no uv executable", "reinstall it: pip install --force-reinstall uv"
        ) from None


def uv_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without uv's settings and without an active venv/conda env."""
    return {
        name: value
        for name, value in environ.items()
        if not name.startswith("UV_") and name not in CLEARED
    }


@dataclass(frozen=True)
class Indexes:
    """Where packages come from, as uv's flags."""

    pypi: str  # a PEP 503 index URL
    torch: str | None = None  # the PyTorch index of the chosen tag
    mmcv_page: str | None = None  # the page listing mmcv's prebuilt wheels for the pair

    def flags(self) -> list[str]:
        found = ["--index-url", self.pypi]
        if self.torch:
            # torch's builds live on their own index; the newest fitting file wins across
            # both (the lock pins torch with its local tag, so that is the tag's build)
            found += ["--extra-index-url", self.torch, "--index-strategy", "unsafe-best-match"]
        if self.mmcv_page:
            found += ["--find-links", self.mmcv_page]
        return found


def common_flags() -> list[str]:
    """What every uv call gets: no configuration files, and never an mmcv built from source
    (its sdists take hours and no longer build with today's setuptools and torch)."""
    flags = ["--no-config", "--no-progress"]
    for name in MMCV_NAMES:
        flags += ["--only-binary", name]
    return flags


def run_uv(
    args: Sequence[str],
    *,
    environ: Mapping[str, str],
    timeout: float,
    what: str,
    hint: str,
    variables: Mapping[str, str] | None = None,
) -> str:
    """Run `uv ARGS`; its output, or a PythonEnvError with uv's own error line. `variables`:
    uv's own settings this call makes (every `UV_*` of the caller's is cleared first)."""
    command = [uv_binary(), *args]
    try:  # bounded like every program whose output is read, its process group killed after
        done = run_bounded(
            command,
            seconds=timeout,
            max_bytes=UV_OUTPUT_LIMIT,
            env={**uv_environ(environ), **(variables or {})},
            cwd=os.path.abspath(os.sep),
        )
    except OSError as error:
        raise PythonEnvError(f"{what}: uv could not be run ({error})", hint) from None
    if done.code is None:
        raise PythonEnvError(
            f"{what}: uv {done.stopped}", hint, rerun_helps=not done.flooded
        ) from None
    out = done.out.decode("utf-8", "replace")
    err = done.err.decode("utf-8", "replace")
    if done.code != 0:
        raise PythonEnvError(f"{what}: {uv_reason(err)}", hint)
    return out + err


def uv_reason(stderr: str) -> str:
    """uv's error in one line: its `error:` line and the causes below it."""
    lines = [line.strip() for line in stderr.splitlines()[-TAIL:] if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    if start is None:
        return shown(lines[-1]) if lines else "uv failed without a message"
    said = " ".join(lines[start : start + 8])
    return said.removeprefix("error:").strip()[:600]

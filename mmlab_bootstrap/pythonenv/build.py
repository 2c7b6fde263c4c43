"""`inv python-env`: one virtualenv per project that trains, `<MMLAB_VENVS_PATH>/<project>`,
installed by uv from a hashed lock written in the workspace.

Plan: the requirements (`pyenvplan`, no network); the lock of the accelerator tag when it is
current (no network), else a torch/CUDA pair (`torchpairs`) and `uv pip compile`. Apply: the
lock written; the venv made under a temporary name (`.<project>.partial`), synced from the
lock, the checkout installed editable without build isolation and without its dependencies,
imports checked, then renamed into place. A run killed at any point leaves names the next run
recognises and finishes; a folder the tool did not make (no marker file) is never touched.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from mmlab_bootstrap.errors import BootstrapError, redacted, shown
from mmlab_bootstrap.fs import (
    UNLOCKED,
    creatable_problem,
    hold,
    is_inside,
    read_regular,
    remove_stale_temporaries,
    sweep,
    temporary_beside,
    temporary_folder,
)
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.proc import run_bounded
from mmlab_bootstrap.pythonenv.editable import (
    CACHE_FOLDER,
    Editable,
    WheelRefused,
    build_editable,
    checked_wheel,
    checkout_state,
    keep,
    lock_pins,
    mark_editable,
    plan_editable,
    sweep_entries,
    usable_folder,
)
from mmlab_bootstrap.pythonenv.pages import (
    Interpreter,
    Reader,
    page_reader,
    page_wheels,
    probe_interpreter,
)
from mmlab_bootstrap.pythonenv.pairs import (
    Pair,
    accelerator_tags,
    choose_pair,
    driver_version,
    lite_hint,
)
from mmlab_bootstrap.pythonenv.plan import (
    LITE,
    OVERRIDES_FILE,
    TRAINING,
    EnvRequirements,
    PythonEnvError,
    linked_outside,
    plan_requirements,
)
from mmlab_bootstrap.pythonenv.uvrun import (
    INSTALL_TIMEOUT,
    RESOLVE_TIMEOUT,
    Indexes,
    common_flags,
    run_uv,
)
from mmlab_bootstrap.run import Session, WorkPool
from mmlab_bootstrap.settings import BY_NAME, VENVS_PATH, Settings, fix_hint

MARKER = "mmlab-bootstrap-env.json"  # in every venv this tool made (and only those)
LOCK_HEADER = "# mmlab-bootstrap python-env lock"
SCRATCH_TEMPORARY = ".mmlab-python-env-{scratch}"  # uv's input files, in the workspace root
VENV_TEMPORARY = ".{name}.{stage}"  # a venv being made (`partial`) or replaced (`old`)
VERIFY_TIMEOUT = 120
PYPI_DEFAULT = "https://pypi.org/simple/"
IMPORT_NAMES = {"mmsegmentation": "mmseg", "mmcv-full": "mmcv"}
# The lock is resolved from wheels alone first: a range such as nuscenes-devkit 1.1.11's
# matplotlib<3.6.0 (no wheel for CPython 3.11) otherwise pins an sdist that `sync` then
# builds (and, here, fails to); from wheels alone uv takes nuscenes-devkit 1.1.9 instead.
WHEELS_ONLY = ("--only-binary", ":all:")
NEEDS_SDISTS = ("no usable wheels", "building from source is disabled")  # uv's words
FETCH_FAILED = ("Failed to fetch", "Request failed after")  # uv's words: an index's fault


@dataclass(frozen=True)
class LockFile:
    """A lock as written in the workspace: its inputs' digest, indexes and uv's pins."""

    path: Path
    text: str
    inputs: str
    indexes: Indexes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def workspace_python(settings: Settings) -> str | None:
    """The interpreter of the first environment `inv python-env` made for the projects (the
    one `doctor` inspects by default), or None when there is none yet."""
    for project in settings.projects:
        venv = settings.venvs_path / project
        python = venv / "bin" / "python"
        if project not in TRAINING or not os.access(python, os.X_OK):
            continue
        try:
            data = read_regular(venv / MARKER, "", own=True, limit=1 << 16)
            said = json.loads(data) if data else None
        except (ValueError, OSError, BootstrapError):
            continue
        if isinstance(said, dict) and said.get("made_by") == "mmlab-bootstrap":
            return str(python)
    return None


def _same(one: str, other: str) -> bool:
    """Whether two version texts name one version (a dist-info's and a pin's)."""
    try:
        return Version(one) == Version(other)
    except InvalidVersion:
        return one == other


def lock_path(root: Path, project: str, tag: str) -> Path:
    return root / f"python-env.{project}.{tag}.lock.txt"


def pypi_index(settings: Settings, environ: dict[str, str]) -> str:
    """MMLAB_PYPI_INDEX, else the user's PIP_INDEX_URL, else PyPI."""
    if settings.pypi_index:
        return settings.pypi_index
    given = environ.get("PIP_INDEX_URL", "")
    if given.startswith(("https://", "http://")) and not any(c.isspace() for c in given):
        return given
    return PYPI_DEFAULT


def inputs_digest(found: EnvRequirements, python: Interpreter, tag: str, bases: list[str]) -> str:
    """What a lock was resolved from: when any of it changes, the lock is out of date."""
    text = json.dumps(
        {
            "requirements": [line.requirement for line in found.lines],
            "overrides": [o.requirement for o in found.overrides],
            "python": python.version,
            "platform": [python.system, python.machine],
            "tag": tag,
            "indexes": [redacted(base) for base in bases],
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def read_lock(path: Path) -> LockFile | None:
    linked_outside(path)
    data = read_regular(path, f"move {path} away: inv python-env writes it", limit=16 << 20)
    if data is None:
        return None
    # (CRLF: a lock checked out on Windows, or by git with autocrlf, is the same lock)
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    header: dict[str, str] = {}
    for line in text.splitlines()[:8]:
        if line.startswith("# ") and ": " in line:
            key, _, value = line[2:].partition(": ")
            header[key] = value.strip()
    if not text.startswith(LOCK_HEADER) or "inputs" not in header or "pypi-index" not in header:
        raise PythonEnvError(
            f"{shown(str(path))} is not a lock this tool wrote",
            "move it away, then run inv python-env to write it again",
        )
    _check_lock(path, text, header)
    _check_digest(path, text, header)
    indexes = Indexes(
        header["pypi-index"], header.get("torch-index") or None, header.get("mmcv-page") or None
    )
    return LockFile(path, text, header["inputs"], indexes)


_PIN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!_-]+(?: ; [^\\]+)? \\"
)
# a pin that holds for every platform (one with a marker may not be installed here)
_LOCKED_PIN = re.compile(r"(?m)^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+) \\$")
_HASH = re.compile(r"    --hash=sha256:[0-9a-f]{64}(?: \\)?")
_URL = re.compile(r"https?://[^\s\\]+")


def _check_lock(path: Path, text: str, header: dict[str, str]) -> None:
    """A lock is handed to uv as a requirements file: anything but pins with hashes (an
    option such as `--extra-index-url`, `-r`, `-e`, a URL) is refused, and so are header
    values that are not URLs."""
    hint = f"move {path} away (or git checkout it), then run inv python-env --update"
    for key in ("pypi-index", "torch-index", "mmcv-page"):
        value = header.get(key, "")
        if (value or key == "pypi-index") and not _URL.fullmatch(value):
            raise PythonEnvError(f"{shown(str(path))}: {key} is not a URL: {shown(value)}", hint)
    if not re.fullmatch(r"[0-9a-f]{32}", header.get("inputs", "")):
        raise PythonEnvError(f"{shown(str(path))}: its inputs line is damaged", hint)
    for number, line in enumerate(text.splitlines(), 1):
        if (
            not line.strip()
            or line.startswith("#")
            or _PIN.fullmatch(line)
            or _HASH.fullmatch(line)
        ):
            continue
        raise PythonEnvError(
            f"{shown(str(path))}:{number} is not a pinned requirement or its hash:"
            f" {shown(line[:200])}",
            hint,
        )


def _digest_of(text: str) -> str:
    """What a lock's `# digest:` line says of it: the SHA-256 of every other line."""
    kept = [line for line in text.splitlines(keepends=True) if not line.startswith("# digest: ")]
    return hashlib.sha256("".join(kept).encode()).hexdigest()


def _check_digest(path: Path, text: str, header: dict[str, str]) -> None:
    """The lock is the one this tool wrote: a pin taken out, a hash or an index changed, a
    file cut short is refused here, before anything is installed from it."""
    if "digest" not in header:
        raise PythonEnvError(
            f"{shown(str(path))} has no digest line: an older inv python-env wrote it, before"
            " locks carried one (a pin taken out of it could not be told)",
            "write it again (the same pins where they still resolve), then commit it:"
            " inv python-env --update",
        )
    if header.get("digest") != _digest_of(text):
        raise PythonEnvError(
            f"{shown(str(path))} was changed after inv python-env wrote it (it does not"
            " match the digest in its header)",
            f"git checkout {path.name} (the team's lock), or write it again:"
            " inv python-env --update",
        )


def lock_text(inputs: str, indexes: Indexes, pins: str) -> str:
    """The lock as written: URLs without their credentials (a lock is committed), and the
    digest of the rest."""
    header = (
        f"{LOCK_HEADER} (inv python-env --update writes it again; commit it to share)\n"
        f"# inputs: {inputs}\n"
        f"# pypi-index: {redacted(indexes.pypi)}\n"
        f"# torch-index: {redacted(indexes.torch or '')}\n"
        f"# mmcv-page: {redacted(indexes.mmcv_page or '')}\n"
    )
    return f"{header}# digest: {_digest_of(header + pins)}\n{pins}"


def python_env_step(
    session: Session, flags: Mapping[str, str | None], *, locked: bool, update: bool
) -> None:
    """Build or bring up to date the environment of each project of MMLAB_PROJECTS that trains."""
    if locked and update:
        raise PythonEnvError(
            "--locked and --update contradict each other",
            "--locked installs the lock as it is; --update resolves it again: pass one",
        )
    settings = session.settings(flags)
    session.changes.after_changes(functools.partial(_remove_scratch, session, settings.root))
    projects = [p for p in settings.projects if p in TRAINING]
    if not projects:
        raise PythonEnvError(
            f"MMLAB_PROJECTS names no project that trains ({' '.join(settings.projects)})",
            f"name one: inv env --projects '{' '.join(TRAINING)}'",
        )
    _check_venvs_path(settings)
    python = probe_interpreter(_base_python(settings), "MMLAB_PYTHON")
    driver = None if settings.cuda else driver_version(session.environ.get("PATH"))
    tags, why = accelerator_tags(settings.cuda, driver)
    session.report.info(f"accelerator: {why}")
    environ = dict(session.environ)
    present = [p for p in projects if (settings.extension_path / p).is_dir()]
    if not present:
        raise PythonEnvError(
            f"no checkout of {' or '.join(projects)} in {shown(str(settings.extension_path))}",
            "run inv clone first (python-env installs the checkouts editable)",
        )
    for project in projects:
        if project not in present:
            session.report.warn(
                f"{project}: no checkout at {settings.extension_path / project}, so no"
                " environment for it (inv clone brings it)"
            )
    for project in present:
        found = plan_requirements(
            settings.extension_path,
            project,
            session.env_path.parent / OVERRIDES_FILE,
            settings.mmcv_package,
        )
        builder = _Builder(session, settings, found, python, environ, tags, driver is not None)
        builder.run(locked=locked, update=update)


def _remove_scratch(session: Session, root: Path) -> None:
    """The scratch folders of runs killed while uv ran: never one a live run uses (it holds
    it locked, see fs.temporary_folder)."""
    for left in sweep(root, SCRATCH_TEMPORARY, rule=UNLOCKED, files=False, folders=True):
        session.report.done(f"removed {left} (left by an interrupted run)")


def _check_venvs_path(settings: Settings) -> None:
    """MMLAB_VENVS_PATH must be (or become) a folder, and not one in the checkouts (a venv
    there is in a git work tree, and may take a checkout's name)."""
    venvs = settings.venvs_path
    hint = fix_hint(BY_NAME[VENVS_PATH], settings.values[VENVS_PATH].source, "./.venvs")
    if is_inside(venvs, settings.extension_path):
        raise PythonEnvError(
            f"MMLAB_VENVS_PATH {shown(str(venvs))} is in the sub-projects' checkouts"
            f" ({shown(str(settings.extension_path))})",
            hint,
        )
    if os.path.lexists(venvs) and not venvs.is_dir():
        what = "a symlink that leads to no folder" if venvs.is_symlink() else "not a folder"
        raise PythonEnvError(f"MMLAB_VENVS_PATH {shown(str(venvs))} is {what}", hint)
    if not os.path.lexists(venvs):
        problem = creatable_problem(venvs)
        if problem is not None:
            raise PythonEnvError(f"MMLAB_VENVS_PATH cannot be made: {problem}", hint)


def _base_python(settings: Settings) -> str:
    name = settings.python
    path = shutil.which(name) if "/" not in name else name
    if path is None or not os.access(path, os.X_OK) or not os.path.isfile(path):
        raise PythonEnvError(
            f"MMLAB_PYTHON {shown(name)} is not an interpreter here",
            "set it to a Python 3.8+: inv env --python python3.10 (or a path)",
        )
    return os.path.abspath(path)


class _Builder:
    """One project's environment: its lock, then its venv."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        found: EnvRequirements,
        python: Interpreter,
        environ: dict[str, str],
        tags: tuple[str, ...],
        has_driver: bool,
    ) -> None:
        self.session = session
        self.report = session.report
        self.settings = settings
        self.found = found
        self.python = python
        self.environ = environ
        self.tags = tags
        self.has_driver = has_driver
        self.project = found.project
        self.venv = settings.venvs_path / found.project
        self.root = settings.root
        self.pypi = pypi_index(settings, environ)
        self.bases = [self.pypi, settings.torch_index, settings.mmcv_index]

    # -- the lock -----------------------------------------------------------------------
    def run(self, *, locked: bool, update: bool) -> None:
        self._environment(self._current_lock(locked=locked, update=update))

    def _current_lock(self, *, locked: bool, update: bool) -> LockFile:
        root = self.session.env_path.parent
        for tag in self.tags:
            path = lock_path(root, self.project, tag)
            self.session.changes.after_changes(functools.partial(self._clear_temporaries, path))
            linked_outside(path)  # (never written through, even by --update)
            try:
                lock = read_lock(path)
            except PythonEnvError as error:
                if not update:  # (a file that is no regular file is refused either way)
                    raise
                self.report.warn(f"{error.message}: --update writes it again")
                break
            if lock is None:
                continue
            if lock.indexes.torch and not lock.indexes.torch.rstrip("/").endswith(f"/{tag}"):
                raise PythonEnvError(
                    f"{shown(str(path))} is a lock for another accelerator (its torch index"
                    f" is {shown(lock.indexes.torch)}, not one of {tag})",
                    f"git checkout {path.name}, or write it again: inv python-env --update",
                )
            lock = replace(lock, indexes=self._credentialed(lock.indexes))
            digest = inputs_digest(self.found, self.python, tag, self.bases)
            if locked or (lock.inputs == digest and not update):
                if lock.inputs != digest:
                    self.report.warn(
                        f"{path}: resolved from other inputs than the workspace's now;"
                        " installing it as it is (--locked)"
                    )
                self.report.unchanged(f"lock {path}")
                return lock
            break  # out of date or --update: resolve again for the newest tag
        if locked:
            names = ", ".join(str(lock_path(root, self.project, t).name) for t in self.tags[:3])
            raise PythonEnvError(
                f"--locked: no lock of {self.project} for {', '.join(self.tags)} ({names})",
                "run inv python-env without --locked once to write it (then commit it)",
            )
        return self._resolve()

    def _credentialed(self, indexes: Indexes) -> Indexes:
        """The lock's indexes with the credentials of the configured ones (the lock is
        written without them)."""

        def given(url: str | None) -> str | None:
            for base in self.bases:
                hidden = redacted(base)
                if url and hidden != base and url.startswith(hidden):
                    return base + url[len(hidden) :]
            return url

        return Indexes(given(indexes.pypi) or indexes.pypi, given(indexes.torch),
                       given(indexes.mmcv_page))  # fmt: skip

    def _clear_temporaries(self, path: Path) -> None:
        """What a run killed while writing the lock left beside it."""
        for leftover in remove_stale_temporaries(path):
            self.report.done(f"removed {leftover} (left by an interrupted run)")

    def _resolve(self) -> LockFile:
        """Choose the pair, resolve with uv, write the lock (network). The lock returned is
        what was written (under --dry: what would be)."""
        # startup: requests only when an index page must be read (not for a run from the lock)
        from mmlab_bootstrap.checkpoints import http_session, timeouts

        http = http_session(2)  # pages read under the one retry policy (pages.page_reader)
        self._check_pins(page_reader(http, "MMLAB_PYPI_INDEX", timeouts(), self.report.info))
        series = self.found.series
        pair = choose_pair(
            self.tags,
            torch_spec=self.found.specifier("torch") & SpecifierSet(series.torch),
            mmcv_name=series.mmcv,
            mmcv_spec=self.found.specifier(series.mmcv),
            interpreter=self.python,
            read=page_reader(http, "MMLAB_TORCH_INDEX", timeouts(), self.report.info),
            read_mmcv=page_reader(http, "MMLAB_MMCV_INDEX", timeouts(), self.report.info),
            torch_base=self.settings.torch_index,
            mmcv_base=self.settings.mmcv_index,
        )
        for considered in pair.considered:
            self.report.info(f"  {considered.tag} + torch {considered.torch}: {considered.why}")
        indexes = Indexes(self.pypi, pair.torch_index, pair.mmcv_page)
        path = lock_path(self.session.env_path.parent, self.project, pair.tag)
        inputs = inputs_digest(self.found, self.python, pair.tag, self.bases)
        would = (
            [f"{self.project}: OpenMMLab {series.major}.x ({self.found.series_reason})"]
            + [
                f"{self.project}: {line.requirement}  # {', '.join(line.sources)}"
                for line in self.found.lines
            ]
            + [
                f"{self.project}: override {o.requirement}  # {o.reason}"
                for o in self.found.overrides
            ]
        )
        pins = self._compile(pair, indexes)
        text = lock_text(inputs, indexes, pins)
        self.session.changes.write_file(path, text, would=would)
        return LockFile(path, text, inputs, indexes)

    def _check_pins(self, read: Reader) -> None:
        """An `==` pin with no wheel for the interpreter (numba==0.53.0 on cp310+) is refused
        before uv would build it, naming the override line that fixes it."""
        overridden = {o.name for o in self.found.overrides}
        for line in self.found.lines:
            requirement = Requirement(line.requirement)
            pins = [s.version for s in requirement.specifier if s.operator == "=="]
            if line.name in overridden or len(pins) != 1 or requirement.marker is not None:
                continue
            url = f"{self.pypi.rstrip('/')}/{line.name}/"
            text = read(url)
            if text is None:
                raise PythonEnvError(
                    f"{line.requirement} ({', '.join(line.sources)}): {url} has no such project",
                    "set MMLAB_PYPI_INDEX to an index that has it (inv env --pypi-index URL)",
                )
            wheels = page_wheels(text, url)
            fits = [w for w in wheels if w.name == line.name and self.python.installs(w)]
            if any(w.version == Version(pins[0]) for w in fits):
                continue
            newer = sorted({w.version for w in fits if not w.version.is_prerelease})
            least = next((v for v in newer if v > Version(pins[0])), newer[-1] if newer else None)
            suggestion = f"{line.name}>={least}" if least else f"{line.name}>=VERSION"
            raise PythonEnvError(
                f"{line.requirement} ({', '.join(line.sources)}) has no wheel for Python"
                f" {self.python.version} on {url}",
                f"add this line to {self.found.overrides_path}: '{suggestion}  #"
                f" {line.requirement} has no wheel for {self.python.tag}',"
                " or set MMLAB_PYTHON to an interpreter it has wheels for",
            )

    def _scratch(self) -> AbstractContextManager[Path]:
        """A folder for uv's input files, in the workspace (never /tmp), removed after use."""
        return temporary_folder(self.root, SCRATCH_TEMPORARY)

    def _dry_places(self, scratch: Path) -> tuple[list[str], dict[str, str]]:
        """Where uv's dry run writes, so that --dry writes nothing outside the workspace: its
        cache, and (when the user has none) its credentials store, in the scratch folder
        removed afterwards. A store the user has is read where it is."""
        data = self.environ.get("XDG_DATA_HOME", "")
        if not os.path.isabs(data):  # (the XDG rule: a relative value is ignored)
            data = os.path.join(
                self.environ.get("HOME", os.path.expanduser("~")), ".local", "share"
            )
        variables = {}
        if not os.path.isdir(os.path.join(data, "uv", "credentials")):
            variables["UV_CREDENTIALS_DIR"] = str(scratch / "uv-credentials")
        return ["--cache-dir", str(scratch / "uv-cache")], variables

    def _compile(self, pair: Pair, indexes: Indexes) -> str:
        series = self.found.series
        with self._scratch() as scratch:
            requirements = Path(scratch) / "requirements.in"
            requirements.write_text(
                self.found.requirements_text()
                + f"torch=={pair.torch}  # the chosen pair ({pair.tag})\n"
                + (
                    f"{series.mmcv}=={pair.mmcv.version}  # a prebuilt wheel of the pair\n"
                    if pair.mmcv is not None
                    else ""  # mmcv-lite: from the package index, within its range
                )
            )
            overrides = Path(scratch) / "overrides.txt"
            overrides.write_text(self.found.overrides_text())
            output = Path(scratch) / "lock.txt"
            dry_flags, dry_variables = self.session.changes.would_be(
                self._dry_places(Path(scratch)), ([], {})
            )
            command = [
                "pip",
                "compile",
                str(requirements),
                "--overrides",
                str(overrides),
                "--generate-hashes",
                "--no-header",
                "--no-annotate",
                "--python",
                self.python.path,
                "--output-file",
                str(output),
                *common_flags(),
                *indexes.flags(),
                *dry_flags,
            ]
            what = f"resolving {self.project}'s environment"
            hint = (
                f"loosen what conflicts with a line in {self.found.overrides_path}"
                " ('name>=X  # why'), or set MMLAB_PYPI_INDEX to an index that has it"
            )
            try:  # wheels alone first: no source build where a release with wheels fits
                self._resolve_with([*command, *WHEELS_ONLY], what, hint, dry_variables)
            except PythonEnvError as error:
                if not any(words in error.message for words in NEEDS_SDISTS):
                    raise
                self.report.warn(
                    f"{self.project}: no resolution from wheels alone ({error.message[:300]});"
                    " resolving with source builds allowed (never of mmcv)"
                )
                self._resolve_with(command, what, hint, dry_variables)
            return output.read_text()

    def _resolve_with(
        self, command: list[str], what: str, hint: str, variables: dict[str, str]
    ) -> None:
        """uv's resolution; a file an index lists but does not serve (an error status, a
        mirror that refuses HEAD) is said as the index's fault, not as a conflict."""
        try:
            run_uv(
                command,
                environ=self.environ,
                variables=variables,
                timeout=RESOLVE_TIMEOUT,
                what=what,
                hint=hint,
            )
        except PythonEnvError as error:
            if "Failed to inspect Python interpreter" in error.message:
                raise PythonEnvError(
                    error.message,
                    "set MMLAB_PYTHON to a CPython 3.8+ interpreter uv can ask:"
                    " inv env --python python3.10 (or a path)",
                ) from None
            if not any(words in error.message for words in FETCH_FAILED):
                raise
            raise PythonEnvError(
                error.message,
                "an index lists a file it does not serve: check that MMLAB_PYPI_INDEX,"
                " MMLAB_TORCH_INDEX (and MMLAB_MMCV_INDEX) are reachable and answer GET and"
                " HEAD for their files, then run the same command again",
                rerun_helps=True,
            ) from None

    # -- the venv ------------------------------------------------------------------------
    def _environment(self, lock: LockFile) -> None:
        marker = self._marker(lock)
        partial = temporary_beside(self.venv, VENV_TEMPORARY, stage="partial")
        old = temporary_beside(self.venv, VENV_TEMPORARY, stage="old")
        for leftover in (partial, old):
            self._remove_leftover(leftover)
        if self.venv.is_symlink():
            raise PythonEnvError(
                f"{shown(str(self.venv))} is a symlink; the tool replaces its venvs by renaming"
                " and never follows links there",
                "remove the link, and point MMLAB_VENVS_PATH at the disk instead:"
                " inv env --venvs-path PATH",
            )
        if self.venv.exists():
            said = self._read_marker(self.venv)
            self._check_workspace(said)
            if said == marker:
                missing = self._missing(lock)
                if missing is None:
                    self.report.unchanged(f"up to date: {self.venv}")
                    return
                self.report.warn(f"{self.venv} is incomplete ({missing}): made again")
        changes = self.session.changes
        if not self.venv.parent.is_dir():
            changes.make_folder(self.venv.parent)

        editables = self._plan_editables(lock)

        def build() -> None:
            partial.mkdir()  # (uv makes the venv in it) held while it is made: see _in_use
            descriptor = os.open(partial, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                hold(descriptor)
                doctor = self._build(partial, lock, marker, editables)
            except BootstrapError:
                shutil.rmtree(partial, ignore_errors=True)  # a failure leaves nothing behind
                raise
            finally:
                os.close(descriptor)
            if self.venv.exists():
                os.rename(self.venv, old)
            os.rename(partial, self.venv)
            shutil.rmtree(old, ignore_errors=True)
            self.report.done(f"made {self.venv} from {lock.path.name}")
            for line in doctor:
                self.report.warn(line)

        changes.make(
            [
                f"make {partial} (uv venv from {self.python.path}), install {lock.path.name}"
                f" into it, then {self.project} editable, then rename it to {self.venv}"
            ]
            + [f"  {self._editable_line(e)}" for e in editables],
            build,
        )

    def _marker(self, lock: LockFile) -> dict[str, object]:
        return {
            "made_by": "mmlab-bootstrap",
            "project": self.project,
            "lock": lock.digest,
            "python": self.python.path,
            "editables": [str(path) for path in self.found.editables],
        }

    def _check_workspace(self, said: dict[str, object]) -> None:
        """A venv this tool made for another workspace (MMLAB_VENVS_PATH shared by two) is
        that workspace's: never replaced from here, while its checkout is still there."""
        theirs = said.get("editables")
        if not isinstance(theirs, list):
            return
        ours = {os.path.realpath(path) for path in self.found.editables}  # (by any path)
        there = [
            p
            for p in theirs
            if isinstance(p, str) and os.path.isdir(p) and os.path.realpath(p) not in ours
        ]
        if there:
            raise PythonEnvError(
                f"{shown(str(self.venv))} is the environment of another workspace (its"
                f" {self.project} is installed editable from {shown(there[0])}): never"
                " replaced from here",
                "give each workspace its own folder: inv env --venvs-path ./.venvs",
            )

    def _missing(self, lock: LockFile) -> str | None:
        """What a venv this tool made lacks (None: nothing): its interpreter link, its
        pyvenv.cfg, or the dist-info of a locked pin or an editable (a folder deleted by
        hand). Files only: no interpreter is started, so a no-op run stays quick."""
        python = self.venv / "bin" / "python"
        if not python.is_symlink() or not os.access(python, os.X_OK):
            return "bin/python is not the link uv made"
        if not (self.venv / "pyvenv.cfg").is_file():
            return "no pyvenv.cfg"
        site = self.venv / "lib" / f"python{self.python.version}" / "site-packages"
        try:
            names = os.listdir(site)
        except OSError:
            return f"no {site.relative_to(self.venv)}"
        have: set[tuple[str, str]] = set()
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, version = name[: -len(".dist-info")].partition("-")
                have.add((canonicalize_name(dist), version))
        for pin in _LOCKED_PIN.findall(lock.text):
            name, version = canonicalize_name(pin[0]), pin[1]
            if not any(n == name and _same(v, version) for n, v in have):
                return f"no {name} {version}"
        for package in (TRAINING[self.project],):
            if not any(n == package for n, _ in have):
                return f"no {package} (the editable checkout)"
        return None

    def _read_marker(self, venv: Path) -> dict[str, object]:
        """The marker of a venv this tool made; an error for any other folder there."""
        try:
            data = read_regular(venv / MARKER, "", own=True, limit=1 << 16)
            said = json.loads(data) if data else None
        except (ValueError, BootstrapError, OSError):
            said = None
        if not isinstance(said, dict) or said.get("made_by") != "mmlab-bootstrap":
            raise PythonEnvError(
                f"{shown(str(venv))} exists and was not made by inv python-env: it is never"
                " touched",
                "move it away, or make the environments elsewhere: inv env --venvs-path PATH",
            )
        return said

    def _remove_leftover(self, path: Path) -> None:
        """A `.partial` or `.old` folder of a killed run: removed when it is provably ours
        (a venv, or the folder uv was creating)."""
        if not (path.exists() or path.is_symlink()):
            return
        if path.is_symlink() or not path.is_dir():
            raise PythonEnvError(
                f"{shown(str(path))} is in the way and was not made by inv python-env",
                "move it away, then run the same command again",
            )
        ours = (path / "pyvenv.cfg").is_file() or not any(path.iterdir())
        if not ours:
            raise PythonEnvError(
                f"{shown(str(path))} is in the way and was not made by inv python-env",
                "move it away, then run the same command again",
            )

        def remove() -> None:
            stage = path.name.rpartition(".")[2]
            if not sweep(path.parent, VENV_TEMPORARY, rule=UNLOCKED, files=False, folders=True,
                         name=self.project, stage=stage):  # fmt: skip
                raise PythonEnvError(
                    f"{shown(str(path))} is being made by another run right now (one of a"
                    " workspace whose MMLAB_VENVS_PATH is this folder too)",
                    "wait for it to finish, then run the same command again; or give each"
                    " workspace its own folder: inv env --venvs-path ./.venvs",
                    rerun_helps=True,
                )
            self.report.done(f"removed {path} (left by an interrupted run)")

        self.session.changes.make(f"remove {path} (left by an interrupted run)", remove)

    def _build(
        self,
        partial: Path,
        lock: LockFile,
        marker: dict[str, object],
        editables: list[Editable],
    ) -> list[str]:
        """Make the venv at `partial`, checked; what the doctor's checks find in it."""
        hint = (
            "check that the indexes (MMLAB_PYPI_INDEX, MMLAB_TORCH_INDEX, MMLAB_MMCV_INDEX) are"
            " reachable, then run the same command again (downloads stay in uv's cache)"
        )
        run_uv(
            ["venv", str(partial), "--python", self.python.path, "--relocatable",
             "--no-config", "--no-progress", "--quiet"],
            environ=self.environ, timeout=RESOLVE_TIMEOUT, what=f"making {partial}", hint=hint,
        )  # fmt: skip
        python = str(partial / "bin" / "python")
        with self._scratch() as scratch:
            pins = Path(scratch) / "lock.txt"
            pins.write_text(lock.text)
            sync = ["pip", "sync", str(pins), "--python", python, "--require-hashes",
                    *common_flags(), *lock.indexes.flags()]  # fmt: skip
            try:  # from uv's cache alone when it has every file: the hashes are the lock's
                run_uv(
                    [*sync, "--offline"],
                    environ=self.environ,
                    timeout=INSTALL_TIMEOUT,
                    what=f"installing {lock.path.name} from uv's cache",
                    hint=hint,
                )
            except PythonEnvError:
                self._sync_online(sync, lock, hint)
        self._install_editables(partial, python, editables)

        # The import check and the doctor's checks at once (two interpreters: neither waits).
        def check(which: str) -> list[str]:
            if which == "doctor":
                return self._doctor(partial)
            self._verify(python)
            return []

        ended = WorkPool(check, 2, name="checks").run(["imports", "doctor"])
        found = ended[1][1]
        (partial / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        return found

    # -- the checkouts, editable (see pythonenv.editable) ---------------------------------
    def _plan_editables(self, lock: LockFile) -> list[Editable]:
        """How each checkout is to be installed: from the kept wheel of its key, or built."""
        git = Git(self.report, answers=self.session.changes.answers)
        pins = lock_pins(lock.text)
        return [plan_editable(git, c, self.python, pins) for c in self.found.editables]

    def _editable_line(self, editable: Editable) -> str:
        folder = self.root / CACHE_FOLDER
        if editable.key is None:
            return f"{editable.checkout} editable: {editable.why}"
        entry = editable.entry(folder)
        if entry is not None:
            return f"{editable.checkout} editable: from the kept wheel {entry} ({editable.why})"
        return f"{editable.checkout} editable: built, then kept in {folder} ({editable.why})"

    def _install_editables(self, partial: Path, python: str, editables: list[Editable]) -> None:
        """Each checkout installed editable without its dependencies: a kept wheel when its
        key has one (no setup.py runs), else built once in the venv (and kept when the
        checkout is clean); a checkout with a pyproject.toml by uv's `-e`."""
        folder = self.root / CACHE_FOLDER
        for left in sweep_entries(folder):
            self.report.done(f"removed {left} (left by an interrupted run)")
        if not usable_folder(folder) and any(e.key for e in editables):
            self.report.warn(
                f"{folder} is not a folder (a link or a file): editable wheels are neither"
                " read from it nor kept there; move it away to keep them"
            )
        with self._scratch() as scratch:
            for editable in editables:
                checkout = editable.checkout
                hint = f"fix what {checkout}/setup.py needs, then run the same command again"
                if editable.key is None and editable.why.startswith("it has a pyproject"):
                    run_uv(
                        ["pip", "install", "--python", python, "--no-deps",
                         "--no-build-isolation", "--offline", *common_flags(),
                         "--editable", str(checkout)],
                        environ=self.environ, timeout=RESOLVE_TIMEOUT,
                        what=f"installing {checkout} editable", hint=hint,
                    )  # fmt: skip
                    continue
                found = self._kept_wheel(folder, editable)
                if found is None:
                    if editable.key is None:
                        self.report.info(f"{checkout} editable: {editable.why}")
                    out = Path(scratch) / f"built-{len(os.listdir(scratch))}"
                    out.mkdir()
                    built = build_editable(python, checkout, out, self.environ, partial)
                    try:
                        data, info = checked_wheel(built, built.name)
                    except WheelRefused as error:
                        raise PythonEnvError(
                            f"building {checkout} editable made no usable wheel: {error}", hint
                        ) from None
                    name = built.name
                    git = Git(self.report, answers=self.session.changes.answers)
                    if editable.key is not None and checkout_state(git, checkout) == editable.state:
                        entry = keep(folder, editable, built)
                        if entry is not None:
                            self.report.done(f"kept {checkout}'s editable wheel: {entry.name}")
                else:
                    data, info, name = found
                wheel = Path(scratch) / name
                wheel.write_bytes(data)
                run_uv(
                    ["pip", "install", "--python", python, "--no-deps", "--offline",
                     "--no-cache", *common_flags(), str(wheel)],
                    environ=self.environ, timeout=RESOLVE_TIMEOUT,
                    what=f"installing {checkout} editable", hint=hint,
                )  # fmt: skip
                site = partial / "lib" / f"python{self.python.version}" / "site-packages"
                mark_editable(site, info, checkout)

    def _kept_wheel(self, folder: Path, editable: Editable) -> tuple[bytes, str, str] | None:
        """The kept wheel of `editable`'s key, checked (bytes, dist-info, wheel name); a
        damaged or planted entry is removed with a warning (None: build it again)."""
        entry = editable.entry(folder)
        if entry is None:
            return None
        name = entry.name.split(".", 1)[1]
        try:
            data, info = checked_wheel(entry, name)
        except WheelRefused as error:
            self.report.warn(f"{entry}: not a usable editable wheel ({error}); building it again")
            if entry.is_symlink() or not entry.is_dir():
                entry.unlink(missing_ok=True)
            return None
        self.report.info(f"{editable.checkout} editable: from {entry} (no setup.py run)")
        return data, info, name

    def _sync_online(self, sync: list[str], lock: LockFile, hint: str) -> None:
        """`uv pip sync` with the indexes (what uv's cache lacks is downloaded; what it has
        is revalidated: a request per project page)."""
        try:
            run_uv(
                sync, environ=self.environ, timeout=INSTALL_TIMEOUT,
                what=f"installing {lock.path.name}", hint=hint,
            )  # fmt: skip
        except PythonEnvError as error:
            if "Hash mismatch" in error.message:
                raise PythonEnvError(
                    error.message,
                    f"an index serves a file other than the one {lock.path.name} was written"
                    " from: check the mirror (MMLAB_PYPI_INDEX, MMLAB_TORCH_INDEX,"
                    " MMLAB_MMCV_INDEX); to take its files now: inv python-env --update",
                ) from None
            if "no usable wheels" not in error.message:
                raise
            raise PythonEnvError(
                error.message,
                f"the lock's wheel is no longer listed ({lock.indexes.mmcv_page}): set"
                " MMLAB_MMCV_INDEX to a mirror that has it and run inv python-env --update"
                + lite_hint(self.found.series.mmcv)
                + "; mmcv is never built here",
            ) from None

    def _doctor(self, partial: Path) -> list[str]:
        """The doctor's Python checks on the new environment, asked while its imports are
        checked (before the rename: the venv is relocatable, and each line names the place
        it is renamed to): the warning lines of what they find."""
        # startup: the doctor's checks only once an environment was built
        from mmlab_bootstrap.output import ERROR
        from mmlab_bootstrap.pythonenv.packages import python_section

        _info, findings = python_section(
            self.settings.extension_path,
            self.settings.projects,
            str(partial / "bin" / "python"),
            self.environ,
        )
        lines = []
        for finding in findings:
            if finding.level == ERROR:  # (warnings about building mmcv do not apply here)
                hint = f"; hint: {finding.hint}" if finding.hint else ""
                lines.append(f"doctor: {finding.line}{hint}".replace(str(partial), str(self.venv)))
        return lines

    def _verify(self, python: str) -> None:
        """Import what training imports, in a subprocess of the new environment."""
        ops = self.found.series.compiled_ops  # (mmcv-lite has none)
        modules = ["torch", "mmcv", *(["mmcv.ops"] if ops else [])]
        names = {line.name for line in self.found.lines}
        modules += [
            IMPORT_NAMES.get(n, n) for n in ("mmengine", "mmdet", "mmsegmentation") if n in names
        ]
        modules.append(TRAINING[self.project])
        script = (
            "import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except BaseException as error:\n"
            "        print(f'{name}: {type(error).__name__}: {error}'[:300]); sys.exit(3)\n"
            "import torch\nprint('cuda', bool(torch.cuda.is_available()))\n"
        )
        try:
            done = run_bounded(
                [python, "-I", "-c", script, *modules],
                seconds=VERIFY_TIMEOUT,
                max_bytes=1 << 20,  # (its stderr too: a traceback's lines)
                cwd=os.path.abspath(os.sep),
            )
        except OSError as error:
            raise PythonEnvError(
                f"the new {self.project} environment could not be checked: {error}",
                "run the same command again",
            ) from None
        said = done.out.decode("utf-8", "replace").strip().splitlines()
        if done.code != 0:
            reason = (
                said[-1]
                if said
                else "(no answer)"
                if done.code is None
                else f"(exit status {done.code})"
            )
            raise PythonEnvError(
                f"the new {self.project} environment does not import {reason}",
                "fix what the import needs (a version the lock pins: inv python-env --update;"
                " the checkout's own code: edit it), then run the same command again",
            )
        self.report.done(f"imports {', '.join(modules)} in the new {self.project} environment")
        if not ops:
            self.report.info(
                f"mmcv.ops: not built: {LITE} has no compiled ops (MMLAB_MMCV_PACKAGE={LITE});"
                " models that need them do not run here"
            )
        if self.has_driver and said and said[-1] == "cuda False":
            self.report.warn(
                f"torch in the new {self.project} environment sees no GPU (torch.cuda)"
            )

"""The checkouts' editable wheels, built once and kept in the workspace.

`uv pip install -e` runs a checkout's setup.py twice (metadata, then the wheel) on every
build of a venv; mmdet3d's imports torch, seconds each. Here the editable wheel is built once
with the PEP 660 hook (setuptools' legacy backend, in the new venv, no build isolation) and
kept in the workspace's `.mmlab-editable-wheels/` (one per checkout: a newer replaces the
older; outside MMLAB_VENVS_PATH, so that removing the venvs keeps them, as uv's cache is
kept), named by a key of everything that can change what it holds: the format below, the
checkout's absolute path and HEAD commit, the interpreter (its path, version, platform) and
the setuptools and wheel the lock pins. Only a checkout that is the top of its own git
repository and clean (`git status`: no change and no untracked file apart from what it
ignores; the links' skip-worktree files do not count) is served from it; any other is built
every time. A checkout with a pyproject.toml is left to uv's `-e` (its backend may be
anything). The wheel is installed with `uv pip install --no-deps`, then its
`direct_url.json` says editable, as uv writes it for `-e`.

An entry is read as hostile input: a regular file (never a link or FIFO) of at most
`WHEEL_LIMIT` bytes, a zip whose members pass their CRC and RECORD hashes, whose one
dist-info folder matches the name and version in its file name. Anything else is removed
with one warning and built again. Entries are written through a temporary beside them and
renamed (`fs.replace_atomically`); what a killed run left is swept by the next.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import UNLOCKED, read_regular, replace_atomically, sweep
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.proc import run_bounded
from mmlab_bootstrap.pythonenv.pages import Interpreter
from mmlab_bootstrap.pythonenv.plan import PythonEnvError
from mmlab_bootstrap.pythonenv.uvrun import uv_environ

CACHE_FOLDER = ".mmlab-editable-wheels"  # in the workspace root (beside the locks)
CACHE_FORMAT = 1  # part of every key: a change of what is kept makes every entry stale
ENTRY_TEMPORARY = ".{name}.tmp-{token}"  # an entry being written (fs.replace_atomically)
WHEEL_LIMIT = 16 << 20  # bytes of an editable wheel (a .pth, a finder, metadata: some KB)
MEMBERS_LIMIT = 10_000
BUILD_TIMEOUT = 900
BUILT = "MMLAB-EDITABLE-WHEEL: "
# setuptools' legacy backend (what uv and pip use for a checkout with only a setup.py), run
# as a PEP 517 frontend runs it: in the checkout, the checkout first on sys.path.
BUILD_SCRIPT = (
    "import os, sys\n"
    "sys.path.insert(0, os.getcwd())\n"
    "from setuptools import build_meta\n"
    "name = build_meta.__legacy__.build_editable(sys.argv[1])\n"
    f"print('\\n{BUILT}' + name)\n"
)
_WHEEL_NAME = re.compile(
    r"(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.+!]+)(?:-\d[A-Za-z0-9_.]*)?"
    r"-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+\.whl"
)
ENTRY = "{where}{rest}.{wheel}"  # a kept wheel: its key (where: the checkout's 8), its name
_ANY_KEY = re.compile(r"[0-9a-f]{24}")
_ANY_WHEEL = re.compile(r"[^/]+\.whl")
_ENTRY = re.compile(r"(?P<key>[0-9a-f]{32})\.(?P<wheel>.+\.whl)")


@dataclass(frozen=True)
class Editable:
    """How one checkout is installed: from the wheel kept under its `key`, or built each
    time (`why` says why)."""

    checkout: Path
    key: str | None  # None: not kept (why says so)
    why: str
    state: tuple[str, str] | None = None  # (HEAD, status) the key was made from

    def entry(self, folder: Path) -> Path | None:
        """The entry kept for this key, when there is one (checked when it is read)."""
        if self.key is None or not usable_folder(folder):
            return None
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return None
        for name in names:
            found = _ENTRY.fullmatch(name)
            if found is not None and found["key"] == self.key:
                return folder / name
        return None


def usable_folder(folder: Path) -> bool:
    """The folder of kept wheels is the tool's: a real folder or nothing (never a link)."""
    return not folder.is_symlink() and (folder.is_dir() or not folder.exists())


def checkout_state(git: Git, checkout: Path) -> tuple[str, str] | str:
    """(HEAD, status) of a checkout that is the top of its own repository and clean; else
    why it is not kept."""
    if not (checkout / ".git").exists():
        return "not a git checkout of its own"
    try:
        return _state(git, checkout)
    except (BootstrapError, OSError) as error:  # (no usable git here)
        return f"git is not usable here ({error})"


def _state(git: Git, checkout: Path) -> tuple[str, str] | str:
    top = git.probe(["rev-parse", "--show-toplevel"], cwd=checkout)
    if not top.ok or os.path.realpath(top.out.strip()) != os.path.realpath(checkout):
        return "not a git checkout of its own"
    head = git.probe(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=checkout)
    if not head.ok or not re.fullmatch(r"[0-9a-f]{40,64}", head.out.strip()):
        return "no commit checked out"
    status = git.probe(["status", "--porcelain", "-z", "--untracked-files=normal"], cwd=checkout)
    if not status.ok:
        return "git status failed"
    if status.out.strip("\0"):
        return "uncommitted changes or untracked files"
    return head.out.strip(), status.out


def plan_editable(git: Git, checkout: Path, python: Interpreter, pins: dict[str, str]) -> Editable:
    """Whether (and under which key) `checkout`'s editable wheel is kept."""
    if (checkout / "pyproject.toml").exists() or (checkout / "pyproject.toml").is_symlink():
        return Editable(checkout, None, "it has a pyproject.toml: installed by uv")
    state = checkout_state(git, checkout)
    if isinstance(state, str):
        return Editable(checkout, None, f"built, not kept: {state}")
    head, _status = state
    text = json.dumps(
        {
            "format": CACHE_FORMAT,
            "checkout": os.path.abspath(checkout),
            "head": head,
            "python": [python.path, python.version, python.tag, python.system, python.machine],
            "setuptools": pins.get("setuptools", ""),
            "wheel": pins.get("wheel", ""),
            "backend": "setuptools.build_meta:__legacy__",
        },
        sort_keys=True,
    )
    # the first 8 digits name the checkout alone: its older entries are found and removed
    where = hashlib.sha256(os.path.abspath(checkout).encode()).hexdigest()[:8]
    key = where + hashlib.sha256(text.encode()).hexdigest()[:24]
    return Editable(checkout, key, f"commit {head[:12]}, clean", state)


def lock_pins(lock_text: str) -> dict[str, str]:
    """name -> version of a lock's pins (lower case, `-` for `_`)."""
    found = {}
    for line in lock_text.splitlines():
        pin = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if pin:
            found[re.sub(r"[-_.]+", "-", pin[1]).lower()] = pin[2]
    return found


class WheelRefused(Exception):
    """A wheel file (a cached entry, or what the build made) that is not what it must be."""


def checked_wheel(path: Path, wheel_name: str) -> tuple[bytes, str]:
    """The bytes of the editable wheel at `path` whose file name is to be `wheel_name`, and
    its dist-info folder; WheelRefused for anything else (see the module's text)."""
    named = _WHEEL_NAME.fullmatch(wheel_name)
    if named is None:
        raise WheelRefused(f"{shown(wheel_name)} is not a wheel's name")
    try:
        data = read_regular(path, "", own=True, limit=WHEEL_LIMIT)
    except BootstrapError as error:
        raise WheelRefused(error.message) from None
    except OSError as error:
        raise WheelRefused(str(error)) from None
    if data is None:
        raise WheelRefused("it is gone")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MEMBERS_LIMIT:
                raise WheelRefused("too many members")
            info = f"{named['name']}-{named['version']}.dist-info"
            files: dict[str, bytes] = {}
            for member in members:
                parts = member.filename.split("/")
                if member.filename.startswith("/") or "\\" in member.filename or ".." in parts:
                    raise WheelRefused(f"a member outside the wheel: {shown(member.filename)}")
                if member.is_dir():
                    continue
                if parts[0].endswith(".dist-info") and parts[0] != info:
                    raise WheelRefused(f"a second dist-info folder: {shown(parts[0])}")
                files[member.filename] = archive.read(member)  # (checks its CRC)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as error:
        raise WheelRefused(f"not a readable zip ({error})") from None
    _check_metadata(files, info, named["name"], named["version"])
    return data, info


def _check_metadata(files: dict[str, bytes], info: str, name: str, version: str) -> None:
    metadata = files.get(f"{info}/METADATA")
    record = files.get(f"{info}/RECORD")
    if metadata is None or record is None or f"{info}/WHEEL" not in files:
        raise WheelRefused(f"no {info}/METADATA, WHEEL and RECORD")
    said: dict[str, str] = {}
    for line in metadata.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        said.setdefault(key.strip().lower(), value.strip())
    if (
        canonicalize_name(said.get("name", "")) != canonicalize_name(name)
        or said.get("version") != version
    ):
        raise WheelRefused(
            f"its METADATA names {shown(said.get('name', ''))} {shown(said.get('version', ''))}"
        )
    listed = set()
    for line in record.decode("utf-8", "replace").splitlines():
        path, _, rest = line.partition(",")
        digest = rest.partition(",")[0]
        if not path:
            continue
        listed.add(path)
        if path == f"{info}/RECORD":
            continue
        content = files.get(path)
        if content is None or digest != "sha256=" + _urlsafe(content):
            raise WheelRefused(f"{shown(path)} does not match its RECORD line")
    if set(files) - listed:
        raise WheelRefused("members its RECORD does not list")


def _urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_editable(
    python: str, checkout: Path, out: Path, environ: dict[str, str], venv: Path
) -> Path:
    """Build `checkout`'s editable wheel into `out` with the venv's setuptools (no build
    isolation: torch and what setup.py imports are there); the wheel's path."""
    hint = f"fix what {checkout}/setup.py needs, then run the same command again"
    bin_folder = str(venv / "bin")
    env = {
        **uv_environ(environ),
        "VIRTUAL_ENV": str(venv),
        "PATH": bin_folder + os.pathsep + environ.get("PATH", os.defpath),
    }
    try:
        done = run_bounded(
            [python, "-I", "-c", BUILD_SCRIPT, str(out)],
            seconds=BUILD_TIMEOUT,
            max_bytes=64 << 20,
            env=env,
            cwd=str(checkout),
        )
    except OSError as error:
        raise PythonEnvError(f"building {checkout} editable: {error}", hint) from None
    said = done.out.decode("utf-8", "replace").splitlines()
    if done.code != 0:
        lines = [
            line.strip()
            for line in done.err.decode("utf-8", "replace").splitlines()
            if line.strip()
        ]
        reason = (
            done.stopped
            if done.code is None
            else (shown(lines[-1][:300]) if lines else f"exit status {done.code}")
        )
        raise PythonEnvError(f"building {checkout} editable: {reason}", hint)
    name = next((line[len(BUILT) :] for line in reversed(said) if line.startswith(BUILT)), "")
    if not _WHEEL_NAME.fullmatch(name) or not (out / name).is_file():
        raise PythonEnvError(f"building {checkout} editable: no wheel came out", hint)
    return out / name


def keep(folder: Path, editable: Editable, built: Path) -> Path | None:
    """Keep `built` as the entry of `editable`'s key (removing older entries of the same
    checkout); the entry, or None when the folder cannot hold it."""
    assert editable.key is not None
    entry = folder / f"{editable.key}.{built.name}"
    if not usable_folder(folder):
        return None
    folder.mkdir(mode=0o755, exist_ok=True)
    if entry.is_dir() and not entry.is_symlink():
        return None
    # the checkout's older entries first (superseded: its HEAD or interpreter changed)
    sweep(
        folder,
        ENTRY,
        rule=UNLOCKED,
        symlinks=False,
        where=editable.key[:8],
        rest=_ANY_KEY,
        wheel=_ANY_WHEEL,
    )
    replace_atomically(entry, built, template=ENTRY_TEMPORARY)
    return entry


def sweep_entries(folder: Path) -> list[Path]:
    """What a killed write left in the cache folder."""
    if not usable_folder(folder) or not folder.exists():
        return []
    return sweep(folder, ENTRY_TEMPORARY, rule=UNLOCKED)


def mark_editable(site: Path, info: str, checkout: Path) -> None:
    """Make an installed wheel's `direct_url.json` say what `uv pip install -e` writes (an
    editable install of the checkout), and its RECORD line match."""
    folder = site / info
    text = json.dumps(
        {"url": Path(os.path.abspath(checkout)).as_uri(), "dir_info": {"editable": True}},
        separators=(",", ":"),
    ).encode()
    (folder / "direct_url.json").write_bytes(text)
    record = folder / "RECORD"
    lines = record.read_text().splitlines()
    line = f"{info}/direct_url.json,sha256={_urlsafe(text)},{len(text)}"
    kept = [entry for entry in lines if not entry.startswith(f"{info}/direct_url.json,")]
    record.write_text("\n".join([*kept, line]) + "\n")

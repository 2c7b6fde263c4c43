"""The training interpreter's answers about configs, kept so that one command starts it at most
once, and a command that changes nothing (a second `status`) does not start it at all.

An answer is kept per interpreter and config with what it depends on: the interpreter (its
path, the file it resolves to, and the venv's `site-packages` and `pyvenv.cfg`: an install
changes them), every file the config's load opened (its own, its bases, the modules it
imported from outside the libraries: path, size, mtime_ns and sha256, the hash checked
against the one the loader reported, so a file changed while it was loading is not kept) and
the value of every environment variable it read (and `PYTHONPATH`'s kin). It is used again
only when all of these are as they were.

Kept in this process (`bootstrap`'s steps and its final check read the configs once), and on
disk beside `.env` (`CACHE_FILE`) by the commands that change the workspace (fetch-checkpoints,
bootstrap; never under --dry, never `status`): written temp-then-rename, read back as untrusted
input (bounded, a regular file of the tool's own, every entry checked as the loader's answer
is); anything wrong with it and it is ignored, as if it were not there.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmlab_bootstrap.checkpoints.configload import (
    MAX_FILES,
    MAX_ITEMS,
    NAME,
    SCRIPT,
    TEXT_LIMIT,
    Loaded,
    Refused,
    add_entry,
    load_configs,
)
from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.fs import read_regular, write_atomically

CACHE_FILE = ".mmlab-bootstrap-configs.json"
VERSION = 2
CACHE_LIMIT = 4 << 20  # bytes of the cache file
MAX_KEPT = 256  # answers kept on disk
FILE_LIMIT = 4 << 20  # bytes of a file a load opened, hashed at each check (bigger: not kept)
# Variables that change what the interpreter imports, whether a config reads them or not.
INTERPRETER_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONNOUSERSITE")
HINT = f"remove {CACHE_FILE} (a cache of the tool's; it is made again)"

Record = dict[str, Any]
_MEMORY: dict[tuple[str, str], Record] = {}  # (interpreter, config) -> kept answer
_USED: dict[str, set[tuple[str, str]]] = {}  # workspace -> keys of the answers it used


def load_cached(
    python: str,
    paths: Sequence[Path],
    environment: Mapping[str, str],
    say: Callable[[str], None] | None,
    root: Path,
) -> Loaded:
    """`configload.load_configs`, with every answer still valid taken from this process's or
    the workspace's cache; the interpreter is started only for the configs with none."""
    identity = interpreter_identity(python)
    loaded = Loaded(python)
    on_disk: dict[tuple[str, str], Record] | None = None
    missing: list[Path] = []
    used = _USED.setdefault(str(root), set())
    for path in paths:
        key = (python, str(path))
        record = _MEMORY.get(key)
        if record is None or not _valid(record, identity, environment):
            on_disk = _read_cache(root) if on_disk is None else on_disk
            record = on_disk.get(key)
        if record is not None and _valid(record, identity, environment) and _use(loaded, record):
            _MEMORY[key] = record
            used.add(key)
        else:
            missing.append(path)
    if not missing:
        return loaded
    fresh = load_configs(python, missing, environment, say)
    if fresh.refused:
        return fresh
    loaded.loader = loaded.loader or fresh.loader
    loaded.reads.update(fresh.reads)
    loaded.failed.update(fresh.failed)
    loaded.entries.update(fresh.entries)
    for path, entry in fresh.entries.items():
        kept = _record(python, identity, fresh.loader, path, entry, environment)
        if kept is not None:
            _MEMORY[(python, str(path))] = kept
            used.add((python, str(path)))
    return loaded


def keep_config_answers(root: Path) -> None:
    """Write the answers this process used for the workspace at `root` to its cache file,
    with the others still there (at most MAX_KEPT); nothing when the file would not change.
    A cache that cannot be written is left as it is (it is only a cache)."""
    used = _USED.get(str(root))
    if not used:
        return
    records = {k: r for k, r in _read_cache(root).items() if k not in used}
    records.update({k: _MEMORY[k] for k in used if k in _MEMORY})
    kept = list(records.values())[-MAX_KEPT:]
    text = json.dumps({"version": VERSION, "kept": kept}, sort_keys=True) + "\n"
    path = root / CACHE_FILE
    try:
        if read_regular(path, HINT, own=True, limit=CACHE_LIMIT) == text.encode():
            return
        write_atomically(path, text, own=True)
    except (OSError, BootstrapError):
        return


def interpreter_identity(python: str) -> list[Any]:
    """What says the interpreter and its installed packages are as they were (and the
    loader's script this tool runs in it)."""
    real = os.path.realpath(python)
    venv = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    places = [python, real, os.path.join(venv, "pyvenv.cfg")]
    places += sorted(glob.glob(os.path.join(glob.escape(venv), "lib", "python*", "site-packages")))[
        :4
    ]
    script = hashlib.sha256(SCRIPT.encode()).hexdigest()[:16]  # (a new tool asks again)
    identity: list[Any] = [python, real, script]
    for place in places:
        try:
            found = os.stat(place)
        except OSError:
            identity.append(None)
            continue
        identity.append([place, found.st_size, found.st_mtime_ns, found.st_ino])
    return identity


def _file_identity(name: str) -> list[Any] | None:
    """[path, size, mtime_ns, sha256] of a regular file, or None."""
    try:
        found = os.stat(name)
        data = read_regular(Path(name), HINT, limit=FILE_LIMIT)
    except (OSError, BootstrapError):
        return None
    if data is None:
        return None
    return [name, found.st_size, found.st_mtime_ns, hashlib.sha256(data).hexdigest()]


def _record(
    python: str,
    identity: list[Any],
    loader: str,
    path: Path,
    entry: Any,
    environment: Mapping[str, str],
) -> Record | None:
    """The answer for one config with what it depends on; None when it cannot be kept (the
    loader did not say which files it read, or one changed since it read it)."""
    files = entry.get("files")
    if files is None:
        return None
    checked: list[list[Any]] = []
    for name, sha256 in files:
        found = _file_identity(name)
        if found is None or found[3] != sha256:
            return None
        checked.append(found)
    names = [name for name, _ in entry["env"]] + list(INTERPRETER_VARIABLES)
    return {
        "python": python,
        "interpreter": identity,
        "config": str(path),
        "files": checked,
        "env": {name: environment.get(name) for name in names},
        "loader": loader,
        "entry": entry,
    }


def _valid(record: Record, identity: list[Any], environment: Mapping[str, str]) -> bool:
    if record["interpreter"] != identity:
        return False
    if any(environment.get(name) != value for name, value in record["env"].items()):
        return False
    return all(_file_identity(found[0]) == found for found in record["files"])


def _use(loaded: Loaded, record: Record) -> bool:
    """Take a kept answer into `loaded` (False when it is not one the loader could give)."""
    if loaded.loader and loaded.loader != record["loader"]:
        return False
    before, loaded.loader = loaded.loader, record["loader"]
    try:
        add_entry(loaded, Path(record["config"]), record["entry"])
    except Refused:
        loaded.loader = before
        return False
    return True


def _read_cache(root: Path) -> dict[tuple[str, str], Record]:
    """The workspace's kept answers whose shape is right (the rest, or all when the file is
    not one of ours, left out)."""
    try:
        data = read_regular(root / CACHE_FILE, HINT, own=True, limit=CACHE_LIMIT)
        document: Any = json.loads(data) if data is not None else None
    except (OSError, BootstrapError, ValueError, RecursionError):
        return {}
    if not isinstance(document, dict) or document.get("version") != VERSION:
        return {}
    kept = document.get("kept")
    if not isinstance(kept, list) or len(kept) > MAX_KEPT:
        return {}
    found: dict[tuple[str, str], Record] = {}
    for record in kept:
        if _well_formed(record):
            found[(record["python"], record["config"])] = record
    return found


def _well_formed(record: Any) -> bool:
    if not isinstance(record, dict) or set(record) != {
        "python",
        "interpreter",
        "config",
        "files",
        "env",
        "loader",
        "entry",
    }:
        return False
    texts = (record["python"], record["config"], record["loader"])
    if not all(isinstance(t, str) and len(t) <= TEXT_LIMIT and "\0" not in t for t in texts):
        return False
    if not record["loader"].isprintable() or not isinstance(record["interpreter"], list):
        return False
    if not os.path.isabs(record["config"]):
        return False
    files, env = record["files"], record["env"]
    if not isinstance(files, list) or len(files) > MAX_FILES:
        return False
    for found in files:
        if not (
            isinstance(found, list)
            and len(found) == 4
            and isinstance(found[0], str)
            and "\0" not in found[0]
            and all(type(n) is int for n in found[1:3])
            and isinstance(found[3], str)
        ):
            return False
    if not isinstance(env, dict) or len(env) > MAX_ITEMS + len(INTERPRETER_VARIABLES):
        return False
    return all(
        isinstance(k, str) and NAME.match(k) and (v is None or isinstance(v, str))
        for k, v in env.items()
    ) and isinstance(record["entry"], dict)

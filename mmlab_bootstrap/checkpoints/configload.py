"""Configs read the way training reads them: the sub-project's own config loader (mmcv 1.x's
`mmcv.Config.fromfile`, else mmengine's `Config.fromfile`), run in the workspace's training
interpreter, never in this process.

One bounded run (`proc.run_bounded`: `LOAD_SECONDS`, `OUTPUT_LIMIT`, its process group killed
at the end) loads every named config with the environment a training shell that sourced
`.env` has, and prints one JSON line: for each config, the weights (`load_from`, every
`pretrained` and `init_cfg=dict(type='Pretrained', checkpoint=...)` anywhere in the config,
keyed as `configread` keys them) and the environment variables it read (recorded by a wrapper
around `os.environ` while the config loads). That answer is untrusted: it is refused unless
it is exactly the shape the script prints, within `MAX_ITEMS` items and `configread`'s
`VALUE_LIMIT` characters, with no NUL. When the interpreter or one config fails, the caller
reads statically (`configread`) and says why in one line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmlab_bootstrap.checkpoints.configread import (
    FILE_LIMIT,
    VALUE_LIMIT,
    ConfigRead,
    EnvRead,
    Unresolved,
    WeightRef,
)
from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.proc import run_bounded

LOAD_SECONDS = 120.0  # importing mmcv imports torch: seconds on a cold cache
OUTPUT_LIMIT = 1 << 20  # bytes, both streams: real answers are under 10 KiB
MAX_ITEMS = 1000  # weights or variables of one config; real ones have under 10
MAX_FILES = 96  # files a config's load opened (a base tree holds up to 64), to key the cache on
TEXT_LIMIT = 1000  # characters of a key, a variable's name, a loader's or an error's text
MARK = "MMLAB-CONFIG "
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}\Z")
SHA256 = re.compile(r"([0-9a-f]{64})?\Z")  # empty: the loader could not read it again

# Run in the training interpreter: `python -c SCRIPT config...`. Its standard library and the
# sub-project's loader only; what it prints last on a line starting with MARK is its answer.
SCRIPT = """\
import json, os, sys
from collections.abc import MutableMapping
MARK = %r
NEST = 64
FILES = %d
SIZE = %d
answer = {"loader": None, "configs": []}
try:
    from mmcv import Config
    import mmcv
    answer["loader"] = "mmcv %%s Config.fromfile" %% getattr(mmcv, "__version__", "?")
except ImportError as first:
    try:
        from mmengine.config import Config
        import mmengine
        answer["loader"] = "mmengine %%s Config.fromfile" %% getattr(mmengine, "__version__", "?")
    except ImportError as second:
        answer["error"] = "neither mmcv.Config (%%s) nor mmengine's Config (%%s) imports" %% (
            str(first)[:200], str(second)[:200])
        print(MARK + json.dumps(answer))
        sys.exit(0)

# Reads by the standard library (tempfile's TMPDIR, ...) or the loader's own package are not
# the config's: the first frame past os and the mapping methods says who reads.
import tempfile
tempfile.gettempdir()
package = sys.modules[Config.__module__.split(".")[0]]
LIBRARIES = tuple(os.path.dirname(f) + os.sep for f in (os.__file__, package.__file__) if f)

def by_config():
    frame = sys._getframe(2)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen ")
            or frame.f_code.co_filename == os.__file__
            or frame.f_code.co_filename.endswith("_collections_abc.py")):
        frame = frame.f_back
    return frame is None or not frame.f_code.co_filename.startswith(LIBRARIES)

class Recording(MutableMapping):
    def __init__(self, real):
        self.real, self.read = real, {}
    def __getitem__(self, key):
        if isinstance(key, str) and key not in self.read and by_config():
            self.read[key] = key in self.real
        return self.real[key]
    def __setitem__(self, key, value):
        self.real[key] = value
    def __delitem__(self, key):
        del self.real[key]
    def __iter__(self):
        return iter(self.real)
    def __len__(self):
        return len(self.real)
    def copy(self):
        return dict(self.real)

def value(found):
    if isinstance(found, str):
        return found
    return {"type": type(found).__name__, "repr": repr(found)[:200]}

def walk(found, where, depth, out):
    if depth > NEST:
        return
    if isinstance(found, dict):
        pretrained = found.get("pretrained")
        if pretrained is not None and not isinstance(pretrained, bool):
            out.append([where + "pretrained", value(pretrained)])
        if found.get("type") == "Pretrained" and found.get("checkpoint") is not None:
            out.append([where + "checkpoint", value(found["checkpoint"])])
        for key, inner in found.items():
            if isinstance(key, str) and key != "load_from":
                walk(inner, where + key + ".", depth + 1, out)
    elif isinstance(found, (list, tuple)):
        for number, inner in enumerate(found):
            walk(inner, where + str(number) + ".", depth + 1, out)

# The files a config's load opened (its own, its bases, modules it imported from outside
# the libraries; not the loader's temporary copies, removed by then) and the loader's own
# module and package files, each with its sha256
# when the load is over: what the tool's cache keys on.
# A FIFO, a device or a socket is refused when the config would open it (it could block), and
# a file of its own larger than the static reader reads (FILE_LIMIT): it would load for minutes.
import hashlib, stat
SKIP = LIBRARIES + tuple(os.path.join(p, "") for p in {sys.prefix, sys.base_prefix,
    sys.exec_prefix, "/dev", "/proc"})
opened = None

def audit(event, args):
    if event != "open" or opened is None or not isinstance(args[0], (str, bytes)):
        return
    name = os.path.abspath(os.fsdecode(args[0]))
    try:
        found = os.stat(name)
    except OSError:
        return
    mode = found.st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (
            (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and name != os.devnull):
        raise OSError("refusing to open %%s: not a regular file" %% name)
    if stat.S_ISREG(mode) and not name.startswith(SKIP) and not name.endswith(".pyc"):
        if found.st_size > SIZE:
            raise OSError("refusing to open %%s: more than %%d bytes" %% (name, SIZE))
        opened.setdefault(name, None)

sys.addaudithook(audit)
# The loader's own code (an edit of an editable mmcv changes what it answers).
LOADER_FILES = [os.path.abspath(f) for f in (
    getattr(sys.modules[Config.__module__], "__file__", None), package.__file__) if f]

def digest(name):
    try:
        with open(name, "rb") as source:
            found = hashlib.sha256()
            for chunk in iter(lambda: source.read(1 << 20), b""):
                found.update(chunk)
            return found.hexdigest()
    except OSError:
        return ""

def files_of(before):
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str) and module.__name__ not in before and not name.startswith(SKIP):
            opened.setdefault(os.path.abspath(name), None)
    for name in LOADER_FILES:
        opened.setdefault(name, None)
    # (the loader's temporary copies are gone by now)
    found = [name for name in opened if os.path.isfile(name)]
    if len(found) > FILES:
        return None
    return [[name, digest(name)] for name in found]

real = os.environ
for path in sys.argv[1:]:
    recording = Recording(real)
    os.environ = recording
    opened, before = {}, set(sys.modules)
    try:
        config = Config.fromfile(path)
        merged = getattr(config, "_cfg_dict", None)
        if not isinstance(merged, dict):
            merged = config.to_dict()
        weights = []
        if merged.get("load_from") is not None:
            weights.append(["load_from", value(merged["load_from"])])
        walk(merged, "", 0, weights)
        unique = []
        for weight in weights:
            if weight not in unique:
                unique.append(weight)
        entry = {"path": path, "ok": True, "weights": unique}
    except BaseException as error:
        text = (type(error).__name__ + ": " + str(error))[:%d]
        entry = {"path": path, "ok": False, "error": text}
    finally:
        os.environ = real
    entry["env"] = [[name, present] for name, present in recording.read.items()]
    entry["files"] = files_of(before)
    opened = None
    answer["configs"].append(entry)
print(MARK + json.dumps(answer))
"""


@dataclass
class Loaded:
    """What the training interpreter's loader made of the configs: `reads` by path (the
    configs it loaded), `failed` by path (why it could not load one), `refused` (why the
    whole answer is not used; then nothing was loaded)."""

    python: str
    loader: str = ""
    reads: dict[Path, ConfigRead] = field(default_factory=dict)
    failed: dict[Path, str] = field(default_factory=dict)
    refused: str = ""
    entries: dict[Path, Any] = field(default_factory=dict)  # checked entries, as answered


class Refused(Exception):
    """An answer (or a cached entry) that is not what the loader's script prints."""


def load_configs(
    python: str,
    paths: Sequence[Path],
    environment: Mapping[str, str],
    say: Callable[[str], None] | None = None,
) -> Loaded:
    """Load each config at `paths` (absolute) in the interpreter `python`, with
    `environment` (what a shell that sourced `.env` has)."""
    loaded = Loaded(python)
    env = {**environment, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}
    command = [python, "-c", SCRIPT % (MARK, MAX_FILES, FILE_LIMIT, TEXT_LIMIT), *map(str, paths)]
    try:
        ran = run_bounded(
            command, seconds=LOAD_SECONDS, max_bytes=OUTPUT_LIMIT, env=env, cwd="/", say=say
        )
    except OSError as error:
        loaded.refused = f"does not start ({error.strerror or error})"
        return loaded
    if ran.stopped:
        loaded.refused = ran.stopped
        return loaded
    lines = [
        line[len(MARK) :]
        for line in ran.out.decode("utf-8", "replace").splitlines()
        if line.startswith(MARK)
    ]
    if ran.code != 0 or not lines:
        tail = _tail(ran.err) or _tail(ran.out) or "no answer"
        loaded.refused = f"exited {ran.code}: {tail}"
        return loaded
    try:
        answer: Any = json.loads(lines[-1])
        _answer(loaded, answer, paths)
    except (ValueError, RecursionError):
        loaded.refused = "its answer is not JSON"
        loaded.reads.clear()
        loaded.failed.clear()
        loaded.entries.clear()
    except Refused as refused:
        loaded.refused = f"its answer is refused: {refused}"
        loaded.reads.clear()
        loaded.failed.clear()
        loaded.entries.clear()
    return loaded


def _answer(loaded: Loaded, answer: Any, paths: Sequence[Path]) -> None:
    """Check the answer's every part and keep it (else `Refused`, saying what is wrong)."""
    if not isinstance(answer, dict):
        raise Refused("not an object")
    if isinstance(answer.get("error"), str):
        raise Refused(_plain(_text(answer["error"], "error")))
    loaded.loader = _plain(_text(answer.get("loader"), "loader"))
    configs = answer.get("configs")
    if not isinstance(configs, list) or len(configs) != len(paths):
        raise Refused(f"not one entry for each of the {len(paths)} config(s)")
    for path, entry in zip(paths, configs, strict=True):
        add_entry(loaded, path, entry)


def add_entry(loaded: Loaded, path: Path, entry: Any) -> None:
    """Check one config's entry of the answer (or of the cache: `configcache`) and keep it in
    `loaded` (else `Refused`)."""
    if not isinstance(entry, dict) or entry.get("path") != str(path):
        raise Refused(f"the entry for {path} is not one")
    files = entry.get("files")
    if files is not None:
        for item in _items(files, "files"):
            if not (isinstance(item, list) and len(item) == 2):
                raise Refused("a file read is not a [path, sha256] pair")
            if not os.path.isabs(_text(item[0], "a file's path", VALUE_LIMIT)):
                raise Refused("a file read is not an absolute path")
            if not SHA256.match(_text(item[1], "a file's sha256")):
                raise Refused("a file's sha256 is not one")
    env = _items(entry.get("env"), "env")
    for item in env:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not NAME.match(item[0])
            or not isinstance(item[1], bool)
        ):
            raise Refused("a variable read is not a [name, was-set] pair")
    if entry.get("ok") is False:
        loaded.failed[path] = _plain(_text(entry.get("error"), "error"))
        loaded.entries[path] = entry
        return
    if entry.get("ok") is not True:
        raise Refused(f"the entry for {path} says neither ok nor not")
    read = ConfigRead(path, files=[path], reader=f"{loaded.loader} in {loaded.python}")
    for item in _items(entry.get("weights"), "weights"):
        if not isinstance(item, list) or len(item) != 2:
            raise Refused("a weight is not a [key, value] pair")
        key, value = _text(item[0], "a weight's key"), item[1]
        if isinstance(value, str):
            read.weights.append(WeightRef(key, _text(value, "a weight", VALUE_LIMIT)))
        elif isinstance(value, dict) and set(value) == {"type", "repr"}:
            kind, text = _text(value["type"], "a type"), _text(value["repr"], "a value")
            why = f"a {kind}, not a path or URL"
            read.weights.append(WeightRef(key, Unresolved(text, why)))
        else:
            raise Refused("a weight's value is neither a string nor a described value")
    for name, present in env:
        # set when read: training needs it set; not set (read with a default): it may be
        read.env.append(EnvRead(name, path, 0, has_default=not present))
    loaded.reads[path] = read
    loaded.entries[path] = entry


def _items(found: Any, what: str) -> list[Any]:
    if not isinstance(found, list):
        raise Refused(f"{what} is not a list")
    if len(found) > MAX_ITEMS:
        raise Refused(f"{what} has more than {MAX_ITEMS} items")
    return found


def _text(found: Any, what: str, limit: int = TEXT_LIMIT) -> str:
    if not isinstance(found, str):
        raise Refused(f"{what} is not a string")
    if len(found) > limit:
        raise Refused(f"{what} is longer than {limit} characters")
    if "\0" in found:
        raise Refused(f"{what} holds a NUL")
    return found


def _tail(data: bytes, lines: int = 2) -> str:
    text = data.decode("utf-8", "replace").strip().splitlines()
    return _plain(" | ".join(line.strip() for line in text[-lines:])[:300])


def _plain(text: str) -> str:
    """A text of the interpreter's as it is when it is printable, else quoted with escapes."""
    return text if text.isprintable() else shown(text)

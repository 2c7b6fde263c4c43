"""A kill storm: random SIGKILL/SIGINT during cross-filesystem `--adopt` and `--backup`.

A tree with symlinks, hard links, deep folders and non-UTF-8 names sits at a link location
beside mmdetection3d's tracked files; storage is another filesystem (a tmpfs). Runs of
`inv link-data --adopt` or `--backup` are killed at random moments; after every kill each
original file's bytes must still be at the location, in the target or in a backup beside the
location. Then a re-run and `unlink` finish the work, and the same holds. Kills that landed
mid-work (the run had moved some files but not all) are counted; a minimum must be reached.
"""

from __future__ import annotations

import os
import random
import re
import select
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from mmlab_bootstrap.fs.transfer import LEFTOVER
from mmlab_bootstrap.fs.walking import walk

from .conftest import BIN, Cloned, mount, scaled
from .lib.linkshapes import TRACKED

KILLS = scaled(8, 32)
MIDWORK_AT_LEAST = scaled(3, 12)
FOLDERS, FILES_PER_FOLDER = 80, 100  # 8000 files, plus the odd ones
DEEP = 80
SEED = int(os.environ.get("KILL_STORM_SEED", "0")) or random.randrange(1 << 30)

Tree = dict[
    bytes, tuple[str, bytes]
]  # relative path under data/ -> ("file", bytes) or ("link", text)


def build_tree(location: Path, rng: random.Random) -> Tree:
    """Write the tree at `location` (beside what is there) and return what it holds."""
    base = os.fsencode(location)
    made: Tree = {}

    def write(relative: bytes, data: bytes) -> None:
        path = base + b"/" + relative
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        made[relative] = ("file", data)

    for folder in range(FOLDERS):
        for number in range(FILES_PER_FOLDER):
            write(b"set%02d/f%03d.bin" % (folder, number), rng.randbytes(rng.randrange(1, 600)))
    for raw in (b"caf\xe9.bin", b"\xff\xfe-not-utf8.txt", b"ok-\x80\x81/inner-\xc3.bin"):
        write(b"odd/" + raw, rng.randbytes(500))
    write(b"set01/.f000.bin.mmlab-bootstrap-copy", b"a user's file with a temporary-like name")
    deep = b"/".join([b"deep"] * DEEP)
    write(deep + b"/bottom.bin", b"at the bottom")
    write(b"hard/one.bin", b"shared by two names")
    os.link(base + b"/hard/one.bin", base + b"/hard/two.bin")
    made[b"hard/two.bin"] = ("file", b"shared by two names")
    links = {
        b"links/to-set": b"../set00",
        b"links/dangling": b"/nonexistent/dataset",
        b"links/absolute": b"/etc/hostname",
        b"links/\xfe-odd": b"../odd",
    }
    os.makedirs(base + b"/links", exist_ok=True)
    for relative, text in links.items():
        os.symlink(text, base + b"/" + relative)
        made[relative] = ("link", text)
    return made


def where(tree_root: bytes, relative: bytes) -> tuple[str, bytes] | None:
    """What a path holds (never following a symlink), or None."""
    path = tree_root + b"/" + relative
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(mode):
        return ("link", os.readlink(path))
    if stat.S_ISREG(mode):
        with open(path, "rb") as handle:
            return ("file", handle.read())
    return None


def places(location: Path, target: Path) -> list[bytes]:
    """Where the tree's files may be: the location (a real folder), backups beside it, the
    target."""
    found = []
    if location.is_dir() and not location.is_symlink():
        found.append(os.fsencode(location))
    for name in sorted(os.listdir(location.parent)):
        if re.fullmatch(r"data\.bak-\d{8}-\d{6}(-\d+)?", name, re.ASCII):
            found.append(os.fsencode(location.parent / name))
    found.append(os.fsencode(target))
    return found


def lost(tree: Tree, location: Path, target: Path) -> list[bytes]:
    """Files of the tree whose bytes (or link text) are nowhere to be found."""
    roots = places(location, target)
    return [
        relative
        for relative, content in tree.items()
        if not any(where(root, relative) == content for root in roots)
    ]


def at_location(tree: Tree, location: Path) -> int:
    """How many of the tree's files are still at the location (a real folder)."""
    if location.is_symlink() or not location.is_dir():
        return 0
    base = os.fsencode(location)
    return sum(1 for relative in tree if os.path.lexists(base + b"/" + relative))


def leftovers(*roots: Path) -> list[str]:
    """Temporaries of the tool left behind (the tool makes them; users never name files so)."""
    found = []
    for root in roots:
        if root.is_dir() and not root.is_symlink():
            for _, _, entries in walk(root):
                found += [e.path for e in entries if LEFTOVER.fullmatch(os.path.basename(e.path))]
    return found


def read_until(process: subprocess.Popen[bytes], marker: bytes, deadline: float) -> bytes:
    """Read the process's output until `marker` shows (or it ends, or time is up)."""
    assert process.stdout is not None
    seen = b""
    descriptor = process.stdout.fileno()
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([descriptor], [], [], 0.05)
        if ready:
            chunk = os.read(descriptor, 65536)
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.slow
def test_kill_storm_loses_nothing(cloned: Cloned, tmp_path: Path, mounts: list[Path]) -> None:
    rng = random.Random(SEED)
    storage = tmp_path / "tmpfs"
    mount(mounts, storage, "size=512m")
    location = cloned.ext / "mmdetection3d" / "data"
    target = storage / "mmdetection3d" / "data"
    inv = [str(BIN / "inv")]
    kills = midwork = cycles = 0
    started = time.monotonic()
    outputs: list[str] = []
    full, work = 1.0, 0.5  # seconds for a whole run; to kill within, once moving began
    while kills < KILLS:
        cycles += 1
        tree = build_tree(location, rng)
        total = len(tree)
        while True:  # kill runs of this cycle until one finishes on its own
            way = "--adopt" if rng.random() < 0.8 else "--backup"
            before = at_location(tree, location)
            process = subprocess.Popen(
                [*inv, "link-data", way, "--dataset-path", str(storage)],
                cwd=cloned.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            began = time.monotonic()
            head = b""
            if way == "--adopt":  # wait for the line that says the move begins
                head = read_until(process, b"moving ", deadline=began + 30)
                moving = time.monotonic()
                wait = rng.uniform(0, work)
            else:
                wait = rng.uniform(0, full)
            try:
                process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                process.send_signal(rng.choice([signal.SIGKILL, signal.SIGINT]))
            out, _ = process.communicate(timeout=60)
            out = head + out
            outputs.append(out.decode(errors="replace"))
            # Python itself may print a traceback for a Ctrl-C while it is still starting
            # (its site module, the editable install's finder) or importing invoke; once the
            # tool's own code runs, an interruption is one clean line: no frame of a file in
            # the package's folder may show
            assert b"Traceback" not in out or (
                out.rstrip().endswith(b"KeyboardInterrupt") and b"/mmlab_bootstrap/" not in out
            ), out.decode(errors="replace")
            missing = lost(tree, location, target)
            assert missing == [], (SEED, missing[:5])
            if process.returncode == 0:
                full = time.monotonic() - began  # a whole run takes this long
                if way == "--adopt" and b"moving " in head:
                    work = max(0.02, (time.monotonic() - moving) * 0.7)
                break
            kills += 1
            after = at_location(tree, location)
            if 0 < after < before or (way == "--backup" and after == 0 < before):
                midwork += 1  # some of the tree had moved, not all of it
            if kills >= KILLS:
                break
        final = subprocess.run(
            [*inv, "link-data", "--adopt", "--dataset-path", str(storage)],
            cwd=cloned.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert final.returncode == 0, (SEED, final.stdout, final.stderr)
        assert lost(tree, location, target) == []
        if way == "--adopt":  # a finished move leaves no temporary of a killed one behind
            assert leftovers(location.parent, target) == [], SEED
        for relative, data in TRACKED["data"].items():
            assert (cloned.ext / "mmdetection3d" / relative).read_bytes() == data
        unlinked = subprocess.run(
            [*inv, "unlink", "--data", "--dataset-path", str(storage)],
            cwd=cloned.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert unlinked.returncode == 0, (SEED, unlinked.stdout, unlinked.stderr)
        assert lost(tree, location, target) == [], SEED
        for relative, data in TRACKED["data"].items():
            assert (cloned.ext / "mmdetection3d" / relative).read_bytes() == data
        named = final.stdout + unlinked.stdout + "".join(outputs)
        assert str(target) in named
        # next cycle: a fresh tree where the user had it, empty storage
        for name in os.listdir(location.parent):
            if name.startswith("data.bak-"):
                shutil.rmtree(location.parent / name)
        shutil.rmtree(target)
        keep = {os.fsencode(location / r.split("/", 1)[1]) for r in TRACKED["data"]}
        for _, _, entries in walk(location):
            for entry in entries:
                if os.fsencode(entry.path) not in keep:
                    os.unlink(entry.path)
        print(
            f"cycle {cycles}: {total} files, {kills} kills, {midwork} mid-work so far,"
            f" {time.monotonic() - started:.1f} s"
        )
    took = time.monotonic() - started
    print(f"seed {SEED}: {kills} kills, {midwork} mid-work, {cycles} cycles, {took:.1f} s")
    assert midwork >= MIDWORK_AT_LEAST, (SEED, kills, midwork)

"""Build a realistic superproject with nested submodules as bare repositories under one folder.

The layout mirrors GitHub so that a `file://` folder can stand in for a mirror:
`<served>/<owner>/<name>.git`. History is written with `git fast-import` so that hundreds
of commits take well under a second.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

GITHUB = "https://github.com/"
OWNER = "fake"
# A snapshot of the real open-mmlab/mmdetection3d (1.0.0rc4) in the local stand-in for GitHub.
REAL_MMDET3D = Path("/work/real/gh/open-mmlab/mmdetection3d.git")


def git(*args: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    """Run git for the fixture, with file:// allowed for this call only."""
    done = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().rstrip()


@dataclass
class Submodule:
    """A gitlink in a repository: where it sits and which repository it points to."""

    path: str
    name: str


@dataclass
class RepoSpec:
    """What one served repository holds."""

    name: str
    commits: int = 3
    bytes_per_commit: int = 256
    files: dict[str, bytes] = field(default_factory=dict)
    submodules: list[Submodule] = field(default_factory=list)
    tip_bytes: int = 0
    many_files: int = 0  # small files at the tip, so that checking it out takes a while


def _blob(data: bytes) -> bytes:
    return b"data %d\n" % len(data) + data + b"\n"


def build_repo(served: Path, spec: RepoSpec, gitlinks: dict[str, str], absolute: bool) -> str:
    """Create `<served>/fake/<name>.git` with `spec.commits` commits; return the tip commit."""
    bare = served / OWNER / f"{spec.name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", "-b", "main", str(bare))
    rng = random.Random(spec.name)
    stream = bytearray()
    for number in range(1, spec.commits + 1):
        last = number == spec.commits
        message = f"{spec.name} commit {number}".encode()
        stream += b"commit refs/heads/main\n"
        stream += b"committer Test <test@example.com> %d +0000\n" % (1_600_000_000 + number)
        stream += _blob(message)
        noise = rng.randbytes(spec.bytes_per_commit)
        stream += b"M 100644 inline history.bin\n" + _blob(noise)
        stream += b"M 100644 inline README.md\n" + _blob(b"# %s\n" % spec.name.encode())
        if last:
            if spec.tip_bytes:
                stream += b"M 100644 inline assets/blob.bin\n" + _blob(
                    rng.randbytes(spec.tip_bytes)
                )
            for path, data in spec.files.items():
                stream += b"M 100644 inline %s\n" % path.encode() + _blob(data)
            for index in range(spec.many_files):
                path = b"many/%02d/file%05d.txt" % (index % 64, index)
                stream += b"M 100644 inline %s\n" % path + _blob(b"%d\n" % index)
            modules = ""
            for sub in spec.submodules:
                url = f"{GITHUB}{OWNER}/{sub.name}.git" if absolute else f"../{sub.name}.git"
                modules += f'[submodule "{sub.name}"]\n\tpath = {sub.path}\n\turl = {url}\n'
                stream += b"M 160000 %s %s\n" % (gitlinks[sub.name].encode(), sub.path.encode())
            if modules:
                stream += b"M 100644 inline .gitmodules\n" + _blob(modules.encode())
    git("fast-import", "--quiet", cwd=bare, stdin=bytes(stream))
    return git("rev-parse", "refs/heads/main", cwd=bare)


MMDET3D_DATA = {
    "data/scannet/batch_load_scannet_data.py": b"# prepares scannet\n",
    "data/lyft/train.txt": b"scene-1\nscene-2\n",
    "data/s3dis/README.md": b"# s3dis\n",
}


# Tracked files under a link location, so that both link tasks meet the "tracked only" state.
MMDET_CKPT = {"checkpoints/README.md": b"# download checkpoints here\n"}


@dataclass
class Fixture:
    """The served repositories and the URLs that reach them."""

    served: Path
    tips: dict[str, str]

    def url(self, name: str = "mmlab_extension") -> str:
        return f"file://{self.served}/{OWNER}/{name}.git"

    @property
    def github_url(self) -> str:
        return f"{GITHUB}{OWNER}/mmlab_extension.git"

    @property
    def mirror(self) -> str:
        return f"file://{self.served}/"

    def bare(self, name: str) -> Path:
        return self.served / OWNER / f"{name}.git"


class Templates:
    """Where a process keeps the superprojects it built, to copy instead of building again.

    The build is deterministic (fixed commit times, seeded bytes), so a copy is byte for byte
    what a new build would be. conftest.py sets `root` (a folder of the session's own) and
    `paused` (the write guard off while a template is built there); without a root (the
    benchmarks) every call builds."""

    root: Path | None = None
    paused: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
    built: ClassVar[dict[tuple[bool, int, int, int, int], tuple[Path, dict[str, str]]]] = {}


def build_superproject(
    served: Path,
    *,
    absolute: bool = False,
    commits: int = 3,
    bytes_per_commit: int = 256,
    tip_bytes: int = 0,
    many_files: int = 0,
) -> Fixture:
    """mmlab_extension with mmdetection and mmdetection3d (which nests spconv), all served.

    `many_files` small files go into mmdetection's tip, so that its checkout takes a while.
    Built once per process and shape (see `Templates`), copied into `served` after that.
    """
    shape = (absolute, commits, bytes_per_commit, tip_bytes, many_files)
    if Templates.root is None:
        return _build_superproject(served, *shape)
    made = Templates.built.get(shape)
    if made is None:
        folder = Templates.root / f"superproject-{len(Templates.built)}"
        with Templates.paused():
            tips = _build_superproject(folder, *shape).tips
        made = Templates.built[shape] = (folder, tips)
    shutil.copytree(made[0], served, symlinks=True, dirs_exist_ok=True)
    return Fixture(served, dict(made[1]))


def _build_superproject(
    served: Path,
    absolute: bool,
    commits: int,
    bytes_per_commit: int,
    tip_bytes: int,
    many_files: int,
) -> Fixture:
    specs = [
        RepoSpec("spconv", commits, bytes_per_commit),
        RepoSpec(
            "mmdetection", commits, bytes_per_commit, {"mmdet/__init__.py": b"", **MMDET_CKPT}
        ),
        RepoSpec(
            "mmdetection3d",
            commits,
            bytes_per_commit,
            {"mmdet3d/__init__.py": b"", **MMDET3D_DATA},
            [Submodule("third_party/spconv", "spconv")],
        ),
        RepoSpec(
            "mmlab_extension",
            commits,
            bytes_per_commit,
            {"projects/README.md": b"# extension code\n"},
            [Submodule("mmdetection", "mmdetection"), Submodule("mmdetection3d", "mmdetection3d")],
        ),
    ]
    tips: dict[str, str] = {}
    specs[1].many_files = many_files
    for spec in specs:
        spec.tip_bytes = tip_bytes
        tips[spec.name] = build_repo(served, spec, tips, absolute)
    return Fixture(served, tips)


def push_commit(fixture: Fixture, name: str, path: str, data: bytes, branch: str = "main") -> str:
    """Add a commit to a served repository (through a scratch clone); return its id."""
    scratch = fixture.served.parent / f"scratch-{name}-{os.getpid()}"
    git("clone", "-q", fixture.url(name), str(scratch))
    (scratch / path).parent.mkdir(parents=True, exist_ok=True)
    (scratch / path).write_bytes(data)
    git("add", path, cwd=scratch)
    git("commit", "-q", "-m", f"change {path}", cwd=scratch)
    git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=scratch)
    tip = git("rev-parse", "HEAD", cwd=scratch)
    subprocess.run(["rm", "-rf", str(scratch)], check=True)
    return tip


def advance(
    fixture: Fixture, name: str, commits: int = 1, bytes_per_commit: int = 256, tip_bytes: int = 0
) -> str:
    """Move a served repository's `main` on by `commits` commits (upstream went on after the
    superproject recorded it), the last one adding `tip_bytes` of new data in `upstream.bin`;
    return the new tip."""
    bare = fixture.bare(name)
    rng = random.Random(f"{name}-ahead-{commits}")
    stream = bytearray()
    for number in range(1, commits + 1):
        stream += b"commit refs/heads/main\n"
        stream += b"committer Test <test@example.com> %d +0000\n" % (1_700_000_000 + number)
        stream += _blob(f"{name} upstream commit {number}".encode())
        if number == 1:
            stream += b"from refs/heads/main^0\n"
        stream += b"M 100644 inline history.bin\n" + _blob(rng.randbytes(bytes_per_commit))
        if number == commits and tip_bytes:
            stream += b"M 100644 inline upstream.bin\n" + _blob(rng.randbytes(tip_bytes))
    git("fast-import", "--quiet", "--force", cwd=bare, stdin=bytes(stream))
    return git("rev-parse", "refs/heads/main", cwd=bare)

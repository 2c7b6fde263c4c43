"""A real-package trial of `inv python-env` (not run by CI: it needs PyPI and a CPU torch
wheel on local disk): an OpenMMLab 2.x workspace, mmcv checked out at v2.1.0 and
mmdetection3d at v1.4.0 from the real-repository stand-in (`--real-gh`, default
/work/real/gh), built with the tool's own `inv python-env`:

- torch 2.13.0 (CPU) served from disk as a PyTorch-style index on 127.0.0.1
  (`MMLAB_TORCH_INDEX=http://127.0.0.1:PORT/whl/`, tag `cpu`: `.../whl/cpu/torch/`);
- everything else from PyPI (`MMLAB_PYPI_INDEX` left at its default), mmcv as `mmcv-lite`
  (`MMLAB_MMCV_PACKAGE=mmcv-lite`: no compiled ops; download.openmmlab.com is not reachable
  here and mmcv is never built from source);
- mmdet3d installed editable from the checkout.

It prints: the wall time of the first build (a cold uv cache of its own), of a no-op re-run
(every outside request sent to a dead proxy: a request would fail it), of a rebuild from the
lock against a bare `uv pip sync` of the same lock (the ratio), the venv's size on disk, the
number of source builds of mmcv (must be 0) and of anything else, the versions that import,
and what `inv doctor` says of the environment.

    .venv/bin/python bench/pyenv_real_trial.py --work /work/scratch/trial [--torch-wheel PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchtools import inv_command  # noqa: E402  (bench/ is on the path)

TORCH = "2.13.0"
MMCV_TAG = "v2.1.0"
MMDET3D_TAG = "v1.4.0"
PYPI = "https://pypi.org/simple/"
SERVER_SECONDS = 3 * 3600  # the loopback index stops by itself after this
IMPORTS = "import torch, mmcv, mmengine, mmdet, mmdet3d"


def fail(text: str) -> None:
    sys.exit(f"pyenv_real_trial: {text}")


def find_torch_wheel(given: str | None, scratch: Path, python: str) -> Path:
    """The CPU torch wheel: `--torch-wheel`, else what `pip download` finds on this machine's
    disk (its pip configuration points at it); never a download from the internet."""
    if given:
        path = Path(given)
        if not path.is_file():
            fail(f"--torch-wheel {given} is not a file")
        return path
    target = scratch / "wheels"
    target.mkdir(parents=True, exist_ok=True)
    found = list(target.glob(f"torch-{TORCH}*.whl"))
    if not found:
        done = subprocess.run(
            [python, "-m", "pip", "download", f"torch=={TORCH}", "--no-deps", "--no-index",
             "--only-binary", ":all:", "-d", str(target)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        found = list(target.glob(f"torch-{TORCH}*.whl"))
        if done.returncode != 0 or not found:
            said = (done.stderr.strip().splitlines() or ["no output"])[-1]
            fail(
                f"no torch {TORCH} wheel on this machine's disk (pip download --no-index found"
                f" none: {said}); pass --torch-wheel PATH"
            )
    wheel = found[0]
    if "+cpu" not in wheel.name or "-cp311-" not in wheel.name:
        fail(f"{wheel.name} is not the CPU build for CPython 3.11 this trial expects")
    return wheel


def real_python(name: str) -> str:
    """The interpreter itself, not a launcher (pyenv's shims are shell scripts)."""
    try:
        done = subprocess.run([name, "-c", "import sys; print(sys._base_executable)"],
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        fail(f"no {name} here: pass --python (the torch wheel is for CPython 3.11)")
    return done.stdout.strip()


def check_pypi() -> None:
    try:
        with urllib.request.urlopen(f"{PYPI}mmcv-lite/", timeout=30) as answer:
            if answer.status != 200:
                fail(f"PyPI answered {answer.status}: the trial needs PyPI")
    except (urllib.error.URLError, OSError) as error:
        fail(f"PyPI is not reachable ({error}): the trial needs PyPI")


class _Index(http.server.BaseHTTPRequestHandler):
    """GET and HEAD (uv asks HEAD before a wheel), no ranges: the whole file each time."""

    files: ClassVar[dict[str, Path | bytes]] = {}
    asked: ClassVar[list[str]] = []

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        self.asked.append(f"{self.command} {self.path}")
        found = self.files.get(self.path.split("#")[0])
        if found is None:
            self.send_error(404)
            return
        data = found if isinstance(found, bytes) else None
        size = len(found) if isinstance(found, bytes) else found.stat().st_size
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header(
            "Content-Type", "text/html" if data is not None else "application/octet-stream"
        )
        self.end_headers()
        if not body:
            return
        if isinstance(found, bytes):
            self.wfile.write(found)
            return
        with open(found, "rb") as source:
            shutil.copyfileobj(source, self.wfile, 1 << 20)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def torch_index(wheel: Path) -> Iterator[tuple[str, list[str]]]:
    """A PyTorch-style index of the one wheel on 127.0.0.1: `<url>whl/cpu/torch/`."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    quoted = wheel.name.replace("+", "%2B")
    page = (
        f'<!DOCTYPE html><html><body><a href="{quoted}#sha256={digest}">{wheel.name}</a>'
        "</body></html>\n"
    ).encode()
    _Index.files = {"/whl/cpu/torch/": page, f"/whl/cpu/torch/{quoted}": wheel}
    _Index.asked = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Timer(SERVER_SECONDS, server.shutdown)
    stop.daemon = True
    stop.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/whl/", _Index.asked
    finally:
        stop.cancel()
        server.shutdown()
        server.server_close()


def checkout(real_gh: Path, repo: str, tag: str, target: Path) -> None:
    source = real_gh / "open-mmlab" / f"{repo}.git"
    if not source.is_dir():
        fail(f"no {source}: pass --real-gh (the real-repository stand-in)")
    subprocess.run(
        ["git", "-c", "advice.detachedHead=false", "clone", "--quiet", "--depth", "1",
         "--branch", tag, source.as_uri(), str(target)],
        check=True, timeout=600,
    )  # fmt: skip


def timed(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> tuple[float, str]:
    began = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - began
    if done.returncode != 0:
        fail(f"{what} failed ({' '.join(argv)}):\n{done.stdout}{done.stderr}")
    return took, done.stdout + done.stderr


def timed_lines(
    argv: list[str], cwd: Path, env: dict[str, str], what: str
) -> list[tuple[float, str]]:
    """Run; each line it prints with the seconds since the start (where the time goes)."""
    began = time.monotonic()
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:  # fmt: skip
        assert process.stdout is not None
        lines = [(time.monotonic() - began, line.rstrip()) for line in process.stdout]
    if process.returncode != 0:
        fail(f"{what} failed:\n" + "\n".join(line for _, line in lines))
    return [*lines, (time.monotonic() - began, "(exit)")]


def disk_usage(folder: Path) -> tuple[int, int]:
    """Bytes on disk of the folder's files (each inode once), and of those only linked there
    (not shared by hard link with uv's cache)."""
    seen: set[int] = set()
    total = own = 0
    for path in folder.rglob("*"):
        info = path.lstat()
        if info.st_ino in seen or not path.is_file() or path.is_symlink():
            continue
        seen.add(info.st_ino)
        total += info.st_blocks * 512
        if info.st_nlink == 1:
            own += info.st_blocks * 512
    return total, own


def source_builds(cache: Path) -> list[str]:
    """What uv built from source (its cache's `sdists-*` folders: `pypi/<name>/...` for a
    registry's sdist), leaving out the checkout built editable (`editable/`)."""
    return sorted(
        entry.name
        for folder in cache.glob("uv/sdists-*")
        for kind in folder.iterdir()
        if kind.is_dir() and kind.name != "editable"
        for entry in kind.iterdir()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="an empty or new folder for the trial")
    parser.add_argument("--torch-wheel", help=f"the torch {TORCH} CPU wheel (cp311)")
    parser.add_argument("--real-gh", default="/work/real/gh")
    parser.add_argument("--python", default=None, help="the base CPython 3.11")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    if work.exists() and any(work.iterdir()):
        fail(f"--work {work} is not empty")
    work.mkdir(parents=True, exist_ok=True)
    base_python = args.python or real_python("python3.11")
    check_pypi()
    wheel = find_torch_wheel(args.torch_wheel, work, base_python)
    import uv

    uv_bin = uv.find_uv_bin()
    ws = work / "ws"
    (ws / "mmlab_extension").mkdir(parents=True)
    shutil.copy(ROOT / "tasks.py", ws / "tasks.py")
    checkout(Path(args.real_gh), "mmcv", MMCV_TAG, ws / "mmlab_extension" / "mmcv")
    checkout(
        Path(args.real_gh), "mmdetection3d", MMDET3D_TAG, ws / "mmlab_extension" / "mmdetection3d"
    )
    cache = work / "cache"  # uv's cache (XDG_CACHE_HOME): cold for the first build
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MMLAB_", "UV_"))}
    with torch_index(wheel) as (index, asked):
        env = {
            **clean,
            "HOME": str(work / "home"),
            "XDG_CACHE_HOME": str(cache),
            "NO_PROXY": "127.0.0.1",
            "MMLAB_PROJECTS": "mmdetection3d",
            "MMLAB_CUDA": "cpu",
            "MMLAB_PYTHON": base_python,
            "MMLAB_TORCH_INDEX": index,
            "MMLAB_MMCV_PACKAGE": "mmcv-lite",
        }
        inv = [*inv_command(), "python-env"]
        first, said = timed(inv, ws, env, "the first inv python-env")
        print(said.rstrip())
        from_index = len(asked)
        # every outside request of the no-op run goes to a dead proxy: one would fail it
        proxies = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        dead = {**env, **dict.fromkeys(proxies, "http://127.0.0.1:9")}
        noop, said_noop = timed(inv, ws, dead, "the no-op re-run")
        noop_requests = len(asked) - from_index
        venv = ws / ".venvs" / "mmdetection3d"
        lock = ws / "python-env.mmdetection3d.cpu.lock.txt"
        _, versions = timed(
            [str(venv / "bin" / "python"), "-c",
             f"{IMPORTS}; print(' '.join(f'{{m.__name__}} {{m.__version__}}' for m in"
             " (torch, mmcv, mmengine, mmdet, mmdet3d)))"],
            ws, env, "the imports",
        )  # fmt: skip
        total, own = disk_usage(venv)
        shutil.rmtree(ws / ".venvs")
        steps = timed_lines(inv, ws, env, "the rebuild from the lock")
        rebuild = steps[-1][0]
        kept = [f"{at:5.1f} s {line}" for at, line in steps]  # the kept wheel (or why not)
        checked = next(at for at, line in steps if line.startswith("imports "))
        made = next(at for at, line in steps if line.startswith("made "))
        bare = work / "bare"
        subprocess.run([uv_bin, "venv", "-q", "--no-config", "--python", base_python, str(bare)],
                       env=env, check=True)  # fmt: skip
        sync, _ = timed(
            [uv_bin, "pip", "sync", "-q", "--no-config", str(lock), "--require-hashes",
             "--python", str(bare / "bin" / "python"), "--index-url", PYPI,
             "--extra-index-url", index + "cpu/", "--index-strategy", "unsafe-best-match"],
            ws, env, "the bare uv pip sync",
        )  # fmt: skip
        # the floor of "ready and checked": the checkout editable and the imports, by hand
        editable, _ = timed(
            [uv_bin, "pip", "install", "-q", "--no-config", "--python",
             str(bare / "bin" / "python"), "--no-deps", "--no-build-isolation", "--offline",
             "--editable", str(ws / "mmlab_extension" / "mmdetection3d")],
            ws, env, "the bare editable install",
        )  # fmt: skip
        imports, _ = timed(
            [str(bare / "bin" / "python"), "-I", "-c", IMPORTS], ws, env, "the bare imports"
        )
        doctor = subprocess.run(
            [*inv_command(), "doctor"], cwd=ws, env=env, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
    builds = source_builds(cache)
    mmcv_builds = [name for name in builds if name.startswith("mmcv")]
    lines = [line for line in lock.read_text().splitlines() if "==" in line]
    print("\n== doctor (its Python lines) ==")
    for line in (doctor.stdout + doctor.stderr).splitlines():
        if any(word in line for word in ("torch", "mmcv", "mmengine", "mmdet", "python", "cuda")):
            print(line)
    print("\n== figures ==")
    print(f"imports:                              {versions.strip()}")
    print(f"lock:                                 {len(lines)} pinned distributions")
    print(f"first build (cold uv cache):          {first:7.1f} s")
    print(f"no-op re-run:                         {noop:7.2f} s, {noop_requests} requests"
          " (outside requests through a dead proxy)")  # fmt: skip
    print(f"rebuild from the lock (warm cache):   {rebuild:7.1f} s")
    for line in kept:
        print(f"  {line}")
    print(f"bare uv pip sync of the same lock:    {sync:7.1f} s (ratio {rebuild / sync:.2f}x)")
    print(f"  of which: venv, sync, editable install and import check {checked:.1f} s,"
          f" rename {made - checked:.1f} s, the doctor's check {rebuild - made:.1f} s")  # fmt: skip
    floor = sync + editable + imports
    print(f"  + editable install {editable:.1f} s + import check {imports:.1f} s by hand:"
          f" {floor:.1f} s (ratio {rebuild / floor:.2f}x)")  # fmt: skip
    print(f"venv on disk:                         {total / 1e6:7.0f} MB"
          f" ({own / 1e6:.0f} MB not shared with uv's cache)")  # fmt: skip
    print(f"source builds of mmcv:                {len(mmcv_builds)}")
    print(f"source builds of anything (uv cache): {len(builds)} {' '.join(builds)}")
    print(f"doctor exit status:                   {doctor.returncode}")
    if "up to date" not in said_noop:
        fail("the no-op re-run did not say the environment is up to date")


if __name__ == "__main__":
    main()

"""Benchmark `inv python-env` against stand-in wheels served on 127.0.0.1 (the tests' indexes:
mmdetection3d 1.0.0rc4's shape, torch/mmcv-full/mmdet/mmseg/numba stand-ins of a few KB), in
one run:

- the first run (pair chosen, lock resolved, venv made, imports checked);
- a no-op re-run (goal: <= 2 s, no request);
- a rebuild from the lock with a warm uv cache (`.venvs` removed), against a bare `uv pip
  sync` of the same lock into a fresh venv (the issue's goal: <= 1.2x).

"Ready" is what `inv python-env` does before it says so, all in its wall time: its own start
(Python, invoke, the package), the base interpreter asked, `uv venv`, the lock installed
(`uv pip sync --require-hashes`, from uv's cache alone when it has every file), the checkout
installed editable (`uv pip install -e --no-build-isolation`: the checkout's setup.py runs,
twice, in uv's two build hooks), `torch, mmcv, mmcv.ops, mmdet, mmseg, mmdet3d` imported in a
subprocess while the doctor's Python checks ask the new interpreter (one more, and nvcc when
there is one), the marker written and the venv renamed into place.

Like with like, the rebuild is set against three references, each into a fresh venv:
`sync` (the issue's: `uv pip sync` of the lock alone, as a user types it, so it asks the
indexes again), `by hand` (the same steps typed by hand: `uv venv`, `uv pip sync`, `uv pip
install -e`, `python -c 'import …'`), and the fixed costs one at a time (an `inv --list`, one
interpreter start, the import check) so that what is left over is visible. With stand-ins of a
few KB the fixed costs are the whole time; with real wheels (GBs of torch) the sync dominates.

    python bench/pyenv_bench.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchtools import inv_command  # noqa: E402  (bench/ is on the path)

from tests.lib.fakepython import write  # noqa: E402
from tests.lib.httpserve import serving  # noqa: E402
from tests.lib.pyenvfixture import OVERRIDE, environ, rc4, stand_in_indexes  # noqa: E402

MODULES = "import torch, mmcv, mmcv.ops, mmdet, mmseg, mmdet3d"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    began = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return time.monotonic() - began


def median(repeat: int, run: Callable[[int], float]) -> float:
    return statistics.median(run(number) for number in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import uv

    uv_bin = uv.find_uv_bin()
    with tempfile.TemporaryDirectory(prefix="pyenv-bench-") as scratch:
        base = Path(scratch)
        ws = base / "ws"
        ws.mkdir()
        shutil.copy(ROOT / "tasks.py", ws / "tasks.py")
        checkout = rc4(ws, overrides=OVERRIDE) / "mmlab_extension" / "mmdetection3d"
        # a git checkout, clean, as a cloned workspace has it (its editable wheel is kept)
        write(checkout / ".gitignore", "__pycache__/\n*.egg-info/\nbuild/\n")
        quiet = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        user = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        for step in (["init", "-q"], ["add", "-A"], [*user, "commit", "-q", "-m", "checkout"]):
            subprocess.run(["git", *step], cwd=checkout, env=quiet, check=True)
        with serving(stand_in_indexes(base / "wheels").served()) as served:
            clean = {k: v for k, v in os.environ.items() if not k.startswith(("MMLAB_", "UV_"))}
            env = {**clean, **environ(served), "HOME": str(base / "home"), "NO_PROXY": "*"}
            inv = [*inv_command(), "python-env"]
            first = timed(inv, ws, env)
            asked = len(served.requests)
            noop = median(args.repeat, lambda _: timed(inv, ws, env))
            noop_requests = len(served.requests) - asked
            lock = ws / "python-env.mmdetection3d.cu113.lock.txt"
            indexes = [
                "--index-url", served.url + "simple/",
                "--extra-index-url", served.url + "whl/cu113/",
                "--index-strategy", "unsafe-best-match",
                "--find-links", served.url + "mmcv/dist/cu113/torch1.11.0/index.html",
            ]  # fmt: skip

            def rebuild(_number: int) -> float:
                shutil.rmtree(ws / ".venvs")
                return timed(inv, ws, env)

            def venv(name: str) -> Path:
                folder = base / name
                shutil.rmtree(folder, ignore_errors=True)
                return folder

            def uv_venv(folder: Path) -> float:
                return timed([uv_bin, "venv", "-q", "--no-config", str(folder),
                              "--python", sys.executable], base, env)  # fmt: skip

            def sync(folder: Path) -> float:
                return timed([uv_bin, "pip", "sync", "-q", "--no-config", str(lock),
                              "--python", str(folder / "bin" / "python"), *indexes],
                             base, env)  # fmt: skip

            def bare_sync(number: int) -> float:
                folder = venv(f"bare{number}")
                uv_venv(folder)
                return sync(folder)

            def by_hand(number: int) -> float:
                folder = venv(f"hand{number}")
                python = str(folder / "bin" / "python")
                return (
                    uv_venv(folder)
                    + sync(folder)
                    + timed([uv_bin, "pip", "install", "-q", "--no-config", "--python", python,
                             "--no-deps", "--no-build-isolation", "-e", str(checkout)],
                            base, env)
                    + timed([python, "-I", "-c", MODULES], base, env)
                )  # fmt: skip

            rebuilds = median(args.repeat, rebuild)
            rebuild_requests = (len(served.requests) - asked - noop_requests) / args.repeat
            syncs = median(args.repeat, bare_sync)
            hands = median(args.repeat, by_hand)
            python = str(ws / ".venvs" / "mmdetection3d" / "bin" / "python")
            listing = median(args.repeat, lambda _: timed([*inv_command(), "--list"], ws, env))
            start = median(args.repeat, lambda _: timed([python, "-I", "-c", "pass"], base, env))
            imports = median(args.repeat, lambda _: timed([python, "-I", "-c", MODULES], base, env))
    load = os.getloadavg()[0]
    print(f"first run (resolve, lock, venv, imports):  {first:6.2f} s")
    print(f"no-op re-run (median of {args.repeat}):       {noop:6.2f} s, {noop_requests} requests")
    print(f"rebuild from the lock, ready (warm cache): {rebuilds:6.2f} s,"
          f" {rebuild_requests:g} requests")  # fmt: skip
    print(f"bare uv pip sync of the same lock:         {syncs:6.2f} s"
          f" (rebuild: {rebuilds / syncs:.1f}x)")  # fmt: skip
    print(f"by hand: uv venv, sync, install -e, import:{hands:6.2f} s"
          f" (rebuild: {rebuilds / hands:.1f}x)")  # fmt: skip
    print(
        f"fixed costs: inv --list {listing:.2f} s, one interpreter start {start:.3f} s,"
        f" the import check {imports:.3f} s"
    )
    print(f"(load average {load:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()

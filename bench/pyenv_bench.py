"""Benchmark `inv python-env` against stand-in wheels served on 127.0.0.1 (the tests' indexes:
mmdetection3d 1.0.0rc4's shape, torch/mmcv-full/mmdet/mmseg/numba stand-ins), in one run:

- the first run (pair chosen, lock resolved, venv made, imports checked);
- a no-op re-run (goal: <= 2 s, no request);
- a rebuild from the lock with a warm uv cache, against a bare `uv pip sync` of the same
  lock into a fresh venv (the issue's goal: <= 1.2x; with stand-ins of a few KB the fixed
  costs dominate: venv creation, the editable install, the import check, the doctor's probe).

    python bench/pyenv_bench.py [--repeat 3]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchtools import inv_command  # noqa: E402  (bench/ is on the path)

from tests.lib.fakepython import write  # noqa: E402
from tests.lib.httpserve import serving  # noqa: E402
from tests.lib.wheelfixture import rc4_workspace  # noqa: E402
from tests.test_pyenv_build import OVERRIDE, SETUP_PY, environ, stand_in_indexes  # noqa: E402


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    began = time.monotonic()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import uv

    uv_bin = uv.find_uv_bin()
    with tempfile.TemporaryDirectory(prefix="pyenv-bench-") as scratch:
        base = Path(scratch)
        ws = base / "ws"
        ws.mkdir()
        shutil.copy(ROOT / "tasks.py", ws / "tasks.py")
        extension = rc4_workspace(ws / "mmlab_extension")
        write(extension / "mmdetection3d" / "setup.py", SETUP_PY)
        write(extension / "mmdetection3d" / "requirements" / "runtime.txt", "numba==0.53.0\n")
        write(ws / "python-env.overrides.txt", OVERRIDE)
        with serving(stand_in_indexes(base / "wheels").served()) as served:
            clean = {k: v for k, v in os.environ.items() if not k.startswith(("MMLAB_", "UV_"))}
            env = {**clean, **environ(served), "HOME": str(base / "home"), "NO_PROXY": "*"}
            inv = [*inv_command(), "python-env"]
            first = timed(inv, ws, env)
            asked = len(served.requests)
            noop = statistics.median(timed(inv, ws, env) for _ in range(args.repeat))
            noop_requests = len(served.requests) - asked
            rebuilds, syncs = [], []
            lock = ws / "python-env.mmdetection3d.cu113.lock.txt"
            for number in range(args.repeat):
                shutil.rmtree(ws / ".venvs")
                rebuilds.append(timed(inv, ws, env))
                bare = base / f"bare{number}"
                subprocess.run(
                    [uv_bin, "venv", "-q", "--no-config", str(bare)], env=env, check=True
                )
                syncs.append(
                    timed(
                        [uv_bin, "pip", "sync", "-q", "--no-config", str(lock),
                         "--python", str(bare / "bin" / "python"),
                         "--index-url", served.url + "simple/",
                         "--extra-index-url", served.url + "whl/cu113/",
                         "--index-strategy", "unsafe-best-match",
                         "--find-links", served.url + "mmcv/dist/cu113/torch1.11.0/index.html"],
                        base, env,
                    )
                )  # fmt: skip
    rebuild, sync = statistics.median(rebuilds), statistics.median(syncs)
    print(f"first run (resolve, lock, venv, imports):  {first:6.2f} s")
    print(f"no-op re-run (median of {args.repeat}):       {noop:6.2f} s, {noop_requests} requests")
    print(f"rebuild from the lock (warm uv cache):     {rebuild:6.2f} s")
    print(f"bare uv pip sync of the same lock:         {sync:6.2f} s ({rebuild / sync:.1f}x)")


if __name__ == "__main__":
    main()

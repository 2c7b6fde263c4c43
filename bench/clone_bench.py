"""Benchmark `inv clone` against the manual steps and git's own minimum, in one run.

Builds a superproject with nested submodules and a few hundred commits of history each,
served over file://, then for each method measures the bytes of `.git` data it fetched
and its wall time (median of --repeat runs), and prints the ratios. Also times a second,
no-op `inv clone`.

    python bench/clone_bench.py [--commits 300] [--bytes-per-commit 8192] [--tip-mib 4]
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

from tests.gitfixture import build_superproject  # noqa: E402
from tests.netserve import served_over_network  # noqa: E402

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # stock git settings
# The reference methods (plain git) need file:// for submodules on their own command line;
# the tool under test runs with stock settings and allows it itself, for checked URLs only.
ALLOW_FILE = ["-c", "protocol.file.allow=always"]


def run(command: list[str], cwd: Path) -> None:
    subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def git_bytes(clone: Path) -> int:
    """Bytes stored under the clone's `.git` (submodule repositories live in .git/modules)."""
    total = 0
    for folder, _, files in os.walk(clone / ".git"):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_size
    return total


def manual(url: str, work: Path) -> Path:
    """The upstream README's steps: shallow superproject, full-history submodules."""
    run(["git", *ALLOW_FILE, "clone", "--depth", "1", url, "ext"], work)
    run(["git", *ALLOW_FILE, "submodule", "update", "--init", "--recursive"], work / "ext")
    return work / "ext"


def git_minimum(url: str, work: Path) -> Path:
    """git's own minimum: one clone, every submodule shallow."""
    run(
        [
            "git",
            *ALLOW_FILE,
            "clone",
            "--depth",
            "1",
            "--recurse-submodules",
            "--shallow-submodules",
            url,
            "ext",
        ],
        work,
    )
    return work / "ext"


def tool(url: str, work: Path) -> Path:
    shutil.copy(ROOT / "tasks.py", work / "tasks.py")
    run(["inv", "clone", "--repo", url, "--extension-path", "ext"], work)
    return work / "ext"


def measure(method: Callable[[str, Path], Path], url: str, repeat: int) -> tuple[int, float, Path]:
    times, size, last = [], 0, Path()
    for _ in range(repeat):
        work = Path(tempfile.mkdtemp(prefix="bench-"))
        started = time.perf_counter()
        last = method(url, work)
        times.append(time.perf_counter() - started)
        size = git_bytes(last)
    return size, statistics.median(times), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--bytes-per-commit", type=int, default=8192)
    parser.add_argument("--tip-mib", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--mib-per-second",
        type=float,
        default=0.0,
        help="per-connection bandwidth of the simulated network (0: local disk speed)",
    )
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per connection")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-served-") as served:
        fixture = build_superproject(
            Path(served),
            commits=args.commits,
            bytes_per_commit=args.bytes_per_commit,
            tip_bytes=int(args.tip_mib * 1024 * 1024),
        )
        print(
            f"fixture: 4 repositories (one nested), {args.commits} commits of"
            f" {args.bytes_per_commit} B each, {args.tip_mib:g} MiB at each tip;"
            f" median of {args.repeat} runs; "
            + (
                f"network: {args.mib_per_second:g} MiB/s and {args.latency:g} s per connection"
                if args.mib_per_second
                else "served from local disk (no network)"
            )
        )
        if args.mib_per_second:
            with served_over_network(fixture.served, args.mib_per_second, args.latency) as base:
                results, noop = compare(f"{base}fake/mmlab_extension.git", args.repeat)
        else:
            results, noop = compare(fixture.url(), args.repeat)
        report(results, noop)


def compare(
    url: str, repeat: int
) -> tuple[dict[str, tuple[int, float, Path]], dict[str, list[float]]]:
    """Run the three methods and the no-op re-run against one URL."""
    results = {
        "manual steps": measure(manual, url, repeat),
        "git minimum": measure(git_minimum, url, repeat),
        "inv clone": measure(tool, url, repeat),
    }
    workspace = results["inv clone"][2].parent
    noop: dict[str, list[float]] = {"inv clone": [], "inv bootstrap": []}
    bootstrap = ["inv", "bootstrap", "--repo", url, "--extension-path", "ext"]
    run(bootstrap, workspace)  # env, layout and links on top of the clone
    for _ in range(repeat):
        for name in noop:
            command = [*name.split(), *bootstrap[2:]]
            started = time.perf_counter()
            run(command, workspace)
            noop[name].append(time.perf_counter() - started)
    return results, noop


def report(results: dict[str, tuple[int, float, Path]], noop: dict[str, list[float]]) -> None:
    """Print the table and the targets."""
    minimum_bytes, minimum_time, _ = results["git minimum"]
    manual_bytes, manual_time, _ = results["manual steps"]
    print(f"{'method':<14}{'.git bytes':>14}{'vs min':>9}{'vs manual':>11}{'wall s':>9}"
          f"{'vs min':>9}{'vs manual':>11}")  # fmt: skip
    for name, (size, seconds, _) in results.items():
        print(
            f"{name:<14}{size:>14,}{size / minimum_bytes:>9.3f}{size / manual_bytes:>11.3f}"
            f"{seconds:>9.3f}{seconds / minimum_time:>9.3f}{seconds / manual_time:>11.3f}"
        )
    tool_bytes, tool_time, _ = results["inv clone"]
    for name, times in noop.items():
        print(f"second, no-op {name}: {statistics.median(times):.3f} s (target < 0.5 s)")
    print(
        f"targets: bytes within 5% of git minimum: {tool_bytes / minimum_bytes - 1:+.1%};"
        f" wall time within 10%: {tool_time / minimum_time - 1:+.1%}"
    )


if __name__ == "__main__":
    main()

"""Benchmark MMLAB_GIT_CACHE: what a second workspace on the same machine costs, in one run.

The repositories are served by a loopback git daemon through a proxy that counts the bytes
it carries (tests/lib/netserve.py; optionally throttled to a bandwidth and a round-trip time).
For each scenario, `--repeat` times (medians), with a new, empty cache each time:

- `no cache`: `inv clone` without MMLAB_GIT_CACHE (for reference);
- `first`: `inv clone` with the cache (it fills the cache);
- `second, dissociate`: another workspace, the default mode;
- `third, share`: another workspace in share mode.

Printed: wall seconds, bytes received over the network, and bytes of the workspace's `.git`
(each file once), with the ratios the issue sets goals for: a second workspace's network bytes
<= 5% of the first's, a share-mode `.git` <= 10% of the first's; and the wall-time ratios.

    python bench/cache_bench.py [--repeat 3] [--real-mirror /work/real/gh]
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

from bench.benchtools import inv_command  # noqa: E402
from tests.lib.gitfixture import build_superproject  # noqa: E402
from tests.lib.netserve import Traffic, served_over_network  # noqa: E402

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # stock git settings
REAL_REPO = "https://github.com/windzu/mmlab_extension.git"
BYTES_GOAL, DISK_GOAL = 0.05, 0.10
RUNS = ("no cache", "first", "second, dissociate", "third, share")


def git_bytes(folder: Path, *, own: bool = False) -> int:
    """Bytes of the files under `folder`, each inode once; with `own`, only the files no other
    folder links to (what the workspace adds to the disk beside the cache)."""
    seen: set[int] = set()
    total = 0
    for path in folder.rglob("*"):
        info = path.lstat()
        if path.is_file() and not path.is_symlink() and info.st_ino not in seen:
            seen.add(info.st_ino)
            if not own or info.st_nlink == 1:
                total += info.st_size
    return total


def one_round(
    scratch: Path, base: str, repo: str, projects: str, traffic: Traffic
) -> dict[str, tuple[float, int, int, int]]:
    """Each run of `RUNS` once, in order: {run: (seconds, network bytes, .git bytes, .git
    bytes not hard-linked elsewhere)}."""
    cache = scratch / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    results = {}
    for number, name in enumerate(RUNS):
        workspace = scratch / f"ws{number}"
        shutil.rmtree(workspace, ignore_errors=True)
        workspace.mkdir()
        shutil.copy(ROOT / "tasks.py", workspace / "tasks.py")
        env = {
            **os.environ,
            **GIT_ENV,
            "MMLAB_EXTENSION_REPO": repo,
            "MMLAB_GIT_MIRROR": base,
            "MMLAB_PROJECTS": projects,
        }
        if name != "no cache":
            env["MMLAB_GIT_CACHE"] = str(cache)
            env["MMLAB_GIT_CACHE_MODE"] = "share" if "share" in name else "dissociate"
        traffic.reset()
        started = time.perf_counter()
        done = subprocess.run(
            [*inv_command(), "clone"], cwd=workspace, env=env, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"{name}: inv clone failed:\n{done.stderr}")
        gitdir = workspace / "mmlab_extension/.git"
        results[name] = (seconds, traffic.received, git_bytes(gitdir), git_bytes(gitdir, own=True))
    return results


def scenario(
    label: str, served: Path, repo: str, projects: str, args: argparse.Namespace, scratch: Path
) -> tuple[float, float]:
    """Run one scenario `--repeat` times; print its medians and ratios; return the goals'."""
    traffic = Traffic()
    rounds = []
    with served_over_network(served, args.mib_per_second, args.latency, traffic=traffic) as base:
        for _ in range(args.repeat):
            rounds.append(one_round(scratch, base, repo, projects, traffic))
    median = {
        name: tuple(statistics.median(r[name][i] for r in rounds) for i in range(4))
        for name in RUNS
    }
    print(f"\n{label}")
    print(
        f"  {'run':<20} {'wall s':>8} {'network bytes':>14} {'.git bytes':>12} {'not linked':>12}"
    )
    for name in RUNS:
        seconds, received, disk, own = median[name]
        print(f"  {name:<20} {seconds:8.2f} {received:14,.0f} {disk:12,.0f} {own:12,.0f}")
    first = median["first"]
    second, third = median["second, dissociate"], median["third, share"]
    print(
        f"  second workspace / first: network {second[1] / first[1]:.3f}x (dissociate),"
        f" {third[1] / first[1]:.3f}x (share); wall {second[0] / first[0]:.2f}x (dissociate),"
        f" {third[0] / first[0]:.2f}x (share)"
    )
    print(
        f"  share-mode .git / first's: {third[2] / first[2]:.3f}x;"
        f" dissociate .git / first's: {second[2] / first[2]:.2f}x"
        f" ({second[3] / first[2]:.3f}x not hard-linked to the cache);"
        f" first with the cache / no cache: wall {first[0] / median['no cache'][0]:.2f}x,"
        f" network {first[1] / median['no cache'][1]:.2f}x"
    )
    return max(second[1], third[1]) / first[1], third[2] / first[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tip-mib", type=float, default=2.0, help="data at each fixture tip")
    parser.add_argument("--mib-per-second", type=float, default=0, help="0: unthrottled")
    parser.add_argument("--latency", type=float, default=0, help="round trip, seconds")
    parser.add_argument("--real-mirror", default="", help="folder of the real-repository mirror")
    parser.add_argument("--projects", default="mmdetection3d mmdeploy")
    args = parser.parse_args()
    goals = {}
    with tempfile.TemporaryDirectory(prefix="cache-bench-") as folder:
        scratch = Path(folder)
        fixture = build_superproject(
            scratch / "served", commits=50, tip_bytes=int(args.tip_mib * 1024 * 1024)
        )
        link = (
            f"{args.mib_per_second:g} MiB/s, {args.latency * 1000:g} ms"
            if args.mib_per_second
            else "unthrottled"
        )
        label = f"test fixture over the loopback ({link})"
        goals[label] = scenario(
            label, fixture.served, fixture.github_url, "mmdetection", args, scratch
        )
        if args.real_mirror:
            label = f"real repositories over the loopback ({link})"
            served = Path(args.real_mirror)
            goals[label] = scenario(label, served, REAL_REPO, args.projects, args, scratch)
    print(
        f"\ngoals: second workspace's network bytes <= {BYTES_GOAL:.0%} of the first's;"
        f" share-mode .git <= {DISK_GOAL:.0%} of the first's"
    )
    for label, (network, disk) in goals.items():
        met = "met" if network <= BYTES_GOAL and disk <= DISK_GOAL else "NOT met"
        print(f"  {label}: network {network:.3f}x, disk {disk:.3f}x: {met}")


if __name__ == "__main__":
    main()

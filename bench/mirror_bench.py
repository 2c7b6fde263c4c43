"""Benchmark `inv mirror` against `git clone --mirror` of each repository by hand, in one run.

The source is served by a loopback git daemon through the proxy of tests/lib/netserve.py, which
counts connections and bytes each way (and can add a round-trip time and a bandwidth per
connection). For each source it prints:

- from scratch: `inv mirror DEST` against a sequential loop of `git clone --mirror` of the same
  repositories (those `inv mirror` found), interleaved, `--repeat` times, medians: the wall-time
  ratio (goal <= 1.10) and the received-bytes ratio (goal: the same bytes);
- an up-to-date re-run of `inv mirror`: connections per repository (goal: 1) and bytes received.

Sources: the test fixture (a superproject with nested submodules, a few hundred commits each),
and with `--real-mirror /work/real/gh` the real repositories (their superproject's tip no
longer records mmdetection, which that folder lacks on purpose).

    python bench/mirror_bench.py [--repeat 3] [--real-mirror /work/real/gh]
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
from tests.lib.gitfixture import GITHUB, build_superproject  # noqa: E402
from tests.lib.netserve import Traffic, served_over_network  # noqa: E402

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # stock git settings
TIME_GOAL = 1.10
FIXTURE_REPO = f"{GITHUB}fake/mmlab_extension.git"
REAL_REPO = f"{GITHUB}windzu/mmlab_extension.git"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMLAB_", "GIT_"))}
    return {**env, **GIT_ENV, **(extra or {})}


def run(command: list[str], cwd: Path) -> None:
    subprocess.run(
        command,
        cwd=cwd,
        env=clean_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def tool(repo: str, base: str, dest: Path, work: Path) -> None:
    """`inv mirror DEST` as a user runs it, fetching "github" from `base`."""
    shutil.copy(ROOT / "tasks.py", work / "tasks.py")
    run([*inv_command(), "mirror", str(dest), "--repo", repo, "--mirror", base], work)


def repositories(dest: Path) -> list[str]:
    """`owner/name` of each repository a mirror holds."""
    return sorted(
        f"{owner.name}/{repo.name[:-4]}"
        for owner in dest.iterdir()
        if owner.is_dir() and not owner.name.startswith(".")
        for repo in owner.iterdir()
        if repo.name.endswith(".git")
    )


def by_hand(names: list[str], base: str, dest: Path, work: Path) -> None:
    """`git clone --mirror` of each repository, one after the other."""
    for name in names:
        run(
            ["git", "clone", "-q", "--mirror", f"{base}{name}.git", str(dest / f"{name}.git")], work
        )


def measure(
    label: str, repo: str, served: Path, repeat: int, rate: float, latency: float, scratch: Path
) -> tuple[float, float]:
    """Print one source's figures; return (wall ratio, bytes ratio) of inv mirror to by hand."""
    traffic = Traffic()
    times: dict[str, list[float]] = {"inv mirror": [], "git clone --mirror": []}
    received: dict[str, int] = {}
    names: list[str] = []
    with served_over_network(served, rate, latency, traffic=traffic) as base:
        last = Path()
        for attempt in range(repeat):
            order = list(times) if attempt % 2 == 0 else list(reversed(times))
            if not names:  # inv mirror first: it finds the repositories the loop clones
                order = ["inv mirror", "git clone --mirror"]
            for method in order:
                work = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
                dest = work / "mirror"
                traffic.reset()
                started = time.perf_counter()
                if method == "inv mirror":
                    tool(repo, base, dest, work)
                    names = repositories(dest)
                    last = work
                else:
                    by_hand(names, base, dest, work)
                times[method].append(time.perf_counter() - started)
                received[method] = traffic.received
                if method != "inv mirror" or attempt < repeat - 1:
                    shutil.rmtree(work)
        traffic.reset()
        started = time.perf_counter()
        tool(repo, base, last / "mirror", last)  # up to date
        again = time.perf_counter() - started
        connections, again_bytes = traffic.connections, traffic.received
    wall = {method: statistics.median(seconds) for method, seconds in times.items()}
    t_ratio = wall["inv mirror"] / wall["git clone --mirror"]
    b_ratio = received["inv mirror"] / received["git clone --mirror"]
    print(f"\n{label}: {len(names)} repositories ({', '.join(names)})")
    print(f"  {'method':<22}{'wall s':>9}{'received bytes':>17}")
    for method in times:
        print(f"  {method:<22}{wall[method]:>9.3f}{received[method]:>17,}")
    print(f"  ratio inv/by hand: wall {t_ratio:.3f} (goal <= {TIME_GOAL}), bytes {b_ratio:.4f}")
    print(
        f"  up-to-date re-run: {again:.3f} s, {connections} connections for {len(names)}"
        f" repositories ({connections / len(names):.2f} each, goal 1),"
        f" {again_bytes:,} bytes received"
    )
    shutil.rmtree(last)
    return t_ratio, b_ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--bytes-per-commit", type=int, default=8192)
    parser.add_argument("--tip-mib", type=float, default=4.0)
    parser.add_argument(
        "--mib-per-second", type=float, default=0, help="per connection (0: no limit)"
    )
    parser.add_argument("--latency", type=float, default=0.02, help="round trip, seconds")
    parser.add_argument("--real-mirror", default="", help="a folder like /work/real/gh")
    args = parser.parse_args()
    link = (
        f"{args.mib_per_second:g} MiB/s per connection"
        if args.mib_per_second
        else "no bandwidth limit"
    ) + f", {args.latency * 1000:g} ms round trip"
    print(f"loopback git daemon through a counting proxy ({link}); median of {args.repeat}")
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mirror-bench-") as folder:
        scratch = Path(folder)
        fixture = build_superproject(
            scratch / "served",
            commits=args.commits,
            bytes_per_commit=args.bytes_per_commit,
            tip_bytes=int(args.tip_mib * 1024 * 1024),
        )
        label = f"fixture ({args.commits} commits each, {args.tip_mib:g} MiB at each tip)"
        results[label] = measure(
            label,
            FIXTURE_REPO,
            fixture.served,
            args.repeat,
            args.mib_per_second,
            args.latency,
            scratch,
        )
        if args.real_mirror:
            real = Path(args.real_mirror.removeprefix("file://"))
            label = f"real repositories ({real})"
            results[label] = measure(
                label, REAL_REPO, real, args.repeat, args.mib_per_second, args.latency, scratch
            )
    print("\nsummary (inv mirror / git clone --mirror by hand):")
    for label, (t_ratio, b_ratio) in results.items():
        print(f"  {label}: wall {t_ratio:.3f}x, bytes {b_ratio:.4f}x")


if __name__ == "__main__":
    main()

"""Benchmark `inv clone` against git's own best one-liner, in one run, as ratios.

git's best: `git clone --depth 1 --recurse-submodules --shallow-submodules -j 8`. Each
scenario runs both (interleaved, `--repeat` times, medians) and prints `inv clone`'s wall
time and `.git` bytes as ratios of the one-liner's:

- local fixture: a superproject with nested submodules and a few hundred commits each, served
  over file://; upstream went on after the superproject recorded its submodules (`--ahead`
  commits with `--ahead-mib` of new data at each tip), as it does for the real repositories;
- throttled loopback: the same repositories over git:// through a proxy with a per-connection
  bandwidth and a round-trip time (tests/lib/netserve.py);
- real mirror (`--real-mirror file:///work/real/gh/`): the real repositories, the tool with
  MMLAB_GIT_MIRROR and MMLAB_PROJECTS (`--projects`), the one-liner with the same mirror as
  an insteadOf on its command line; then the same mirror served over the throttled loopback.

CPU seconds (user and system, of all the processes a method ran) are printed too: on a
loaded machine the wall time follows them. Also times a second, no-op `inv clone` and
`inv bootstrap` on the local fixture, and with `--manual` the upstream README's steps
(shallow superproject, full-history submodules).

    python bench/clone_bench.py [--repeat 3] [--real-mirror file:///work/real/gh/]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lib.gitfixture import GITHUB, advance, build_superproject  # noqa: E402
from tests.lib.netserve import served_over_network  # noqa: E402

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # stock git settings
# The reference methods (plain git) need file:// for submodules on their own command line;
# the tool under test runs with stock settings and allows it itself, for checked URLs only.
ALLOW_FILE = ["-c", "protocol.file.allow=always"]
REAL_REPO = "https://github.com/windzu/mmlab_extension.git"
TIME_GOAL, BYTES_GOAL = 0.6, 0.8
# `inv` of the Python running this (its venv), else the one on PATH
INV = (
    str(Path(sys.executable).parent / "inv")
    if (Path(sys.executable).parent / "inv").exists()
    else "inv"
)


@dataclass
class Scenario:
    """Where both methods clone from."""

    name: str
    url: str
    mirror: str = ""  # a file:// or other mirror of https://github.com/
    projects: str = ""
    jobs: int = 0  # inv clone --jobs (0: its default)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with stock git settings and no MMLAB_ variable but `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMLAB_", "GIT_"))}
    return {**env, **GIT_ENV, **(extra or {})}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        command,
        cwd=cwd,
        env=env or clean_env(),
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


def mirror_args(scenario: Scenario) -> list[str]:
    return ["-c", f"url.{scenario.mirror}.insteadOf={GITHUB}"] if scenario.mirror else []


def one_liner(scenario: Scenario, work: Path) -> Path:
    """git's own best: one clone, every submodule shallow, 8 at a time."""
    shallow = ["--depth", "1", "--recurse-submodules", "--shallow-submodules", "-j", "8"]
    run(["git", *mirror_args(scenario), *ALLOW_FILE, "clone", *shallow, scenario.url, "ext"], work)
    return work / "ext"


def manual(scenario: Scenario, work: Path) -> Path:
    """The upstream README's steps: shallow superproject, full-history submodules."""
    git = ["git", *mirror_args(scenario), *ALLOW_FILE]
    run([*git, "clone", "--depth", "1", scenario.url, "ext"], work)
    run([*git, "submodule", "update", "--init", "--recursive"], work / "ext")
    return work / "ext"


def tool_env(scenario: Scenario) -> dict[str, str]:
    extra = {"MMLAB_GIT_MIRROR": scenario.mirror} if scenario.mirror else {}
    if scenario.projects:
        extra["MMLAB_PROJECTS"] = scenario.projects
    return clean_env(extra)


def tool(scenario: Scenario, work: Path) -> Path:
    """`inv clone` as a user runs it (default --jobs)."""
    shutil.copy(ROOT / "tasks.py", work / "tasks.py")
    command = [INV, "clone", "--repo", scenario.url, "--extension-path", "ext"]
    if scenario.jobs:
        command += ["--jobs", str(scenario.jobs)]
    run(command, work, tool_env(scenario))
    return work / "ext"


Method = Callable[[Scenario, Path], Path]


def children_cpu() -> float:
    """CPU seconds (user and system) of the finished child processes so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def compare(
    scenario: Scenario, methods: dict[str, Method], repeat: int, scratch: Path
) -> dict[str, tuple[int, float, Path, float]]:
    """Run every method `repeat` times, interleaved (so that a busy moment of the machine
    falls on each alike), in a new folder each time; (bytes, median seconds, last clone,
    median CPU seconds of its processes: what the machine's load cannot change)."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    sizes: dict[str, int] = {}
    last: dict[str, Path] = {}
    for attempt in range(repeat):
        order = list(methods.items())
        if attempt % 2:
            order.reverse()
        for name, method in order:
            if name in last:
                shutil.rmtree(last[name].parent)
            work = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
            started, used = time.perf_counter(), children_cpu()
            last[name] = method(scenario, work)
            times[name].append(time.perf_counter() - started)
            cpu[name].append(children_cpu() - used)
            sizes[name] = git_bytes(last[name])
    return {
        name: (
            sizes[name],
            statistics.median(times[name]),
            last[name],
            statistics.median(cpu[name]),
        )
        for name in methods
    }


def noop(scenario: Scenario, clone: Path, repeat: int) -> dict[str, float]:
    """Median seconds of a second, no-op `inv clone` and `inv bootstrap` on a finished clone."""
    workspace = clone.parent
    env = tool_env(scenario)
    bootstrap = [INV, "bootstrap", "--repo", scenario.url, "--extension-path", "ext"]
    run(bootstrap, workspace, env)  # env, layout and links on top of the clone
    found: dict[str, list[float]] = {"inv clone": [], "inv bootstrap": []}
    for _ in range(repeat):
        for name, seconds in found.items():
            started = time.perf_counter()
            run([INV, name.split()[1], *bootstrap[2:]], workspace, env)
            seconds.append(time.perf_counter() - started)
    return {name: statistics.median(seconds) for name, seconds in found.items()}


def report(
    scenario: Scenario, results: dict[str, tuple[int, float, Path, float]]
) -> tuple[float, float]:
    """Print one scenario's table; return inv clone's (time, bytes) ratios to the one-liner."""
    base_bytes, base_time, _, base_cpu = results["git one-liner"]
    print(
        f"\n{scenario.name}: {scenario.url}"
        + (f" (mirror {scenario.mirror})" if scenario.mirror else "")
    )
    print(
        f"  {'method':<15}{'wall s':>9}{'ratio':>8}{'.git bytes':>15}{'ratio':>8}"
        f"{'CPU s':>9}{'ratio':>8}"
    )
    for name, (size, seconds, _, used) in results.items():
        print(
            f"  {name:<15}{seconds:>9.3f}{seconds / base_time:>8.3f}"
            f"{size:>15,}{size / base_bytes:>8.3f}{used:>9.3f}{used / base_cpu:>8.3f}"
        )
    size, seconds, _, _ = results["inv clone"]
    return seconds / base_time, size / base_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--bytes-per-commit", type=int, default=8192)
    parser.add_argument("--tip-mib", type=float, default=4.0)
    parser.add_argument("--ahead", type=int, default=20, help="upstream commits past the recorded")
    parser.add_argument("--ahead-mib", type=float, default=2.0, help="new data at each tip")
    parser.add_argument("--mib-per-second", type=float, default=8.0, help="per connection")
    parser.add_argument("--latency", type=float, default=0.05, help="round trip, seconds")
    parser.add_argument("--real-mirror", default="", help="e.g. file:///work/real/gh/")
    parser.add_argument("--projects", default="mmdetection3d mmdeploy")
    parser.add_argument("--jobs", type=int, default=0, help="inv clone --jobs (0: default)")
    parser.add_argument("--manual", action="store_true", help="also time the README's steps")
    parser.add_argument("--skip", default="", help="leave out: local,network,real,real-network")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    methods: dict[str, Method] = {"git one-liner": one_liner, "inv clone": tool}
    if args.manual:
        methods["manual steps"] = manual
    goals: dict[str, tuple[float, float]] = {}
    link = f"{args.mib_per_second:g} MiB/s per connection, {args.latency * 1000:g} ms round trip"
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        scratch = Path(folder)
        fixture = build_superproject(
            scratch / "served",
            commits=args.commits,
            bytes_per_commit=args.bytes_per_commit,
            tip_bytes=int(args.tip_mib * 1024 * 1024),
        )
        for name in ("mmdetection", "mmdetection3d", "spconv"):
            ahead_bytes = int(args.ahead_mib * 1024 * 1024)
            advance(fixture, name, args.ahead, args.bytes_per_commit, ahead_bytes)
        print(
            f"fixture: 4 repositories (one nested), {args.commits} commits of"
            f" {args.bytes_per_commit} B each, {args.tip_mib:g} MiB at each recorded commit;"
            f" upstream {args.ahead} commits ahead with {args.ahead_mib:g} MiB new at each"
            f" submodule's tip; median of {args.repeat} interleaved runs;"
            f" inv clone with --jobs {args.jobs or 'default'}, the one-liner with -j 8"
        )
        if "local" not in skip:
            local = Scenario("local fixture (file://)", fixture.url(), jobs=args.jobs)
            results = compare(local, methods, args.repeat, scratch)
            goals[local.name] = report(local, results)
            for name, seconds in noop(local, results["inv clone"][2], args.repeat).items():
                print(f"  second, no-op {name}: {seconds:.3f} s")
        if "network" not in skip:
            with served_over_network(fixture.served, args.mib_per_second, args.latency) as base:
                name = f"fixture over the throttled loopback ({link})"
                network = Scenario(name, f"{base}fake/mmlab_extension.git", jobs=args.jobs)
                goals[network.name] = report(
                    network, compare(network, methods, args.repeat, scratch)
                )
        if args.real_mirror and "real" not in skip:
            real = Scenario("real mirror", REAL_REPO, args.real_mirror, args.projects, args.jobs)
            goals[real.name] = report(real, compare(real, methods, args.repeat, scratch))
        if args.real_mirror.startswith("file://") and "real-network" not in skip:
            mirror_folder = Path(args.real_mirror[len("file://") :])
            with served_over_network(mirror_folder, args.mib_per_second, args.latency) as base:
                name = f"real mirror over the throttled loopback ({link})"
                real = Scenario(name, REAL_REPO, base, args.projects, args.jobs)
                goals[real.name] = report(real, compare(real, methods, args.repeat, scratch))
    print(
        f"\ngoals: inv clone <= {TIME_GOAL}x the one-liner's wall time, <= {BYTES_GOAL}x its bytes"
    )
    for name, (time_ratio, bytes_ratio) in goals.items():
        met = "met" if time_ratio <= TIME_GOAL and bytes_ratio <= BYTES_GOAL else "NOT met"
        print(f"  {name}: time {time_ratio:.2f}x, bytes {bytes_ratio:.2f}x: {met}")


if __name__ == "__main__":
    main()

"""Benchmark `inv link-data --adopt` / `--backup` at dataset scale against plain tools, in one run.

Builds the fixture superproject, clones it, fills mmdetection3d's `data/` (beside its tracked
files) with --files small files, then measures (median of --repeat runs, each on a fresh copy):

- same disk: `inv link-data --adopt` and `--backup` against a plain `find` walk of the tree
  (goal: at most 10x);
- across filesystems (--work to --other, e.g. a disk and a tmpfs): `inv link-data --adopt`
  against `cp -a` + `rm -rf` of the same tree (goal: at most 1.3x);
- sparse files: --sparse files of 1 GiB, each with a few data extents, adopted across
  filesystems: allocated bytes in the target against the source's (goal: at most 1.1x).

    python bench/adopt_bench.py [--files 200000] [--repeat 3] [--work DIR] [--other DIR]
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchtools import inv_command  # noqa: E402  (bench/ is on the path)

from tests.lib.gitfixture import build_superproject  # noqa: E402

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # stock git settings
BIN = Path(sys.executable).parent
PROJECT = "mmdetection3d"
GIB = 1 << 30


def environment() -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@dataclass(frozen=True)
class Took:
    """Wall time and CPU time (user + system, the command and what it ran) of a command."""

    wall: float
    cpu: float

    def __add__(self, other: Took) -> Took:
        return Took(self.wall + other.wall, self.cpu + other.cpu)


def median(takes: list[Took]) -> Took:
    return Took(statistics.median(t.wall for t in takes), statistics.median(t.cpu for t in takes))


def run(command: list[str], cwd: Path) -> Took:
    """Run a command (its output read, as a user's terminal would); what it took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout.decode()}"
            f"{done.stderr.decode()}"
        )
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return Took(wall, cpu)


def make_template(base: Path) -> Path:
    """A cloned workspace (superproject and submodules) with `.env`, to copy for each run."""
    fixture = build_superproject(base / "served")
    workspace = base / "workspace"
    workspace.mkdir()
    run(
        ["git", "-c", "protocol.file.allow=always", "clone", "-q", "--recurse-submodules",
         "--shallow-submodules", "--depth", "1", fixture.url(), str(workspace / "mmlab_extension")],
        base,
    )  # fmt: skip
    shutil.copy(ROOT / "tasks.py", workspace / "tasks.py")
    (workspace / ".env").write_text(
        f"MMLAB_EXTENSION_REPO='{fixture.url()}'\nMMLAB_PROJECTS='{PROJECT}'\n"
    )
    return workspace


def make_tree(folder: Path, files: int, per_folder: int = 500) -> None:
    """`files` small files (1..1024 bytes) in two levels of folders, `per_folder` to a folder."""
    folder.mkdir(parents=True)
    payload = os.urandom(1024)
    made = 0
    outer = 0
    while made < files:
        for inner in range(20):
            leaf = folder / f"set{outer:03d}" / f"part{inner:02d}"
            leaf.mkdir(parents=True)
            for number in range(min(per_folder, files - made)):
                size = 1 + (made * 7919) % 1024
                with open(leaf / f"{number:06d}.bin", "wb") as handle:
                    handle.write(payload[:size])
                made += 1
            if made >= files:
                break
        outer += 1


def make_sparse(folder: Path, count: int) -> None:
    """`count` files of 1 GiB, each with 64 KiB of data at its start, middle and end."""
    folder.mkdir(parents=True)
    chunk = os.urandom(64 << 10)
    for number in range(count):
        with open(folder / f"volume{number}.img", "wb") as handle:
            for offset in (0, GIB // 2, GIB - len(chunk)):
                handle.seek(offset)
                handle.write(chunk)


def allocated(top: Path) -> int:
    total = 0
    for folder, _, names in os.walk(top):
        for name in names:
            total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


class Runs:
    """Fresh copies of the workspace (with the tree at the link location) under `work`."""

    def __init__(self, template: Path, tree: Path, work: Path) -> None:
        self.template, self.tree, self.work, self.count = template, tree, work, 0

    def fresh(self) -> Path:
        """A new workspace holding the tree, its folders in the cache (as after any `ls`)."""
        self.count += 1
        workspace = self.work / f"run{self.count}"
        run(["cp", "-a", str(self.template), str(workspace)], self.work)
        run(["cp", "-a", f"{self.tree}/.", str(location_in(workspace))], self.work)
        run(["find", str(workspace)], self.work)
        return workspace


def location_in(workspace: Path) -> Path:
    return workspace / "mmlab_extension" / PROJECT / "data"


def link(workspace: Path, way: str, storage: Path) -> Took:
    return run([*inv_command(), "link-data", way, "--dataset-path", str(storage)], workspace)


def verdict(name: str, took: Took, reference: Took, goal: float, what: str) -> bool:
    """PASS when the wall-time ratio meets the goal; the CPU-time ratio (less sensitive to
    other load on the machine) is shown beside it."""
    ratio = took.wall / reference.wall
    ok = ratio <= goal
    print(
        f"{'PASS' if ok else 'FAIL'}  {name} vs {what}: {ratio:.2f}x (goal <= {goal:g}x):"
        f" {took.wall:.3f} s vs {reference.wall:.3f} s; CPU {took.cpu:.2f} s vs"
        f" {reference.cpu:.2f} s ({took.cpu / max(reference.cpu, 1e-9):.2f}x)"
    )
    return ok


def same_disk(runs: Runs, repeat: int) -> list[bool]:
    """`--adopt` and `--backup` with storage on the workspace's disk, against `find`."""
    finds, adopts, backups = [], [], []
    for _ in range(repeat):
        workspace = runs.fresh()
        finds.append(run(["find", str(location_in(workspace))], runs.work))
        adopts.append(link(workspace, "--adopt", workspace / "storage"))
        shutil.rmtree(workspace)
        workspace = runs.fresh()
        backups.append(link(workspace, "--backup", workspace / "storage"))
        shutil.rmtree(workspace)
    find = median(finds)
    return [
        verdict("same-disk --adopt", median(adopts), find, 10, "find"),
        verdict("same-disk --backup", median(backups), find, 10, "find"),
    ]


def cross_disk(runs: Runs, other: Path, repeat: int) -> list[bool]:
    """`--adopt` with storage on another filesystem, against `cp -a` then `rm -rf`."""
    copies, adopts = [], []
    for number in range(repeat):
        source = runs.work / f"copy{number}"
        run(["cp", "-a", str(runs.tree), str(source)], runs.work)
        run(["find", str(source)], runs.work)
        destination = other / f"copy{number}"
        copy = run(["cp", "-a", str(source), str(destination)], runs.work)
        copies.append(copy + run(["rm", "-rf", str(source)], runs.work))
        shutil.rmtree(destination)
        workspace = runs.fresh()
        storage = other / f"storage{number}"
        adopts.append(link(workspace, "--adopt", storage))
        shutil.rmtree(workspace)
        shutil.rmtree(storage)
    return [verdict("cross-disk --adopt", median(adopts), median(copies), 1.3, "cp -a + rm -rf")]


def sparse(template: Path, work: Path, other: Path, count: int) -> list[bool]:
    """`--adopt` of sparse files to another filesystem: bytes allocated there."""
    workspace = Path(shutil.copytree(template, work / "sparse-run", symlinks=True))
    volumes = location_in(workspace) / "volumes"
    make_sparse(volumes, count)
    source = allocated(volumes)
    storage = other / "sparse-storage"
    took = link(workspace, "--adopt", storage)
    target = allocated(storage / PROJECT / "data" / "volumes")
    ok = target <= 1.1 * source
    print(
        f"{'PASS' if ok else 'FAIL'}  sparse files across disks, allocated in the target vs"
        f" the source: {target / source:.2f}x (goal <= 1.1x): {target:,} B vs {source:,} B"
        f" ({count} x 1 GiB, {took.wall:.2f} s)"
    )
    return [ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sparse", type=int, default=5, help="sparse files of 1 GiB")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()),
                        help="a folder on the workspace's disk")  # fmt: skip
    parser.add_argument("--other", type=Path, default=Path("/dev/shm"),
                        help="a folder on another filesystem (cross-disk storage)")  # fmt: skip
    parser.add_argument("--only", choices=["same", "cross", "sparse"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["same", "cross", "sparse"])
    work = Path(tempfile.mkdtemp(prefix="adopt-bench-", dir=args.work))
    other = Path(tempfile.mkdtemp(prefix="adopt-bench-", dir=args.other))
    results: list[bool] = []
    try:
        template = make_template(work / "template")
        tree = work / "tree"
        make_tree(tree, args.files)
        runs = Runs(template, tree, work)
        print(f"{args.files} files of 1-1024 B, 500 to a folder in two levels of folders,"
              f" beside {PROJECT}'s tracked files; median of {args.repeat} runs")  # fmt: skip
        if "same" in only:
            results += same_disk(runs, args.repeat)
        if only - {"same"} and os.stat(work).st_dev == os.stat(other).st_dev:
            print(f"SKIP  cross-disk goals: {work} and {other} are on one filesystem")
        else:
            if "cross" in only:
                results += cross_disk(runs, other, args.repeat)
            if "sparse" in only:
                results += sparse(template, work, other, args.sparse)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(other, ignore_errors=True)
    print("all goals met" if all(results) else "some goals not met")
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()

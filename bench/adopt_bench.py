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

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # stock git settings
BIN = Path(sys.executable).parent
PROJECT = "mmdetection3d"
GIB = 1 << 30


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout.decode()}"
            f"{done.stderr.decode()}"
        )


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


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
        self.count += 1
        workspace = self.work / f"run{self.count}"
        run(["cp", "-a", str(self.template), str(workspace)], self.work)
        location = workspace / "mmlab_extension" / PROJECT / "data"
        run(["cp", "-a", f"{self.tree}/.", str(location)], self.work)
        return workspace


def link(workspace: Path, way: str, storage: Path) -> None:
    run(["inv", "link-data", way, "--dataset-path", str(storage)], workspace)


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(name: str, ratio: float, goal: float, detail: str) -> bool:
    ok = ratio <= goal
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {ratio:.2f}x (goal <= {goal:g}x)  {detail}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sparse", type=int, default=5, help="sparse files of 1 GiB")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()),
                        help="a folder on the workspace's disk")  # fmt: skip
    parser.add_argument("--other", type=Path, default=Path("/dev/shm"),
                        help="a folder on another filesystem (storage for the cross-disk runs)")  # fmt: skip
    parser.add_argument("--only", choices=["same", "cross", "sparse"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["same", "cross", "sparse"])
    work = Path(tempfile.mkdtemp(prefix="adopt-bench-", dir=args.work))
    other = Path(tempfile.mkdtemp(prefix="adopt-bench-", dir=args.other))
    across = os.stat(work).st_dev != os.stat(other).st_dev
    results = []
    try:
        template = make_template(work / "template")
        tree = work / "tree"
        make_tree(tree, args.files)
        runs = Runs(template, tree, work)
        print(f"{args.files} files in {tree} (2 levels, 500 to a folder); median of {args.repeat}")
        if "same" in only:
            finds, adopts, backups = [], [], []
            for _ in range(args.repeat):
                workspace = runs.fresh()
                location = workspace / "mmlab_extension" / PROJECT / "data"
                run(["find", str(location)], work)  # warm the cache as every run has it
                finds.append(timed(lambda: run(["find", str(location)], work)))
                adopts.append(timed(lambda: link(workspace, "--adopt", workspace / "storage")))
                shutil.rmtree(workspace)
                workspace = runs.fresh()
                run(["find", str(workspace)], work)
                backups.append(timed(lambda: link(workspace, "--backup", workspace / "storage")))
                shutil.rmtree(workspace)
            find = median(finds)
            print(f"find: {find:.3f} s; adopt: {median(adopts):.3f} s; backup: {median(backups):.3f} s")
            results.append(verdict("same-disk --adopt vs find", median(adopts) / find, 10,
                                   f"{median(adopts):.2f} s vs {find:.3f} s"))  # fmt: skip
            results.append(verdict("same-disk --backup vs find", median(backups) / find, 10,
                                   f"{median(backups):.2f} s vs {find:.3f} s"))  # fmt: skip
        if not across and only - {"same"}:
            print(f"SKIP  cross-disk goals: {work} and {other} are on one filesystem")
            only = {"same"} & only
        if "cross" in only:
            copies, adopts = [], []
            for number in range(args.repeat):
                source = work / f"copy{number}"
                run(["cp", "-a", str(tree), str(source)], work)
                destination = other / f"copy{number}"
                run(["find", str(source)], work)

                def copy_remove() -> None:
                    run(["cp", "-a", str(source), str(destination)], work)
                    run(["rm", "-rf", str(source)], work)

                copies.append(timed(copy_remove))
                shutil.rmtree(destination)
                workspace = runs.fresh()
                run(["find", str(workspace)], work)
                storage = other / f"storage{number}"
                adopts.append(timed(lambda: link(workspace, "--adopt", storage)))
                shutil.rmtree(workspace)
                shutil.rmtree(storage)
            reference, adopt = median(copies), median(adopts)
            results.append(verdict("cross-disk --adopt vs cp -a + rm -rf", adopt / reference, 1.3,
                                   f"{adopt:.2f} s vs {reference:.2f} s"))  # fmt: skip
        if "sparse" in only:
            template_sparse = work / "sparse-template"
            workspace = Path(
                shutil.copytree(template, work / "sparse-run", symlinks=True)
            )
            location = workspace / "mmlab_extension" / PROJECT / "data"
            make_sparse(location / "volumes", args.sparse)
            source_bytes = allocated(location / "volumes")
            storage = other / "sparse-storage"
            seconds = timed(lambda: link(workspace, "--adopt", storage))
            target_bytes = allocated(storage / PROJECT / "data" / "volumes")
            results.append(verdict(
                "sparse files across disks: allocated in target vs source",
                target_bytes / source_bytes, 1.1,
                f"{target_bytes:,} B vs {source_bytes:,} B ({args.sparse} x 1 GiB, {seconds:.2f} s)",
            ))  # fmt: skip
            del template_sparse
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(other, ignore_errors=True)
    print("all goals met" if all(results) else "some goals not met")
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()

"""Start-up: `inv --list` in a workspace of this tool against `inv --list` with an empty tasks.py.

Goal (issue 15): `inv --list` <= 1.10x an empty `tasks.py`, with and without cached bytecode.

Both sides run the same `inv` console script (the one beside the interpreter running this
benchmark, so run it with the project's venv), in two temporary folders: one holding a copy
of this checkout's `tasks.py` (a workspace as the README sets it up), one holding an empty
`tasks.py` (invoke prints "No tasks found" and exits 1 there; only the time counts). Runs
alternate between the two sides; the figures are medians of --repeat runs.

Bytecode:
  cached    PYTHONDONTWRITEBYTECODE and PYTHONPYCACHEPREFIX removed from the environment and
            two warm-up runs per side first with `inv --write-pyc --list` (invoke itself sets
            sys.dont_write_bytecode unless given --write-pyc, so a plain `inv` never caches
            the tasks.py or the package it imports: with an editable install, users run the
            package uncached unless something else, such as pytest, compiled it), so every
            module (the package, the workspace's tasks.py, invoke, the standard library) is
            read from its `__pycache__`.
  uncached  PYTHONDONTWRITEBYTECODE=1 and PYTHONPYCACHEPREFIX=<a new empty folder> for each
            run: Python then looks for bytecode only under that empty prefix (never in any
            `__pycache__`), so every module imported from source is compiled, the package's
            and its imports' alike (standard library and invoke too: the same for both sides),
            and nothing is written.
  fresh     what the empty tasks.py imports is cached (a prefix folder warmed by it), what
            only the workspace imports is not (PYTHONDONTWRITEBYTECODE=1 and
            PYTHONPYCACHEPREFIX=<that prefix>): the first run after an install, and every
            `inv` run of an editable install that nothing else compiled (see above).
  Each mode is checked once per side with PYTHONVERBOSE=1 (how many modules were read from
  .pyc and how many compiled from source); a measurement that did not hold is marked INVALID.

Then `python -X importtime <inv> --list` (same interpreter, same script) is run on both
sides, and the modules imported only in the workspace are listed: which of the package's
modules pull in how much (own time plus the time of the not-yet-imported modules they were
first to import), and the heaviest extra modules. This is a map for making start-up lazy.

    python bench/startup_bench.py [--repeat 21] [--imports-repeat 5] [--top 20]

Uses only the command line (`inv --list`), never the package's internals.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchtools import inv_command

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.10
PACKAGE = "mmlab_bootstrap"


def base_env(home: Path) -> dict[str, str]:
    """The caller's environment without anything that changes how Python or the tool runs."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MMLAB_", "INVOKE_", "GIT_", "PYTHON"))
    }
    env["HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Side:
    """One folder with a tasks.py, and what was measured there."""

    name: str
    folder: Path
    times: dict[str, list[float]] = field(default_factory=dict)


def run_once(command: list[str], side: Side, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command,
        cwd=side.folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


MODES = ("cached", "uncached", "fresh")


def mode_env(mode: str, env: dict[str, str], prefixes: Path) -> dict[str, str]:
    """The environment of one run in `mode`: a new empty bytecode prefix when uncached, the
    prefix warmed by the empty tasks.py (`prefixes/warm`) when fresh; nothing written."""
    if mode == "cached":
        return dict(env)
    if mode == "fresh":
        prefix = prefixes / "warm"
    else:
        prefix = Path(tempfile.mkdtemp(prefix="pyc-", dir=prefixes))
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(prefix)}


def bytecode_use(command: list[str], side: Side, env: dict[str, str]) -> tuple[int, int]:
    """(modules read from .pyc, modules compiled from source) in one run, from -v output."""
    done = subprocess.run(
        command,
        cwd=side.folder,
        env={**env, "PYTHONVERBOSE": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    from_pyc = from_source = 0
    for line in done.stderr.splitlines():
        if line.startswith("# code object from "):
            if line.rstrip("'").endswith(".pyc"):
                from_pyc += 1
            else:
                from_source += 1
    return from_pyc, from_source


@dataclass
class Imported:
    """One line of `-X importtime`: a module, its own and cumulative microseconds, depth."""

    name: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: str | None = None


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S.*)$")


def import_tree(command: list[str], side: Side, env: dict[str, str]) -> dict[str, Imported]:
    """The modules one `python -X importtime` run imported, each with the module that first
    imported it (its parent in the import tree; None at the top)."""
    interpreter_command = (
        [sys.executable, "-X", "importtime", *command]
        if command[0] != sys.executable
        else [sys.executable, "-X", "importtime", *command[1:]]
    )
    done = subprocess.run(
        [*interpreter_command, "--list"],
        cwd=side.folder,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    found: list[Imported] = []
    for line in done.stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            self_us, cumulative_us, indent, name = match.groups()
            found.append(Imported(name.strip(), int(self_us), int(cumulative_us), len(indent)))
    # A module's line comes after those of the modules it imported (deeper indentation):
    # the parent of a line is the next line that is less indented.
    waiting: list[Imported] = []
    for entry in found:
        while waiting and waiting[-1].depth > entry.depth:
            waiting.pop().parent = entry.name
        waiting.append(entry)
    return {entry.name: entry for entry in found}


def median_trees(trees: list[dict[str, Imported]]) -> dict[str, Imported]:
    """Per module, the median own time over the runs (structure from the first run)."""
    merged: dict[str, Imported] = {}
    for name, entry in trees[0].items():
        times = [tree[name].self_us for tree in trees if name in tree]
        merged[name] = Imported(
            name, int(statistics.median(times)), entry.cumulative_us, entry.depth, entry.parent
        )
    return merged


def package_owner(name: str, tree: dict[str, Imported]) -> str:
    """The package module that first imported `name` (itself if it is one), else its root."""
    current: str | None = name
    while current is not None:
        if current == PACKAGE or current.startswith(PACKAGE + "."):
            return current
        parent = tree[current].parent if current in tree else None
        if parent is None:
            return f"(top: {current})"
        current = parent
    return "(unknown)"


def report_imports(
    extra: dict[str, dict[str, Imported]], baseline_names: set[str], top: int
) -> None:
    """Print who pulls in what beyond the empty tasks.py, per bytecode mode."""
    modes = list(extra)
    first = extra[modes[0]]
    names = [name for name in first if name not in baseline_names]
    print(f"\nmodules imported by `inv --list` beyond the empty tasks.py: {len(names)}")
    owners: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    for mode in modes:
        tree = extra[mode]
        for name in names:
            owner = package_owner(name, first)
            owners.setdefault(owner, {}).setdefault(mode, 0)
            owners[owner][mode] += tree[name].self_us if name in tree else 0
            if mode == modes[0]:
                counts[owner] = counts.get(owner, 0) + 1
    header = "".join(f"{mode + ' ms':>13}" for mode in modes)
    print("\nper package module (own -X importtime time + modules it was first to import):")
    print(f"  {'module':<34}{'modules':>8}{header}")
    total = {mode: 0 for mode in modes}
    for owner, by_mode in sorted(owners.items(), key=lambda item: -item[1][modes[0]]):
        cells = "".join(f"{by_mode.get(mode, 0) / 1000:>13.2f}" for mode in modes)
        print(f"  {owner:<34}{counts[owner]:>8}{cells}")
        for mode in modes:
            total[mode] += by_mode.get(mode, 0)
    cells = "".join(f"{total[mode] / 1000:>13.2f}" for mode in modes)
    print(f"  {'total':<34}{len(names):>8}{cells}")
    print(f"\nheaviest extra modules outside {PACKAGE} (own time; first imported by):")
    outside = [name for name in names if not name.startswith(PACKAGE)]
    outside.sort(key=lambda name: -first[name].self_us)
    for name in outside[:top]:
        cells = "".join(
            f"{extra[mode][name].self_us / 1000 if name in extra[mode] else 0:>9.2f}"
            for mode in modes
        )
        print(f"  {name:<34}{cells}  <- {first[name].parent or '-'}")
    if len(outside) > top:
        rest = ", ".join(sorted({name.split(".")[0] for name in outside[top:]}))
        print(f"  ... {len(outside) - top} more, under: {rest}")
    tops = sorted({name.split(".")[0] for name in outside})
    print(f"\ntop-level packages imported only for the workspace: {', '.join(tops)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=21, help="timed runs per side and mode")
    parser.add_argument(
        "--imports-repeat", type=int, default=5, help="-X importtime runs per side and mode"
    )
    parser.add_argument("--top", type=int, default=20, help="extra modules to list")
    parser.add_argument(
        "--tasks", type=Path, default=ROOT / "tasks.py", help="the workspace's tasks.py"
    )
    args = parser.parse_args()
    command = [*inv_command(), "--list"]
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as scratch:
        base = Path(scratch)
        (base / "home").mkdir()
        (base / "prefixes").mkdir()
        empty = Side("empty tasks.py", base / "empty")
        tool = Side("workspace", base / "workspace")
        for side in (empty, tool):
            side.folder.mkdir()
        (empty.folder / "tasks.py").write_text("")
        shutil.copy(args.tasks, tool.folder / "tasks.py")
        env = base_env(base / "home")
        listed = subprocess.run(
            command, cwd=tool.folder, env=env, capture_output=True, text=True, check=False
        )
        if listed.returncode != 0:
            sys.exit(f"`inv --list` failed in the workspace:\n{listed.stdout}{listed.stderr}")
        print(f"inv: {' '.join(command)}  (python {sys.version.split()[0]})")
        print(f"median of {args.repeat} runs per side, sides alternating")
        checks: list[str] = []
        valid = {mode: True for mode in MODES}
        warm = {**env, "PYTHONPYCACHEPREFIX": str(base / "prefixes" / "warm")}
        for _ in range(2):  # what the empty tasks.py imports, compiled into the warm prefix
            run_once([*command[:-1], "--write-pyc", "--list"], empty, warm)
        for mode in MODES:
            baseline_pyc = 0
            for side in (empty, tool):
                side.times[mode] = []
                if mode == "cached":
                    # invoke writes no bytecode for what it imports after parsing its flags
                    # (the tasks.py and so the package) unless told to: warm up with it.
                    for _ in range(2):
                        run_once([*command[:-1], "--write-pyc", "--list"], side, env)
                pyc, source = bytecode_use(command, side, mode_env(mode, env, base / "prefixes"))
                if mode == "cached":
                    holds = source == 0
                elif mode == "uncached":
                    holds = pyc == 0
                elif side is empty:
                    holds, baseline_pyc = source == 0, pyc
                else:
                    holds = pyc <= baseline_pyc and source > 0
                valid[mode] = valid[mode] and holds
                checks.append(
                    f"  {mode:<9}{side.name:<16}{pyc:>5} read from .pyc, {source:>4} compiled"
                    f" from source{'' if holds else '  INVALID'}"
                )
            for index in range(args.repeat):
                order = (empty, tool) if index % 2 == 0 else (tool, empty)
                for side in order:
                    side.times[mode].append(
                        run_once(command, side, mode_env(mode, env, base / "prefixes"))
                    )
        print("bytecode check (one PYTHONVERBOSE=1 run each):")
        print("\n".join(checks))
        print(f"\n{'bytecode':<10}{'empty s':>9}{'workspace s':>13}{'ratio':>8}{'goal':>7}  result")
        passed = True
        for mode in MODES:
            base_time = statistics.median(empty.times[mode])
            tool_time = statistics.median(tool.times[mode])
            ratio = tool_time / base_time
            ok = ratio <= GOAL and valid[mode]
            passed = passed and ok
            print(
                f"{mode:<10}{base_time:>9.3f}{tool_time:>13.3f}{ratio:>8.3f}{GOAL:>7.2f}"
                f"  {'PASS' if ok else 'FAIL'}"
            )
        for mode in MODES:
            extra_ms = (
                statistics.median(tool.times[mode]) - statistics.median(empty.times[mode])
            ) * 1000
            print(f"  {mode}: the workspace costs {extra_ms:.1f} ms more (wall clock)")
        trees: dict[str, dict[str, Imported]] = {}
        baseline_names: set[str] = set()
        for mode in MODES:
            runs = [
                import_tree(command[:-1], tool, mode_env(mode, env, base / "prefixes"))
                for _ in range(args.imports_repeat)
            ]
            trees[mode] = median_trees(runs)
            baseline_names |= set(
                import_tree(command[:-1], empty, mode_env(mode, env, base / "prefixes"))
            )
        report_imports(trees, baseline_names, args.top)
        print(
            f"\nstart-up goal (<= {GOAL:.2f}x, every bytecode mode): {'PASS' if passed else 'FAIL'}"
        )


if __name__ == "__main__":
    main()

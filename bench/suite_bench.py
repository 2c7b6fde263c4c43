"""The suite: today's README test command against the one before the fast inner loop.

Goal (issue 22): the README's test command (`pytest`: parallel workers, the `slow` tier left
out, see [tool.pytest.ini_options] in pyproject.toml) runs in <= 40% of the time of the
command the README gave before (`pytest` with `addopts = "-ra"`: one process, every test).

Both run here one after the other, in this checkout, with the quick profile (MMLAB_TEST_PROFILE
removed from the environment) and this interpreter's pytest:
  before  pytest -o addopts=-ra -p no:xdist -p no:randomly   (every test, one process)
  after   pytest                                            (the README's command)
The load average is printed before and after each: on a shared machine the figures are only
comparable when the load stayed alike, so say it with them. Each run's last line (its counts)
is printed too; a run that failed is marked, and its time still shown.

Usage: .venv/bin/python bench/suite_bench.py [--only before|after] [-- extra pytest args]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.40
COMMANDS = {
    "before": ["-o", "addopts=-ra", "-p", "no:xdist", "-p", "no:randomly"],
    "after": [],
}


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(label: str, extra: list[str]) -> tuple[float, int, str]:
    env = {k: v for k, v in os.environ.items() if k != "MMLAB_TEST_PROFILE"}
    argv = [sys.executable, "-m", "pytest", *COMMANDS[label], *extra]
    print(f"{label}: {' '.join(argv[1:])}   (load before: {load()}, {os.cpu_count()} cores)")
    sys.stdout.flush()
    start = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = lines[-1] if lines else "(no output)"
    mark = "" if done.returncode == 0 else f"   FAILED (exit {done.returncode})"
    print(f"{label}: {took:7.1f} s   {summary}   (load after: {load()}){mark}")
    for line in lines:
        if line.startswith(("FAILED ", "ERROR ")):
            print(f"  {line[:200]}")
    sys.stdout.flush()
    return took, done.returncode, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMMANDS))
    parser.add_argument("extra", nargs="*", help="more pytest arguments for both runs")
    options = parser.parse_args()
    labels = [options.only] if options.only else ["before", "after"]
    times = {label: run(label, options.extra) for label in labels}
    if len(times) == 2:
        ratio = times["after"][0] / times["before"][0]
        verdict = "meets" if ratio <= GOAL else "MISSES"
        print(f"after / before = {ratio:.2f} ({verdict} the goal of <= {GOAL:.2f})")
    return 0 if all(code == 0 for _, code, _ in times.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

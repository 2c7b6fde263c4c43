"""`inv doctor` on a workspace with a KITTI-sized dataset: goal (issue 12) under 1 s.

Sets up a workspace as a user does (a copy of this checkout's `tasks.py`, `inv env ...`, then
`inv bootstrap`), fills `mmdetection3d/data/kitti` with the KITTI layout at full size (7481
training and 7518 testing ids, each a velodyne, image, calib and label file of a few bytes,
plus what `create_data.py` makes: info files in the current format, a 20 000-file
`kitti_gt_database`), and a fake training environment (a venv with dist-info folders of torch,
mmcv, mmengine, mmdet and mmdet3d). Then it times `inv doctor` (and `inv status` beside it,
for what doctor adds) and prints the medians of --repeat runs, alternating. The page cache is
warm, as on a second run; doctor's reads are bounded whatever the size (see the README).

    python bench/doctor_bench.py [--repeat 9] [--ids 7481] [--real] [--keep]

Uses only the command line (`inv ...`), never the package's internals.
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

from tests.lib.datatrees import kitti  # noqa: E402
from tests.lib.fakepython import FakePython, sub_projects  # noqa: E402
from tests.lib.gitfixture import build_superproject  # noqa: E402

REAL_MIRROR = "file:///work/real/gh/"
REAL_PROJECTS = "mmdetection3d mmdeploy"
GOAL = 1.0  # seconds


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMLAB_", "GIT_"))}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def inv(args: list[str], workspace: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*inv_command(), *args], cwd=workspace, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def set_up(args: argparse.Namespace, base: Path, env: dict[str, str]) -> tuple[Path, Path]:
    workspace = base / "ws"
    workspace.mkdir()
    shutil.copy(ROOT / "tasks.py", workspace / "tasks.py")
    if args.real:
        inv(["env", "--mirror", REAL_MIRROR, "--projects", REAL_PROJECTS], workspace, env)
    else:
        inv(["env", "--repo", build_superproject(base / "served").url()], workspace, env)
    done = inv(["bootstrap"], workspace, env)
    if done.returncode != 0:
        sys.exit(f"inv bootstrap failed:\n{done.stdout}{done.stderr}")
    extension = workspace / "mmlab_extension"
    if not args.real:
        sub_projects(extension)
    started = time.perf_counter()
    folder = kitti(extension / "mmdetection3d" / "data" / "kitti", ids=args.ids)
    for number in range(args.ids, 7518):
        (folder / "testing" / "velodyne" / f"{number:06d}.bin").write_bytes(b"x")
    for number in range(20_000):
        (folder / "kitti_gt_database" / f"{number}_Car_0.bin").write_bytes(b"x")
    print(f"KITTI tree ({args.ids} training ids): {time.perf_counter() - started:.1f} s to make")
    fake = FakePython(base / "venv")
    fake.install("torch", "2.1.2+cu118", cuda="11.8")
    for name, version in (("mmcv", "2.1.0"), ("mmengine", "0.10.3"), ("mmdet", "3.2.0")):
        fake.install(name, version)
    fake.install("mmdet3d", "1.4.0", editable=extension / "mmdetection3d")
    return workspace, fake.python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="timed runs of each command")
    parser.add_argument("--ids", type=int, default=7481, help="KITTI training ids")
    parser.add_argument("--real", action="store_true", help="the real-repository mirror")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="doctor-bench-"))
    env = environment()
    try:
        workspace, python = set_up(args, base, env)
        commands = {"status": ["status"], "doctor": ["doctor", "--python", str(python)]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for name, command in commands.items():  # a warm-up run of each
            done = inv(command, workspace, env)
            print(f"inv {' '.join(command)}: exit {done.returncode}")
            if name == "doctor":
                print("\n".join("  " + line for line in done.stdout.splitlines()[-12:]))
        for _ in range(args.repeat):
            for name, command in commands.items():
                started = time.perf_counter()
                inv(command, workspace, env)
                times[name].append(time.perf_counter() - started)
        for name, taken in times.items():
            print(f"inv {name}: median {statistics.median(taken):.3f} s over {args.repeat} runs")
        doctor = statistics.median(times["doctor"])
        verdict = "meets" if doctor < GOAL else "MISSES"
        print(f"goal: inv doctor under {GOAL:.0f} s: {verdict} ({doctor:.3f} s)")
    finally:
        if args.keep:
            print(f"kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

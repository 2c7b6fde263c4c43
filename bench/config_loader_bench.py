"""Reading configs: the sub-project's own loader in the training interpreter against the static
reader, on every config of a workspace's checkout (the superproject's extension configs and
mmdetection3d's), and whether both find the same weights and variables.

    python bench/config_loader_bench.py --python PATH --extension PATH [--repeat 3]

`--python` is an interpreter whose `mmcv.Config` (or mmengine's) is real: e.g. a venv with
mmcv's runtime requirements and a `.pth` naming the workspace's mmcv checkout. Prints the
medians of --repeat runs of: the static reader on every config, one loader run for all of them,
and one loader run for a single config (what a `status` with one config in MMLAB_CHECKPOINTS
pays), then how many configs each reader read and how many agree.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmlab_bootstrap.checkpoints.configload import load_configs  # noqa: E402
from mmlab_bootstrap.checkpoints.configread import ConfigError, ConfigRead, read_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--extension", required=True, type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    extension = args.extension.resolve()
    folders = [
        extension / "mmdetection3d_extension" / "configs",
        extension / "mmdetection3d" / "configs",
    ]
    paths = [
        p for folder in folders for p in sorted(folder.rglob("*.py")) if "_base_" not in p.parts
    ]
    env = {
        **os.environ,
        "MMLAB_EXTENSION_PATH": str(extension),
        "ADMLOPS_PATH": str(extension),
        "MMDETECTION3D_DIR": str(extension / "mmdetection3d"),
    }
    timings: dict[str, list[float]] = {"static": [], "loader": [], "loader, one config": []}
    for _ in range(args.repeat):
        started = time.perf_counter()
        static: dict[Path, ConfigRead] = {}
        for path in paths:
            with contextlib.suppress(ConfigError):
                static[path] = read_config(path, env)
        timings["static"].append(time.perf_counter() - started)
        started = time.perf_counter()
        loaded = load_configs(args.python, paths, env)
        timings["loader"].append(time.perf_counter() - started)
        started = time.perf_counter()
        load_configs(args.python, paths[:1], env)
        timings["loader, one config"].append(time.perf_counter() - started)
    for name, values in timings.items():
        print(f"{name}: {statistics.median(values):.2f} s")
    if loaded.refused:
        print(f"the loader was refused: {loaded.refused}")
        return
    same_weights = same_variables = 0
    for path, read in loaded.reads.items():
        other = static.get(path)
        if other is None:
            continue
        ours = sorted((w.key, str(w.value)) for w in read.weights)
        theirs = sorted((w.key, str(w.value)) for w in other.weights)
        same_weights += ours == theirs
        same_variables += sorted(read.variables) == sorted(other.variables)
    print(
        f"{len(paths)} configs; {loaded.loader}: {len(loaded.reads)} loaded,"
        f" {len(loaded.failed)} failed; static: {len(static)} read;"
        f" same weights {same_weights}, same variables {same_variables}"
    )
    for path, why in loaded.failed.items():
        print(f"  not loaded: {path.relative_to(extension)}: {why[:120]}")


if __name__ == "__main__":
    main()

"""Checkpoint download speed: `inv fetch-checkpoints` against `curl -o` of the same file from
the same loopback server, and the time of a no-op re-run.

Goal (issue 11): throughput >= 0.9x curl; a no-op re-run makes no request and costs about
what start-up costs.

Serves one file of --size MiB (random bytes; its name carries its sha256 prefix) from the
threaded loopback server of the tests (tests/lib/httpserve.py), in a workspace whose sub-project
lists it in a model index of the real format. Alternating, --repeat times: `curl -s -o`, and
`inv fetch-checkpoints` after removing the file and its record. Throughput counts the time
the download itself takes: the command's time less that of a no-op run (start-up, reading
the index, the record), which is printed too.

    python bench/checkpoint_bench.py [--size 1024] [--repeat 5] [--keep]

Uses only the command line (`inv ...`, `curl`), never the package's internals.
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
from tests.lib.ckptfixture import checkpoint, write_index  # noqa: E402
from tests.lib.httpserve import Faults, serving  # noqa: E402


def timed(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--rate", type=float, default=0, help="MiB/s the server sends at (default: unlimited)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ckpt-bench-"))
    try:
        data = os.urandom(options.size << 20)
        item = checkpoint("mmdetection3d", "pointpillars_bench", data)
        root = base / "ws"
        write_index(root / "mmlab_extension" / "mmdetection3d", [item])
        shutil.copy(ROOT / "tasks.py", root / "tasks.py")
        final = root / "mmlab_checkpoints" / "mmdetection3d" / "checkpoints" / item.file_name
        record = final.with_name(f".{final.name}.verified.json")
        inv = [*inv_command(), "fetch-checkpoints", "--model", "pointpillars_bench"]
        with serving() as served:
            served.files[item.path] = data
            if options.rate:
                served.faults[item.path] = Faults(rate=options.rate * (1 << 20))
            (root / ".env").write_text(f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n")
            curl_out = base / "curl.out"
            curl = ["curl", "-s", "-f", "-o", str(curl_out), served.url + item.path]
            subprocess.run(inv, cwd=root, check=True, stdout=subprocess.DEVNULL)  # warm up
            curls, hashed, fetches, noops = [], [], [], []
            for _ in range(options.repeat):
                curl_out.unlink(missing_ok=True)
                curls.append(timed(curl, base))
                hashed.append(curls[-1] + timed(["sha256sum", str(curl_out)], base))
                final.unlink()
                record.unlink()
                fetches.append(timed(inv, root))
                count = len(served.requests)
                noops.append(timed(inv, root))
                assert len(served.requests) == count, "a no-op re-run made a request"
            assert final.read_bytes() == data and curl_out.read_bytes() == data
        mib = options.size
        curl_time, curl_hashed, fetch_time, noop = map(
            statistics.median, (curls, hashed, fetches, noops)
        )
        download = max(fetch_time - noop, 1e-6)
        limit = f", server limited to {options.rate:g} MiB/s" if options.rate else ""
        print(f"file: {mib} MiB, {options.repeat} runs each (medians){limit}")
        print(f"curl -o:             {curl_time:.3f} s  {mib / curl_time:8.1f} MiB/s")
        print(f"curl -o + sha256sum: {curl_hashed:.3f} s  {mib / curl_hashed:8.1f} MiB/s")
        whole = f"{mib / fetch_time:8.1f} MiB/s (whole command)"
        print(f"fetch-checkpoints:   {fetch_time:.3f} s  {whole}")
        print(f"  download part:     {download:.3f} s  {mib / download:8.1f} MiB/s")
        print(f"no-op re-run:        {noop:.3f} s (no request)")
        print(f"ratio to curl: {curl_time / download:.2f} (download part),"
              f" {curl_time / fetch_time:.2f} (whole command); goal >= 0.9")  # fmt: skip
        print(f"ratio to curl + sha256sum: {curl_hashed / download:.2f} (download part)")
    finally:
        if options.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

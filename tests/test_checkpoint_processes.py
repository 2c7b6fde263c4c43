"""fetch-checkpoints as real processes: killed part way (SIGKILL, SIGINT) and finished by the
next run; two runs fetching the same file into the same storage at once; a terminal."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, inv_process, run_in_terminal, scaled
from .lib.ckptfixture import checkpoint, random_bytes, write_index
from .lib.httpserve import Faults, Served, serving

BIG = 8 << 20
RATE = 6 << 20  # bytes per second: a download takes about 1.3 s


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loopback server is reached directly, whatever proxy the machine sets."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _workspace(root: Path, served: Served, storage: Path, item_path: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tasks.py").write_text((REPO_ROOT / "tasks.py").read_text())
    (root / ".env").write_text(
        f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\nMMLAB_CHECKPOINTS_PATH='{storage}'\n"
        "MMLAB_CHECKPOINTS='pointpillars_big'\n"
    )
    return root


def _zoo(
    tmp_path: Path, served: Served, rate: float = RATE, size: int = BIG
) -> tuple[Path, Path, bytes, str]:
    item = checkpoint("mmdetection3d", "pointpillars_big", random_bytes(size))
    write_index(tmp_path / "ws" / "mmlab_extension" / "mmdetection3d", [item])
    served.files[item.path] = item.data
    served.faults[item.path] = Faults(rate=rate)
    storage = tmp_path / "storage"
    root = _workspace(tmp_path / "ws", served, storage, item.path)
    final = storage / "mmdetection3d" / "checkpoints" / item.file_name
    return root, final, item.data, item.path


def _partials(folder: Path) -> list[Path]:
    return [folder / n for n in os.listdir(folder)] if folder.is_dir() else []


def _partial_bytes(folder: Path) -> int:
    """Bytes in the partial files of a download (`.part-…`)."""
    total = 0
    for path in _partials(folder):
        if ".part-" in path.name:
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
    return total


@pytest.mark.slow
def test_killed_downloads_are_finished_by_the_next_run(tmp_path: Path) -> None:
    """SIGKILL and SIGINT at random moments; each leaves at most a partial file (never a
    final one that is not verified), SIGINT exits 130; then one run completes it, verified,
    with no temporary file left, having sent (nearly) only the missing bytes each time."""
    kills = scaled(6, 16)
    landed = 0
    with serving() as served:
        root, final, data, path = _zoo(tmp_path, served, rate=RATE / 4, size=kills * (1 << 20))
        chance = random.Random(11)
        for number in range(kills):
            process = subprocess.Popen(
                ["inv", "fetch-checkpoints"],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            # at a random moment once this run's download is under way (on a loaded machine
            # the start alone can outlast a fixed delay, and a Ctrl-C before the task begins
            # is invoke's: exit 1, nothing started)
            started = _partial_bytes(final.parent)
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline:
                if _partial_bytes(final.parent) > started:
                    break
                time.sleep(0.01)
            time.sleep(chance.uniform(0.0, 0.6))
            before = _partial_bytes(final.parent)
            sig = signal.SIGKILL if number % 2 else signal.SIGINT
            process.send_signal(sig)
            _, err = process.communicate(timeout=30)
            if final.exists():
                assert hashlib.sha256(final.read_bytes()).digest() == hashlib.sha256(data).digest()
                break
            if 0 < before < len(data):
                landed += 1
            if sig is signal.SIGINT:
                assert process.returncode == 130, err
                assert b"error: interrupted" in err and b"Traceback" not in err
        done = inv_process(root, "fetch-checkpoints")
        assert done.code == 0, done.err
        assert final.read_bytes() == data
        assert [p.name for p in _partials(final.parent) if ".part-" in p.name] == []
        ranges = [r.range for r in served.hits(path)]
        assert sum(1 for r in ranges if r) >= min(landed, 2)  # later runs resumed
    print(f"{landed} of {kills} kills landed mid-download")
    assert landed >= min(3, kills // 2), f"only {landed} of {kills} kills landed mid-download"


def test_two_runs_fetch_the_same_file_into_the_same_storage(tmp_path: Path) -> None:
    """Two workspaces (own locks) sharing one storage root fetch the same file at once: both
    succeed, the file is verified, nothing else is left."""
    with serving() as served:
        root, final, data, _ = _zoo(tmp_path, served, rate=RATE)
        other = _workspace(tmp_path / "ws2", served, tmp_path / "storage", "")
        os.symlink(root / "mmlab_extension", other / "mmlab_extension")
        processes = [
            subprocess.Popen(
                ["inv", "fetch-checkpoints"],
                cwd=where,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            for where in (root, other)
        ]
        results = [p.communicate(timeout=60) for p in processes]
        for process, (out, err) in zip(processes, results, strict=True):
            assert process.returncode == 0, (out, err)
        assert final.read_bytes() == data
        names = sorted(p.name for p in _partials(final.parent))
        assert names == sorted([final.name, f".{final.name}.verified.json"])
        assert len(served.requests) == 2  # each fetched its own copy; no corrupt mix


def test_a_terminal_shows_a_bar_per_file(tmp_path: Path) -> None:
    with serving() as served:
        root, final, data, _ = _zoo(tmp_path, served, rate=RATE * 2)
        code, output = run_in_terminal(["inv", "fetch-checkpoints"], root)
        assert code == 0, output
        assert b"%|" in output and b"MiB/s" in output, output  # tqdm's bar, size and speed
        assert b"pointpillars_big" in output and b"total" in output
        assert b"downloaded mmdetection3d:pointpillars_big" in output
        assert final.read_bytes() == data


def test_ctrl_c_during_a_stalled_download_exits_at_once_and_the_next_run_resumes(
    tmp_path: Path,
) -> None:
    """A server that stops sending mid-body: Ctrl-C still ends the run at once (exit 130,
    one error line, one hint line) and the next run resumes from what arrived."""
    with serving() as served:
        root, final, data, path = _zoo(tmp_path, served)
        served.faults[path] = Faults(stall_after=3 << 20)
        process = subprocess.Popen(
            ["inv", "fetch-checkpoints"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sizes = [p.stat().st_size for p in _partials(final.parent) if ".part-" in p.name]
            if sizes and max(sizes) >= 3 << 20:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = process.communicate(timeout=20)
        assert time.monotonic() - started < 5
        assert process.returncode == 130
        assert err.decode().splitlines()[0] == "error: interrupted", err
        served.faults[path] = Faults()
        done = inv_process(root, "fetch-checkpoints")
        assert done.code == 0, done.err
        assert final.read_bytes() == data
        assert served.hits(path)[-1].range == f"bytes={3 << 20}-"

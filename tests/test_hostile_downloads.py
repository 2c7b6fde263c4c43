"""fetch-checkpoints against hostile servers: every answer that makes a download ask again or
start over is a failed try of one bounded budget (backoff, a shown wait, one error naming the
answer); `Retry-After` is capped and said; a wait for an answer is in the heartbeat; a
credential in the mirror's URL is used but never shown or recorded; the bytes counted for a
run are what it received."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints.http import (
    ATTEMPTS,
    REDIRECTS,
    Cancelled,
    DownloadError,
    Job,
    Tries,
)
from mmlab_bootstrap.errors import redacted
from mmlab_bootstrap.output.text import human_size

from .conftest import REPO_ROOT, Run, assert_clean_error, inv, mount
from .lib.ckptfixture import Checkpoint, checkpoint, random_bytes, write_index
from .lib.httpserve import Faults, Served, serving

SIZE = 1 << 20
TOKEN = "s3cr3t-T0KEN"
FAST = {"MMLAB_HTTP_WAIT_MAX": "0.01"}  # every wait between tries: 10 ms


@dataclass
class Zoo:
    root: Path
    served: Served
    item: Checkpoint

    @property
    def final(self) -> Path:
        return (
            self.root
            / "mmlab_checkpoints"
            / "mmdetection3d"
            / "checkpoints"
            / (self.item.file_name)
        )

    def names(self) -> list[str]:
        folder = self.final.parent
        return sorted(os.listdir(folder)) if folder.is_dir() else []

    def plant_partial(self, data: bytes) -> None:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        (self.final.parent / f".{self.item.file_name}.part-0123abcd").write_bytes(data)


@pytest.fixture
def zoo(workspace: Path) -> Iterator[Zoo]:
    item = checkpoint("mmdetection3d", "pointpillars_car", random_bytes(SIZE))
    write_index(workspace / "mmlab_extension" / "mmdetection3d", [item])
    (workspace / ".env").write_text("MMLAB_PROJECTS=mmdetection3d\n")
    with serving(Served(max_requests=300)) as served:
        served.files[item.path] = item.data
        yield Zoo(workspace, served, item)


def _fetch(zoo: Zoo, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    run = inv(
        zoo.root,
        *args,
        "fetch-checkpoints",
        "--model",
        "pointpillars_car",
        env={"MMLAB_CHECKPOINT_MIRROR": zoo.served.url, **FAST, **(env or {})},
    )
    return run.code, run.out, run.err


@dataclass(frozen=True)
class Hostile:
    """One misbehaving server: its faults, what an earlier run left, and what must come of it."""

    faults: Callable[[Checkpoint], Faults]
    error: str | None  # what the one error line names (None: the download succeeds)
    requests: int  # the most requests it may cost
    partial: int = 0  # bytes of an earlier run's partial file (of the right bytes)
    env: tuple[tuple[str, str], ...] = ()


NO_PROGRESS = f"{ATTEMPTS} tries in a row made no progress"

HOSTILE = {
    "206 from elsewhere": Hostile(
        lambda item: Faults(range_from=5),
        f"answered 206 with Content-Range 'bytes 5-{SIZE - 1}/{SIZE}' to a request from byte 0;"
        f" {NO_PROGRESS}",
        ATTEMPTS,
    ),
    "206 from elsewhere, resuming": Hostile(
        lambda item: Faults(range_from=5), "answered 206 with Content-Range", ATTEMPTS, 1000
    ),
    "416 that never fits": Hostile(
        lambda item: Faults(always=416), "answered 416 with Content-Range ''", ATTEMPTS, 1000
    ),
    "200 to a range request, cut short": Hostile(
        lambda item: Faults(ignore_range=True, drop_at=10, drops=10**6),
        f"answered 200 to a request from byte 10: the server ignores Range; {NO_PROGRESS}",
        ATTEMPTS,
        1000,
    ),
    "body cut short": Hostile(
        lambda item: Faults(drop_at=10, drops=10**6),  # 10 bytes a request: no progress
        f"connection lost at {10 * ATTEMPTS} bytes (IncompleteRead(10 bytes read",
        ATTEMPTS,
    ),
    "Content-Length over the body": Hostile(lambda item: Faults(length_delta=1000), None, 2),
    "Content-Length under the body": Hostile(
        lambda item: Faults(length_delta=-1000), "but its name promises", 1
    ),
    "Content-Length that is no number": Hostile(  # read until the timeout; then a 416
        lambda item: Faults(headers={"Content-Length": "\u00b2"}),
        None,
        2,
        env=(("MMLAB_HTTP_TIMEOUT", "0.5"),),
    ),
    "Content-Range with 5000 digits": Hostile(  # starts over, and gets a 200
        lambda item: Faults(headers={"Content-Range": "bytes 1000-" + "9" * 5000 + "/1"}),
        None,
        2,
        1000,
    ),
    "redirect loop": Hostile(
        lambda item: Faults(redirect=item.path),
        f"redirected more than {REDIRECTS} times (last to '/{'mmdetection3d/'}",
        ATTEMPTS * (REDIRECTS + 1),
    ),
    "connection reset": Hostile(
        lambda item: Faults(reset=True), f"reset the connection; {NO_PROGRESS}", ATTEMPTS
    ),
    "503 with Retry-After: 100000": Hostile(
        lambda item: Faults(always=503, retry_after="100000"),
        f"answered 503 Service Unavailable (Retry-After: 100000); {NO_PROGRESS}",
        ATTEMPTS,
    ),
    "429 with a Retry-After date": Hostile(
        lambda item: Faults(always=429, retry_after="Fri, 31 Dec 9999 23:59:59 GMT"),
        "answered 429 Too Many Requests (Retry-After: Fri, 31 Dec 9999 23:59:59 GMT)",
        ATTEMPTS,
    ),
    "500 forever": Hostile(
        lambda item: Faults(always=500), "answered 500 Internal Server Error", ATTEMPTS
    ),
    "a few errors, then the file": Hostile(
        lambda item: Faults(statuses=[503, 502, 500, 429, 504]), None, ATTEMPTS
    ),
    "no answer within the timeout": Hostile(
        lambda item: Faults(hold=threading.Event()),
        f"did not answer within 0.2 s; {NO_PROGRESS}",
        ATTEMPTS,
        env=(("MMLAB_HTTP_TIMEOUT", "0.2"),),
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_server_costs_a_bounded_number_of_requests(zoo: Zoo, name: str) -> None:
    """Each misbehaviour ends, after at most ATTEMPTS tries without progress, in one error
    line naming the server's answer (exit 1, no traceback), or in the verified file; nothing
    is left in storage but the tool's own partial file; every wait is shown."""
    case = HOSTILE[name]
    faults = case.faults(zoo.item)
    zoo.served.faults[zoo.item.path] = faults
    if case.partial:
        zoo.plant_partial(zoo.item.data[: case.partial])
    try:
        code, out, err = _fetch(zoo, env=dict(case.env))
    finally:
        if faults.hold is not None:
            faults.hold.set()
    requests = len(zoo.served.requests)
    assert requests <= case.requests, (requests, out, err)
    if case.error is None:
        assert code == 0, err
        assert zoo.final.read_bytes() == zoo.item.data
        assert zoo.names() == sorted([zoo.item.file_name, f".{zoo.item.file_name}.verified.json"])
        return
    assert_clean_error(Run(code, out, err), case.error)
    assert "mmlab_checkpoints" not in err.splitlines()[0] or "sha256" in err  # names the URL
    partial = re.compile(re.escape(f".{zoo.item.file_name}.part-") + "[0-9a-f]{8}")
    left = zoo.names()
    assert len(left) <= 1 and all(partial.fullmatch(n) for n in left), left
    if requests > 1 and "sha256" not in err:
        waits = [line for line in out.splitlines() if "; waiting " in line]
        assert len(waits) == requests // (REDIRECTS + 1 if "redirect" in name else 1) - 1, out
        assert all(f" for 127.0.0.1:{zoo.served.url.rsplit(':', 1)[1][:-1]} " in w for w in waits)


def test_a_body_that_never_ends_stops_before_the_disk_is_full(zoo: Zoo, mounts: list[Path]) -> None:
    """No length and no end: free space is looked at as it comes, and the download stops
    with room left on the disk (one error naming the server), never filling it."""
    small = zoo.root.parent / "small"
    mount(mounts, small, "size=24m")
    zoo.served.faults[zoo.item.path] = Faults(endless=True)
    code, out, err = _fetch(zoo, env={"MMLAB_CHECKPOINTS_PATH": str(small)})
    assert_clean_error(Run(code, out, err), "gave no length and has sent", "MiB are left free")
    assert shutil.disk_usage(small).free > 1 << 20
    assert len(zoo.served.requests) == 1


def test_retry_after_is_capped_and_said(zoo: Zoo) -> None:
    """`Retry-After: 100000` is waited for at most MMLAB_HTTP_WAIT_MAX seconds, and the line
    says what is awaited and from whom."""
    zoo.served.faults[zoo.item.path] = Faults(statuses=[503, 503], retry_after="100000")
    code, out, err = _fetch(zoo)
    assert code == 0, err
    host = zoo.served.url[len("http://") : -1]
    assert (
        "mmdetection3d:pointpillars_car: answered 503 Service Unavailable (Retry-After: 100000);"
        f" waiting 0.01 s for {host} (Retry-After, capped at 0.01 s) (failed try 1 of"
        f" {ATTEMPTS})" in out
    ), out
    assert [r.status for r in zoo.served.requests] == [503, 503, 200]


class _Waits(threading.Event):
    """A cancel event whose waits are recorded, not slept."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(float(timeout or 0))
        return False


def _tries(cap: float = 60.0) -> tuple[Tries, _Waits, list[str], list[str]]:
    job = Job("p:m", f"https://user:{TOKEN}@mirror.example:8443/x.pth", Path("/nowhere"), None)
    notes: list[str] = []
    awaited: list[str] = []
    cancel = _Waits()
    tries = Tries(job, notes.append, lambda label, what: awaited.append(what), cancel, cap=cap)
    return tries, cancel, notes, awaited


def test_the_waits_between_tries_are_bounded() -> None:
    """With the default cap: backoff 0.5, 1, 2, 4, 8 s; `Retry-After: 100000` 60 s each; all
    the waits of one file at most 600 s, even when every try brings some progress; nothing
    is slept here (the waits are recorded)."""
    tries, cancel, notes, awaited = _tries()
    with pytest.raises(DownloadError, match=NO_PROGRESS):
        for _ in range(ATTEMPTS):
            tries.failed("reset the connection", 0)
    assert cancel.waits == [0.5, 1, 2, 4, 8]
    assert awaited[0] == "waiting 0.5 s for mirror.example:8443 before trying again"
    tries, cancel, notes, awaited = _tries()
    with pytest.raises(DownloadError) as raised:
        for _ in range(ATTEMPTS):
            tries.failed("answered 503 Service Unavailable (Retry-After: 100000)", 0, "100000")
    assert cancel.waits == [60.0] * (ATTEMPTS - 1)
    assert "waiting 60 s for mirror.example:8443 (Retry-After, capped at 60 s)" in notes[0]
    assert "(Retry-After: 100000)" in raised.value.message
    assert TOKEN not in raised.value.message + "".join(notes + awaited)
    tries, cancel, notes, awaited = _tries()
    offset = 0
    with pytest.raises(DownloadError, match="600 s spent waiting between tries"):
        for _ in range(1000):  # progress every time: only the total bounds it
            offset += 1 << 20
            tries.failed("answered 503 Service Unavailable", offset, "60")
    assert sum(cancel.waits) == 600


def test_a_cancel_ends_a_wait() -> None:
    tries, cancel, _, _ = _tries()
    cancel.wait = lambda timeout=None: True  # type: ignore[method-assign]
    with pytest.raises(Cancelled):
        tries.failed("answered 503 Service Unavailable", 0, "100000")


def test_a_request_waiting_for_its_answer_is_in_the_heartbeat(tmp_path: Path) -> None:
    """The server holds its answer back until the heartbeat has named the download waiting
    for it (a real process, its output read as it comes; nothing depends on timing)."""
    item = checkpoint("mmdetection3d", "pointpillars_car", random_bytes(1000))
    root = tmp_path / "ws"
    write_index(root / "mmlab_extension" / "mmdetection3d", [item])
    (root / "tasks.py").write_text((REPO_ROOT / "tasks.py").read_text())
    hold = threading.Event()
    with serving() as served:
        served.files[item.path] = item.data
        served.faults[item.path] = Faults(hold=hold)
        (root / ".env").write_text(f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n")
        env = dict(os.environ, MMLAB_HEARTBEAT="0.1", MMLAB_PROJECTS="mmdetection3d")
        process = subprocess.Popen(
            ["inv", "fetch-checkpoints", "--model", "pointpillars_car"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stdout or ()])
        reader.start()
        wanted = f"mmdetection3d:pointpillars_car waiting for an answer from {served.url[7:-1]}"
        seen = []
        try:
            while True:
                line = lines.get(timeout=60)
                seen.append(line)
                if "… still downloading" in line and wanted in line:
                    break
        finally:
            hold.set()
            process.wait(timeout=60)
            reader.join(60)
        err = process.stderr.read() if process.stderr else ""
        assert process.returncode == 0, (seen, err)
        while not lines.empty():
            seen.append(lines.get())
        assert any("downloaded mmdetection3d:pointpillars_car" in line for line in seen), seen


def test_a_failed_download_leaves_the_heartbeat(tmp_path: Path) -> None:
    """Two downloads: one answered 404 at once, one whose answer is held back. The heartbeat
    that follows names only the one still waiting, never the failed one as "waiting for an
    answer" (its error is reported once the other is done). Nothing depends on timing: the
    held answer is released once such a line was seen (or after HOLD seconds)."""
    gone = checkpoint("mmdetection3d", "pointpillars_gone", random_bytes(1000))
    held = checkpoint("mmdetection3d", "pointpillars_held", random_bytes(1000))
    root = tmp_path / "ws"
    write_index(root / "mmlab_extension" / "mmdetection3d", [gone, held])
    (root / "tasks.py").write_text((REPO_ROOT / "tasks.py").read_text())
    hold = threading.Event()
    with serving() as served:
        served.files[gone.path] = gone.data
        served.files[held.path] = held.data
        served.faults[gone.path] = Faults(always=404)
        served.faults[held.path] = Faults(hold=hold)
        (root / ".env").write_text(f"MMLAB_CHECKPOINT_MIRROR='{served.url}'\n")
        env = dict(os.environ, MMLAB_HEARTBEAT="0.2", MMLAB_PROJECTS="mmdetection3d")
        process = subprocess.Popen(
            ["inv", "fetch-checkpoints", "--model", "pointpillars_gone", "--model",
             "pointpillars_held"],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in process.stdout or ()])
        reader.start()
        beats: list[str] = []
        try:
            while process.poll() is None or not lines.empty():
                try:
                    line = lines.get(timeout=1)
                except queue.Empty:
                    continue
                answered = any(r.path == gone.path and r.status == 404 for r in served.requests)
                if "… still downloading" in line and answered:
                    beats.append(line)
                    if "pointpillars_gone" not in line:
                        break
        finally:
            hold.set()
            process.wait(timeout=60)
            reader.join(60)
        err = process.stderr.read() if process.stderr else ""
    assert process.returncode == 1, err
    assert "answered 404 Not Found" in err, err
    assert beats and "pointpillars_gone" not in beats[-1], beats
    assert "pointpillars_held waiting for an answer" in beats[-1], beats


def test_bytes_this_run_are_what_it_received(zoo: Zoo) -> None:
    """An earlier run's partial file larger than the file (416, start over): the report
    never counts negative bytes; a resumed one counts what this run got."""
    zoo.plant_partial(random_bytes(SIZE * 3))
    code, out, err = _fetch(zoo)
    assert code == 0, err
    assert [r.status for r in zoo.served.requests] == [416, 200]
    assert f"({human_size(SIZE)}, sha256" in out, out  # all of it this run: no "this run" part
    assert not re.search(r"-[\d.]+ \w*B this run", out), out
    zoo.final.unlink()
    zoo.plant_partial(zoo.item.data[:1000])
    code, out, err = _fetch(zoo)
    assert code == 0, err
    assert f"({human_size(SIZE)}, {human_size(SIZE - 1000)} this run," in out, out
    assert not re.search(r"-[\d.]+ \w*B this run", out), out


def test_a_206_for_a_file_shorter_than_the_partial_starts_over(zoo: Zoo) -> None:
    """An earlier run's partial file longer than the file, and a server that answers its
    Range with 206 (not 416) and a total below it: what is held cannot be the file, so the
    run starts over (each such answer a failed try) instead of leaving a partial that every
    run resumes from and fails on; a run against a sane server then finishes."""
    zoo.plant_partial(random_bytes(SIZE * 3))
    zoo.served.faults[zoo.item.path] = Faults(range_from=SIZE * 3)
    code, out, err = _fetch(zoo)
    assert_clean_error(Run(code, out, err), "answered 206 with Content-Range")
    assert "ended the body" not in out + err, out
    assert len(zoo.served.requests) <= ATTEMPTS
    assert all(os.path.getsize(zoo.final.parent / name) < SIZE for name in zoo.names())
    del zoo.served.faults[zoo.item.path]
    code, out, err = _fetch(zoo)
    assert code == 0, err
    assert zoo.final.read_bytes() == zoo.item.data


def test_after_starting_over_progress_counts_from_nothing(zoo: Zoo) -> None:
    """What an earlier run left is longer than the file (416): the download starts over, and
    each dropped connection that brought new bytes since is progress, however many there are
    (counted against the earlier run's length it would fail after ATTEMPTS)."""
    zoo.plant_partial(random_bytes(SIZE * 3))
    drop = SIZE // (ATTEMPTS + 4) + 1
    zoo.served.faults[zoo.item.path] = Faults(drop_at=drop, drops=ATTEMPTS + 4)
    code, out, err = _fetch(zoo)
    assert code == 0, err
    assert zoo.final.read_bytes() == zoo.item.data
    statuses = [r.status for r in zoo.served.requests]
    assert statuses == [416, 200] + [206] * (ATTEMPTS + 3), statuses
    assert "failed try 2 of" not in out, out


def _everything(*roots: Path) -> Iterator[tuple[Path, bytes]]:
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                if not path.is_symlink():
                    yield path, path.read_bytes()


def test_a_credential_in_a_readable_env_is_warned_about(workspace: Path) -> None:
    """`inv env --checkpoint-mirror https://user:token@…` writes the login into `.env`, as
    asked; while others may read that file, a warning says so (without the token) and how to
    close it; at mode 600 nothing is said."""
    url = "https://someone:s3cret-token@mirror.example/openmmlab/"
    run = inv(workspace, "env", "--checkpoint-mirror", url)
    assert run.code == 0, run.err
    env = workspace / ".env"
    os.chmod(env, 0o644)
    again = inv(workspace, "env")
    warned = [line for line in again.err.splitlines() if line.startswith("warning:")]
    assert any("MMLAB_CHECKPOINT_MIRROR" in w and "chmod 600" in w for w in warned), again.err
    assert "s3cret-token" not in again.out + again.err
    os.chmod(env, 0o600)
    quiet = inv(workspace, "env")
    assert "chmod 600" not in quiet.err, quiet.err


def test_a_credential_in_the_mirror_url_is_used_and_never_shown_or_recorded(
    zoo: Zoo,
) -> None:
    """A mirror that wants Basic authentication, its credential in MMLAB_CHECKPOINT_MIRROR:
    the download sends it, and no line (--dry, progress, errors, status, status --json,
    doctor --json, env) and no file the tool writes holds it."""
    zoo.served.auth = f"user:{TOKEN}"
    mirror = zoo.served.url.replace("http://", f"http://user:{TOKEN}@")
    env = {"MMLAB_CHECKPOINT_MIRROR": mirror, "MMLAB_CHECKPOINTS": "pointpillars_car", **FAST}
    outputs = []

    def run(*args: str) -> int:
        done = inv(zoo.root, *args, env=env)
        outputs.append(done.out + done.err)
        return done.code

    assert run("--dry", "fetch-checkpoints") == 0
    assert f"from http://***@{zoo.served.url[7:]}" in outputs[-1], outputs[-1]
    assert run("fetch-checkpoints") == 0, outputs[-1]
    assert zoo.final.read_bytes() == zoo.item.data
    expected = "Basic " + base64.b64encode(f"user:{TOKEN}".encode()).decode()
    assert zoo.served.authorizations[-1] == expected
    record = json.loads((zoo.final.parent / f".{zoo.item.file_name}.verified.json").read_text())
    assert record["url"] == redacted(mirror) + zoo.item.path
    for args in (("status",), ("doctor", "--json"), ("--dry", "env")):
        run(*args)
    status = inv(zoo.root, "status", "--json", env=env)
    outputs.append(status.out + status.err)
    found = json.loads(status.out)
    assert found["variables"]["MMLAB_CHECKPOINT_MIRROR"]["value"] == redacted(mirror)
    assert found["checkpoints"][0]["state"] == "verified"
    # errors: a file the mirror lacks, and a wrong token
    zoo.final.unlink()
    del zoo.served.files[zoo.item.path]
    assert run("fetch-checkpoints") == 1
    assert "answered 404" in outputs[-1] and "http://***@" in outputs[-1]
    zoo.served.files[zoo.item.path] = zoo.item.data
    zoo.served.auth = "user:another"
    assert run("fetch-checkpoints") == 1
    assert "answered 401" in outputs[-1] and "~/.netrc" in outputs[-1]
    for text in outputs:
        assert TOKEN not in text, text
    for path, data in _everything(zoo.root.parent):  # (the mirror is in the environment)
        assert TOKEN.encode() not in data, path


def test_a_record_an_older_run_wrote_with_a_credential_is_rewritten_without(zoo: Zoo) -> None:
    """Records written before credentials were kept out: the next fetch-checkpoints rewrites
    them without (no download, no hashing; --dry says it would)."""
    zoo.final.parent.mkdir(parents=True)
    zoo.final.write_bytes(zoo.item.data)
    found = zoo.final.stat()
    record = zoo.final.parent / f".{zoo.item.file_name}.verified.json"
    url = f"https://user:{TOKEN}@mirror.example/{zoo.item.path}"
    sha256 = hashlib.sha256(zoo.item.data).hexdigest()
    record.write_text(json.dumps({"sha256": sha256, "size": found.st_size,
                                  "mtime_ns": found.st_mtime_ns, "url": url}))  # fmt: skip
    dry = _fetch(zoo, "--dry")
    assert dry[0] == 0 and f"would remove the credential from the record of {zoo.final}" in dry[1]
    assert TOKEN in record.read_text()
    code, out, err = _fetch(zoo)
    assert code == 0, err
    assert f"removed the credential from the record of {zoo.final}" in out
    assert (
        json.loads(record.read_text())["url"]
        == redacted(url)
        == url.replace(f"user:{TOKEN}", "***")
    )
    assert f"up to date: mmdetection3d:pointpillars_car ({zoo.final})" in _fetch(zoo)[1]
    assert not zoo.served.requests
    assert TOKEN not in dry[1] + dry[2] + out + err


def test_netrc_credentials_are_used(zoo: Zoo) -> None:
    """The documented way to keep a credential out of `.env`: ~/.netrc (mode 600)."""
    zoo.served.auth = f"user:{TOKEN}"
    netrc = Path(os.environ["HOME"]) / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login user password {TOKEN}\n")
    netrc.chmod(0o600)
    code, out, err = _fetch(zoo)
    assert code == 0, err
    assert zoo.final.read_bytes() == zoo.item.data
    assert TOKEN not in out + err


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:tok@host/x", "https://***@host/x"),
        ("https://TOKEN@host:8443/", "https://***@host:8443/"),
        ("x http://a@b@host/p?q=1@2 y", "x http://***@host/p?q=1@2 y"),
        ('{"value": "https://u:p%40@h/"}', '{"value": "https://***@h/"}'),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("ssh://git:pw@github.com/o/r.git", "ssh://***@github.com/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("https://host/a@b", "https://host/a@b"),
        ("file:///srv/a@b/", "file:///srv/a@b/"),
        ("mail me: a@b.c", "mail me: a@b.c"),
    ],
)
def test_redacted_hides_every_userinfo(text: str, shown: str) -> None:
    assert redacted(text) == shown

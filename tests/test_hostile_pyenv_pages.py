"""Hostile wheel pages for `inv python-env` (issue 23): what an index or a mirror of
download.openmmlab.com may answer, served on 127.0.0.1, against the page reader. Every read
is bounded in time, bytes and tries (the package's one retry policy, `Tries`): it ends with
the page, with None (no such page), or with one error naming the index's variable; a failed
try is said on a note line before its capped wait."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from mmlab_bootstrap.checkpoints.http import http_session, timeouts
from mmlab_bootstrap.pythonenv import pages as wheelpages
from mmlab_bootstrap.pythonenv.pages import page_reader, page_wheels
from mmlab_bootstrap.pythonenv.plan import PythonEnvError

from .lib.httpserve import Faults, Served, serving
from .lib.wheelfixture import page

PATH = "whl/cu113/torch/"
WHEEL = "torch-1.11.0+cu113-cp38-cp38-linux_x86_64.whl"
LISTING = page("torch", [(WHEEL, WHEEL)] * 40)  # some KB: a drip takes seconds to send it


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A read timeout of 0.3 s (a whole page: one of them here) and waits of 0.01 s."""
    monkeypatch.setenv("MMLAB_HTTP_TIMEOUT", "0.3")
    monkeypatch.setenv("MMLAB_HTTP_WAIT_MAX", "0.01")


@dataclass
class Row:
    """One hostile answer: the faults of the page, what the read gives (the text holds
    `page` when it is the page; an error holds `error`) and how many requests it took."""

    faults: Faults = field(default_factory=Faults)
    body: bytes = LISTING
    error: str | None = None
    requests: int = 1
    notes: int = 0  # failed tries said before their wait
    wheels: int | None = 40  # wheels page_wheels finds in what was read (None: nothing read)
    said: str = ""  # in every note line
    headers: dict[str, str] = field(default_factory=dict)  # Content-Type and the like


ROWS = {
    "the page": Row(),
    "404: no such page, a definite answer": Row(Faults(always=404), wheels=None),
    "410: gone, a definite answer": Row(Faults(always=410), wheels=None),
    "403 at once": Row(Faults(always=403), error="answered 403"),
    "401 at once": Row(Faults(always=401), error="answered 401"),
    "5xx then 200": Row(Faults(statuses=[503, 502, 500]), requests=4, notes=3),
    "5xx forever": Row(Faults(always=503), error="answered 503", requests=6, notes=5),
    "429 with a huge Retry-After, then 200": Row(
        Faults(statuses=[429, 429], retry_after="999999999"),
        requests=3,
        notes=2,
        said="answered 429 Too Many Requests; waiting 0.01 s for 127.0.0.1",
    ),
    "429 with a huge Retry-After forever": Row(
        Faults(always=429, retry_after="999999999"),
        error="answered 429",
        requests=6,
        notes=5,
        said="(Retry-After, capped at 0.01 s)",
    ),
    "429 with a junk Retry-After": Row(
        Faults(statuses=[429], retry_after="soon\x1b[31m"), requests=2, notes=1
    ),
    "slow drip past the page's time": Row(
        Faults(rate=1000), error="of its page in 0.3 s, and not the end", requests=6, notes=5
    ),
    "hang mid-body past the timeout": Row(
        Faults(rate=4000, stall_after=500), error="nothing came for 0.3 s", requests=6, notes=5
    ),
    "an answer held back past the timeout": Row(
        Faults(hold=threading.Event()), error="did not answer within 0.3 s", requests=6, notes=5
    ),
    "a body cut short, then whole": Row(Faults(drop_at=100, drops=1), requests=2, notes=1),
    "a Content-Length that lies": Row(
        Faults(length_delta=100), error="6 tries in a row failed", requests=6, notes=5
    ),
    "reset connections": Row(Faults(reset=True), error="reset the connection", requests=6, notes=5),
    "a redirect loop": Row(
        Faults(redirect=PATH), error="redirected more than 10 times", requests=66, notes=5
    ),
    "huge page over the byte cap": Row(body=LISTING * 40, error="larger than 65536 bytes"),
    "a body that never ends": Row(Faults(endless=True), error="larger than 65536 bytes"),
    "binary junk": Row(body=b"\x89PNG\r\n\x1a\n\x00\x00" * 100, error="not a listing"),
    "text junk: no wheel in it": Row(body=b'{"files": [1, 2]}\n' * 50, wheels=0),
    "a charset nobody knows": Row(headers={"Content-Type": "text/html; charset=x-nonesuch"}),
    "a charset that is not text": Row(headers={"Content-Type": "text/html; charset=base64"}),
}


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with serving() as served:
        yield served


@pytest.fixture
def served(server: Served) -> Iterator[Served]:
    """The module's server, with no file, fault or request of an earlier test."""
    server.files.clear()
    server.faults.clear()
    server.types.clear()
    server.requests.clear()
    yield server
    for faults in server.faults.values():  # (answers held back: let their threads end)
        if faults.hold is not None:
            faults.hold.set()


@pytest.mark.parametrize("name", list(ROWS))
def test_hostile_pages(name: str, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    row = ROWS[name]
    monkeypatch.setattr(wheelpages, "PAGE_LIMIT", 64 << 10)
    monkeypatch.setattr(wheelpages, "PAGE_SECONDS_PER_TIMEOUT", 1)  # a page: 0.3 s
    faults = dataclasses.replace(
        row.faults,
        statuses=list(row.faults.statuses),
        hold=threading.Event() if row.faults.hold is not None else None,
    )  # (each run its own counters)
    served.files[PATH] = row.body
    served.faults[PATH] = faults
    if row.headers:
        served.types[PATH] = row.headers["Content-Type"]
    notes: list[str] = []
    read = page_reader(http_session(1), "MMLAB_TORCH_INDEX", timeouts(), notes.append)
    url = served.url + PATH
    if row.error is not None:
        with pytest.raises(PythonEnvError) as raised:
            read(url)
        assert row.error in raised.value.message, raised.value.message
        assert "MMLAB_TORCH_INDEX" in raised.value.hint
        assert "\x1b" not in raised.value.message + raised.value.hint
        assert len(raised.value.message) < 600
    else:
        text = read(url)
        if row.wheels is None:
            assert text is None
        else:
            assert text is not None
            assert len(page_wheels(text, url)) == row.wheels
    assert len(served.hits(PATH)) == row.requests, [r.status for r in served.requests]
    assert len(notes) == row.notes, notes
    for note in notes:  # each failed try said, with its capped wait and the count
        assert note.startswith("MMLAB_TORCH_INDEX: ") and "waiting 0.01 s for 127.0.0.1" in note
        assert row.said in note and "failed try" in note
        assert "\x1b" not in note


HOSTILE_NAMES = [
    # (href, the file names page_wheels keeps; None: the page is refused)
    (WHEEL, [WHEEL]),
    ("../../../etc/passwd", []),
    ("torch-1.0.0-cp38-cp38-linux_x86_64.whl%2F..%2F..%2Fevil", []),
    ("javascript:alert(1)//torch-1.0.0-cp38-cp38-linux_x86_64.whl", []),
    ("data:text/html,torch-1.0.0-cp38-cp38-linux_x86_64.whl", []),
    ("torch-1.0.0-cp38-cp38-linux_x86_64.whl\x1b[2J", []),
    ("torch-1.0.0\x00-cp38-cp38-linux_x86_64.whl", None),  # (a NUL: no HTML page at all)
    ("torch-" + "9" * 5000 + "-cp38-cp38-linux_x86_64.whl", []),
    ("torch-not.a.version-cp38-cp38-linux_x86_64.whl", []),
    ("https://elsewhere.example/a/torch-2.0.0-cp38-cp38-linux_x86_64.whl", [
        "torch-2.0.0-cp38-cp38-linux_x86_64.whl"
    ]),
    ("torch-1.0.0-cp38-cp38-linux_x86_64.whl?x=../../y#sha256=00", [
        "torch-1.0.0-cp38-cp38-linux_x86_64.whl"
    ]),
    ("torch-1.0.0-cp38-cp38-linux_x86_64.WHL", []),
    ("mmcv_full-1.6.0-cp38-cp38-manylinux1_x86_64.whl", [
        "mmcv_full-1.6.0-cp38-cp38-manylinux1_x86_64.whl"
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("href", "kept"), HOSTILE_NAMES)
def test_links_with_hostile_names(href: str, kept: list[str] | None, served: Served) -> None:
    """A link's file name is all that is used: what is no wheel name (a path, a scheme, an
    escape, an endless version) is left out; a wheel elsewhere is kept by its name."""
    served.files[PATH] = page("torch", [(href, "x")])
    read = page_reader(http_session(1), "MMLAB_TORCH_INDEX", timeouts(), [].append)
    if kept is None:
        with pytest.raises(PythonEnvError, match="not a listing"):
            read(served.url + PATH)
        return
    text = read(served.url + PATH)
    assert text is not None
    found = page_wheels(text, served.url + PATH)
    assert [w.filename for w in found] == kept
    assert all(w.name in ("torch", "mmcv-full") for w in found)

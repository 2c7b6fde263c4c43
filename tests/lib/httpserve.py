"""A threaded HTTP server on loopback that serves files with `Range` support and injects
faults: a connection dropped mid-body, error statuses first (500, 429 with `Retry-After`),
wrong bytes, no `Content-Length`, `Range` ignored (200), 404, a slow body; and hostile answers
(a `Content-Range` that starts elsewhere, a lying `Content-Length`, a redirect loop, a reset
connection, one status forever, an answer held back). It records every request and how many
body bytes it sent, so a test can assert what a resume transferred. It is bounded: past
`max_requests` a request gets its connection closed unanswered, and a held answer waits at
most `HOLD` seconds.

Used by the fetch-checkpoints tests and bench/checkpoint_bench.py; listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Faults:
    """What goes wrong for one path (counters count down per request)."""

    drop_at: int | None = None  # cut the connection after this many body bytes of a request
    drops: int = 0  # ... for this many requests
    statuses: list[int] = field(default_factory=list)  # answer these first, one per request
    retry_after: str | None = None  # the Retry-After header sent with 429 / 503
    ignore_range: bool = False  # always answer 200 with the whole file
    no_length: bool = False  # no Content-Length (the body ends when the connection closes)
    wrong: bytes | None = None  # serve these bytes instead of the file's
    rate: float = 0  # bytes per second (0: as fast as it goes)
    stall_after: int | None = None  # stop sending (keep the connection) after this many bytes
    always: int | None = None  # answer this status to every request (after `statuses`)
    range_from: int | None = None  # answer 206 with a Content-Range from this byte, whatever asked
    length_delta: int = 0  # added to the Content-Length sent (the body stays as it is)
    redirect: str | None = None  # answer 302 to this path (the file's own: a redirect loop)
    reset: bool = False  # reset the connection (TCP RST) instead of answering
    hold: threading.Event | None = None  # answer only once this is set (at most HOLD seconds)
    headers: dict[str, str] = field(default_factory=dict)  # sent instead of the real ones
    endless: bool = False  # no Content-Length, and the file's bytes over and over (HOLD s at most)


HOLD = 30.0


@dataclass
class Request:
    path: str
    range: str | None
    status: int
    sent: int = 0  # body bytes written
    at: float = 0.0


@dataclass
class Served:
    """The server's state: files, faults and the requests it got."""

    files: dict[str, bytes | Path] = field(default_factory=dict)
    faults: dict[str, Faults] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    hosts: list[str] = field(default_factory=list)  # the Host header of each request
    active: int = 0  # bodies being sent now
    peak: int = 0  # the most bodies sent at once
    max_requests: int = 1000  # past this many, a request is closed unanswered
    auth: str | None = None  # "user:password" that Basic authentication must give (else 401)
    authorizations: list[str | None] = field(default_factory=list)  # each request's header
    types: dict[str, str] = field(default_factory=dict)  # a Content-Type for some paths

    def sent(self, path: str) -> int:
        """Body bytes sent for `path` so far (every request)."""
        return sum(r.sent for r in self.requests if r.path == path)

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def do_GET(self, head: bool = False) -> None:
            path = urlsplit(self.path).path.lstrip("/")  # (a proxy gets the whole URL)
            served.hosts.append(self.headers.get("Host", ""))
            faults = served.faults.get(path, Faults())
            self._replaced = faults.headers
            record = Request(path, self.headers.get("Range"), 0, at=time.monotonic())
            with served.lock:
                if len(served.requests) >= served.max_requests:
                    self.close_connection = True
                    return
                served.requests.append(record)
                served.authorizations.append(self.headers.get("Authorization"))
                status = faults.statuses.pop(0) if faults.statuses else faults.always
            if faults.hold is not None:
                faults.hold.wait(HOLD)
            if faults.reset:
                self._reset()
                return
            if served.auth is not None and self.headers.get("Authorization") != (
                "Basic " + base64.b64encode(served.auth.encode()).decode()
            ):
                status = 401
            elif path not in served.files:
                status = 404
            elif faults.redirect is not None and status is None:
                record.status = 302
                self.send_response(302)
                self.send_header("Location", "/" + faults.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if status is not None:
                record.status = status
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
                if status in (429, 503) and faults.retry_after is not None:
                    self.send_header("Retry-After", faults.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            source = served.files[path]
            data = source.read_bytes() if isinstance(source, Path) else source
            if faults.wrong is not None:
                data = faults.wrong
            start, end = 0, len(data)
            wanted = _RANGE.fullmatch(self.headers.get("Range", ""))
            if faults.range_from is not None:
                start = faults.range_from
                record.status = 206
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            elif wanted and not faults.ignore_range:
                start = int(wanted[1])
                end = int(wanted[2]) + 1 if wanted[2] else len(data)
                if start >= len(data):
                    record.status = 416
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                record.status = 206
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            else:
                record.status = 200
                self.send_response(200)
            if path in served.types:
                self.send_header("Content-Type", served.types[path])
            if faults.no_length or faults.endless:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(end - start + faults.length_delta))
                if faults.length_delta:  # the body is not what it says: no next request
                    self.send_header("Connection", "close")
                    self.close_connection = True
            self.end_headers()
            if head:
                return
            with served.lock:
                drop = faults.drop_at if faults.drops > 0 else None
                if drop is not None:
                    faults.drops -= 1
            with served.lock:
                served.active += 1
                served.peak = max(served.peak, served.active)
            try:
                if faults.endless:
                    self._endless(data, record)
                    return
                self._body(memoryview(data)[start:end], record, faults, drop)
            finally:
                with served.lock:
                    served.active -= 1

        def send_header(self, keyword: str, value: str) -> None:
            super().send_header(keyword, getattr(self, "_replaced", {}).get(keyword, value))

        def _endless(self, data: bytes, record: Request) -> None:
            """The bytes over and over, until the client goes away (or HOLD seconds)."""
            ends = time.monotonic() + HOLD
            self.close_connection = True
            try:
                while time.monotonic() < ends:
                    self.wfile.write(data)
                    record.sent += len(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _reset(self) -> None:
            """Close the connection with a TCP RST (SO_LINGER 0): the client's read fails
            with ECONNRESET."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _body(
            self, body: memoryview, record: Request, faults: Faults, drop: int | None
        ) -> None:
            step = 1 << 20 if not faults.rate else max(1, int(faults.rate / 20))
            began = time.monotonic()
            offset = 0
            try:
                while offset < len(body):
                    if drop is not None and offset >= drop:
                        self.close_connection = True
                        return
                    if faults.stall_after is not None and offset >= faults.stall_after:
                        time.sleep(3600)
                    size = step if drop is None else min(step, drop - offset)
                    piece = body[offset : offset + size]
                    self.wfile.write(piece)
                    offset += len(piece)
                    record.sent += len(piece)
                    if faults.rate:
                        ahead = offset / faults.rate - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)
                if drop is not None and offset >= drop:
                    self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-body (as the tests make them do)


@contextmanager
def serving(served: Served | None = None, tls: ssl.SSLContext | None = None) -> Iterator[Served]:
    """Serve `served.files` at `served.url` (http://127.0.0.1:PORT/, or https:// with `tls`)
    for the `with` block."""
    served = served if served is not None else Served()
    server = _Server(("127.0.0.1", 0), _handler(served))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    served.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()

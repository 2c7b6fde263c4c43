"""A threaded HTTP server on loopback that serves files with `Range` support and injects
faults: a connection dropped mid-body, error statuses first (500, 429 with `Retry-After`),
wrong bytes, no `Content-Length`, `Range` ignored (200), 404, a slow body. It records every
request and how many body bytes it sent, so a test can assert what a resume transferred.

Used by the fetch-checkpoints tests and bench/checkpoint_bench.py; listens on 127.0.0.1 only.
"""

from __future__ import annotations

import re
import ssl
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
            record = Request(path, self.headers.get("Range"), 0, at=time.monotonic())
            with served.lock:
                served.requests.append(record)
                status = faults.statuses.pop(0) if faults.statuses else None
            if path not in served.files:
                status = 404
            if status is not None:
                record.status = status
                self.send_response(status)
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
            if wanted and not faults.ignore_range:
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
            if faults.no_length:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(end - start))
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
                self._body(memoryview(data)[start:end], record, faults, drop)
            finally:
                with served.lock:
                    served.active -= 1

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

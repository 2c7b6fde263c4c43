"""Serve a folder of bare repositories over git:// on loopback, through a proxy that acts like
a link to a remote host: each request and each reply waits half the round-trip time, and each
connection's replies are limited to a bandwidth.

Used by the clone benchmark and the network tests; it lives as long as the caller's `with`
block and listens on 127.0.0.1 only. `drop_first` connections are cut at once, as a flaky
network would. A `Traffic` passed in counts the connections and the bytes each way (for the
benchmarks that compare what crossed the network).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# A read that had to wait this long began a new turn of the conversation (a request, or the
# reply to one), which crosses the link once more.
TURN_GAP = 0.003


@dataclass
class Traffic:
    """What crossed the proxy: connections made, bytes to the server and back to the client."""

    connections: int = 0
    sent: int = 0  # client to server
    received: int = 0  # server to client

    def reset(self) -> None:
        self.connections = self.sent = self.received = 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    rate: float,
    delay: float,
    count: Callable[[int], None],
) -> None:
    """Forward one direction: each turn `delay` seconds late, then at most `rate` bytes/s."""
    started, sent = 0.0, 0
    try:
        while True:
            waited = time.monotonic()
            chunk = await reader.read(65536)
            if not chunk:
                break
            if time.monotonic() - waited > TURN_GAP or not started:
                await asyncio.sleep(delay)
                started, sent = time.monotonic(), 0
            writer.write(chunk)
            await writer.drain()
            count(len(chunk))
            sent += len(chunk)
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    finally:
        writer.close()


async def _serve(
    port: int, daemon_port: int, rate: float, latency: float, drops: list[int], traffic: Traffic
) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if drops[0] > 0:
            drops[0] -= 1
            client_w.close()
            return
        traffic.connections += 1
        server_r, server_w = await asyncio.open_connection("127.0.0.1", daemon_port)

        def sent(size: int) -> None:
            traffic.sent += size

        def received(size: int) -> None:
            traffic.received += size

        await asyncio.gather(
            _pipe(client_r, server_w, 0, latency / 2, sent),
            _pipe(server_r, client_w, rate, latency / 2, received),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def _cancel_all() -> None:
    """Stop every connection still open, and let each one close."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def served_over_network(
    base: Path,
    mib_per_second: float = 0,
    latency: float = 0,
    drop_first: int = 0,
    traffic: Traffic | None = None,
) -> Iterator[str]:
    """Yield the git:// URL prefix that reaches `base` through the throttling proxy."""
    daemon_port, port = _free_port(), _free_port()
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            f"--port={daemon_port}",
            f"--base-path={base}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    loop = asyncio.new_event_loop()
    rate = mib_per_second * 1024 * 1024
    counted = traffic if traffic is not None else Traffic()
    proxy = loop.create_task(_serve(port, daemon_port, rate, latency, [drop_first], counted))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", daemon_port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"git://127.0.0.1:{port}/"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(asyncio.gather(proxy, return_exceptions=True))
        loop.close()

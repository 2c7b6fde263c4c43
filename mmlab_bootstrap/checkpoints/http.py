"""HTTP for checkpoint downloads: a requests session that retries what may pass (connection
failures, timeouts, 5xx, 429 after its `Retry-After`) with backoff and never what cannot (404,
403, an untrusted certificate), and the errors a download ends with, each with its hint.
TLS is always verified; requests' proxy and CA-bundle variables (`HTTPS_PROXY`,
`REQUESTS_CA_BUNDLE`, …) are honoured.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.output import human_size

if TYPE_CHECKING:
    from typing_extensions import Self
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

ATTEMPTS = 6  # tries in a row that bring no new byte, before giving up
SPARE = 1 << 20  # free space left over after a download


class DownloadError(BootstrapError):
    """A checkpoint could not be fetched or verified."""


class Cancelled(Exception):
    """Another download of the run failed or the user interrupted: stop at the next chunk."""


@dataclass(frozen=True)
class Job:
    """One file to fetch: where from, where to, and the sha256 prefix its name promises."""

    label: str  # project:name, for messages
    url: str
    final: Path
    prefix: str | None
    accept_mismatch: bool = False


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds; MMLAB_HTTP_TIMEOUT sets the read timeout (default 60)."""
    try:
        read = float(os.environ.get("MMLAB_HTTP_TIMEOUT", "60"))
    except ValueError:
        read = 60.0
    return 15.0, max(0.1, read)


class _Retry(Retry):
    """urllib3's retries, except for a certificate that is not trusted: trying again cannot
    help, so it is an error at once."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, urllib3.exceptions.SSLError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def http_session(jobs: int) -> requests.Session:
    """requests with retries (connection errors, 5xx, 429 honouring Retry-After)."""
    retry = _Retry(
        total=ATTEMPTS,
        connect=ATTEMPTS,
        read=ATTEMPTS,
        status=ATTEMPTS,
        backoff_factor=0.5,
        backoff_max=30,
        status_forcelist=(429, 500, 502, 503, 504),
        respect_retry_after_header=True,
        raise_on_status=False,
        allowed_methods=frozenset({"GET", "HEAD"}),
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=jobs, pool_maxsize=jobs)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["Accept-Encoding"] = "identity"  # the bytes of the file, never re-encoded
    return session


def tls_error(job: Job, error: Exception) -> DownloadError:
    """An untrusted or expired certificate: never ignored, and the hint says what to set."""
    found = re.search(r"\[SSL: [A-Z_]+\] ([^(]+?)\s*(?:\(_ssl|$)", str(error))
    reason = found.group(1) if found else type(error).__name__
    return DownloadError(
        f"{job.label}: the TLS certificate of {shown(job.url)} is not trusted ({reason})",
        "TLS is never turned off: point REQUESTS_CA_BUNDLE at your CA bundle (a company proxy's"
        " CA), or fetch from a mirror you trust: inv env --checkpoint-mirror URL",
    )


def status_error(job: Job, response: requests.Response) -> DownloadError:
    code = response.status_code
    what = f"{job.label}: {shown(job.url)} answered {code} {response.reason or ''}".rstrip()
    if code in (401, 403, 404, 410):
        return DownloadError(
            what,
            "the file is not there: check MMLAB_CHECKPOINT_MIRROR (a mirror may lack it), or"
            " the model's Weights in its metafile (inv fetch-checkpoints --search NAME)",
        )
    return DownloadError(
        what, "the server failed: run the same command again later", rerun_helps=True
    )


def check_space(job: Job, needed: int) -> None:
    free = shutil.disk_usage(job.final.parent).free
    if needed + SPARE > free:
        raise DownloadError(
            f"{job.label}: not enough space for {shown(job.final.name)} in"
            f" {shown(str(job.final.parent))}: {human_size(needed)} needed,"
            f" {human_size(free)} free",
            "make room on that disk, or choose another storage root:"
            " inv env --checkpoints-path /path/to/storage",
        )

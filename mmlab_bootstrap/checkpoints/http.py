"""HTTP for checkpoint downloads: a requests session, the one bounded budget of tries every
download asks again within, and the errors a download ends with, each with its hint.

Every answer that makes a download ask again (a connection failure or reset, a timeout, 5xx
or 429, a body cut short, a `Content-Range` that starts elsewhere, a 416 that does not fit, a
200 to a range request, a redirect loop) is one failed try of `Tries`: it waits (backoff, or
the server's `Retry-After`, each wait capped at MMLAB_HTTP_WAIT_MAX seconds, 60 by default,
and all waits of one file at WAIT_TOTAL of those), says what it waits for, and ATTEMPTS tries
in a row without progress (PROGRESS new bytes) end the download with one error naming the last
answer. urllib3 itself never retries (its `Retry-After` sleeps are neither capped nor shown). 404,
403 and an untrusted certificate are errors at once. TLS is always verified; requests' proxy,
CA-bundle and `~/.netrc` handling (`HTTPS_PROXY`, `REQUESTS_CA_BUNDLE`, …) are honoured.
"""

from __future__ import annotations

import email.utils
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from mmlab_bootstrap.errors import BootstrapError, redacted, shown
from mmlab_bootstrap.output import human_size

ATTEMPTS = 6  # failed tries in a row without progress, before giving up
PROGRESS = 64 << 10  # new bytes a try must bring to count as progress (or end the file)
BACKOFF = 0.5  # seconds before the second try; doubled for each further one
WAIT_MAX = 60.0  # the longest one wait between tries (MMLAB_HTTP_WAIT_MAX)
WAIT_TOTAL = 10  # all waits of one file: at most this many WAIT_MAX
REDIRECTS = 10  # redirects followed for one request
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SPARE = 1 << 20  # free space left over after a download


class DownloadError(BootstrapError):
    """A checkpoint could not be downloaded or verified."""


class Cancelled(Exception):
    """Another download of the run failed or the user interrupted: stop at the next chunk."""


class Again(Exception):
    """The server's answer means: ask again (one failed try); `answer` says what it was."""

    def __init__(self, answer: str, retry_after: str | None = None) -> None:
        super().__init__(answer)
        self.answer = answer
        self.retry_after = retry_after


@dataclass(frozen=True)
class Job:
    """One file to download: where from, where to, and the sha256 prefix its name promises."""

    label: str  # project:name, for messages
    url: str  # may hold a credential (`https://user:token@host/`): never shown as it is
    final: Path
    prefix: str | None
    accept_mismatch: bool = False

    @property
    def shown_url(self) -> str:
        """The URL as messages and records give it (no user name or password)."""
        return redacted(self.url)

    @property
    def host(self) -> str:
        """`host[:port]` of the URL (no credential)."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        host = f"[{host}]" if ":" in host else host  # an IPv6 address
        try:
            port = parts.port
        except ValueError:  # not a number: requests says so when it tries
            port = None
        return f"{host}:{port}" if port else host


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds; MMLAB_HTTP_TIMEOUT sets the read timeout (default 60)."""
    return 15.0, _seconds("MMLAB_HTTP_TIMEOUT", 60.0)


def wait_max() -> float:
    """The longest one wait between tries; MMLAB_HTTP_WAIT_MAX sets it (default 60)."""
    return _seconds("MMLAB_HTTP_WAIT_MAX", WAIT_MAX)


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return min(max(0.01, value), 3600.0) if value == value else default  # (NaN: the default)


def http_session(jobs: int) -> requests.Session:
    """requests with no retries of its own (see `Tries`), at most REDIRECTS redirects."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0, pool_connections=jobs, pool_maxsize=jobs)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.max_redirects = REDIRECTS
    session.headers["Accept-Encoding"] = "identity"  # the bytes of the file, never re-encoded
    return session


def _seconds_text(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{round(seconds, 2):g}"


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header's seconds (a number or an HTTP date); None if it says none."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text[:12])
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None


@dataclass
class Tries:
    """The one budget of tries (requests) for one file in one run.

    A try fails when its answer makes the download ask again or start over: ATTEMPTS failed
    tries in a row that bring no PROGRESS new bytes (beyond the furthest this run got) end
    the download with one error naming the last answer; before each other next try it waits,
    saying for what: the backoff (BACKOFF doubled per failure) or the server's `Retry-After`,
    whichever is longer, but never over `wait_max()`, nor past WAIT_TOTAL of those in all.
    """

    job: Job
    note: Callable[[str], None]  # one line, shown
    waiting: Callable[[str, str], None]  # (label, what): what the heartbeat shows as awaited
    cancel: threading.Event
    furthest: int = 0  # the most bytes the file held this run
    failures: int = 0  # failed tries since the last progress
    waited: float = 0.0  # seconds waited in all
    cap: float = field(default_factory=wait_max)
    _restart: str | None = None  # this try started over (a 200 to a range request): why
    _started_over: bool = False

    def asking(self) -> None:
        """A new try (request) begins."""
        self._restart = None

    def starting_over(self) -> None:
        """The file is emptied to start from nothing. The first time in a run, progress
        counts from there (what an earlier run left may just not fit the file served now);
        after that from the furthest this run got, so a server that keeps sending the start
        of the file again never counts as making progress."""
        if not self._started_over:
            self._started_over = True
            self.furthest = 0

    def progressed(self, offset: int) -> None:
        """The file now holds `offset` bytes (resets the count when that is progress)."""
        if offset >= self.furthest + PROGRESS:
            self.failures = 0
        self.furthest = max(self.furthest, offset)

    def restarted(self, answer: str, offset: int) -> None:
        """This try starts the file over with the answer it got (a 200 to a range request):
        it counts as failed, and the download goes on with that answer."""
        self.progressed(offset)
        self.failures += 1
        self._restart = answer
        if self.failures >= ATTEMPTS:
            raise self.error(answer)
        self.note(f"{self.job.label}: {answer}; starting over")

    def failed(self, answer: str, offset: int, retry_after: str | None = None) -> None:
        """This try failed (`answer`: what the server did): wait before the next, or raise."""
        self.progressed(offset)
        if self._restart is not None:  # counted already; say both
            answer = f"{self._restart}, then {answer}"
        else:
            self.failures += 1
        self._restart = None
        if self.failures >= ATTEMPTS:
            raise self.error(answer)
        delay = min(self.cap, BACKOFF * 2 ** (self.failures - 1))
        asked = retry_after_seconds(retry_after)
        why = "before trying again"
        if asked is not None and asked > delay:
            delay = min(self.cap, asked)
            why = f"(Retry-After, capped at {_seconds_text(self.cap)} s)"
            if asked <= self.cap:
                why = "(Retry-After)"
        if self.waited + delay > WAIT_TOTAL * self.cap:
            raise self.error(answer, f"{_seconds_text(self.waited)} s spent waiting between tries")
        text = f"waiting {_seconds_text(delay)} s for {self.job.host} {why}"
        self.note(f"{self.job.label}: {answer}; {text} (failed try {self.failures} of {ATTEMPTS})")
        self.waiting(self.job.label, text)
        if self.cancel.wait(delay):
            raise Cancelled
        self.waited += delay

    def error(self, answer: str, why: str = "") -> DownloadError:
        why = why or f"{self.failures} tries in a row made no progress"
        return DownloadError(
            f"{self.job.label}: {shown(self.job.shown_url)} {answer}; {why}",
            "the server (or a proxy on the way) did not send the file: check the network and"
            " MMLAB_CHECKPOINT_MIRROR, then run the same command again: it resumes where this"
            " one stopped",
            rerun_helps=True,
        )


def answer_text(response: requests.Response) -> str:
    """A status line as the server gave it (`503 Service Unavailable`), for messages."""
    return f"{response.status_code} {response.reason or ''}".rstrip()


def tls_error(job: Job, error: Exception) -> DownloadError:
    """An untrusted or expired certificate: never ignored, and the hint says what to set."""
    found = re.search(r"\[SSL: [A-Z_]+\] ([^(]+?)\s*(?:\(_ssl|$)", str(error))
    reason = found.group(1) if found else type(error).__name__
    return DownloadError(
        f"{job.label}: the TLS certificate of {shown(job.shown_url)} is not trusted ({reason})",
        "TLS is never turned off: point REQUESTS_CA_BUNDLE at your CA bundle (a company proxy's"
        " CA), or download from a mirror you trust: inv env --checkpoint-mirror URL",
    )


def status_error(job: Job, response: requests.Response) -> DownloadError:
    code = response.status_code
    what = f"{job.label}: {shown(job.shown_url)} answered {answer_text(response)}"
    if code == 407:
        return DownloadError(
            what,
            "the proxy wants credentials: give them in its URL (HTTPS_PROXY="
            "http://USER:PASSWORD@PROXY:PORT) or ask for a proxy that needs none",
        )
    if code == 401:
        return DownloadError(
            what,
            "the server wants credentials: put them in ~/.netrc (machine HOST login USER"
            " password TOKEN), or in the mirror's URL: inv env --checkpoint-mirror"
            " 'https://USER:TOKEN@HOST/PATH/' (see the README's Checkpoints section)",
        )
    if code in (403, 404, 410):
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

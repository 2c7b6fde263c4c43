"""The verified, resumable download of one checkpoint file.

Into a partial file of this run's own (see `ckptstore`), resumed with HTTP `Range` from what an
earlier run left; a server that ignores `Range` (200) starts it over, one that answers 416 has
sent it all. The size is checked against `Content-Length`, the sha256 against the prefix the
file name promises, and only then is it renamed into place and recorded. Connection failures,
timeouts, 5xx and 429 are retried and a body cut short is resumed, all within one bounded
budget of tries (see `httpclient.Tries`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import requests
import urllib3
from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.checkpoints.http import (
    REDIRECTS,
    RETRY_STATUSES,
    SPARE,
    Again,
    Cancelled,
    DownloadError,
    Job,
    Tries,
    answer_text,
    check_space,
    status_error,
    timeouts,
    tls_error,
)
from mmlab_bootstrap.checkpoints.partial import Partial
from mmlab_bootstrap.errors import redacted, shown
from mmlab_bootstrap.fs import fsync_folder, make_folders
from mmlab_bootstrap.output import human_size

CHUNK = 1 << 20
ROOM_EVERY = 8 << 20  # bytes of a body of no given length between looks at the free space
_RANGE = re.compile(r"bytes (?:([0-9]{1,18})-[0-9]{1,18}|\*)/([0-9]{1,18}|\*)")
_LENGTH = re.compile(r"[0-9]{1,18}")


class Progress(Protocol):
    def start(self, label: str, url: str, total: int | None, have: int) -> None: ...
    def advance(self, label: str, count: int) -> None: ...
    def note(self, text: str) -> None: ...
    def waiting(self, label: str, what: str) -> None: ...


@dataclass(frozen=True)
class Downloaded:
    """A file verified and in place."""

    job: Job
    sha256: str
    size: int
    received: int  # bytes this run received (less than size after a resume; more after a restart)
    mismatch: bool  # the sha256 does not match the name, accepted with --accept-mismatch


def download_file(
    session: requests.Session, job: Job, progress: Progress, cancel: threading.Event
) -> Downloaded:
    """Download, verify and put one file in place; DownloadError says why not."""
    make_folders(job.final.parent)
    done = ckptstore.recorded(job.final)
    if done is not None and ckptstore.hash_matches(done.sha256, job.prefix):
        return Downloaded(job, done.sha256, done.size, 0, False)  # another run (workspace) did it
    partial = Partial(job.final)
    try:
        partial.resume()
        total = _download(session, job, partial, progress, cancel)
        return _finish(job, partial, total, received=partial.received)
    finally:
        partial.close()
        with contextlib.suppress(OSError):
            if os.stat(partial.path).st_size == 0:  # nothing worth resuming
                os.unlink(partial.path)


def _download(
    session: requests.Session,
    job: Job,
    partial: Partial,
    progress: Progress,
    cancel: threading.Event,
) -> int | None:
    """Fill the partial file; the total size the server gave (None: it gave none). Every
    answer that makes it ask again is a failed try of one bounded budget (`Tries`)."""
    tries = Tries(job, progress.note, progress.waiting, cancel, furthest=partial.offset)
    while True:
        partial.resume()
        tries.asking()
        have, answered = partial.offset, False
        headers = {"Range": f"bytes={have}-"} if have else {}
        progress.waiting(job.label, f"waiting for an answer from {job.host}")
        try:
            with session.get(job.url, headers=headers, stream=True, timeout=timeouts()) as answer:
                answered = True
                total = _start(job, answer, partial, progress, tries)
                if total is None or partial.offset < total:
                    _receive(job, answer, partial, total, progress, cancel)
            if total is None or partial.offset == total:
                return total
            raise Again(f"ended the body at byte {partial.offset} of {total}")
        except Again as again:
            tries.failed(again.answer, partial.offset, again.retry_after)
        except requests.exceptions.SSLError as error:
            raise tls_error(job, error) from None
        except (InvalidURL, InvalidSchema, MissingSchema) as error:
            raise DownloadError(
                f"{job.label}: {shown(job.shown_url)} cannot be downloaded"
                f" ({type(error).__name__}: {shown(redacted(str(error))[:200])})",
                "check MMLAB_CHECKPOINT_MIRROR and the model's Weights in its metafile"
                " (inv fetch-checkpoints --search NAME)",
            ) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            tries.failed(failure_text(error, answered, partial.offset), partial.offset)


def _receive(
    job: Job,
    answer: requests.Response,
    partial: Partial,
    total: int | None,
    progress: Progress,
    cancel: threading.Event,
) -> None:
    """Write the body as it comes, never past `total` (a longer one is cut: the sha256
    checks what was kept); a body of no given length never fills the disk."""
    room = _Room(job, partial.offset) if total is None else None
    for chunk in _chunks(answer):
        if cancel.is_set():
            raise Cancelled
        if total is not None:
            chunk = chunk[: total - partial.offset]
        elif room is not None:
            room.check(partial.offset)
        partial.write(chunk)
        progress.advance(job.label, len(chunk))
        if partial.offset == total:
            return


class _Room:
    """For a body of no given length: free space looked at every ROOM_EVERY bytes, and the
    download stopped before it could fill the disk (a body that never ends)."""

    def __init__(self, job: Job, offset: int) -> None:
        self.job, self.next = job, offset

    def check(self, offset: int) -> None:
        if offset < self.next:
            return
        self.next = offset + ROOM_EVERY
        free = shutil.disk_usage(self.job.final.parent).free
        if free < SPARE + ROOM_EVERY:
            raise DownloadError(
                f"{self.job.label}: {shown(self.job.shown_url)} gave no length and has sent"
                f" {human_size(offset)} so far; {human_size(free)} are left free in"
                f" {shown(str(self.job.final.parent))}",
                "make room on that disk or choose another storage root (inv env"
                " --checkpoints-path /path/to/storage); a body that never ends is the server's"
                " fault: check MMLAB_CHECKPOINT_MIRROR",
            )


def failure_text(error: BaseException, answered: bool, offset: int) -> str:
    """What went wrong with a request, in words (the server's doing, as far as one can tell)."""
    if isinstance(error, requests.exceptions.TooManyRedirects):
        found = error.response.headers.get("Location") if error.response is not None else None
        last = f" (last to {_header(redacted(found))})" if found else ""
        return f"redirected more than {REDIRECTS} times{last}"
    cause = _cause(error)
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"did not accept a connection within {timeouts()[0]:g} s"
    if isinstance(error, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)):
        if answered:
            return f"connection lost at {offset} bytes (nothing came for {timeouts()[1]:g} s)"
        return f"did not answer within {timeouts()[1]:g} s"
    if isinstance(error, requests.exceptions.ProxyError):
        what = f"could not be reached through the proxy ({type(cause).__name__})"
    elif isinstance(cause, socket.gaierror):
        what = "names a host that does not resolve"
    elif isinstance(cause, ConnectionResetError):
        what = "reset the connection"
    elif isinstance(cause, ConnectionRefusedError):
        what = "refused the connection"
    elif isinstance(cause, urllib3.exceptions.IncompleteRead):  # a body shorter than it said
        what = _header(str(cause))[1:-1]
    else:
        what = f"failed ({type(cause).__name__})"
    return f"connection lost at {offset} bytes ({what})" if answered else what


def _cause(error: BaseException) -> BaseException:
    """The innermost reason of a requests/urllib3 error (a ConnectionResetError, say)."""
    seen: list[BaseException] = []
    while error not in seen and len(seen) < 10:
        seen.append(error)
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in error.args if isinstance(a, BaseException)), None)
        if inner is None:
            inner = error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return error


def _header(value: str) -> str:
    """A header's value from the server, quoted, escaped and cut to a sane length."""
    return shown(value if len(value) <= 100 else value[:100] + "…")


def _chunks(answer: requests.Response) -> Iterator[bytes]:
    """The body as it arrives (up to 1 MiB at a time, never waiting to fill a chunk)."""
    while chunk := answer.raw.read1(CHUNK):
        yield chunk


def _start(
    job: Job, answer: requests.Response, partial: Partial, progress: Progress, tries: Tries
) -> int | None:
    """Look at the answer's status and headers; the total size. An answer that makes the
    download ask again raises `Again` (starting over first where what it holds is suspect)."""
    have, code = partial.offset, answer.status_code
    sent_range = answer.headers.get("Content-Range", "")
    asked = f"to a request from byte {have}"
    if code == 416:  # nothing past what we have: complete, or too long
        found = _RANGE.fullmatch(sent_range)
        if found and found[2] != "*" and int(found[2]) == have:
            return have
        _start_over(partial, tries)
        raise Again(f"answered 416 with Content-Range {_header(sent_range)} {asked}")
    if code in RETRY_STATUSES:
        after = answer.headers.get("Retry-After")
        said = f" (Retry-After: {_header(after)[1:-1]})" if after is not None else ""
        raise Again(f"answered {answer_text(answer)}{said}", after)
    if code not in (200, 206):
        raise status_error(job, answer)
    length = answer.headers.get("Content-Length")
    size = int(length) if length and _LENGTH.fullmatch(length) else None
    if code == 206:
        found = _RANGE.fullmatch(sent_range)
        if not found or found[1] is None or int(found[1]) != have:
            _start_over(partial, tries)  # a range we did not ask for
            raise Again(f"answered 206 with Content-Range {_header(sent_range)} {asked}")
        total = int(found[2]) if found[2] != "*" else None
        if total is not None and total < have:  # what we hold is longer than the file
            _start_over(partial, tries)
            raise Again(f"answered 206 with Content-Range {_header(sent_range)} {asked}")
    else:
        if have:
            tries.restarted(f"answered 200 {asked}: the server ignores Range", have)
            _start_over(partial, tries)
            have = 0
        total = size
    if total is not None:
        check_space(job, total - have)
    progress.start(job.label, job.shown_url, total, have)
    return total


def _start_over(partial: Partial, tries: Tries) -> None:
    partial.restart()
    tries.starting_over()


def _finish(job: Job, partial: Partial, total: int | None, *, received: int) -> Downloaded:
    """Check size and sha256, then rename into place and record it; a file that does not
    match its name is discarded (unless accepted knowingly)."""
    size = partial.offset
    if total is not None and size != total:
        raise DownloadError(
            f"{job.label}: got {size} bytes of {shown(job.shown_url)}, {total} expected",
            "run the same command again: it resumes",
            rerun_helps=True,
        )
    full = partial.sha256()
    mismatch = not ckptstore.hash_matches(full, job.prefix)
    if mismatch and not job.accept_mismatch:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial.path)
        raise DownloadError(
            f"{job.label}: {shown(job.final.name)} has sha256 {full}, but its name promises"
            f" {job.prefix}; the download was discarded",
            "run it again to download it again; if the published file is known not to match"
            " its name: inv fetch-checkpoints --accept-mismatch",
        )
    os.fsync(partial.descriptor)
    try:
        os.rename(partial.path, job.final)  # atomic; another run's identical file may be replaced
    except FileNotFoundError:  # taken over by another run: locks do not hold everywhere
        if not ckptstore.wait_for_other_run(job.final, full, job.shown_url):
            raise DownloadError(
                f"{job.label}: another run took over the download of {shown(job.final.name)}"
                " and stopped",
                "run the same command again: it resumes",
                rerun_helps=True,
            ) from None
        return Downloaded(job, full, size, received, mismatch)
    fsync_folder(job.final.parent)
    ckptstore.write_record(job.final, full, job.shown_url)
    ckptstore.remove_abandoned_partials(job.final)
    return Downloaded(job, full, size, received, mismatch)

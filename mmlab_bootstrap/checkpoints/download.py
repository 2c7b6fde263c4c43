"""The verified, resumable download of one checkpoint file.

Into a partial file of this run's own (see `ckptstore`), resumed with HTTP `Range` from what an
earlier run left; a server that ignores `Range` (200) starts it over, one that answers 416 has
sent it all. The size is checked against `Content-Length`, the sha256 against the prefix the
file name promises, and only then is it renamed into place and recorded. Connection failures,
timeouts, 5xx and 429 are retried (see `httpclient`); a body cut short is resumed.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import requests
import urllib3

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.checkpoints.http import (
    ATTEMPTS,
    Cancelled,
    DownloadError,
    Job,
    check_space,
    status_error,
    timeouts,
    tls_error,
)
from mmlab_bootstrap.checkpoints.partial import Partial
from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import fsync_folder, make_folders

CHUNK = 1 << 20
_RANGE = re.compile(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)")


class Progress(Protocol):
    def start(self, label: str, url: str, total: int | None, have: int) -> None: ...
    def advance(self, label: str, count: int) -> None: ...
    def note(self, text: str) -> None: ...


@dataclass(frozen=True)
class Fetched:
    """A file verified and in place."""

    job: Job
    sha256: str
    size: int
    received: int  # bytes this run transferred (less than size after a resume)
    mismatch: bool  # the sha256 does not match the name, accepted with --accept-mismatch


def fetch(
    session: requests.Session, job: Job, progress: Progress, cancel: threading.Event
) -> Fetched:
    """Download, verify and put one file in place; DownloadError says why not."""
    make_folders(job.final.parent)
    done = ckptstore.recorded(job.final)
    if done is not None and ckptstore.hash_matches(done.sha256, job.prefix):
        return Fetched(job, done.sha256, done.size, 0, False)  # another run (workspace) did it
    partial = Partial(job.final)
    try:
        partial.resume()
        resumed = partial.offset
        total = _download(session, job, partial, progress, cancel)
        return _finish(job, partial, total, received=partial.offset - resumed)
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
    """Fill the partial file; the total size the server gave (None: it gave none)."""
    failures = 0
    while True:
        partial.resume()
        have = partial.offset
        headers = {"Range": f"bytes={have}-"} if have else {}
        before, answered = partial.offset, False
        try:
            with session.get(job.url, headers=headers, stream=True, timeout=timeouts()) as answer:
                answered = True
                total = _start(job, answer, partial, progress)
                if total == -1:
                    continue  # start over (a range that does not fit)
                if total is None or partial.offset < total:
                    for chunk in _chunks(answer):
                        if cancel.is_set():
                            raise Cancelled
                        partial.write(chunk)
                        progress.advance(job.label, len(chunk))
            if total is None or partial.offset == total:
                return total
            raise urllib3.exceptions.ProtocolError("the body ended early")  # (resumed below)
        except requests.exceptions.SSLError as error:
            raise tls_error(job, error) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            if partial.offset > before:
                failures = 0  # it got somewhere: resume from there
            failures += 1
            if failures >= ATTEMPTS or not answered:  # (urllib3 already retried a request)
                raise DownloadError(
                    f"{job.label}: {shown(job.url)} failed {failures} times in a row"
                    f" ({type(error).__name__})",
                    "check the network (or set MMLAB_CHECKPOINT_MIRROR), then run the same"
                    " command again: it resumes where this one stopped",
                    rerun_helps=True,
                ) from None
            progress.note(f"{job.label}: connection lost at {partial.offset} bytes; resuming")
            if cancel.wait(min(0.25 * 2**failures, 10)):
                raise Cancelled from None


def _chunks(answer: requests.Response) -> Iterator[bytes]:
    """The body as it arrives (up to 1 MiB at a time, never waiting to fill a chunk)."""
    while chunk := answer.raw.read1(CHUNK):
        yield chunk


def _start(job: Job, answer: requests.Response, partial: Partial, progress: Progress) -> int | None:
    """Look at the answer's status and headers; the total size (-1: ask again from 0)."""
    have = partial.offset
    if answer.status_code == 416:  # nothing past what we have: complete, or too long
        found = _RANGE.fullmatch(answer.headers.get("Content-Range", ""))
        if found and found[2] != "*" and int(found[2]) == have:
            return have
        partial.restart()
        return -1
    if answer.status_code not in (200, 206):
        raise status_error(job, answer)
    length = answer.headers.get("Content-Length")
    size = int(length) if length and length.isdigit() else None
    if answer.status_code == 206:
        found = _RANGE.fullmatch(answer.headers.get("Content-Range", ""))
        if not found or found[1] is None or int(found[1]) != have:
            partial.restart()  # a range we did not ask for: start over
            return -1
        total = int(found[2]) if found[2] != "*" else None
    else:
        if have:
            progress.note(f"{job.label}: the server ignores Range; starting over")
            partial.restart()
            have = 0
        total = size
    if total is not None:
        check_space(job, total - have)
    progress.start(job.label, job.url, total, have)
    return total


def _finish(job: Job, partial: Partial, total: int | None, *, received: int) -> Fetched:
    """Check size and sha256, then rename into place and record it; a file that does not
    match its name is discarded (unless accepted knowingly)."""
    size = partial.offset
    if total is not None and size != total:
        raise DownloadError(
            f"{job.label}: got {size} bytes of {shown(job.url)}, {total} expected",
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
        if not ckptstore.wait_for_other_run(job.final, full, job.url):
            raise DownloadError(
                f"{job.label}: another run took over the download of {shown(job.final.name)}"
                " and stopped",
                "run the same command again: it resumes",
                rerun_helps=True,
            ) from None
        return Fetched(job, full, size, received, mismatch)
    fsync_folder(job.final.parent)
    ckptstore.write_record(job.final, full, job.url)
    ckptstore.remove_abandoned_partials(job.final)
    return Fetched(job, full, size, received, mismatch)

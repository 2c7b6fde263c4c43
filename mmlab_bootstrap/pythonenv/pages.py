"""Wheel listings read over HTTP: the download.openmmlab.com pages of mmcv's prebuilt wheels
(`<base>/mmcv/dist/<tag>/torch<X.Y>[.0]/index.html`) and PEP 503 project pages such as
PyTorch's (`<base><tag>/torch/`). Every read is bounded in time (the HTTP client's
timeouts, and PAGE_SECONDS_PER_TIMEOUT of them for a whole page), bytes (PAGE_LIMIT) and tries
(the package's one retry policy, `checkpoints.http.Tries`; a failure is an error naming the
index's variable); only the links' file names are used."""

from __future__ import annotations

import codecs
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.proc import run_bounded
from mmlab_bootstrap.pythonenv.plan import PythonEnvError

if TYPE_CHECKING:
    import requests

PAGE_LIMIT = 32 << 20  # bytes of one listing (PyTorch's torch page is a few MB)
LINKS_LIMIT = 200_000
PAGE_SECONDS_PER_TIMEOUT = 5  # a page must arrive within this many read timeouts
PROBE_TIMEOUT = 30
PROBE_LIMIT = 4096


@dataclass(frozen=True)
class Wheel:
    """One wheel a page links to."""

    name: str  # canonical distribution name
    version: Version
    filename: str
    url: str
    tags: frozenset[Tag]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and len(self.hrefs) < LINKS_LIMIT:
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def page_wheels(html: str, page_url: str) -> list[Wheel]:
    """The wheels a listing links to (links that are no wheel name are left out)."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    wheels = []
    for href in parser.hrefs:
        url = urljoin(page_url, href)
        if urlsplit(url).scheme not in ("http", "https"):
            continue  # (a javascript: or data: link is nothing to download)
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if not filename.endswith(".whl") or "/" in filename:
            continue
        try:
            name, version, _build, tags = parse_wheel_filename(filename)
        except (InvalidWheelFilename, ValueError):
            continue
        wheels.append(Wheel(canonicalize_name(name), version, filename, url, frozenset(tags)))
    return wheels


@dataclass(frozen=True)
class Interpreter:
    """The base interpreter a venv is made from: what wheels it can install."""

    path: str
    major: int
    minor: int
    machine: str  # e.g. x86_64
    system: str  # e.g. linux

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def tag(self) -> str:
        return f"cp{self.major}{self.minor}"

    def installs(self, wheel: Wheel) -> bool:
        """Whether some tag of the wheel fits this CPython and platform."""
        return any(self._fits(tag) for tag in wheel.tags)

    def _fits(self, tag: Tag) -> bool:
        interpreters = {self.tag, f"py{self.major}", f"py{self.major}{self.minor}"}
        if tag.interpreter not in interpreters and not (
            tag.abi == "abi3" and re.fullmatch(r"cp3\d+", tag.interpreter)
            and int(tag.interpreter[3:]) <= self.minor
        ):  # fmt: skip
            return False
        if tag.abi not in (self.tag, "abi3", "none"):
            return False
        if tag.platform == "any":
            return True
        return tag.platform.startswith(
            (self.system, f"many{self.system}", f"musl{self.system}")
        ) and tag.platform.endswith(f"_{self.machine}")


PROBE = (
    "import json, platform, sys; print(json.dumps({'version': list(sys.version_info[:2]),"
    " 'implementation': sys.implementation.name, 'machine': platform.machine(),"
    " 'system': sys.platform}))"
)


def probe_interpreter(path: str, variable: str) -> Interpreter:
    """Ask the base interpreter what it is (bounded in time and output)."""
    hint = f"set {variable} to a CPython 3.8+ interpreter, e.g. inv python-env --python python3.10"
    try:
        done = run_bounded(
            [path, "-I", "-B", "-c", PROBE],
            seconds=PROBE_TIMEOUT,
            max_bytes=PROBE_LIMIT,
            cwd=os.path.abspath(os.sep),
        )
    except OSError as error:
        raise PythonEnvError(f"{variable} {shown(path)} could not be run: {error}", hint) from None
    if done.code is None:
        raise PythonEnvError(f"{variable} {shown(path)} was stopped: {done.stopped}", hint)
    try:
        found = json.loads(done.out.decode("utf-8", "replace"))
        major, minor = (int(part) for part in found["version"])
        machine, system = str(found["machine"]), str(found["system"])
        cpython = found["implementation"] == "cpython"
    except (ValueError, KeyError, TypeError):
        raise PythonEnvError(
            f"{variable} {shown(path)} is not a Python interpreter", hint
        ) from None
    if not cpython or (major, minor) < (3, 8):
        raise PythonEnvError(f"{variable} {shown(path)} is Python {major}.{minor}", hint)
    if not re.fullmatch(r"[A-Za-z0-9_]+", machine) or not re.fullmatch(r"[a-z0-9]+", system):
        raise PythonEnvError(f"{variable} {shown(path)} names an unknown platform", hint)
    return Interpreter(path, major, minor, machine, system)


Reader = Callable[[str], "str | None"]


def page_reader(
    http: requests.Session,
    variable: str,
    timeout: tuple[float, float],
    note: Callable[[str], None],
) -> Reader:
    """A reader of listings: the page's text; None when the server has no such page (404,
    410: a definite answer, never asked again); a PythonEnvError naming `variable` when the
    index cannot be read.

    Each page is read under the package's one retry policy (`checkpoints.http.Tries`, as a
    checkpoint download is): a connection refused, reset or timed out, a 5xx or 429, a
    redirect loop or a page not sent within PAGE_SECONDS_PER_TIMEOUT read timeouts is a
    failed try, and the next waits the backoff or the server's Retry-After, capped at
    MMLAB_HTTP_WAIT_MAX, said on a `note` line; six failed tries end with one error. Any
    other status, a page over PAGE_LIMIT bytes, and binary junk are errors at once."""
    # startup: the HTTP client and its retry policy only when an index page is read
    import requests
    import urllib3
    from requests.exceptions import InvalidSchema, InvalidURL, MissingSchema, SSLError

    # startup: (as above)
    from mmlab_bootstrap.checkpoints import Again, DownloadError, Job, Tries, failure_text

    hint = f"set {variable} to a mirror that is reachable from here (inv env)"

    def read(url: str) -> str | None:
        # (the Job's file is never written: Tries uses its label, URL and host)
        tries = Tries(Job(variable, url, Path(os.devnull), None), note, _unseen, Event())
        while True:
            tries.asking()
            answered = False
            try:
                with http.get(url, stream=True, timeout=timeout) as answer:
                    answered = True
                    return _listing(answer, url, hint, timeout[1])
            except Again as again:
                failed(tries, again.answer, again.retry_after)
            except SSLError:
                raise PythonEnvError(
                    f"the TLS certificate of {shown(url)} is not trusted",
                    "TLS is never turned off: point REQUESTS_CA_BUNDLE at your CA bundle,"
                    f" or {hint}",
                ) from None
            except (InvalidURL, InvalidSchema, MissingSchema) as error:
                raise PythonEnvError(
                    f"{shown(url)} cannot be read ({type(error).__name__})", hint
                ) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
                failed(tries, failure_text(error, answered, 0))

    def failed(tries: Tries, answer: str, retry_after: str | None = None) -> None:
        try:
            tries.failed(answer, 0, retry_after)
        except DownloadError as error:
            raise PythonEnvError(
                error.message.replace("made no progress", "failed"), hint, rerun_helps=True
            ) from None

    return read


def _unseen(_label: str, _what: str) -> None:
    """(a page read has no heartbeat line: each wait is said on a note line)"""


def _listing(answer: requests.Response, url: str, hint: str, read_timeout: float) -> str | None:
    """One answer's page, bounded in bytes and time; `Again` when the answer means: ask again."""
    # startup: (see page_reader)
    from mmlab_bootstrap.checkpoints import Again, answer_text

    if answer.status_code in (404, 410):
        return None
    if answer.status_code == 429 or answer.status_code >= 500:
        raise Again(f"answered {answer_text(answer)}", answer.headers.get("Retry-After"))
    if answer.status_code != 200:
        raise PythonEnvError(f"{shown(url)} answered {answer_text(answer)}", hint)
    seconds = PAGE_SECONDS_PER_TIMEOUT * read_timeout
    ends = time.monotonic() + seconds
    body = bytearray()
    while chunk := answer.raw.read1(1 << 16):
        body += chunk
        if len(body) > PAGE_LIMIT:
            raise PythonEnvError(
                f"{shown(url)} is larger than {PAGE_LIMIT} bytes; not a listing", hint
            )
        if time.monotonic() > ends:
            raise Again(f"sent {len(body)} bytes of its page in {seconds:g} s, and not the end")
    if b"\0" in body:
        raise PythonEnvError(f"{shown(url)} is not a listing (binary data, not HTML)", hint)
    return body.decode(_codec(answer.encoding), "replace")


def _codec(name: str | None) -> str:
    """The page's charset when Python knows it, else UTF-8 (a server may name anything)."""
    if not name:
        return "utf-8"
    try:
        b"a".decode(name, "replace")  # (a codec that is no text encoding, base64, is refused)
    except (LookupError, ValueError, TypeError):
        return "utf-8"
    return codecs.lookup(name).name

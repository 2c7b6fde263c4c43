"""Wheel listings read over HTTP: the download.openmmlab.com pages of mmcv's prebuilt wheels
(`<base>/mmcv/dist/<tag>/torch<X.Y>[.0]/index.html`) and PEP 503 project pages such as
PyTorch's (`<base><tag>/torch/`). Every read is bounded in time (httpclient's timeouts), bytes
(PAGE_LIMIT) and tries (one a page: a failure is an error naming the index's variable);
only the links' file names are used."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

import requests
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.proc import run_bounded
from mmlab_bootstrap.pythonenv.plan import PythonEnvError

PAGE_LIMIT = 32 << 20  # bytes of one listing (PyTorch's torch page is a few MB)
LINKS_LIMIT = 200_000
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
        raise PythonEnvError(
            f"{variable} {shown(path)} did not answer within {PROBE_TIMEOUT} s", hint
        )
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


def page_reader(http: requests.Session, variable: str, timeout: tuple[float, float]) -> Reader:
    """A reader of listings: the page's text; None when the server has no such page (404,
    410); an PythonEnvError naming `variable` when the index cannot be reached."""

    def read(url: str) -> str | None:
        hint = f"set {variable} to a mirror that is reachable from here (inv env)"
        try:
            with http.get(url, stream=True, timeout=timeout) as answer:
                if answer.status_code in (404, 410):
                    return None
                if answer.status_code != 200:
                    raise PythonEnvError(
                        f"{shown(url)} answered {answer.status_code} {answer.reason or ''}"
                        .rstrip(),
                        hint,
                        rerun_helps=answer.status_code >= 500,
                    )  # fmt: skip
                body = bytearray()
                for chunk in answer.iter_content(1 << 16):
                    body += chunk
                    if len(body) > PAGE_LIMIT:
                        raise PythonEnvError(
                            f"{shown(url)} is larger than {PAGE_LIMIT} bytes; not a listing",
                            hint,
                        )
                return body.decode(answer.encoding or "utf-8", "replace")
        except requests.RequestException as error:
            reason = type(error).__name__
            raise PythonEnvError(f"{shown(url)} cannot be read ({reason})", hint) from None

    return read

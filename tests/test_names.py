"""File names as the OS and git give them: bytes that need not be UTF-8, and any character.

A sub-project tracking a name that is not UTF-8, a clash on such a name, and a user file
whose name holds a newline are linked, shown and unlinked through the real `inv` in a UTF-8
locale: no traceback, one line per file, every odd byte or control character shown escaped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .conftest import Cloned, git_status

PROJECT = "mmdetection3d"
ODD = os.fsdecode(b"data/caf\xe9-\xff.txt")  # latin-1 bytes: not UTF-8
ODD_SHOWN = "data/caf\\xe9-\\xff.txt"
EVIL = "data/evil\nrefused FAKE"


@dataclass
class Run:
    code: int
    out: bytes
    err: bytes

    @property
    def lines(self) -> list[str]:
        """Each line of stdout; decoding fails the test if the output is not UTF-8."""
        return self.out.decode("utf-8").split("\n")[:-1]


def inv_utf8(workspace: Path, *args: str) -> Run:
    """The real `inv` in a UTF-8 locale whose output is strict UTF-8, as in en_US.UTF-8
    (Python relaxes C.UTF-8's to surrogateescape, which would let raw bytes through)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUTF8"}
    env |= {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"}
    inv = shutil.which("inv", path=env["PATH"]) or "inv"
    done = subprocess.run(
        [inv, *args],
        cwd=workspace,
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert b"Traceback" not in done.stdout + done.stderr, done.stderr.decode(errors="replace")
    done.stderr.decode("utf-8")  # printable in the locale
    return Run(done.returncode, done.stdout, done.stderr)


def commit_file(project: Path, relative: str, data: bytes) -> None:
    """Track one more file in a sub-project (names passed to git as the OS's bytes)."""
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    subprocess.run(["git", "-C", str(project), "add", "--", relative], check=True)
    subprocess.run(["git", "-C", str(project), "commit", "-q", "-m", "odd name"], check=True)


def test_a_tracked_name_that_is_not_utf8_links_shows_and_unlinks(cloned: Cloned) -> None:
    """link-data adopts it with the others, status is healthy, and when the file is gone
    status names it escaped on one line; unlink puts it back byte for byte."""
    project = cloned.ext / PROJECT
    commit_file(project, ODD, b"odd\n")
    run = inv_utf8(cloned.root, "link-data")
    assert run.code == 0, run.err
    assert any(line.startswith("adopted 4 tracked files into") for line in run.lines)
    assert (project / ODD).read_bytes() == b"odd\n"  # through the link
    stored = cloned.data / PROJECT / ODD
    assert stored.read_bytes() == b"odd\n" and not stored.is_symlink()
    assert git_status(project) == ""
    status = inv_utf8(cloned.root, "status", "--json")
    found = json.loads(status.out)
    assert not [p for p in found["problems"] if str(project / "data") in p]
    stored.unlink()
    status = inv_utf8(cloned.root, "status")
    named = [line for line in status.lines if ODD_SHOWN in line]
    assert len(named) == 1 and "not reachable" in named[0], status.out
    stored.write_bytes(b"odd\n")
    undone = inv_utf8(cloned.root, "unlink", "--data")
    assert undone.code == 0, undone.err
    assert (project / ODD).read_bytes() == b"odd\n" and not (project / "data").is_symlink()
    assert git_status(project) == ""


@pytest.mark.parametrize("tracked", [True, False], ids=["tracked", "yours"])
def test_a_clash_on_a_name_that_is_not_utf8_is_refused_with_it_escaped(
    cloned: Cloned, tracked: bool
) -> None:
    """The target holds other bytes under that name (a tracked file, or a file of yours under
    --adopt): one refused line naming it as `\\xe9`, one error line, nothing changed."""
    project = cloned.ext / (PROJECT if tracked else "mmdetection")
    if tracked:
        commit_file(project, ODD, b"odd\n")
    else:
        (project / ODD).parent.mkdir(parents=True)
        (project / ODD).write_bytes(b"odd\n")
    taken = cloned.data / project.name / ODD
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"other\n")
    run = inv_utf8(cloned.root, "link-data", *(() if tracked else ("--adopt",)))
    assert run.code == 1
    refused = [line for line in run.lines if line.startswith("refused ")]
    assert len(refused) == 1 and ODD_SHOWN in refused[0], run.out
    assert run.err.decode().splitlines()[0].startswith("error: ")
    assert (project / ODD).read_bytes() == b"odd\n" and taken.read_bytes() == b"other\n"


def test_a_name_with_a_newline_prints_on_one_line(cloned: Cloned) -> None:
    """A user file named `evil<newline>refused FAKE` cannot forge a `refused` line."""
    location = cloned.ext / "mmdetection" / EVIL
    location.parent.mkdir(parents=True)
    location.write_bytes(b"mine")
    taken = cloned.data / "mmdetection" / EVIL
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"theirs")
    run = inv_utf8(cloned.root, "link-data", "--adopt")
    assert run.code == 1
    refused = [line for line in run.lines if line.startswith("refused ")]
    assert len(refused) == 1, run.out
    assert "data/evil\\nrefused FAKE" in refused[0]
    assert not any(line.startswith("refused FAKE") for line in run.lines)
    assert location.read_bytes() == b"mine" and taken.read_bytes() == b"theirs"


NAMES = st.one_of(
    st.text(),
    st.binary().map(os.fsdecode),  # what os.listdir gives for any bytes
    st.lists(
        st.sampled_from(["\n", "\r", "\x1b[31m", "\u2028", "\u202e", "\udcff", "a", "\\"])
    ).map("".join),
)


@given(NAMES)
def test_escaped_names_are_one_printable_line(name: str) -> None:
    """Any name, escaped or quoted for a message, is one line without control characters that
    encodes as UTF-8 (a UTF-8 terminal can always print it), every undecodable byte `\\xNN`."""
    from mmlab_bootstrap.errors import escaped, shown

    for text in (escaped(name), shown(name)):
        assert not [c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")]
        assert "\u202e" not in text  # no bidi override reorders the line
        assert len(f"x{text}x".splitlines()) == 1
        text.encode("utf-8")
    surrogates = [c for c in name if 0xDC80 <= ord(c) <= 0xDCFF]
    for char in surrogates:
        assert f"\\x{ord(char) - 0xDC00:02x}" in escaped(name)
        assert f"\\x{ord(char) - 0xDC00:02x}" in shown(name)
    if name.isprintable():
        assert escaped(name) == name


def test_names_git_prints_raw_with_quotepath_off(cloned: Cloned) -> None:
    """`core.quotePath=false` (common where names are not English) makes git print names as
    raw bytes: status and link-data still read them, as bytes."""
    for repo in (cloned.ext, cloned.ext / "mmdetection"):
        subprocess.run(["git", "-C", str(repo), "config", "core.quotePath", "false"], check=True)
    (cloned.ext / os.fsdecode(b"notes-\xe9.txt")).write_bytes(b"mine")
    run = inv_utf8(cloned.root, "link-data")
    assert run.code == 0, run.err
    (cloned.ext / "mmdetection" / os.fsdecode(b"data.bak-\xe9")).mkdir()
    status = inv_utf8(cloned.root, "status", "--json")
    assert json.loads(status.out)["superproject"]["local_changes"] is True

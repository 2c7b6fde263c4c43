"""Run the git CLI: argument lists only, the mirror on every network call, retries, progress."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import BootstrapError, shown
from .fsutil import is_inside
from .report import Reporter

GITHUB = "https://github.com/"
RETRY_DELAYS = (1.0, 3.0)
# Failures that look like the network's: only these are worth another attempt.
_TRANSIENT = re.compile(
    r"hung up unexpectedly|early EOF|Could not resolve host|Failed to connect|Connection"
    r"|timed out|RPC failed|unexpected disconnect|reset by peer|Could not read from remote"
    r"|unable to access|SSL|TLS|gnutls|HTTP/2|HTTP 5\d\d|returned error: 5\d\d"
    r"|index-pack failed|fetch-pack: invalid index-pack output",
    re.IGNORECASE,
)

# ... unless the remote answered that the repository or ref is not there.
_MISSING = re.compile(
    r"does not appear to be a git repository|Repository not found|not found in upstream"
    r"|couldn't find remote ref|not our ref|unadvertised object",
    re.IGNORECASE,
)

_STALE_LOCK = re.compile(
    r"Unable to create '(?P<lock>[^']+\.lock)': File exists"
    r"|could not lock config file (?P<config>.+?): File exists"
)


class GitError(BootstrapError):
    """A git command failed."""


@dataclass(frozen=True)
class Outcome:
    """What a git command printed and how it exited."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def git_message(text: str) -> str:
    """git's own message: its first `fatal:`/`error:` line, else its last line."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return errors[0] if errors else lines[-1] if lines else "(no message)"


class Git:
    """Runs git with the workspace's mirror; describes instead of running under --dry."""

    def __init__(self, report: Reporter, *, dry: bool, mirror: str = "") -> None:
        self.report = report
        self.dry = dry
        self.mirror = mirror
        self.progress = sys.stderr.isatty()
        # Lock files under this folder that a killed git left behind may be removed: only one
        # run of the tool works on a workspace at a time.
        self.stale_locks_under: Path | None = None

    def command(self, args: Sequence[str], cwd: Path | None = None) -> list[str]:
        """The full argument list: `git [-C cwd] [-c url.<mirror>.insteadOf=…] args…`."""
        command = ["git"]
        if cwd is not None:
            command += ["-C", str(cwd)]
        if self.mirror:
            command += ["-c", f"url.{self.mirror}.insteadOf={GITHUB}"]
        return command + list(args)

    def probe(self, args: Sequence[str], cwd: Path | None = None) -> Outcome:
        """Run a read-only, local git command (also under --dry)."""
        done = subprocess.run(
            self.command(args, cwd),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=_quiet_env(),
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    def change(self, args: Sequence[str], cwd: Path | None = None) -> Outcome:
        """Run a local command that changes a repository (described only under --dry)."""
        if self.dry:
            self.report.would(f"run: {shlex.join(self.command(args, cwd))}")
            return Outcome(0, "", "")
        return self._run(args, cwd)

    def network(self, args: Sequence[str], cwd: Path | None = None, *, url: str) -> Outcome:
        """Run a command that talks to a remote, retrying transient failures with backoff.

        Returns the failed outcome after the last attempt, so callers can fall back.
        """
        if self.dry:
            self.report.would(f"run: {shlex.join(self.command(args, cwd))}")
            return Outcome(0, "", "")
        outcome = self._run(args, cwd)
        for delay in RETRY_DELAYS:
            if outcome.ok or not _TRANSIENT.search(outcome.err) or _MISSING.search(outcome.err):
                break
            self.report.warn(
                f"git failed for {url} ({git_message(outcome.err)}); retrying in {delay:g}s"
            )
            time.sleep(delay)
            outcome = self._run(args, cwd)
        return outcome

    def _run(self, args: Sequence[str], cwd: Path | None) -> Outcome:
        outcome = self._spawn(self.command(args, cwd))
        if outcome.code in (-signal.SIGINT, 128 + signal.SIGINT):
            raise KeyboardInterrupt  # git was interrupted with us (Ctrl-C reaches the group)
        stale = self._stale_lock(outcome.err, cwd)
        if stale is not None:
            os.unlink(stale)
            self.report.warn(f"removed a lock left by an interrupted git: {stale}")
            outcome = self._spawn(self.command(args, cwd))
        return outcome

    def _stale_lock(self, message: str, cwd: Path | None) -> Path | None:
        """A lock file git reports as existing, when it lies where stale locks may be removed."""
        found = _STALE_LOCK.search(message)
        if not found or self.stale_locks_under is None:
            return None
        name = found["lock"] or f"{found['config']}.lock"
        lock = Path(cwd or Path.cwd()) / name  # git names it relative to where it ran
        if os.path.lexists(lock) and is_inside(lock, self.stale_locks_under):
            return lock
        return None

    def _spawn(self, command: list[str]) -> Outcome:
        if not self.progress:
            done = subprocess.run(
                command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=_quiet_env()
            )
            return Outcome(done.returncode, done.stdout, done.stderr)
        # On a terminal, pass git's own progress through while keeping its messages.
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert process.stderr is not None and process.stdout is not None
        captured = bytearray()
        while chunk := os.read(process.stderr.fileno(), 4096):
            captured += chunk
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
        out = process.stdout.read()
        code = process.wait()
        return Outcome(code, out.decode(errors="replace"), captured.decode(errors="replace"))


def _quiet_env() -> dict[str, str]:
    # Never stop to ask for credentials in a non-interactive run: fail with git's message.
    env = dict(os.environ)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    return env


def network_error(outcome: Outcome, url: str, what: str) -> GitError:
    """The error for a failed network command: the URL, git's own message and a hint."""
    return GitError(
        f"{what} failed for {shown(url)}: {git_message(outcome.err)}",
        "check the network and the URL; if GitHub is slow or blocked here, set a mirror:"
        " inv env --mirror 'https://mirror.example.com/github/'",
        rerun_helps=True,
    )

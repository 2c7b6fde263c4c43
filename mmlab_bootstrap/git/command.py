"""Run the git CLI: argument lists only, the mirror on every network call, retries, progress."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import is_inside
from mmlab_bootstrap.git.outcomes import NETWORK, GitError, Outcome, failure_kind, git_message
from mmlab_bootstrap.git.urls import GITHUB
from mmlab_bootstrap.output import Reporter, wants_color
from mmlab_bootstrap.proc import run_bounded

# The oldest git with every option the tool passes: `rev-parse --path-format` and
# `fetch --atomic` came in 2.31 (`fetch --no-write-fetch-head`, `--no-auto-maintenance`: 2.29).
MINIMUM_GIT = (2, 31)
VERSION_TIMEOUT = 10.0  # seconds `git --version` may take
_VERSION_BYTES = 4096
_VERSION = re.compile(r"git version (\d+)\.(\d+)(?:\.(\d+))?", re.ASCII)
RETRY_DELAYS = (1.0, 3.0)
_STALE_LOCK = (
    r"Unable to create '(?P<lock>[^']+\.lock)': File exists"
    r"|could not lock config file (?P<config>.+?): File exists"
)


class Answers:
    """Answers of read-only git commands, remembered until the next change: a step's planning,
    the next step's and the check after all ask the same questions of an unchanged workspace.
    `changes.Changes` forgets them at every change and keeps none while one is being made."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, ...], object] = {}
        self.paused = 0  # changes being made: nothing is remembered

    def get(self, key: tuple[str, ...]) -> object | None:
        return None if self.paused else self._known.get(key)

    def put(self, key: tuple[str, ...], answer: object) -> None:
        if not self.paused:
            self._known[key] = answer

    def forget(self) -> None:
        self._known.clear()


class Git:
    """Runs git with the workspace's mirror. Commands that change something are run only from
    inside a change made through `changes.Changes`, which shows them instead under --dry."""

    def __init__(
        self, report: Reporter, *, mirror: str = "", answers: Answers | None = None
    ) -> None:
        self.report = report
        self.mirror = mirror
        self.answers = answers if answers is not None else Answers()
        self.progress = wants_color(sys.stderr)  # live progress on a terminal that shows it
        # Lock files under this folder that a killed git left behind may be removed: only one
        # run of the tool works on a workspace at a time.
        self.stale_locks_under: Path | None = None
        self.warn: Callable[[str], None] = report.warn  # the progress board prints around it
        self._running: set[subprocess.Popen[bytes]] = set()
        self._guard = threading.Lock()

    def command(
        self, args: Sequence[str], cwd: Path | None = None, *, allow_file: bool = False
    ) -> list[str]:
        """The full argument list: `git [-C cwd] [-c url.<mirror>.insteadOf=…] args…`.

        `allow_file` lets this one command use the file transport for submodules, which stock
        git refuses; callers set it only after checking every URL the command will fetch.
        """
        require_git()
        command = ["git"]
        if cwd is not None:
            command += ["-C", str(cwd)]
        if self.mirror:
            command += ["-c", f"url.{self.mirror}.insteadOf={GITHUB}"]
        if allow_file:
            command += ["-c", "protocol.file.allow=always"]
        return command + list(args)

    def probe(self, args: Sequence[str], cwd: Path | None = None) -> Outcome:
        """Run a read-only, local git command (its answer remembered until the next change)."""
        key = ("probe", str(cwd), *args)
        known = self.answers.get(key)
        if isinstance(known, Outcome):
            return known
        done = read_only_run(self.command(args, cwd))
        outcome = Outcome(  # names that are not UTF-8 stay the OS's bytes
            done.returncode,
            done.stdout.decode(errors="surrogateescape"),
            done.stderr.decode(errors="surrogateescape"),
        )
        self.answers.put(key, outcome)
        return outcome

    def change(self, args: Sequence[str], cwd: Path | None = None) -> Outcome:
        """Run a local command that changes a repository."""
        return self._run(self.command(args, cwd), cwd, None)

    def network(
        self,
        args: Sequence[str],
        cwd: Path | None = None,
        *,
        url: str,
        watch: Callable[[str], None] | None = None,
        allow_file: bool = False,
    ) -> Outcome:
        """Run a command that talks to a remote, retrying transient failures with backoff.

        `watch` gets git's stderr as it comes (its progress). Returns the failed outcome
        after the last attempt, so callers can fall back.
        """
        command = self.command(args, cwd, allow_file=allow_file)
        outcome = self._run(command, cwd, watch)
        for delay in RETRY_DELAYS:
            if outcome.ok or failure_kind(outcome.err) != NETWORK:
                break
            self.warn(f"git failed for {url} ({git_message(outcome.err)}); retrying in {delay:g}s")
            time.sleep(delay)
            outcome = self._run(command, cwd, watch)
        return outcome

    def _run(
        self, command: list[str], cwd: Path | None, watch: Callable[[str], None] | None
    ) -> Outcome:
        outcome = self._spawn(command, watch)
        if outcome.code in (-signal.SIGINT, 128 + signal.SIGINT):
            raise KeyboardInterrupt  # git was interrupted with us (Ctrl-C reaches the group)
        stale = self._stale_lock(outcome.err, cwd)
        if stale is not None:
            os.unlink(stale)
            self.warn(f"removed a lock left by an interrupted git: {stale}")
            outcome = self._spawn(command, watch)
        return outcome

    def _stale_lock(self, message: str, cwd: Path | None) -> Path | None:
        """A lock file git reports as existing, when it lies where stale locks may be removed."""
        found = re.search(_STALE_LOCK, message)
        if not found or self.stale_locks_under is None:
            return None
        name = found["lock"] or f"{found['config']}.lock"
        lock = Path(cwd or Path.cwd()) / name  # git names it relative to where it ran
        if os.path.lexists(lock) and is_inside(lock, self.stale_locks_under):
            return lock
        return None

    def _spawn(self, command: list[str], watch: Callable[[str], None] | None) -> Outcome:
        """Run git, handing its stderr to `watch` as it comes; git's progress is never shown raw."""
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=quiet_env(),
        )
        with self._guard:
            self._running.add(process)
        try:
            assert process.stderr is not None and process.stdout is not None
            captured = bytearray()
            while chunk := os.read(process.stderr.fileno(), 65536):
                captured += chunk
                if watch is not None:
                    watch(chunk.decode(errors="replace"))
            out = process.stdout.read()
            code = process.wait()
        finally:
            with self._guard:
                self._running.discard(process)
            process.stdout.close()  # type: ignore[union-attr]
            process.stderr.close()  # type: ignore[union-attr]
        return Outcome(code, out.decode(errors="replace"), captured.decode(errors="replace"))

    def interrupt(self) -> None:
        """Pass an interrupt on to the git processes this object started and that still run."""
        with self._guard:
            running = list(self._running)
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)


def remove_stale_locks(repo: Path) -> list[Path]:
    """Remove git's `*.lock` files a killed git left in the repository at `repo` (a bare one,
    or a git folder); object files are never touched. Only for a repository whose lease lock
    the caller holds (nothing else writes to it then). Returns what was removed."""
    removed: list[Path] = []
    for folder, dirs, files in os.walk(repo):
        if folder == str(repo):
            dirs[:] = [d for d in dirs if d != "objects"]
        for name in sorted(files):
            if name.endswith(".lock"):
                lock = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                    removed.append(lock)
    return removed


class GitVersionError(GitError):
    """The git on PATH is missing, too old, or does not say its version."""


_known_git: dict[str, tuple[str, str] | None] = {}  # PATH -> its git's problem (None: fine)
_known_guard = threading.Lock()


def require_git() -> None:
    """Stop with one error unless the git on PATH is at least `MINIMUM_GIT`: asked once per
    process (and PATH), before the first git command, so an old git is named as such instead
    of failing later with a misleading message."""
    path = os.environ.get("PATH", os.defpath)
    with _known_guard:
        if path not in _known_git:
            _known_git[path] = git_problem(path)
        problem = _known_git[path]
    if problem is not None:
        raise GitVersionError(*problem)


def git_problem(path: str) -> tuple[str, str] | None:
    """What is wrong with the git found on `path` (error, hint), or None."""
    wanted = ".".join(map(str, MINIMUM_GIT))
    install = f"install git {wanted} or newer, or put one first on PATH"
    git = shutil.which("git", path=path)
    if git is None:
        return f"git was not found on PATH (this tool needs git {wanted} or newer)", install
    said, code = _ask_version(git)
    if said is None:
        return f"git at {shown(git)} gave no answer to --version in {VERSION_TIMEOUT:g} s", install
    first = said.decode(errors="replace").strip().splitlines()[0] if said.strip() else ""
    version = version_of(first)
    if version is None or code != 0:
        what = f"it printed {shown(first[:80])}" if first else "it printed nothing"
        what += f", exit code {code}" if code != 0 else ""
        return f"could not tell the version of git at {shown(git)} ({what})", install
    if version[:2] < MINIMUM_GIT:
        return (
            f"git {'.'.join(map(str, version))} at {shown(git)} is too old: this tool needs"
            f" git {wanted} or newer",
            f"{install} (Ubuntu: ppa:git-core/ppa; Debian: backports)",
        )
    return None


def version_of(line: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) from `git version 2.39.5`, `… 2.30.0.windows.1`, `… 2.39.3 (Apple
    Git-145)` or `… 2.28`; None for anything else."""
    found = _VERSION.match(line)
    if found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups(default="0"))
    return major, minor, patch


def _ask_version(git: str) -> tuple[bytes | None, int]:
    """`git --version`'s first bytes and exit code; None when it takes too long (it runs
    bounded: see `run_bounded`; a flood is no version)."""
    ran = run_bounded(
        [git, "--version"], seconds=VERSION_TIMEOUT, max_bytes=_VERSION_BYTES, env=quiet_env()
    )
    if ran.code is None:
        return (ran.out, -1) if ran.flooded else (None, -1)
    return ran.out, ran.code


def read_only_run(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run a read-only git command to its end, its output captured as bytes."""
    return subprocess.run(
        command, capture_output=True, stdin=subprocess.DEVNULL, env=quiet_env(), check=False
    )


def quiet_env() -> dict[str, str]:
    # Never stop to ask for credentials in a non-interactive run: fail with git's message.
    env = dict(os.environ)
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    env["GIT_OPTIONAL_LOCKS"] = "0"  # `git status` must not rewrite the index (--dry, status)
    return env


# One commit, as a clone gets it: no tags, its pack kept whole (not unpacked into loose
# objects), no FETCH_HEAD, no maintenance run afterwards.
BY_COMMIT = (
    "--depth",
    "1",
    "--no-tags",
    "--keep",
    "--no-write-fetch-head",
    "--no-auto-maintenance",
)

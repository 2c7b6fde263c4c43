"""What a git command's outcome means: success, or a failure of one kind (network, refused by
git's settings, missing repository or ref, local conflict), its message on one line and the
hint for that kind."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import owner_of

# Patterns are kept as text across the package: `re` compiles each on its first use and keeps
# it, where compiling them all at import would slow every start of the tool.
# Failures that look like the network's: only these are worth another attempt (see `git`).
_TRANSIENT = (
    "(?i)"
    r"hung up unexpectedly|early EOF|Could not resolve host|Failed to connect|Connection"
    r"|timed out|RPC failed|unexpected disconnect|reset by peer|Could not read from remote"
    r"|unable to access|SSL|TLS|gnutls|HTTP/2|HTTP 5\d\d|returned error: 5\d\d"
    r"|index-pack failed|fetch-pack: invalid index-pack output"
)

# ... unless the remote answered that the repository or ref is not there.
_MISSING = (
    "(?i)"
    r"does not appear to be a git repository|Repository not found|not found in upstream"
    r"|couldn't find remote ref|not our ref|unadvertised object"
)


class GitError(BootstrapError):
    """A git command failed."""


class Outcome(NamedTuple):
    """What a git command printed and how it exited."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


_NOISE = (
    r"^(?:remote: )?[A-Z][A-Za-z ]*:\s+\d+% \(|^remote: (?:Enumerating|Total|Counting|Compressing)"
    r"|^Cloning into |^From |^ \* |^Submodule '.*' registered for path"
    r"|^Failed to clone '.*'\. Retry"
)


SHOWN_LINES = 6


def git_message(text: str) -> str:
    """git's whole message on one line: from its first `fatal:`/`error:` line on, progress left
    out, lines joined with ' | '; past SHOWN_LINES lines, how many more there are."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    lines = [line for line in lines if not re.search(_NOISE, line)]
    first = next((i for i, x in enumerate(lines) if x.startswith(("fatal:", "error:"))), None)
    if first is not None:
        lines = lines[first:]
    elif lines:
        lines = lines[-1:]
    if not lines:
        return "(no message)"
    shown_lines = lines[:SHOWN_LINES]
    if len(lines) > SHOWN_LINES:
        shown_lines.append(f"… {len(lines) - SHOWN_LINES} more lines")
    return " | ".join(shown_lines)


# The kinds of failure a user must tell apart, each with its own hint.
NETWORK, REFUSED, MISSING, CONFLICT, OTHER = "network", "refused", "missing", "conflict", "other"
# Of the refused ones, a repository of another user's (a team's `file://` mirror): stock git
# refuses it until the user trusts it (safe.directory); git names the path in its message.
_NOT_SAFE = r"detected dubious ownership in repository at '(?P<path>[^'\n]*)'"


_REFUSED = (
    "(?i)"
    r"transport '[^']*' not allowed|protocol '[^']*' is not supported|detected dubious ownership"
    r"|unsafe repository|refusing to (?:fetch|clone)|not a valid submodule"
)


_CONFLICT = (
    "(?i)"
    r"would be overwritten by (?:checkout|merge)|Your local changes to the following files"
    r"|Please (?:commit your changes|move or remove them)|untracked working tree files"
)


def failure_kind(message: str) -> str:
    """Which of the kinds a failed git command's message shows (checked in this order)."""
    for kind, pattern in ((REFUSED, _REFUSED), (CONFLICT, _CONFLICT), (MISSING, _MISSING)):
        if re.search(pattern, message):
            return kind
    return NETWORK if re.search(_TRANSIENT, message) else OTHER


def failure(outcome: Outcome, url: str, what: str, where: Path | None = None) -> GitError:
    """The error for a failed git command: the URL, git's whole message, the kind's own hint."""
    kind = failure_kind(outcome.err)
    if kind == REFUSED and re.search(_NOT_SAFE, outcome.err):
        return _not_safe(outcome, url, what)
    place = f"git -C '{where}' status" if where else "git status"
    hint = {
        NETWORK: "check the network and the URL; if GitHub is slow or blocked here, set a mirror:"
        " inv env --mirror 'https://mirror.example.com/github/'",
        REFUSED: "git's own settings refused it (see git config --show-origin --get-regexp"
        " '^protocol|^safe'); file:// is allowed only under MMLAB_GIT_MIRROR or beside a file://"
        " MMLAB_EXTENSION_REPO: inv env --mirror 'file:///path/to/mirror/'",
        MISSING: f"that repository or ref is not there; check it (git ls-remote {url}):"
        " is the URL or the mirror complete? Then: inv clone",
        CONFLICT: f"files in the way are kept; look ({place}), commit, stash or move them,"
        " then: inv clone",
        OTHER: "fix what git says, then run: inv clone",
    }[kind]
    message = f"{what} failed for {shown(url)}: {git_message(outcome.err)}"
    return GitError(message, hint, rerun_helps=kind == NETWORK)


def _not_safe(outcome: Outcome, url: str, what: str) -> GitError:
    """A repository another user owns, refused by git's safe.directory check: the error names
    that first, whose the repository is, and the exact command git asks for."""
    found = re.search(_NOT_SAFE, outcome.err)
    path = found["path"] if found else ""
    owner = owner_of(Path(path)) if path else None
    whose = f" (owned by {owner})" if owner else ""
    return GitError(
        f"safe.directory: git refuses the repository {shown(path)}{whose}, not owned by you:"
        f" {what} failed for {shown(url)}: {git_message(outcome.err)}",
        f"if you trust it: git config --global --add safe.directory {shown(path)}"
        " (each repository of a team mirror needs its line: see the README's Team mirror),"
        " then: inv clone",
    )


def not_owned(outcome: Outcome, folder: Path) -> GitError | None:
    """The error for a repository of the workspace that git would not even look at because
    another user owns it (safe.directory), or None: without it the repository would seem
    missing ("not cloned", "not a git repository") and the hint would mislead."""
    if not re.search(_NOT_SAFE, outcome.err):
        return None
    owner = owner_of(folder)
    whose = f" (owned by {owner})" if owner else ""
    return GitError(
        f"safe.directory: git refuses to look at the repository {shown(str(folder))}{whose},"
        f" not owned by you: {git_message(outcome.err)}",
        "run the tool as the user who owns this workspace; or, if you trust it: git config"
        f" --global --add safe.directory {shown(str(folder))}, then run the same command again",
    )

"""What fetching submodules shares: the git options of a fetch by commit, and the state of one
pass over the submodules (shared between its worker threads)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmlab_bootstrap.clone.checkouts import CheckoutRecord
from mmlab_bootstrap.git import Outcome, Submodule
from mmlab_bootstrap.output import Board
from mmlab_bootstrap.run import WorkPool

DEEPER = ("--depth", "50")


ROUNDS = 3


DEFAULT_BRANCH = re.compile(r"^ref: refs/heads/(?P<branch>[A-Za-z0-9._/-]+)\tHEAD$", re.MULTILINE)


NESTED_KEYS = r"^submodule\..*\.(path|url|update)$"


# What git (or its remote) says when it will not send a repository at all: no point in trying
# git's own way after the fetch by commit id failed so.
NO_REPOSITORY = re.compile(
    r"does not appear to be a git repository|Repository not found", re.IGNORECASE
)


Result = tuple[Submodule, Outcome, list[tuple[Submodule, bool]]]
Task = Callable[[], Result]  # one item of the pass's work pool


@dataclass
class Pass:
    """What one pass over the submodules shares between its worker threads."""

    root: Path
    record: CheckoutRecord
    roots: list[Path]
    board: Board
    # its `interrupted`: stop now; its `stopping` (an error, or interrupted): start no more
    pool: WorkPool[Task, Result]
    lock: threading.Lock = field(default_factory=threading.Lock)
    modules: dict[Path, Path | None] = field(default_factory=dict)
    ready: int = 0  # submodules seen at their recorded commit, checked out
    unfinished: int = 0  # submodules that are not (their fetch failed, or so far)
    early: dict[Path, Early] = field(default_factory=dict)  # by the submodule's folder


@dataclass
class Early:
    """A nested submodule whose commit is fetched while its parent is being checked out:
    its repository made in `gitdir`, linked to its folder once that is there (`_adopt_early`),
    `origin` at `url`."""

    gitdir: Path
    url: str
    recorded: str
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False

"""The clone planner: look at the extension path and decide what `clone` will do (a fresh
clone, completing one, `--update`, or a refusal). `cloner` carries the plan out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from mmlab_bootstrap.clone.checkouts import SUPERPROJECT, CheckoutRecord
from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import creatable_problem, temporary_beside, typo_problem
from mmlab_bootstrap.git import (
    GITHUB,
    CloneError,
    Git,
    SubmoduleEntry,
    incomplete_submodules,
    look_at,
    mirrored,
    normal_url,
    origin_url,
    submodule_states,
)
from mmlab_bootstrap.gitcache import Borrower, Refill, plan_dissociations, plan_refills
from mmlab_bootstrap.settings import BY_NAME, EXTENSION_PATH, Settings, fix_hint

PARTIAL_TEMPORARY = ".{name}.mmlab-bootstrap-partial"  # a fresh clone (see fs.temporaries)


class ClonePlan(NamedTuple):
    """What `clone` found at the extension path and what it will do about it."""

    path: Path
    fresh: bool
    partial: Path
    incomplete: tuple[SubmoduleEntry, ...]
    resume_update: bool = False  # a killed `--update` of the superproject is to be finished
    update: bool = False
    refills: tuple[Refill, ...] = ()  # commits borrowed from the git cache that it lost
    dissociations: tuple[Borrower, ...] = ()  # borrowers to give their own objects

    @property
    def changes_anything(self) -> bool:
        return (
            self.fresh
            or self.update
            or self.resume_update
            or bool(self.incomplete)
            or bool(self.refills)
            or bool(self.dissociations)
        )


def partial_path(path: Path) -> Path:
    """The temporary folder beside the extension path that a fresh clone is made in."""
    return temporary_beside(path, PARTIAL_TEMPORARY)


def same_repository(origin: str, settings: Settings) -> bool:
    """Whether a clone's origin is MMLAB_EXTENSION_REPO (directly or through the mirror)."""
    wanted = {settings.repo}
    if settings.mirror and settings.repo.startswith(GITHUB):
        wanted.add(mirrored(settings.repo, settings.mirror))
    return normal_url(origin) in {normal_url(url) for url in wanted}


def plan_clone(settings: Settings, git: Git, *, update: bool = False) -> ClonePlan:
    """Look at the extension path and decide: fresh clone, complete, or refuse."""
    path = settings.extension_path
    partial = partial_path(path)
    if not os.path.lexists(path) or (_is_empty_folder(path)):
        problem = typo_problem(path) or creatable_problem(path)
        if problem:
            raise CloneError(
                f"cannot clone into {shown(str(path))}: {problem}",
                fix_hint(
                    BY_NAME[EXTENSION_PATH], settings.values[EXTENSION_PATH].source, "/path/you/own"
                ),
            )
        return ClonePlan(path, True, partial, (), update=update)
    if not path.is_dir():
        raise CloneError(
            f"{EXTENSION_PATH} {shown(str(path))} exists and is not a folder",
            f"move it away (mv '{path}' '{path}.old'),"
            " or choose another path: inv env --extension-path …",
        )
    if not look_at(git, path).toplevel:
        count = sum(1 for _ in path.iterdir())
        raise CloneError(
            f"{shown(str(path))} exists and is not a git repository ({count} entries); left alone",
            "move it away, or point MMLAB_EXTENSION_PATH elsewhere: inv env --extension-path …",
        )
    origin = origin_url(git, path)
    if not same_repository(origin, settings):
        raise CloneError(
            f"{shown(str(path))} is a clone of {shown(origin or '(no origin)')},"
            f" not of {shown(settings.repo)}; left alone",
            "point MMLAB_EXTENSION_PATH elsewhere (inv env --extension-path …)"
            " or MMLAB_EXTENSION_REPO at that repository",
        )
    cache = None
    if settings.git_cache is not None:
        # startup: only the runs that use a cache import it
        from mmlab_bootstrap.gitcache import cache_for

        cache = cache_for(settings.git_cache, git, share=settings.shares_objects)
    refills = tuple(plan_refills(git, path, cache))
    dissociations = tuple(plan_dissociations(path, cache))
    incomplete = incomplete_submodules(git, path, submodule_states(git, path))
    resume = SUPERPROJECT in CheckoutRecord(path).started
    return ClonePlan(
        path, False, partial, tuple(incomplete), resume, update, refills, dissociations
    )


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())

"""Running git and reading its answers: the command with the mirror, retries, stale locks
and remembered read-only answers (`command`), what a failure means and its hint
(`outcomes`), repository queries (`repository`), submodules (`submodules`) and URLs
(`urls`).

Plan/apply: no plan/apply pair: read-only queries and the one runner.
May import: output, fs, errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.git.command import (
        BY_COMMIT,
        Answers,
        Git,
        read_only_run,
        remove_stale_locks,
        require_git,
    )
    from mmlab_bootstrap.git.outcomes import (
        CONFLICT,
        NETWORK,
        REFUSED,
        GitError,
        Outcome,
        failure,
        failure_kind,
        git_message,
    )
    from mmlab_bootstrap.git.repository import (
        look_at,
        may_skip_worktree,
        origin_url,
        sparse_checkout,
        submodule_states,
    )
    from mmlab_bootstrap.git.submodules import (
        CloneError,
        Submodule,
        SubmoduleEntry,
        expand,
        file_path,
        file_roots,
        has_commit,
        has_head,
        has_index,
        incomplete_submodules,
        is_toplevel,
        list_submodules,
        modules_folder,
        needs_file_transport,
        plain_name,
        recorded_commit,
        walk_submodules,
    )
    from mmlab_bootstrap.git.urls import FULL_SHA, GITHUB, mirrored, normal_url

__all__ = [
    "BY_COMMIT",
    "CONFLICT",
    "FULL_SHA",
    "GITHUB",
    "NETWORK",
    "REFUSED",
    "Answers",
    "CloneError",
    "Git",
    "GitError",
    "Outcome",
    "Submodule",
    "SubmoduleEntry",
    "expand",
    "failure",
    "failure_kind",
    "file_path",
    "file_roots",
    "git_message",
    "has_commit",
    "has_head",
    "has_index",
    "incomplete_submodules",
    "is_toplevel",
    "list_submodules",
    "look_at",
    "may_skip_worktree",
    "mirrored",
    "modules_folder",
    "needs_file_transport",
    "normal_url",
    "origin_url",
    "plain_name",
    "read_only_run",
    "recorded_commit",
    "remove_stale_locks",
    "require_git",
    "sparse_checkout",
    "submodule_states",
    "walk_submodules",
]

_WHERE = {
    "Answers": "command",
    "BY_COMMIT": "command",
    "CONFLICT": "outcomes",
    "CloneError": "submodules",
    "FULL_SHA": "urls",
    "GITHUB": "urls",
    "Git": "command",
    "GitError": "outcomes",
    "NETWORK": "outcomes",
    "Outcome": "outcomes",
    "REFUSED": "outcomes",
    "Submodule": "submodules",
    "SubmoduleEntry": "submodules",
    "expand": "submodules",
    "failure": "outcomes",
    "failure_kind": "outcomes",
    "file_path": "submodules",
    "file_roots": "submodules",
    "git_message": "outcomes",
    "has_commit": "submodules",
    "has_head": "submodules",
    "has_index": "submodules",
    "incomplete_submodules": "submodules",
    "is_toplevel": "submodules",
    "list_submodules": "submodules",
    "look_at": "repository",
    "may_skip_worktree": "repository",
    "mirrored": "urls",
    "modules_folder": "submodules",
    "needs_file_transport": "submodules",
    "normal_url": "urls",
    "origin_url": "repository",
    "plain_name": "submodules",
    "read_only_run": "command",
    "recorded_commit": "submodules",
    "remove_stale_locks": "command",
    "require_git": "command",
    "sparse_checkout": "repository",
    "submodule_states": "repository",
    "walk_submodules": "submodules",
}


__getattr__ = lazy_surface(__name__, _WHERE)

"""Repository queries (issue 15's no-op path): one `rev-parse` per repository must tell what
`git submodule status --recursive` tells, and the index shortcut must never hide a
skip-worktree file."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from mmlab_bootstrap.git.command import Git
from mmlab_bootstrap.git.repository import look_at, may_skip_worktree, origin_url, submodule_states
from mmlab_bootstrap.output.report import Reporter

from .lib.gitfixture import git


def probe_git() -> Git:
    return Git(Reporter(io.StringIO(), io.StringIO()))


def git_own_states(root: Path) -> list[tuple[str, str, str]]:
    """`git submodule status --recursive`: (flag, commit, path) per line."""
    out = subprocess.run(
        ["git", "-C", str(root), "submodule", "status", "--recursive"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted((line[0], line[1:41], line[42:].split(" (")[0]) for line in out.splitlines())


def test_submodule_states_match_git_submodule_status(tmp_path: Path, cloned_template: Path) -> None:
    """Complete, moved to another commit, and removed (never cloned): the same flags, commits
    and paths as git's own script, from one rev-parse per repository."""
    root = tmp_path / "ext"
    shutil.copytree(cloned_template / "mmlab_extension", root, symlinks=True)
    ours = [(e.flag, e.sha, e.path) for e in submodule_states(probe_git(), root)]
    assert sorted(ours) == git_own_states(root) and all(flag == " " for flag, _, _ in ours)
    spconv = next(path for _, _, path in ours if path.count("/") > 0)
    git("-C", str(root / spconv), "commit", "-q", "--allow-empty", "-m", "moved")
    git("-C", str(root), "submodule", "deinit", "-q", "--force", "mmdetection")
    ours = [(e.flag, e.sha, e.path) for e in submodule_states(probe_git(), root)]
    assert sorted(ours) == git_own_states(root)
    assert {flag for flag, _, _ in ours} == {" ", "+", "-"}


def test_facts_and_origin(tmp_path: Path, cloned_template: Path) -> None:
    """HEAD, branch, shallow, the exclude file, and the origin URL read from the config file
    (and asked of git when the file holds it in a way not read simply)."""
    root = tmp_path / "ext"
    shutil.copytree(cloned_template / "mmlab_extension", root, symlinks=True)
    facts = look_at(probe_git(), root)
    head = git("-C", str(root), "rev-parse", "HEAD")
    assert (facts.toplevel, facts.head, facts.branch, facts.shallow) == (True, head, "main", True)
    assert facts.exclude == root / ".git" / "info" / "exclude"
    assert not look_at(probe_git(), root / "mmdetection3d" / "configs").toplevel
    wanted = git("-C", str(root), "config", "--get", "remote.origin.url")
    assert origin_url(probe_git(), root) == wanted
    git("-C", str(root), "config", "--add", "remote.origin.url", "https://example.com/x.git")
    assert origin_url(probe_git(), root) == "https://example.com/x.git"  # git's answer: the last


@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_the_index_shortcut_never_hides_a_skip_worktree_file(tmp_path: Path, version: str) -> None:
    """A version 2 index cannot hold skip-worktree marks: only then is the listing skipped.
    git writes version 2 (asked for 2 or 3) until a file is marked, then version 3; a
    version 4 index is always listed."""
    repo = tmp_path / "repo"
    git("init", "-q", str(repo))
    git("-C", str(repo), "config", "index.version", version)
    (repo / "f").write_text("x")
    git("-C", str(repo), "add", "f")
    git("-C", str(repo), "commit", "-q", "-m", "f")
    assert may_skip_worktree(probe_git(), repo) == (version == "4")
    git("-C", str(repo), "update-index", "--skip-worktree", "f")
    assert may_skip_worktree(probe_git(), repo)

"""The one table of bad inputs for the whole tool: each is one `error:` line naming the
problem, one `hint:` line, exit 1, no traceback, and nothing changed.

Run in this process through invoke's own `Program` (`run_inproc`): real argument parsing and
real output, without starting an interpreter per row. `test_run_contract.py` and
`test_cli.py` check the same contract through real processes.
"""

from __future__ import annotations

import os

import pytest

from .conftest import Cloned, assert_clean_error, run_inproc, snapshot


def row(
    task: str,
    *flags: str,
    fragment: str,
    environ: dict[str, str] | None = None,
    dotenv: str | None = None,
    id: str | None = None,  # noqa: A002
) -> object:
    """One bad input: the task and its flags, the process environment, `.env`'s text, and
    a fragment the error line must hold."""
    name = id or " ".join([task, *flags, *(environ or {}), "dotenv" if dotenv else ""]).strip()
    return pytest.param([task, *flags], environ or {}, dotenv, fragment, id=name)


PROJECT = "is not a plain folder name"
URL = "not a URL git accepts"
REF = "not a branch, tag or commit"
BAD_INPUTS = [
    # Project names (MMLAB_PROJECTS), for every task that takes them
    row("env", "--projects", "a/b", fragment=f"MMLAB_PROJECTS (from flag) {PROJECT}"),
    row("env", "--projects", "..", fragment=PROJECT),
    row("env", "--projects", "-rf", fragment=PROJECT),
    row("env", "--projects", ".git", fragment="it starts with '.'"),
    row("layout", "--projects", ".", fragment="MMLAB_PROJECTS (from flag)"),
    row("link-checkpoints", "--projects", "x/y", fragment=PROJECT),
    row("link-checkpoints", "--projects", "..", fragment=PROJECT),
    row("link-checkpoints", "--projects", ".git", fragment="it starts with '.'"),
    row("link-checkpoints", "--projects", "mmdetection ../x", fragment="'../x'"),
    row("link-data", "--projects", "mmdetection nosuch", fragment="'nosuch' has no folder"),
    row("link-checkpoints", "--projects", "mmdetection nosuch", fragment="'nosuch' has no folder"),
    row("unlink", "--projects", "-x", fragment=PROJECT),
    row("bootstrap", "--projects", " ", fragment="names no project"),
    row("bootstrap", "--projects", "mmdetection .git", fragment="it starts with '.'"),
    row(
        "env", fragment="MMLAB_PROJECTS (from environment)", environ={"MMLAB_PROJECTS": "ok ../etc"}
    ),
    # Repository URLs and refs: never an option or a remote helper for git
    row("env", "--repo", "", fragment="MMLAB_EXTENSION_REPO (from flag)"),
    row("env", "--repo", "ext::sh -c touch% SENTINEL", fragment="remote helper"),
    row("env", "--repo", "-uupload-pack=touch SENTINEL", fragment="must not start with '-'"),
    row("env", "--repo", "not a url", fragment=URL),
    row("env", "--repo", "https://", fragment=URL),
    row(
        "env",
        fragment="MMLAB_EXTENSION_REPO (from environment)",
        environ={"MMLAB_EXTENSION_REPO": "ext::x"},
    ),
    row("env", "--mirror", "fd::3", fragment="remote helper"),
    row("env", "--mirror", "mirror.example.com", fragment=URL),
    row(
        "env", fragment="MMLAB_GIT_MIRROR (from .env)", dotenv="MMLAB_GIT_MIRROR=-oProxyCommand=x\n"
    ),
    row("env", "--ref", "-main", fragment=REF),
    row("env", "--ref", "a..b", fragment=REF),
    row("clone", "--ref", "$(touch SENTINEL)", fragment=REF),
    row("clone", "--repo", "", fragment="MMLAB_EXTENSION_REPO (from flag) is empty"),
    row("clone", "--repo", "not a url", fragment=URL),
    row("clone", "--repo", "-uhttps://x", fragment="must not start with '-'"),
    row("clone", "--repo", "ext::sh -c touch% SENTINEL", fragment="remote helper"),
    # Paths: nothing a shell would read differently, no nesting, no typo'd roots
    row("env", "--dataset-path", "/x/o'brien; touch SENTINEL; '", fragment="single quote"),
    row("env", "--dataset-path", "/x/a\nb", fragment="control character"),
    row("env", "--dataset-path", "/x/${HOME}", fragment="'${'"),
    row(
        "env",
        fragment="MMLAB_DATASET_PATH (from environment)",
        environ={"MMLAB_DATASET_PATH": "/x/o'brien"},
    ),
    row("env", "--checkpoints-path", "-c", fragment="must not start with '-'"),
    row("env", "--dataset-path", "~nosuchuser_zz/data", fragment="home folder"),
    row("env", "--extension-path", "mmlab_dataset/ext", fragment="lie inside one another"),
    row("env", "--dataset-path", "mmlab_extension/data", fragment="lie inside one another"),
    row("layout", "--dataset-path", "/nonexistent-root/typo/x", fragment="neither does its parent"),
    row("layout", "--dataset-path", "tasks.py", fragment="exists but is not a folder"),
    row("clone", "--extension-path", "tasks.py", fragment="tasks.py"),
    row("clone", "--extension-path", "-x", fragment="must not start with '-'"),
    row("clone", "--extension-path", "mmlab_dataset/ext", fragment="lie inside one another"),
    # Other flags
    row("env", "--require-mount", "2", fragment="MMLAB_REQUIRE_MOUNT (from flag)"),
    row("layout", fragment="not on a mounted disk", environ={"MMLAB_REQUIRE_MOUNT": "1"}),
    row("env", "--remove", fragment="--remove goes with --rc"),
    row("env", "--rc", "/nonexistent-folder/rc", fragment="/nonexistent-folder"),
    row("clone", "--jobs", "0", fragment="--jobs must be at least 1"),
    row("bootstrap", "--jobs", "-1", fragment="--jobs"),
    row("link-data", "--backup", "--adopt", fragment="--backup and --adopt contradict"),
    row("link-checkpoints", "--backup", "--adopt", fragment="--backup and --adopt contradict"),
    row("bootstrap", "--backup", "--adopt", fragment="--backup and --adopt contradict"),
    # fetch-checkpoints: model names, the checkpoint mirror, its flags
    row(
        "env", "--checkpoint-models", "-rf", fragment="MMLAB_CHECKPOINTS (from flag) is not a model"
    ),
    row("env", "--checkpoint-models", "a/../b", fragment="is not a model name"),
    row("env", "--checkpoint-mirror", "ftp://x/", fragment="is not an http:// or https:// URL"),
    row("env", "--checkpoint-mirror", "-https://x", fragment="must not start with '-'"),
    row(
        "fetch-checkpoints",
        fragment="MMLAB_CHECKPOINT_MIRROR (from environment)",
        environ={"MMLAB_CHECKPOINT_MIRROR": "file:///srv/ckpt"},
    ),
    row("fetch-checkpoints", "--jobs", "0", fragment="--jobs must be at least 1"),
    row("fetch-checkpoints", "--jobs", "x", fragment="--jobs must be a whole number"),
    row("fetch-checkpoints", fragment="no model index (model-index.yml)"),
    row("bootstrap", fragment="not a model", environ={"MMLAB_CHECKPOINTS": "a;b"}),
    # .env files python-dotenv and a shell would read differently, or not at all
    row("env", fragment=".env: line 1", dotenv="MMLAB_X='unterminated\n"),
    row("env", fragment=".env: line 2", dotenv="A=1\nB='unterminated\n"),
    row("env", fragment=".env", dotenv="\ufeffMMLAB_PROJECTS=x\n"),
    row("env", fragment=".env: line 1", dotenv="NAME=it's\n"),
    row("status", fragment=".env: line 1", dotenv="A='x'y\n"),
    row("doctor", fragment=".env: line 1", dotenv="A='x'y\n"),
    row("doctor", "--python", "/nonexistent/python3", fragment="is not an interpreter"),
    row("doctor", "--python", "no-such-python3", fragment="not on PATH"),
    # (a program that runs but is no Python it can ask is a finding of doctor's report, with
    # the rest of it: tests/test_hostile_doctor.py)
    row("doctor", "--python", "/etc", fragment="is not an interpreter"),
]


@pytest.mark.parametrize(("args", "environ", "dotenv", "fragment"), BAD_INPUTS)
def test_bad_input_is_one_error_and_changes_nothing(
    cloned: Cloned,
    args: list[str],
    environ: dict[str, str],
    dotenv: str | None,
    fragment: str,
    write_guard: list[str],
) -> None:
    """Exit 1, one `error:` line holding the fragment, one `hint:` line, no traceback; no file
    in the workspace changed, no `.git/checkpoints` under a hidden project, no SENTINEL, and
    nothing written outside the test's folder either (the write guard)."""
    if dotenv is not None:
        (cloned.root / ".env").write_text(dotenv, encoding="utf-8")
    before = snapshot(cloned.root)
    run = run_inproc(cloned.root, *args, env=environ)
    assert_clean_error(run, fragment)
    assert snapshot(cloned.root) == before
    assert not list(cloned.root.rglob("SENTINEL"))
    assert not os.path.lexists(cloned.ext / ".git" / "checkpoints")

"""Regressions found by trying the merged tool as an attacker and as a new user would.

Each test reproduces one problem seen by hand against the mirror of the real repositories,
in the smallest form the fixtures allow.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import assert_clean_error, git_status, inv
from .lib.gitfixture import git
from .lib.linkedws import NEW_TRAIN, PROJECT, TRAIN, Linked, make_linked, push_upstream


def test_a_killed_update_leaving_an_index_lock_in_a_submodule_is_finished(
    workspace: Path, tmp_path: Path
) -> None:
    """SIGKILL to `clone --update` while git checks out the linked submodule: the superproject
    has moved, the submodule has not, and the killed git left `.git/modules/<sub>/index.lock`.
    The next `clone` must finish (not stop at `git update-index`: "index.lock: File exists")."""
    linked: Linked = make_linked(workspace, tmp_path / "served")
    commit = push_upstream(linked.fixture, {TRAIN: NEW_TRAIN})
    git("fetch", "-q", "--depth", "1", "origin", "main", cwd=linked.ext)
    git("reset", "-q", "--keep", "FETCH_HEAD", cwd=linked.ext)  # the superproject moved
    lock = linked.ext / ".git" / "modules" / PROJECT / "index.lock"
    lock.write_bytes(b"")  # what a killed `git checkout` in the submodule leaves

    run = inv(linked.root, "clone")

    assert run.code == 0, run.out + run.err
    assert "Traceback" not in run.err
    assert linked.head(linked.project) == commit
    assert linked.stored(TRAIN).read_bytes() == NEW_TRAIN
    assert not Path(lock).exists()
    assert git_status(linked.project) == ""
    assert inv(linked.root, "status").code == 0


def test_a_stale_index_lock_does_not_leave_adopted_files_unmarked(
    workspace: Path, tmp_path: Path
) -> None:
    """A git killed in the sub-project left its index.lock; `link-data` then adopted the
    tracked files and reported success, but `git update-index --skip-worktree` had failed:
    `git status` showed every adopted file deleted for good, and `status` said healthy."""
    linked: Linked = make_linked(workspace, tmp_path / "served")
    assert inv(linked.root, "unlink", "--data").code == 0
    lock = linked.ext / ".git" / "modules" / PROJECT / "index.lock"
    lock.write_bytes(b"")

    run = inv(linked.root, "link-data")

    assert run.code == 0, run.out + run.err
    assert git_status(linked.project) == ""
    assert all(line.startswith("S ") for line in linked.flags() if " data/" in line)


def test_dry_and_status_leave_git_index_files_alone(workspace: Path, tmp_path: Path) -> None:
    """`--dry clone --update` ran `git status`, which rewrote the superproject's .git/index
    (git refreshes its stat cache when it may): a dry run must not write anything."""
    linked: Linked = make_linked(workspace, tmp_path / "served")
    readme = next(p for p in linked.ext.iterdir() if p.is_file() and p.name != ".git")
    os.utime(readme, (1_000_000_000, 1_000_000_000))  # its stat no longer matches the index
    index = linked.ext / ".git" / "index"
    before = os.stat(index).st_mtime_ns, index.read_bytes()

    for args in (("--dry", "clone", "--update"), ("status",), ("--dry", "bootstrap")):
        run = inv(linked.root, *args)
        assert "Traceback" not in run.err, run.err
        assert (os.stat(index).st_mtime_ns, index.read_bytes()) == before, args


def test_ctrl_c_while_the_console_script_starts_is_no_traceback(workspace: Path) -> None:
    """Ctrl-C in the first tenth of a second of `mmlab-bootstrap` (while invoke and the tasks
    are imported) printed a `KeyboardInterrupt` traceback.

    From the package's first lines on, a Ctrl-C is held: a signal that lands before them (in
    the interpreter's own start, or the console-script wrapper's) is Python's, not the tool's,
    and is not counted; any traceback through a module of the package past those lines fails.
    Delays are tried until two signals landed mid-start (exit 130), within a bound."""
    script = Path(sys.executable).parent / "mmlab-bootstrap"
    package = f"{os.sep}mmlab_bootstrap{os.sep}"
    landed = tries = 0
    delays = (0.05, 0.07, 0.09, 0.11, 0.13, 0.15, 0.2)
    while landed < 2 and tries < 8 * len(delays):
        delay = delays[tries % len(delays)]
        tries += 1
        process = subprocess.Popen(
            [str(script), "--version"],
            cwd=workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate()
        text = err.decode(errors="replace")
        if "Fatal Python error" in text:  # the interpreter's own start, before any code of ours
            continue
        if "Traceback" in text:
            ours = [name for name in re.findall(r'File "([^"]+)"', text) if package in name]
            if all(name.endswith(f"{package}__init__.py") for name in ours):
                continue  # before the package's first lines held it: Python's own start
            raise AssertionError((delay, text))
        if process.returncode == 130:
            landed += 1
            assert text.splitlines()[0] == "error: interrupted", text
    assert landed >= 2, tries  # Ctrl-C reached the program while it started


def test_a_jobs_value_that_is_not_a_number_is_an_error_not_a_traceback(workspace: Path) -> None:
    """`--jobs abc` ended in invoke's `ValueError: invalid literal for int()` traceback."""
    for task in ("clone", "bootstrap"):
        run = inv(workspace, task, "--jobs", "abc")
        assert_clean_error(run, "--jobs must be a whole number")
        assert f"inv {task} --jobs 4" in run.err.splitlines()[1]
        assert not (workspace / ".env").exists()
    assert inv(workspace, "--dry", "clone", "--jobs", "2").code == 0


def test_status_is_unhealthy_with_a_journal_the_link_tasks_refuse(
    workspace: Path, tmp_path: Path
) -> None:
    """A damaged journal stops every link task and `unlink` ("damaged journal"), yet `status`
    said `workspace healthy` and exited 0."""
    linked: Linked = make_linked(workspace, tmp_path / "served")
    journal = linked.root / ".mmlab-bootstrap-state.json"
    journal.write_text('{"links": 5, "version": 1}\n')
    assert inv(linked.root, "link-data").code == 1

    run = inv(linked.root, "status")
    assert run.code == 1, run.out
    assert "damaged journal" in run.out + run.err
    assert "workspace healthy" not in run.out
    document = json.loads(inv(linked.root, "status", "--json").out)
    assert document["healthy"] is False
    assert any("damaged journal" in problem for problem in document["problems"])
    assert journal.read_text() == '{"links": 5, "version": 1}\n'  # status changes nothing


def test_dry_update_does_not_say_it_updated(workspace: Path, tmp_path: Path) -> None:
    """`--dry clone --update` printed `updated <extension> to main (<commit>)` as if it had."""
    linked: Linked = make_linked(workspace, tmp_path / "served")
    push_upstream(linked.fixture, {TRAIN: NEW_TRAIN})
    head = linked.head(linked.ext)

    run = inv(linked.root, "--dry", "clone", "--update")

    assert run.code == 0, run.err
    assert not [line for line in run.out.splitlines() if line.startswith("updated")], run.out
    assert any(line.startswith(f"would update {linked.ext}") for line in run.out.splitlines())
    assert linked.head(linked.ext) == head


def test_dry_bootstrap_before_the_clone_does_not_call_linking_up_to_date(
    workspace: Path,
) -> None:
    """`--dry bootstrap` on a fresh workspace printed `would link … (once cloned)` for every
    location, then `link-checkpoints: up to date` and `link-data: up to date`."""
    run = inv(workspace, "--dry", "bootstrap")

    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert any(line.startswith("would link ") for line in lines), run.out
    assert not [line for line in lines if line.endswith(": up to date")], run.out
    assert sorted(p.name for p in workspace.iterdir()) == ["tasks.py"]  # nothing written


def test_update_refuses_a_submodule_with_local_changes_before_anything_moves(
    workspace: Path, tmp_path: Path
) -> None:
    """`ignore = dirty` in .gitmodules hid an edited file in a sub-project from `--update`'s
    check: the superproject moved, the adopted files in storage and the sub-project's index
    were updated, then git refused the checkout; the sub-project was left with upstream's
    data/ changes staged, ready to go into the user's next `git commit -a` or `git stash`."""
    linked: Linked = make_linked(workspace, tmp_path / "served")
    mine = next(p for p in linked.project.iterdir() if p.is_file() and p.name != ".git")
    push_upstream(linked.fixture, {TRAIN: NEW_TRAIN, mine.name: b"upstream's version\n"})
    mine.write_bytes(mine.read_bytes() + b"my edit\n")
    # as the real superproject's .gitmodules says (`ignore = dirty`); the fixture's does not
    git("config", f"submodule.{PROJECT}.ignore", "dirty", cwd=linked.ext)
    heads = linked.head(linked.ext), linked.head(linked.project)
    before = linked.index(), linked.stored(TRAIN).read_bytes()

    run = inv(linked.root, "clone", "--update")

    assert_clean_error(run, f"submodule '{PROJECT}' has local changes", "nothing changed")
    assert (linked.head(linked.ext), linked.head(linked.project)) == heads
    assert (linked.index(), linked.stored(TRAIN).read_bytes()) == before
    assert mine.read_bytes().endswith(b"my edit\n")

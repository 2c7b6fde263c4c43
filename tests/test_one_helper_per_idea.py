"""One helper per idea (issue 22): each idea is written once, and these checks (by grep over
the package, like test_layers' checks) keep a second copy from coming back."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from mmlab_bootstrap.fs import TOOL_FOLDER, LockRoom
from mmlab_bootstrap.git import normal_url, remove_stale_locks

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mmlab_bootstrap"


def _lines_matching(pattern: str) -> list[str]:
    """`path:line: text` of every line of the package's modules that matches `pattern`."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, text):
                found.append(f"{path.relative_to(ROOT)}:{number}: {text.strip()}")
    return found


def _files_matching(pattern: str) -> set[str]:
    return {line.split(":", 1)[0] for line in _lines_matching(pattern)}


def test_only_the_seam_asks_whether_this_is_a_dry_run() -> None:
    """`.dry` is read by the seam (run/changes.py), the session that creates it and the task
    glue that reads the --dry flag; everything else goes through Changes (make, preview,
    after_changes, would_be)."""
    assert _files_matching(r"\.dry\b") <= {
        "mmlab_bootstrap/run/changes.py",
        "mmlab_bootstrap/run/session.py",
        "mmlab_bootstrap/cli/support.py",
    }, _lines_matching(r"\.dry\b")


def test_one_has_commit() -> None:
    """Whether a repository holds a commit is asked in one place: git/submodules.has_commit
    (with `git_dir=` for a repository asked by `--git-dir`)."""
    assert _files_matching(r'"cat-file", "-e", f"\{\w+\}\^\{\{commit\}\}"') == {
        "mmlab_bootstrap/git/submodules.py"
    }
    assert _files_matching(r"def _?has_commit\b") == {"mmlab_bootstrap/git/submodules.py"}


SAME_REPOSITORY = [
    "https://github.com/open-mmlab/mmcv",
    "https://github.com/open-mmlab/mmcv/",
    "https://github.com/open-mmlab/mmcv//",
    "https://github.com/open-mmlab/mmcv.git",
    "https://github.com/open-mmlab/mmcv.git/",
    "https://github.com/open-mmlab/mmcv/.git",
    "  https://github.com/open-mmlab/mmcv.git/\n",
]
OTHER_REPOSITORIES = [
    "https://github.com/open-mmlab/mmcv2",
    "https://github.com/open-mmlab/mmcv.git.git",
    "https://github.com/open-mmlab/mmcv-git",
    "https://github.com/open-mmlab",
    "http://github.com/open-mmlab/mmcv",
    "https://github.com/Open-MMLab/mmcv",
]


@pytest.mark.parametrize("url", SAME_REPOSITORY)
def test_one_normal_url_says_what_is_the_same_repository(url: str) -> None:
    """One answer for a clone's origin, a mirror's origin and the cache key: `x`, `x/`,
    `x.git`, `x.git/` and `x/.git` are one repository (mirror/plan's own copy once kept the
    slash of `x/.git`)."""
    assert normal_url(url) == "https://github.com/open-mmlab/mmcv"


@pytest.mark.parametrize("url", OTHER_REPOSITORIES)
def test_normal_url_keeps_other_repositories_apart(url: str) -> None:
    assert normal_url(url) != normal_url(SAME_REPOSITORY[0])


def test_one_url_module() -> None:
    """URL normal form and the full commit id pattern live in git/urls.py only."""
    assert _files_matching(r"def _?normal(_url)?\b") == {"mmlab_bootstrap/git/urls.py"}
    assert _files_matching(r"FULL_SHA = ") == {"mmlab_bootstrap/git/urls.py"}
    assert _files_matching(r"\.rstrip\(\"/\"\)\.removesuffix") == {"mmlab_bootstrap/git/urls.py"}


def test_one_lock_room_for_the_git_cache_and_the_mirror() -> None:
    """The tool's folder in a shared store, its lock folders and this host's clock file are
    named in one place, byte for byte what older runs made (a team's disks hold them)."""
    room = LockRoom(Path("/store"))
    assert TOOL_FOLDER == ".mmlab-bootstrap"
    assert (
        str(room.lock_folder("open-mmlab+mmcv")) == "/store/.mmlab-bootstrap/locks/open-mmlab+mmcv"
    )
    assert room.clock.name == f"clock+{os.uname().nodename}"  # what the mirror named it
    assert room.clock == Path("/store/.mmlab-bootstrap") / f"clock+{socket.gethostname()}"
    assert _files_matching(r"\.mmlab-bootstrap\"") == {"mmlab_bootstrap/fs/lease.py"}
    assert _files_matching(r"clock\+") == {"mmlab_bootstrap/fs/lease.py"}


def test_one_stale_git_lock_cleaner(tmp_path: Path) -> None:
    """git's `*.lock` files a killed git left, anywhere in a repository but its objects."""
    repo = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    stale = [repo / "config.lock", repo / "shallow.lock", repo / "refs/mmlab-bootstrap/c.lock"]
    kept = [repo / "objects/pack/pack-1.lock", repo / "objects/info/alternates", repo / "HEAD"]
    for path in [*stale, *kept[:2]]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert sorted(remove_stale_locks(repo)) == sorted(stale)
    assert not any(path.exists() for path in stale) and all(path.exists() for path in kept)
    assert remove_stale_locks(repo) == []
    assert _files_matching(r"endswith\(\"\.lock\"\)") == {"mmlab_bootstrap/git/command.py"}


def test_one_place_for_the_jobs_defaults() -> None:
    """The --jobs defaults live in settings/variables.py (which cli imports at start-up for
    its help lines): 4 repositories fetched at once, 2 checkpoint files downloaded at once."""
    from mmlab_bootstrap.settings import DEFAULT_JOBS, DOWNLOAD_JOBS

    assert (DEFAULT_JOBS, DOWNLOAD_JOBS) == (4, 2)
    assert _files_matching(r"^[A-Z_]*JOBS = ") == {"mmlab_bootstrap/settings/variables.py"}


def test_one_heartbeat() -> None:
    """output.Heartbeat beats until its block ends, and not after (leaving waits for a beat
    under way); the board, the downloads and the mirror walk use it, no thread of their own."""
    import threading

    from mmlab_bootstrap.output import Heartbeat

    beats: list[int] = []
    twice = threading.Event()

    def beat() -> None:
        beats.append(len(beats))
        if len(beats) >= 2:
            twice.set()

    with Heartbeat(beat, every=0):
        assert twice.wait(60)
    after = len(beats)
    assert twice.wait(0) and len(beats) == after
    assert _files_matching(r"\.wait\((self\.)?(heartbeat|every|HEARTBEAT)") <= {
        "mmlab_bootstrap/output/progress.py",
        "mmlab_bootstrap/fs/lease.py",  # the lease lock's owner file, touched: not a line shown
    }


def test_temporary_names_are_made_in_fs_only() -> None:
    """Every temporary name comes from its caller's template through fs.temporaries
    (`temporary_beside`, `temporary_folder`): no `tempfile` in the package, no random part or
    clock in a name written by hand, no name of a temporary spelled as an f-string."""
    tempfiles = _lines_matching(r"import tempfile|tempfile\.|mkstemp|mkdtemp|NamedTemporaryFile")
    # (configload's SCRIPT runs in the training interpreter, not here: it asks tempfile for
    # its folder first, so that tempfile's reads of TMPDIR are not counted as the config's)
    assert [line for line in tempfiles if "checkpoints/configload.py" not in line] == []
    assert len(tempfiles) <= 2
    randomness = _files_matching(r"os\.urandom\(|secrets\.token_hex\(|monotonic_ns\(\)")
    assert randomness <= {
        "mmlab_bootstrap/fs/temporaries.py",
        "mmlab_bootstrap/fs/lease.py",  # a lock owner's token, written in its owner file
    }, _lines_matching(r"os\.urandom\(|secrets\.token_hex\(|monotonic_ns\(\)")
    by_hand = r'f"[^"]*\}\.(partial"|part-\{|tmp-\{|old"|mmlab-bootstrap-)|PARTIAL_SUFFIX'
    assert _lines_matching(by_hand) == []
    assert _files_matching(r"def temporary_(beside|name|folder)\b") == {
        "mmlab_bootstrap/fs/temporaries.py"
    }
    assert len(_lines_matching(r'^[A-Z_]*TEMPORARY = "')) >= 12  # each caller's own, named


# Functions that list a folder and remove some of what is there, other than the one sweep:
# each is something else, and says why here.
NOT_SWEEPS = {
    # the move lists each target folder once, and drops the transfer's temporaries from that
    # listing (fs.transfer.LEFTOVER, made from TRANSFER_TEMPORARY) rather than list it twice
    ("mmlab_bootstrap/fs/move.py", "_listing"),
    # git's own `*.lock` files, in a whole repository: the one stale git lock cleaner
    ("mmlab_bootstrap/git/command.py", "remove_stale_locks"),
    # a submodule clone without a commit, told by git, not by a name
    ("mmlab_bootstrap/clone/fetch/resume.py", "_forget_half_clone"),
}


def test_one_leftover_sweep() -> None:
    """What killed runs left is removed by fs.temporaries.sweep (the caller's pattern and
    rule), never by a listing and an unlink written again elsewhere."""
    import ast

    listing = re.compile(r"os\.listdir\(|\.iterdir\(\)|\.r?glob\(|os\.scandir\(|os\.walk\(")
    removing = re.compile(r"\.unlink\(|rmtree\(|os\.remove\(|discard\(")
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef):
                body = ast.get_source_segment(text, node) or ""
                if listing.search(body) and removing.search(body):
                    found.add((str(path.relative_to(ROOT)), node.name))
    assert found == NOT_SWEEPS, found ^ NOT_SWEEPS
    assert _files_matching(r"def sweep\b") == {"mmlab_bootstrap/fs/temporaries.py"}
    assert _files_matching(r"fcntl\.LOCK_NB") <= {
        "mmlab_bootstrap/fs/temporaries.py",  # is a leftover abandoned
        "mmlab_bootstrap/fs/lock.py",  # the workspace lock
        "mmlab_bootstrap/checkpoints/store.py",  # a partial download claimed to be resumed
    }, _lines_matching(r"fcntl\.LOCK_NB")


def test_fetch_means_git_fetch() -> None:
    """One meaning per word: a function named fetch runs `git fetch`; HTTP is download
    (checkpoints.download.download_file), and the checkpoints say "download" everywhere but
    in the task's own name, `fetch-checkpoints`."""
    assert _files_matching(r"def _?fetch\b") <= {
        "mmlab_bootstrap/clone/apply.py",  # git fetch of the submodules
        "mmlab_bootstrap/mirror/apply.py",  # git fetch --atomic into a mirror
        "mmlab_bootstrap/links/upstream.py",  # git fetch of the commit a submodule moves to
    }, _lines_matching(r"def _?fetch\b")
    checkpoints = [
        line
        for line in _lines_matching(r"(?i)fetch")
        if line.startswith("mmlab_bootstrap/checkpoints/")
        and not re.search(r"fetch[-_]checkpoints", line)
    ]
    assert checkpoints == []


THREADS = r"\bThread\(|(?<![\w.])_thread\b|start_new_thread"  # a thread started


def test_one_work_pool() -> None:
    """Parallel work over many items (the submodules' fetch, the mirror walk, the checkpoint
    downloads) runs on run/pool.WorkPool; no other executor, and threads only where one task
    runs beside another, never a walker: the heartbeat, the lease lock's beat, the hashing of
    a download as it arrives, and the `ls-remote` asked while a submodule's commit is fetched."""
    assert (
        _files_matching(r"concurrent\.futures|ThreadPoolExecutor|ProcessPool|multiprocessing")
        == set()
    )
    assert _files_matching(THREADS) == {
        "mmlab_bootstrap/run/pool.py",  # one thread per running item
        "mmlab_bootstrap/output/progress.py",  # Heartbeat
        "mmlab_bootstrap/fs/lease.py",  # the owner file touched while the lease is held
        "mmlab_bootstrap/checkpoints/partial.py",  # hashing beside the download
        "mmlab_bootstrap/clone/fetch/repository.py",  # ls-remote beside the fetch
    }, _lines_matching(THREADS)
    # (no worker loop draining a queue of items, no join polled every few tenths of a second)
    assert _files_matching(r"get_nowait\(|\.join\(0\.\d") == set()

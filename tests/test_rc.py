"""`inv env --rc`: one marked block per workspace, added once, removed cleanly."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.output.report import Reporter
from mmlab_bootstrap.run.changes import Changes
from mmlab_bootstrap.workspace.rcfile import update_rc

from .conftest import REPO_ROOT, inv, scaled, shell_or_skip

ORIGINAL = (
    "# my bashrc\nalias ll='ls -l'\nexport MMLAB_DATASET_PATH=/old/manual\nexport PATH=$PATH:/x"
)


def test_block_added_once_and_removed_byte_for_byte(workspace: Path, tmp_path: Path) -> None:
    """Twice adds one block; --remove restores the file exactly; manual exports are kept."""
    rc = tmp_path / "home" / ".bashrc"
    rc.write_text(ORIGINAL)
    first = inv(workspace, "env", "--rc", str(rc))
    assert first.code == 0, first.err
    assert "line 3 sets MMLAB_DATASET_PATH by hand" in first.err
    after_first = rc.read_text()
    assert after_first.startswith(ORIGINAL + "\n# >>> mmlab-bootstrap ")
    second = inv(workspace, "env", "--rc", str(rc))
    assert second.code == 0
    assert f"up to date: {rc}" in second.lines
    assert rc.read_text() == after_first
    removed = inv(workspace, "env", "--rc", str(rc), "--remove")
    assert removed.code == 0, removed.err
    assert rc.read_text() == ORIGINAL


def test_each_workspace_gets_its_own_block(workspace: Path, tmp_path: Path) -> None:
    """A second workspace adds a second block; removing one leaves the other."""
    other = tmp_path / "second"
    other.mkdir()
    shutil.copy(REPO_ROOT / "tasks.py", other / "tasks.py")
    rc = tmp_path / "home" / ".zshrc"
    assert inv(workspace, "env", "--rc", "~/.zshrc").code == 0
    assert inv(other, "env", "--rc", str(rc)).code == 0
    text = rc.read_text()
    assert text.count("# >>> mmlab-bootstrap") == 2
    assert inv(workspace, "env", "--rc", str(rc), "--remove").code == 0
    assert str(workspace) not in rc.read_text() and str(other) in rc.read_text()


@pytest.mark.parametrize("shell", ["bash", "dash", "zsh"])
def test_the_block_loads_the_workspace_in_new_shells(
    workspace: Path, tmp_path: Path, shell: str
) -> None:
    """bash, dash and zsh reading the rc file in the workspace (or a folder in it) get the
    workspace's variables; started elsewhere, nothing."""
    program = shell_or_skip(shell)
    rc = tmp_path / "home" / ".rc"
    assert inv(workspace, "env", "--rc", str(rc)).code == 0
    (workspace / "sub").mkdir()
    for cwd, expected in (
        (workspace, str(workspace / "mmlab_extension")),
        (workspace / "sub", str(workspace / "mmlab_extension")),
        (tmp_path, ""),
    ):
        done = subprocess.run(
            [program, "-c", f'. "{rc}"; printf %s "$MMLAB_EXTENSION_PATH"'],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, "PWD": str(cwd)},
        )
        assert (done.stdout, done.stderr) == (expected, ""), (shell, cwd)


def test_a_symlinked_rc_file_is_written_through(workspace: Path, tmp_path: Path) -> None:
    """Dotfile managers link rc files: the link stays, its target gets the block."""
    real = tmp_path / "dotfiles" / "bashrc"
    real.parent.mkdir()
    real.write_text("# managed\n")
    rc = tmp_path / "home" / ".bashrc"
    rc.symlink_to(real)
    assert inv(workspace, "env", "--rc", str(rc)).code == 0
    assert rc.is_symlink() and "mmlab-bootstrap" in real.read_text()


RC_TEXT = (
    st.lists(
        st.one_of(st.sampled_from(["\r", "\n", "\r\n", "#", "'", " ", "é", "😀"]), st.characters()),
        max_size=40,
    )
    .map("".join)
    .map(lambda text: text.encode("utf-8", "surrogatepass"))
)
RC_BYTES = st.one_of(RC_TEXT, st.binary(max_size=60))  # also text in other encodings


@settings(
    max_examples=scaled(100, 300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(original=RC_BYTES)
def test_add_then_remove_gives_back_every_byte(
    tmp_path: Path, write_guard: list[str], original: bytes
) -> None:
    """Any rc content (CR, CRLF, no final newline, unicode, non-UTF-8 bytes): adding the block
    and taking it out again leaves exactly the bytes there were."""
    assume(b"mmlab-bootstrap" not in original)
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        rc = Path(folder) / ".bashrc"
        rc.write_bytes(original)
        root = Path(folder) / "ws"
        changes = Changes(Reporter(out=io.StringIO(), err=io.StringIO()), dry=False)
        update_rc(rc, root, root / ".env", changes)
        added = rc.read_bytes()
        assert b"# >>> mmlab-bootstrap" in added
        update_rc(rc, root, root / ".env", changes)  # a second add changes nothing
        assert rc.read_bytes() == added
        update_rc(rc, root, root / ".env", changes, remove=True)
        assert rc.read_bytes() == original


def test_carriage_returns_survive_the_real_tasks(workspace: Path, tmp_path: Path) -> None:
    """`env --rc FILE` then `--rc FILE --remove` keeps CR, CRLF and a missing final newline."""
    rc = tmp_path / "home" / ".bashrc"
    original = b"alias x='a\rb'\r\nexport FOO=1\r\n# caf\xc3\xa9 \xff\r"
    rc.write_bytes(original)
    assert inv(workspace, "env", "--rc", str(rc)).code == 0
    assert rc.read_bytes().startswith(original)
    run = inv(workspace, "env", "--rc", str(rc), "--remove")
    assert run.code == 0, run.err
    assert rc.read_bytes() == original


def test_remove_takes_out_every_copy_of_the_block(workspace: Path, tmp_path: Path) -> None:
    """A block pasted twice (or added by an old copy of the rc file) goes entirely."""
    rc = tmp_path / "home" / ".bashrc"
    rc.write_text("A\n")
    assert inv(workspace, "env", "--rc", str(rc)).code == 0
    block = rc.read_text()[2:]
    rc.write_text("A\n" + block + "B\n" + block)
    run = inv(workspace, "env", "--rc", str(rc), "--remove")
    assert run.code == 0, run.err
    assert rc.read_text() == "A\nB\n"

"""The `.env` writer: keeps the user's lines, writes atomically, refuses what it cannot read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dotenv import dotenv_values

from mmlab_bootstrap.errors import EnvFileError
from mmlab_bootstrap.fs.files import write_atomically
from mmlab_bootstrap.settings.envfile import read_env_file, render

from .conftest import assert_clean_error, inv

OWNED = {"MMLAB_A": "/data/a b", "MMLAB_B": "https://example.com/x.git#frag"}
HELP = {"MMLAB_A": "first", "MMLAB_B": "second"}


def rendered(tmp_path: Path, text: str | None, owned: dict[str, str] = OWNED) -> str:
    path = tmp_path / ".env"
    if text is not None:
        path.write_bytes(text.encode())
    return render(read_env_file(path), owned, HELP, "header")


def test_new_file_has_header_comment_and_export_lines(tmp_path: Path) -> None:
    """A new file gets a header, then a comment line and an `export KEY='value'` line each."""
    assert rendered(tmp_path, None) == (
        "# header\n"
        "# first\nexport MMLAB_A='/data/a b'\n"
        "# second\nexport MMLAB_B='https://example.com/x.git#frag'\n"
    )


def test_user_lines_order_and_unknown_keys_are_kept(tmp_path: Path) -> None:
    """Comments, blank lines, order and other keys stay byte for byte; owned keys change."""
    original = (
        "# my settings\r\n"
        "FOO=bar baz   # why\n"
        "\n\n"
        "  MMLAB_B=old\n"
        'export OTHER="x y"\n'
        "MMLAB_A='/old'   # on the big disk\n"
        "LAST=1"
    )
    text = rendered(tmp_path, original)
    assert text == (
        "# my settings\r\n"
        "FOO=bar baz   # why\n"
        "\n\n"
        "  export MMLAB_B='https://example.com/x.git#frag'\n"
        'export OTHER="x y"\n'
        "export MMLAB_A='/data/a b'   # on the big disk\n"
        "LAST=1"
    )


def test_missing_keys_are_appended_after_a_final_newline(tmp_path: Path) -> None:
    """A file without a final newline gets one before the appended keys."""
    text = rendered(tmp_path, "FOO=1")
    assert text.startswith("FOO=1\n# first\nexport MMLAB_A=")
    assert dotenv_values(stream=__import__("io").StringIO(text)) == {"FOO": "1", **OWNED}


def test_every_duplicate_is_rewritten(tmp_path: Path) -> None:
    """Shells take the last assignment, so every copy of an owned key gets the new value."""
    text = rendered(tmp_path, "MMLAB_A=/x\nMMLAB_A=/y\n", {"MMLAB_A": "/z"})
    assert text == "export MMLAB_A='/z'\nexport MMLAB_A='/z'\n"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("OK=1\nFOO='abc\n", 2, "cannot parse"),
        ("OK=1\n\nthis is not a binding\n", 3, "cannot parse"),
        ("A='x'y\n", 1, "cannot parse"),
        ("NAME=it's\nMMLAB_A=/x\n", 1, "unbalanced quote"),
    ],
)
def test_malformed_file_is_refused_with_its_line(
    tmp_path: Path, text: str, line: int, fragment: str
) -> None:
    """A line python-dotenv or a shell would misread stops the tool, naming the line."""
    (tmp_path / ".env").write_text(text)
    with pytest.raises(EnvFileError) as caught:
        read_env_file(tmp_path / ".env")
    assert f"line {line}" in caught.value.message
    assert fragment in caught.value.message


def test_byte_order_mark_and_non_utf8_are_refused(tmp_path: Path) -> None:
    """Shells cannot source a BOM; the file must be UTF-8."""
    path = tmp_path / ".env"
    path.write_bytes(b"\xef\xbb\xbfA=1\n")
    with pytest.raises(EnvFileError, match="byte-order mark"):
        read_env_file(path)
    path.write_bytes(b"A=\xff\n")
    with pytest.raises(EnvFileError, match="not UTF-8"):
        read_env_file(path)


def test_unwritable_value_is_refused(tmp_path: Path) -> None:
    """A value that cannot be single-quoted safely is refused, naming the key."""
    with pytest.raises(EnvFileError, match=r"MMLAB_A .*single quote"):
        rendered(tmp_path, None, {"MMLAB_A": "it's"})


def test_atomic_write_keeps_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    """An existing file keeps its mode; no temporary file is left behind."""
    path = tmp_path / "ws" / ".env"
    path.parent.mkdir()
    path.write_text("A=1\n")
    path.chmod(0o600)
    write_atomically(path, "A=2\n")
    assert path.read_text() == "A=2\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(path.parent)) == [".env"]


def test_new_file_mode_follows_the_umask(tmp_path: Path) -> None:
    """A new file gets 0666 less the umask (0644 with the usual 022, 0600 with 077)."""
    old = os.umask(0o077)
    try:
        write_atomically(tmp_path / "a", "x")
    finally:
        os.umask(old)
    old = os.umask(0o022)
    try:
        write_atomically(tmp_path / "b", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o644


def test_symlinked_file_is_written_through(tmp_path: Path) -> None:
    """When .env is a symlink, its target is rewritten and the link stays a link."""
    target = tmp_path / "shared" / "team.env"
    target.parent.mkdir()
    target.write_text("A=1\n")
    link = tmp_path / ".env"
    link.symlink_to(os.path.relpath(target, tmp_path))
    written = write_atomically(link, "A=2\n")
    assert written == target
    assert link.is_symlink() and target.read_text() == "A=2\n"


READ_DIFFERENTLY = [
    ('export MMLAB_DATASET_PATH="$HOME/datasets"', "'$' inside double quotes"),
    ("MMLAB_DATASET_PATH=$HOME/datasets", "'$'"),
    ("MMLAB_DATASET_PATH='${HOME}/datasets'", "'${'"),
    ('MMLAB_DATASET_PATH="${HOME}/datasets"', "'$' inside double quotes"),
    ("MMLAB_CHECKPOINTS_PATH=`pwd`/ckpt", "backtick"),
    ('MMLAB_CHECKPOINTS_PATH="$(pwd)/ckpt"', "'$' inside double quotes"),
    ('MMLAB_CHECKPOINTS_PATH="/data/a\\\\b"', "backslash inside double quotes"),
    ("MMLAB_CHECKPOINTS_PATH='/data/a\\\\b'", "backslash inside single quotes"),
    ("MMLAB_CHECKPOINTS_PATH=/data/a\\ b", "backslash"),
    ("MMLAB_PROJECTS=mmdetection mmdetection3d", "a space"),
    ("MMLAB_DATASET_PATH=~/datasets", "'~'"),
    ("MMLAB_DATASET_PATH = /datasets", "around '='"),
    ("export MMLAB_DATASET_PATH= '/datasets'", "around '='"),
    ("MMLAB_DATASET_PATH=/data/*", "wildcard"),
    ("MMLAB_DATASET_PATH=/data;id", "shell operator"),
]


@pytest.mark.parametrize(("line", "reason"), READ_DIFFERENTLY)
def test_a_value_shells_and_dotenv_read_differently_is_refused(
    tmp_path: Path, line: str, reason: str
) -> None:
    """Each such line of the tool's variables is refused with its line number and a reason."""
    (tmp_path / ".env").write_text(f"# mine\nOTHER=1\n{line}\n")
    with pytest.raises(EnvFileError) as caught:
        read_env_file(tmp_path / ".env")
    assert caught.value.message.startswith(f"{tmp_path / '.env'}: line 3: ")
    assert "reads differently in a shell and in python-dotenv" in caught.value.message
    assert reason in caught.value.message
    assert "line 3" in caught.value.hint


@pytest.mark.parametrize(
    "line",
    [
        "MMLAB_DATASET_PATH=/data/x",
        "export MMLAB_DATASET_PATH='/data/x y'",
        'MMLAB_DATASET_PATH="/data/x y"',
        "MMLAB_DATASET_PATH='/data/$x'",  # single quotes: both read `$x` literally
        "MMLAB_DATASET_PATH=/data/x   # on the big disk",
        'PATH="$HOME/bin:$PATH"',  # not one of the tool's variables: the user's business
        "MMLAB_MY_OWN=`date`",
    ],
)
def test_values_read_the_same_are_accepted(tmp_path: Path, line: str) -> None:
    """Lines a shell and python-dotenv read alike, and other keys, are not refused."""
    (tmp_path / ".env").write_text(line + "\n")
    assert read_env_file(tmp_path / ".env").exists


def test_a_shell_expansion_in_dotenv_is_never_rewritten(workspace: Path, tmp_path: Path) -> None:
    """`export MMLAB_DATASET_PATH="$HOME/datasets"` is refused, not turned into
    `<workspace>/$HOME/datasets`; `.env` stays byte for byte; the hint gives the line to write."""
    path = workspace / ".env"
    original = b'# mine\r\nexport MMLAB_DATASET_PATH="$HOME/datasets"\n'
    path.write_bytes(original)
    for task in (["env"], ["env", "--projects", "mmdetection"], ["status"], ["layout"]):
        run = inv(workspace, *task)
        assert_clean_error(run, "line 2", "reads differently in a shell and in python-dotenv")
        assert f"export MMLAB_DATASET_PATH='{tmp_path / 'home' / 'datasets'}'" in run.err
        assert path.read_bytes() == original
    assert not (workspace / "$HOME").exists()

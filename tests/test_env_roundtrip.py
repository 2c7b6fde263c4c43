"""Property: every value is refused or read back identically by python-dotenv, bash, dash, zsh."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmlab_bootstrap.errors import EnvFileError
from mmlab_bootstrap.fs.files import write_atomically
from mmlab_bootstrap.settings.envcheck import value_problem
from mmlab_bootstrap.settings.envfile import read_env_file, render

from .conftest import scaled

SHELLS = ("bash", "dash", "zsh")
MARKER = "MARKER_RAN"

TOKENS = st.sampled_from(
    [
        "'", '"', "\\", "$", "`", "{", "}", "#", "=", " ", "\t", "\n", "\r", "\r\n", "\x00",
        "\x7f", "~", "!", ";", "&", "|", "<", ">", "(", ")", "*", "?", "[", "]", "/", ":",
        "-", "${HOME}", "${X:-y}", "${", "$HOME", "\\\\", "\\'", "'$(touch MARKER_RAN)'",
        f"$(touch {MARKER})", f"`touch {MARKER}`", f"';touch {MARKER};'", "ü", "😀",
        "\u2028", "\u0085", "\ufeff", "\udcff", "/data/mmlab ext", "a=b", " #c",
    ]
)  # fmt: skip
VALUES = st.lists(st.one_of(TOKENS, st.text(min_size=1, max_size=4)), max_size=10).map("".join)


def available_shells() -> list[str]:
    found = [shell for shell in SHELLS if shutil.which(shell)]
    if len(found) < len(SHELLS) and os.environ.get("CI"):
        pytest.fail(f"CI must have every shell of {SHELLS}; found {found}")
    return found


def source_in(shell: str, folder: Path, keys: list[str]) -> tuple[list[str], str, int]:
    """Source `.env` the documented way and print the keys' values NUL-separated."""
    printed = " ".join([*(f'"${key}"' for key in keys), "END"])
    script = f"set -a; . ./.env; set +a; printf '%s\\0' {printed}"
    done = subprocess.run(
        [shell, "-c", script], cwd=folder, capture_output=True, timeout=30, env={"PATH": os.defpath}
    )
    values = done.stdout.decode("utf-8", "surrogateescape").split("\0")[:-2]
    return values, done.stderr.decode(errors="replace"), done.returncode


@settings(
    max_examples=int(os.environ.get("ROUNDTRIP_EXAMPLES", str(scaled(80, 250)))),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(values=st.lists(VALUES, min_size=1, max_size=6), user_lines=st.booleans())
def test_values_are_refused_or_read_back_identically(
    tmp_path: Path, write_guard: list[str], values: list[str], user_lines: bool
) -> None:
    """Random values (quotes, `$(…)`, backticks, `#`, `=`, unicode) round-trip or are refused."""
    shells = available_shells()
    owned = {f"MMLAB_T{i}": value for i, value in enumerate(values)}
    accepted = {key: value for key, value in owned.items() if value_problem(value) is None}
    refused = {key: value for key, value in owned.items() if key not in accepted}
    with tempfile.TemporaryDirectory(dir=tmp_path) as name:
        folder = Path(name)
        env_path = folder / ".env"
        if user_lines:
            env_path.write_text("# mine\nexport USER_KEY='kept'\n\n")
        envfile = read_env_file(env_path)
        for key, value in refused.items():
            with pytest.raises(EnvFileError, match=key):
                render(envfile, {key: value}, {}, "header")
        text = render(envfile, accepted, {}, "header")
        write_atomically(env_path, text)
        expected = {**({"USER_KEY": "kept"} if user_lines else {}), **accepted}
        assert dotenv_values(env_path) == expected
        keys = list(accepted)
        for shell in shells:
            read, stderr, code = source_in(shell, folder, keys)
            assert (code, stderr) == (0, ""), shell
            assert read == [accepted[key] for key in keys], shell
        assert not (folder / MARKER).exists(), "sourcing ran a command hidden in a value"


def test_refused_characters_are_exactly_the_documented_ones() -> None:
    """`'`, `\\`, `${`, control characters and non-UTF-8 are refused; the rest is accepted."""
    for value in ["a'b", "a\\b", "${HOME}", "a\nb", "a\rb", "a\x00b", "a\x7fb", "\udcff"]:
        assert value_problem(value) is not None, value
    for value in ["$HOME", "$(id)", "`id`", "a b#c=d", '"q"', "ü😀\u2028", "$", "{x}"]:
        assert value_problem(value) is None, value


def test_a_multiline_user_value_is_kept_and_not_mistaken_for_a_binding(tmp_path: Path) -> None:
    """A quoted user value spanning lines, with an owned key's text inside, stays as it was."""
    path = tmp_path / ".env"
    path.write_text("FOO='abc\nMMLAB_A=/inside\n'\n")
    text = render(read_env_file(path), {"MMLAB_A": "/x"}, {}, "h")
    assert text.startswith("FOO='abc\nMMLAB_A=/inside\n'\n")
    path.write_text(text)
    assert dotenv_values(path) == {"FOO": "abc\nMMLAB_A=/inside\n", "MMLAB_A": "/x"}

"""Settings resolution: precedence, sources, normalised paths and refused values."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmlab_bootstrap.errors import SettingsError
from mmlab_bootstrap.settings.values import Source, resolve
from mmlab_bootstrap.settings.variables import VARIABLES

ROOT = Path("/srv/ws")


def test_defaults_resolve_against_the_root() -> None:
    """With nothing set, every value is its default and paths are absolute under the root."""
    settings = resolve(ROOT, {}, {}, {})
    assert settings.extension_path == ROOT / "mmlab_extension"
    assert settings.checkpoints_path == ROOT / "mmlab_checkpoints"
    assert settings.dataset_path == ROOT / "mmlab_dataset"
    assert settings.projects == ("mmdetection", "mmdetection3d")
    assert settings.repo == "https://github.com/windzu/mmlab_extension.git"
    assert settings.ref == "" and settings.mirror == ""
    assert {v.source for v in settings.values.values()} == {Source.DEFAULT}
    assert list(settings.as_env()) == [v.name for v in VARIABLES]


@pytest.mark.parametrize(
    ("flag", "environ", "dotenv", "expected", "source"),
    [
        ("/f", "/e", "/d", "/f", Source.FLAG),
        (None, "/e", "/d", "/e", Source.ENVIRONMENT),
        (None, None, "/d", "/d", Source.DOTENV),
        (None, None, None, "/srv/ws/mmlab_dataset", Source.DEFAULT),
        (None, "", "/d", "/d", Source.DOTENV),
    ],
    ids=[
        "flag-wins",
        "environment-beats-dotenv",
        "dotenv-beats-default",
        "default",
        "empty-is-unset",
    ],
)
def test_precedence(
    flag: str | None, environ: str | None, dotenv: str | None, expected: str, source: Source
) -> None:
    """Flag, then process environment, then .env, then the default; each source is recorded."""
    name = "MMLAB_DATASET_PATH"
    settings = resolve(
        ROOT,
        {name: flag},
        {name: environ} if environ is not None else {},
        {name: dotenv} if dotenv is not None else {},
    )
    assert settings[name] == expected
    assert settings.values[name].source is source


def test_relative_and_home_paths_become_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    """`~` expands to HOME and relative paths resolve against the workspace root."""
    monkeypatch.setenv("HOME", "/home/user")
    settings = resolve(
        ROOT,
        {"MMLAB_CHECKPOINTS_PATH": "~/ckpt", "MMLAB_DATASET_PATH": "../data/./x/"},
        {},
        {},
    )
    assert settings["MMLAB_CHECKPOINTS_PATH"] == "/home/user/ckpt"
    assert settings["MMLAB_DATASET_PATH"] == "/srv/data/x"
    assert settings.values["MMLAB_CHECKPOINTS_PATH"].raw == "~/ckpt"


def test_projects_are_split_and_deduplicated() -> None:
    """MMLAB_PROJECTS is a space-separated list; repeats are dropped, order kept."""
    settings = resolve(ROOT, {"MMLAB_PROJECTS": " mmdet3d  mmdet mmdet3d "}, {}, {})
    assert settings.projects == ("mmdet3d", "mmdet")


def test_mirror_gets_a_trailing_slash() -> None:
    """A mirror prefix always ends with `/` so that owner/repo appends cleanly."""
    settings = resolve(ROOT, {"MMLAB_GIT_MIRROR": "https://mirror.example.com/github"}, {}, {})
    assert settings.mirror == "https://mirror.example.com/github/"


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/windzu/mmlab_extension.git",
        "http://git.example.com:8080/a/b",
        "ssh://git@github.com/windzu/mmlab_extension.git",
        "git@github.com:windzu/mmlab_extension.git",
        "git://example.com/repo.git",
        "file:///tmp/some folder/repo.git",
    ],
)
def test_accepted_urls(url: str) -> None:
    """The URL forms git accepts are taken as they are."""
    assert resolve(ROOT, {"MMLAB_EXTENSION_REPO": url}, {}, {}).repo == url


BAD_VALUES = [
    ("MMLAB_EXTENSION_REPO", "-uupload-pack=touch /tmp/x", "must not start with '-'"),
    ("MMLAB_EXTENSION_REPO", "ext::sh -c touch% /tmp/pwned", "remote helper"),
    ("MMLAB_EXTENSION_REPO", "github.com/windzu/x", "not a URL git accepts"),
    ("MMLAB_EXTENSION_REPO", "https://", "not a URL git accepts"),
    ("MMLAB_EXTENSION_REPO", "file://relative/path", "not a URL git accepts"),
    ("MMLAB_GIT_MIRROR", "mirror.example.com", "not a URL git accepts"),
    ("MMLAB_GIT_MIRROR", "fd::17", "remote helper"),
    ("MMLAB_EXTENSION_REF", "-main", "not a branch, tag or commit"),
    ("MMLAB_EXTENSION_REF", "a..b", "not a branch, tag or commit"),
    ("MMLAB_EXTENSION_REF", "a b", "not a branch, tag or commit"),
    ("MMLAB_PROJECTS", "mmdet ../etc", "not a plain folder name"),
    ("MMLAB_PROJECTS", "a/b", "not a plain folder name"),
    ("MMLAB_PROJECTS", "-rf", "not a plain folder name"),
    ("MMLAB_PROJECTS", "..", "not a plain folder name"),
    ("MMLAB_PROJECTS", ".git", "not a plain folder name (it starts with '.')"),
    ("MMLAB_PROJECTS", ".", "not a plain folder name"),
    ("MMLAB_PROJECTS", "mmdet .hidden", "not a plain folder name"),
    ("MMLAB_PROJECTS", " ", "names no project"),
    ("MMLAB_DATASET_PATH", "-data", "must not start with '-'"),
    ("MMLAB_DATASET_PATH", "/data/o'brien", "single quote"),
    ("MMLAB_DATASET_PATH", "/data/a\\b", "backslash"),
    ("MMLAB_DATASET_PATH", "/data/${HOME}", "'${'"),
    ("MMLAB_DATASET_PATH", "/data/a\nb", "control character"),
    ("MMLAB_DATASET_PATH", "~nosuchuser_zz/data", "home folder"),
    ("MMLAB_CHECKPOINTS_PATH", "/data/\udcff", "UTF-8"),
]


@pytest.mark.parametrize(("name", "value", "fragment"), BAD_VALUES)
@pytest.mark.parametrize("source", [Source.FLAG, Source.ENVIRONMENT, Source.DOTENV])
def test_bad_values_name_the_variable_and_source(
    name: str, value: str, fragment: str, source: Source
) -> None:
    """Each bad value is refused with the variable, where it came from, and a hint."""
    given = {name: value}
    with pytest.raises(SettingsError) as caught:
        resolve(
            ROOT,
            given if source is Source.FLAG else {},
            given if source is Source.ENVIRONMENT else {},
            given if source is Source.DOTENV else {},
        )
    error = caught.value
    assert error.message.startswith(f"{name} (from {source.value})")
    assert fragment in error.message
    assert "\n" not in error.message and "\n" not in error.hint
    assert error.hint


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MMLAB_DATASET_PATH", "/srv/ws/mmlab_extension/data"),
        ("MMLAB_CHECKPOINTS_PATH", "/srv/ws"),
        ("MMLAB_CHECKPOINTS_PATH", "/srv/ws/mmlab_extension"),
    ],
)
def test_storage_and_extension_must_not_nest(name: str, value: str) -> None:
    """The extension path and a storage root may not lie inside one another."""
    with pytest.raises(SettingsError, match="lie inside one another"):
        resolve(ROOT, {name: value}, {}, {})

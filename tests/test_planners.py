"""Planners reached directly: no `inv`, no subprocess (checked), milliseconds each.

The end-to-end files test the same decisions through the tasks; these pin the pure parts
(settings resolution, link classification on a folder tree, URL helpers, checkpoint names
and plans, version bounds) where a failure names the function at fault."""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmlab_bootstrap.checkpoints.index import Model, ModelError, final_path, source_url
from mmlab_bootstrap.checkpoints.plan import plan_one
from mmlab_bootstrap.checkpoints.store import name_problem, write_record
from mmlab_bootstrap.git import Git
from mmlab_bootstrap.git.urls import mirrored, normal_url
from mmlab_bootstrap.gitcache.store import cache_key
from mmlab_bootstrap.links.location import Location
from mmlab_bootstrap.links.plan import State, Way, classify
from mmlab_bootstrap.mirror.places import resolve_relative
from mmlab_bootstrap.output.report import Reporter
from mmlab_bootstrap.pythonenv.version_ranges import requirement_ranges, stricter
from mmlab_bootstrap.settings import Settings, Source, resolve

GITHUB_REPO = "https://github.com/windzu/mmlab_extension.git"


class _Spawned:
    """Process starts seen by an audit hook (installed once; hooks cannot be removed)."""

    watching = False
    seen: list[str] = []  # noqa: RUF012 (one list per process, cleared per test)


def _watch(event: str, args: tuple[object, ...]) -> None:
    if _Spawned.watching and event in ("subprocess.Popen", "os.posix_spawn", "os.exec"):
        _Spawned.seen.append(f"{event} {args[:2]!r}")


sys.addaudithook(_watch)


@pytest.fixture(autouse=True)
def no_subprocess() -> Iterator[None]:
    """Every test here fails if it starts a process (a planner that quietly runs git)."""
    _Spawned.seen.clear()
    _Spawned.watching = True
    try:
        yield
    finally:
        _Spawned.watching = False
    assert not _Spawned.seen, f"a planner started a process: {_Spawned.seen}"


# --- settings: the defaults files below the environment and .env ----------------------------


def test_a_users_defaults_file_beats_the_systems_and_dotenv_beats_both() -> None:
    name = "MMLAB_DATASET_PATH"
    user, system = {name: "/user"}, {name: "/system"}
    chain = [(Source.USER_DEFAULTS, user), (Source.SYSTEM_DEFAULTS, system)]
    assert resolve(Path("/ws"), {}, {}, {}, chain)[name] == "/user"
    assert resolve(Path("/ws"), {}, {}, {}, chain[1:])[name] == "/system"
    assert resolve(Path("/ws"), {}, {}, {name: "/d"}, chain)[name] == "/d"


# --- link planning: classify on a folder tree ---------------------------------------------


def _location(tmp_path: Path) -> Location:
    project = tmp_path / "ext" / "mmdetection3d"
    project.mkdir(parents=True)
    target = tmp_path / "storage" / "mmdetection3d" / "data"
    return Location("mmdetection3d", "MMLAB_DATASET_PATH", project / "data", target)


def _quiet_git() -> Git:
    return Git(Reporter(io.StringIO(), io.StringIO()))


@pytest.mark.parametrize(
    ("shape", "state"),
    [
        ("nothing", State.ABSENT),
        ("link-to-target", State.LINKED),
        ("link-elsewhere", State.OTHER_LINK),
        ("broken-link", State.BROKEN_LINK),
    ],
)
def test_classify_names_what_stands_at_the_location(
    tmp_path: Path, shape: str, state: State
) -> None:
    location = _location(tmp_path)
    location.target.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if shape == "link-to-target":
        location.link.symlink_to(location.target)
    elif shape == "link-elsewhere":
        location.link.symlink_to(elsewhere)
    elif shape == "broken-link":
        location.link.symlink_to(tmp_path / "gone")
    plan = classify(location, _quiet_git(), Way.REFUSE)
    assert plan.state is state
    assert plan.problem == ""
    if shape != "nothing":
        assert plan.old_destination == os.readlink(location.link)


def test_classify_refuses_a_target_that_is_a_file(tmp_path: Path) -> None:
    location = _location(tmp_path)
    location.target.parent.mkdir(parents=True)
    location.target.write_bytes(b"not a folder")
    plan = classify(location, _quiet_git(), Way.ADOPT)
    assert "is not a folder" in plan.problem


def test_classify_refuses_a_target_inside_the_location(tmp_path: Path) -> None:
    location = _location(tmp_path)
    inside = location._replace(target=location.link / "nested")
    plan = classify(inside, _quiet_git(), Way.ADOPT)
    assert "inside one another" in plan.problem


# --- URL helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://github.com/o/n.git", "https://github.com/o/n"),
        ("https://github.com/o/n/", "https://github.com/o/n"),
        ("  https://github.com/o/n.git/ ", "https://github.com/o/n"),
        ("file:///srv/m/o/n.git", "file:///srv/m/o/n"),
    ],
)
def test_normal_url(url: str, normal: str) -> None:
    assert normal_url(url) == normal


def test_mirrored_rewrites_github_urls_only() -> None:
    assert mirrored(GITHUB_REPO, "file:///m/") == "file:///m/windzu/mmlab_extension.git"
    assert mirrored("https://gitlab.com/o/n.git", "file:///m/") == "https://gitlab.com/o/n.git"
    assert mirrored(GITHUB_REPO, "") == GITHUB_REPO


@pytest.mark.parametrize(
    ("parent", "url", "resolved"),
    [
        ("https://github.com/o/ext.git", "../spconv.git", "https://github.com/o/spconv.git"),
        ("https://github.com/o/ext.git", "./sub", "https://github.com/o/ext.git/sub"),
        ("https://github.com/o/ext", "../../p/q.git", "https://github.com/p/q.git"),
        ("https://github.com/o/ext", "https://x.org/y.git", "https://x.org/y.git"),
    ],
)
def test_relative_submodule_urls_resolve_as_git_does(parent: str, url: str, resolved: str) -> None:
    assert resolve_relative(parent, url) == resolved


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://github.com/Owner/name", "github.com/Owner/name.git"),
        ("https://github.com/Owner/name.git/", "github.com/Owner/name.git"),
        ("git@GitHub.com:owner/name.git", "github.com/owner/name.git"),
    ],
)
def test_the_git_cache_key_of_plain_urls(url: str, key: str) -> None:
    assert cache_key(url) == key


def test_odd_urls_get_a_hashed_cache_key_that_stays_inside_the_cache() -> None:
    for url in ("file:///srv/x.git", "https://h/../../etc.git", "/local/path/repo"):
        key = cache_key(url)
        assert key.startswith("other/") and ".." not in key.split("/"), (url, key)


# --- checkpoint file names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("pointpillars_car_20220331.pth", None),
        ("", "is empty"),
        ("..", "is '..'"),
        ("a/b.pth", "holds a '/'"),
        (".hidden.pth", "starts with '.'"),
        ("x.pth.part-0123abcd", "ends like the tool's own files"),
        ("x.pth.verified.json", "ends like the tool's own files"),
        ("bell\a.pth", "control character"),
        ("é" * 120 + ".pth", "bytes long"),
    ],
)
def test_checkpoint_name_checks(name: str, fragment: str | None) -> None:
    problem = name_problem(name)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem, problem


# --- version bounds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("2.0.0rc4", True),
        ("2.0.0rc3", False),
        ("2.1.0", True),
        ("2.2.0", False),
        ("not a version", None),
    ],
)
def test_requirement_bounds(version: str, accepted: bool | None) -> None:
    (found,) = requirement_ranges("mmcv>=2.0.0rc4,<2.2.0\n", "requirements/mminstall.txt")
    assert found.accepts(version) is accepted


def test_the_stricter_of_two_ranges_takes_the_higher_floor_and_the_lower_ceiling() -> None:
    ranges = requirement_ranges("mmcv>=2.0.0,<2.2.0\n", "a") + requirement_ranges(
        "mmcv>=2.0.0rc4,<2.1.0\n", "b"
    )
    both = stricter(ranges, "mmcv")
    assert (both.accepts("2.0.1"), both.accepts("2.0.0rc4"), both.accepts("2.1.0")) == (
        True,
        False,
        False,
    )


# --- checkpoint planning: one model against what storage holds ------------------------------


def _ckpt_settings(tmp_path: Path, mirror: str = "") -> Settings:
    flags = {"MMLAB_CHECKPOINTS_PATH": str(tmp_path / "ckpt"), "MMLAB_CHECKPOINT_MIRROR": mirror}
    return resolve(tmp_path / "ws", flags, {}, {})


WEIGHTS = "https://download.openmmlab.com/mmdetection3d/v1.0.0_models/pp/pp_20220101-3fe7e2a4.pth"


@pytest.mark.parametrize(
    ("mirror", "url", "expected"),
    [
        ("", WEIGHTS, WEIGHTS),
        ("http://m/", WEIGHTS, "http://m/mmdetection3d/v1.0.0_models/pp/pp_20220101-3fe7e2a4.pth"),
        (
            "http://m/",
            WEIGHTS.replace("https", "http"),
            "http://m/mmdetection3d/v1.0.0_models/pp/pp_20220101-3fe7e2a4.pth",
        ),
        (
            "http://m/",
            "https://download.pytorch.org/models/r50-0676ba61.pth",
            "http://m/download.pytorch.org/models/r50-0676ba61.pth",
        ),
        ("http://m/", "ftp://elsewhere/x.pth", "ftp://elsewhere/x.pth"),
    ],
)
def test_one_mirror_rule_for_models_and_config_weights(
    tmp_path: Path, mirror: str, url: str, expected: str
) -> None:
    assert source_url(_ckpt_settings(tmp_path, mirror), url) == expected


def test_plan_one_says_what_one_checkpoint_needs(tmp_path: Path) -> None:
    """Absent: download; there and recorded: nothing; there, unrecorded, matching its name:
    record it; there and not matching: refused (or recorded with --accept-mismatch)."""
    settings = _ckpt_settings(tmp_path)
    model = Model("mmdetection3d", "pp", "configs/pp.py", WEIGHTS)
    final = final_path(settings, model)
    assert final == tmp_path / "ckpt" / "mmdetection3d" / "checkpoints" / final.name
    assert plan_one(settings, model, verify=False, accept=False).action == "download"

    final.parent.mkdir(parents=True)
    final.write_bytes(b"not the published bytes")
    with pytest.raises(ModelError, match="does not match the 3fe7e2a4 its name promises"):
        plan_one(settings, model, verify=False, accept=False)
    odd = plan_one(settings, model, verify=False, accept=True)
    assert (odd.action, odd.mismatch) == ("record", True)

    digest = hashlib.sha256(b"not the published bytes").hexdigest()
    matching = Model("mmdetection3d", "pp", "c.py", WEIGHTS.replace("3fe7e2a4", digest[:8]))
    final_path(settings, matching).write_bytes(b"not the published bytes")
    planned = plan_one(settings, matching, verify=False, accept=False)
    assert (planned.action, planned.sha256) == ("record", digest)
    write_record(final_path(settings, matching), digest, planned.url)
    assert plan_one(settings, matching, verify=False, accept=False).action == "none"

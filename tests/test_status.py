"""`inv status`: healthy and each kind of broken workspace, in text and JSON; it changes nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import inv, snapshot
from .lib.gitfixture import Fixture, git


@pytest.fixture
def healthy(workspace: Path, fixture: Fixture) -> Path:
    assert inv(workspace, "bootstrap", "--repo", fixture.url()).code == 0
    return workspace


def status_json(workspace: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    run = inv(workspace, "status", "--json", env=env)
    return run.code, json.loads(run.out)


def test_healthy_workspace(healthy: Path, fixture: Fixture) -> None:
    """Exit 0, every part reported, with the documented keys; no change, no network."""
    fixture.served.rename(fixture.served.with_name("offline"))
    before = snapshot(healthy)
    code, found = status_json(healthy)
    assert code == 0
    assert set(found) == {
        "healthy", "problems", "warnings", "workspace", "variables",
        "superproject", "submodules", "links", "storage", "journal", "configs", "unknown_projects",
        "checkpoints",
    }  # fmt: skip
    assert found["healthy"] and found["problems"] == [] and found["warnings"] == []
    assert found["variables"]["MMLAB_EXTENSION_REPO"]["source"] == ".env"
    assert found["superproject"]["shallow"] and found["superproject"]["branch"] == "main"
    assert [s["path"] for s in found["submodules"]] == [
        "mmdetection", "mmdetection3d", "mmdetection3d/third_party/spconv",
    ]  # fmt: skip
    assert {link["state"] for link in found["links"]} == {"ok"}
    assert all(root["exists"] and root["writable"] for root in found["storage"])
    assert all(isinstance(root["free_bytes"], int) for root in found["storage"])
    text = inv(healthy, "status")
    assert text.code == 0 and text.lines[-1] == "workspace healthy"
    assert snapshot(healthy) == before


def not_cloned(ws: Path) -> None:
    shutil.rmtree(ws / "mmlab_extension")


def submodule_missing(ws: Path) -> None:
    git("-C", str(ws / "mmlab_extension"), "submodule", "deinit", "-q", "--force", "mmdetection")


def link_missing(ws: Path) -> None:
    (ws / "mmlab_extension/mmdetection/checkpoints").unlink()


def link_wrong(ws: Path) -> None:
    link = ws / "mmlab_extension/mmdetection/checkpoints"
    link.unlink()
    link.symlink_to(ws)


def link_broken(ws: Path) -> None:
    link = ws / "mmlab_extension/mmdetection/checkpoints"
    link.unlink()
    link.symlink_to(ws / "nowhere")


def link_blocked(ws: Path) -> None:
    link = ws / "mmlab_extension/mmdetection/checkpoints"
    link.unlink()
    (link / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (link / name).write_text(name)


def storage_missing(ws: Path) -> None:
    shutil.rmtree(ws / "mmlab_dataset")


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        (not_cloned, lambda f: not f["superproject"]["present"]),
        (submodule_missing, lambda f: not f["submodules"][0]["initialised"]),
        (link_missing, lambda f: f["links"][0]["state"] == "missing"),
        (link_wrong, lambda f: f["links"][0]["state"] == "wrong"),
        (link_broken, lambda f: f["links"][0]["state"] == "broken"),
        (
            link_blocked,
            lambda f: (f["links"][0]["state"], f["links"][0]["files"]) == ("blocked", 3),
        ),
        (storage_missing, lambda f: not f["storage"][1]["exists"]),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_each_broken_workspace_exits_non_zero(
    healthy: Path,
    breakage: Callable[[Path], None],
    check: Callable[[dict[str, Any]], bool],
) -> None:
    """Each kind of damage is named, in JSON and text, with a non-zero exit."""
    breakage(healthy)
    before = snapshot(healthy)
    code, found = status_json(healthy)
    assert code == 1
    assert not found["healthy"] and found["problems"]
    assert check(found), found
    text = inv(healthy, "status")
    assert text.code == 1
    assert text.lines[-1].endswith("problem(s); run: inv bootstrap")
    assert snapshot(healthy) == before


def test_environment_that_disagrees_with_dotenv_is_a_warning(healthy: Path) -> None:
    """A stale export in the environment is shown, with where each value came from; status
    writes it nowhere (.env keeps its own value)."""
    other = str(healthy / "elsewhere")
    before = snapshot(healthy)
    code, found = status_json(healthy, env={"MMLAB_DATASET_PATH": other})
    variable = found["variables"]["MMLAB_DATASET_PATH"]
    assert variable == {
        "value": other,
        "source": "environment",
        "environment_differs_from_dotenv": True,
    }
    assert any("MMLAB_DATASET_PATH in the environment" in w for w in found["warnings"])
    assert code == 1  # the storage root it names does not exist
    assert snapshot(healthy) == before

"""Property: whatever was at the link locations, link then unlink loses no file and no byte."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings

from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.fs.walking import walk
from mmlab_bootstrap.links.step import link_step
from mmlab_bootstrap.links.unlink import unlink_step
from mmlab_bootstrap.output.report import Reporter
from mmlab_bootstrap.run.session import Session
from mmlab_bootstrap.settings.variables import DATASET_PATH

from .conftest import git_status, scaled
from .lib.linkshapes import LINKS, SHAPES, TREES, WAYS, build


def files_under(*roots: Path) -> dict[Path, bytes | str]:
    """Files (their bytes) and symlinks inside the roots (their text), never followed."""
    found: dict[Path, bytes | str] = {}
    for root in roots:
        if root.is_symlink() or not root.exists():
            continue
        for _, _, entries in walk(root):
            for entry in entries:
                path = Path(entry.path)
                found[path] = os.readlink(path) if path.is_symlink() else path.read_bytes()
    return found


@settings(
    max_examples=scaled(12, 30),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@example(  # found in CI: a folder to adopt where the target holds a file of that name
    plain_shape="tree",
    plain_tree={"a": b"", "b/a": b""},
    extra_tracked={},
    in_target={"b": b""},
    way="adopt",
    plain_links={},
    tracked_links={},
)
@example(  # issue 10, point 8: `data/coco -> /mnt/coco` beside tracked files
    plain_shape="absent",
    plain_tree={},
    extra_tracked={},
    in_target={},
    way="adopt",
    plain_links={},
    tracked_links={"coco": "/mnt/coco"},
)
@given(
    plain_shape=SHAPES,
    plain_tree=TREES,
    extra_tracked=TREES,
    in_target=TREES,
    way=WAYS,
    plain_links=LINKS,
    tracked_links=LINKS,
)
def test_link_then_unlink_keeps_every_file(
    cloned_template: Path,
    tmp_path: Path,
    write_guard: list[str],
    plain_shape: str,
    plain_tree: dict[str, bytes],
    extra_tracked: dict[str, bytes],
    in_target: dict[str, bytes],
    way: str,
    plain_links: dict[str, str],
    tracked_links: dict[str, str],
) -> None:
    """Every file that existed before still exists, with its bytes, where the output said."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as name:
        root = Path(name)
        shutil.copytree(
            cloned_template / "mmlab_extension", root / "mmlab_extension", symlinks=True
        )
        (root / ".env").write_text(
            f"MMLAB_EXTENSION_REPO='{(cloned_template / 'served').as_uri()}/fake/x.git'\n"
        )
        ext, storage = root / "mmlab_extension", root / "mmlab_dataset"
        elsewhere = root / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "other.bin").write_bytes(b"other")
        plain, tracked = ext / "mmdetection" / "data", ext / "mmdetection3d" / "data"
        build(plain, plain_shape, plain_tree, elsewhere, plain_links)
        build(tracked, "tree", extra_tracked, elsewhere, tracked_links)
        build(
            storage / "mmdetection" / "data",
            "tree" if in_target else "absent",
            in_target,
            elsewhere,
        )
        before = files_under(plain, tracked, storage, elsewhere)
        out = io.StringIO()
        session = Session(root, report=Reporter(out, io.StringIO()), environ={})
        try:
            link_step(session, {}, DATASET_PATH, backup=way == "backup", adopt=way == "adopt")
            linked = True
        except BootstrapError:
            linked = False
            assert files_under(plain, tracked, storage, elsewhere) == before
        if linked:
            for project in ("mmdetection", "mmdetection3d"):
                assert git_status(ext / project) == "", project
            assert git_status(ext) == ""
        unlink_step(session, {}, (DATASET_PATH,))
        said = out.getvalue()
        after = files_under(plain, tracked, storage, elsewhere, *ext.glob("*/data.bak-*"))
        for path, data in before.items():
            if after.get(path) == data:
                continue
            relative = next(
                (path.relative_to(p) for p in (plain, tracked) if path.is_relative_to(p)), None
            )
            assert relative is not None, f"{path} changed"
            project = path.relative_to(ext).parts[0]
            target = storage / project / "data"
            assert after.get(target / relative) == data, f"{path} lost"
            assert str(target) in said

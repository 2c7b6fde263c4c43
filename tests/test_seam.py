"""The one seam for changes: a recorder in its place sees every change a step makes, and
`--dry` shows exactly the changes a real run then makes (they cannot drift apart).

Each case runs a step under --dry, checks that nothing changed, then runs it for real on the
same workspace: the list of changes (each as the lines --dry shows for it) must be the same.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from hypothesis import HealthCheck, given, settings

from mmlab_bootstrap.clone.step import clone_step
from mmlab_bootstrap.errors import BootstrapError
from mmlab_bootstrap.links.step import link_step
from mmlab_bootstrap.links.unlink import unlink_step
from mmlab_bootstrap.mirror.step import mirror_step
from mmlab_bootstrap.output.report import Reporter
from mmlab_bootstrap.run.changes import Changes
from mmlab_bootstrap.run.session import Session
from mmlab_bootstrap.settings.variables import CHECKPOINTS_PATH, DATASET_PATH
from mmlab_bootstrap.workspace.bootstrap import UnhealthyError, check_after
from mmlab_bootstrap.workspace.env import env_step
from mmlab_bootstrap.workspace.layout import layout_step

from .conftest import scaled, snapshot
from .lib.gitfixture import Fixture, advance
from .lib.linkshapes import LINKS, SHAPES, TREES, WAYS, build

T = TypeVar("T")


class Recorder(Changes):
    """The seam, recording each change (as the lines --dry shows for it) as it goes by."""

    def __init__(self, report: Reporter, *, dry: bool) -> None:
        super().__init__(report, dry=dry)
        self.log: list[list[str]] = []

    def make(self, would: str | Sequence[str], act: Callable[[], T]) -> T | None:
        self.log.append([would] if isinstance(would, str) else list(would))
        return super().make(would, act)


def recorded(
    root: Path, step: Callable[[Session], object], *, dry: bool
) -> tuple[list[list[str]], bool]:
    """The changes one step makes (dry: would make) in the workspace at `root`, and whether
    it refused."""
    session = Session(root, dry=dry, report=Reporter(io.StringIO(), io.StringIO()), environ={})
    recorder = Recorder(session.report, dry=dry)
    session.changes = recorder
    try:
        step(session)
    except BootstrapError:
        return recorder.log, True
    return recorder.log, False


def dry_then_real(root: Path, step: Callable[[Session], object], *watched: Path) -> list[list[str]]:
    """Run a step under --dry (nothing may change), then for real; the changes must match.
    A refusal changes nothing, after --dry showed the whole plan it refuses."""
    before = snapshot(*watched)
    shown, refused = recorded(root, step, dry=True)
    assert snapshot(*watched) == before, "--dry changed something"
    made, refused_too = recorded(root, step, dry=False)
    assert refused == refused_too
    if refused:
        assert made == [] and snapshot(*watched) == before
    else:
        assert shown == made
    return made


def test_dry_shows_every_change_of_a_fresh_setup(tmp_path: Path, cloned_template: Path) -> None:
    """env, clone, layout and both link steps on a fresh workspace: --dry shows the very
    changes the real run makes, step by step (clone included: git commands and the move)."""
    root = tmp_path / "ws"
    root.mkdir()
    repo = f"{(cloned_template / 'served').as_uri()}/fake/mmlab_extension.git"
    flags = {"MMLAB_EXTENSION_REPO": repo}
    steps: list[Callable[[Session], object]] = [
        lambda session: env_step(session, flags),
        lambda session: clone_step(session, flags, jobs=2, update=False),
        lambda session: layout_step(session, flags),
        lambda session: link_step(session, flags, CHECKPOINTS_PATH),
        lambda session: link_step(session, flags, DATASET_PATH),
        lambda session: unlink_step(session, flags, (CHECKPOINTS_PATH, DATASET_PATH)),
    ]
    counts = [len(dry_then_real(root, step, root)) for step in steps]
    assert all(counts), counts  # each step had something to do
    for step in steps[:3]:  # a second run has nothing to do, and says so the same way
        assert dry_then_real(root, step, root) == []


@settings(
    max_examples=scaled(8, 25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    plain_shape=SHAPES,
    plain_tree=TREES,
    in_target=TREES,
    way=WAYS,
    plain_links=LINKS,
)
def test_dry_shows_exactly_what_linking_and_unlinking_do(
    cloned_template: Path,
    tmp_path: Path,
    write_guard: list[str],
    plain_shape: str,
    plain_tree: dict[str, bytes],
    in_target: dict[str, bytes],
    way: str,
    plain_links: dict[str, str],
) -> None:
    """Whatever is at a link location and in its target: `--dry link-data` changes nothing
    and shows the changes `link-data` then makes; the same for `unlink` after it."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as name:
        root = Path(name)
        template = cloned_template / "mmlab_extension"
        ext = root / "mmlab_extension"
        shutil.copytree(template, ext, symlinks=True)
        (root / ".env").write_text(
            f"MMLAB_EXTENSION_REPO='{(cloned_template / 'served').as_uri()}/fake/x.git'\n"
        )
        storage, elsewhere = root / "mmlab_dataset", root / "elsewhere"
        elsewhere.mkdir()
        build(ext / "mmdetection" / "data", plain_shape, plain_tree, elsewhere, plain_links)
        build(storage / "mmdetection" / "data", "tree" if in_target else "absent", in_target,
              elsewhere)  # fmt: skip

        def link(session: Session) -> object:
            return link_step(
                session, {}, DATASET_PATH, backup=way == "backup", adopt=way == "adopt"
            )

        dry_then_real(root, link, root)
        dry_then_real(root, lambda session: unlink_step(session, {}, (DATASET_PATH,)), root)


def test_check_after_apply_fails_on_an_unhealthy_workspace(workspace: Path) -> None:
    """bootstrap's last step runs the status checks: with the superproject missing it fails,
    naming the problem; under --dry (nothing was changed) it checks nothing."""
    (workspace / ".env").write_text("MMLAB_PROJECTS='mmdetection3d'\n")
    session = Session(workspace, report=Reporter(io.StringIO(), io.StringIO()), environ={})
    try:
        check_after(session, {})
    except UnhealthyError as error:
        assert "the superproject is not cloned at" in error.message
        assert "inv status" in error.hint
    else:
        raise AssertionError("an unhealthy workspace passed the check")
    dry = Session(workspace, dry=True, report=Reporter(io.StringIO(), io.StringIO()))
    check_after(dry, {})  # nothing happened under --dry, so there is nothing to check


def test_dry_shows_every_change_of_fetch_checkpoints(tmp_path: Path) -> None:
    """fetch-checkpoints: a download, a file put there by hand that verifies (recorded), and
    one already recorded: --dry shows the very changes the real run makes; a second run
    makes none."""
    from mmlab_bootstrap.checkpoints.step import fetch_checkpoints_step

    from .lib.ckptfixture import checkpoint, random_bytes, write_index
    from .lib.httpserve import serving

    root = tmp_path / "ws"
    items = [checkpoint("mmdetection3d", f"pointpillars_{n}", random_bytes(2000)) for n in "abc"]
    write_index(root / "mmlab_extension" / "mmdetection3d", items)
    folder = root / "mmlab_checkpoints" / "mmdetection3d" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / items[1].file_name).write_bytes(items[1].data)
    with serving() as served:
        served.files = {item.path: item.data for item in items}
        flags = {"MMLAB_CHECKPOINT_MIRROR": served.url}

        def step(session: Session) -> object:
            return fetch_checkpoints_step(session, flags, [i.name for i in items])

        made = dry_then_real(root, step, root)
        assert [m[0].split()[0] for m in made] == ["record", "download"]
        assert len(made[1]) == 2  # one change fetching both missing files
        assert recorded(root, step, dry=False) == ([], False)


def test_dry_shows_every_change_of_a_mirror_update(
    workspace: Path, fixture: Fixture, tmp_path: Path
) -> None:
    """inv mirror on a mirror made before, after upstream moved on: --dry shows the very
    changes (fetches, kept commits, options) the real run then makes, one repository at a time
    (the mirror reads no `.dry` of its own: it asks the seam)."""
    dest = tmp_path / "mirror"
    flags = {"MMLAB_GIT_MIRROR": fixture.mirror, "MMLAB_EXTENSION_REPO": fixture.github_url}

    def step(session: Session) -> object:
        return mirror_step(session, flags, str(dest), all_refs=False, jobs=1)

    assert recorded(workspace, step, dry=False)[1] is False  # the mirror, made
    advance(fixture, "spconv")
    assert dry_then_real(workspace, step, dest)

"""The `mirror` step: settings -> the destination and the superproject's place -> the walk
over every repository (planned and applied one at a time, under its lock) -> the report, ending
with the line that points a workspace at the mirror."""

from __future__ import annotations

from collections.abc import Mapping

from mmlab_bootstrap.mirror.apply import Mirrorer
from mmlab_bootstrap.mirror.places import MirrorError, use_line
from mmlab_bootstrap.mirror.plan import destination, superproject
from mmlab_bootstrap.mirror.walk import Walk, failure_error
from mmlab_bootstrap.run import Counted, Session, StepResult, check_flags

HTTP_NOTE = (
    "to serve it over HTTP instead, use a smart server (git http-backend): a plain file"
    " server cannot answer the shallow, by-commit fetches of inv clone"
)


def mirror_step(
    session: Session,
    flags: Mapping[str, str | None],
    dest_given: str,
    *,
    all_refs: bool,
    jobs: int,
) -> StepResult:
    """Create or update the bare mirrors of the superproject and every submodule it records."""
    check_flags(jobs=jobs, task="mirror")
    if not dest_given:
        raise MirrorError(
            "inv mirror needs the folder of the mirror (DEST)", "run: inv mirror /shared/mirror"
        )
    counted = Counted(session)
    settings = session.settings(flags)
    dest = destination(settings, dest_given)
    root = superproject(settings, dest)
    mirrorer = Mirrorer(dest, settings.mirror, session.report, session.changes)
    walk = Walk(mirrorer, session.report, ref=settings.ref, all_refs=all_refs)
    walk.run(root, jobs)
    if walk.failed:
        raise failure_error(walk.failed, dest)
    where = session.changes.would_be("would be", "is")
    session.report.info(f"the mirror of {walk.done} repositories {where} in {dest}")
    session.report.info(f"use it in a workspace (file:// on a shared disk): {use_line(dest)}")
    session.report.info(HTTP_NOTE)
    return counted.result(settings)

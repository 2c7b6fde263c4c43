"""The `layout` task's step: the storage folders, created where they belong."""

from __future__ import annotations

from collections.abc import Mapping

from mmlab_bootstrap.run import Counted, Session, StepResult
from mmlab_bootstrap.settings import Folder, plan_layout, route_note, storage_warnings


def layout_step(session: Session, flags: Mapping[str, str | None]) -> StepResult:
    """Create the storage folders each project needs; leave existing ones alone."""
    counted = Counted(session)
    settings = session.settings(flags)
    folders: list[Folder] = plan_layout(settings)
    for warning in storage_warnings(settings):
        session.report.warn(warning)
    for folder in folders:
        if folder.exists:
            session.report.unchanged(f"exists {folder.path}{route_note(folder.path)}")
        else:
            session.changes.make_folder(folder.path, note=route_note(folder.path))
    return counted.result(settings, folders)

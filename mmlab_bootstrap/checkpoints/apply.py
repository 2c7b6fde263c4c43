"""`fetch-checkpoints`'s applier: each plan through the session's seam (`Changes.make`):
records written, credentials removed from old records, the downloads `jobs` at a time on
the one work pool, and each config's weights put where it reads them."""

from __future__ import annotations

from collections.abc import Sequence

from mmlab_bootstrap.checkpoints import store as ckptstore
from mmlab_bootstrap.checkpoints.plan import CheckpointPlan, Planned
from mmlab_bootstrap.errors import redacted
from mmlab_bootstrap.fs import denied
from mmlab_bootstrap.output import human_size
from mmlab_bootstrap.run import Session
from mmlab_bootstrap.settings import Settings

STOP_GRACE = 2.0  # seconds the downloads get to stop after a Ctrl-C


def apply_checkpoints(
    session: Session, settings: Settings, planned: Planned, *, jobs: int, accept: bool
) -> None:
    """Every change the plan holds, each through `Changes.make` (under `--dry`, shown)."""
    changes, report = session.changes, session.report
    for plan in planned.plans:
        if plan.action == "none":
            report.unchanged(f"up to date: {plan.model.label} ({plan.final})")
        elif plan.action == "record":

            def record(plan: CheckpointPlan = plan) -> None:
                odd = " (does not match its name: accepted)" if plan.mismatch else ""
                try:
                    ckptstore.write_record(plan.final, plan.sha256, plan.url)
                except PermissionError as error:  # another user's record: the file is fine
                    report.warn(
                        f"verified {plan.final}, but not recorded: {denied(error).message};"
                        " each run hashes it again"
                    )
                    return
                report.done(f"verified {plan.final} (sha256 {plan.sha256[:16]}…){odd}")

            changes.make(f"record {plan.final} as verified (sha256 {plan.sha256[:16]}…)", record)
        elif plan.action == "redact":

            def redact(plan: CheckpointPlan = plan) -> None:
                ckptstore.write_record(plan.final, plan.sha256, plan.url)  # (without it)
                report.done(f"removed the credential from the record of {plan.final}")

            changes.make(f"remove the credential from the record of {plan.final}", redact)
    downloads = [plan for plan in planned.plans if plan.action == "download"]
    if downloads:
        changes.make(
            [f"download {p.model.label} from {redacted(p.url)} to {p.final}" for p in downloads],
            lambda: download_all(session, downloads, jobs, accept),
        )
    if planned.reads:
        # startup: configs are read only when one is named
        from mmlab_bootstrap.checkpoints.weights import put_in_place

        put_in_place(session, settings, planned.reads, planned.weights)


def download_all(
    session: Session, plans: Sequence[CheckpointPlan], jobs: int, accept: bool
) -> None:
    """Every download, `jobs` at a time; the others finish when one fails, then the error of
    the first that failed (in the order of the plans)."""
    # startup: requests, urllib3 and tqdm only when something is downloaded
    from mmlab_bootstrap.checkpoints.download import download_file
    from mmlab_bootstrap.checkpoints.http import Cancelled, Job, http_session
    from mmlab_bootstrap.checkpoints.progress import Downloads
    from mmlab_bootstrap.run import WorkPool  # (status imports this module, and needs no pool)

    http = http_session(jobs)
    with Downloads(session.report, len(plans)) as shown_progress:

        def one(plan: CheckpointPlan) -> BaseException | None:
            """One download; its error is returned (the others go on), to be raised after
            the rest."""
            job = Job(plan.model.label, plan.url, plan.final, plan.model.hash_prefix, accept)
            try:
                done = download_file(http, job, shown_progress, pool.interrupted)
            except Cancelled:
                return None
            except BaseException as error:
                shown_progress.failed(job.label)
                return error
            odd = " (does not match its name: accepted)" if done.mismatch else ""
            resumed = (
                f", {human_size(done.received)} this run" if done.received != done.size else ""
            )
            shown_progress.finished(
                job.label,
                f"downloaded {job.label}: {plan.final} ({human_size(done.size)}{resumed},"
                f" sha256 {done.sha256[:16]}…){odd}",
            )
            return None

        # A Ctrl-C: every download stops at its next chunk (partials stay); one waiting on a
        # stalled server is left behind after STOP_GRACE seconds (the partial file is whole up
        # to its last write, and the next run resumes it).
        pool = WorkPool(one, jobs, grace=STOP_GRACE, name="download")
        ended = pool.run(plans)
    http.close()
    errors = [error for _, error in ended if error is not None]
    if errors:
        raise errors[0]

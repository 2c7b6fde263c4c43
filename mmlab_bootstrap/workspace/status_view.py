"""The human view of `status`: one line per thing, colored by health."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from mmlab_bootstrap.output import Reporter, human_size, write_line
from mmlab_bootstrap.run import Session
from mmlab_bootstrap.workspace.status import COUNT_LIMIT, unreachable_text, workspace_status


def print_status(session: Session, status: Mapping[str, Any]) -> None:
    """The human view of `workspace_status`: one line per thing, colored by health."""
    report = session.report
    report.info(f"workspace {status['workspace']}")
    for name, variable in status["variables"].items():
        report.unchanged(f"  {name}={variable['value']!r} ({variable['source']})", always=True)
    for warning in status["warnings"]:
        report.warn(warning)
    superproject = status["superproject"]
    if superproject["present"]:
        where = superproject["branch"] or "detached"
        shallow = "shallow" if superproject["shallow"] else "full history"
        changes = ", local changes" if superproject["local_changes"] else ""
        _line(
            report,
            superproject["same_repository"] and superproject["objects_present"],
            f"superproject {superproject['path']}: {superproject['commit'][:12]} ({where},"
            f" {shallow}{changes})",
        )
        for problem in superproject["borrowing_problems"]:
            report.problem(f"  {problem}")
        for problem in status["unknown_projects"]:
            report.problem(f"  {problem}")
    else:
        _line(report, False, f"superproject {superproject['path']}: not cloned")
    for submodule in status["submodules"]:
        state = "ok" if submodule["ready"] else (
            "its borrowed objects are gone" if not submodule["objects_present"] else
            "not initialised" if not submodule["initialised"] else
            "not at the recorded commit" if not submodule["at_recorded_commit"] else
            "not checked out"
        )  # fmt: skip
        _line(report, submodule["ready"], f"  submodule {submodule['path']}: {state}")
    for link in status["links"]:
        detail = {
            "ok": f"-> {link['destination']}",
            "missing": "no link yet",
            "wrong": f"links to {link['destination']}, not {link['target']}",
            "broken": f"broken link to {link['destination']}",
            "blocked": f"a real folder or file with {_files(link['files'])} is in the way",
        }[link["state"]]
        if link["real_target"]:
            detail += f" (the files go to {link['real_target']})"
        one_off = "" if link["in_projects"] else " (not in MMLAB_PROJECTS; recorded in the journal)"
        _line(
            report,
            link["state"] == "ok",
            f"link {link['location']}: {link['state']}, {detail}{one_off}",
        )
        if link["unreachable_tracked"]:
            report.problem(f"  {unreachable_text(link)}")
    for root in status["storage"]:
        if root["exists"]:
            free = human_size(root["free_bytes"])
            mount = ", a mount point" if root["mount_point"] else ""
            writable = "writable" if root["writable"] else "NOT writable"
            text = f"storage {root['path']}: {writable}, {free} free{mount}"
        else:
            text = f"storage {root['path']}: missing"
        _line(report, root["exists"] and root["writable"], text)
    for checkpoint in status["checkpoints"]:
        state = checkpoint["state"]
        size = f" ({human_size(checkpoint['bytes'])})" if state == "partial" else ""
        where = f": {checkpoint['path']}" if checkpoint["path"] else ""
        _line(
            report,
            state == "verified",
            f"checkpoint {checkpoint['model']}: {state}{size}{where}",
        )
    for config in status.get("configs", []):
        ready = bool(config["ready"])
        reads = f"; reads {', '.join(config['variables'])}" if config["variables"] else ""
        _line(
            report,
            ready,
            f"config {config['config']}: {'every weight in place' if ready else 'NOT ready'}"
            + reads
            + (f" (read by {config['reader']})" if config.get("reader") else ""),
        )
        for line in [*config["missing"], *(f"{v} is not set" for v in config["unknown"])]:
            report.problem(f"  {line}")
    if status["journal"]["problem"]:
        report.problem(status["journal"]["problem"])
    if status["healthy"]:
        report.done("workspace healthy")
    else:
        report.problem(f"workspace: {len(status['problems'])} problem(s); run: inv bootstrap")


def print_answer(report: Reporter, found: Mapping[str, Any], healthy: str) -> None:
    """`--quiet`: only the problems, one line each; else the one line `healthy`."""
    if found["healthy"]:
        report.done(healthy)
    for problem in found["problems"]:
        report.problem(problem)


def _files(count: int | None) -> str:
    return f"{count}+ files" if count == COUNT_LIMIT else f"{count} file(s)"


def _line(report: Reporter, ok: bool, text: str) -> None:
    if ok:
        report.unchanged(f"ok {text}", always=True)
    else:
        report.problem(text)


def status_step(session: Session, *, as_json: bool, quiet: bool = False) -> bool:
    """Show the workspace (or print it as one JSON document, or only its problems); whether
    it is healthy."""
    envfile = session.read_env()
    settings = session.settings({}, envfile)
    found = workspace_status(session, settings, envfile.values())
    if as_json:
        write_line(sys.stdout, json.dumps(found, indent=2))
    elif quiet:
        print_answer(session.report, found, "workspace healthy")
    else:
        print_status(session, found)
    return bool(found["healthy"])

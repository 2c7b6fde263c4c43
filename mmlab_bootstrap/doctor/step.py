"""`inv doctor`: is this workspace ready to train? `status`'s checks, then the datasets under
each project's `data` link and the Python environment that trains. It changes nothing, needs
no network and runs no model code."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmlab_bootstrap.doctor.datasets import check_data
from mmlab_bootstrap.links import locations
from mmlab_bootstrap.output import ERROR, INFO, OK, WARNING, Finding, write_line
from mmlab_bootstrap.pythonenv import python_section
from mmlab_bootstrap.run import Session
from mmlab_bootstrap.settings import DATASET_PATH, Settings
from mmlab_bootstrap.workspace import print_answer, print_status, workspace_status


def doctor_report(
    session: Session, settings: Settings, dotenv: Mapping[str, str], python: str | None
) -> dict[str, Any]:
    """Everything `inv doctor` shows, as plain data (the `--json` document)."""
    # The interpreter first: a `--python` that is none is an error before anything is shown.
    # Without one, the environment `inv python-env` made, once there is one.
    if python is None:
        # startup: the environment builder (uv, packaging) only when no --python names one
        from mmlab_bootstrap.pythonenv import workspace_python

        python = workspace_python(settings)
    # (a wait for the interpreter or nvcc is said on stderr: stdout may be the JSON document)
    python_info, python_findings = python_section(
        settings.extension_path, settings.projects, python, session.environ, session.report.note
    )
    status = workspace_status(session, settings, dotenv)
    data_sections: list[dict[str, Any]] = []
    data_findings: list[Finding] = []
    for location in locations(settings, DATASET_PATH):
        if not _looked_under(location.link):
            continue  # status names a missing or broken link
        info, found = check_data(location.link, location.project_dir, settings.dataset_path)
        data_sections.append({"project": location.project, **info})
        data_findings += found
    findings = [f.as_json("datasets") for f in data_findings]
    findings += [f.as_json("python") for f in python_findings]
    every = data_findings + python_findings
    # startup: verify's record is read only for the report's last section
    from mmlab_bootstrap.pythonenv import doctor_section

    verified, verify_problems = doctor_section(session.root)
    problems = list(status["problems"]) + [_text(f) for f in every if f.level == ERROR]
    problems += verify_problems
    warnings = list(status["warnings"]) + [_text(f) for f in every if f.level == WARNING]
    return {
        "healthy": not problems,
        "problems": problems,
        "warnings": warnings,
        "status": status,
        "datasets": data_sections,
        "python": python_info,
        "findings": findings,
        "verify": verified,
    }


def _looked_under(link: Path) -> bool:
    """Whether the datasets under a `data` link are checked: not when the link is missing,
    dangling or no folder (status names it); yes when it cannot be told (the check says why)."""
    try:
        return stat.S_ISDIR(os.stat(link).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True


def _text(finding: Finding) -> str:
    """A finding as one line: what is wrong, and the hint that fixes it."""
    return f"{finding.line}; hint: {finding.hint}" if finding.hint else finding.line


def doctor_step(
    session: Session, *, as_json: bool, python: str | None, quiet: bool = False
) -> bool:
    """Show the workspace's readiness (or print it as one JSON document, or only its
    problems); whether it is ready."""
    envfile = session.read_env()
    settings = session.settings({}, envfile)
    found = doctor_report(session, settings, envfile.values(), python)
    if as_json:
        write_line(sys.stdout, json.dumps(found, indent=2))
        return bool(found["healthy"])
    if quiet:
        print_answer(session.report, found, "ready to train")
        return bool(found["healthy"])
    print_status(session, found["status"])
    report = session.report
    python_info = found["python"]
    version = f" (Python {python_info['version']})" if python_info["version"] else ""
    sections = (
        ("datasets", "datasets:"),
        ("python", f"python {python_info['interpreter']}{version}:"),
    )
    for section, title in sections:
        report.info(title)
        for finding in found["findings"]:
            if finding["section"] != section:
                continue
            shown = Finding(
                finding["level"], finding["subject"], finding["text"], finding["hint"] or ""
            )
            if shown.level == OK:
                report.unchanged(f"  ok {shown.line}", always=True)
            elif shown.level == INFO:
                report.info(f"  {_text(shown)}")
            elif shown.level == WARNING:
                report.warn(_text(shown))
            else:
                report.problem(f"  {_text(shown)}")
    if found["healthy"]:
        report.done("ready to train")
    else:
        report.problem(f"doctor: {len(found['problems'])} problem(s), each with its hint above")
    return bool(found["healthy"])

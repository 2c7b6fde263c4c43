"""Look at the whole workspace without changing anything or touching the network."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mmlab_bootstrap.checkpoints import checkpoints_status
from mmlab_bootstrap.clone import same_repository
from mmlab_bootstrap.errors import BootstrapError, redacted
from mmlab_bootstrap.fs import walk
from mmlab_bootstrap.git import Git, look_at, origin_url, sparse_checkout, submodule_states
from mmlab_bootstrap.gitcache import borrowing_problems
from mmlab_bootstrap.links import (
    Journal,
    JournalError,
    Location,
    State,
    check_projects,
    files_of_user,
    first_look,
    git_names,
    locations,
    recorded_locations,
    skipped_files,
)
from mmlab_bootstrap.output import some_names
from mmlab_bootstrap.run import STATE_FILE, Session
from mmlab_bootstrap.settings import (
    CHECKPOINTS_PATH,
    DATASET_PATH,
    LEAVES,
    VARIABLES,
    Settings,
    device_warning,
    differs,
    override_warnings,
    route,
    storage_warnings,
)

# Counting the files of a folder that blocks a link stops here: it may hold a dataset.
COUNT_LIMIT = 10_000


def workspace_status(
    session: Session, settings: Settings, dotenv: Mapping[str, str], *, details: bool = True
) -> dict[str, Any]:
    """Everything `inv status` shows, as plain data (the `--json` document). Without
    `details`, what only informs (local changes in the superproject) is not looked at."""
    git = Git(session.report, mirror=settings.mirror, answers=session.changes.answers)
    variables, warnings = _variables(settings, session.overrides(session.read_env()), dotenv)
    superproject, submodules = _repository(git, settings, details=details)
    journal, recorded = _journal(session.root)
    links = [
        _link(git, location, recorded.get(str(location.link), {}))
        for variable in LEAVES
        for location in locations(settings, variable)
    ] + [
        _link(git, location, recorded[str(location.link)], in_projects=False)
        for location in recorded_locations(settings, tuple(LEAVES), recorded)
    ]
    warnings += storage_warnings(settings)
    warnings += [link["moved"] for link in links if link["moved"]]
    storage = [_storage(settings, variable) for variable in (CHECKPOINTS_PATH, DATASET_PATH)]
    checkpoints, checkpoint_warnings = _checkpoints(settings)
    warnings += checkpoint_warnings
    problems = []
    if journal["problem"]:  # every link task and unlink would stop at it
        problems.append(journal["problem"])
    if not superproject["present"]:
        problems.append(f"the superproject is not cloned at {superproject['path']}")
    elif not superproject["same_repository"]:
        problems.append(f"{superproject['path']} is a clone of another repository")
    if superproject["present"]:
        problems += superproject["borrowing_problems"]
    unknown_projects = _unknown_projects(settings) if superproject["present"] else []
    problems += unknown_projects
    problems += [
        f"submodule {s['path']} is not complete"
        for s in submodules
        if not s["ready"] and s["objects_present"]  # (else said above)
    ]
    problems += [
        f"{link['location']} is {link['state']}" + _one_off(link) + _old_data_note(link)
        for link in links
        if link["state"] != "ok"
    ]
    problems += [unreachable_text(link) for link in links if link["unreachable_tracked"]]
    problems += [
        f"storage root {root['path']} is {'not writable' if root['exists'] else 'missing'}"
        for root in storage
        if not (root["exists"] and root["writable"])
    ]
    configs, config_problems = _configs(settings, session.report.note)
    problems += config_problems
    problems += [
        f"checkpoint {c['model']} is {c['state']}"
        + (" (not in the model index)" if c["state"] == "unknown" else "")
        for c in checkpoints
        if c["state"] != "verified"
    ]
    warnings += [
        f"{left['path']} still holds {_count_text(left['files'])} of yours, left there by a"
        f" relink of {link['location']} with --leave-data (a note, not a problem: move or"
        " delete them when you wish)"
        for link in links
        for left in link["data_left_in"]
    ]
    return {
        "healthy": not problems,
        "problems": problems,
        "unknown_projects": unknown_projects,
        "warnings": warnings,
        "workspace": str(session.root),
        "variables": variables,
        "superproject": superproject,
        "submodules": submodules,
        "links": links,
        "storage": storage,
        "journal": journal,
        "checkpoints": checkpoints,
        "configs": configs,
    }


def _configs(
    settings: Settings, say: Callable[[str], None]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each config MMLAB_CHECKPOINTS names: its weights in place, the variables it reads."""
    if not any(name.endswith(".py") for name in settings.checkpoint_models):
        return [], []
    # startup: status imports config reading only when MMLAB_CHECKPOINTS names models
    from mmlab_bootstrap.checkpoints import configs_status

    return configs_status(settings, training_python(settings), say)


def training_python(settings: Settings) -> str | None:
    """The training interpreter `inv python-env` made (its loader reads the configs), or
    None."""
    # startup: the environment builder (packaging) only when a config is read
    from mmlab_bootstrap.pythonenv import workspace_python

    return workspace_python(settings)


def _checkpoints(settings: Settings) -> tuple[list[dict[str, Any]], list[str]]:
    """Each model MMLAB_CHECKPOINTS names and its file's state (no network, no hashing), and
    what was refused or ignored on the way."""
    if not settings.checkpoint_models:
        return [], []
    return checkpoints_status(settings)


def _journal(root: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The journal's path, and why the link tasks would refuse it (None when they would not);
    the links it records (none when it is refused)."""
    try:
        journal = Journal(root)  # reads and checks it; changes nothing
    except JournalError as error:
        return {"path": str(root / STATE_FILE), "problem": error.message}, {}
    return {"path": str(root / STATE_FILE), "problem": None}, journal.links


def _old_data_note(link: Mapping[str, Any]) -> str:
    """What a relink must decide about the user's files in the old target."""
    old = link["data_in_old_target"]
    if old is None:
        return ""
    return (
        f" (its old target {old['path']} holds {_count_text(old['files'])} of yours: a relink"
        " takes them along with --move-data, or leaves them with --leave-data)"
    )


def _one_off(link: Mapping[str, Any]) -> str:
    """What fixes a link the journal records outside the project list (bootstrap does not)."""
    if link["in_projects"]:
        return ""
    return (
        f" (recorded in the journal, not in MMLAB_PROJECTS: inv link-{link['kind']} --projects"
        f" {link['project']} links it, inv unlink --{link['kind']} removes it)"
    )


def _variables(
    settings: Settings, environ: Mapping[str, str], dotenv: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    variables = {}
    for variable in VARIABLES:
        value = settings.values[variable.name]
        variables[variable.name] = {
            "value": redacted(value.value),  # a mirror's credential is never shown
            "source": value.source.label,
            "environment_differs_from_dotenv": differs(variable.name, environ, dotenv),
        }
    return variables, override_warnings(settings, environ, dotenv)


def _repository(
    git: Git, settings: Settings, *, details: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    path = settings.extension_path
    facts = look_at(git, path)
    info: dict[str, Any] = {"path": str(path), "present": facts.toplevel}
    if not facts.toplevel:
        return info, []
    origin = origin_url(git, path)
    borrowed = borrowing_problems(git, path)
    info |= {
        "origin": redacted(origin),
        "same_repository": same_repository(origin, settings),
        "commit": facts.head,
        "branch": facts.branch or None,
        "detached": not facts.branch,
        "shallow": facts.shallow,
        "objects_present": "." not in borrowed,  # (its borrowed objects are not gone)
        "borrowing_problems": list(borrowed.values()),
        # -z and bytes: names are never decoded strictly (core.quotePath=false prints them raw)
        "local_changes": details
        and bool(git_names(git, ["status", "--porcelain", "-z", "--ignore-submodules=all"], path)),
    }
    submodules = []
    for entry in submodule_states(git, path):
        checked_out = entry.flag != "-" and bool(entry.checked_out)
        objects = entry.path not in borrowed  # (its borrowed objects are not gone)
        submodules.append(
            {
                "path": entry.path,
                "initialised": entry.flag != "-",
                "at_recorded_commit": entry.flag == " ",
                "checked_out": checked_out,
                "objects_present": objects,
                "ready": entry.flag == " " and checked_out and objects,
            }
        )
    return info, submodules


# The planner's states (`linkplan.State`) as `status` names them in its JSON.
STATE_NAMES = {
    State.ABSENT: "missing",
    State.LINKED: "ok",
    State.OTHER_LINK: "wrong",
    State.BROKEN_LINK: "broken",
}


def _link(
    git: Git, location: Location, recorded: Mapping[str, Any], *, in_projects: bool = True
) -> dict[str, Any]:
    """One location as the link planner sees it (its first look, which reads no folder),
    with a bounded count of the files of whatever blocks it; where its files really go
    when a symlink in the storage root leads elsewhere, whether its target moved to
    another filesystem since it was linked, and earlier targets that `--leave-data` left
    holding the user's files."""
    link, target = location.link, location.target
    way = route(target)
    info: dict[str, Any] = {
        "project": location.project,
        "kind": location.leaf,
        "location": str(link),
        "target": str(target),
        "real_target": str(way.real) if way.links else None,
        "moved": device_warning(target, recorded),
        "in_projects": in_projects,
        "destination": None,
        "files": None,
        "unreachable_tracked": _unreachable_tracked(git, location),
        "data_left_in": _data_left_in(recorded, target),
        "data_in_old_target": None,
    }
    seen = first_look(location)
    if seen is None:  # a real folder or file: the planner would take its inventory
        info["state"] = "blocked"
        info["files"] = _count_files(link)
        return info
    if seen.old_destination:
        info["destination"] = seen.old_destination
    info["state"] = STATE_NAMES[seen.state]
    if seen.state is State.LINKED and not target.is_dir():
        info["state"] = "broken"
    if info["state"] != "ok":  # a relink is due: does the old target hold the user's files?
        info["data_in_old_target"] = _data_in_old_target(recorded, target)
    return info


def _data_in_old_target(recorded: Mapping[str, Any], target: Path) -> dict[str, Any] | None:
    """The target the journal records (or a killed `--move-data` was emptying), when it is not
    the target now and holds the user's files (a bounded count): the relink will refuse."""
    ours = set(recorded.get("adopted_tracked") or [])
    for key in ("moving_from", "target"):
        path = recorded.get(key)
        if not isinstance(path, str) or os.path.realpath(path) == os.path.realpath(target):
            continue
        if Path(path).is_dir():
            files, _, specials = files_of_user(Path(path), target.name, ours, COUNT_LIMIT)
            if files or specials:
                return {"path": path, "files": len(files) + len(specials)}
    return None


def _data_left_in(recorded: Mapping[str, Any], target: Path) -> list[dict[str, Any]]:
    """Old targets a relink with `--leave-data` left holding files, that still hold some (a
    bounded count), other than the target now: a note, since the user chose to leave them."""
    found = []
    for path in recorded.get("left_data_in") or []:
        old = Path(path)
        if os.path.realpath(old) == os.path.realpath(target) or not old.is_dir():
            continue
        ours = set(recorded.get("adopted_tracked") or [])  # (copies a carry left behind)
        files, _, specials = files_of_user(old, target.name, ours, COUNT_LIMIT)
        count = len(files) + len(specials)
        if count:
            found.append({"path": path, "files": count})
    return found


def _unreachable_tracked(git: Git, location: Location) -> list[str]:
    """Tracked files git skips (adopted into storage) that the location does not reach: git
    status stays clean about them, so only this shows they are gone. Under sparse checkout
    git skips files by design, and status does not tell them apart (it reads no journal)."""
    if not location.project_dir.is_dir():
        return []
    skipped = skipped_files(git, location)
    if not skipped or sparse_checkout(git, location.project_dir):
        return []
    return [path for path in skipped if not os.path.lexists(location.project_dir / path)]


def _count_text(count: int) -> str:
    return f"{count}+ file(s)" if count == COUNT_LIMIT else f"{count} file(s)"


def _count_files(path: Path) -> int:
    if not path.is_dir():
        return 1
    count = 0
    for _, _, files in walk(path):  # symlinks and special files count too; any depth
        count += len(files)
        if count >= COUNT_LIMIT:
            return COUNT_LIMIT
    return count


def _storage(settings: Settings, variable: str) -> dict[str, Any]:
    root = Path(settings[variable])
    exists = root.is_dir()
    free = shutil.disk_usage(root).free if exists else None
    return {
        "variable": variable,
        "path": str(root),
        "exists": exists,
        "writable": exists and os.access(root, os.W_OK | os.X_OK),
        "free_bytes": free,
        "mount_point": exists and os.path.ismount(root),
    }


def unreachable_text(link: Mapping[str, Any]) -> str:
    """The problem of tracked files (skip-worktree) that a link location does not reach."""
    names = link["unreachable_tracked"]
    return (
        f"{link['location']}: {len(names)} tracked file(s) git skips (adopted into storage)"
        f" are not reachable through it: {some_names(names)}"
    )


def _unknown_projects(settings: Settings) -> list[str]:
    """A project of MMLAB_PROJECTS the superproject has no folder for, with the closest name
    (`did you mean`), as bootstrap and the link tasks say it."""
    try:
        check_projects(settings)
    except BootstrapError as error:
        return [f"{error.message} ({error.hint})"]
    return []

"""What linking changed, per link location, so that `unlink` can put back exactly that.

Kept in `.mmlab-bootstrap-state.json` beside `.env`, rewritten atomically before each change
(so a killed run leaves a record of what it was about to do) and after it. The file is never
followed through a symlink, and it is checked as a whole when it is read: anything the tool
would not have written (wrong types, a backup that is not `<leaf>.bak-…` beside its location,
a path that climbs out with `..`) makes it "damaged", before anything moves.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from mmlab_bootstrap.errors import BootstrapError, shown
from mmlab_bootstrap.fs import FileRefused, read_regular, write_atomically
from mmlab_bootstrap.run import STATE_FILE, Session
from mmlab_bootstrap.settings import LEAVES

VERSION = 1


class JournalError(BootstrapError):
    """The state file cannot be read, or holds what the tool would never have written."""


class Damage(Exception):
    """One thing wrong in the journal (turned into a JournalError naming the file)."""


class Journal:
    """Entries keyed by link location. It is written only from inside changes being made
    (see `changes.Changes`), so never under --dry."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_FILE
        self.links: dict[str, dict[str, Any]] = {}
        aside = f"mv '{self.path}' '{self.path}.damaged'"
        try:
            data = read_regular(
                self.path, f"move it aside ({aside}), then run the same command again", own=True
            )
        except FileRefused as error:
            raise JournalError(f"the journal: {error.message}", error.hint) from None
        if data is None:
            return
        try:
            self.links = validated(json.loads(data.decode("utf-8")))
        except (ValueError, Damage) as error:
            raise JournalError(
                f"damaged journal {shown(str(self.path))}: {error}",
                f"move it aside ({aside}); unlink then finds backups by their names and"
                " restores tracked files with git",
            ) from None

    def entry(self, link: Path) -> dict[str, Any]:
        """What is recorded for a location (empty when nothing is)."""
        return dict(self.links.get(str(link), {}))

    def record(self, link: Path, **fields: Any) -> None:
        """Add facts about a location, and save them before going on."""
        entry = {**self.links.get(str(link), {}), **fields}
        try:
            check_entry(str(link), entry)
        except Damage as error:  # the tool itself never records such a thing
            raise JournalError(
                f"refusing to record {error} in {shown(str(self.path))}",
                "this is a bug in mmlab-bootstrap; please report it",
            ) from None
        self.links[str(link)] = entry
        self._save()

    def forget(self, link: Path) -> None:
        """Drop a location once unlink has put everything back."""
        if self.links.pop(str(link), None) is not None:
            self._save()

    def _save(self) -> None:
        text = json.dumps({"version": VERSION, "links": self.links}, indent=2, sort_keys=True)
        try:
            write_atomically(self.path, text + "\n", own=True)
        except FileRefused as error:
            raise JournalError(f"the journal: {error.message}", error.hint) from None


def validated(document: object) -> dict[str, dict[str, Any]]:
    """The journal's entries, once every one of them is something the tool would write."""
    if not isinstance(document, dict):
        raise Damage(f"it holds {_type(document)}, not an object")
    unknown = sorted(set(document) - {"version", "links"})
    if unknown:
        raise Damage(f"unknown key {shown(unknown[0])}")
    if document.get("version") != VERSION:
        raise Damage(f"version {shown(str(document.get('version')))}, not {VERSION}")
    links = document.get("links")
    if not isinstance(links, dict):
        raise Damage(f"'links' holds {_type(links)}, not an object")
    for link, entry in links.items():
        check_entry(link, entry)
    return {link: dict(entry) for link, entry in links.items()}


def check_entry(link: str, entry: object) -> None:
    """Raise Damage unless `entry` is what linking records for the location `link`."""
    location = _clean_absolute(link, "a link location")
    if location.name not in LEAVES.values() or len(location.parts) < 4:
        raise Damage(f"{shown(link)} is not a <extension>/<project>/checkpoints|data location")
    if not isinstance(entry, dict):
        raise Damage(f"the entry for {shown(link)} holds {_type(entry)}, not an object")
    for field, value in entry.items():
        check = _FIELDS.get(field)
        if check is None:
            raise Damage(f"the entry for {shown(link)} has an unknown field {shown(field)}")
        try:
            check(location, value, entry)
        except Damage as error:
            raise Damage(f"{shown(link)}: {field} {error}") from None


def _type(value: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise Damage(f"holds {_type(value)}, not a string")
    if not value or "\0" in value:
        raise Damage("is empty or holds a NUL character")
    return value


def _clean_absolute(value: object, what: str) -> PurePosixPath:
    text = _string(value)
    path = PurePosixPath(text)
    if not path.is_absolute() or ".." in path.parts or os.path.normpath(text) != text:
        raise Damage(f"{shown(text)} is not {what} (absolute, without '..')")
    return path


def _target(location: PurePosixPath, value: object, _: dict[str, Any]) -> None:
    target = _clean_absolute(value, "a storage folder")
    extension = location.parent.parent
    if target.name != location.name or target.parent.name != location.parent.name:
        raise Damage(
            f"{shown(str(target))} is not <storage root>/{location.parent.name}/{location.name}"
        )
    if target == extension or extension in target.parents or target in location.parents:
        raise Damage(f"{shown(str(target))} lies inside the extension or contains it")


def _old_target(location: PurePosixPath, value: object, entry: dict[str, Any]) -> None:
    if value is not None:  # null once the move it names is done
        _target(location, value, entry)


def _targets(location: PurePosixPath, value: object, entry: dict[str, Any]) -> None:
    if not isinstance(value, list):
        raise Damage(f"holds {_type(value)}, not a list")
    for item in value:
        _target(location, item, entry)


def _text(_: PurePosixPath, value: object, __: dict[str, Any]) -> None:
    """What is only shown, never acted on (the link's text, the state found)."""
    _string(value)


def _previous_link(_: PurePosixPath, value: object, __: dict[str, Any]) -> None:
    if value is not None:  # unlink puts this link back: any text a symlink may hold
        _string(value)


def _backup(location: PurePosixPath, value: object, _: dict[str, Any]) -> None:
    backup = _clean_absolute(value, "a backup folder")
    pattern = re.escape(location.name) + r"\.bak-[0-9]{8}-[0-9]{6}(?:-[0-9]+)?"
    if backup.parent != location.parent or not re.fullmatch(pattern, backup.name, re.ASCII):
        raise Damage(
            f"{shown(str(backup))} is not a {location.name}.bak-<timestamp> folder beside"
            f" {shown(str(location))}"
        )


def _relative_paths(location: PurePosixPath, value: object, _: dict[str, Any]) -> None:
    if not isinstance(value, list):
        raise Damage(f"holds {_type(value)}, not a list")
    for item in value:
        text = _string(item)
        path = PurePosixPath(text)
        if (
            path.is_absolute()
            or ".." in path.parts
            or os.path.normpath(text) != text
            or len(path.parts) < 2
            or path.parts[0] != location.name
        ):
            raise Damage(f"{shown(text)} is not a path under {location.name}/ (without '..')")


def _device(_: PurePosixPath, value: object, __: dict[str, Any]) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Damage(f"holds {_type(value)}, not a device number")


def _flag(_: PurePosixPath, value: object, __: dict[str, Any]) -> None:
    if not isinstance(value, bool):
        raise Damage(f"holds {_type(value)}, not true/false")


_FIELDS: dict[str, Callable[[PurePosixPath, object, dict[str, Any]], None]] = {
    "target": _target,
    "destination": _text,
    "found": _text,
    "previous_link": _previous_link,
    "adopted_tracked": _relative_paths,
    "backup": _backup,
    "adopted_into": _target,  # the target at the time: a later relink records a new target
    "adopted": _relative_paths,
    "linked": _flag,
    "excluded": _flag,  # linking put the block in `.git/info/exclude` (it was needed)
    "device": _device,  # the target's filesystem (st_dev) when linked (absent in older ones)
    # A relink with --move-data: the old target whose data is being moved into the new one
    # (set before the first file moves, null once all have); a killed run's successor goes on.
    "moving_from": _old_target,
    "left_data_in": _targets,  # old targets a relink with --leave-data left holding data
}


def journal_of(session: Session) -> Journal:
    """The run's journal: read once per run, shared by the link steps of a chain."""
    journal = session.shared.get("journal")
    if not isinstance(journal, Journal):
        journal = session.shared["journal"] = Journal(session.root)
    return journal

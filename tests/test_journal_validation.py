"""A tampered or damaged journal is refused as a whole before `unlink` (or linking) moves
anything: one `damaged journal` error with a hint, and every file where it was."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cloned, assert_clean_error, inv, snapshot

STATE = ".mmlab-bootstrap-state.json"
Document = Any
Tamper = Callable[[Document, dict[str, str]], Document]


def _set(key: str, field: str, value: Callable[[dict[str, str]], object]) -> Tamper:
    def tamper(document: Document, where: dict[str, str]) -> Document:
        document["links"][where[key]][field] = value(where)
        return document

    return tamper


def _rename_key(document: Document, where: dict[str, str]) -> Document:
    entry = document["links"].pop(where["data"])
    document["links"]["mmlab_extension/mmdetection/data"] = entry
    return document


def _replace(value: object) -> Tamper:
    return lambda document, where: value


TAMPERED: list[tuple[str, Tamper]] = [
    ("backup naming a folder outside", _set("data", "backup", lambda w: w["outside"])),
    ("backup naming a sibling that is no backup", _set("data", "backup", lambda w: w["sibling"])),
    (
        "backup with a non-ASCII digit",
        _set("data", "backup", lambda w: w["data"] + ".bak-20240101-000000-\u00b2"),
    ),
    (
        "backup beside another location",
        _set("data", "backup", lambda w: w["data3"] + ".bak-20240101-000000"),
    ),
    ("backup holding a list", _set("data", "backup", lambda w: [w["outside"]])),
    (
        "adopted path climbing out with ..",
        _set("data3", "adopted_tracked", lambda w: ["data/../../../../victim.txt"]),
    ),
    ("adopted path that is absolute", _set("data3", "adopted_tracked", lambda w: ["/etc/passwd"])),
    ("adopted path outside the leaf", _set("data3", "adopted_tracked", lambda w: ["setup.py"])),
    (
        "adopted paths as a string",
        _set("data3", "adopted_tracked", lambda w: "data/lyft/train.txt"),
    ),
    ("adopted path as a number", _set("data3", "adopted_tracked", lambda w: [7])),
    ("moved files climbing out", _set("data", "adopted", lambda w: ["data/../../x"])),
    ("target with ..", _set("data3", "target", lambda w: w["target3"] + "/../../../etc/data")),
    ("target inside the extension", _set("data3", "target", lambda w: w["data"])),
    ("target that is relative", _set("data3", "target", lambda w: "mmlab_dataset/x/data")),
    ("target of another project", _set("data3", "target", lambda w: w["target"])),
    ("target holding an object", _set("data3", "target", lambda w: {"path": "/"})),
    ("destination holding a number", _set("data3", "destination", lambda w: 3)),
    ("linked holding a string", _set("data3", "linked", lambda w: "yes")),
    ("found holding a list", _set("data3", "found", lambda w: ["user data"])),
    ("previous link holding a number", _set("data3", "previous_link", lambda w: 5)),
    ("an unknown field", _set("data3", "command", lambda w: "rm -rf /")),
    ("a relative location", _rename_key),
    ("an entry that is a string", lambda d, w: {**d, "links": {w["data3"]: "linked"}}),
    ("links holding a list", lambda d, w: {**d, "links": [w["data3"]]}),
    ("a list instead of an object", _replace([])),
    ("another version", lambda d, w: {**d, "version": 2}),
    ("an unknown top-level key", lambda d, w: {**d, "extra": 1}),
]


def test_tampered_journals_are_refused_before_anything_moves(
    cloned: Cloned, tmp_path: Path
) -> None:
    """Each tampered journal: `inv unlink` (and `inv link-data`) stop with one clean error
    naming the damaged journal, and nothing in the workspace, storage or elsewhere changes."""
    mine = cloned.ext / "mmdetection" / "data"
    mine.mkdir()
    (mine / "mine.bin").write_bytes(b"my data")
    assert inv(cloned.root, "link-data", "--backup").code == 0
    outside = tmp_path / "outside" / "data.bak-20240101-000000"
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text("not the workspace's")
    journal = cloned.root / STATE
    good = json.loads(journal.read_text())
    where = {
        "data": str(mine),
        "data3": str(cloned.ext / "mmdetection3d" / "data"),
        "target": str(cloned.data / "mmdetection" / "data"),
        "target3": str(cloned.data / "mmdetection3d" / "data"),
        "outside": str(outside),
        "sibling": str(cloned.ext / "mmdetection" / "checkpoints"),
    }
    assert set(good["links"]) == {where["data"], where["data3"]}
    failures = []
    for name, tamper in TAMPERED:
        text = json.dumps(tamper(copy.deepcopy(good), where), indent=2)
        journal.write_text(text)
        before = snapshot(cloned.ext, cloned.data, cloned.ckpt, tmp_path / "outside")
        for task in (["unlink"], ["link-data"]):
            run = inv(cloned.root, *task)
            try:
                assert_clean_error(run, "damaged journal")
                assert f"mv '{journal}'" in run.err
                after = snapshot(cloned.ext, cloned.data, cloned.ckpt, tmp_path / "outside")
                assert after == before, "something changed"
                assert journal.read_text() == text, "the journal changed"
            except AssertionError as error:
                failures.append(f"{name} ({task[0]}): {error}")
    assert not failures, "\n".join(failures)
    journal.write_text(json.dumps(good))
    run = inv(cloned.root, "unlink")  # the untouched journal still works
    assert run.code == 0, run.err
    assert (mine / "mine.bin").read_bytes() == b"my data"
    assert (outside / "secret.txt").exists()


@pytest.mark.parametrize("text", ["", "{", "null", '"links"', "[1, 2]", "\udcff"])
def test_unreadable_journal_text_is_damaged(cloned: Cloned, text: str) -> None:
    """Text that is not a journal at all gets the same clean error."""
    (cloned.root / STATE).write_bytes(text.encode("utf-8", "surrogateescape"))
    assert_clean_error(inv(cloned.root, "unlink"), "damaged journal")


def test_what_linking_records_passes_the_check(cloned: Cloned) -> None:
    """Every way of linking writes a journal the check accepts (relative links included)."""
    from mmlab_bootstrap.links.journal import Damage, validated

    mine = cloned.ext / "mmdetection" / "data"
    mine.mkdir()
    (mine / "mine.bin").write_bytes(b"my data")
    elsewhere = cloned.root / "elsewhere"
    elsewhere.mkdir()
    (cloned.ext / "mmdetection3d" / "checkpoints").symlink_to(elsewhere)
    assert inv(cloned.root, "link-data", "--adopt", "--relative").code == 0
    assert inv(cloned.root, "link-checkpoints").code == 0
    document = json.loads((cloned.root / STATE).read_text())
    assert len(validated(document)) == 4
    with pytest.raises(Damage):
        validated({**document, "links": {"/a/b/c/data": {"backup": "/a/b/c/data.bak-x"}}})
    assert inv(cloned.root, "unlink").code == 0


def test_a_relink_to_a_new_root_after_adopt_keeps_a_valid_journal(
    cloned: Cloned, tmp_path: Path
) -> None:
    """The journal of an `--adopt`, then a relink to another storage root, still passes the
    check: linking, status and unlink go on working."""
    mine = cloned.ext / "mmdetection" / "data"
    mine.mkdir()
    (mine / "mine.bin").write_bytes(b"my data")
    assert inv(cloned.root, "link-data", "--adopt").code == 0
    # (the adopted file is the user's: the relink leaves it, as asked, in the old root)
    run = inv(
        cloned.root, "link-data", "--leave-data", "--dataset-path", str(tmp_path / "new-root")
    )
    assert run.code == 0, run.err
    run = inv(cloned.root, "unlink", "--dataset-path", str(tmp_path / "new-root"))
    assert run.code == 0, run.err
    assert (cloned.data / "mmdetection" / "data" / "mine.bin").read_bytes() == b"my data"

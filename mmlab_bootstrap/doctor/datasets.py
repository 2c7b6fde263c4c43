"""The datasets under a project's `data` link: KITTI, nuScenes and COCO recognised by their
folder and checked against the layout the sub-projects' documentation describes.

Only bounded reads, each through one `datascan.Scan` (what cannot be read is a finding, never
the end of the check): a folder is listed only when it is one of the few small ones of a layout
(`data/`, a dataset's top, `training/`), a large one is only asked for its first entry, and the
ids are sampled (first, middle, last of `ImageSets/train.txt`). Nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmlab_bootstrap.doctor.dataset_specs import (
    KITTI,
    KITTI_SAMPLES,
    LAYOUTS,
    NUSCENES,
    Layout,
    convert_command,
    create_data_command,
    expected_format,
)
from mmlab_bootstrap.doctor.pickles import CURRENT, HEAD_BYTES, OLD, head_format
from mmlab_bootstrap.doctor.scan import FOLDER, MISSING, Scan
from mmlab_bootstrap.output import ERROR, INFO, OK, Finding

IDS_LIMIT = 4 << 20  # bytes read from an id list


def check_data(data: Path, project_dir: Path, root: Path) -> tuple[dict[str, Any], list[Finding]]:
    """The datasets under one `data` folder (a link into the storage root `root`). Whatever
    cannot be read is a finding (see `datascan`); it never ends the check."""
    label = f"{project_dir.name}/{data.name}"
    info: dict[str, Any] = {
        "location": str(data),
        "datasets": [],
        "unknown": [],
        "symlinks": [],
        "unreadable": [],
    }
    scan = Scan(data, label)
    findings: list[Finding] = []
    top = sorted(scan.entries(data), key=lambda entry: entry.name)
    real_root = os.path.realpath(root)
    findings += scan.symlink_findings(top, label, (real_root,), info["symlinks"])
    known = {layout.name for layout in LAYOUTS}
    for entry in top:
        name = entry.name
        if name in known or not scan.is_dir(Path(entry.path)):
            continue
        expected = next((layout for layout in LAYOUTS if layout.name == name.lower()), None)
        if expected is not None and not any(e.name == expected.name for e in top):
            findings.append(
                Finding(
                    ERROR,
                    f"{label}/{name}",
                    f"a {expected.title} folder must be named {expected.name!r}"
                    " (names are case-exact)",
                    f"mv '{data / name}' '{data / expected.name}'",
                )
            )
            info["datasets"].append(
                {"name": expected.title, "path": str(data / name), "wrong_name": name}
            )
            continue
        info["unknown"].append(name)
        findings.append(Finding(INFO, f"{label}/{name}", "not a dataset doctor knows; not checked"))
    for layout in LAYOUTS:
        if not any(entry.name == layout.name for entry in top):
            continue
        if scan.kind(data / layout.name, expected=FOLDER) == FOLDER:
            found, more = _check(scan, layout, data / layout.name, project_dir, real_root, label)
            info["symlinks"] += found.pop("symlinks")
            info["datasets"].append(found)
            findings += more
    if not info["datasets"] and not scan.findings:
        known_names = ", ".join(layout.name for layout in LAYOUTS)
        findings.append(Finding(INFO, label, f"holds no dataset doctor knows ({known_names})"))
    findings += scan.findings
    info["unreadable"] = scan.unreadable
    return info, findings


def _check(
    scan: Scan, layout: Layout, folder: Path, project_dir: Path, real_root: str, data_label: str
) -> tuple[dict[str, Any], list[Finding]]:
    label = f"{data_label}/{layout.name}"
    findings: list[Finding] = []
    reported = len(scan.findings)
    found: dict[str, Any] = {
        "name": layout.title,
        "path": str(folder),
        "missing": [],
        "sampled_ids": [],
        "missing_samples": [],
        "generated": {},
        "info_formats": {},
        "symlinks": [],
    }
    roots = (real_root, os.path.realpath(folder))
    listed = scan.entries(folder)
    findings += scan.symlink_findings(listed, label, roots, found["symlinks"])
    parents = {part.split("/")[0] for part in layout.required if "/" in part.rstrip("/")}
    for parent in sorted(parents):
        below = scan.entries(folder / parent)
        findings += scan.symlink_findings(below, f"{label}/{parent}", roots, found["symlinks"])
    hint = f"download {layout.title} into {folder} as {layout.guide(project_dir, scan)} shows"
    for part in layout.required:
        if _present(scan, folder / part.rstrip("/"), folder=part.endswith("/")) is False:
            found["missing"].append(part)
            text = _missing_text(scan, folder, part)
            findings.append(Finding(ERROR, f"{label}/{part}", text, hint))
    if layout is NUSCENES:
        versions = sorted(e.name for e in listed if e.name.startswith("v1.0-"))
        found["versions"] = versions
        if not versions:
            found["missing"].append("v1.0-*/")
            findings.append(
                Finding(
                    ERROR,
                    f"{label}/v1.0-*",
                    "no v1.0-* metadata folder (v1.0-trainval, v1.0-mini or v1.0-test)",
                    hint,
                )
            )
    if layout is KITTI:
        findings += _samples(scan, folder, label, found)
    versions = found.get("versions", [])
    command = create_data_command(layout, folder, project_dir, versions, scan)
    for part in layout.generated:
        present = _present(scan, folder / part.rstrip("/"), folder=part.endswith("/"))
        found["generated"][part] = bool(present)
        if present is False:
            findings.append(Finding(ERROR, f"{label}/{part}", "missing (generated)", command))
        elif present and "_infos_" in part:
            findings += _info_format(scan, layout, folder, part, project_dir, label, found)
    unreadable = len(scan.findings) > reported
    if not unreadable and not any(f.level == ERROR for f in findings):
        ids = f", {len(found['sampled_ids'])} sampled id(s) found" if found["sampled_ids"] else ""
        findings.append(Finding(OK, label, f"{layout.title} layout complete{ids}"))
    return found, findings


def _present(scan: Scan, path: Path, *, folder: bool) -> bool | None:
    """Whether a part is there (a folder: not empty); None when that cannot be told (the
    scan reported why)."""
    return scan.non_empty(path) if folder else scan.is_file(path)


def _missing_text(scan: Scan, folder: Path, part: str) -> str:
    """Missing, or empty; and the first name on the way that differs only in case, when its
    folder (a small one of the layout) holds one."""
    path = folder / part.rstrip("/")
    where = folder
    for name in part.rstrip("/").split("/"):
        if scan.kind(where / name) == MISSING:
            for entry in scan.entries(where):
                if entry.name.lower() == name.lower():
                    return f"missing (found {entry.name!r}: names are case-exact)"
            break
        where = where / name
    if part.endswith("/") and scan.is_dir(path):
        return "empty"
    return "missing"


def _samples(scan: Scan, folder: Path, label: str, found: dict[str, Any]) -> list[Finding]:
    """For the first, middle and last id of ImageSets/train.txt, its training files. A list
    longer than IDS_LIMIT is read that far, without the line the limit cuts."""
    subject = f"{label}/ImageSets/train.txt"
    read = scan.head(folder / "ImageSets" / "train.txt", IDS_LIMIT)
    if read is None:
        return []  # missing (reported with the required files) or reported by the scan
    head, whole = read
    if not whole:
        head = head[: head.rfind(b"\n") + 1]  # the last line is cut by the limit
    text = head.decode("utf-8", "replace")
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    if not ids:
        said = "lists no ids" if whole else f"holds no whole line in its first {IDS_LIMIT} bytes"
        return [
            Finding(ERROR, subject, said, "download the split files again as the KITTI guide shows")
        ]
    sampled = list(dict.fromkeys([ids[0], ids[len(ids) // 2], ids[-1]]))
    found["sampled_ids"] = sampled
    found["ids_read_in_part"] = not whole
    where = "train.txt" if whole else f"the first {IDS_LIMIT} bytes of train.txt (read in part)"
    findings = []
    for sample in sampled:
        for pattern in KITTI_SAMPLES:
            part = "training/" + pattern.format(sample)
            if "/".join(part.split("/")[:2]) + "/" in found["missing"]:
                continue  # the whole folder is already reported
            if scan.is_file(folder / part) is False:
                found["missing_samples"].append(part)
                findings.append(
                    Finding(
                        ERROR,
                        f"{label}/{part}",
                        f"missing (id {sample} of {where})",
                        "the download is incomplete: unpack that part of KITTI again",
                    )
                )
    return findings


def _info_format(
    scan: Scan,
    layout: Layout,
    folder: Path,
    part: str,
    project_dir: Path,
    label: str,
    found: dict[str, Any],
) -> list[Finding]:
    """An info file must be in the format the sub-project's checkout reads (told from its
    opcodes, never unpickled)."""
    read = scan.head(folder / part, HEAD_BYTES)
    if read is None:
        return []  # reported by the scan
    form = head_format(read[0])
    found["info_formats"][part] = form
    wanted = expected_format(project_dir, scan)
    if form == wanted:
        return []
    remake = create_data_command(layout, folder, project_dir, found.get("versions", []), scan)
    if form == OLD:
        text = "info file in the old format (a list or `infos`; mmdet3d 1.1+ reads `data_list`)"
        return [
            Finding(
                ERROR, f"{label}/{part}", text, convert_command(layout, folder, project_dir, part)
            )
        ]
    if form == CURRENT:
        text = (
            "info file in the new format (`data_list`, mmdet3d 1.1+), but this checkout of"
            f" {project_dir.name} reads the old one; make it with this checkout's create_data.py"
        )
        return [Finding(ERROR, f"{label}/{part}", text, remake)]
    return [Finding(ERROR, f"{label}/{part}", f"not an info file ({form})", remake)]

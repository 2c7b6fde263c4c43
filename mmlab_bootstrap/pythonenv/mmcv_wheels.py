"""mmcv's prebuilt wheels: the index for a torch/CUDA pair, and the versions mmcv's own table
(`docs/en/_static/version.json` in the workspace's mmcv checkout) lists for it."""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.version import Version

from mmlab_bootstrap.fs import read_head
from mmlab_bootstrap.output import INFO, WARNING, Finding
from mmlab_bootstrap.pythonenv.version_ranges import Range, version_key

TABLE_LIMIT = 1 << 20  # bytes: mmcv's table is some 20 KiB


def mmcv_index(torch_version: str, cuda: str | None) -> tuple[str, str, str]:
    """The prebuilt-wheel index of mmcv for a torch/CUDA pair, and the pair as mmcv's table
    (`docs/en/_static/version.json`) names it: (url, cuda like `11.8`/`cpu`, torch like `2.1.x`)."""
    match = re.match(r"(\d+)\.(\d+)", torch_version)
    torch_minor = f"{match.group(1)}.{match.group(2)}" if match else torch_version
    tag = f"cu{cuda.replace('.', '')}" if cuda else "cpu"
    url = f"https://download.openmmlab.com/mmcv/dist/{tag}/torch{torch_minor}/index.html"
    return url, cuda or "cpu", f"{torch_minor}.x"


def prebuilt_versions(mmcv_checkout: Path, cuda: str, torch: str, system: str) -> list[str] | None:
    """The mmcv versions with a prebuilt wheel for the pair, from the table in the workspace's
    mmcv checkout (None when there is no table to read)."""
    table_path = mmcv_checkout / "docs" / "en" / "_static" / "version.json"
    try:
        text, whole = read_head(table_path, TABLE_LIMIT)  # a regular file, never a FIFO
        table = json.loads(text.decode("utf-8")) if whole else None
    except (OSError, ValueError, RecursionError):
        return None
    rows = table.get(system, []) if isinstance(table, dict) else None
    if not isinstance(rows, list):
        return None  # not mmcv's table
    versions: list[str] = []
    for row in rows:
        if isinstance(row, dict) and row.get("cuda") == cuda and row.get("torch") == torch:
            listed = row.get("mmcv", [])
            versions += (
                [v for v in listed if isinstance(v, str)] if isinstance(listed, list) else []
            )
    return versions


def mmcv_name(limit: Range | None) -> str:
    """mmcv 1.x with its compiled ops is the distribution `mmcv-full`."""
    upper = version_key(limit.upper.version) if limit and limit.upper else None
    return "mmcv-full" if upper is not None and upper <= Version("2.0.0") else "mmcv"


def mmcv_wheels(
    extension: Path, torch: Mapping[str, Any] | None, limit: Range | None, pip: str
) -> tuple[dict[str, Any] | None, list[Finding], str]:
    """The prebuilt-wheel index for the torch/CUDA pair, and the versions it has in range."""
    if torch is None:
        return None, [], ""
    cuda = torch.get("cuda") or _local_cuda(str(torch["version"]))
    url, cuda_name, torch_name = mmcv_index(str(torch["version"]), cuda)
    versions = prebuilt_versions(extension / "mmcv", cuda_name, torch_name, platform.system())
    info = {"index_url": url, "versions": versions}
    pair = f"torch {torch_name[:-2]} + {'CUDA ' + cuda if cuda else 'CPU'}"
    if versions is None:
        text = f"prebuilt wheels for {pair}: {url} (no mmcv table in the workspace to check)"
        return info, [Finding(INFO, "mmcv wheels", text)], ""
    fitting = [v for v in versions if limit is None or limit.accepts(v)]
    if not fitting:
        text = (
            f"no prebuilt mmcv wheel for {pair}{' within ' + limit.text() if limit else ''}:"
            " pip would build mmcv from source, which takes hours"
        )
        hint = (
            "install a torch/CUDA pair mmcv has wheels for"
            " (mmcv/docs/en/get_started/installation.md)"
        )
        return info, [Finding(WARNING, "mmcv wheels", text, hint)], ""
    command = f"{pip} {mmcv_name(limit)}=={fitting[0]} -f {url}"
    return info, [Finding(INFO, "mmcv wheels", f"{pair}: {', '.join(fitting)}; {command}")], command


def _local_cuda(version: str) -> str | None:
    """CUDA from a torch version's local tag (`2.1.2+cu118` -> `11.8`)."""
    match = re.search(r"\+cu(\d+)(\d)$", version)
    return f"{match.group(1)}.{match.group(2)}" if match else None

"""The URL behind a config's weight name: `open-mmlab://`, `torchvision://` and `mmcls://`
names are looked up in the tables of the workspace's own mmcv checkout
(`mmcv/mmcv/model_zoo/open_mmlab.json`, `deprecated.json`, `torchvision_0.12.json`,
`mmcls.json`), as mmcv's `load_checkpoint` does; http(s) URLs are themselves. Tables are read
bounded (regular files of at most `TABLE_LIMIT` bytes) and typed (a JSON object of strings);
an entry that is not an http(s) URL is not one this tool can download.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mmlab_bootstrap.checkpoints.configread import WEIGHT_SCHEMES
from mmlab_bootstrap.errors import shown
from mmlab_bootstrap.fs import FileRefused, read_regular

TABLE_LIMIT = 1 << 20  # bytes: mmcv's tables are under 20 KiB
TABLES = {
    "open-mmlab://": "open_mmlab.json",
    "torchvision://": "torchvision_0.12.json",
    "mmcls://": "mmcls.json",
}
DEPRECATED = "deprecated.json"  # old open-mmlab:// names and the names they now have


@dataclass
class Zoo:
    """mmcv's name tables as the workspace's checkout has them; `problems` says which could
    not be read."""

    folder: Path
    tables: dict[str, dict[str, str | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def url(self, name: str) -> tuple[str | None, str]:
        """The http(s) URL a weight name stands for, or None and why not."""
        if name.startswith(("http://", "https://")):
            return name, ""
        for scheme, table_name in TABLES.items():
            if name.startswith(scheme):
                key = name[len(scheme) :]
                table = self.tables.get(scheme)
                if table is None:
                    return None, f"mmcv's table {table_name} was not read"
                if scheme == "open-mmlab://":
                    key = self.tables.get(DEPRECATED, {}).get(key) or key
                if key not in table:
                    return None, f"{shown(key)} is not in mmcv's {table_name}"
                url = table[key]
                if url is None:
                    return None, f"mmcv's {table_name} gives {shown(key)} no URL"
                if not url.startswith(("http://", "https://")):
                    return None, f"mmcv's {table_name} gives {shown(url)}, not an http(s) URL"
                return url, ""
        return None, "a local path"


def read_zoo(mmcv_checkout: Path) -> Zoo:
    """The tables of the mmcv checkout at `mmcv_checkout` (the sub-project's folder)."""
    zoo = Zoo(mmcv_checkout / "mmcv" / "model_zoo")
    for scheme, name in (*TABLES.items(), (DEPRECATED, DEPRECATED)):
        path = zoo.folder / name
        try:
            data = read_regular(path, "", limit=TABLE_LIMIT)
            document: Any = json.loads(data) if data is not None else None
        except (FileRefused, OSError, ValueError) as error:
            zoo.problems.append(f"mmcv's table {shown(str(path))} is not readable: {_why(error)}")
            continue
        if document is None:
            if scheme != DEPRECATED:
                zoo.problems.append(f"there is no mmcv table {shown(str(path))}")
            continue
        if not isinstance(document, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in document.items()
        ):
            zoo.problems.append(f"{shown(str(path))} is not a table of names and URLs")
            continue
        zoo.tables[scheme] = document  # (a name with no URL, null, is one torch publishes none for)
    return zoo


def _why(error: Exception) -> str:
    if isinstance(error, FileRefused):
        return error.message
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return "not JSON"


def is_weight_name(value: str) -> bool:
    return value.startswith(WEIGHT_SCHEMES)


def url_file_name(url: str) -> str:
    """The file name torch's hub cache gives a URL's download: the last part of its path."""
    return unquote(urlsplit(url).path).rsplit("/", 1)[-1]

"""Which format an info `.pkl` file is in, read from its opcode stream: never unpickled.

mmdetection3d 1.x reads info files that hold a dict with `metainfo` and `data_list`; files
made by older versions hold a list of infos, or a dict with `infos` (and `metadata`). The
first kilobytes of the pickle tell them apart: the top-level container, and the first keys.
"""

from __future__ import annotations

import io
import pickletools
from pathlib import Path

from mmlab_bootstrap.fs import read_head

HEAD_BYTES = 8192  # how much of a file is read
CURRENT, OLD, UNKNOWN, NOT_PICKLE = "current", "old", "unknown", "not a pickle"

_STRINGS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
     "STRING", "SHORT_BINBYTES", "BINBYTES"}
)  # fmt: skip
_FRAMING = frozenset({"PROTO", "FRAME", "MARK"})


def info_format(path: Path) -> str:
    """`current` (dict with `metainfo`/`data_list`), `old` (a list, or a dict with `infos`),
    `unknown` (a pickle of something else) or `not a pickle` (empty, damaged, another file,
    or no regular file: its first bytes are read as `datascan.read_head` reads them)."""
    try:
        head, _ = read_head(path, HEAD_BYTES)
    except OSError:
        return NOT_PICKLE
    return head_format(head)


def head_format(head: bytes) -> str:
    """The format of a pickle's first bytes (see `info_format`)."""
    top: str | None = None
    strings: list[str] = []
    try:
        for opcode, argument, _ in pickletools.genops(io.BytesIO(head)):
            if top is None and opcode.name not in _FRAMING:
                top = opcode.name
            if opcode.name in _STRINGS and isinstance(argument, str | bytes):
                text = argument.decode("latin-1") if isinstance(argument, bytes) else argument
                strings.append(text)
            if opcode.name == "STOP":
                break
    except (ValueError, EOFError, UnicodeDecodeError):
        # the stream ends inside an opcode where the head was cut, or it is no pickle at all
        pass
    if top is None or not _is_pickle(head):
        return NOT_PICKLE
    if top in ("EMPTY_LIST", "LIST"):
        return OLD
    if top in ("EMPTY_DICT", "DICT") and strings:
        # its first key comes first (pickle writes each key before its value)
        if strings[0] in ("metainfo", "data_list"):
            return CURRENT
        if strings[0] in ("infos", "metadata"):
            return OLD
        if {"metainfo", "data_list"} & set(strings):
            return CURRENT
        if "infos" in strings:
            return OLD
    return UNKNOWN


def _is_pickle(head: bytes) -> bool:
    """A pickle starts with a protocol opcode (2 and later), or (0 and 1) a container, a global
    or a scalar opcode."""
    return bool(head) and head[0] in b"\x80(}]ldcISVNFG"

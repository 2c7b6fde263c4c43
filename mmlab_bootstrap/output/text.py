"""Text for people: sizes in IEC units, a few names out of many."""

from __future__ import annotations

from mmlab_bootstrap.errors import escaped


def some_names(paths: list[str]) -> str:
    """Up to five names for a message, escaped so that each stays one piece of one line."""
    listed = ", ".join(escaped(path) for path in paths[:5])
    return listed + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def human_size(size: float) -> str:
    """Bytes for a person, the one way every task writes a size: IEC units, as git's own
    progress counts them (512 B, 1.5 KiB, 12.3 MiB, 4.0 GiB)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    value, index = float(size), 0
    while abs(value) >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{value:.0f} B" if index == 0 else f"{value:.1f} {units[index]}"

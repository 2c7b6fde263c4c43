"""What the user sees: one line per action and its colors (`report`), the progress board
and heartbeat (`progress`), sizes and lists of names for people (`text`), one finding
of a check (`findings`: level, subject, text, hint).

Plan/apply: no plan/apply pair: every step reports through it.
May import: errors (enforced by `lint-imports`).

The names below are imported on first use (PEP 562), so importing the package costs
nothing at start-up.
"""

from __future__ import annotations

from mmlab_bootstrap import lazy_surface

TYPE_CHECKING = False  # (not typing's: importing typing costs start-up time)

if TYPE_CHECKING:
    from mmlab_bootstrap.output.findings import ERROR, INFO, OK, WARNING, Finding
    from mmlab_bootstrap.output.progress import Board, Heartbeat, heartbeat_seconds
    from mmlab_bootstrap.output.report import (
        Reporter,
        quiet_broken_pipe,
        silence,
        wants_color,
        write_line,
    )
    from mmlab_bootstrap.output.text import human_size, some_names

__all__ = [
    "ERROR",
    "INFO",
    "OK",
    "WARNING",
    "Board",
    "Finding",
    "Heartbeat",
    "Reporter",
    "heartbeat_seconds",
    "human_size",
    "quiet_broken_pipe",
    "silence",
    "some_names",
    "wants_color",
    "write_line",
]

_WHERE = {
    "Board": "progress",
    "Heartbeat": "progress",
    "ERROR": "findings",
    "Finding": "findings",
    "INFO": "findings",
    "OK": "findings",
    "Reporter": "report",
    "WARNING": "findings",
    "heartbeat_seconds": "progress",
    "human_size": "text",
    "quiet_broken_pipe": "report",
    "silence": "report",
    "some_names": "text",
    "wants_color": "report",
    "write_line": "report",
}


__getattr__ = lazy_surface(__name__, _WHERE)

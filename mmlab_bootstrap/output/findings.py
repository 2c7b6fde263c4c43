"""What `doctor` finds: one line each, with a hint when something is to be done."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR, WARNING, INFO, OK = "error", "warning", "info", "ok"


@dataclass(frozen=True)
class Finding:
    """One thing found: its level, what it is about, what is wrong (or right), the fix."""

    level: str  # error (the workspace is not ready), warning, info, ok
    subject: str  # e.g. mmdetection3d/data/kitti, mmcv
    text: str
    hint: str = ""

    def as_json(self, section: str) -> dict[str, Any]:
        return {
            "section": section,
            "level": self.level,
            "subject": self.subject,
            "text": self.text,
            "hint": self.hint or None,
        }

    @property
    def line(self) -> str:
        return f"{self.subject}: {self.text}"

"""What the benchmarks share."""

from __future__ import annotations

import sys
from pathlib import Path


def inv_command() -> list[str]:
    """The `inv` console script beside this interpreter (else `python -m invoke`)."""
    script = Path(sys.executable).parent / "inv"
    if script.is_file():
        return [str(script)]
    try:
        import invoke  # noqa: F401
    except ImportError:
        sys.exit("no invoke here: run this with the project's venv python (.venv/bin/python)")
    return [sys.executable, "-m", "invoke"]

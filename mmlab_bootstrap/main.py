"""The `mmlab-bootstrap` console script: the same tasks, with the current folder as workspace."""

from __future__ import annotations

import sys

try:  # importing invoke and the tasks takes a noticeable time: a Ctrl-C then is no traceback
    from invoke.program import Program

    from . import __version__
    from .tasks import namespace
except KeyboardInterrupt:
    sys.stderr.write(
        "error: interrupted\nhint: run the same command again: it finishes what was started\n"
    )
    raise SystemExit(130) from None

program = Program(
    namespace=namespace(root=None, program="mmlab-bootstrap"),
    version=__version__,
    name="mmlab-bootstrap",
    binary="mmlab-bootstrap",
    binary_names=["mmlab-bootstrap"],
)

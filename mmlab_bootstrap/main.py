"""The `mmlab-bootstrap` console script: the same tasks, with the current folder as workspace."""

from __future__ import annotations

from invoke.program import Program

from . import __version__
from .tasks import namespace

program = Program(
    namespace=namespace(root=None, program="mmlab-bootstrap"),
    version=__version__,
    name="mmlab-bootstrap",
    binary="mmlab-bootstrap",
    binary_names=["mmlab-bootstrap"],
)

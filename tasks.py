"""mmlab-bootstrap tasks for this workspace (the logic lives in the mmlab_bootstrap package)."""

from pathlib import Path

from mmlab_bootstrap.cli.tasks import namespace

ns = namespace(root=Path(__file__).resolve().parent)

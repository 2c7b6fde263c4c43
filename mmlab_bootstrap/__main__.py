"""`python -m mmlab_bootstrap`: the `mmlab-bootstrap` console script."""

from mmlab_bootstrap.cli.program import program

program.run()

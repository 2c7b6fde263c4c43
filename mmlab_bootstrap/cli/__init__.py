"""mmlab_bootstrap.cli."""

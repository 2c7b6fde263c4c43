"""mmlab_bootstrap.workspace."""

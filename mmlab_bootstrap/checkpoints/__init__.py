"""mmlab_bootstrap.checkpoints."""

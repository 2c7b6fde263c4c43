"""mmlab_bootstrap.git."""

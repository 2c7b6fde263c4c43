"""mmlab_bootstrap.output."""

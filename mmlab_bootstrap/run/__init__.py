"""mmlab_bootstrap.run."""

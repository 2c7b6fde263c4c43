"""mmlab_bootstrap.clone."""

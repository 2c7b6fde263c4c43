"""mmlab_bootstrap.clone.fetch."""

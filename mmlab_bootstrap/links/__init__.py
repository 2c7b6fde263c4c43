"""mmlab_bootstrap.links."""

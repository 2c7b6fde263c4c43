"""mmlab_bootstrap.mirror."""

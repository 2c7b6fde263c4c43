"""mmlab_bootstrap.fs."""

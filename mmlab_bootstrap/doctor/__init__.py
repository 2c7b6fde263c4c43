"""mmlab_bootstrap.doctor."""

"""mmlab_bootstrap.settings."""

"""mmlab_bootstrap.gitcache."""

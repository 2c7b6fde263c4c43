"""mmlab-bootstrap: set up an OpenMMLab workspace safely and repeatably."""

__version__ = "0.1.0"

"""mmlab-bootstrap: set up an OpenMMLab workspace safely and repeatably."""

from mmlab_bootstrap.output.report import reopen_closed_streams

__version__ = "0.1.0"

# Before any file is opened: a closed standard stream gets /dev/null (see the function).
reopen_closed_streams()

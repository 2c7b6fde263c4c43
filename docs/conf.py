"""Sphinx configuration: the mmlab-bootstrap docs, written in Markdown (MyST)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

project = "mmlab-bootstrap"
author = "mmlab-bootstrap contributors"
copyright = "mmlab-bootstrap contributors"  # noqa: A001 (Sphinx's name for it)

extensions = [
    "myst_parser",
    # The variables reference and each task's flags, generated from the package at build time.
    "mmlab_reference",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = "mmlab-bootstrap"

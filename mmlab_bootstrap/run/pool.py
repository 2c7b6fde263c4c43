"""Parallel work of a step: the signal that tells the workers still running to stop."""

from __future__ import annotations


class Stopped(Exception):
    """The pass is being stopped (an interruption or an error elsewhere): start nothing new."""

"""The ``seedbed`` command."""

from seedbed.cli._main import main

__all__ = ["main"]

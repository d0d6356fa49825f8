"""The ``seedbed`` command (``_app`` draws its grammar)."""

from seedbed.cli._app import main

__all__ = ["main"]

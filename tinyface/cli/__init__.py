"""The `tinyface` command."""

from tinyface.cli.main import main

__all__ = ["main"]

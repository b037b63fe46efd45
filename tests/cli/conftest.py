"""Shared by the tests of the `tinyface` command: a cache folder of its own per test, and running a command
in-process (`run`, `fails`, imported from cli_helpers.py)."""

import pytest


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test decodes images into its own cache folder, so no test reads another's (or the user's) cache."""
    monkeypatch.setenv("TINYFACE_CACHE", str(tmp_path / "cache"))

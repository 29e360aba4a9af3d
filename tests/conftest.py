"""Shared fixtures: a CLI runner and small real data made in tmp_path."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner():
    """A click CliRunner for invoking ``cli.main``."""
    return CliRunner()

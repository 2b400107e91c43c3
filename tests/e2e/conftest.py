"""Fixtures of the end-to-end tests; the helpers are in :mod:`e2e_harness`."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A temporary folder for one test module's bot (logs, feedback database, indexes)."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])

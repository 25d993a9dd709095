"""Fixtures of the release tests: a temporary project folder that is also the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, made the working directory (config paths are relative to it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path

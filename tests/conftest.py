"""Shared fixtures: the project root and the real public data beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, the real public FCS and sequencing data; tests that need it skip without it."""
    if not (SHARED_DATA / "MANIFEST.tsv").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA} (CI provides ../shared/data)")
    return SHARED_DATA


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, made the working directory (config paths are relative to it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real runs (marked slow) first, those that mostly wait (marked waits) before the others:
    under pytest-xdist each file runs whole on one worker, in collection order
    (--no-loadscope-reorder), and the many quick unit tests then fill the other core around the last
    long runs instead of a long run ending the suite alone."""
    items.sort(
        key=lambda item: (item.get_closest_marker("slow") is None, item.get_closest_marker("waits") is None)
    )

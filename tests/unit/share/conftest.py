"""The share tests' fixtures: the demo configuration and the demo archive's lots as shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.config.run import RunConfig, load_run_config
from rapidrelease.records import Release, read_release
from rapidrelease.share.export import SharedLot, shared_lots

from support.programs import ARCHIVE


@pytest.fixture(scope="package")
def run(project_root: Path) -> RunConfig:
    """The demo configuration (its paths relative to the project): its specification marks which
    attributes may be shared."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project_root)
        return load_run_config(Path("config/config.yaml"))


@pytest.fixture(scope="package")
def archive_lots(run: RunConfig) -> tuple[list[SharedLot], list[Release]]:
    """The demo archive's 24 decided lots (one site's history), as shared and as decided."""
    releases = [read_release(path) for path in sorted(ARCHIVE.glob("*/release.json"))]
    return shared_lots(run, releases, taxonomy=None), releases

"""Fixtures for the demo simulator tests: the committed demo folder and a fresh regeneration of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.synthetic.demo.lots import DEMO_LOTS
from rapidrelease.synthetic.demo.simulate import DEFAULT_SEED, write_demo_lots


@pytest.fixture(scope="session")
def demo_dir(project_root: Path) -> Path:
    """resources/demo as committed."""
    return project_root / "resources" / "demo"


@pytest.fixture(scope="session")
def regenerated(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The demo written afresh with the default seed: (folder, paths write_demo_lots returned)."""
    out = tmp_path_factory.mktemp("demo")
    return out, write_demo_lots(
        out,
        seed=DEFAULT_SEED,
        reference_dir=project_root / "resources" / "reference",
        specs_path=project_root / "config" / "specs.yaml",
    )


@pytest.fixture(scope="session")
def fcs_paths(demo_dir: Path) -> dict[str, Path]:
    """The committed phenotype FCS file of each demo lot, by lot id."""
    return {lot.lot_id: demo_dir / lot.lot_id / lot.fcs_name for lot in DEMO_LOTS}

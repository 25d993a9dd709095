"""The default panel's real index, shared by the sterility tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.reads.index import KmerIndex, build_index

PANEL = Path(__file__).resolve().parents[3] / "resources" / "reference"


@pytest.fixture(scope="session")
def panel_index(tmp_path_factory: pytest.TempPathFactory) -> KmerIndex:
    """The default panel's index, as the workflow builds it (about 5 s)."""
    return build_index(
        sorted((PANEL / "panel").iterdir()),
        PANEL / "taxonomy.tsv",
        tmp_path_factory.mktemp("db") / "panel",
        seqid2taxid_path=PANEL / "seqid2taxid.map",
    )

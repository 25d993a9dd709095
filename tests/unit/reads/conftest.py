"""A small real index shared by the classifier tests: six sequences of the default panel."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.reads.index import KmerIndex, build_index

from support.reads import PANEL, write_panel_fasta


@pytest.fixture(scope="session")
def small_panel_fasta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_panel_fasta(tmp_path_factory.mktemp("panel") / "small_panel.fa")


@pytest.fixture(scope="session")
def small_index(small_panel_fasta: Path, tmp_path_factory: pytest.TempPathFactory) -> KmerIndex:
    """Unmasked, as the Kraken 2 comparison needs; about 9 Mb, a few seconds to build."""
    return build_index(
        [small_panel_fasta],
        PANEL / "taxonomy.tsv",
        tmp_path_factory.mktemp("db") / "small",
        mask_low_complexity=False,
    )

"""A small real index shared by the classifier tests: six sequences of the default panel."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.index import KmerIndex, build_index

PANEL = Path(__file__).resolve().parents[3] / "resources" / "reference"
SMALL_PANEL = [
    "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz",
    "Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz",
    "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz",
    "phiX174_sequana_NC_001422.1.fa",
    "pCMVR8.74_lentiviral_packaging_addgene.fa",
    "lambda_NC_001416.1_nanolyse.fasta.gz",
]


def write_panel_fasta(path: Path) -> Path:
    """The small panel as one FASTA with simple ids and Kraken's ``|kraken:taxid|`` headers (which
    kraken2-build also reads), taxids from the default panel's seqid map."""
    taxid_of = {}
    for line in (PANEL / "seqid2taxid.map").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            seqid, taxid = line.split("\t")[:2]
            taxid_of[seqid] = int(taxid)
    with open(path, "w") as out:
        number = 0
        for name in SMALL_PANEL:
            for header, seq in iter_fasta(PANEL / "panel" / name):
                number += 1
                out.write(
                    f">seq{number}|kraken:taxid|{taxid_of[header.split()[0]]}\n{seq.tobytes().decode()}\n"
                )
    return path


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

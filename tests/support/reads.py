"""The reference panel the read tests build small indexes from, and reading Kraken-style tables."""

from __future__ import annotations

from pathlib import Path

from rapidrelease.reads.fasta import iter_fasta

PANEL = Path(__file__).resolve().parents[2] / "resources" / "reference"
"""The default reference panel: ``panel/`` FASTA files, ``taxonomy.tsv`` and ``seqid2taxid.map``."""

SMALL_PANEL = [
    "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz",
    "Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz",
    "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz",
    "phiX174_sequana_NC_001422.1.fa",
    "pCMVR8.74_lentiviral_packaging_addgene.fa",
    "lambda_NC_001416.1_nanolyse.fasta.gz",
]
"""Six sequences of the default panel: bacteria, host, spike-in, vector and a control phage."""


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


def read_table(path: Path) -> list[list[str]]:
    """The rows of a tab-separated text output (per-read output, kreport), each split into fields."""
    return [line.rstrip("\n").split("\t") for line in path.read_text().splitlines(keepends=True)]

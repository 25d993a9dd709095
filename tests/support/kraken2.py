"""A real Kraken 2 database for the tests, built once per session by kraken2-build 2.1 itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rapidrelease.reads.taxonomy import Taxonomy

from support.reads import PANEL, write_panel_fasta

KRAKEN2_PANEL = [
    "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz",
    "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz",
    "phiX174_sequana_NC_001422.1.fa",
    "lambda_NC_001416.1_nanolyse.fasta.gz",
    "pCMVR8.74_lentiviral_packaging_addgene.fa",
    "pUC19_plannotate.fa",
    "SILVA93_SSU_sterility_targets.fasta.gz",
    "SILVA93_LSU_sterility_targets.fasta.gz",
]
"""What the demo's sequencing reads come from (host, vector, spike-in, the positive control's
S. aureus), a control phage, and the rRNA genes of the compendial sterility organisms, which a
sterility checklist needs the reference to hold: 4.5 Mb. E. coli's genome, a negative control's
reagent background, and the Ph. Eur. mycoplasmas' genomes are left out."""

needs_kraken2 = pytest.mark.skipif(
    shutil.which("kraken2-build") is None or shutil.which("kraken2") is None,
    reason="kraken2 is not installed (CI installs it)",
)


def kraken2_database(base: Path) -> Path:
    """``base/kraken2_db``: kraken2-build's database of :data:`KRAKEN2_PANEL` with the default panel's
    taxonomy, unmasked, Kraken 2's defaults (k 35, l 31, s 7); built on the first call, then reused
    (every test module of a session shares ``base``). The library and taxonomy dumps are removed
    afterwards, leaving the three files a lab ships."""
    db = base / "kraken2_db"
    if (db / "hash.k2d").is_file():
        return db
    staging = base / "kraken2_db.building"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "taxonomy").mkdir(parents=True)
    Taxonomy.from_tsv(PANEL / "taxonomy.tsv").to_ncbi_dmp(staging / "taxonomy")
    fasta = write_panel_fasta(base / "kraken2_panel.fa", KRAKEN2_PANEL)
    for step in (["--add-to-library", str(fasta), "--no-masking"], ["--build", "--threads", "2"]):
        subprocess.run(["kraken2-build", *step, "--db", str(staging)], check=True, capture_output=True)
    for name in ("library", "taxonomy"):
        shutil.rmtree(staging / name)
    for extra in ("seqid2taxid.map",):
        (staging / extra).unlink(missing_ok=True)
    staging.rename(db)
    return db

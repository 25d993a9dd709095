"""The demo lots' sequencing unit: simulated paired reads of a sterility sample of the product.

A CAR-T sample sequenced for sterility is almost all host (human) DNA, with some vector sequence
(residual plasmid from the lentiviral vector's manufacture) and the sequencing run's phiX spike-in.
The demo's reads are drawn with :func:`rapidrelease.reads.simulate.simulate_reads` (HiSeq error
model, 2 × 150 bp, inserts 350 ± 50 bp) from sequences of the default reference panel
(``resources/reference/panel``, registry data), so the workflow's classification of them can be
checked against the composition below. Neither lot carries a contaminant: calling sterility needs
negative controls and a limit of detection, which the demo's sterility stage will add.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.demo.lots import DemoLot
from rapidrelease.outputs import atomic_path, write_table
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.simulate import SourceGenome, simulate_reads, write_fastq

__all__ = ["READ_PAIRS", "READ_SOURCES", "ReadSource", "write_sterility_reads"]

READ_PAIRS = 2_500
"""Read pairs per lot: enough to show each category in the report, small enough to commit."""


@dataclass(frozen=True)
class ReadSource:
    """One kind of DNA in the sample: the panel FASTA it is drawn from and its share of read pairs."""

    name: str
    category: str
    taxid: int
    fasta: str
    share: float


READ_SOURCES: tuple[ReadSource, ...] = (
    ReadSource("human", "host", 9606, "panel/Homo_sapiens_TPA_scaffolds_1Mb.fa.gz", 0.965),
    ReadSource("pCMVR8.74", "vector", 29278, "panel/pCMVR8.74_lentiviral_packaging_addgene.fa", 0.025),
    ReadSource("phiX174", "spike_in", 10847, "panel/phiX174_sequana_NC_001422.1.fa", 0.010),
)
"""What the sample is made of, in read pairs; the shares add up to 1."""


def _genome(source: ReadSource, reference_dir: Path) -> SourceGenome:
    records = [sequence for _, sequence in iter_fasta(reference_dir / source.fasta)]
    return SourceGenome.from_records(source.name, source.taxid, records)


def write_sterility_reads(lot: DemoLot, seed: int, reference_dir: Path, lot_dir: Path) -> list[Path]:
    """Write ``<LOT>_sterility_R1/R2.fastq.gz`` and ``reads_truth.tsv`` (read pairs per source).

    Read names carry each pair's truth (``<source>|<taxid>|<index>``). The same ``seed`` and panel
    give byte-identical files.
    """
    genomes = [_genome(source, Path(reference_dir)) for source in READ_SOURCES]
    reads = simulate_reads(
        genomes,
        READ_PAIRS,
        weights=[source.share for source in READ_SOURCES],
        paired=True,
        seed=int(np.random.SeedSequence([seed, lot.stream, 2]).generate_state(1)[0]),
    )
    r1, r2 = (lot_dir / f"{lot.lot_id}_sterility_R{mate}.fastq.gz" for mate in (1, 2))
    with atomic_path(r1) as tmp1, atomic_path(r2) as tmp2:
        write_fastq(reads, tmp1, tmp2, gzip=True)
    counts = np.bincount(reads.genome_index, minlength=len(READ_SOURCES))
    truth = pl.DataFrame(
        {
            "source": [s.name for s in READ_SOURCES],
            "category": [s.category for s in READ_SOURCES],
            "taxid": [s.taxid for s in READ_SOURCES],
            "read_pairs": counts.tolist(),
            "percent": (100 * counts / counts.sum()).tolist(),
        }
    )
    truth_path = lot_dir / "reads_truth.tsv"
    write_table(truth, truth_path)
    return [r1, r2, truth_path]

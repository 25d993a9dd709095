"""The demo lots' sequencing units: simulated paired reads of sterility samples and their run's controls.

A CAR-T sample sequenced for sterility is almost all host (human) DNA, with some vector sequence
(residual plasmid from the lentiviral vector's manufacture) and the sequencing run's phiX spike-in.
The demo's reads are drawn with :func:`rapidrelease.synthetic.reads.simulate_reads` (HiSeq error
model, 2 × 150 bp, inserts 350 ± 50 bp) from sequences of the default reference panel
(``resources/reference/panel``, registry data), so the workflow's classification of them can be
checked against the composition below. Neither lot carries a contaminant.

Both lots were sequenced in one run (``SEQ-RUN-01``) with its controls, which both lots' unit
sheets list: two negative controls (extraction blanks carried by human DNA, one holding a trace
of E. coli DNA as polymerase preparations do) and a positive control spiked with S. aureus at a
stated concentration, from which the run's limit of detection is computed. Each folder that holds
the run's reads also holds its run metadata (``RunInfo.xml``, ``RTAComplete.txt``) as an Illumina
run folder does, so the lot's timeline places the run on the instrument's clock, not at the files'
modification times (:mod:`rapidrelease.reads.run_metadata`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.outputs import atomic_path, write_table, write_text
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.synthetic.demo.lots import DemoLot
from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

__all__ = [
    "READ_PAIRS",
    "READ_SOURCES",
    "RUN_ID",
    "RUN_CONTROLS",
    "RUN_ENDED",
    "RUN_STARTED",
    "ReadSource",
    "RunControl",
    "write_sterility_reads",
    "write_run_controls",
    "write_run_metadata",
]

READ_PAIRS = 2_500
"""Read pairs per sample: enough to show each category in the report, small enough to commit."""

RUN_ID = "SEQ-RUN-01"
"""The sequencing run both demo lots' sterility samples and controls were read in."""

RUN_STARTED = datetime(2026, 11, 25, 12, 20, 3, tzinfo=UTC)
"""When the run started: RunInfo.xml's ``<Date>``, in UTC as NextSeq 2000 writes it (13:20 at the
sites, ~4 h after sampling: extraction and library preparation)."""

RUN_ENDED = datetime(2026, 11, 25, 22, 5, 41, 220000)
"""When real-time analysis completed, on the instrument's local clock (the sites', UTC+1), as
RTAComplete.txt holds it: 2 × 150 cycles in under 9 h."""


@dataclass(frozen=True)
class ReadSource:
    """One kind of DNA in the sample: the panel FASTA it is drawn from and its share of read pairs."""

    name: str
    category: str
    taxid: int
    fasta: str
    share: float


_HUMAN = "panel/Homo_sapiens_TPA_scaffolds_1Mb.fa.gz"
_PHIX = "panel/phiX174_sequana_NC_001422.1.fa"

READ_SOURCES: tuple[ReadSource, ...] = (
    ReadSource("human", "host", 9606, _HUMAN, 0.965),
    ReadSource("pCMVR8.74", "vector", 29278, "panel/pCMVR8.74_lentiviral_packaging_addgene.fa", 0.025),
    ReadSource("phiX174", "spike_in", 10847, _PHIX, 0.010),
)
"""What each lot's sterility sample is made of, in read pairs; the shares add up to 1."""


@dataclass(frozen=True)
class RunControl:
    """A control of the demo sequencing run: its unit id, role, sources and, for a positive control,
    the organism spiked in with its stated concentration."""

    unit_id: str
    role: str
    stream: int
    sources: tuple[ReadSource, ...]
    spike_organism: str = ""
    spike_concentration: float = 0.0
    spike_unit: str = ""


_E_COLI = "panel/Escherichia_coli_K-12_MG1655_ragout.fasta.gz"
_S_AUREUS = "panel/Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz"

RUN_CONTROLS: tuple[RunControl, ...] = (
    RunControl(
        "NC1",
        "negative_control",
        11,
        (
            ReadSource("human", "host", 9606, _HUMAN, 0.9792),
            ReadSource("phiX174", "spike_in", 10847, _PHIX, 0.02),
            # two read pairs of reagent E. coli DNA: 800 RPM, a background below the 1,000 RPM limit
            ReadSource("E.coli", "bacteria", 562, _E_COLI, 0.0008),
        ),
    ),
    RunControl(
        "NC2",
        "negative_control",
        12,
        (
            ReadSource("human", "host", 9606, _HUMAN, 0.98),
            ReadSource("phiX174", "spike_in", 10847, _PHIX, 0.02),
        ),
    ),
    RunControl(
        "PC",
        "positive_control",
        13,
        (
            ReadSource("human", "host", 9606, _HUMAN, 0.945),
            ReadSource("phiX174", "spike_in", 10847, _PHIX, 0.01),
            ReadSource("S.aureus", "bacteria", 1280, _S_AUREUS, 0.045),
        ),
        spike_organism="Staphylococcus aureus",
        spike_concentration=100.0,
        spike_unit="CFU/mL",
    ),
)
"""The run's controls, in the order the unit sheet lists them."""


def _genome(source: ReadSource, reference_dir: Path) -> SourceGenome:
    records = [sequence for _, sequence in iter_fasta(reference_dir / source.fasta)]
    return SourceGenome.from_records(source.name, source.taxid, records)


def _write_sample(
    sources: tuple[ReadSource, ...], stem: str, stream: int, seed: int, reference_dir: Path, folder: Path
) -> list[Path]:
    """Write ``<stem>_R1/R2.fastq.gz`` and ``<stem>_reads_truth.tsv`` (read pairs per source)."""
    genomes = [_genome(source, Path(reference_dir)) for source in sources]
    reads = simulate_reads(
        genomes,
        READ_PAIRS,
        weights=[source.share for source in sources],
        paired=True,
        seed=int(np.random.SeedSequence([seed, stream, 2]).generate_state(1)[0]),
    )
    r1, r2 = (folder / f"{stem}_R{mate}.fastq.gz" for mate in (1, 2))
    with atomic_path(r1) as tmp1, atomic_path(r2) as tmp2:
        write_fastq(reads, tmp1, tmp2, gzip=True)
    counts = np.bincount(reads.genome_index, minlength=len(sources))
    truth = pl.DataFrame(
        {
            "source": [s.name for s in sources],
            "category": [s.category for s in sources],
            "taxid": [s.taxid for s in sources],
            "read_pairs": counts.tolist(),
            "percent": (100 * counts / counts.sum()).tolist(),
        }
    )
    truth_path = folder / f"{stem}_reads_truth.tsv"
    write_table(truth, truth_path)
    return [r1, r2, truth_path]


def write_run_metadata(folder: Path) -> list[Path]:
    """Write the run's ``RunInfo.xml`` (its start) and ``RTAComplete.txt`` (its end) into ``folder``."""
    run_info = folder / "RunInfo.xml"
    write_text(
        run_info,
        f"""<?xml version="1.0" encoding="utf-8"?>
<RunInfo Version="6">
  <Run Id="261125_VH00123_17_AAFXYZ2M5" Number="17">
    <Flowcell>AAFXYZ2M5</Flowcell>
    <Instrument>VH00123</Instrument>
    <Date>{RUN_STARTED.strftime("%Y-%m-%dT%H:%M:%SZ")}</Date>
    <Reads>
      <Read Number="1" NumCycles="151" IsIndexedRead="N" IsReverseComplement="N" />
      <Read Number="2" NumCycles="10" IsIndexedRead="Y" IsReverseComplement="N" />
      <Read Number="3" NumCycles="10" IsIndexedRead="Y" IsReverseComplement="Y" />
      <Read Number="4" NumCycles="151" IsIndexedRead="N" IsReverseComplement="N" />
    </Reads>
  </Run>
</RunInfo>
""",
    )
    rta_complete = folder / "RTAComplete.txt"
    day = f"{RUN_ENDED.month}/{RUN_ENDED.day}/{RUN_ENDED.year}"  # M/D/YYYY, no leading zeros
    ended = f"{day},{RUN_ENDED:%H:%M:%S}.{RUN_ENDED.microsecond // 1000:03d}"
    write_text(rta_complete, f"{ended},Illumina RTA 3.10.30\n")
    return [run_info, rta_complete]


def write_sterility_reads(lot: DemoLot, seed: int, reference_dir: Path, lot_dir: Path) -> list[Path]:
    """Write ``<LOT>_sterility_R1/R2.fastq.gz``, ``<LOT>_sterility_reads_truth.tsv`` and the run's
    metadata (:func:`write_run_metadata`).

    Read names carry each pair's truth (``<source>|<taxid>|<index>``). The same ``seed`` and panel
    give byte-identical files.
    """
    stem = f"{lot.lot_id}_sterility"
    return _write_sample(READ_SOURCES, stem, lot.stream, seed, reference_dir, lot_dir) + write_run_metadata(
        lot_dir
    )


def write_run_controls(seed: int, reference_dir: Path, run_dir: Path) -> list[Path]:
    """Write the run's control samples ``<RUN>_<unit>_R1/R2.fastq.gz`` with their truth tables, and
    the run's metadata."""
    written = write_run_metadata(run_dir)
    for control in RUN_CONTROLS:
        stem = f"{RUN_ID}_{control.unit_id}"
        written += _write_sample(control.sources, stem, control.stream, seed, reference_dir, run_dir)
    return written

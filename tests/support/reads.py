"""What the read tests share: the reference panel they build small indexes from, the real read files
of ../shared/data they read, known FASTQ records, and helpers to write and read reads and tables."""

from __future__ import annotations

import gzip
from pathlib import Path

import pysam
import pytest

from rapidrelease.errors import ReadsError
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.input import ReadBatch, iter_read_batches

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


def write_panel_fasta(path: Path, files: list[str] = SMALL_PANEL) -> Path:
    """The small panel (or these ``files`` of the default panel) as one FASTA with simple ids and
    Kraken's ``|kraken:taxid|`` headers (which kraken2-build also reads), taxids from the default
    panel's seqid map."""
    taxid_of = {}
    for line in (PANEL / "seqid2taxid.map").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            seqid, taxid = line.split("\t")[:2]
            taxid_of[seqid] = int(taxid)
    with open(path, "w") as out:
        number = 0
        for name in files:
            for header, seq in iter_fasta(PANEL / "panel" / name):
                number += 1
                out.write(
                    f">seq{number}|kraken:taxid|{taxid_of[header.split()[0]]}\n{seq.tobytes().decode()}\n"
                )
    return path


def read_table(path: Path) -> list[list[str]]:
    """The rows of a tab-separated text output (per-read output, kreport), each split into fields."""
    return [line.rstrip("\n").split("\t") for line in path.read_text().splitlines(keepends=True)]


# Real read files, relative to ../shared/data (the shared_data fixture): the hostile human NovaSeq
# 50-pair FASTQs, the qcat ONT lambda FASTQ (989 long reads) and the bcftools chr17 BAMs
# (coordinate-sorted, paired, some mates outside the region).
HOST = Path("seq/reads/host")
HOSTILE_R1 = HOST / "hostile_human_ERR3239334_50pairs_R1.fastq.gz"
HOSTILE_R2 = HOST / "hostile_human_ERR3239334_50pairs_R2.fastq.gz"
ONT_LAMBDA = Path("seq/reads/shotgun_real/qcat_ONT_lambda_control_1k.fastq.gz")
CHR17_BAMS = [HOST / f"bcftools_mpileup{i}_1000G_human_chr17_1-4200.bam" for i in (1, 2, 3)]

KNOWN = [
    ("read1/1 lane:1", "ACGTACGTAC" * 15),
    ("read2 1:N:0:ATCACG", "NNNNACGTRYKM" + "A" * 100),
    ("read3/2", "acgtn" * 30),  # soft-masked, as some exporters write
    ("short_34", "G" * 34),  # shorter than a k-mer of 35: the classifier's business, not ours
    ("short_1", "T"),
    ("trimmed_to_nothing", ""),  # cutadapt keeps emptied reads unless told otherwise
    ("read7\tBC:Z:ACGT", "CCCCGGGGTTTTAAAA"),
]
KNOWN_NAMES = ["read1", "read2", "read3", "short_34", "short_1", "trimmed_to_nothing", "read7"]
"""The read ids of :data:`KNOWN`, as the parsers cut them."""


def reads_of(batches: list[ReadBatch], mate: int = 1) -> list[tuple[str, str]]:
    """(name, sequence) of every read of one mate, in batch order."""
    out = []
    for batch in batches:
        seq, offsets = (batch.seq, batch.offsets) if mate == 1 else (batch.seq2, batch.offsets2)
        assert seq is not None and offsets is not None
        for i, name in enumerate(batch.names):
            out.append((name, seq[offsets[i] : offsets[i + 1]].tobytes().decode()))
    return out


def fastq_bytes(records: list[tuple[str, str]], newline: str = "\n") -> bytes:
    """FASTQ text of (header, sequence) records, quality 'I' (Q40) for every base."""
    lines = []
    for header, seq in records:
        lines += [f"@{header}", seq, "+", "I" * len(seq)]
    return (newline.join(lines) + newline).encode()


def pysam_reads(path: Path) -> list[tuple[str, str]]:
    """(name, sequence) of every record of a FASTQ/FASTA file as pysam reads it: independent truth."""
    with pysam.FastxFile(str(path)) as fastx:
        return [(r.name.removesuffix("/1").removesuffix("/2"), r.sequence) for r in fastx]


def gzip_lines(path: Path) -> list[bytes]:
    """The lines of a gzip file, each with its line break."""
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def reads_error(path: Path, **options) -> str:
    """The ReadsError message of reading ``path`` to its end (``options`` as :func:`iter_read_batches`)."""
    with pytest.raises(ReadsError) as caught:
        list(iter_read_batches(path, **options))
    return str(caught.value)

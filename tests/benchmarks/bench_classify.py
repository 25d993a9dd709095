"""Contaminant-read classification side by side: rapidrelease against Kraken 2 on the same panel.

Not a test (no timed assertions): it prints figures. It

1. builds a 42.6-Mb reference panel from ``../shared/data/seq/reference`` (sterility bacteria,
   mycoplasmas and Mollicute marker genes, human TPA scaffolds and MT, lentiviral transfer vectors
   and packaging/cloning plasmids, phiX, lambda and viruses) with a taxonomy TSV of NCBI taxids and
   lineages (the project's resources/reference/taxonomy.tsv wins where both have a taxon) and a
   FASTA whose headers carry ``|kraken:taxid|``. Some strains are held out of the index although
   their species is in it (S. aureus N315 and RF122; K. pneumoniae MGH 78578 and NTUH-K2044), and so
   is the human chr22:20-21 Mb slice (host reads that miss the host index), and two species whose
   genus is in the index but which are not (C. granulosum, E. casseliflavus);
2. simulates reads with ART (``art_illumina -ss HS25 -l 150``; single-end by default, ``--paired``
   for ``-p -m 350 -s 50``) from a mix of in-index strains, held-out strains, held-out and in-index
   host, vectors and absent species, shuffles them into one FASTQ and keeps a truth table (the
   source is in each ART read name); ``--simulator rapidrelease`` uses
   :func:`rapidrelease.synthetic.reads.simulate_reads` instead, to compare the two simulators;
3. builds a Kraken 2 database (``kraken2-build --add-to-library --no-masking``, taxonomy from the
   panel's nodes.dmp/names.dmp, ``--build`` with the default k=35, l=31, s=7) and classifies the
   reads with ``kraken2 --threads 1`` under ``/usr/bin/time -v`` (wall time with database load and
   output included; peak RSS); the index size is hash.k2d's;
4. scores species-level precision and recall per read category against the truth: recall = reads
   assigned to the true species or below / reads of the category; precision = correct species-level
   assignments / all species-level assignments; and counts host reads assigned to a contaminant;
5. does the same for ``rapidrelease refdb build`` and ``rapidrelease classify --threads 1`` when
   that CLI exists (else prints "rapidrelease classify not available yet"), and prints a
   side-by-side table with ratios;
6. with ``--compare-kmers``, builds a second rapidrelease index of every canonical 31-mer
   (``--k 31 --l 31 --spaced 0``) and compares the two designs: entries, size, build, speed,
   memory, accuracy and host reads called a contaminant.

Usage (needs ``apt-get install kraken2 art-nextgen-simulation-tools`` and ../shared/data):
    python tests/benchmarks/bench_classify.py [--reads 1000000] [--paired] [--workdir DIR]
        [--repeats 2] [--simulator art|rapidrelease] [--force] [--compare-kmers]
Intermediate files (panel, reads, databases: ~0.6 GB for 1,000,000 reads) are kept in ``--workdir``
(default ``/tmp/rapidrelease_bench_classify``) and reused by later runs unless ``--force`` (reads for
the same count, mode and seed; Kraken 2's database); rapidrelease's index is rebuilt every run.
On the 2-core, 24-GB development machine a first run with 1,000,000 single-end reads takes about
2.5 minutes: panel 1 s, ART 12 s (two at a time), Kraken 2 build 40 s (2 threads), Kraken 2
classification 12 s per repeat, rapidrelease build 6 s and classification 11 s per repeat,
scoring a few seconds each. Read categories: 40 % in-index strains, 20 % held-out strains, 25 %
held-out host, 5 % in-index host, 5 % vectors, 5 % absent species, split equally among sources.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pysam

from rapidrelease.config.vocabulary import CONTAMINANT_CATEGORIES
from rapidrelease.reads.index import load_index
from rapidrelease.reads.taxonomy import DEFAULT_CATEGORIES, Taxonomy

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "data" / "seq" / "reference"
PROJECT_TAXONOMY = ROOT / "resources" / "reference" / "taxonomy.tsv"
DEFAULT_WORKDIR = Path("/tmp/rapidrelease_bench_classify")
VECTORS_TAXID = 29278  # NCBI "vectors": the truth node of vector reads, which have no species
OVERSAMPLE = 1.3  # ART coverage over the reads wanted from a source; the surplus is dropped at random

# Read categories, in print order. "absent species": a species not in the index whose genus is.
IN_INDEX, HELD_OUT, HOST_OUT, HOST_IN, VECTOR, ABSENT = (
    "in-index strain",
    "held-out strain",
    "host, held out",
    "host, in index",
    "vector",
    "absent species",
)
CATEGORIES = (IN_INDEX, HELD_OUT, HOST_OUT, HOST_IN, VECTOR, ABSENT)
# Share of all reads per category, split equally among the category's sources.
CATEGORY_SHARE = {IN_INDEX: 0.40, HELD_OUT: 0.20, HOST_OUT: 0.25, HOST_IN: 0.05, VECTOR: 0.05, ABSENT: 0.05}

# taxid, parent, rank, name: NCBI taxids (checked against an NCBI dump), current NCBI names; ranks
# between those listed are left out, which Kraken 2 and rapidrelease both allow. Categories come
# from rapidrelease.reads.taxonomy.DEFAULT_CATEGORIES, as in the project's default panel.
# Mycoplasmas keep the classic lineage (Mycoplasma, Mycoplasmataceae, Mycoplasmatales): NCBI has
# since moved M. pneumoniae, M. genitalium and M. gallisepticum to Mycoplasmoides with the same
# species taxids, so species-level figures agree.
TAXONOMY: tuple[tuple[int, int, str, str], ...] = (
    (1, 1, "no rank", "root"),
    (131567, 1, "no rank", "cellular organisms"),
    (2, 131567, "superkingdom", "Bacteria"),
    (2759, 131567, "superkingdom", "Eukaryota"),
    (33208, 2759, "kingdom", "Metazoa"),
    (7711, 33208, "phylum", "Chordata"),
    (40674, 7711, "class", "Mammalia"),
    (9443, 40674, "order", "Primates"),
    (9604, 9443, "family", "Hominidae"),
    (9605, 9604, "genus", "Homo"),
    (9606, 9605, "species", "Homo sapiens"),
    # Bacillota
    (1239, 2, "phylum", "Bacillota"),
    (91061, 1239, "class", "Bacilli"),
    (1385, 91061, "order", "Bacillales"),
    (90964, 1385, "family", "Staphylococcaceae"),
    (1279, 90964, "genus", "Staphylococcus"),
    (1280, 1279, "species", "Staphylococcus aureus"),
    (46170, 1280, "subspecies", "Staphylococcus aureus subsp. aureus"),
    (93062, 46170, "strain", "Staphylococcus aureus subsp. aureus COL"),
    (93061, 46170, "strain", "Staphylococcus aureus subsp. aureus NCTC 8325"),
    (158879, 46170, "strain", "Staphylococcus aureus subsp. aureus N315"),
    (273036, 1280, "strain", "Staphylococcus aureus RF122"),
    (1282, 1279, "species", "Staphylococcus epidermidis"),
    (186817, 1385, "family", "Bacillaceae"),
    (1386, 186817, "genus", "Bacillus"),
    (1423, 1386, "species", "Bacillus subtilis"),
    (135461, 1423, "subspecies", "Bacillus subtilis subsp. subtilis"),
    (224308, 135461, "strain", "Bacillus subtilis subsp. subtilis str. 168"),
    (186826, 91061, "order", "Lactobacillales"),
    (81852, 186826, "family", "Enterococcaceae"),
    (1350, 81852, "genus", "Enterococcus"),
    (1351, 1350, "species", "Enterococcus faecalis"),
    (37734, 1350, "species", "Enterococcus casseliflavus"),
    (1300, 186826, "family", "Streptococcaceae"),
    (1301, 1300, "genus", "Streptococcus"),
    (1307, 1301, "species", "Streptococcus suis"),
    (1314, 1301, "species", "Streptococcus pyogenes"),
    # Pseudomonadota
    (1224, 2, "phylum", "Pseudomonadota"),
    (1236, 1224, "class", "Gammaproteobacteria"),
    (91347, 1236, "order", "Enterobacterales"),
    (543, 91347, "family", "Enterobacteriaceae"),
    (561, 543, "genus", "Escherichia"),
    (562, 561, "species", "Escherichia coli"),
    (83333, 562, "strain", "Escherichia coli K-12"),
    (511145, 83333, "strain", "Escherichia coli str. K-12 substr. MG1655"),
    (590, 543, "genus", "Salmonella"),
    (28901, 590, "species", "Salmonella enterica"),
    (59201, 28901, "subspecies", "Salmonella enterica subsp. enterica"),
    (90371, 59201, "serotype", "Salmonella enterica subsp. enterica serovar Typhimurium"),
    (
        99287,
        90371,
        "strain",
        "Salmonella enterica subsp. enterica serovar Typhimurium str. LT2",
    ),
    (570, 543, "genus", "Klebsiella"),
    (573, 570, "species", "Klebsiella pneumoniae"),
    (72407, 573, "subspecies", "Klebsiella pneumoniae subsp. pneumoniae"),
    (1125630, 72407, "strain", "Klebsiella pneumoniae subsp. pneumoniae HS11286"),
    (272620, 72407, "strain", "Klebsiella pneumoniae subsp. pneumoniae MGH 78578"),
    (484021, 72407, "strain", "Klebsiella pneumoniae subsp. pneumoniae NTUH-K2044"),
    # Actinomycetota
    (201174, 2, "phylum", "Actinomycetota"),
    (1760, 201174, "class", "Actinomycetes"),
    (85009, 1760, "order", "Propionibacteriales"),
    (31957, 85009, "family", "Propionibacteriaceae"),
    (1912216, 31957, "genus", "Cutibacterium"),
    (1747, 1912216, "species", "Cutibacterium acnes"),
    (33011, 1912216, "species", "Cutibacterium granulosum"),
    (85007, 1760, "order", "Mycobacteriales"),
    (1653, 85007, "family", "Corynebacteriaceae"),
    (1716, 1653, "genus", "Corynebacterium"),
    (1717, 1716, "species", "Corynebacterium diphtheriae"),
    # Mycoplasmatota
    (544448, 2, "phylum", "Mycoplasmatota"),
    (31969, 544448, "class", "Mollicutes"),
    (2085, 31969, "order", "Mycoplasmatales"),
    (2092, 2085, "family", "Mycoplasmataceae"),
    (2093, 2092, "genus", "Mycoplasma"),
    (2104, 2093, "species", "Mycoplasma pneumoniae"),
    (272634, 2104, "strain", "Mycoplasma pneumoniae M129"),
    (2097, 2093, "species", "Mycoplasma genitalium"),
    (243273, 2097, "strain", "Mycoplasma genitalium G37"),
    (2096, 2093, "species", "Mycoplasma gallisepticum"),
    (710127, 2096, "strain", "Mycoplasma gallisepticum str. R(low)"),
    (2102, 2093, "species", "Mycoplasma mycoides"),
    (2100, 2093, "species", "Mycoplasma hyorhinis"),
    (2115, 2093, "species", "Mycoplasma fermentans"),
    (186329, 31969, "order", "Acholeplasmatales"),
    (2146, 186329, "family", "Acholeplasmataceae"),
    (2147, 2146, "genus", "Acholeplasma"),
    (2148, 2147, "species", "Acholeplasma laidlawii"),
    # Viruses
    (10239, 1, "superkingdom", "Viruses"),
    (11118, 10239, "family", "Coronaviridae"),
    (694002, 11118, "genus", "Betacoronavirus"),
    (694009, 694002, "species", "Severe acute respiratory syndrome-related coronavirus"),
    (2697049, 694009, "no rank", "Severe acute respiratory syndrome coronavirus 2"),
    (1335626, 694002, "species", "Middle East respiratory syndrome-related coronavirus"),
    (11632, 10239, "family", "Retroviridae"),
    (11646, 11632, "genus", "Lentivirus"),
    (11676, 11646, "species", "Human immunodeficiency virus 1"),
    (11709, 11646, "species", "Human immunodeficiency virus 2"),
    (11308, 10239, "family", "Orthomyxoviridae"),
    (197911, 11308, "genus", "Alphainfluenzavirus"),
    (11320, 197911, "species", "Influenza A virus"),
    (114727, 11320, "no rank", "H1N1 subtype"),
    (211044, 114727, "no rank", "Influenza A virus (A/Puerto Rico/8/1934(H1N1))"),
    (114729, 11320, "no rank", "H2N2 subtype"),
    (488241, 114729, "no rank", "Influenza A virus (A/Korea/426/1968(H2N2))"),
    (119210, 11320, "no rank", "H3N2 subtype"),
    (335341, 119210, "no rank", "Influenza A virus (A/New York/392/2004(H3N2))"),
    (197912, 11308, "genus", "Betainfluenzavirus"),
    (11520, 197912, "species", "Influenza B virus"),
    (518987, 11520, "no rank", "Influenza B virus (B/Lee/1940)"),
    (11158, 10239, "family", "Paramyxoviridae"),
    (11229, 11158, "genus", "Morbillivirus"),
    (11234, 11229, "species", "Measles morbillivirus"),
    (10404, 10239, "family", "Hepadnaviridae"),
    (10405, 10404, "genus", "Orthohepadnavirus"),
    (10407, 10405, "species", "Hepatitis B virus"),
    (10841, 10239, "family", "Microviridae"),
    (10847, 10841, "species", "Escherichia phage phiX174"),
    (186765, 10239, "genus", "Lambdavirus"),
    (10710, 186765, "species", "Escherichia phage lambda"),
    # Vectors: as in the project's default panel, plasmids and transfer vectors are NCBI's
    # "vectors" (no rank), so a vector read counts as correct at that node or below.
    (28384, 1, "no rank", "other sequences"),
    (81077, 28384, "no rank", "artificial sequences"),
    (29278, 81077, "no rank", "vectors"),
)

_MARKER_SPECIES = {
    "Acholeplasma_laidlawii": 2148,
    "Mycoplasma_fermentans": 2115,
    "Mycoplasma_hyorhinis": 2100,
    "Streptococcus_pyogenes": 1314,
}


@dataclass(frozen=True)
class Source:
    """One genome or sequence set of the panel: ``key`` names it in seqids and read names."""

    key: str
    path: str  # under ../shared/data/seq/reference
    taxid: int  # 0: per record, from a kraken:taxid header or a MetaPhlAn marker's species
    in_index: bool
    category: str | None  # the reads' category; None: no reads simulated from it


SOURCES: tuple[Source, ...] = (
    Source("Saureus_COL", "bacteria/Staphylococcus_aureus_COL_NC_002951.2.fasta.gz", 93062, True, IN_INDEX),
    Source(
        "Saureus_NCTC8325",
        "bacteria/Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz",
        93061,
        True,
        IN_INDEX,
    ),
    Source(
        "Saureus_N315", "bacteria/Staphylococcus_aureus_N315_NC_002745.2.fasta.gz", 158879, False, HELD_OUT
    ),
    Source(
        "Saureus_RF122", "bacteria/Staphylococcus_aureus_RF122_NC_007622.1.fasta.gz", 273036, False, HELD_OUT
    ),
    Source(
        "Kpneumoniae_HS11286",
        "bacteria/Klebsiella_pneumoniae_HS11286_CP003200.1.fna.gz",
        1125630,
        True,
        IN_INDEX,
    ),
    Source(
        "Kpneumoniae_MGH78578",
        "bacteria/Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz",
        272620,
        False,
        HELD_OUT,
    ),
    Source(
        "Kpneumoniae_NTUHK2044",
        "bacteria/Klebsiella_pneumoniae_NTUH-K2044_AP006725.1.fna.gz",
        484021,
        False,
        HELD_OUT,
    ),
    Source(
        "Ecoli_MG1655", "bacteria/Escherichia_coli_K12_MG1655_GCF_000005845.2.fna.gz", 511145, True, IN_INDEX
    ),
    Source(
        "Senterica_LT2",
        "bacteria/Salmonella_enterica_Typhimurium_LT2_GCF_000006945.1.fna.gz",
        99287,
        True,
        IN_INDEX,
    ),
    Source("Bsubtilis_168", "bacteria/Bacillus_subtilis_168_GCF_000009045.1.fna.gz", 224308, True, IN_INDEX),
    Source("Cacnes_C1", "bacteria/Cutibacterium_acnes_C1_NC_018707.fasta.gz", 1747, True, IN_INDEX),
    Source("Cgranulosum", "bacteria/Cutibacterium_granulosum_NCTC11865.fasta.gz", 33011, False, ABSENT),
    Source(
        "Efaecalis_YI6", "bacteria/Enterococcus_faecalis_YI6-1_draft5scaffolds.fna.gz", 1351, True, IN_INDEX
    ),
    Source(
        "Ecasseliflavus",
        "bacteria/Enterococcus_casseliflavus_EC20_NC_020995.1.fasta.gz",
        37734,
        False,
        ABSENT,
    ),
    Source(
        "Sepidermidis_ST14",
        "bacteria/Staphylococcus_epidermidis_ST14_LGJG01_draft42contigs.fna.gz",
        1282,
        True,
        IN_INDEX,
    ),
    Source("Ssuis_SC84", "bacteria/Streptococcus_suis_SC84.fasta.gz", 1307, True, IN_INDEX),
    Source(
        "Cdiphtheriae",
        "bacteria/Corynebacterium_diphtheriae_NCTC11397_GCF_001457455.1.fna.gz",
        1717,
        True,
        IN_INDEX,
    ),
    Source("Spyogenes_markers", "bacteria/MetaPhlAn2_markers_Streptococcus_pyogenes.fasta.gz", 0, True, None),
    Source(
        "Mpneumoniae_M129",
        "mycoplasma/Mycoplasma_pneumoniae_GCF_000027345.1_ASM2734v1.fna.gz",
        272634,
        True,
        IN_INDEX,
    ),
    Source(
        "Mgenitalium_G37",
        "mycoplasma/Mycoplasma_genitalium_G37_GCF_000027325.1.fna.gz",
        243273,
        True,
        IN_INDEX,
    ),
    Source(
        "Mgallisepticum_Rlow",
        "mycoplasma/Mycoplasma_gallisepticum_R_low_NC_004829.fa.gz",
        710127,
        True,
        IN_INDEX,
    ),
    Source(
        "JCVI_Syn3A",
        "mycoplasma/JCVI-Syn3A_Mycoplasma_mycoides_derived_CP016816.2.fa.gz",
        2102,
        True,
        IN_INDEX,
    ),
    Source(
        "Mollicute_markers",
        "mycoplasma/MetaPhlAn2_markers_Acholeplasma_laidlawii_Mhyorhinis_Mfermentans.fasta.gz",
        0,
        True,
        None,
    ),
    Source("Human_TPA", "host_human/Homo_sapiens_TPA_scaffolds_1Mb.fa.gz", 9606, True, HOST_IN),
    Source("Human_MT", "host_human/MT-human.fa", 9606, True, HOST_IN),
    Source(
        "Human_chr22", "host_human/Homo_sapiens_chr22_20-21Mb_hisat2_example.fa.gz", 9606, False, HOST_OUT
    ),
    Source("LV_tisacel", "vectors_lab/car_constructs/lentiviral_vector_tisacel.fasta", 29278, True, VECTOR),
    Source("LV_idecel", "vectors_lab/car_constructs/lentiviral_vector_idecel.fasta", 29278, True, VECTOR),
    Source(
        "LV_ciltacel",
        "vectors_lab/car_constructs/lentiviral_vector_ciltacel_oezdemirli.fasta",
        29278,
        True,
        VECTOR,
    ),
    Source("pCMVR8_74", "vectors_lab/pCMVR8.74_lentiviral_packaging_addgene.fa", 29278, True, VECTOR),
    Source("pUC19", "vectors_lab/pUC19_plannotate.fa", 29278, True, None),
    Source("phiX174", "vectors_lab/phiX174_sequana_NC_001422.1.fa", 10847, True, None),
    Source("Lambda", "viruses/kraken2_Lambda.fa", 0, True, None),
    Source("SARS_CoV_2", "viruses/kraken2_COVID_19.fa", 0, True, None),
    Source("SARS", "viruses/kraken2_SARS.fa", 0, True, None),
    Source("MERS", "viruses/kraken2_MERS.fa", 0, True, None),
    Source("HIV1", "viruses/kraken2_HIV_1.fa", 0, True, None),
    Source("HIV2", "viruses/kraken2_HIV_2.fa", 0, True, None),
    Source("FluA_H1N1", "viruses/kraken2_FluA_H1N1.fa", 0, True, None),
    Source("FluA_H2N2", "viruses/kraken2_FluA_H2N2.fa", 0, True, None),
    Source("FluA_H3N2", "viruses/kraken2_FluA_H3N2.fa", 0, True, None),
    Source("FluB", "viruses/kraken2_FluB.fa", 0, True, None),
    Source("Measles", "viruses/Measles_virus_Edmonston_K01711.1.fa", 11234, True, None),
    Source("HBV", "viruses/HBV_GLUE_hbvReadClassification_genotype_refs.fasta.gz", 10407, True, None),
)


# --------------------------------------------------------------------------- panel and taxonomy


def record_taxid(source: Source, header: str) -> int:
    """The taxid of one record of ``source``: the source's, a kraken:taxid tag's, or a marker's."""
    if source.taxid:
        return source.taxid
    tagged = re.search(r"kraken:taxid\|(\d+)", header)
    if tagged:
        return int(tagged.group(1))
    for prefix, taxid in _MARKER_SPECIES.items():
        if header.startswith(prefix):
            return taxid
    raise SystemExit(f"{source.path}: no taxid for record {header!r}")


def read_records(source: Source) -> Iterator[tuple[str, str]]:
    """(header, upper-case sequence) of each record of a source."""
    with pysam.FastxFile(str(REFERENCE / source.path)) as fasta:
        for entry in fasta:
            header = entry.name + (f" {entry.comment}" if entry.comment else "")
            yield header, entry.sequence.upper()


def taxonomy_rows() -> list[tuple[int, int, str, str, str]]:
    """The panel's taxonomy rows (taxid, parent, rank, name, category).

    When the project's default panel has a taxonomy.tsv, its rows are the base and win for every
    taxid both have, so the two panels place shared taxa identically; this panel's other taxa are
    added, each under its own parent, or under the parent a sibling got there when its own parent
    is missing (so C. granulosum stays in C. acnes's genus whatever that genus is called).
    """
    ours = {t: (t, p, r, n, DEFAULT_CATEGORIES.get(t, "")) for t, p, r, n in TAXONOMY}
    if not PROJECT_TAXONOMY.is_file():
        return list(ours.values())
    base = Taxonomy.from_tsv(PROJECT_TAXONOMY)
    rows = {row[0]: row for row in base.rows()}
    for taxid, parent, rank, name, category in ours.values():
        if taxid in rows:
            continue
        if parent not in rows:
            siblings = [t for t, p, _, _ in TAXONOMY if p == parent and t in rows]
            parent = rows[siblings[0]][1] if siblings else parent
        rows[taxid] = (taxid, parent, rank, name, category)
    return list(rows.values())


def write_taxonomy(folder: Path) -> Path:
    """Write taxonomy.tsv and, for kraken2-build, taxonomy/nodes.dmp and names.dmp."""
    tsv = folder / "taxonomy.tsv"
    # Only this panel's taxa and their ancestors: the leaves of TAXONOMY are every taxid a record
    # or a read carries.
    parents = {p for t, p, _, _ in TAXONOMY if p != t}
    leaves = [t for t, _, _, _ in TAXONOMY if t not in parents]
    Taxonomy.from_rows(taxonomy_rows(), source="bench_classify panel").pruned(leaves).to_tsv(tsv)
    Taxonomy.from_tsv(tsv).to_ncbi_dmp(folder / "taxonomy")
    return tsv


def build_panel(workdir: Path) -> dict[str, int]:
    """Write panel.fa (in-index records), sources/<key>.fa (every source, for the read simulator)
    and the taxonomy; return bases in the index per source key."""
    sources_dir = workdir / "sources"
    sources_dir.mkdir(parents=True, exist_ok=True)
    known = {row[0] for row in TAXONOMY}  # every taxid a panel record or read can carry
    bases: dict[str, int] = {}
    with open(workdir / "panel.fa", "w") as panel:
        for source in SOURCES:
            with open(sources_dir / f"{source.key}.fa", "w") as out:
                for i, (header, sequence) in enumerate(read_records(source)):
                    taxid = record_taxid(source, header)
                    if taxid not in known:
                        raise SystemExit(f"{source.path}: taxid {taxid} missing from TAXONOMY")
                    seqid = f"{source.key}__{i}"
                    out.write(f">{seqid}\n{sequence}\n")
                    if source.in_index:
                        panel.write(f">{seqid}|kraken:taxid|{taxid} {header}\n{sequence}\n")
                        bases[source.key] = bases.get(source.key, 0) + len(sequence)
    write_taxonomy(workdir)
    return bases


# --------------------------------------------------------------------------- reads


def reads_per_source(n_reads: int) -> dict[str, int]:
    """Reads to simulate from each source: each category's share split equally among its sources."""
    out: dict[str, int] = {}
    for category in CATEGORIES:
        members = [s.key for s in SOURCES if s.category == category]
        for k, key in enumerate(members):
            total = round(n_reads * CATEGORY_SHARE[category])
            out[key] = total // len(members) + (k < total % len(members))
    return out


def fasta_length(path: Path) -> int:
    with pysam.FastxFile(str(path)) as fasta:
        return sum(len(entry.sequence) for entry in fasta)


def run_art(workdir: Path, key: str, n_reads: int, paired: bool, seed: int) -> list[Path]:
    source_fa = workdir / "sources" / f"{key}.fa"
    genome = fasta_length(source_fa)
    # ART takes a fold coverage, not a read count: reads = coverage × length / read length. It
    # makes fewer where the source has N runs or short contigs, so ask for more and subsample.
    fold = OVERSAMPLE * n_reads * 150 * (2 if paired else 1) / genome
    prefix = workdir / "art" / (key + ("_" if paired else ""))
    cmd = ["art_illumina", "-ss", "HS25", "-i", str(source_fa), "-l", "150", "-f", f"{fold:.6f}"]
    cmd += ["-o", str(prefix), "-rs", str(seed), "-na", "-q"]
    if paired:
        cmd += ["-p", "-m", "350", "-s", "50"]
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise SystemExit(f"art_illumina failed on {source_fa}: {result.stderr.strip()}")
    return [Path(f"{prefix}1.fq"), Path(f"{prefix}2.fq")] if paired else [Path(f"{prefix}.fq")]


def fastq_records(path: Path) -> list[bytes]:
    lines = path.read_bytes().splitlines(keepends=True)
    return [b"".join(lines[i : i + 4]) for i in range(0, len(lines), 4)]


def simulate_with_art(workdir: Path, n_reads: int, paired: bool, seed: int) -> list[Path]:
    """ART reads from every source with reads, shuffled into reads[_1|_2].fq; truth.tsv beside."""
    (workdir / "art").mkdir(exist_ok=True)
    plan = {key: n for key, n in reads_per_source(n_reads).items() if n > 0}
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [(key, n, seed + k) for k, (key, n) in enumerate(plan.items())]
        outputs = list(pool.map(lambda job: run_art(workdir, job[0], job[1], paired, job[2]), jobs))
    mates: list[list[bytes]] = [[], []] if paired else [[]]
    rng = np.random.default_rng(seed)
    for (key, wanted), files in zip(plan.items(), outputs, strict=True):
        per_mate = [fastq_records(path) for path in files]
        if len(per_mate[0]) < wanted:
            raise SystemExit(f"ART made {len(per_mate[0])} reads from {key}, fewer than {wanted}")
        keep = np.sort(rng.choice(len(per_mate[0]), size=wanted, replace=False))
        for m, records in enumerate(per_mate):
            mates[m].extend(records[i] for i in keep)
    order = rng.permutation(len(mates[0]))
    paths = [workdir / (f"reads_{m + 1}.fq" if paired else "reads.fq") for m in range(len(mates))]
    for records, path in zip(mates, paths, strict=True):
        with open(path, "wb") as out:
            out.writelines(records[i] for i in order)
    ids = [records.split(b"\n", 1)[0][1:].decode().removesuffix("/1") for records in mates[0]]
    write_truth(workdir, [ids[i] for i in order])
    shutil.rmtree(workdir / "art")
    return paths


def simulate_with_rapidrelease(workdir: Path, n_reads: int, paired: bool, seed: int) -> list[Path]:
    """The same mix from rapidrelease's own simulator ("hiseq" profile)."""
    from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

    plan = {key: n for key, n in reads_per_source(n_reads).items() if n > 0}
    by_key = {s.key: s for s in SOURCES}
    genomes = []
    for key in plan:
        with pysam.FastxFile(str(workdir / "sources" / f"{key}.fa")) as fasta:
            records = [entry.sequence for entry in fasta]
        genomes.append(SourceGenome.from_records(key, by_key[key].taxid, records))
    reads = simulate_reads(genomes, n_reads, weights=list(plan.values()), paired=paired, seed=seed)
    paths = [workdir / "reads_1.fq", workdir / "reads_2.fq"] if paired else [workdir / "reads.fq"]
    write_fastq(reads, paths[0], paths[1] if paired else None)
    write_truth(workdir, reads.read_ids())
    return paths


def write_truth(workdir: Path, read_ids: list[str]) -> None:
    by_key = {s.key: s for s in SOURCES}
    # ART names reads <seqid>-<n> with seqid <key>__<record>; ours <key>|<taxid>|<n>.
    keys = [re.split(r"__|\|", read_id, maxsplit=1)[0] for read_id in read_ids]
    pl.DataFrame(
        {
            "read_id": read_ids,
            "source": keys,
            "taxid": [by_key[k].taxid for k in keys],
            "category": [by_key[k].category for k in keys],
        }
    ).write_csv(workdir / "truth.tsv", separator="\t")


# --------------------------------------------------------------------------- running and timing


@dataclass
class Run:
    """One timed command: wall seconds, peak RSS in bytes, its stderr."""

    wall_s: float
    peak_rss: int
    stderr: str


def timed(cmd: list[str], log: Path) -> Run:
    """Run ``cmd`` under /usr/bin/time -v; wall time and the max RSS it reports."""
    start = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    wall = time.perf_counter() - start
    log.write_text(result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}); see {log}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return Run(wall, rss_kb * 1024, result.stderr)


def best(runs: Iterable[Run]) -> Run:
    return min(runs, key=lambda r: r.wall_s)


def build_kraken(workdir: Path, threads: int) -> tuple[Path, Run | None]:
    db = workdir / "kraken2_db"
    if (db / "hash.k2d").is_file():
        return db, None
    shutil.rmtree(db, ignore_errors=True)
    (db / "taxonomy").mkdir(parents=True)
    for name in ("nodes.dmp", "names.dmp"):
        shutil.copy(workdir / "taxonomy" / name, db / "taxonomy" / name)
    subprocess.run(
        ["kraken2-build", "--db", str(db), "--add-to-library", str(workdir / "panel.fa"), "--no-masking"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    run = timed(
        ["kraken2-build", "--db", str(db), "--build", "--threads", str(threads)],
        workdir / "kraken2_build.log",
    )
    return db, run


def run_kraken(workdir: Path, db: Path, reads: list[Path], repeats: int) -> Run:
    cmd = ["kraken2", "--db", str(db), "--threads", "1", "--report", str(workdir / "kraken2.kreport")]
    cmd += ["--output", str(workdir / "kraken2.out")]
    if len(reads) == 2:
        cmd.append("--paired")
    cmd += [str(p) for p in reads]
    return best(timed(cmd, workdir / "kraken2_classify.log") for _ in range(repeats))


def rapidrelease_cli() -> list[str] | None:
    """The rapidrelease command when it has both `refdb` and `classify`, else None."""
    exe = Path(sys.executable).with_name("rapidrelease")
    command = [str(exe)] if exe.is_file() else [sys.executable, "-m", "rapidrelease"]
    listing = subprocess.run([*command, "--help"], capture_output=True, text=True).stdout
    if "refdb" not in listing or "classify" not in listing:
        return None
    return command


def run_rapidrelease(
    workdir: Path, reads: list[Path], repeats: int, design: tuple[str, ...] = (), name: str = "rapidrelease"
) -> tuple[Run, Run, Path] | None:
    """Build rapidrelease's index of the panel and classify the reads with one thread.

    The index is rebuilt on every run (a few seconds), unlike Kraken 2's, because it is the code
    under test. ``design`` are extra ``refdb build`` options (k, l, spaced positions); ``name``
    prefixes the output files (``<name>.out``). Returns (build run, best classify run, database
    folder), or None with a message when the CLI is not there yet.
    """
    command = rapidrelease_cli()
    if command is None:
        print("rapidrelease classify not available yet")
        return None
    db = workdir / f"{name}_db"
    build_help = subprocess.run([*command, "refdb", "build", "--help"], capture_output=True, text=True).stdout
    shutil.rmtree(db, ignore_errors=True)
    build = timed(
        [
            *command,
            *("refdb", "build", "--fasta", str(workdir / "panel.fa")),
            *("--taxonomy", str(workdir / "taxonomy.tsv"), "--out", str(db)),
            *(["--no-masking"] if "--no-masking" in build_help else []),  # as Kraken 2's build here
            *design,
        ],
        workdir / f"{name}_build.log",
    )
    classify_help = subprocess.run([*command, "classify", "--help"], capture_output=True, text=True).stdout
    cmd = [*command, "classify", "--db", str(db)]
    cmd += ["--threads", "1"] if "--threads" in classify_help else []
    cmd += ["--paired"] if len(reads) == 2 else []
    cmd += [
        "--out-report",
        str(workdir / f"{name}.kreport"),
        "--out-reads",
        str(workdir / f"{name}.out"),
    ]
    cmd += [str(p) for p in reads]
    run = best(timed(cmd, workdir / f"{name}_classify.log") for _ in range(repeats))
    return build, run, db


# --------------------------------------------------------------------------- scoring


def call_nodes(taxonomy: Taxonomy) -> np.ndarray:
    """Per node, the node a call there counts at: its species (itself or the species above it),
    else the "vectors" node for vector sequences, which have no species; -1 above those."""
    out = np.full(len(taxonomy), -1, dtype=np.int64)
    # parent[i] < i (breadth-first order), so each node's parent is settled before the node.
    for i in range(len(taxonomy)):
        if taxonomy.rank[i] == "species" or int(taxonomy.taxid[i]) == VECTORS_TAXID:
            out[i] = i
        elif i:
            out[i] = out[taxonomy.parent[i]]
    return out


@dataclass
class Score:
    reads: int
    classified: int
    species_calls: int
    correct: int
    host_to_contaminant: int

    @property
    def recall(self) -> float:
        return self.correct / self.reads if self.reads else float("nan")

    @property
    def precision(self) -> float:
        return self.correct / self.species_calls if self.species_calls else float("nan")


def score(per_read: Path, workdir: Path) -> dict[str, Score]:
    """Species-level figures per read category (and "overall") from Kraken-format per-read output."""
    taxonomy = Taxonomy.from_tsv(workdir / "taxonomy.tsv")
    call_node = call_nodes(taxonomy)
    truth = pl.read_csv(workdir / "truth.tsv", separator="\t")
    calls = pl.read_csv(per_read, separator="\t", has_header=False, quote_char=None, infer_schema=False)
    # A bare taxid, or kraken2 --use-names style "name (taxid N)".
    calls = calls.select(
        pl.nth(1).str.replace(r"/[12]$", "").alias("read_id"),
        pl.nth(2).str.extract(r"(\d+)\)?$").cast(pl.Int64).fill_null(0).alias("assigned"),
    )
    if calls.height != truth.height:
        print(f"warning: {calls.height:,} per-read records for {truth.height:,} reads")
    joined = truth.join(calls, on="read_id", how="left").with_columns(pl.col("assigned").fill_null(0))
    assigned = joined["assigned"].to_numpy()
    known = np.isin(assigned, taxonomy.taxid)
    if ((assigned > 0) & ~known).any():
        strangers = np.unique(assigned[(assigned > 0) & ~known])
        print(f"warning: assigned taxids not in the panel taxonomy: {strangers}")
    called = np.full(assigned.size, -1, dtype=np.int64)
    called[known] = call_node[taxonomy.index_of(assigned[known])]
    expected = call_node[taxonomy.index_of(joined["taxid"].to_numpy())]
    category_of_node = np.array(taxonomy.category)
    called_category = category_of_node[np.maximum(called, 0)]
    contaminant_call = (called >= 0) & np.isin(called_category, CONTAMINANT_CATEGORIES)
    category = joined["category"].to_numpy()
    out: dict[str, Score] = {}
    for name in (*CATEGORIES, "overall"):
        mask = np.ones(len(category), bool) if name == "overall" else category == name
        host = mask & np.isin(category, [HOST_IN, HOST_OUT])
        out[name] = Score(
            reads=int(mask.sum()),
            classified=int((mask & (assigned > 0)).sum()),
            species_calls=int((mask & (called >= 0)).sum()),
            correct=int((mask & (called >= 0) & (called == expected)).sum()),
            host_to_contaminant=int((host & contaminant_call).sum()),
        )
    return out


def kraken_speed_line(stderr: str, unit: str) -> str:
    """Kraken 2's own timing of classification alone (database load excluded)."""
    match = re.search(r"processed in ([\d.]+)s \(([\d.]+) Kseq/m", stderr)
    return (
        f"{match.group(1)} s classifying, {float(match.group(2)) * 1000 / 60:,.0f} {unit}/s"
        if match
        else "n/a"
    )


def print_scores(label: str, scores: dict[str, Score], unit: str) -> None:
    print(f"\n{label}: species level")
    header = f"{unit:>10}{'classified':>12}{'species calls':>15}{'recall':>9}{'precision':>11}"
    print(f"  {'category':<18}{header}")
    for name, s in scores.items():
        recall = "-" if name == ABSENT else f"{s.recall:.4f}"
        print(
            f"  {name:<18}{s.reads:>10,}{s.classified / max(s.reads, 1):>12.4f}{s.species_calls:>15,}"
            f"{recall:>9}{s.precision:>11.4f}"
        )
    print(f"  host reads assigned to a contaminant species: {scores['overall'].host_to_contaminant:,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=1_000_000, help="reads (pairs with --paired)")
    parser.add_argument("--paired", action="store_true", help="2x150 pairs (insert 350±50) instead of 1x150")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--repeats", type=int, default=2, help="classification runs each; the fastest counts")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--simulator", choices=("art", "rapidrelease"), default="art")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--force", action="store_true", help="start afresh: delete --workdir first")
    parser.add_argument(
        "--compare-kmers",
        action="store_true",
        help="also index every canonical 31-mer (k = l = 31, no spaced seed) and compare with minimizers",
    )
    args = parser.parse_args(argv)
    for tool in ("kraken2", "kraken2-build", "/usr/bin/time") + (
        ("art_illumina",) if args.simulator == "art" else ()
    ):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install kraken2 art-nextgen-simulation-tools time")
    if not REFERENCE.is_dir():
        raise SystemExit(f"reference data not found at {REFERENCE}")
    workdir: Path = args.workdir
    if args.force:
        shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    bases = build_panel(workdir)
    print(
        f"panel: {sum(bases.values()) / 1e6:.1f} Mb in the index from {len(bases)} sources "
        f"({time.perf_counter() - start:.0f} s)"
    )

    stamp = workdir / f"reads.{args.simulator}.{args.reads}.{'pe' if args.paired else 'se'}.{args.seed}"
    reads = [workdir / "reads_1.fq", workdir / "reads_2.fq"] if args.paired else [workdir / "reads.fq"]
    if not stamp.is_file():
        start = time.perf_counter()
        for old in workdir.glob("reads.*.*"):
            old.unlink()
        simulate = simulate_with_art if args.simulator == "art" else simulate_with_rapidrelease
        reads = simulate(workdir, args.reads, args.paired, args.seed)
        stamp.touch()
        print(
            f"reads: {args.reads:,} {'pairs' if args.paired else 'single-end'} 150-bp reads "
            f"({args.simulator}, {time.perf_counter() - start:.0f} s)"
        )
    truth = pl.read_csv(workdir / "truth.tsv", separator="\t")
    n_reads = truth.height
    unit = "pairs" if args.paired else "reads"  # speeds count fragments: a pair is one
    print(f"truth: {n_reads:,} {unit}; {dict(Counter(truth['category'].to_list()))}")

    db, build = build_kraken(workdir, args.build_threads)
    if build:
        print(f"kraken2-build --build: {build.wall_s:.0f} s, peak RSS {build.peak_rss / 2**20:.0f} MiB")
    kraken = run_kraken(workdir, db, reads, args.repeats)
    kraken_index = (db / "hash.k2d").stat().st_size
    kraken_scores = score(workdir / "kraken2.out", workdir)
    print(
        f"\nKraken 2 (--threads 1, best of {args.repeats}): wall {kraken.wall_s:.1f} s, "
        f"{n_reads / kraken.wall_s:,.0f} {unit}/s per thread (load + output included; "
        f"{kraken_speed_line(kraken.stderr, unit)}), peak RSS {kraken.peak_rss / 2**20:.0f} MiB, "
        f"hash.k2d {kraken_index / 2**20:.1f} MiB"
    )
    print_scores("Kraken 2", kraken_scores, unit)

    ours = run_rapidrelease(workdir, reads, args.repeats)
    if ours is None:
        return 0
    our_build, our_run, our_db = ours
    our_index = sum(p.stat().st_size for p in our_db.rglob("*") if p.is_file())
    rss = our_build.peak_rss / 2**20
    print(f"\nrapidrelease refdb build: {our_build.wall_s:.0f} s, peak RSS {rss:.0f} MiB")
    our_scores = score(workdir / "rapidrelease.out", workdir)
    print_scores("rapidrelease", our_scores, unit)
    k_all, o_all = kraken_scores["overall"], our_scores["overall"]
    print("\nside by side (one thread)")
    print(f"  {'':<28}{'rapidrelease':>14}{'Kraken 2':>14}{'ratio':>9}")
    table = [
        (f"{unit}/s per thread", n_reads / our_run.wall_s, n_reads / kraken.wall_s, ",.0f"),
        ("peak RSS (MiB)", our_run.peak_rss / 2**20, kraken.peak_rss / 2**20, ",.0f"),
        ("index size (MiB)", our_index / 2**20, kraken_index / 2**20, ",.1f"),
        ("precision (overall)", o_all.precision, k_all.precision, ".4f"),
        ("recall (overall)", o_all.recall, k_all.recall, ".4f"),
    ]
    for name in CATEGORIES:
        if name != ABSENT:
            table.append((f"recall: {name}", our_scores[name].recall, kraken_scores[name].recall, ".4f"))
        table.append((f"precision: {name}", our_scores[name].precision, kraken_scores[name].precision, ".4f"))
    table.append(("host → contaminant reads", o_all.host_to_contaminant, k_all.host_to_contaminant, ",.0f"))
    for name, ours_value, theirs, fmt in table:
        ratio = f"{ours_value / theirs:.2f}" if theirs else "-"
        print(f"  {name:<28}{ours_value:>14{fmt}}{theirs:>14{fmt}}{ratio:>9}")
    if args.compare_kmers:
        compare_designs(workdir, reads, args.repeats, n_reads, unit, (our_build, our_run, our_db), our_scores)
    return 0


def compare_designs(
    workdir: Path,
    reads: list[Path],
    repeats: int,
    n_reads: int,
    unit: str,
    minimizer_runs: tuple[Run, Run, Path],
    minimizer_scores: dict[str, Score],
) -> None:
    """The same panel and reads with every canonical 31-mer indexed instead of Kraken 2's minimizers."""
    kmers = run_rapidrelease(
        workdir, reads, repeats, ("--k", "31", "--l", "31", "--spaced", "0"), "canonical31"
    )
    if kmers is None:
        return
    kmer_scores = score(workdir / "canonical31.out", workdir)
    designs = {
        "minimizers k35 l31 s7": (minimizer_runs, minimizer_scores),
        "canonical 31-mers": (kmers, kmer_scores),
    }
    print("\nindex designs (rapidrelease, one thread)")
    print(f"  {'':<28}" + "".join(f"{name:>24}" for name in designs))
    rows: list[tuple[str, list[str]]] = []
    for label, get in (
        ("entries", lambda runs, _: f"{load_index(runs[2]).manifest['counts']['minimizers']:,}"),
        (
            "index size (MiB)",
            lambda runs, _: f"{sum(f.stat().st_size for f in runs[2].rglob('*')) / 2**20:,.1f}",
        ),
        ("build s / peak MiB", lambda runs, _: f"{runs[0].wall_s:.0f} / {runs[0].peak_rss / 2**20:,.0f}"),
        (f"{unit}/s", lambda runs, _: f"{n_reads / runs[1].wall_s:,.0f}"),
        ("classify peak RSS (MiB)", lambda runs, _: f"{runs[1].peak_rss / 2**20:,.0f}"),
    ):
        rows.append((label, [get(runs, scores) for runs, scores in designs.values()]))
    for name in CATEGORIES:
        if name != ABSENT:
            rows.append((f"recall: {name}", [f"{s[name].recall:.4f}" for _, s in designs.values()]))
        rows.append((f"precision: {name}", [f"{s[name].precision:.4f}" for _, s in designs.values()]))
    rows.append(
        ("host → contaminant reads", [f"{s['overall'].host_to_contaminant:,}" for _, s in designs.values()])
    )
    for label, values in rows:
        print(f"  {label:<28}" + "".join(f"{v:>24}" for v in values))


if __name__ == "__main__":
    sys.exit(main())

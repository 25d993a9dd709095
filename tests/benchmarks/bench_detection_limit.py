"""How low a contaminant the sterility calls detect, and whether host-only samples ever give a false call.

A titration on real genomes from ../shared/data/seq: product samples of human reads from sequence
the default panel does not index (chr22 20-21 Mb) plus the real ERR3239334 human pairs, and
Klebsiella pneumoniae HS11286 (a strain the panel does not hold) spiked at a ladder of reads per
million; two host-only negative controls. Every sample is classified against the default panel and
called exactly as the workflow calls it (rapidrelease.sterility.calls). Printed: false calls over
all host-only samples, and per level the detection rate against the Poisson expectation
P(X >= threshold) for the reads actually classified to K. pneumoniae.

    .venv/bin/python tests/benchmarks/bench_detection_limit.py [--pairs 200000] [--replicates 5]

Not part of the test suite (a few minutes); the note of the sterility issue quotes its output.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.config.run import DetectionSettings, Unit
from rapidrelease.reads.classify import ClassifyOptions, classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.index import build_index, load_index
from rapidrelease.stats import tail_at_least
from rapidrelease.sterility.calls import (
    DETECTED,
    ReferenceFacts,
    UnitReads,
    call_organisms,
    detection_threshold,
)
from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

ROOT = Path(__file__).resolve().parents[2]
SEQ = ROOT.parent / "shared" / "data" / "seq"
PANEL = ROOT / "resources" / "reference"
LEVELS_RPM = (5, 10, 15, 20, 30, 40, 60)


def _genome(name: str, taxid: int, path: Path) -> SourceGenome:
    return SourceGenome.from_records(name, taxid, [sequence for _, sequence in iter_fasta(path)])


def _index(folder: Path):
    prebuilt = ROOT / "resources" / "refdb"
    if (prebuilt / "manifest.json").is_file():
        return load_index(prebuilt)
    return build_index(
        sorted((PANEL / "panel").iterdir()),
        PANEL / "taxonomy.tsv",
        folder / "refdb",
        seqid2taxid_path=PANEL / "seqid2taxid.map",
    )


def _sample(
    index, genomes, pairs: int, contaminant_rpm: float, seed: int, folder: Path, name: str
) -> UnitReads:
    weights = [contaminant_rpm / 1e6, 0.01, 1 - 0.01 - contaminant_rpm / 1e6]
    reads = simulate_reads(
        [genomes["kpneu"], genomes["phix"], genomes["human"]], pairs, weights=weights, seed=seed
    )
    r1, r2 = folder / f"{name}_R1.fq.gz", folder / f"{name}_R2.fq.gz"
    write_fastq(reads, r1, r2, gzip=True)
    for mate, path in ((1, r1), (2, r2)):
        with open(path, "ab") as out:
            real = SEQ / "reads" / "host" / f"hostile_human_ERR3239334_50pairs_R{mate}.fastq.gz"
            out.write(real.read_bytes())
    totals = classify_reads(
        index, r1, r2, ClassifyOptions(), folder / f"{name}.kreport", None, folder / f"{name}.tsv"
    )
    table = pl.read_parquet(folder / f"{name}.parquet")
    unit = Unit("BENCH", name, "sterility_reads", "test", r1, r2)
    return UnitReads(unit, totals.reads, {int(r["taxid"]): r for r in table.iter_rows(named=True)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="read pairs per product sample")
    parser.add_argument("--replicates", type=int, default=5, help="samples per level (different seeds)")
    args = parser.parse_args(argv)
    if not (SEQ / "reference").is_dir():
        print(f"needs the public data at {SEQ}", file=sys.stderr)
        return 1
    ref = SEQ / "reference"
    genomes = {
        "human": _genome("human", 9606, ref / "host_human/Homo_sapiens_chr22_20-21Mb_hisat2_example.fa.gz"),
        "kpneu": _genome("kpneu", 573, ref / "bacteria/Klebsiella_pneumoniae_HS11286_CP003200.1.fna.gz"),
        "phix": _genome("phix", 10847, PANEL / "panel/phiX174_sequana_NC_001422.1.fa"),
    }
    settings = DetectionSettings()
    work = Path(tempfile.mkdtemp(prefix="rapidrelease-lod-"))
    started = time.perf_counter()
    try:
        index = _index(work)
        facts = ReferenceFacts.from_index(index)
        negatives = [_sample(index, genomes, args.pairs // 4, 0, 900 + i, work, f"NC{i}") for i in (1, 2)]
        threshold = detection_threshold(args.pairs + 50, [(0, n.fragments) for n in negatives], settings)
        print(
            f"product samples: {args.pairs:,} simulated pairs + 50 real human pairs; two host-only negative"
        )
        print(f"controls of {args.pairs // 4:,} pairs; detection threshold {threshold} reads")
        false_calls, host_fragments = 0, 0
        for replicate in range(args.replicates):
            sample = _sample(index, genomes, args.pairs, 0, 100 + replicate, work, f"HOST{replicate}")
            calls = call_organisms(sample, negatives, "sterility_reads", "shotgun", settings, facts)
            false_calls += sum(c.call == DETECTED for c in calls)
            host_fragments += sample.fragments
        print(
            f"host-only samples: {args.replicates}, {host_fragments:,} fragments, false calls: {false_calls}"
        )
        print()
        print("K. pneumoniae  expected  classified  detected  P(detect) from the")
        print("   RPM   reads  reads (mean)     /reps   classified reads (Poisson)")
        for level in LEVELS_RPM:
            detected, reads_seen, expected = 0, [], []
            for replicate in range(args.replicates):
                seed = 1000 * level + replicate
                sample = _sample(index, genomes, args.pairs, level, seed, work, f"KP{level}_{replicate}")
                calls = call_organisms(sample, negatives, "sterility_reads", "shotgun", settings, facts)
                wrong = [c for c in calls if c.call == DETECTED and c.taxid not in (573, 570)]
                false_calls += len(wrong)
                detected += any(c.call == DETECTED and c.taxid in (573, 570) for c in calls)
                reads_seen.append(sample.reads_of(573, "species"))
            recovery = np.mean(reads_seen) / (level * args.pairs / 1e6)
            expected = tail_at_least(threshold, level * args.pairs / 1e6 * recovery)
            print(
                f"{level:6g} {level * args.pairs / 1e6:7.1f} {np.mean(reads_seen):12.1f} "
                f"{detected:5d}/{args.replicates:<4d} {expected:8.2f}"
            )
        print()
        print(f"false calls of any other organism across every sample: {false_calls}")
        print(f"elapsed {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

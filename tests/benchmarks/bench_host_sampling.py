"""Host sampling: what a host-sampled index costs in host sensitivity, and what a whole human genome needs.

Not a test (no assertions on figures): it prints them. A whole human genome (3.1 Gb) holds about a
billion distinct Kraken 2 minimizers; indexing all of them needs a table of about 4 GB and a build
that holds them as 64-bit keys several times over. ``rapidrelease refdb build --host-sample N`` keeps
one in N of the minimizers found only in host sequences, and every host minimizer shared with a
non-host sequence (labelled with the LCA as always), so sampling costs host reads hits but never
makes a host read look like a contaminant. This script measures that trade on the human sequence
available here and extrapolates the sizes to GRCh38.

1. Panel: the default panel (``resources/reference``, with 1 Mb of human TPA scaffolds) plus the
   human chr22:20-21 Mb slice of ``../shared/data/seq/reference/host_human`` as more host: 2 Mb of
   human in all.
2. For N in 1, 2, 4, 8, 16: ``rapidrelease refdb build --host-sample N`` under ``/usr/bin/time -v``
   (build time and peak RSS), then classification (Kraken 2's defaults: confidence 0, two hit
   groups) of
   - 20,000 single-end 150-bp reads and 10,000 pairs simulated from the indexed human sequence
     (:func:`rapidrelease.synthetic.reads.simulate_reads`, HiSeq error model): called host,
     unclassified, called a contaminant;
   - 10,000 single-end reads of *S. aureus* NCTC 8325 (in the panel): called to it or below, which
     sampling must not change;
   - the real human reads in ``../shared/data/seq/reads/host`` (NovaSeq pairs of ERR3239334 and the
     1000 Genomes chr17 BAMs), mostly from outside the 2 Mb indexed: called a contaminant.
3. Build scaling: random "host" genomes of ``--scale-mb`` sizes (default 100 and 300 Mb, records of
   50 Mb like chromosomes) built with N = 1 and 4: time and peak RSS, and from the two sizes the
   marginal build memory per minimizer.
4. Extrapolation to GRCh38 (3,100 Mb): human minimizers per indexed Mb (from step 2, real human
   sequence, whose repeats make it lower than random sequence's) × 3,100 / N, times the index's
   bytes per minimizer for the table and the marginal build bytes per minimizer for the build.

Usage: python tests/benchmarks/bench_host_sampling.py [--workdir DIR] [--samples 1,2,4,8,16]
       [--scale-mb 100,300]
Takes about 10 minutes on the 2-core development machine (a build of the 31-Mb panel is ~15 s, of
300 Mb of random sequence ~2.5 min).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from rapidrelease.config.vocabulary import CONTAMINANT_CATEGORIES
from rapidrelease.reads.classify import ClassifyOptions, classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.index import load_index
from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

ROOT = Path(__file__).resolve().parents[2]
PANEL = ROOT / "resources" / "reference"
SHARED = ROOT.parent / "shared" / "data" / "seq"
CHR22 = SHARED / "reference" / "host_human" / "Homo_sapiens_chr22_20-21Mb_hisat2_example.fa.gz"
HUMAN_TPA = PANEL / "panel" / "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz"
S_AUREUS = PANEL / "panel" / "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz"
REAL_HOST = SHARED / "reads" / "host"
GRCH38_MB = 3_100


def _records(path: Path) -> list[np.ndarray]:
    return [seq for _, seq in iter_fasta(path)]


def _prepare(workdir: Path) -> dict[str, list[Path]]:
    """The extra host FASTA and the read sets (simulated once, reused)."""
    workdir.mkdir(parents=True, exist_ok=True)
    chr22 = workdir / "chr22_20-21Mb.fa"
    if not chr22.exists():
        seq = b"".join(s.tobytes() for s in _records(CHR22))
        chr22.write_bytes(b">chr22_20_21Mb|kraken:taxid|9606\n" + seq + b"\n")
    human = SourceGenome.from_records("human", 9606, _records(HUMAN_TPA) + _records(chr22))
    aureus = SourceGenome.from_records("aureus", 93061, _records(S_AUREUS))
    reads = {
        "host SE": [workdir / "host_se.fq"],
        "host pairs": [workdir / "host_r1.fq", workdir / "host_r2.fq"],
        "S. aureus": [workdir / "aureus.fq"],
    }
    if not reads["host SE"][0].exists():
        write_fastq(simulate_reads([human], 20_000, paired=False, seed=1), *reads["host SE"])
    if not reads["host pairs"][0].exists():
        write_fastq(simulate_reads([human], 10_000, paired=True, seed=2), *reads["host pairs"])
    if not reads["S. aureus"][0].exists():
        write_fastq(simulate_reads([aureus], 10_000, paired=False, seed=3), *reads["S. aureus"])
    real = sorted(REAL_HOST.glob("*R1.fastq.gz"))
    if real:
        reads["real human pairs"] = [real[0], Path(str(real[0]).replace("_R1", "_R2"))]
    for n, bam in enumerate(sorted(REAL_HOST.glob("*.bam"))):
        reads[f"real human BAM {n + 1}"] = [bam]
    return reads


def _random_host(workdir: Path, megabases: int) -> Path:
    """A random 'human' genome of ``megabases`` Mb in 50-Mb records (written once, reused)."""
    path = workdir / f"random_host_{megabases}Mb.fa"
    if not path.exists():
        rng = np.random.default_rng(megabases)
        with open(path, "wb") as out:
            for record, start in enumerate(range(0, megabases, 50)):
                size = min(50, megabases - start) * 1_000_000
                bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size, dtype=np.uint8)]
                out.write(f">random{record}|kraken:taxid|9606\n".encode() + bases.tobytes() + b"\n")
    return path


def _build(workdir: Path, fasta: list[Path], sample: int, name: str) -> tuple[Path, float, float]:
    """Build with --host-sample; return the folder, wall seconds and peak RSS in MB."""
    out = workdir / name
    command = [
        "/usr/bin/time", "-v", sys.executable, "-m", "rapidrelease", "refdb", "build",
        "--fasta", *map(str, fasta),
        "--taxonomy", str(PANEL / "taxonomy.tsv"), "--seqid2taxid", str(PANEL / "seqid2taxid.map"),
        "--host-sample", str(sample), "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", done.stderr
    )
    seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return out, seconds, rss_kb / 1024


def _calls(db: Path, files: list[Path]) -> dict[str, float]:
    """Percent of fragments called host, S. aureus (or below) or left unclassified; fragments called
    a contaminant (a count: the few there are matter)."""
    index = load_index(db)
    taxonomy = index.taxonomy
    totals = classify_reads(index, files[0], files[1] if len(files) == 2 else None, ClassifyOptions())
    category = np.array(taxonomy.category, dtype=object)
    reads = max(totals.reads, 1)
    aureus = taxonomy.index_of([1280])[0]
    in_aureus = taxonomy.is_ancestor(aureus, np.arange(len(taxonomy)))
    return {
        "host": 100 * totals.direct_reads[category == "host"].sum() / reads,
        "contaminant": int(totals.direct_reads[np.isin(category, CONTAMINANT_CATEGORIES)].sum()),
        "aureus": 100 * totals.direct_reads[in_aureus].sum() / reads,
        "unclassified": 100 * (totals.reads - totals.classified) / reads,
        "fragments": totals.reads,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rapidrelease_bench_host_sampling"))
    parser.add_argument("--samples", default="1,2,4,8,16")
    parser.add_argument("--scale-mb", default="100,300")
    args = parser.parse_args(argv)
    if not CHR22.exists():
        print(f"needs ../shared/data ({CHR22} is missing)")
        return 1
    reads = _prepare(args.workdir)
    rows = []
    for sample in (int(n) for n in args.samples.split(",")):
        panel = [*sorted((PANEL / "panel").iterdir()), args.workdir / "chr22_20-21Mb.fa"]
        db, seconds, peak_mb = _build(args.workdir, panel, sample, f"db_host{sample}")
        index = load_index(db)
        category = np.array(index.taxonomy.category, dtype=object)
        host_minimizers = int(index.minimizers_per_taxon[category == "host"].sum())
        counts = index.manifest["counts"]
        calls = {name: _calls(db, files) for name, files in reads.items()}
        rows.append((sample, host_minimizers, counts, seconds, peak_mb, calls))
        built = f"{counts['minimizers']:,} minimizers, {seconds:.1f} s, {peak_mb:,.0f} MB"
        print(f"built --host-sample {sample}: {built}")

    print("\nhost-sampled indexes (default panel + human chr22:20-21 Mb; 2.0 Mb of human in all)")
    header = f"{'N':>3} {'host minimizers':>16} {'table MB':>9} {'build s':>8} {'build MB':>9}"
    print(header)
    for sample, host_minimizers, counts, seconds, peak_mb, _ in rows:
        table_mb = counts["table_bytes"] / 1e6
        print(f"{sample:>3} {host_minimizers:>16,} {table_mb:>9.1f} {seconds:>8.1f} {peak_mb:>9,.0f}")
    for name in reads:
        fragments = rows[0][5][name]["fragments"]
        print(
            f"\n{name} ({fragments:,} fragments): % called host, S. aureus, unclassified; "
            "number called a contaminant"
        )
        for sample, *_, calls in rows:
            c = calls[name]
            shares = " ".join(f"{c[k]:7.2f}" for k in ("host", "aureus", "unclassified"))
            print(f"  N={sample:<3} {shares} {c['contaminant']:7,}")

    print("\nbuild scaling on random host sequence (records of 50 Mb)")
    print(f"{'Mb':>5} {'N':>3} {'minimizers':>12} {'build s':>8} {'peak MB':>8}")
    scaling = []
    for megabases in (int(m) for m in args.scale_mb.split(",") if m):
        fasta = _random_host(args.workdir, megabases)
        for sample in (1, 4):
            db, seconds, peak_mb = _build(args.workdir, [fasta], sample, f"db_random{megabases}_{sample}")
            minimizers = load_index(db).manifest["counts"]["minimizers"]
            scaling.append((megabases, sample, minimizers, seconds, peak_mb))
            print(f"{megabases:>5} {sample:>3} {minimizers:>12,} {seconds:>8.1f} {peak_mb:>8,.0f}")
    if not scaling:
        return 0
    unsampled = [row for row in scaling if row[1] == 1]
    first, last = min(unsampled), max(unsampled)
    marginal = (last[4] - first[4]) * 2**20 / max(last[2] - first[2], 1)
    rates = {
        sample: seconds / megabases for megabases, sample, _, seconds, _ in scaling if megabases == last[0]
    }
    speed = ", ".join(f"{rate:.2f} s per Mb with N={sample}" for sample, rate in rates.items())
    print(f"marginal build memory {marginal:.0f} bytes per minimizer; {speed}")

    base = rows[0]
    human_mb = base[2]["bases_per_category"].get("host", 0) / 1e6
    per_mb = base[1] / human_mb
    bytes_per_minimizer = base[2]["table_bytes"] / base[2]["minimizers"]
    print(
        f"\nGRCh38 ({GRCH38_MB:,} Mb) extrapolated from {per_mb:,.0f} host minimizers per indexed Mb of "
        f"real human sequence, {bytes_per_minimizer:.2f} table bytes and {marginal:.0f} build bytes "
        "per minimizer:"
    )
    for sample in (int(n) for n in args.samples.split(",")):
        kept = per_mb * GRCH38_MB / sample
        table_gb, build_gb = kept * bytes_per_minimizer / 1e9, kept * marginal / 1e9
        print(
            f"  N={sample:<3} {kept / 1e6:6,.0f} M host minimizers, table {table_gb:5.2f} GB, "
            f"build peak about {build_gb:5.1f} GB"
        )
    minutes = ", ".join(f"{GRCH38_MB * rate / 60:.0f} min with N={sample}" for sample, rate in rates.items())
    print(f"  build time at the measured rates (one core): {minutes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reads of any length in bounded memory: peak RSS and speed of ``rapidrelease classify`` for one read of
1, 10 and 100 Mb (FASTQ, FASTA, BAM), for a file of 10-kb long reads and for short reads.

Not a test (no timed assertions): it prints figures. It

1. builds the default index (``resources/reference``) into ``--workdir``, or uses ``--db``;
2. writes one-read files of each ``--lengths`` (Mb): E. coli K-12 from the panel, tiled to length,
   with 5 % substitutions, as FASTQ, FASTA (80 columns) and unaligned BAM; with ``--stack N``, FASTQ
   and BAM files of N copies of the longest (every worker process then holds one); ``--long-reads`` 10-kb
   reads of the same kind in one FASTQ; ``--short-reads`` simulated 150-bp reads from four panel
   genomes (``rapidrelease.synthetic.reads``); and takes the demo lot's sterility pair as it is;
3. runs ``python -m rapidrelease classify`` on each, as a person does (``--out-report``) and as the
   workflow does (``--part 1/4 --out-partial``), with each ``--threads``, under ``/usr/bin/time``:
   the peak RSS is that of the command's largest process (``time``'s ``%M``), and beside it the
   peak of the process tree's summed PSS sampled every 20 ms (shared pages, such as the
   memory-mapped index, split among the processes), which with worker processes is what the job
   holds;
4. times ``classify_reads`` in this process on the short-read files and the 10-kb reads (best of
   ``--repeats``), so reads/s exclude the start-up and index load that the command's wall time
   includes;
5. prints the classify rule's ``mem_mb`` (workflow/rules/reads.smk) for this index beside the peaks.

The script uses only what every version of the package has, so running it with ``PYTHONPATH``
pointing at an older checkout's ``scripts`` measures that version the same way.

Usage:
    python tests/benchmarks/bench_long_reads.py [--workdir DIR] [--db DIR] [--lengths 1 10 100]
        [--stack 0] [--long-reads 2000] [--short-reads 1000000] [--threads 1 2] [--repeats 3]

The figures behind the classify rule's mem_mb (reads at the length limit, 2^27 bases):
    python tests/benchmarks/bench_long_reads.py --lengths 134 --stack 6 --threads 1 2 4 \
        --long-reads 0 --short-reads 0

Inputs are kept in ``--workdir`` (default ``/tmp/rapidrelease_bench_long_reads``, ~0.7 GB with the
100-Mb read) and reused. On the 2-core, 24-GB development machine the defaults take about 15 minutes,
most of it on the 100-Mb read, and the mem_mb figures about as long.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "resources" / "reference"
DEMO = ROOT / "resources" / "demo" / "DEMO-001"
ECOLI = REFERENCE / "panel" / "Escherichia_coli_K-12_MG1655_ragout.fasta.gz"
SHORT_SOURCES = {  # file of the panel → taxid, for the simulated short reads
    "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz": 93061,
    "Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz": 272620,
    "Escherichia_coli_K-12_MG1655_ragout.fasta.gz": 511145,
    "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz": 9606,
}


def _acgt_genome() -> np.ndarray:
    from rapidrelease.reads.fasta import iter_fasta

    genome = np.concatenate([seq for _, seq in iter_fasta(ECOLI)])
    return genome[np.isin(genome, np.frombuffer(b"ACGT", dtype=np.uint8))]


def _noisy(genome: np.ndarray, start: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` bases of the genome, circular from ``start``, with 5 % substitutions."""
    reps = -(-(start + length) // len(genome))
    seq = np.tile(genome, reps)[start : start + length].copy()
    changed = rng.random(length) < 0.05
    seq[changed] = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, int(changed.sum()))]
    return seq


def _write_one_read(folder: Path, megabases: int, genome: np.ndarray) -> dict[str, Path]:
    paths = {kind: folder / f"read_{megabases}Mb.{kind}" for kind in ("fastq", "fasta", "bam")}
    if all(p.exists() for p in paths.values()):
        return paths
    import pysam

    n = megabases * 1_000_000
    seq = _noisy(genome, 0, n, np.random.default_rng(megabases)).tobytes()
    name = f"long{megabases}Mb".encode()
    with open(paths["fastq"], "wb") as fh:
        fh.write(b"@" + name + b"\n" + seq + b"\n+\n" + b"I" * n + b"\n")
    with open(paths["fasta"], "wb") as fh:
        fh.write(b">" + name + b"\n")
        for i in range(0, n, 80 * 100_000):
            block = np.frombuffer(seq[i : i + 80 * 100_000], dtype=np.uint8)
            lines = np.full(len(block) + -(-len(block) // 80), 10, dtype=np.uint8)
            lines[np.arange(len(block)) + np.arange(len(block)) // 80] = block
            fh.write(lines.tobytes())
    with pysam.AlignmentFile(str(paths["bam"]), "wb", header={"HD": {"VN": "1.6", "SO": "unsorted"}}) as out:
        record = pysam.AlignedSegment()
        record.query_name, record.query_sequence, record.flag = name.decode(), seq.decode(), 4
        out.write(record)
    return paths


def _write_stack(one: dict[str, Path], copies: int) -> dict[str, Path]:
    """FASTQ and BAM files of ``copies`` copies of a one-read file's read (BAM: every other one on
    the reverse strand, so that its reads are restored as htslib stores them)."""
    import pysam

    paths = {kind: one[kind].with_name(f"{one[kind].stem}_x{copies}.{kind}") for kind in ("fastq", "bam")}
    if not paths["fastq"].exists():
        record = one["fastq"].read_bytes()
        with open(paths["fastq"], "wb") as fh:
            for _ in range(copies):
                fh.write(record)
    if not paths["bam"].exists():
        with pysam.AlignmentFile(str(one["bam"]), "rb", check_sq=False) as source:
            read = next(source.fetch(until_eof=True))
            with pysam.AlignmentFile(str(paths["bam"]), "wb", header=source.header) as out:
                for i in range(copies):
                    read.query_name, read.flag = f"copy{i}", 4 if i % 2 == 0 else 4 | 0x10
                    out.write(read)
    return paths


def _write_long_reads(path: Path, n: int, genome: np.ndarray) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(7)
    with open(path, "wb") as fh:
        for i in range(n):
            seq = _noisy(genome, int(rng.integers(0, len(genome))), 10_000, rng).tobytes()
            fh.write(b"@ont%d\n%s\n+\n%s\n" % (i, seq, b"5" * len(seq)))
    return path


def _write_short_reads(path: Path, n: int) -> Path:
    if path.exists():
        return path
    from rapidrelease.reads.fasta import iter_fasta
    from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

    genomes = [
        SourceGenome.from_records(name, taxid, [seq for _, seq in iter_fasta(REFERENCE / "panel" / name)])
        for name, taxid in SHORT_SOURCES.items()
    ]
    write_fastq(simulate_reads(genomes, n, paired=False, seed=3), path)
    return path


def _tree_pss(root: int) -> int:
    """Proportional set size of a process and all its descendants, in bytes: resident pages, each
    shared page (the memory-mapped index, pages a forked worker has not written) split among the
    processes sharing it, so the sum is what the job holds."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("Pss:")) * 1024
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    return total


@dataclass
class Run:
    peak_mb: float  # the command's own peak RSS
    tree_mb: float  # the sampled peak of its process tree's summed PSS
    wall_s: float
    status: int
    said: str  # its last line on stderr


def run_classify(db: Path, reads: list[Path], extra: list[str], threads: int) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        out = (
            ["--out-report", f"{tmp}/r.kreport"]
            if "--part" not in extra
            else ["--out-partial", f"{tmp}/p.npz"]
        )
        # through /usr/bin/time: a child forked from this process would inherit its high-water mark
        command = ["/usr/bin/time", "-f", "%M", "-o", f"{tmp}/rss", sys.executable, "-m", "rapidrelease"]
        command += ["classify", "--db", str(db), "--threads", str(threads)]
        command += extra + out + [str(p) for p in reads]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        tree = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.02):
                tree[0] = max(tree[0], _tree_pss(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stderr = process.stderr.read() if process.stderr else ""
        process.wait()
        wall = time.monotonic() - started
        stop.set()
        sampler.join()
        peak_kb = int(Path(f"{tmp}/rss").read_text().split()[-1])
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    said = lines[-1] if lines else ""
    return Run(peak_kb / 1024, tree[0] / 2**20, wall, process.returncode, said)


def classify_speed(db: Path, reads: list[Path], repeats: int) -> tuple[int, int, float]:
    """(reads, bases, best seconds) of ``classify_reads`` in this process, the index loaded once."""
    from rapidrelease.reads.classify import classify_reads
    from rapidrelease.reads.index import load_index

    index = load_index(db)
    best = float("inf")
    totals = None
    for _ in range(repeats):
        started = time.perf_counter()
        totals = classify_reads(index, *reads)
        best = min(best, time.perf_counter() - started)
    assert totals is not None
    bases = _count_bases(reads)
    return totals.reads, bases, best


def _count_bases(reads: list[Path]) -> int:
    from rapidrelease.reads.input import iter_read_batches

    paired = reads[1] if len(reads) > 1 else None
    return sum(
        int(b.offsets[-1]) + (int(b.offsets2[-1]) if b.offsets2 is not None else 0)
        for b in iter_read_batches(reads[0], paired)
    )


def rule_mem_mb(db: Path, threads: int) -> int | None:
    """The classify rule's mem_mb for this index, evaluated from workflow/rules/reads.smk's formula."""
    text = (ROOT / "workflow" / "rules" / "reads.smk").read_text()
    rule = text.split("rule classify_reads_part:", 1)[1].split("runtime=", 1)[0]
    formula = rule.split("mem_mb=lambda wc, threads:", 1)[1].rsplit(",", 1)[0]
    formula = " ".join(line.split("#", 1)[0] for line in formula.splitlines())
    index_mb = sum(p.stat().st_size for p in db.glob("*.npy")) / 1e6

    class _Reference:
        @staticmethod
        def index_megabytes() -> float:
            return index_mb

    class _Run:
        reference = _Reference()

    try:
        return int(eval(formula, {"RUN": _Run(), "threads": threads, "int": int}))
    except Exception:  # a figure, not a test: say it could not be evaluated
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rapidrelease_bench_long_reads"))
    parser.add_argument("--db", type=Path, help="an index to use (default: build the default one)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1, 10, 100], help="one-read sizes, Mb")
    parser.add_argument("--stack", type=int, default=0, help="also N copies of the longest read in one file")
    parser.add_argument("--long-reads", type=int, default=2000, help="10-kb reads in one FASTQ")
    parser.add_argument("--short-reads", type=int, default=1_000_000, help="simulated 150-bp reads")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.db
    if db is None:
        db = args.workdir / "db"
        if not (db / "manifest.json").exists():
            print("building the default index ...", flush=True)
            subprocess.run(
                [sys.executable, "-m", "rapidrelease", "refdb", "build",
                 "--fasta", *map(str, sorted((REFERENCE / "panel").iterdir())),
                 "--taxonomy", str(REFERENCE / "taxonomy.tsv"),
                 "--seqid2taxid", str(REFERENCE / "seqid2taxid.map"), "--out", str(db)],
                check=True, capture_output=True,
            )  # fmt: skip
    import rapidrelease

    print(f"package: {Path(rapidrelease.__file__).parent}")
    genome = _acgt_genome()
    inputs: list[tuple[str, list[Path], int, int]] = []  # label, files, reads, bases
    for megabases in args.lengths:
        one = _write_one_read(args.workdir, megabases, genome)
        for kind, path in one.items():
            inputs.append((f"1 read of {megabases} Mb, {kind.upper()}", [path], 1, megabases * 1_000_000))
        if args.stack > 1 and megabases == max(args.lengths):
            for kind, path in _write_stack(one, args.stack).items():
                label = f"{args.stack} reads of {megabases} Mb, {kind.upper()}"
                inputs.append((label, [path], args.stack, args.stack * megabases * 1_000_000))
    timed = []  # also timed in this process
    if args.long_reads:
        path = _write_long_reads(args.workdir / f"long_{args.long_reads}x10kb.fastq", args.long_reads, genome)
        label = f"{args.long_reads:,} reads of 10 kb, FASTQ"
        inputs.append((label, [path], args.long_reads, 10_000 * args.long_reads))
        timed.append((label, [path]))
    demo = [DEMO / "DEMO-001_sterility_R1.fastq.gz", DEMO / "DEMO-001_sterility_R2.fastq.gz"]
    short = []
    if args.short_reads:
        path = _write_short_reads(args.workdir / f"short_{args.short_reads}x150.fastq", args.short_reads)
        short.append((f"{args.short_reads:,} reads of 150 bp, FASTQ", [path]))
    short.append(("demo sterility pairs, FASTQ.gz", demo))
    for label, files in short:
        inputs.append((label, files, 0, 0))

    print(f"\nclassify commands (index {db}):")
    header = (
        f"{'input':<34} {'mode':<9} {'thr':>3} {'peak MB':>8} {'tree MB':>8} {'rule MB':>8} {'wall s':>7} "
        f"{'speed':>10}  exit, last line"
    )
    print(header)
    print("-" * len(header))
    for label, files, total_reads, total_bases in inputs:
        paired = ["--paired"] if len(files) == 2 else []
        for mode, extra in (("report", []), ("part 1/4", ["--part", "1/4"])):
            for threads in args.threads:
                if threads > 1 and mode == "part 1/4":
                    continue
                run = run_classify(db, files, paired + extra, threads)
                n_reads = _reads_said(run.said)
                speed = f"{n_reads / run.wall_s:,.0f} r/s" if n_reads > 1 else "-"
                if total_reads and total_bases:  # reads of known length: bases per second instead
                    speed = f"{total_bases * n_reads / total_reads / run.wall_s / 1e6:.2f} Mb/s"
                print(
                    f"{label:<34} {mode:<9} {threads:>3} {run.peak_mb:>8.0f} {run.tree_mb:>8.0f} "
                    f"{rule_mem_mb(db, threads) or '?':>8} {run.wall_s:>7.2f} {speed:>10}  "
                    f"{run.status}, {run.said[:90]}",
                    flush=True,
                )

    print(f"\nclassify_reads in this process, best of {args.repeats} (start-up and index load excluded):")
    for label, files in short + timed:
        reads, bases, seconds = classify_speed(db, files, args.repeats)
        print(
            f"{label:<34} {reads:>10,} reads {bases / 1e6:>8.1f} Mb  {seconds:>7.2f} s  "
            f"{reads / seconds:>10,.0f} reads/s  {bases / seconds / 1e6:>6.2f} Mb/s",
            flush=True,
        )


def _reads_said(line: str) -> int:
    """The read count of the command's summary line ("N reads: M classified ...")."""
    head = line.split(" reads:", 1)[0].replace(",", "")
    return int(head) if head.isdigit() else 0


if __name__ == "__main__":
    main()

"""Building a reference of real size: ``rapidrelease refdb build --max-memory`` against kraken2-build.

Not a test (no timed assertions): it prints figures. It

1. generates a reference of ``--size-gb`` gigabases (1 by default; 3 for a whole human genome's
   size) with a seeded generator into ``<workdir>/<size>gb/panel.fa``: 50-Mb "chromosomes",
   about 85 % of the bases a host's (taxid 9606) and the rest split among three bacteria of the
   project's taxonomy; random bases with realistic-ish repeats: families of interspersed elements
   (300-bp SINE-like, 6-kb LINE-like) copied with 2-20 % divergence over a third of the host's
   sequence, microsatellites, and a few kb shared between a bacterium and the host (so some
   minimizers are labelled with an LCA); taxonomy.tsv and, for Kraken 2, taxonomy/nodes.dmp and
   names.dmp;
2. builds it with ``rapidrelease refdb build --max-memory 12G --no-masking`` and with
   ``kraken2-build --add-to-library --no-masking`` + ``--build`` (bench_classify.py's helpers,
   ``--build-threads`` threads, 2 by default), each under ``/usr/bin/time -v``; while rapidrelease
   builds, the disk its spilled runs use is polled every second;
3. prints time, peak RSS, bytes of peak RSS per minimizer, the index's disk use and the peak
   temporary disk, side by side with ratios (Kraken 2's minimizer count is hash.k2d's size field);
4. with ``--check-gb G`` (default 0.1), builds a G-Gb prefix of the same panel both in memory
   (``build_index``, ~48 bytes per minimizer) and with ``--max-memory 1G`` (forcing several runs)
   and compares the index folders file by file: byte-identical files mean identical calls;
5. with ``--classify-reads N``, classifies N error-free 150-bp reads of the panel with
   ``kraken2 --db`` and ``rapidrelease classify --db`` on the kraken2-build database, one thread
   each: identical calls, wall time (loading the database included) and peak RSS, rapidrelease's
   first run (which writes the table's compact copy) apart.

Usage (needs ``apt-get install kraken2 time``):
    python tests/benchmarks/bench_refdb_build.py [--size-gb 1] [--workdir DIR] [--max-memory 12G]
        [--build-threads 2] [--check-gb 0.1] [--skip-kraken] [--reuse] [--classify-reads N]
``--reuse`` prints the table again from the builds already in ``--workdir`` (their logs), e.g. when
kraken2-build was run on its own (``build_kraken`` of bench_classify.py on the same folder).
The panel is kept in ``--workdir`` (default ``/tmp/rapidrelease_bench_refdb``) and reused; both
indexes are rebuilt every run. A 1-Gb panel needs about 1 GB for the FASTA, another for Kraken 2's
library copy, 4 GB of spilled runs at peak, and the indexes.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_classify import Run, build_kraken, rapidrelease_cli, timed

from rapidrelease.reads.index import build_index
from rapidrelease.reads.taxonomy import Taxonomy

ROOT = Path(__file__).resolve().parents[2]
PROJECT_TAXONOMY = ROOT / "resources" / "reference" / "taxonomy.tsv"
DEFAULT_WORKDIR = Path("/tmp/rapidrelease_bench_refdb")
CHROMOSOME = 50_000_000
HOST = 9606
BACTERIA = (93061, 511145, 1280)  # S. aureus NCTC 8325, E. coli K-12 MG1655, S. aureus
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def random_bases(rng: np.random.Generator, n: int) -> np.ndarray:
    return BASES[rng.integers(0, 4, size=n, dtype=np.uint8)]


def diverged(rng: np.random.Generator, element: np.ndarray, divergence: float) -> np.ndarray:
    """A copy of ``element`` with a fraction ``divergence`` of its bases substituted at random."""
    copy = element.copy()
    where = rng.random(len(copy)) < divergence
    copy[where] = random_bases(rng, int(where.sum()))
    return copy


def chromosome(
    rng: np.random.Generator, n: int, families: list[np.ndarray], repeat_share: float
) -> np.ndarray:
    """``n`` random bases with interspersed repeats covering about ``repeat_share`` and microsatellites."""
    seq = random_bases(rng, n)
    covered = 0
    while covered < repeat_share * n:
        element = families[int(rng.integers(len(families)))]
        start = int(rng.integers(0, n - len(element)))
        seq[start : start + len(element)] = diverged(rng, element, float(rng.uniform(0.02, 0.20)))
        covered += len(element)
    for _ in range(n // 200_000):  # microsatellites: a 1-6-base unit repeated over 20-200 bases
        unit = random_bases(rng, int(rng.integers(1, 7)))
        length = int(rng.integers(20, 200))
        start = int(rng.integers(0, n - length))
        seq[start : start + length] = np.resize(unit, length)
    return seq


def generate_panel(folder: Path, size_gb: float, seed: int) -> Path:
    """Write panel.fa and the taxonomy (TSV and NCBI dumps) of a ``size_gb``-Gb panel; reuse one."""
    fasta = folder / "panel.fa"
    if fasta.is_file() and (folder / "taxonomy" / "nodes.dmp").is_file():
        return fasta
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    families = [random_bases(rng, 300) for _ in range(20)] + [random_bases(rng, 6000) for _ in range(10)]
    shared = random_bases(rng, 5000)  # also in the host: labelled with the LCA of host and bacterium
    total = int(size_gb * 1e9)
    n_chromosomes = max(1, round(total / CHROMOSOME))
    partial = fasta.with_suffix(".partial")
    with open(partial, "wb") as out:
        for i in range(n_chromosomes):
            size = min(CHROMOSOME, total - i * CHROMOSOME) if i == n_chromosomes - 1 else CHROMOSOME
            bacterial = i >= round(0.85 * n_chromosomes) and n_chromosomes > 1
            taxid = BACTERIA[i % len(BACTERIA)] if bacterial else HOST
            seq = chromosome(rng, size, families, 0.05 if bacterial else 1 / 3)
            start = int(rng.integers(0, size - len(shared)))
            seq[start : start + len(shared)] = shared
            out.write(f">chr{i + 1}|kraken:taxid|{taxid}\n".encode())
            for line in range(0, size, 80):
                out.write(seq[line : line + 80].tobytes() + b"\n")
    taxonomy = Taxonomy.from_tsv(PROJECT_TAXONOMY).pruned([HOST, *BACTERIA])
    taxonomy.to_tsv(folder / "taxonomy.tsv")
    Taxonomy.from_tsv(folder / "taxonomy.tsv").to_ncbi_dmp(folder / "taxonomy")
    partial.rename(fasta)
    return fasta


def prefix_panel(fasta: Path, out: Path, size_gb: float) -> Path:
    """The first ``size_gb`` Gb of a panel's chromosomes (whole records), for the in-memory check."""
    limit = int(size_gb * 1e9)
    written = 0
    with open(fasta, "rb") as src, open(out, "wb") as dst:
        for line in src:
            if line.startswith(b">") and written >= limit:
                break
            if not line.startswith(b">"):
                written += len(line) - 1
            dst.write(line)
    return out


def disk_use(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


class TempDiskPoll:
    """Polls, once a second, the bytes of the build's temporary folders beside ``out``; keeps the peak."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(1.0):
            try:
                now = sum(disk_use(p) for p in self.out.parent.glob(f".{self.out.name}.*"))
            except OSError:  # a file removed while it was being measured
                continue
            self.peak = max(self.peak, now)

    def __enter__(self) -> TempDiskPoll:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def kraken_minimizers(db: Path) -> int:
    """Minimizers in a Kraken 2 hash.k2d: its header's size field (capacity, size, key bits, value bits)."""
    return int(np.fromfile(db / "hash.k2d", dtype=np.uint64, count=2)[1])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="gigabases of generated reference")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--max-memory", default="12G", help="rapidrelease's --max-memory (default 12G)")
    parser.add_argument("--build-threads", type=int, default=2, help="kraken2-build --threads")
    parser.add_argument("--check-gb", type=float, default=0.1, help="prefix built both ways (0: skip)")
    parser.add_argument("--skip-kraken", action="store_true")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="print the figures of the builds in --workdir (their /usr/bin/time logs); build none",
    )
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument(
        "--classify-reads",
        type=int,
        default=0,
        help="then classify this many panel reads on the kraken2-build database with both tools",
    )
    args = parser.parse_args(argv)
    for tool in ("/usr/bin/time",) + (() if args.skip_kraken else ("kraken2-build",)):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install kraken2 time")
    cli = rapidrelease_cli()
    if cli is None:
        raise SystemExit("rapidrelease refdb not available")
    folder = args.workdir / f"{args.size_gb:g}gb"
    started = time.perf_counter()
    fasta = generate_panel(folder, args.size_gb, args.seed)
    print(f"panel {fasta} ({disk_use(fasta) / 1e9:.2f} GB) ready in {time.perf_counter() - started:.0f} s")

    if args.check_gb > 0 and not args.reuse:
        check_identical(folder, fasta, args.check_gb, cli)

    out = folder / "rapidrelease_db"
    temporary_disk: float | None = None
    if args.reuse and (folder / "rapidrelease_build.log").is_file():
        ours = run_of_log(folder / "rapidrelease_build.log")
    else:
        shutil.rmtree(out, ignore_errors=True)
        command = [*cli, "refdb", "build", "--fasta", str(fasta), "--taxonomy", str(folder / "taxonomy.tsv")]
        command += ["--out", str(out), "--no-masking", "--max-memory", args.max_memory]
        with TempDiskPoll(out) as poll:
            ours = timed(command, folder / "rapidrelease_build.log")
        temporary_disk = poll.peak
        (folder / "rapidrelease_temporary_disk.txt").write_text(f"{poll.peak}\n")
    if temporary_disk is None and (folder / "rapidrelease_temporary_disk.txt").is_file():
        temporary_disk = float((folder / "rapidrelease_temporary_disk.txt").read_text())
    ours_minimizers = int(load_counts(out)["minimizers"])
    ours_disk = disk_use(out)
    print(f"rapidrelease refdb build --max-memory {args.max_memory}: {ours.wall_s:.0f} s")

    theirs: Run | None = None
    kraken_db = folder / "kraken2_db"
    if args.reuse and (kraken_db / "hash.k2d").is_file():
        theirs = run_of_log(folder / "kraken2_build.log")
    elif not args.skip_kraken:
        shutil.rmtree(kraken_db, ignore_errors=True)
        kraken_db, theirs = build_kraken(folder, args.build_threads)
    rows = [("wall time (s)", ours.wall_s, theirs.wall_s if theirs else None)]
    rows.append(("peak RSS (MiB)", ours.peak_rss / 2**20, theirs.peak_rss / 2**20 if theirs else None))
    theirs_minimizers = kraken_minimizers(kraken_db) if theirs else 0
    rows.append(("minimizers (M)", ours_minimizers / 1e6, theirs_minimizers / 1e6 if theirs else None))
    rows.append(
        (
            "peak RSS per minimizer (B)",
            ours.peak_rss / ours_minimizers,
            theirs.peak_rss / theirs_minimizers if theirs else None,
        )
    )
    kraken_files = sum(disk_use(kraken_db / name) for name in ("hash.k2d", "opts.k2d", "taxo.k2d"))
    rows.append(("index on disk (MB)", ours_disk / 1e6, kraken_files / 1e6 if theirs else None))
    rows.append(
        (
            "index bytes per minimizer",
            ours_disk / ours_minimizers,
            kraken_files / theirs_minimizers if theirs else None,
        )
    )
    if temporary_disk is not None:
        rows.append(("peak temporary disk (MB)", temporary_disk / 1e6, None))
    print(f"\n{args.size_gb:g}-Gb generated panel, {fasta.stat().st_size / 1e9:.2f} GB FASTA, no masking")
    print(f"{'':28s} {'rapidrelease':>14s} {'kraken2-build':>14s} {'ratio':>8s}")
    for name, a, b in rows:
        b_text = f"{b:14,.1f}" if b is not None else f"{'-':>14s}"
        print(f"{name:28s} {a:14,.1f} {b_text} {ratio(a, b) if b else '':>8s}")
    if theirs:
        print(f"(kraken2-build --build --threads {args.build_threads}; rapidrelease builds on one core)")
    if args.classify_reads and (kraken_db / "hash.k2d").is_file():
        classify_on_kraken_db(folder, fasta, kraken_db, args.classify_reads, args.seed, cli)
    return 0


def panel_reads(fasta: Path, out: Path, n: int, seed: int) -> Path:
    """``n`` error-free 150-bp reads from random places of ``fasta`` (held by the database), FASTQ."""
    import mmap

    rng = np.random.default_rng(seed)
    with open(fasta, "rb") as handle, open(out, "w") as reads:
        text = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        written = 0
        while written < n:
            at = int(rng.integers(0, len(text) - 400))
            window = text[at : at + 400]
            seq = window.replace(b"\n", b"")[:150]
            if b">" in window or len(seq) < 150 or b"N" in seq:
                continue
            reads.write(f"@r{written}\n{seq.decode()}\n+\n{'I' * 150}\n")
            written += 1
    return out


def classify_on_kraken_db(folder: Path, fasta: Path, db: Path, n: int, seed: int, cli: list[str]) -> None:
    """``kraken2 --db`` and ``rapidrelease classify --db`` on the panel's kraken2-build database, one
    thread each, on ``n`` reads of the panel (bench_kraken2_db.py's ``classify_both``): wall time
    (load included), peak RSS, the same calls. rapidrelease's first run writes the table's compact
    copy (into a cache emptied first)."""
    import os

    from bench_kraken2_db import calls_of, classify_both

    reads = panel_reads(fasta, folder / f"reads_{n}.fq", n, seed)
    cache = folder / "rapidrelease_cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["RAPIDRELEASE_CACHE"] = str(cache)
    kraken_run, again, first = classify_both(folder, db, [reads], "panel", 1, cli)
    theirs_calls, ours_calls = (
        calls_of(folder / "panel.kraken2.out"),
        calls_of(folder / "panel.rapidrelease.out"),
    )
    same = sum(a == b for a, b in zip(theirs_calls, ours_calls, strict=True))
    table = (db / "hash.k2d").stat().st_size
    print(
        f"\n{n:,} panel reads on the kraken2-build database (hash.k2d {table / 2**30:.2f} GiB), "
        "one thread each:"
    )
    print(f"  identical calls: {same:,} of {len(theirs_calls):,}")
    print(f"  {'':44s} {'wall (s)':>9s} {'peak RSS (MiB)':>15s}")
    assert first is not None  # the cache was emptied above
    for name, run in (
        ("kraken2 (reads the table into memory)", kraken_run),
        ("rapidrelease, first run (writes the copy)", first),
        ("rapidrelease (maps the compact copy)", again),
    ):
        print(f"  {name:44s} {run.wall_s:9.2f} {run.peak_rss / 2**20:15,.0f}")
    print(f"  compact copy on disk: {disk_use(cache) / 2**30:.2f} GiB")


def run_of_log(log: Path) -> Run:
    """Wall time and peak RSS of an earlier build, from the /usr/bin/time -v report ``timed`` kept."""
    text = log.read_text()
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    wall = sum(float(part) * 60**i for i, part in enumerate(reversed(clock.split(":"))))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return Run(wall, rss_kb * 1024, text)


def load_counts(index: Path) -> dict[str, int]:
    import json

    return json.loads((index / "manifest.json").read_text())["counts"]


def check_identical(folder: Path, fasta: Path, size_gb: float, cli: list[str]) -> None:
    """Build a prefix of the panel in memory and with --max-memory 1G; print whether each file is the same."""
    prefix = prefix_panel(fasta, folder / f"prefix_{size_gb:g}gb.fa", size_gb)
    in_memory, budgeted = folder / "check_in_memory", folder / "check_budgeted"
    started = time.perf_counter()
    build_index([prefix], folder / "taxonomy.tsv", in_memory, mask_low_complexity=False)
    memory_s = time.perf_counter() - started
    command = [*cli, "refdb", "build", "--fasta", str(prefix), "--taxonomy", str(folder / "taxonomy.tsv")]
    command += ["--out", str(budgeted), "--no-masking", "--max-memory", "1G"]
    run = timed(command, folder / "check_budgeted.log")
    names = sorted(p.name for p in in_memory.iterdir())
    same = [name for name in names if filecmp.cmp(in_memory / name, budgeted / name, shallow=False)]
    counts = load_counts(in_memory)
    print(
        f"check on a {size_gb:g}-Gb prefix ({counts['minimizers']:,} minimizers): "
        f"in memory {memory_s:.0f} s; "
        f"--max-memory 1G {run.wall_s:.0f} s, peak RSS {run.peak_rss / 2**20:,.0f} MiB; "
        f"byte-identical files {len(same)}/{len(names)}"
        + (f" (differing: {', '.join(sorted(set(names) - set(same)))})" if len(same) < len(names) else "")
    )
    subprocess.run(["rm", "-rf", str(in_memory), str(budgeted)], check=False)


if __name__ == "__main__":
    raise SystemExit(main())

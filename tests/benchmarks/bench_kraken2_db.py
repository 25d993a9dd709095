"""One Kraken 2 database, two classifiers: ``kraken2 --db`` against ``rapidrelease classify --db``.

Not a test (no timed assertions): it prints figures. It reuses bench_classify.py's panel (42.6 Mb
of bacteria, mycoplasmas, human, vectors, phages and viruses), its ART reads (150 bp, single-end by
default) and its kraken2-build database (k 35, l 31, s 7, unmasked), then classifies the same reads
on that very database folder with one thread each, under ``/usr/bin/time -v`` (load and output
included), and prints:

- per-read agreement: the share of reads with the same C/U and taxid in both per-read outputs;
- reads/s, peak RSS and the ratios rapidrelease / Kraken 2; rapidrelease's first run on the
  database, which writes the table's compact copy into a cache emptied at the start, apart;
- the kreports compared line by line, rank codes aside (Debian's 2.1.2 leaves them empty for
  "no rank" ancestors and superkingdoms);
- with ``--long-reads`` (default on), the same on the real ONT lambda control reads of
  ``../shared/data/seq/reads/shotgun_real`` (989 reads of 0.1–40 kb).

Usage (needs ``apt-get install kraken2 art-nextgen-simulation-tools time`` and ../shared/data):
    python tests/benchmarks/bench_kraken2_db.py [--reads 1000000] [--paired] [--workdir DIR]
        [--repeats 1] [--no-long-reads]
The work folder defaults to bench_classify.py's, so its reads and database are reused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_classify import (  # the sibling benchmark, by path
    DEFAULT_WORKDIR,
    REFERENCE,
    Run,
    best,
    build_kraken,
    build_panel,
    rapidrelease_cli,
    simulate_with_art,
    timed,
)

LONG_READS = REFERENCE.parent / "reads" / "shotgun_real" / "qcat_ONT_lambda_control_1k.fastq.gz"


def calls_of(path: Path) -> list[tuple[str, str]]:
    """(C/U, taxid) of every line of a Kraken-style per-read output, in file order."""
    out = []
    with open(path, "rb") as lines:
        for line in lines:
            fields = line.split(b"\t", 3)
            out.append((fields[0].decode(), fields[2].decode()))
    return out


def report_rows(path: Path) -> list[list[str]]:
    """The kreport's rows without the rank-code column."""
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        rows.append([f.strip() for j, f in enumerate(fields) if j != 3])
    return rows


def classify_both(
    workdir: Path, db: Path, reads: list[Path], name: str, repeats: int, command: list[str]
) -> tuple[Run, Run, Run | None]:
    """Kraken 2 and rapidrelease on ``reads`` against ``db``; outputs ``<name>.{kraken2,rapidrelease}.*``.

    The third run is rapidrelease's first on the database, which writes the table's compact copy
    into ``$RAPIDRELEASE_CACHE`` (None when the copy was already there): timed on its own, since a
    site pays it once per database, not per run.
    """
    k_out, r_out = workdir / f"{name}.kraken2.out", workdir / f"{name}.rapidrelease.out"
    paired = ["--paired"] if len(reads) == 2 else []
    kraken = [
        *("kraken2", "--db", str(db), "--threads", "1", *paired),
        *("--report", str(k_out.with_suffix(".kreport")), "--output", str(k_out)),
        *map(str, reads),
    ]
    ours = [
        *command,
        *("classify", "--db", str(db), "--threads", "1", *paired),
        *("--out-report", str(r_out.with_suffix(".kreport")), "--out-reads", str(r_out)),
        *map(str, reads),
    ]
    cache = Path(os.environ["RAPIDRELEASE_CACHE"])
    first = None if any(cache.glob("kraken2_*/")) else timed(ours, workdir / f"{name}.rapidrelease.first.log")
    k_run = best(timed(kraken, workdir / f"{name}.kraken2.log") for _ in range(repeats))
    r_run = best(timed(ours, workdir / f"{name}.rapidrelease.log") for _ in range(repeats))
    return k_run, r_run, first


def print_comparison(
    workdir: Path, name: str, n_label: str, k_run: Run, r_run: Run, first: Run | None = None
) -> None:
    theirs = calls_of(workdir / f"{name}.kraken2.out")
    ours = calls_of(workdir / f"{name}.rapidrelease.out")
    same = sum(a == b for a, b in zip(theirs, ours, strict=True))
    n = len(theirs)
    differ = [i for i, (a, b) in enumerate(zip(theirs, ours, strict=True)) if a != b][:5]
    k_report = report_rows(workdir / f"{name}.kraken2.kreport")
    r_report = report_rows(workdir / f"{name}.rapidrelease.kreport")
    print(f"\n{name}: {n:,} {n_label}")
    print(f"  identical calls (C/U and taxid): {same:,} of {n:,} = {100 * same / n:.4f} %")
    if differ:
        print(f"  first differing lines (1-based): {[i + 1 for i in differ]}")
    print(
        f"  kreport rows equal (rank codes aside): {k_report == r_report} "
        f"({len(k_report)} and {len(r_report)} rows)"
    )
    print(f"  {'':<22}{'rapidrelease':>14}{'Kraken 2':>14}{'ratio':>9}")
    for label, ours_value, theirs_value, fmt in (
        (f"{n_label}/s", n / r_run.wall_s, n / k_run.wall_s, ",.0f"),
        ("wall (s)", r_run.wall_s, k_run.wall_s, ",.2f"),
        ("peak RSS (MiB)", r_run.peak_rss / 2**20, k_run.peak_rss / 2**20, ",.0f"),
    ):
        print(f"  {label:<22}{ours_value:>14{fmt}}{theirs_value:>14{fmt}}{ours_value / theirs_value:>9.2f}")
    if first is not None:
        print(
            f"  rapidrelease's first run on the database, writing the table's compact copy: "
            f"{first.wall_s:.2f} s, peak RSS {first.peak_rss / 2**20:.0f} MiB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=1_000_000, help="reads (pairs with --paired)")
    parser.add_argument("--paired", action="store_true")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--repeats", type=int, default=1, help="classification runs each; the fastest counts")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--no-long-reads", action="store_true", help="skip the ONT lambda control reads")
    args = parser.parse_args(argv)
    for tool in ("kraken2", "kraken2-build", "/usr/bin/time", "art_illumina"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install kraken2 art-nextgen-simulation-tools time")
    command = rapidrelease_cli()
    if command is None:
        raise SystemExit("the rapidrelease command (with classify) is not installed")
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    build_panel(workdir)
    # bench_classify.py's reads of the same count, mode and seed are reused
    stamp = workdir / f"reads.art.{args.reads}.{'pe' if args.paired else 'se'}.{args.seed}"
    reads = [workdir / "reads_1.fq", workdir / "reads_2.fq"] if args.paired else [workdir / "reads.fq"]
    if not stamp.is_file():
        start = time.perf_counter()
        for old in workdir.glob("reads.*.*"):
            old.unlink()
        reads = simulate_with_art(workdir, args.reads, args.paired, args.seed)
        stamp.touch()
        print(f"ART reads: {args.reads:,} ({time.perf_counter() - start:.0f} s)")
    db, build = build_kraken(workdir, 2)
    if build:
        print(f"kraken2-build --build: {build.wall_s:.0f} s, peak RSS {build.peak_rss / 2**20:.0f} MiB")
    print(f"database: {db} (hash.k2d {(db / 'hash.k2d').stat().st_size / 2**20:.1f} MiB)")
    # a cache of its own, emptied, so the first run writes the compact copy and is shown apart
    cache = workdir / "rapidrelease_cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["RAPIDRELEASE_CACHE"] = str(cache)
    k_run, r_run, first = classify_both(workdir, db, reads, "short", args.repeats, command)
    print_comparison(workdir, "short", "pairs" if args.paired else "reads", k_run, r_run, first)
    if not args.no_long_reads and LONG_READS.is_file():
        k_run, r_run, first = classify_both(workdir, db, [LONG_READS], "long", args.repeats, command)
        print_comparison(workdir, "long", "reads", k_run, r_run, first)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

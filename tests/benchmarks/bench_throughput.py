"""Lots per hour through `snakemake --cores 2` for N production-size lots sharing one run's controls.

Each lot is the demo lot DEMO-001 at production size: a 1,000,000-event phenotype tube, a potency
pair of 300,000 events each (the demo's tubes tiled), the demo's microbial tube and apheresis tube,
and a sterility sample of 1,000,000 read pairs (the demo's 2,500 pairs repeated as 400 concatenated
gzip members). Every lot has its own files (hard links of one tiled file per kind: distinct paths,
so nothing is shared that a site would not share). All lots list the same sequencing run's two
negative controls (the demo's, tiled to 100,000 pairs each: a control of 2,500 pairs is too
shallow to protect a 1 M-pair test) and positive control (the demo's) and the same flow run's
sterile-medium control (the demo's file). DEMO-001 itself runs beside them and every lot's decision must equal
it (status and each attribute's result).

The reference index is built first (untimed); then the whole run is timed. Printed: lots/h, jobs
run, CPU seconds per rule (each job's shell writes its `times` on exit; the rest of the run's total
CPU time, Snakemake's own process, is printed as one line), and the
classification-only bound: one lot's sterility reads classified by `rapidrelease classify` in one
process, in the same site, as CPU seconds per lot and the lots/h two cores would reach doing nothing
else; and, beside it, Kraken 2's own bound: the same reads classified by `kraken2` and by
`rapidrelease classify --db` on one kraken2-build database of the demo's sources (built once into
the cache folder), one thread each.

    .venv/bin/python tests/benchmarks/bench_throughput.py [--lots 8] [--work DIR] [--keep] [--no-kraken2]

Not part of the test suite; issue 20's note quotes its output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from rapidrelease.fcs.reader import read_fcs
from rapidrelease.synthetic.demo.fcs_writer import write_fcs

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO = ROOT / "resources" / "demo" / "DEMO-001"
READ_PAIRS = 1_000_000
CONTROL_PAIRS = 100_000
DEMO_PAIRS = 2_500
SEQ_RUN = ROOT / "resources" / "demo" / "SEQ-RUN-01"
# TEXT keywords the writer sets itself from the events and channels
_WRITER_KEYWORDS = re.compile(
    r"^\$(BEGIN|END)(DATA|STEXT|ANALYSIS)$|^\$(TOT|PAR|NEXTDATA|DATATYPE|BYTEORD|MODE)$|^\$P\d+[NSBERG]$"
)


def _tile_fcs(source: Path, target: Path, n_events: int) -> None:
    """``source``'s events repeated to ``n_events``, written as FCS 3.1 with its keywords."""
    fcs = read_fcs(source)
    events = fcs.events(preprocess=False)
    tiled = np.resize(events, (n_events, events.shape[1])).astype("<f4")
    keywords = {k: v for k, v in fcs.keywords.items() if not _WRITER_KEYWORDS.match(k.upper())}
    keywords.update({k: v for k, v in fcs.keywords.items() if re.match(r"^\$P\d+R$", k.upper())})
    write_fcs(target, tiled, fcs.channels, keywords)


def _tile_gzip(source: Path, target: Path, copies: int) -> None:
    """``copies`` concatenated gzip members of ``source`` (RFC 1952 §2.2: one valid gzip stream)."""
    member = source.read_bytes()
    with open(target, "wb") as fh:
        for _ in range(copies):
            fh.write(member)


def _production_files(cache: Path) -> dict[str, Path]:
    """The tiled data files, made once into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    pairs = READ_PAIRS // DEMO_PAIRS
    files = {
        "PHENO": (cache / "phenotype_1M.fcs", lambda p: _tile_fcs(DEMO / "DEMO-001_phenotype.fcs", p, 10**6)),
        "POT-STIM": (
            cache / "potency_stimulated_300k.fcs",
            lambda p: _tile_fcs(DEMO / "DEMO-001_potency_stimulated.fcs", p, 300_000),
        ),
        "POT-UNSTIM": (
            cache / "potency_unstimulated_300k.fcs",
            lambda p: _tile_fcs(DEMO / "DEMO-001_potency_unstimulated.fcs", p, 300_000),
        ),
    }
    for mate in ("R1", "R2"):
        name = f"DEMO-001_sterility_{mate}.fastq.gz"
        files[mate] = (cache / f"sterility_{mate}.fastq.gz", lambda p, n=name: _tile_gzip(DEMO / n, p, pairs))
    # the run's negative controls, deep enough for a 1 M-pair test (a control must be able to show
    # a contaminant at the test's threshold: the demo's 2,500 pairs cannot). The positive control
    # stays the demo's: 40 copies of its reads would pile its spike on the same minimizers, which
    # the breadth check rightly refuses as no organism
    for control in ("NC1", "NC2"):
        for mate in ("R1", "R2"):
            name = f"SEQ-RUN-01_{control}_{mate}.fastq.gz"
            files[f"{control}_{mate}"] = (
                cache / name,
                lambda p, name=name: _tile_gzip(SEQ_RUN / name, p, CONTROL_PAIRS // DEMO_PAIRS),
            )
    for path, make in files.values():
        if not path.exists():
            make(path)
    return {key: path for key, (path, _) in files.items()}


def _site(folder: Path, lots: int, cache: Path) -> list[str]:
    """A site folder with DEMO-001 and ``lots`` production-size copies of it; the lots' ids."""
    shutil.copytree(ROOT / "config", folder / "config")
    (folder / "resources").mkdir()
    for name in ("demo", "reference"):
        (folder / "resources" / name).symlink_to(ROOT / "resources" / name)
    tiled = _production_files(cache)
    lot_lines = (ROOT / "config" / "lots.tsv").read_text().splitlines()
    unit_lines = (ROOT / "config" / "units.tsv").read_text().splitlines()
    lot_row = next(line for line in lot_lines if line.startswith("DEMO-001\t"))
    unit_rows = [line.split("\t") for line in unit_lines if line.startswith("DEMO-001\t")]
    ids = [f"LOT-{n:04d}" for n in range(1, lots + 1)]
    lots_text, units_text = [lot_lines[0], lot_row], [unit_lines[0]] + ["\t".join(r) for r in unit_rows]
    for lot_id in ids:
        data = folder / "data" / lot_id
        data.mkdir(parents=True)
        lots_text.append(lot_row.replace("DEMO-001", lot_id, 1))
        for row in unit_rows:
            row = [lot_id, *row[1:]]
            if row[1] in ("PHENO", "POT-STIM", "POT-UNSTIM"):
                row[4] = _link(tiled[row[1]], data)
            elif row[1] == "STER":
                row[4], row[5] = _link(tiled["R1"], data), _link(tiled["R2"], data)
            elif row[1] in ("STER-NC1", "STER-NC2"):  # the run's controls, shared by every lot
                control = row[1].removeprefix("STER-")
                row[4], row[5] = (str(tiled[f"{control}_{m}"]) for m in ("R1", "R2"))
            elif "/DEMO-001/" in row[4]:  # the lot's own demo-size tubes (microbial, apheresis)
                row[4] = _link(ROOT / row[4], data)
            units_text.append("\t".join(row))
    (folder / "config" / "lots.tsv").write_text("\n".join(lots_text) + "\n")
    (folder / "config" / "units.tsv").write_text("\n".join(units_text) + "\n")
    return ids


def _link(source: Path, folder: Path) -> str:
    target = folder / source.name
    os.link(source, target)
    return str(target.relative_to(folder.parents[1]))


def _snakemake(site: Path, *args: str, job_cpu: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the workflow in ``site``; with ``job_cpu`` (a new folder), every job's shell writes its CPU
    time there."""
    snakefile = ROOT / "workflow" / "Snakefile"
    command = [str(BIN / "snakemake"), "--snakefile", str(snakefile), "--cores", "2", *args]
    env = None
    if job_cpu is not None:
        job_cpu.mkdir()  # new: files of an earlier run would be counted again
        # bash reads $BASH_ENV before a `bash -c` command, as Snakemake runs each job's shell: on exit
        # its `times` (the shell's and its children's user and system CPU) and the command are kept
        trap = job_cpu / "trap.sh"
        folder = shlex.quote(str(job_cpu))
        keep = f'times > {folder}/$$.times; printf %s "$BASH_EXECUTION_STRING" > {folder}/$$.command'
        trap.write_text(f"trap '{keep}' EXIT\n")
        env = {**os.environ, "BASH_ENV": str(trap)}
    done = subprocess.run(command, cwd=site, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return done


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_per_rule(job_cpu: Path) -> dict[str, tuple[int, float]]:
    """Jobs and CPU seconds per rule, from what each job's shell wrote on exit (:func:`_snakemake`).

    Exact, unlike Snakemake's benchmark files: those sample a job every 0.5 s for its first 15 s
    and every 30 s after, so a 22-s classification job showed 14 s. The rule is read from the job's
    log path (``logs/<rule>/...``), which every rule's command names.
    """
    per_rule: dict[str, list[float]] = defaultdict(list)
    for times in job_cpu.glob("*.times"):
        command = times.with_suffix(".command").read_text()
        found = re.search(r"logs/(\w+)", command)
        # `times`: the shell's user and system time, then its children's, each like 0m1.250s
        seconds = [int(m) * 60 + float(s) for m, s in re.findall(r"(\d+)m([\d.]+)s", times.read_text())]
        per_rule[found.group(1) if found else "(no log)"].append(sum(seconds))
    return {rule: (len(cpu), sum(cpu)) for rule, cpu in sorted(per_rule.items())}


def _decision(release: Path) -> tuple[str, tuple[tuple[str, str], ...]]:
    data = json.loads(release.read_text())
    return data["status"], tuple((a["name"], a["result"]) for a in data["attributes"])


def _lots_unlike_the_demo(site: Path, ids: list[str]) -> tuple[str, list[str]]:
    """DEMO-001's status, and the lots whose decision (status, each attribute's result) differs."""
    reference = _decision(site / "results" / "DEMO-001" / "release.json")
    differing = [lot for lot in ids if _decision(site / "results" / lot / "release.json") != reference]
    return reference[0], differing


def _classification_bound(site: Path, lot_id: str) -> float:
    """CPU seconds of classifying one lot's sterility reads in one `rapidrelease classify` process."""
    data = site / "data" / lot_id
    db = site / "resources" / "refdb"
    out = site / "bound.npz"
    command = [
        str(BIN / "rapidrelease"), "classify", "--db", str(db), "--part", "1/1", "--paired",
        "--threads", "1", "--out-partial", str(out),
        str(data / "sterility_R1.fastq.gz"), str(data / "sterility_R2.fastq.gz"),
    ]  # fmt: skip
    before = _children_cpu()
    subprocess.run(command, check=True, capture_output=True)
    return _children_cpu() - before


def _peer_bounds(site: Path, lot_id: str, cache: Path) -> tuple[float, float]:
    """CPU seconds of classifying one lot's sterility reads on one kraken2-build database (built
    once into ``cache`` from the demo's sources, tests/support/kraken2.py), one thread each:
    ``(kraken2, rapidrelease classify --db)``, Kraken 2's own bound beside the classifier's."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.kraken2 import kraken2_database

    db = kraken2_database(cache)
    data = site / "data" / lot_id
    mates = [str(data / "sterility_R1.fastq.gz"), str(data / "sterility_R2.fastq.gz")]
    kraken2 = ["kraken2", "--db", str(db), "--threads", "1", "--paired", "--gzip-compressed",
               "--output", "/dev/null", "--report", str(site / "bound.kraken2.kreport"), *mates]  # fmt: skip
    ours = [str(BIN / "rapidrelease"), "classify", "--db", str(db), "--paired", "--threads", "1",
            "--out-report", str(site / "bound.rapidrelease.kreport"), *mates]  # fmt: skip
    times = []
    for command in (kraken2, ours):
        before = _children_cpu()
        subprocess.run(command, check=True, capture_output=True, cwd=site)
        times.append(_children_cpu() - before)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lots", type=int, default=8)
    parser.add_argument("--work", type=Path, help="folder for the site (default: a temporary one)")
    cache = Path(tempfile.gettempdir()) / "rapidrelease-bench-throughput"
    parser.add_argument("--cache", type=Path, default=cache, help="folder of the tiled data files")
    parser.add_argument("--keep", action="store_true", help="keep the site folder")
    parser.add_argument(
        "--no-kraken2", action="store_true", help="skip Kraken 2's bound (needs kraken2 and kraken2-build)"
    )
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="rr-throughput-"))
    site = work / f"site-{args.lots}"
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    try:
        ids = _site(site, args.lots, args.cache)
        _snakemake(site, "resources/refdb")
        cpu_before = _children_cpu()
        started = time.perf_counter()
        job_cpu = site / "job-cpu"  # inside the site, which every run makes afresh
        done = _snakemake(site, job_cpu=job_cpu)
        wall = time.perf_counter() - started
        cpu_total = _children_cpu() - cpu_before
        steps = re.findall(r"(\d+) of (\d+) steps", done.stderr)
        jobs = int(steps[-1][1]) if steps else 0
        bound = _classification_bound(site, ids[0])

        status, differing = _lots_unlike_the_demo(site, ids)
        lots = len(ids) + 1
        print(f"{args.lots} production-size lots + DEMO-001, snakemake --cores 2 (index built first)")
        print(f"wall {wall:.1f} s, {jobs} jobs ({jobs / lots:.1f} per lot), CPU {cpu_total:.1f} s")
        print(f"throughput: {args.lots / wall * 3600:.0f} lots/h (DEMO-001's small lot counted as none)")
        # a shared machine's wall clock also counts other users' work: the CPU the run used says
        # what two cores of its own would reach
        print(
            f"CPU-bound: {2 * 3600 * args.lots / cpu_total:.0f} lots/h on 2 cores "
            f"({cpu_total / args.lots:.1f} CPU s/lot)"
        )
        print(f"{'rule':<24}{'jobs':>6}{'CPU s':>9}{'CPU s/job':>11}")
        measured = 0.0
        for rule, (n, cpu) in _cpu_per_rule(job_cpu).items():
            measured += cpu
            print(f"{rule:<24}{n:>6}{cpu:>9.1f}{cpu / n:>11.2f}")
        # the rest of the run's CPU time is Snakemake's own process: the DAG, scheduling, checks
        print(f"{'(snakemake itself)':<24}{'':>6}{cpu_total - measured:>9.1f}")
        print(
            f"classification-only bound: {bound:.1f} CPU s per lot's 1 M pairs, "
            f"{2 * 3600 / bound:.0f} lots/h on 2 cores"
        )
        if not args.no_kraken2 and shutil.which("kraken2") and shutil.which("kraken2-build"):
            peer, ours = _peer_bounds(site, ids[0], args.cache)
            print(
                f"on one kraken2-build database of the demo's sources, the same 1 M pairs: kraken2 "
                f"{peer:.1f} CPU s ({2 * 3600 / peer:.0f} lots/h on 2 cores), rapidrelease classify --db "
                f"{ours:.1f} CPU s ({2 * 3600 / ours:.0f} lots/h), {peer / ours:.2f}x Kraken 2's speed"
            )
        print(f"decisions: {status} for DEMO-001; {len(differing)} lot(s) differ: {differing[:5]}")
        if differing:
            raise SystemExit(1)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

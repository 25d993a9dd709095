"""How long Snakemake takes to build the DAG for many lots: `snakemake -n` for 10, 100 and 500 lots.

Each lot is a copy of the demo lot DEMO-001 under a new id, its own files hard links of the demo's
(a lot's test file may serve no other lot), listing the run's two negative controls and positive
control and the flow run's sterile medium, which every lot shares. The dry run is timed from a
fresh site folder (no results yet, so every job is planned), then again after the index is built,
as a scheduled run sees it. Printed per size: jobs planned, seconds, milliseconds per lot, and how the
time grows against the smallest size. Every lot's outputs are checked to be distinct paths.

    .venv/bin/python tests/benchmarks/bench_dag.py [--lots 10 100 500] [--repeats 2]

Not part of the test suite; the note of the operations issue quotes its output.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _site(folder: Path, lots: int) -> Path:
    """A site folder with ``lots`` copies of DEMO-001 in its sheets."""
    shutil.copytree(ROOT / "config", folder / "config")
    (folder / "resources").mkdir()
    (folder / "resources" / "demo").symlink_to(ROOT / "resources" / "demo")
    (folder / "resources" / "reference").symlink_to(ROOT / "resources" / "reference")
    lot_lines = (ROOT / "config" / "lots.tsv").read_text().splitlines()
    unit_lines = (ROOT / "config" / "units.tsv").read_text().splitlines()
    lot_row = next(line for line in lot_lines if line.startswith("DEMO-001\t"))
    unit_rows = [line for line in unit_lines if line.startswith("DEMO-001\t")]
    ids = [f"LOT-{n:04d}" for n in range(1, lots + 1)]
    lots_text = [lot_lines[0]] + [lot_row.replace("DEMO-001", lot_id, 1) for lot_id in ids]
    units_text = [unit_lines[0]]
    for lot_id in ids:
        # each lot its own files (hard links: a lot's test file may serve no other lot), the run's
        # controls shared by all
        data = folder / "data" / lot_id
        data.mkdir(parents=True)
        for row in unit_rows:
            cells = row.replace("DEMO-001", lot_id, 1).split("\t")
            for column in (4, 5):
                if "/DEMO-001/" in cells[column]:
                    source = ROOT / cells[column]
                    os.link(source, data / source.name)
                    cells[column] = f"data/{lot_id}/{source.name}"
            units_text.append("\t".join(cells))
    (folder / "config" / "lots.tsv").write_text("\n".join(lots_text) + "\n")
    (folder / "config" / "units.tsv").write_text("\n".join(units_text) + "\n")
    return folder


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _dry_run(site: Path) -> tuple[float, Counter[str], list[str]]:
    """Seconds of `snakemake -n` (CPU seconds, printed; a shared machine's wall clock counts other
    users' work too), jobs per rule, and every output path it plans."""
    command = [
        str(BIN / "snakemake"),
        "--snakefile", str(ROOT / "workflow" / "Snakefile"),
        "--directory", str(site),
        "--cores", "2", "-n", "--printshellcmds",
    ]  # fmt: skip
    started, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(command, cwd=site, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    print(f"  snakemake -n: {elapsed:.1f} s wall, {_cpu() - cpu:.1f} s CPU", flush=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    text = done.stdout + done.stderr
    rules = Counter(re.findall(r"^(?:local)?rule (\w+):", text, flags=re.M))
    outputs = [
        path.strip()
        for line in re.findall(r"^\s+output: (.+)$", text, flags=re.M)
        for path in line.split(",")
    ]
    return elapsed, rules, outputs


def _build_index(site: Path) -> None:
    command = [
        str(BIN / "snakemake"),
        "--snakefile", str(ROOT / "workflow" / "Snakefile"),
        "--directory", str(site),
        "--cores", "2", "resources/refdb",
    ]  # fmt: skip
    subprocess.run(command, cwd=site, check=True, capture_output=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--repeats", type=int, default=2, help="runs per size; the fastest is shown")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_dag_") as tmp:
        for lots in args.lots:
            site = _site(Path(tmp) / f"site{lots}", lots)
            fresh = []
            for _ in range(args.repeats):
                elapsed, rules, outputs = _dry_run(site)
                fresh.append(elapsed)
            jobs = sum(rules.values())
            repeated = [path for path, n in Counter(outputs).items() if n > 1]
            assert not repeated, f"outputs planned twice: {repeated[:5]}"
            assert rules["evaluate_lot"] == lots and rules["lot_report"] == lots, rules
            _build_index(site)
            indexed = min(_dry_run(site)[0] for _ in range(args.repeats))
            rows.append((lots, jobs, len(outputs), min(fresh), indexed))
    base_lots, _, _, base_seconds, _ = rows[0]
    print("snakemake -n (fastest of", args.repeats, "runs; a fresh site, then with the index built)")
    print(
        f"{'lots':>6} {'jobs':>7} {'outputs':>8} {'fresh s':>8} {'ms/lot':>7} {'indexed s':>10} {'growth':>8}"
    )
    for lots, jobs, outputs, fresh_s, indexed_s in rows:
        growth = fresh_s / base_seconds
        print(
            f"{lots:>6} {jobs:>7} {outputs:>8} {fresh_s:>8.2f} {1000 * fresh_s / lots:>7.1f}"
            f" {indexed_s:>10.2f} {growth:>7.1f}x  (lots {lots / base_lots:.0f}x)"
        )


if __name__ == "__main__":
    main()

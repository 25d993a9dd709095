"""SLURM jobs and wall time for N lots through the SLURM profile, with and without its job groups.

The lots are bench_throughput.py's: DEMO-001 and N copies of it with their own files, all listing
the same sequencing run's controls and flow run's medium. With ``--demo-size`` each lot's files are
the demo lot's own (2,500 read pairs, demo-size tubes): the run then measures the cost of scheduling
and starting jobs, which the groups are about, rather than the classification of N million pairs.

The reference index is built first with `snakemake --cores 2` (untimed); then the run is timed
through `--profile workflow/profiles/slurm` (grouped) and through a copy of the profile without its
`groups:` (every job its own SLURM job), each from empty results. Printed per run: SLURM jobs
submitted (their logs under .snakemake/slurm_logs/), the workflow's jobs, wall time, and whether
every lot's decision equals DEMO-001's. Needs a SLURM cluster (`sudo scripts/slurm-localhost.sh
start` makes a one-node one here).

    .venv/bin/python tests/benchmarks/bench_slurm.py [--lots 20] [--demo-size] [--only grouped|ungrouped]
        [--work DIR] [--keep]

Not part of the test suite; issue 20's note quotes its output.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_throughput
from bench_throughput import BIN, DEMO, ROOT, SEQ_RUN, _lots_unlike_the_demo, _site, _snakemake

PROFILE = ROOT / "workflow" / "profiles" / "slurm"


def _demo_files(cache: Path) -> dict[str, Path]:
    """The demo lot's and run's own files, copied into ``cache`` (the lots hard-link them)."""
    cache.mkdir(parents=True, exist_ok=True)
    sources = {
        "PHENO": DEMO / "DEMO-001_phenotype.fcs",
        "POT-STIM": DEMO / "DEMO-001_potency_stimulated.fcs",
        "POT-UNSTIM": DEMO / "DEMO-001_potency_unstimulated.fcs",
        "R1": DEMO / "DEMO-001_sterility_R1.fastq.gz",
        "R2": DEMO / "DEMO-001_sterility_R2.fastq.gz",
    }
    for control in ("NC1", "NC2"):
        for mate in ("R1", "R2"):
            sources[f"{control}_{mate}"] = SEQ_RUN / f"SEQ-RUN-01_{control}_{mate}.fastq.gz"
    files = {}
    for key, source in sources.items():
        files[key] = cache / source.name
        if not files[key].exists():
            shutil.copyfile(source, files[key])
    return files


def _ungrouped_profile(folder: Path) -> Path:
    """A copy of the SLURM profile without its ``groups:`` block: every job its own SLURM job."""
    text = (PROFILE / "config.yaml").read_text(encoding="utf-8")
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("groups:"):
            skipping = True
            continue
        if skipping and line.startswith("  "):
            continue
        skipping = False
        kept.append(line)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return folder


def _slurm_run(site: Path, profile: Path) -> tuple[float, int, int]:
    """Wall seconds, SLURM jobs and workflow jobs of one run of the site through ``profile``."""
    for generated in ("results", "logs", "benchmarks", ".snakemake"):
        shutil.rmtree(site / generated, ignore_errors=True)
    command = [
        str(BIN / "snakemake"), "--snakefile", str(ROOT / "workflow" / "Snakefile"),
        "--profile", str(profile), "--slurm-init-seconds-before-status-checks", "2",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=site, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    slurm_jobs = len(list((site / ".snakemake" / "slurm_logs").rglob("*.log")))
    steps = re.findall(r"(\d+) of (\d+) steps", done.stderr)
    return wall, slurm_jobs, int(steps[-1][1]) if steps else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lots", type=int, default=20)
    parser.add_argument("--demo-size", action="store_true", help="the demo lot's own files, not tiled")
    parser.add_argument("--work", type=Path, help="folder for the site (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the site folder")
    parser.add_argument(
        "--only", choices=("grouped", "ungrouped"), help="one of the two runs (a long run's halves apart)"
    )
    args = parser.parse_args()
    if shutil.which("sinfo") is None:
        raise SystemExit(
            "no SLURM here; start a one-node cluster with `sudo scripts/slurm-localhost.sh start`"
        )

    tmp = Path(tempfile.gettempdir())
    if args.demo_size:
        # bench_throughput's site with the demo's files in place of the production-size ones
        bench_throughput._production_files = _demo_files
        cache = tmp / "rapidrelease-bench-slurm"
    else:
        cache = tmp / "rapidrelease-bench-throughput"
    work = args.work or Path(tempfile.mkdtemp(prefix="rr-slurm-"))
    site = work / f"site-{args.lots}"
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    try:
        ids = _site(site, args.lots, cache)
        _snakemake(site, "resources/refdb")
        size = "demo-size" if args.demo_size else "production-size"
        print(f"{args.lots} {size} lots + DEMO-001 through the SLURM profile (index built first)")
        print(f"{'profile':<12}{'SLURM jobs':>12}{'workflow jobs':>15}{'wall s':>9}{'lots/h':>8}  decisions")
        profiles = {"grouped": PROFILE, "ungrouped": _ungrouped_profile(work / "ungrouped")}
        for name, profile in profiles.items():
            if args.only not in (None, name):
                continue
            wall, slurm_jobs, jobs = _slurm_run(site, profile)
            status, differing = _lots_unlike_the_demo(site, ids)
            verdict = f"all equal DEMO-001's {status}" if not differing else f"{len(differing)} differ"
            print(
                f"{name:<12}{slurm_jobs:>12}{jobs:>15}{wall:>9.0f}{args.lots / wall * 3600:>8.0f}  {verdict}"
            )
            if differing:
                raise SystemExit(1)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""The demo lots through the SLURM profile on a real one-node SLURM cluster.

CI starts the cluster with the project's own scripts/slurm-localhost.sh (as root); elsewhere the
test skips, saying how to start one. Every job must have run as a SLURM job: each has its SLURM log,
and slurmctld (which keeps finished jobs for an hour, MinJobAge) reports it COMPLETED.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.workflow import release_of, site_folder

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    state = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True)
    return state.returncode == 0 and bool(re.search(r"^(idle|mix|alloc)", state.stdout, re.M))


@pytest.fixture(scope="module")
def slurm_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    if not _cluster_up():
        pytest.skip("no SLURM cluster is up here; start one with `sudo scripts/slurm-localhost.sh start`")
    # one classify part per sequencing unit: every rule still runs as a SLURM job, 24 fewer of them
    workdir = site_folder(project_root, tmp_path_factory.mktemp("slurm_site"), parts=1)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    command = [
        str(BIN / "snakemake"),
        "--snakefile", str(project_root / "workflow" / "Snakefile"),
        "--directory", str(workdir),
        "--profile", str(project_root / "workflow" / "profiles" / "slurm"),
        # a test cluster answers at once; the profile's default first check waits 40 s
        "--slurm-init-seconds-before-status-checks", "2",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=workdir, env=dict(os.environ, PATH=path), capture_output=True, text=True, timeout=1500
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return workdir, elapsed


def test_every_job_ran_as_a_completed_slurm_job(slurm_run: tuple[Path, float]) -> None:
    workdir, elapsed = slurm_run
    # .snakemake/slurm_logs/rule_<rule>/[<wildcards>/]<SLURM job id>.log
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    by_rule: dict[str, int] = {}
    for log in logs:
        rule = next(p for p in log.parts if p.startswith("rule_")).removeprefix("rule_")
        text = log.read_text()
        # the job step ran this rule on the node, and finished it
        assert f"rule {rule}:" in text and "1 of 1 steps (100%) done" in text, log
        job = subprocess.run(["scontrol", "show", "job", log.stem], capture_output=True, text=True)
        assert "JobState=COMPLETED" in job.stdout, (log, job.stdout + job.stderr)
        by_rule[rule] = by_rule.get(rule, 0) + 1
    # the demo: one index; 12 flow units (per lot its phenotype tube, apheresis tube, potency pair,
    # microbial test and the run's medium); 5 sets of read files (each lot's test, the run's two
    # negative controls and positive control, shared by both lots) classified in one part each and
    # gathered once, and 2 lots x 4 sequencing units called; per lot a decision, a report and its
    # MultiQC files; the lots index
    assert by_rule == {
        "build_reference_index": 1,
        "measure_flow_unit": 12,
        "classify_reads_part": 5,
        "gather_reads_unit": 5,
        "call_reads_unit": 8,
        "evaluate_lot": 2,
        "lot_report": 2,
        "multiqc_files": 2,
        "lots_index": 1,
    }
    print(f"\nthe demo through SLURM: {elapsed:.0f} s for {len(logs)} jobs")


def test_slurm_gives_the_same_decisions_as_a_workstation(slurm_run: tuple[Path, float], project_root) -> None:
    workdir, _ = slurm_run
    statuses = {}
    for lot in ("DEMO-001", "DEMO-002"):
        release = release_of(workdir, lot)
        statuses[lot] = (release["status"], [a["result"] for a in release["attributes"]])
    assert statuses == {
        "DEMO-001": ("RELEASE_CANDIDATE", ["PASS"] * 10),
        "DEMO-002": ("NOT_RELEASABLE", ["PASS", "PASS", "FAIL", *["PASS"] * 7]),
    }

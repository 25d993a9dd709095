"""The demo lots through the SLURM profile on a real one-node SLURM cluster.

CI starts the cluster with the project's own scripts/slurm-localhost.sh (as root); elsewhere the
test skips, saying how to start one. Every job must have run inside a SLURM job, the profile's groups
(a lot's own jobs, one set of read files' classification and gathering) as one SLURM job each: each
SLURM job has its log, and slurmctld (which keeps finished jobs for an hour, MinJobAge) reports it
COMPLETED.
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
import yaml

from support.workflow import release_of, site_folder

# waits: most of its time is the scheduler's, so it starts first among the real runs
pytestmark = [pytest.mark.slow, pytest.mark.waits]

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
    # .snakemake/slurm_logs/rule_<rule>/[<wildcards>/]<SLURM job id>.log for a single job,
    # .snakemake/slurm_logs/group_<group>_<its rules>/<SLURM job id>.log for a group job
    logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    slurm_jobs: dict[str, int] = {}
    steps: dict[str, int] = {}
    lot_requests: set[tuple[str, str]] = set()
    for log in logs:
        folder = next(p for p in log.parts if p.startswith(("rule_", "group_")))
        name = folder.removeprefix("rule_") if folder.startswith("rule_") else folder.split("_")[1]
        text = log.read_text()
        # the steps the job ran on the node ("rule <rule>:" once each), and every one finished
        ran = re.findall(r"^rule (\w+):$", text, re.M)
        assert ran and f"{len(ran)} of {len(ran)} steps (100%) done" in text, log
        job = subprocess.run(["scontrol", "show", "job", log.stem], capture_output=True, text=True)
        assert "JobState=COMPLETED" in job.stdout, (log, job.stdout + job.stderr)
        slurm_jobs[name] = slurm_jobs.get(name, 0) + 1
        if name == "lot":
            asked = re.search(r"NumCPUs=(\d+).*MinMemoryNode=(\w+)", job.stdout, re.S)
            lot_requests.add(asked.groups())
        for rule in ran:
            steps[rule] = steps.get(rule, 0) + 1
    # the profile's groups: per lot one "lot" job, per set of read files one "reads" job (each
    # lot's test and the run's two negative controls and positive control, shared by both lots);
    # the reference index and the lots index alone
    assert slurm_jobs == {"build_reference_index": 1, "reads": 5, "lot": 2, "lots_index": 1}
    # a group job runs its steps one at a time, so a lot asks for its widest step (a flow tube: one
    # core, 3 GB), not for six tubes side by side; the two lots then fit the two-core node together
    assert lot_requests == {("1", "3000M")}
    # the demo: one index; 12 flow units (per lot its phenotype tube, apheresis tube, potency pair,
    # microbial test and the run's medium); 5 sets of read files classified in one part each and
    # gathered once, and 2 lots x 4 sequencing units called; per lot a decision, a report and its
    # MultiQC files; the lots index
    assert steps == {
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
    print(
        f"\nthe demo through SLURM: {elapsed:.0f} s for {len(logs)} SLURM jobs, {sum(steps.values())} steps"
    )


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


def test_the_partition_and_account_a_site_sets_in_the_profile_reach_every_job(
    project_root: Path, tmp_path: Path
) -> None:
    # README: a site sets them once by uncommenting them under the profile's default-resources.
    # Snakemake reads workflow/profiles/default too, and its keys replace the --profile's own.
    text = (project_root / "workflow" / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8")
    for line in ("  # slurm_partition: compute", "  # slurm_account: qc-lab"):
        assert line in text
        text = text.replace(line, line.replace("# ", "", 1))
    profile = tmp_path / "site-profile"
    profile.mkdir()
    (profile / "config.yaml").write_text(text, encoding="utf-8")
    workdir = site_folder(project_root, tmp_path / "site", parts=1)
    command = [
        str(BIN / "snakemake"), "--snakefile", str(project_root / "workflow" / "Snakefile"),
        "--directory", str(workdir), "--profile", str(profile), "--dry-run",
    ]  # fmt: skip
    planned = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert planned.returncode == 0, (planned.stdout + planned.stderr)[-3000:]
    requests = re.findall(r"^\s+resources: (.*)$", planned.stdout, re.M)
    # every job of the demo's plan, the index, the classifications and the lots index among them
    assert len(requests) == int(re.search(r"^total\s+(\d+)$", planned.stdout, re.M).group(1))
    assert all("slurm_partition=compute" in r and "slurm_account=qc-lab" in r for r in requests)


def test_every_grouped_rule_takes_the_one_group_step_of_its_group_job(project_root: Path) -> None:
    # set per rule, not under default-resources, which README's --default-resources would replace
    profile = yaml.safe_load((project_root / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["set-resource-scopes"] == {"group_step": "local"}
    assert profile["resources"] == {"group_step": 1}
    steps = {rule: r["group_step"] for rule, r in profile["set-resources"].items() if "group_step" in r}
    assert steps == dict.fromkeys(profile["groups"], 1)

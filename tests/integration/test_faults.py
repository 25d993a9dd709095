"""A run killed part-way, then run again with the workflow's normal command, decides as if never killed.

The snakemake process group is SIGKILLed (nothing can clean up: as a power cut or an OOM kill)
once while reads are being classified and once while the lots' reports are being written, each in
a copy of the session's demo run with the results of that rule and after it taken away, so that the
run reaches those jobs without making every earlier result again. After
``snakemake --unlock`` (a killed snakemake leaves its lock; README, "After a crash"), the rerun
must redo the jobs the kill left incomplete (the default profile sets ``rerun-incomplete``),
never take a half-written file as complete (rapidrelease writes to a temporary name and renames,
rapidrelease.outputs), and give release.json files equal, audit timestamps aside, to those of a
run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rapidrelease.errors import RecordError
from rapidrelease.records import Release, UnitRecord, read_record

from support.workflow import BIN, copy_of_site, release_of, run_snakemake, without_wall_clock

pytestmark = pytest.mark.slow

LOTS = ("DEMO-001", "DEMO-002")


@pytest.fixture(scope="module")
def uninterrupted(demo_run: Path) -> dict[str, dict]:
    """The decisions of the session's demo run, which was never interrupted."""
    return {lot: release_of(demo_run, lot) for lot in LOTS}


def _kill_when(project_root: Path, workdir: Path, started: str, timeout: float = 300) -> None:
    """Run snakemake as README does; SIGKILL its process group once a job of rule ``started`` runs."""
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    command = [str(BIN / "snakemake"), "--snakefile", str(project_root / "workflow" / "Snakefile"),
               "--directory", str(workdir), "--cores", "2"]  # fmt: skip
    with open(workdir / "killed-run.log", "w") as log:
        run = subprocess.Popen(
            command, cwd=workdir, env=dict(os.environ, PATH=path), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        # a job's log folder appears when snakemake starts its first job of that rule
        while not (workdir / "logs" / started).exists():
            assert run.poll() is None, f"the run ended before any {started} job started"
            assert time.monotonic() < deadline, f"no {started} job started in {timeout} s"
            time.sleep(0.05)
        time.sleep(0.3)  # inside the job, not at its first line
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def _no_partial_outputs(workdir: Path) -> None:
    """Every output a killed run left under a final name is whole: every record reads back sealed."""
    for path in (workdir / "results").rglob("*.json"):
        if path.name == "gate_plots.json":
            json.loads(path.read_text(encoding="utf-8"))
            continue
        try:
            read_record(path, Release if path.name == "release.json" else UnitRecord)
        except RecordError as exc:
            raise AssertionError(str(exc)) from None
    for path in (workdir / "results").rglob("report.html"):
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>"), path


def _same_decisions(workdir: Path, expected: dict[str, dict]) -> None:
    for lot, old in expected.items():
        # the two runs ran in different folders, so their snakemake commands differ
        assert without_wall_clock(release_of(workdir, lot), "run_command") == without_wall_clock(
            old, "run_command"
        ), lot


# what each case takes away from a copy of the demo run: the results of the rule the kill lands in,
# all made after them (Snakemake does not remake a missing file that a present, newer one was made
# from) and the rule's logs (a run's first job of the rule makes its log folder: the kill's signal)
TAKEN_AWAY = {
    "classify_reads_part": (
        "results/_measured/reads",
        *(
            f"results/{lot}/{name}"
            for lot in LOTS
            for name in ("reads", "multiqc", "release.json", "release.csv", "report.html")
        ),
        "results/index.html",
        "logs/classify_reads_part",
    ),
    "lot_report": (
        *(f"results/{lot}/report.html" for lot in LOTS),
        "results/index.html",
        "logs/lot_report",
        "logs/lots_index.log",
    ),
}


@pytest.mark.parametrize("rule", ["classify_reads_part", "lot_report"])
def test_a_killed_run_rerun_decides_as_an_uninterrupted_one(
    project_root: Path, demo_run: Path, tmp_path: Path, uninterrupted: dict[str, dict], rule: str
):
    # the run starts where the demo run's work before that rule was done, so the kill lands in it
    # without a whole demo run before it
    workdir = copy_of_site(demo_run, tmp_path / "site", *TAKEN_AWAY[rule])
    _kill_when(project_root, workdir, rule)
    _no_partial_outputs(workdir)
    # a killed snakemake cannot remove its lock; Snakemake's own step after a power cut removes it
    unlock = run_snakemake(project_root, workdir, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    # the kill left work undone: a dry run plans it (the incomplete job's outputs are not complete)
    plan = run_snakemake(project_root, workdir, "--dry-run")
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert f"rule {rule}:" in plan.stdout or f"localrule {rule}:" in plan.stdout, plan.stdout[-3000:]
    rerun = run_snakemake(project_root, workdir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _no_partial_outputs(workdir)
    _same_decisions(workdir, uninterrupted)
    for lot in LOTS:
        assert (workdir / "results" / lot / "report.html").stat().st_size > 1_000_000
    assert not list((workdir / "results").rglob("*.tmp")), "temporary files are renamed or removed"
    again = run_snakemake(project_root, workdir, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr

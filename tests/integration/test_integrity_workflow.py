"""Decision integrity in real snakemake runs: reruns follow the bytes of every input, not their clocks.

Each hostile change is made the way a lab or a copy tool makes it (``cp -p`` and ``rsync -t`` keep
the source's older modification time; ``touch -d`` sets any time) and is paired with what the same
lot looked like before, so no case passes vacuously.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from support.workflow import release_of, run_snakemake, site_folder

pytestmark = pytest.mark.slow


def _planned(plan: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run plans."""
    jobs = []
    for block in re.split(r"\n(?=\[)", plan):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        wildcards = re.search(r"^\s+wildcards: (.+)$", block, flags=re.M)
        if rule:
            jobs.append((rule.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


@pytest.fixture(scope="module")
def decided(project_root: Path, demo_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo lots decided once in a site's folder that the tests below then change."""
    workdir = site_folder(project_root, tmp_path_factory.mktemp("integrity_site"), index=demo_index, parts=1)
    done = run_snakemake(project_root, workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert release_of(workdir, "DEMO-001")["status"] == "RELEASE_CANDIDATE"
    assert release_of(workdir, "DEMO-002")["status"] == "NOT_RELEASABLE"
    return workdir


def test_a_tube_replaced_by_an_older_file_re_measures_and_re_decides_its_lot(
    project_root: Path, decided: Path
):
    passing = decided / "resources/demo/DEMO-001/DEMO-001_phenotype.fcs"
    failing = decided / "resources/demo/DEMO-002/DEMO-002_phenotype.fcs"
    before = release_of(decided, "DEMO-001")
    # the failing lot's tube copied over the passing lot's, keeping its older time: Snakemake's clock
    # alone would see nothing to do
    subprocess.run(["cp", "-p", str(failing), str(passing)], check=True)
    assert passing.stat().st_mtime < (decided / "results/DEMO-001/release.json").stat().st_mtime
    plan = run_snakemake(project_root, decided, "--dry-run")
    assert plan.returncode == 0, plan.stderr[-3000:]
    measured = [w for rule, w in _planned(plan.stdout) if rule == "measure_flow_unit"]
    assert measured == ["lot=DEMO-001, unit=PHENO"], plan.stdout[-3000:]
    rerun = run_snakemake(project_root, decided)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = release_of(decided, "DEMO-001")
    assert after["status"] == "NOT_RELEASABLE"
    car = next(a for a in after["attributes"] if a["name"] == "car_of_cd3")
    assert (car["result"], car["value"]) == ("FAIL", 8.9)
    sha = next(u for u in after["units"] if u["unit_id"] == "PHENO")["inputs"][0]["sha256"]
    old = next(u for u in before["units"] if u["unit_id"] == "PHENO")["inputs"][0]["sha256"]
    assert (
        sha != old
        and sha
        == next(u for u in release_of(decided, "DEMO-002")["units"] if u["unit_id"] == "PHENO")["inputs"][0][
            "sha256"
        ]
    )


def test_a_specification_edited_and_touched_back_in_time_re_decides_every_lot(
    project_root: Path, decided: Path
):
    specs = decided / "config" / "specs.yaml"
    text = specs.read_text(encoding="utf-8")
    # CAR+ of CD3+ from ≥ 15 % to ≥ 5 %: DEMO-002's 8.9 % now passes
    edited = re.sub(r"(car_of_cd3:.*?limit: )15\b", r"\g<1>5", text, flags=re.S)
    assert edited != text
    specs.write_text(edited, encoding="utf-8")
    subprocess.run(["touch", "-d", "2020-01-01 00:00", str(specs)], check=True)
    plan = run_snakemake(project_root, decided, "--dry-run")
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = _planned(plan.stdout)
    assert ("evaluate_lot", "lot=DEMO-002") in jobs and ("evaluate_lot", "lot=DEMO-001") in jobs
    # the specification judges measurements; it does not change them
    assert not [rule for rule, _ in jobs if rule in ("measure_flow_unit", "classify_reads_part")]
    rerun = run_snakemake(project_root, decided)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    car = next(a for a in release_of(decided, "DEMO-002")["attributes"] if a["name"] == "car_of_cd3")
    assert (car["result"], car["criterion"]) == ("PASS", "≥ 5 %")
    again = run_snakemake(project_root, decided, "--dry-run")
    assert "Nothing to be done" in again.stdout + again.stderr

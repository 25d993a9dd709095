"""The Snakemake Workflow Catalog's view of the workflow: its settings file, and the one-lot test
configuration in .test/ linted and planned as CI and the catalog run it,
`snakemake --directory .test --configfile .test/config/config.yaml`.

No real run here: it measures the same DEMO-001 as the demo runs of test_demo_workflow.py and takes
about a minute on two cores.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from support.workflow import run_snakemake

# one lot with every kind of unit: five flow tubes, four sequencing units of one classify part each
EXPECTED_JOBS = {
    "build_reference_index": 1,
    "measure_flow_unit": 5,
    "classify_reads_part": 4,
    "gather_reads_unit": 4,
    "call_reads_unit": 4,
    "evaluate_lot": 1,
    "lot_report": 1,
    "multiqc_files": 1,
    "lots_index": 1,
    "all": 1,
}


@pytest.fixture(scope="module")
def test_site(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.test/ copied with its link into resources/, beside links to the project's config/ and
    resources/ (only read), so nothing is written into the checkout; returns the copy of .test/."""
    site = tmp_path_factory.mktemp("catalog")
    shutil.copytree(
        project_root / ".test",
        site / ".test",
        symlinks=True,
        ignore=shutil.ignore_patterns(".snakemake", "results", "logs", "benchmarks", "refdb"),
    )
    for folder in ("config", "resources"):
        (site / folder).symlink_to(project_root / folder)
    return site / ".test"


def _job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1].split("\ntotal", 1)[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_the_catalog_settings_say_how_the_workflow_deploys_and_that_it_has_a_report(project_root: Path):
    # the keys the catalog reads (snakemake-workflow-catalog, "Adding workflows")
    usage = yaml.safe_load((project_root / ".snakemake-workflow-catalog.yml").read_text(encoding="utf-8"))[
        "usage"
    ]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment", "report"}
    assert (
        set(usage["mandatory-flags"]) == {"desc", "flags"}
        and "pip install" in usage["mandatory-flags"]["desc"]
    )
    assert usage["software-stack-deployment"] == {"conda": True, "apptainer": False, "apptainer+conda": False}
    assert usage["report"] is True


@pytest.mark.slow
def test_the_test_configuration_is_lint_clean(project_root: Path, test_site: Path):
    lint = run_snakemake(project_root, test_site, "--configfile", "config/config.yaml", "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr


@pytest.mark.slow
def test_the_test_configuration_plans_every_stage_for_its_one_lot(project_root: Path, test_site: Path):
    plan = run_snakemake(
        project_root, test_site, "--configfile", "config/config.yaml", "--dry-run", "--printshellcmds"
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    output = plan.stdout + plan.stderr
    assert _job_counts(output) == EXPECTED_JOBS
    assert "results/DEMO-001/release.json" in output and "DEMO-002" not in output
    # the demo's data, read through the link .test/resources/demo
    assert (test_site / "resources" / "demo" / "DEMO-001" / "DEMO-001_phenotype.fcs").is_file()

"""Real snakemake runs of the workflow on the demo lots, in a temporary working directory."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from rapidrelease.stats import lower_bound, organisms_detected

from support.workflow import (
    BIN,
    append_rows,
    copy_of_site,
    lot_like,
    record_of,
    release_of,
    run_snakemake,
    site_folder,
    without_wall_clock,
)

pytestmark = pytest.mark.slow


def test_demo_lots_decisions_and_values_match_the_simulation_truth(demo_run: Path):
    first, second = release_of(demo_run, "DEMO-001"), release_of(demo_run, "DEMO-002")
    assert first["status"] == "RELEASE_CANDIDATE"
    assert [a["result"] for a in first["attributes"]] == ["PASS"] * 10
    assert second["status"] == "NOT_RELEASABLE"
    results = {a["name"]: a["result"] for a in second["attributes"]}
    assert results == {
        "viability": "PASS",
        "cd3_of_live": "PASS",
        "car_of_cd3": "FAIL",
        "cd4_cd8_ratio": "PASS",
        "dose_per_kg": "PASS",
        "potency_ifng": "PASS",
        "potency_cd107a": "PASS",
        "microbial_flow": "PASS",
        "sterility": "PASS",
        "sterility_lod": "PASS",
    }
    for lot, release in (("DEMO-001", first), ("DEMO-002", second)):
        table = pl.read_csv(demo_run / "resources/demo" / lot / "truth.tsv", separator="\t")
        truth = dict(zip(table["metric"], table["value"], strict=True))
        metrics = record_of(demo_run, lot, "PHENO")["metrics"]
        for name, expected in truth.items():
            tolerance = 0.1 * expected if name.endswith("ratio") else 1.0
            assert abs(metrics[name]["value"] - expected) <= tolerance, (lot, name)
        car = next(a for a in release["attributes"] if a["name"] == "car_of_cd3")
        assert abs(car["value"] - truth["car_pct_cd3"]) <= 1.0
        # the categorical calls carry the numbers they were decided on
        by_name = {a["name"]: a for a in release["attributes"]}
        microbial = {f["label"]: f for f in by_name["microbial_flow"]["evidence"]["figures"]}
        micro = record_of(demo_run, lot, "MICRO")["metrics"]
        assert microbial["test count per mL"]["value"] == micro["microbes_per_ml"]["value"]
        assert microbial["test count per mL"]["ci95"] == micro["microbes_per_ml"]["ci95"]
        assert microbial["limit of detection"]["value"] == micro["microbial_lod_per_ml"]["value"]
        assert microbial["sterile-medium control MICRO-NC volume"]["unit"] == "mL"
        sterility = {(f["label"], f["unit"]) for f in by_name["sterility"]["evidence"]["figures"]}
        assert {("test fragments", "fragments"), ("limit of detection", "CFU/mL")} <= sterility
        # the starting material: the apheresis tube's viability and T cells against its own truth
        table = pl.read_csv(demo_run / "resources/demo" / lot / "apheresis_truth.tsv", separator="\t")
        apheresis = dict(zip(table["metric"], table["value"], strict=True))
        starting = release["starting_material"]
        assert (starting["spec"], starting["status"]) == ("APHERESIS-DEMO", "ACCEPTED")
        values = {a["metric"]: a["value"] for a in starting["attributes"]}
        assert abs(values["viability_pct"] - apheresis["viability_pct"]) <= 1.0, lot
        assert abs(values["cd3_pct_live"] - apheresis["cd3_pct_live"]) <= 1.0, lot
        # the sterility sample: shares of fragments by category against the simulated composition
        reads = record_of(demo_run, lot, "STER")
        # gathered where the lot's reads were measured (results/_measured/reads/<key>), as its call read them
        gathered = next(i["path"] for i in reads["inputs"] if i["role"] == "gathered reads (test STER)")
        sequenced = demo_run / Path(gathered).parent
        assert sequenced.parent == demo_run / "results" / "_measured" / "reads"
        assert reads["status"] == "ok" and reads["metrics"]["fragments_total"]["value"] == 2_500
        truth = demo_run / "resources/demo" / lot / f"{lot}_sterility_reads_truth.tsv"
        composition = pl.read_csv(truth, separator="\t")
        for category, percent in zip(composition["category"], composition["percent"], strict=True):
            assert abs(reads["metrics"][f"{category}_pct"]["value"] - percent) <= 0.5, (lot, category)
        assert reads["metrics"]["contaminant_pct"]["value"] == 0
        assert (sequenced / "reads.kreport").read_text().startswith("100.00\t2500\t")
        assert not list(sequenced.glob("parts/*.npz")), "the parts are temporary"
        # the calls: nothing detected; NC1's trace of reagent E. coli is background, not a finding;
        # LOD95: the count test needs 5 reads against the two clean 2,500-fragment controls; the
        # positive control's 112 S. aureus pairs of 2,500 per 100 CFU/mL count at their lower 95 %
        # bound (95.2); the 10 mL tested hold Poisson-many organisms of 0.095 reads each: 9.87 CFU/mL,
        # within the demo's 10 CFU/mL claim (reads alone would say 9.62; the 3/V floor is 0.3)
        call = reads["metrics"]["contaminant_call"]
        assert (call["value"], call["kind"], call["status"], call["reason"], call["detail"]) == (
            "NOT_DETECTED", "category", "ok", None, None
        )  # fmt: skip
        assert reads["validity"] == {"valid": True, "problems": []}
        assert reads["metrics"]["detection_threshold_reads"]["value"] == 5
        per_organism = lower_bound(112) / 100 / 10  # reads per organism: per CFU/mL, per mL tested
        assert reads["metrics"]["lod"]["value"] == pytest.approx(
            organisms_detected(5, per_organism) / 10, rel=1e-6
        ) == pytest.approx(9.874, abs=1e-3)  # fmt: skip
        assert reads["lod"]["basis"] == "predicted"
        assert reads["sampling"] == {"tested_volume_ml": 10.0, "floor": pytest.approx(0.2996, abs=1e-4),
                                     "unit": "CFU/mL"}  # fmt: skip
        assert [e["status"] for e in reads["checklist"]] == ["NOT_DETECTED"] * 6
        blank = record_of(demo_run, lot, "STER-NC1")
        assert blank["metrics"]["max_contaminant_rpm"]["value"] == pytest.approx(800.0)
        # potency: each net percentage of CAR+ T cells against the simulated responders, within 1 point;
        # the thresholds come from the unstimulated tube
        potency = record_of(demo_run, lot, "POT-STIM")
        assert {t["control_unit_id"] for t in potency["thresholds"]} == {"POT-UNSTIM"}
        truth = pl.read_csv(demo_run / "resources/demo" / lot / "potency_truth.tsv", separator="\t")
        for row in truth.iter_rows(named=True):
            measured = potency["metrics"][row["metric"]]
            assert measured["status"] == "ok" and abs(measured["value"] - row["net"]) <= 1.0, (lot, row)
        # microbial flow: sterile, against the run's medium control, with its LOD
        microbial = record_of(demo_run, lot, "MICRO")
        assert microbial["metrics"]["microbial_call"]["value"] == "NOT_DETECTED"
        assert microbial["metrics"]["microbial_call"]["evidence"]["negative_control"]["unit_id"] == "MICRO-NC"
        assert microbial["metrics"]["microbial_lod_per_ml"]["value"] > 0
        # the dose: the lot sheet's viable cells × the phenotype's CD3+ and CAR+ fractions ÷ weight
        dose = next(a for a in release["attributes"] if a["name"] == "dose_per_kg")
        pheno = record_of(demo_run, lot, "PHENO")["metrics"]
        tnc, weight = {"DEMO-001": (1.2e9, 78), "DEMO-002": (2.5e9, 64)}[lot]
        expected = tnc * pheno["cd3_pct_live"]["value"] / 100 * pheno["car_pct_cd3"]["value"] / 100 / weight
        assert dose["evidence"]["measured_value"] == pytest.approx(expected)
        assert [u["unit_id"] for u in release["units"]] == [
            "PHENO",
            "STER",
            "STER-NC1",
            "STER-NC2",
            "STER-PC",
            "POT-STIM",
            "POT-UNSTIM",
            "MICRO",
            "MICRO-NC",
            "APHERESIS",
        ]
        assert (demo_run / "results" / lot / "report.html").stat().st_size > 1_000_000  # plotly.js embedded


def test_the_demo_index_draws_control_limits_and_tests_the_sites_equivalence(demo_run: Path):
    page = (demo_run / "results" / "index.html").read_text(encoding="utf-8")
    # the two demo lots and the 24 of the synthetic history (config.yaml trends.archive)
    assert "2 lots: 1 release candidate, 1 not releasable, 0 inconclusive." in page
    assert page.count("<span class='note'>archived</span>") == 24
    limits = re.findall(r"<li><b>(\w+)</b>: (\d+) baseline lots, \d+ beyond the limits</li>", page)
    # every numeric attribute of the demo specification: 23 decided archived lots and both demo lots
    assert [name for name, _ in limits] == [
        "viability",
        "cd3_of_live",
        "car_of_cd3",
        "cd4_cd8_ratio",
        "dose_per_kg",
        "potency_ifng",
        "potency_cd107a",
        "sterility_lod",
    ]
    assert {n for _, n in limits} == {"25"}
    assert "no control limits" not in page
    verdicts = re.findall(r"<span class='result (?:PASS|FAIL)'>((?:not shown )?equivalent)</span>", page)
    assert len(verdicts) >= 1, "no pair of sites was tested for equivalence"


def test_a_second_run_does_nothing_and_a_forced_one_gives_byte_identical_decisions(
    project_root: Path, demo_run: Path, tmp_path: Path
):
    # the forced run rewrites every result, so it runs in a copy that other tests do not read (a
    # site's folder moved elsewhere, with its results and Snakemake's records of them)
    site = copy_of_site(demo_run, tmp_path / "site")
    again = run_snakemake(project_root, site, "--dry-run")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    before = {lot: release_of(site, lot) for lot in ("DEMO-001", "DEMO-002")}
    forced = run_snakemake(project_root, site, "--forceall")
    assert forced.returncode == 0, forced.stderr[-3000:]
    for lot, old in before.items():
        new = release_of(site, lot)
        assert new["audit"]["started_at"] > old["audit"]["finished_at"], "the forced run evaluated again"
        # the whole file, audit included (software, files and their hashes, settings, host), except
        # the times and the command (this one has --forceall)
        assert without_wall_clock(new, "run_command") == without_wall_clock(old, "run_command"), lot
        assert (
            new["audit"]["timeline"]["units"][0]["acquired_start"]
            == old["audit"]["timeline"]["units"][0]["acquired_start"]
        )


def test_a_missing_file_that_arrives_is_measured_and_decided_at_the_next_run(
    project_root: Path, demo_index: Path, tmp_path: Path
):
    # tests/integration/test_bad_inputs.py holds the corpus of bad inputs; this is the one that heals
    workdir = site_folder(project_root, tmp_path, index=demo_index, parts=1)
    demo = workdir / "resources" / "demo"
    (workdir / "incoming").mkdir()
    # every unit of DEMO-001 (its sequencing run's controls, potency pair and microbial tubes), one replaced
    lot_row = "\tCAR-T (demo, synthetic)\tCART-DEMO-release\t2026-11-25T08:00:00+01:00\tSITE-A\t1.2e9\t78"
    append_rows(
        workdir / "config" / "lots.tsv", [f"{lot}{lot_row}" for lot in ("BAD-MISSING", "BAD-NOREADS")]
    )
    panel = "config/panels/car_t_phenotype.yaml"
    append_rows(
        workdir / "config" / "units.tsv",
        [
            *lot_like(
                workdir,
                "BAD-MISSING",
                PHENO=f"PHENO\tphenotype\ttest\tincoming/not-yet-written.fcs\t\t{panel}\t\t\t\t\t",
            ),
            *lot_like(
                workdir,
                "BAD-NOREADS",
                # the demo's 10 mL extracted volume, which its 10 CFU/mL LOD claim needs
                STER="STER\tsterility_reads\ttest\tincoming/reads-not-yet-written.fastq.gz\t\t\t10000\tshotgun\t\t\t",
            ),
        ],
    )
    # only these two lots' decisions: the demo lots beside them are the session run's business
    targets = [f"results/{lot}/release.json" for lot in ("BAD-MISSING", "BAD-NOREADS")]
    done = run_snakemake(project_root, workdir, *targets)
    assert done.returncode == 0, done.stderr[-3000:]
    missing = release_of(workdir, "BAD-MISSING")
    assert missing["status"] == "INCONCLUSIVE"
    assert "not-yet-written.fcs: file not found" in missing["attributes"][0]["reason"]
    no_reads = release_of(workdir, "BAD-NOREADS")
    assert no_reads["status"] == "INCONCLUSIVE"
    sterility = next(u for u in no_reads["units"] if u["unit_id"] == "STER")
    assert sterility["error"].startswith("incoming/reads-not-yet-written.fastq.gz: "), sterility["error"]

    # the missing file arrives: the next run measures that lot again and it is decided
    shutil.copy(demo / "DEMO-001" / "DEMO-001_phenotype.fcs", workdir / "incoming" / "not-yet-written.fcs")
    rerun = run_snakemake(project_root, workdir, *targets)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert release_of(workdir, "BAD-MISSING")["status"] == "RELEASE_CANDIDATE"
    assert release_of(workdir, "BAD-NOREADS")["status"] == "INCONCLUSIVE"
    shutil.copy(
        demo / "DEMO-001" / "DEMO-001_sterility_R1.fastq.gz",
        workdir / "incoming" / "reads-not-yet-written.fastq.gz",
    )
    rerun = run_snakemake(project_root, workdir, *targets)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert release_of(workdir, "BAD-NOREADS")["status"] == "RELEASE_CANDIDATE"


def test_an_invalid_sheet_is_refused_before_any_job_runs(project_root: Path, tmp_path: Path):
    workdir = site_folder(project_root, tmp_path)
    units = workdir / "config" / "units.tsv"
    units.write_text(units.read_text().replace("\tphenotype\t", "\tphenotyp\t", 1))
    refused = run_snakemake(project_root, workdir)
    assert refused.returncode != 0
    assert "config/units.tsv row 2, column 'assay': 'phenotyp' is not one of" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (workdir / "results").exists()


def _planned_producers(dry_run: str) -> dict[str, str]:
    """Each output file of a dry run's plan and the rule planned to write it."""
    producers: dict[str, str] = {}
    for block in re.split(r"\n(?=rule \w+:)", dry_run):
        rule = re.match(r"rule (\w+):", block)
        output = re.search(r"^\s+output: (.+)$", block, flags=re.M)
        if rule and output:
            producers.update(dict.fromkeys((p.strip() for p in output.group(1).split(",")), rule.group(1)))
    return producers


def test_each_stage_writes_its_own_folder_whatever_the_unit_ids(project_root: Path, tmp_path: Path):
    # one unit id used for a sequencing unit in one lot and a flow unit in another: the folders
    # (flow/, reads/) tell the stages apart, with no rule order and no generated wildcard regex
    workdir = site_folder(project_root, tmp_path)
    units = workdir / "config" / "units.tsv"
    text = units.read_text().replace("DEMO-001\tSTER\t", "DEMO-001\tS1\t")
    units.write_text(text.replace("DEMO-002\tPHENO\t", "DEMO-002\tS1\t"))
    plan = run_snakemake(project_root, workdir, "--dry-run", "--printshellcmds")
    assert plan.returncode == 0, plan.stderr[-3000:]
    producers = _planned_producers(plan.stdout)
    assert producers["results/DEMO-001/reads/S1/metrics.json"] == "call_reads_unit"
    # reads are gathered once per set of files: each lot's test and the run's three shared controls
    gathered = [
        p for p, rule in producers.items() if rule == "gather_reads_unit" and p.endswith("/reads.json")
    ]
    assert len(gathered) == 5 and all(
        re.fullmatch(r"results/_measured/reads/[0-9a-f]{16}/reads.json", p) for p in gathered
    )
    assert producers["results/DEMO-002/flow/S1/metrics.json"] == "measure_flow_unit"
    assert producers["results/DEMO-001/flow/PHENO/metrics.json"] == "measure_flow_unit"
    assert producers["results/DEMO-002/reads/STER/metrics.json"] == "call_reads_unit"
    assert not any("/units/" in path for path in producers)


def test_the_workflow_is_lint_clean_and_snakefmt_formatted(project_root: Path, demo_run: Path):
    lint = run_snakemake(project_root, demo_run, "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [str(BIN / "snakefmt"), "--check", str(project_root / "workflow")], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr

"""Real snakemake runs of the workflow on the demo lots, in a temporary working directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _workdir(project_root: Path, tmp: Path, index: Path | None = None, parts: int | None = None) -> Path:
    """A site's folder: config/ and the demo data copied, the workflow used from the project.

    The default panel is linked (only read); with ``index``, config.yaml points at that prebuilt
    index instead, so the test does not build the same one again. ``parts`` replaces the demo's
    classify parts per sequencing unit (4): a test that is not about splitting the classification
    saves three job starts per unit with 1.
    """
    shutil.copytree(project_root / "config", tmp / "config")
    shutil.copytree(project_root / "resources" / "demo", tmp / "resources" / "demo")
    (tmp / "resources" / "reference").symlink_to(project_root / "resources" / "reference")
    if index is not None:
        config = tmp / "config" / "config.yaml"
        text = config.read_text(encoding="utf-8")
        start, end = text.index("reference:\n"), text.index("# Read classification")
        config.write_text(text[:start] + f"reference:\n  index: {index}\n" + text[end:], encoding="utf-8")
    if parts is not None:
        config = tmp / "config" / "config.yaml"
        text = config.read_text(encoding="utf-8")
        assert "  parts: 4\n" in text
        config.write_text(text.replace("  parts: 4\n", f"  parts: {parts}\n"), encoding="utf-8")
    return tmp


def _snakemake(
    project_root: Path, workdir: Path, *args: str, timeout: int = 600
) -> subprocess.CompletedProcess:
    # as README runs it: .venv/bin/snakemake with the environment not activated (not on PATH)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    env = dict(os.environ, PATH=path)
    command = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(project_root / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def _release(workdir: Path, lot: str) -> dict:
    return json.loads((workdir / "results" / lot / "release.json").read_text(encoding="utf-8"))


# the parts of release.json that are clock readings of a run (audit block): everything else must be
# byte-identical across reruns of the same inputs
WALL_CLOCK = ("started_at", "finished_at", "timeline")


def _without_wall_clock(release: dict, *also: str) -> str:
    """release.json as text without the audit's clock readings (and the audit keys in ``also``)."""
    audit = {k: v for k, v in release["audit"].items() if k not in WALL_CLOCK + also}
    return json.dumps({**release, "audit": audit}, ensure_ascii=False)


def _append_rows(path: Path, rows: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(row + "\n" for row in rows)


@pytest.fixture(scope="module")
def demo_run(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = _workdir(project_root, tmp_path_factory.mktemp("site"))
    done = _snakemake(project_root, workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def test_demo_lots_decisions_and_values_match_the_simulation_truth(demo_run: Path):
    first, second = _release(demo_run, "DEMO-001"), _release(demo_run, "DEMO-002")
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
        metrics = json.loads((demo_run / "results" / lot / "units/PHENO/metrics.json").read_text())["metrics"]
        for name, expected in truth.items():
            tolerance = 0.1 * expected if name.endswith("ratio") else 1.0
            assert abs(metrics[name]["value"] - expected) <= tolerance, (lot, name)
        car = next(a for a in release["attributes"] if a["name"] == "car_of_cd3")
        assert abs(car["value"] - truth["car_pct_cd3"]) <= 1.0
        # the sterility sample: shares of fragments by category against the simulated composition
        sequenced = demo_run / "results" / lot / "units/STER"
        reads = json.loads((sequenced / "metrics.json").read_text())
        assert reads["status"] == "ok" and reads["metrics"]["fragments_total"]["value"] == 2_500
        truth = demo_run / "resources/demo" / lot / f"{lot}_sterility_reads_truth.tsv"
        composition = pl.read_csv(truth, separator="\t")
        for category, percent in zip(composition["category"], composition["percent"], strict=True):
            assert abs(reads["metrics"][f"{category}_pct"]["value"] - percent) <= 0.5, (lot, category)
        assert reads["metrics"]["contaminant_pct"]["value"] == 0
        assert (sequenced / "reads.kreport").read_text().startswith("100.00\t2500\t")
        assert not list(sequenced.glob("parts/*.npz")), "the parts are temporary"
        # the calls: nothing detected; NC1's trace of reagent E. coli is background, not a finding;
        # LOD = λ95(3 reads) / 2,500 fragments / (112 S. aureus pairs of 2,500 per 100 CFU/mL)
        assert reads["metrics"]["contaminant_call"] == {
            "value": "NOT_DETECTED", "unit": None, "kind": "category", "detail": None, "status": "ok",
            "reason": None,
        }  # fmt: skip
        assert reads["validity"] == {"valid": True, "problems": []}
        assert reads["metrics"]["detection_threshold_reads"]["value"] == 3
        assert reads["metrics"]["lod"]["value"] == pytest.approx(
            6.2958 / 2_500e-6 / (112 / 2_500e-6 / 100), rel=1e-3
        )
        assert [e["status"] for e in reads["checklist"]] == ["NOT_DETECTED"] * 6
        blank = json.loads((demo_run / "results" / lot / "units/STER-NC1/metrics.json").read_text())
        assert blank["metrics"]["max_contaminant_rpm"]["value"] == pytest.approx(800.0)
        # potency: each net percentage of CAR+ T cells against the simulated responders, within 1 point;
        # the thresholds come from the unstimulated tube
        potency = json.loads((demo_run / "results" / lot / "units/POT-STIM/metrics.json").read_text())
        assert {t["control_unit_id"] for t in potency["thresholds"]} == {"POT-UNSTIM"}
        truth = pl.read_csv(demo_run / "resources/demo" / lot / "potency_truth.tsv", separator="\t")
        for row in truth.iter_rows(named=True):
            measured = potency["metrics"][row["metric"]]
            assert measured["status"] == "ok" and abs(measured["value"] - row["net"]) <= 1.0, (lot, row)
        # microbial flow: sterile, against the run's medium control, with its LOD
        microbial = json.loads((demo_run / "results" / lot / "units/MICRO/metrics.json").read_text())
        assert microbial["metrics"]["microbial_call"]["value"] == "NOT_DETECTED"
        assert microbial["metrics"]["microbial_call"]["evidence"]["negative_control"]["unit_id"] == "MICRO-NC"
        assert microbial["metrics"]["microbial_lod_per_ml"]["value"] > 0
        # the dose: the lot sheet's viable cells × the phenotype's CD3+ and CAR+ fractions ÷ weight
        dose = next(a for a in release["attributes"] if a["name"] == "dose_per_kg")
        pheno = json.loads((demo_run / "results" / lot / "units/PHENO/metrics.json").read_text())["metrics"]
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
        ]
        assert (demo_run / "results" / lot / "report.html").stat().st_size > 1_000_000  # plotly.js embedded


def test_a_second_run_does_nothing_and_a_forced_one_gives_byte_identical_decisions(
    project_root: Path, demo_run: Path
):
    again = _snakemake(project_root, demo_run, "--dry-run")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    before = {lot: _release(demo_run, lot) for lot in ("DEMO-001", "DEMO-002")}
    forced = _snakemake(project_root, demo_run, "--forceall")
    assert forced.returncode == 0, forced.stderr[-3000:]
    for lot, old in before.items():
        new = _release(demo_run, lot)
        assert new["audit"]["started_at"] > old["audit"]["finished_at"], "the forced run evaluated again"
        # the whole file, audit included (software, files and their hashes, settings, host), except
        # the times and the command (this one has --forceall)
        assert _without_wall_clock(new, "run_command") == _without_wall_clock(old, "run_command"), lot
        assert (
            new["audit"]["timeline"]["units"][0]["acquired_start"]
            == old["audit"]["timeline"]["units"][0]["acquired_start"]
        )


def test_a_missing_file_that_arrives_is_measured_and_decided_at_the_next_run(
    project_root: Path, demo_run: Path, tmp_path: Path
):
    # tests/integration/test_bad_inputs.py holds the corpus of bad inputs; this is the one that heals
    workdir = _workdir(project_root, tmp_path, index=demo_run / "resources" / "refdb", parts=1)
    demo = workdir / "resources" / "demo"
    (workdir / "incoming").mkdir()
    # every unit of DEMO-001 (its sequencing run's controls, potency pair and microbial tubes), one replaced
    demo_units = [row.split("\t", 1)[1] for row in (workdir / "config" / "units.tsv").read_text().splitlines()
                  if row.startswith("DEMO-001\t")]  # fmt: skip

    def units_of(lot: str, **replaced: str) -> list[str]:
        return [f"{lot}\t{replaced.get(row.split(chr(9))[0], row)}" for row in demo_units]

    lot_row = "\tCAR-T (demo, synthetic)\tCART-DEMO-release\t2026-11-25T08:00:00+01:00\tSITE-A\t1.2e9\t78"
    _append_rows(
        workdir / "config" / "lots.tsv", [f"{lot}{lot_row}" for lot in ("BAD-MISSING", "BAD-NOREADS")]
    )
    panel = "config/panels/car_t_phenotype.yaml"
    _append_rows(
        workdir / "config" / "units.tsv",
        [
            *units_of(
                "BAD-MISSING", PHENO=f"PHENO\tphenotype\ttest\tincoming/not-yet-written.fcs\t\t{panel}\t"
            ),
            *units_of(
                "BAD-NOREADS",
                STER="STER\tsterility_reads\ttest\tincoming/reads-not-yet-written.fastq.gz\t\t\t",
            ),
        ],
    )
    done = _snakemake(project_root, workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    missing = _release(workdir, "BAD-MISSING")
    assert missing["status"] == "INCONCLUSIVE"
    assert "not-yet-written.fcs: file not found" in missing["attributes"][0]["reason"]
    no_reads = _release(workdir, "BAD-NOREADS")
    assert no_reads["status"] == "INCONCLUSIVE"
    sterility = next(u for u in no_reads["units"] if u["unit_id"] == "STER")
    assert sterility["error"].startswith("incoming/reads-not-yet-written.fastq.gz: "), sterility["error"]

    # the missing file arrives: the next run measures that lot again and it is decided
    shutil.copy(demo / "DEMO-001" / "DEMO-001_phenotype.fcs", workdir / "incoming" / "not-yet-written.fcs")
    rerun = _snakemake(project_root, workdir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _release(workdir, "BAD-MISSING")["status"] == "RELEASE_CANDIDATE"
    assert _release(workdir, "BAD-NOREADS")["status"] == "INCONCLUSIVE"
    shutil.copy(
        demo / "DEMO-001" / "DEMO-001_sterility_R1.fastq.gz",
        workdir / "incoming" / "reads-not-yet-written.fastq.gz",
    )
    rerun = _snakemake(project_root, workdir)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _release(workdir, "BAD-NOREADS")["status"] == "RELEASE_CANDIDATE"


def test_an_invalid_sheet_is_refused_before_any_job_runs(project_root: Path, tmp_path: Path):
    workdir = _workdir(project_root, tmp_path)
    units = workdir / "config" / "units.tsv"
    units.write_text(units.read_text().replace("\tphenotype\t", "\tphenotyp\t", 1))
    refused = _snakemake(project_root, workdir)
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


@pytest.mark.parametrize("shared_id", [False, True], ids=["ids-by-assay", "one-id-two-assays"])
def test_each_units_metrics_come_from_its_own_assays_rule(
    project_root: Path, tmp_path: Path, shared_id: bool
):
    # The sequencing units are told apart by unit id alone when no id is used for another assay in
    # another lot (the short regex that keeps DAG building linear), by lot and unit otherwise.
    workdir = _workdir(project_root, tmp_path)
    if shared_id:
        units = workdir / "config" / "units.tsv"
        text = units.read_text().replace("DEMO-001\tSTER\t", "DEMO-001\tS1\t")
        units.write_text(text.replace("DEMO-002\tPHENO\t", "DEMO-002\tS1\t"))
    plan = _snakemake(project_root, workdir, "--dry-run", "--printshellcmds")
    assert plan.returncode == 0, plan.stderr[-3000:]
    producers = _planned_producers(plan.stdout)
    sequenced_id, flow_id = ("S1", "S1") if shared_id else ("STER", "PHENO")
    assert producers[f"results/DEMO-001/units/{sequenced_id}/metrics.json"] == "call_reads_unit"
    assert producers[f"results/DEMO-002/units/{flow_id}/metrics.json"] == "measure_unit"
    assert producers["results/DEMO-001/units/PHENO/metrics.json"] == "measure_unit"
    assert producers["results/DEMO-002/units/STER/metrics.json"] == "call_reads_unit"
    assert producers["results/DEMO-001/units/STER-NC1/metrics.json"] == "call_reads_unit"


def test_the_workflow_is_lint_clean_and_snakefmt_formatted(project_root: Path, demo_run: Path):
    lint = _snakemake(project_root, demo_run, "--lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [str(BIN / "snakefmt"), "--check", str(project_root / "workflow")], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr

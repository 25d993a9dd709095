"""The release decision: every fail-safe path, the status rule over all outcome combinations,
determinism, and release.json against its published schema."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rapidrelease.cli import main
from rapidrelease.config.run import Lot, RunConfig, Unit, load_run_config
from rapidrelease.config.specs import Spec, specs_from_data
from rapidrelease.config.vocabulary import FAIL, INCONCLUSIVE, NOT_RELEASABLE, PASS, RELEASE_CANDIDATE
from rapidrelease.errors import ConfigError, RecordError, SpecError
from rapidrelease.outputs import dumps_json
from rapidrelease.records import (
    Metric,
    UnitRecord,
    read_release,
    read_unit_record,
    record_json,
    seal_of,
    to_json,
    write_record,
)
from rapidrelease.release.decision import evaluate_lot_files, lot_status

from support.configs import (
    PANEL,
    UNITS,
    good_metrics,
    metric,
    unit_result,
    with_inputs_on_disk,
    write_project,
    write_sequenced_project,
)
from support.releases import assert_valid_release, judged, minimal_audit


@pytest.fixture
def run(project: Path) -> RunConfig:
    return load_run_config(write_project(project))


def results_of(decision: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["result"] for a in decision["attributes"]}


def reason_of(decision: dict[str, Any], name: str) -> str:
    return next(a["reason"] for a in decision["attributes"] if a["name"] == name)


# ------------------------------------------------------------------------------ PASS and FAIL


def test_all_attributes_pass_gives_a_release_candidate(run: RunConfig) -> None:
    decision = judged(run, "DEMO-001", [unit_result()])
    assert decision["status"] == RELEASE_CANDIDATE
    assert decision["status_reason"] == (
        "All 3 attributes of specification SPEC-A pass; QA review and sign-off decide release."
    )
    assert results_of(decision) == {"viability": PASS, "car_of_cd3": PASS, "cd4_cd8_ratio": PASS}
    viability, car, ratio = decision["attributes"]
    assert (viability["value"], viability["reason"], viability["criterion"]) == (88, "88 % ≥ 70 %.", "≥ 70 %")
    assert (car["value"], car["value_text"], car["reason"]) == (31.3, "31.3", "31.3 % ≥ 15.0 %.")
    assert (ratio["value"], ratio["reason"]) == (1.9, "1.9 is within 0.5–4.0.")
    assert decision["counts"] == {"PASS": 3, "FAIL": 0, "INCONCLUSIVE": 0}


def test_evidence_carries_populations_counts_ci_and_source_hash(run: RunConfig) -> None:
    viability = judged(run, "DEMO-001", [unit_result()])["attributes"][0]
    assert viability["unit_id"] == "PHENO"
    assert viability["evidence"] == {
        "unit_id": "PHENO",
        "metric_status": "ok",
        "measured_value": 88.1,
        "numerator": {"population": "Cells/Singlets/Live", "count": 8810},
        "denominator": {"population": "Cells/Singlets", "count": 10000},
        "ci95": [87.6, 88.6],
        "inputs": [{"path": "data/DEMO-001.fcs", "sha256": "a" * 64, "size_bytes": 1300000}],
        "figures": [],  # a percentage needs none: its populations are the numbers behind it
    }
    assert (viability["comparison"], viability["limit"], viability["decimals"]) == (">=", 70, 0)


def test_lot_block_has_the_deadline_from_collection(run: RunConfig) -> None:
    lot = judged(run, "DEMO-001", [unit_result()])["lot"]
    assert lot == {
        "lot_id": "DEMO-001",
        "product": "CAR-T (test)",
        "spec": "SPEC-A",
        "spec_description": "Test specification",
        "site": "SITE-A",
        "collected_at": "2026-11-24T08:30:00+01:00",
        "deadline_hours": 24.0,
        "deadline": "2026-11-25T08:30:00+01:00",
        "extra": {},
    }


def test_one_failure_makes_the_lot_not_releasable(run: RunConfig) -> None:
    metrics = good_metrics() | {"viability_pct": metric(65.2)}
    decision = judged(run, "DEMO-001", [unit_result(metrics=metrics)])
    assert decision["status"] == NOT_RELEASABLE
    assert decision["status_reason"] == "1 of 3 attributes fails (viability)."
    assert reason_of(decision, "viability") == "65 % < 70 %, so ≥ 70 % is not met."


def test_failure_with_missing_evidence_is_not_releasable_and_says_so(run: RunConfig) -> None:
    metrics = good_metrics() | {"viability_pct": metric(65.2), "cd4_cd8_ratio": metric(4.6, unit="")}
    del metrics["car_pct_cd3"]
    decision = judged(run, "DEMO-001", [unit_result(metrics=metrics)])
    assert decision["status"] == NOT_RELEASABLE
    assert decision["status_reason"] == (
        "2 of 3 attributes fail (viability, cd4_cd8_ratio) and 1 is inconclusive (car_of_cd3)."
    )


def test_rounding_to_the_limit_passes_as_usp_7_20_requires(run: RunConfig) -> None:
    # 69.5 % reported against "≥ 70" (0 decimals written) rounds to 70 and passes.
    metrics = good_metrics() | {"viability_pct": metric(69.5)}
    viability = judged(run, "DEMO-001", [unit_result(metrics=metrics)])["attributes"][0]
    assert (viability["result"], viability["value"], viability["evidence"]["measured_value"]) == (
        PASS,
        70,
        69.5,
    )


# ------------------------------------------------------------------------ INCONCLUSIVE, by cause


def test_lot_without_a_unit_of_the_assay(project: Path) -> None:
    run = load_run_config(write_project(project, units=[UNITS[1]]))
    decision = judged(run, "DEMO-001", [])
    assert decision["status"] == INCONCLUSIVE
    assert {a["reason"] for a in decision["attributes"]} == {
        "Lot DEMO-001 has no phenotype unit with role test in the unit sheet."
    }
    assert decision["units"] == []
    assert decision["status_reason"] == (
        "3 of 3 attributes are inconclusive (viability, car_of_cd3, cd4_cd8_ratio); "
        "a release candidate needs every attribute to pass."
    )


def test_a_control_unit_does_not_stand_in_for_the_test_unit(project: Path) -> None:
    units = [f"DEMO-001\tFMO\tphenotype\tfmo\tfmo.fcs\t\t{PANEL}\t"]
    run = load_run_config(write_project(project, units=units))
    decision = judged(run, "DEMO-001", [unit_result(unit_id="FMO", role="fmo")])
    assert decision["status"] == INCONCLUSIVE
    assert (
        reason_of(decision, "viability")
        == "Lot DEMO-001 has no phenotype unit with role test in the unit sheet."
    )


def test_unit_that_could_not_be_measured(run: RunConfig) -> None:
    record = unit_result(status="error", error="DEMO-001_phenotype.fcs: file not found.", metrics={})
    decision = judged(run, "DEMO-001", [record])
    assert decision["status"] == INCONCLUSIVE
    assert (
        reason_of(decision, "viability")
        == "Unit PHENO could not be measured (DEMO-001_phenotype.fcs: file not found)."
    )
    assert decision["units"][0]["status"] == "error"
    assert decision["units"][0]["error"] == "DEMO-001_phenotype.fcs: file not found."


@pytest.mark.parametrize("error", [None, "", " . "])
def test_unit_error_without_a_message_is_still_an_error(run: RunConfig, error: Any) -> None:
    decision = judged(run, "DEMO-001", [unit_result(status="error", error=error)])
    assert decision["status"] == INCONCLUSIVE
    assert (
        reason_of(decision, "viability")
        == "Unit PHENO could not be measured (the measuring step gave no message)."
    )
    assert decision["units"][0]["error"] == "the measuring step gave no message."
    assert_valid_release(decision | {"audit": minimal_audit()})


def test_unit_with_no_record_given(run: RunConfig) -> None:
    decision = judged(run, "DEMO-001", [])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == (
        "Unit PHENO could not be measured (no record of unit PHENO was given)."
    )
    assert decision["units"][0]["error"] == "no record of unit PHENO was given."


def test_results_of_another_lot_are_not_evidence(run: RunConfig) -> None:
    decision = judged(run, "DEMO-001", [unit_result(lot_id="DEMO-002")])
    assert decision["status"] == INCONCLUSIVE
    assert decision["units"][0]["status"] == "error"


def test_two_results_for_one_unit_are_not_trusted(run: RunConfig) -> None:
    decision = judged(run, "DEMO-001", [unit_result(), unit_result()])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == (
        "Unit PHENO could not be measured (2 records of unit PHENO were given)."
    )


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            unit_result(assay="potency"),
            "Unit PHENO could not be measured (the record of unit PHENO is for assay 'potency', "
            "but the unit sheet says 'phenotype').",
        ),
        (
            unit_result(role="fmo"),
            "Unit PHENO could not be measured (the record of unit PHENO is for role 'fmo', "
            "but the unit sheet says 'test').",
        ),
    ],
)
def test_records_for_another_assay_or_role(run: RunConfig, record: UnitRecord, reason: str) -> None:
    decision = judged(run, "DEMO-001", [record])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == reason


def test_metric_absent(run: RunConfig) -> None:
    metrics = good_metrics()
    del metrics["viability_pct"]
    decision = judged(run, "DEMO-001", [unit_result(metrics=metrics)])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == "No metric viability_pct is reported by unit PHENO."


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            metric(None, status="insufficient_events", reason="only 12 events in Cells/Singlets."),
            "Unit PHENO reports viability_pct as 'insufficient_events', not ok "
            "(only 12 events in Cells/Singlets).",
        ),
        (
            metric(88.1, status="not_computable"),
            "Unit PHENO reports viability_pct as 'not_computable', not ok.",
        ),
        (metric(None), "Unit PHENO reports viability_pct has no value."),
        (metric(float("nan")), "Unit PHENO reports viability_pct as nan, which is not a finite number."),
        (metric(float("inf")), "Unit PHENO reports viability_pct as inf, which is not a finite number."),
        (metric("88.1"), "Unit PHENO reports viability_pct as '88.1', which is not a number."),
        (metric(True), "Unit PHENO reports viability_pct as True, which is not a number."),
        (
            metric(0.881, unit="fraction"),
            "Unit PHENO reports viability_pct in 'fraction', but the specification's limits are in '%'.",
        ),
    ],
)
def test_metric_that_cannot_be_judged(run: RunConfig, entry: Any, reason: str) -> None:
    metrics = good_metrics() | {"viability_pct": entry}
    decision = judged(run, "DEMO-001", [unit_result(metrics=metrics)])
    assert decision["status"] == INCONCLUSIVE
    viability = decision["attributes"][0]
    assert (viability["result"], viability["reason"], viability["value"]) == (INCONCLUSIVE, reason, None)


def two_test_units(project: Path, specs: str | None = None) -> RunConfig:
    units = [UNITS[0], f"DEMO-001\tPHENO2\tphenotype\ttest\tdata/b.fcs\t\t{PANEL}\t"]
    kwargs = {"specs": specs} if specs is not None else {}
    return load_run_config(write_project(project, units=units, **kwargs))


def test_two_test_units_reporting_the_metric_without_a_pin(project: Path) -> None:
    run = two_test_units(project)
    decision = judged(run, "DEMO-001", [unit_result(), unit_result(unit_id="PHENO2")])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == (
        "Units PHENO and PHENO2 each report viability_pct; name a unit_id in the specification to choose one."
    )


def test_two_test_units_one_failed_is_not_resolved_by_guessing(project: Path) -> None:
    run = two_test_units(project)
    failed = unit_result(unit_id="PHENO2", status="error", error="b.fcs: truncated DATA segment.", metrics={})
    decision = judged(run, "DEMO-001", [unit_result(), failed])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == (
        "Unit PHENO2, one of 2 units that may report viability_pct, could not be measured "
        "(b.fcs: truncated DATA segment); name a unit_id in the specification to choose one."
    )


def test_two_test_units_where_only_one_reports_the_metric(project: Path) -> None:
    run = two_test_units(project)
    decision = judged(run, "DEMO-001", [unit_result(), unit_result(unit_id="PHENO2", metrics={})])
    assert decision["status"] == RELEASE_CANDIDATE
    assert decision["attributes"][0]["unit_id"] == "PHENO"


PINNED = """\
specs:
  SPEC-A:
    attributes:
      viability:
        {assay: phenotype, metric: viability_pct, comparison: ">=", limit: 70, unit: "%", unit_id: PHENO2}
"""


def test_unit_id_pin_chooses_among_several_units(project: Path) -> None:
    run = two_test_units(project, specs=PINNED)
    other = good_metrics() | {"viability_pct": metric(40.0)}
    decision = judged(run, "DEMO-001", [unit_result(metrics=other), unit_result(unit_id="PHENO2")])
    assert decision["status"] == RELEASE_CANDIDATE
    assert decision["attributes"][0]["evidence"]["unit_id"] == "PHENO2"


def test_pinned_unit_missing_from_the_sheet(project: Path) -> None:
    run = load_run_config(write_project(project, specs=PINNED))
    decision = judged(run, "DEMO-001", [unit_result()])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == (
        "Unit PHENO2, named by the specification, is not in the unit sheet for lot DEMO-001."
    )
    assert decision["attributes"][0]["unit_id"] == "PHENO2"


def test_pinned_unit_of_another_role(project: Path) -> None:
    units = [UNITS[0], f"DEMO-001\tPHENO2\tphenotype\tfmo\tdata/b.fcs\t\t{PANEL}\t"]
    run = load_run_config(write_project(project, units=units, specs=PINNED))
    decision = judged(run, "DEMO-001", [unit_result(), unit_result(unit_id="PHENO2", role="fmo")])
    assert decision["status"] == INCONCLUSIVE
    assert reason_of(decision, "viability") == (
        "Unit PHENO2 is a phenotype unit with role fmo in the unit sheet, "
        "but the specification needs a phenotype unit with role test."
    )


def test_categorical_equals_criterion(project: Path) -> None:
    specs = """\
specs:
  SPEC-A:
    attributes:
      sterility: {assay: sterility_reads, metric: contaminant_call, comparison: equals, limit: NOT_DETECTED}
"""
    units = ["DEMO-001\tSTER\tsterility_reads\ttest\tr1.fq.gz\tr2.fq.gz\t\t"]
    run = load_run_config(write_sequenced_project(project, specs=specs, units=units))

    def call(value: Any) -> dict[str, Any]:
        entry = Metric(value, None, "category")
        record = unit_result(unit_id="STER", assay="sterility_reads", metrics={"contaminant_call": entry})
        return judged(run, "DEMO-001", [record])

    passed, failed, numeric = call("NOT_DETECTED"), call("DETECTED"), call(0)
    assert (passed["status"], passed["attributes"][0]["value"]) == (RELEASE_CANDIDATE, "NOT_DETECTED")
    assert (failed["status"], failed["attributes"][0]["reason"]) == (
        NOT_RELEASABLE,
        "Result DETECTED, but NOT_DETECTED is required.",
    )
    assert numeric["status"] == INCONCLUSIVE
    for document in (passed, failed, numeric):
        assert_valid_release(document | {"audit": minimal_audit()})


VALIDITY_SPECS = """\
specs:
  SPEC-A:
    attributes:
      viability: {assay: phenotype, metric: viability_pct, comparison: ">=", limit: 70, unit: "%"}
      sterility: {assay: sterility_reads, metric: contaminant_call, comparison: equals, limit: NOT_DETECTED}
      sterility_lod:
        {assay: sterility_reads, metric: lod, comparison: "<=", limit: 10, unit: CFU/mL, validity: true,
         covers: spike}
"""


@pytest.mark.parametrize("call", ["NOT_DETECTED", "DETECTED", "invalid_run"])
@pytest.mark.parametrize("lod", [4.2, 10.4, 25.0, None])
def test_an_assay_whose_validity_criterion_is_not_met_is_never_pass_or_fail(
    project: Path, call: str, lod: float | None
) -> None:
    units = [UNITS[0], "DEMO-001\tSTER\tsterility_reads\ttest\tr1.fq.gz\tr2.fq.gz\t\t"]
    run = load_run_config(write_sequenced_project(project, specs=VALIDITY_SPECS, units=units))
    entry = Metric(call, None, "category", detail="Klebsiella pneumoniae: 6 reads, 30 RPM")
    if call == "invalid_run":
        entry = Metric(None, None, "category", "inconclusive", "negative control NC1 is contaminated")
    metrics: dict[str, Metric] = {"contaminant_call": entry}
    if lod is not None:
        metrics["lod"] = metric(lod, unit="CFU/mL")
    records = [unit_result(), unit_result(unit_id="STER", assay="sterility_reads", metrics=metrics)]
    decision = judged(run, "DEMO-001", records)
    viability, sterility, lod_attribute = decision["attributes"]
    valid_run = lod is not None and lod <= 10.4
    assert viability["result"] == PASS
    assert lod_attribute["validity"] is True and sterility["validity"] is False
    assert lod_attribute["result"] == (PASS if valid_run else INCONCLUSIVE)
    if call == "DETECTED":
        # a run less sensitive than claimed can miss a contaminant, not invent one: the detection
        # stays a FAIL whatever the LOD (USP <71>, FDA OOS guidance; issue 17 item 2)
        assert sterility["result"] == FAIL
        assert sterility["reason"] == (
            "Result DETECTED, but NOT_DETECTED is required (Klebsiella pneumoniae: 6 reads, 30 RPM)."
        )
        assert decision["status"] == NOT_RELEASABLE
    elif not valid_run or call == "invalid_run":
        assert sterility["result"] == INCONCLUSIVE
        assert decision["status"] == INCONCLUSIVE
    else:
        assert decision["status"] == RELEASE_CANDIDATE
    if lod == 25.0 and call == "NOT_DETECTED":
        assert sterility["reason"] == (
            "The sterility_reads assay is not valid (sterility_lod is FAIL: 25 CFU/mL > 10 CFU/mL, "
            f"so ≤ 10 CFU/mL is not met), so its result {call} cannot be relied on."
        )
        assert lod_attribute["reason"] == (
            "25 CFU/mL > 10 CFU/mL, so ≤ 10 CFU/mL is not met; this criterion judges the run, "
            "so the sterility_reads assay is not valid and must be repeated."
        )
        assert lod_attribute["evidence"]["measured_value"] == 25.0
    assert_valid_release(decision | {"audit": minimal_audit()})


def test_specification_without_attributes_is_never_a_release_candidate(run: RunConfig) -> None:
    empty = dataclasses.replace(run, specs={"SPEC-A": Spec("SPEC-A", "nothing", ())})
    decision = judged(empty, "DEMO-001", [unit_result()])
    assert decision["status"] == INCONCLUSIVE
    assert decision["status_reason"] == "Specification SPEC-A has no attributes, so nothing supports release."


def test_lot_not_in_the_lot_sheet_is_an_error(run: RunConfig) -> None:
    with pytest.raises(ConfigError, match=r"^config/lots.tsv: has no lot 'DEMO-404'\.$"):
        judged(run, "DEMO-404", [])


def test_lot_whose_specification_is_not_loaded_is_an_error(run: RunConfig) -> None:
    broken = dataclasses.replace(run, specs={})
    with pytest.raises(SpecError, match=r"^config/specs.yaml: has no specification 'SPEC-A'\.$"):
        judged(broken, "DEMO-001", [])


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([], INCONCLUSIVE),
        ([("a", PASS)], RELEASE_CANDIDATE),
        ([("a", PASS), ("b", INCONCLUSIVE)], INCONCLUSIVE),
        ([("a", FAIL), ("b", INCONCLUSIVE)], NOT_RELEASABLE),
        ([("a", "SOMETHING_ELSE")], INCONCLUSIVE),  # an unknown result is never taken as a pass
    ],
)
def test_lot_status_rule(outcomes: list[tuple[str, str]], status: str) -> None:
    assert lot_status("S", outcomes)[0] == status


def test_a_unit_no_attribute_reads_still_blocks_a_release_candidate_when_it_failed(project: Path) -> None:
    # the lab sequenced the lot, the reads could not be read: passing flow attributes are not enough
    units = [*UNITS, "DEMO-001\tSTER\tsterility_reads\ttest\tdata/DEMO-001_R1.fastq.gz\t\t\t"]
    run = load_run_config(write_sequenced_project(project, units=units))
    broken = unit_result(
        unit_id="STER",
        assay="sterility_reads",
        metrics={},
        status="error",
        error="data/DEMO-001_R1.fastq.gz: the gzip data end early (truncated file)",
    )
    decision = judged(run, "DEMO-001", [unit_result(), broken])
    assert results_of(decision) == {"viability": PASS, "car_of_cd3": PASS, "cd4_cd8_ratio": PASS}
    assert decision["status"] == INCONCLUSIVE
    assert decision["status_reason"] == (
        "All 3 attributes pass, but unit STER could not be measured; "
        "a release candidate needs all of the lot's evidence."
    )
    sterile = unit_result(unit_id="STER", assay="sterility_reads", metrics={})
    assert judged(run, "DEMO-001", [unit_result(), sterile])["status"] == RELEASE_CANDIDATE
    assert lot_status("S", [("a", FAIL)], failed_units=["STER"])[0] == NOT_RELEASABLE


# ------------------------------------------------------------------------- files and release.json


def write_metrics(run: RunConfig, project: Path, record: UnitRecord) -> Path:
    """Write ``record`` sealed where the workflow writes its unit's record, its inputs beside it."""
    path = run.record_path(run.unit(record.lot_id, record.unit_id))
    write_record(path, with_inputs_on_disk(project, record))
    return path


def _tampered(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"value": 88.1', '"value": 98.1', 1), encoding="utf-8")


def _resealed_inconsistent(path: Path) -> None:
    # an edit that also recomputes the seal: the counts behind the value still give it away
    data = json.loads(path.read_text(encoding="utf-8"))
    data["metrics"]["viability_pct"]["value"] = 98.1
    data["seal"]["sha256"] = seal_of(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _other_unit(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["unit_id"] = "PHENO2"
    data["seal"]["sha256"] = seal_of(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (Path.unlink, "{path}: file not found"),
        (
            lambda p: p.write_text("{not json", encoding="utf-8"),
            "{path}: is not a complete JSON record "
            "(line 1: Expecting property name enclosed in double quotes)",
        ),
        (lambda p: p.write_text("[1, 2]", encoding="utf-8"), "{path}: is not a JSON object"),
        (
            lambda p: p.write_text('{"status": "ok"}', encoding="utf-8"),
            "{path}: is not a unit record of version 1 (record_type is null); "
            "it was written by another version or by hand",
        ),
        (lambda p: p.write_bytes(b"\xff\xfe{}"), "{path}: is not UTF-8 text"),
        (
            _tampered,
            "{path}: its content does not match its seal: it was changed after it was written",
        ),
        (
            _resealed_inconsistent,
            "{path}: metric viability_pct is 98.1, but 8810 of 10000 events make 88.1, "
            "so the record is not consistent",
        ),
        (
            _other_unit,
            "{path}: is the record of unit 'PHENO2', not 'PHENO'; it was copied from another result folder",
        ),
    ],
)
def test_unusable_record_is_an_error_of_its_unit(run: RunConfig, project: Path, damage, problem) -> None:
    path = write_metrics(run, project, unit_result())
    damage(path)
    out = project / "release.json"
    decision = to_json(evaluate_lot_files(run, "DEMO-001", out))
    assert isinstance(decision, dict)
    assert decision["status"] == INCONCLUSIVE
    message = problem.format(path=path)
    assert reason_of(decision, "viability") == f"Unit PHENO could not be measured ({message})."
    assert decision["units"][0]["error"] == f"{message}."
    assert_valid_release(json.loads(out.read_text(encoding="utf-8")))


def test_release_json_is_written_sealed_and_matches_its_schema(run: RunConfig, project: Path) -> None:
    write_metrics(run, project, unit_result())
    out = project / "results" / "DEMO-001" / "release.json"
    returned = evaluate_lot_files(run, "DEMO-001", out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == record_json(returned)
    assert read_release(out) == returned
    assert written["status"] == RELEASE_CANDIDATE
    assert written["seal"]["sha256"] == seal_of(written)
    assert_valid_release(written)


def test_a_release_json_edited_to_a_release_candidate_is_refused(run: RunConfig, project: Path) -> None:
    write_metrics(run, project, unit_result(metrics=good_metrics() | {"viability_pct": metric(65.2)}))
    out = project / "release.json"
    assert evaluate_lot_files(run, "DEMO-001", out).status == NOT_RELEASABLE
    data = json.loads(out.read_text(encoding="utf-8"))
    data["status"] = RELEASE_CANDIDATE
    out.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RecordError, match="does not match its seal"):
        read_release(out)
    data["seal"]["sha256"] = seal_of(data)
    out.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RecordError, match="it is a RELEASE_CANDIDATE although not every attribute passes"):
        read_release(out)


def test_audit_block_names_software_files_and_times(run: RunConfig, project: Path) -> None:
    path = write_metrics(run, project, unit_result())
    audit = to_json(evaluate_lot_files(run, "DEMO-001", project / "release.json").audit)
    assert isinstance(audit, dict)
    assert list(audit["packages"]) == [
        "snakemake",
        "flowkit",
        "flowio",
        "flowutils",
        "numpy",
        "polars",
        "plotly",
        "pysam",
    ]
    assert audit["packages"]["numpy"].startswith("2.")
    roles = [(f["role"], f["path"]) for f in audit["files"]]
    assert roles == [
        ("config", "config/config.yaml"),
        ("specs", "config/specs.yaml"),
        ("lots", "config/lots.tsv"),
        ("units", "config/units.tsv"),
        ("panel", PANEL),
        ("metrics", str(path)),
    ]
    lots_sha = next(f["sha256"] for f in audit["files"] if f["role"] == "lots")
    assert lots_sha == hashlib.sha256(Path("config/lots.tsv").read_bytes()).hexdigest()
    assert (
        next(f["sha256"] for f in audit["files"] if f["role"] == "panel") is None
    )  # not written in this test
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", audit["started_at"])
    assert audit["started_at"] <= audit["finished_at"]
    assert audit["settings"]["deadline_hours"] == 24


def test_decision_is_byte_identical_across_reruns(run: RunConfig, project: Path) -> None:
    write_metrics(run, project, unit_result())
    first = evaluate_lot_files(run, "DEMO-001", project / "a.json")
    second = evaluate_lot_files(run, "DEMO-001", project / "b.json")
    reloaded = evaluate_lot_files(load_run_config(Path("config/config.yaml")), "DEMO-001", project / "c.json")
    texts = []
    for document in (first, second, reloaded):
        decision = to_json(document)
        assert isinstance(decision, dict)
        decision.pop("audit")
        texts.append(dumps_json(decision))
    assert texts[0] == texts[1] == texts[2]


def test_cli_evaluate_writes_release_json(run: RunConfig, project: Path, capsys) -> None:
    write_metrics(run, project, unit_result())
    out = project / "release.json"
    assert main(["evaluate", "--config", "config/config.yaml", "--lot", "DEMO-001", "--out", str(out)]) == 0
    assert read_release(out).status == RELEASE_CANDIDATE
    assert main(["evaluate", "--config", "config/config.yaml", "--lot", "NOPE", "--out", str(out)]) == 1
    assert capsys.readouterr().err == "rapidrelease: config/lots.tsv: has no lot 'NOPE'.\n"


# ---------------------------------------------------------------- every combination of outcomes

# For a three-attribute specification whose attributes come from three different assays (so each
# attribute's evidence can be broken on its own), every combination of PASS, FAIL and each cause
# of INCONCLUSIVE. The rule under test: RELEASE_CANDIDATE exactly when all three are PASS,
# NOT_RELEASABLE exactly when at least one is FAIL.

ASSAYS = ("phenotype", "potency", "microbial_flow")
CAUSES = (
    "no_unit",
    "no_result",
    "file_missing",
    "file_malformed",
    "unit_error",
    "metric_absent",
    "metric_not_ok",
    "value_null",
    "value_nan",
    "value_inf",
    "value_text",
    "ambiguous",
)
OUTCOMES = (PASS, FAIL, *CAUSES)
COMBINATION_SPECS = {
    "specs": {
        "THREE": {
            "attributes": {
                f"attr_{assay}": {
                    "assay": assay,
                    "metric": f"m_{assay}",
                    "comparison": ">=",
                    "limit": 50,
                    "unit": "%",
                }
                for assay in ASSAYS
            }
        }
    }
}


def _entry_for(outcome: str, assay: str) -> dict[str, Any]:
    metrics = {
        PASS: {f"m_{assay}": metric(80.0)},
        FAIL: {f"m_{assay}": metric(20.0)},
        "metric_absent": {"other": metric(80.0)},
        "metric_not_ok": {f"m_{assay}": metric(None, status="insufficient_events", reason="12 events.")},
        "value_null": {f"m_{assay}": metric(None)},
        "value_nan": {f"m_{assay}": metric(float("nan"))},
        "value_inf": {f"m_{assay}": metric(float("-inf"))},
        "value_text": {f"m_{assay}": metric("80")},
        "ambiguous": {f"m_{assay}": metric(80.0)},
    }
    return metrics.get(outcome, {f"m_{assay}": metric(80.0)})


@pytest.fixture(scope="module")
def combination_files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[Path]]:
    """Record files per (assay, outcome), written once and reused by every combination."""
    root = tmp_path_factory.mktemp("combinations")
    files: dict[tuple[str, str], list[Path]] = {}
    for assay, outcome in itertools.product(ASSAYS, OUTCOMES):
        unit_ids = [f"U_{assay}", f"U2_{assay}"] if outcome == "ambiguous" else [f"U_{assay}"]
        paths = []
        for unit_id in unit_ids:
            path = root / outcome / "DEMO-001" / "flow" / unit_id / "metrics.json"
            record = unit_result(unit_id=unit_id, assay=assay, metrics=_entry_for(outcome, assay))
            if outcome == "unit_error":
                record = dataclasses.replace(
                    record, status="error", error=f"{unit_id}.fcs: not an FCS file.", metrics={}
                )
            if outcome == "file_malformed":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text('{"lot_id": "DEMO-001", ', encoding="utf-8")
            elif outcome in ("value_nan", "value_inf"):
                # json.dumps writes NaN and -Infinity tokens, as a careless writer would
                data = record_json(dataclasses.replace(record, metrics={}))
                data["metrics"] = {
                    f"m_{assay}": {"value": float((outcome == "value_nan" and "nan") or "-inf")}
                }
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(data), encoding="utf-8")
            elif outcome != "file_missing":
                write_record(path, record)
            paths.append(path)
        files[(assay, outcome)] = [] if outcome == "no_result" else paths
    return files


def _read(paths: list[Path]) -> tuple[list[UnitRecord], dict[str, str]]:
    """The records the paths hold, and for each unreadable one (by its folder's unit id) why."""
    records, unreadable = [], {}
    for path in paths:
        try:
            records.append(read_unit_record(path))
        except RecordError as exc:
            unreadable[path.parent.name] = str(exc)
    return records, unreadable


def _combination_run(outcomes: tuple[str, ...]) -> RunConfig:
    specs, _, problems = specs_from_data(COMBINATION_SPECS, Path("specs.yaml"))
    assert problems == []
    units: list[Unit] = []
    for assay, outcome in zip(ASSAYS, outcomes, strict=True):
        if outcome == "no_unit":
            continue
        for unit_id in [f"U_{assay}", f"U2_{assay}"] if outcome == "ambiguous" else [f"U_{assay}"]:
            units.append(
                Unit("DEMO-001", unit_id, assay, "test", Path(f"{unit_id}.fcs"), template=Path(PANEL))
            )
    lot = Lot("DEMO-001", "CAR-T", "THREE", datetime.fromisoformat("2026-11-24T08:30:00+01:00"), "SITE-A")
    settings = {
        "lots": "lots.tsv",
        "units": "units.tsv",
        "specs": "specs.yaml",
        "results": "r",
        "deadline_hours": 24,
    }
    return RunConfig(Path("config.yaml"), Path("r"), 24.0, {"DEMO-001": lot}, tuple(units), specs, settings)


def test_release_candidate_exactly_when_every_attribute_passes(combination_files) -> None:
    seen = {RELEASE_CANDIDATE: 0, NOT_RELEASABLE: 0, INCONCLUSIVE: 0}
    for outcomes in itertools.product(OUTCOMES, repeat=len(ASSAYS)):
        run = _combination_run(outcomes)
        paths = [
            p
            for assay, outcome in zip(ASSAYS, outcomes, strict=True)
            for p in combination_files[(assay, outcome)]
        ]
        decision = judged(run, "DEMO-001", *_read(paths))
        expected = [o if o in (PASS, FAIL) else INCONCLUSIVE for o in outcomes]
        assert [a["result"] for a in decision["attributes"]] == expected, outcomes
        if all(o == PASS for o in outcomes):
            assert decision["status"] == RELEASE_CANDIDATE, outcomes
        elif FAIL in outcomes:
            assert decision["status"] == NOT_RELEASABLE, outcomes
        else:
            assert decision["status"] == INCONCLUSIVE, outcomes
        for attribute, outcome, assay in zip(decision["attributes"], outcomes, ASSAYS, strict=True):
            # Every inconclusive reason points at what to fix: the unit, the file or the lot.
            if outcome not in (PASS, FAIL):
                assert f"U_{assay}" in attribute["reason"] or "DEMO-001" in attribute["reason"], attribute[
                    "reason"
                ]
                assert attribute["value"] is None
        seen[decision["status"]] += 1
    total = len(OUTCOMES) ** len(ASSAYS)
    assert seen[RELEASE_CANDIDATE] == 1
    assert seen[NOT_RELEASABLE] == total - (len(OUTCOMES) - 1) ** len(ASSAYS)
    assert seen[INCONCLUSIVE] == total - 1 - seen[NOT_RELEASABLE]


COVERAGE_SPECS = """\
specs:
  SPEC-A:
    attributes:
      sterility_lod:
        {{assay: sterility_reads, metric: lod, comparison: "<=", limit: 10, unit: CFU/mL, validity: true,
         covers: {covers}}}
"""


def _lods(spike: float, checklist: dict[str, float | None]) -> dict[str, Metric]:
    """The limits of detection a sterility test's record holds: the spike's, each checklist
    organism's and the worst of them (None: the reference holds nothing of it)."""
    known = [v for v in checklist.values() if v is not None]
    worst = max(known) if len(known) == len(checklist) else None
    worst_reason = None if worst is not None else "the reference holds no k-mers of one organism"
    metrics = {
        "lod": Metric(spike, "CFU/mL", "concentration", detail="for Staphylococcus aureus"),
        "lod_checklist_max": Metric(worst, "CFU/mL", "concentration", "ok" if worst else "inconclusive",
                                    worst_reason),
    }  # fmt: skip
    for organism, value in checklist.items():
        status, reason = ("ok", None) if value is not None else ("inconclusive", "not in the reference")
        metrics[f"lod[{organism}]"] = Metric(value, "CFU/mL", "concentration", status, reason)
    return metrics


@pytest.mark.parametrize(
    ("covers", "result", "value", "covered"),
    [
        ("spike", PASS, 6, "the organism spiked into the positive control"),  # 0 decimals, as the limit
        # the demo's panel: the LOD it measured holds for S. aureus, not for C. sporogenes
        ("checklist", INCONCLUSIVE, None, "every organism of the sterility_reads checklist"),
        ("[Staphylococcus aureus, Candida albicans]", PASS, 8, "Staphylococcus aureus, Candida albicans"),
        ("[Staphylococcus aureus, Clostridium sporogenes]", INCONCLUSIVE, None, None),
        ("[Aspergillus brasiliensis]", INCONCLUSIVE, None, None),
        ("[Serratia marcescens]", INCONCLUSIVE, None, None),
    ],
)
def test_a_limit_of_detection_passes_only_for_every_organism_it_covers(
    project: Path, covers: str, result: str, value: float | None, covered: str | None
) -> None:
    units = ["DEMO-001\tSTER\tsterility_reads\ttest\tr1.fq.gz\tr2.fq.gz\t\t"]
    specs = COVERAGE_SPECS.format(covers=covers)
    run = load_run_config(write_sequenced_project(project, specs=specs, units=units))
    checklist = {"Staphylococcus aureus": 5.6, "Candida albicans": 8.2, "Clostridium sporogenes": 10656.0,
                 "Aspergillus brasiliensis": None}  # fmt: skip
    record = unit_result(unit_id="STER", assay="sterility_reads", metrics=_lods(5.6, checklist))
    (lod,) = judged(run, "DEMO-001", [record])["attributes"]
    assert (lod["result"], lod["value"]) == (result, value), lod["reason"]
    if covered is not None:
        assert lod["covers"] == covered
    if "Clostridium" in covers:
        assert lod["reason"].startswith("10656 CFU/mL > 10 CFU/mL, so ≤ 10 CFU/mL is not met")
    if "Serratia" in covers:
        assert lod["reason"] == (
            "Unit STER reports no lod[Serratia marcescens], which the attribute covers "
            "(a checklist organism of the assay?)."
        )
    if covers == "checklist":
        assert "the reference holds no k-mers of one organism" in lod["reason"]


def test_a_limit_of_detection_must_say_what_it_covers(project: Path) -> None:
    units = ["DEMO-001\tSTER\tsterility_reads\ttest\tr1.fq.gz\tr2.fq.gz\t\t"]
    specs = COVERAGE_SPECS.format(covers="spike").replace(",\n         covers: spike", "")
    with pytest.raises(ConfigError, match="key 'covers': a limit of detection must say what it is claimed"):
        load_run_config(write_sequenced_project(project, specs=specs, units=units))
    wrong = (
        "specs:\n  SPEC-A:\n    attributes:\n      viability: {assay: phenotype, metric: viability_pct, "
        'comparison: ">=", limit: 70, unit: "%", covers: spike}\n'
    )
    with pytest.raises(ConfigError, match="key 'covers': is only used for the metric lod of a sequencing"):
        load_run_config(write_project(project, specs=wrong))

"""The dose (viable CAR+ T cells, per kg) judged as a specification attribute, and the starting
material's acceptance as a lot's second attribute set."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.config.run import load_run_config
from rapidrelease.config.vocabulary import (
    ACCEPTED,
    FAIL,
    INCONCLUSIVE,
    NOT_ACCEPTED,
    NOT_RELEASABLE,
    PASS,
    RELEASE_CANDIDATE,
)
from rapidrelease.records import Metric, Population, UnitRecord
from rapidrelease.release.decision import evaluate_lot_files
from rapidrelease.release.dose import dose_interval, dose_metrics
from rapidrelease.stats import wilson_interval

from support.configs import (
    CONFIG,
    LOTS,
    PANEL,
    metric,
    sheet,
    unit_result,
    with_inputs_on_disk,
    write_project,
    write_records,
)
from support.releases import assert_valid_release, judged

LOTS_HEADER = "lot_id\tproduct\tspec\tcollected_at\tsite\ttnc_viable\tweight_kg\tstarting_spec"
UNITS_HEADER = "lot_id\tunit_id\tassay\trole\tpath\ttemplate"
SPECS = """\
specs:
  RELEASE:
    attributes:
      car: {assay: phenotype, metric: car_pct_cd3, comparison: ">=", limit: 15, unit: "%"}
      dose:
        {assay: dose, metric: viable_car_t_cells, comparison: between, lower: 1.0e8, upper: 2.0e9,
         unit: cells}
      dose_per_kg:
        assay: dose
        metric: viable_car_t_cells_per_kg
        comparison: between
        lower: 1.0e6
        upper: 2.0e7
        unit: cells/kg
  APHERESIS:
    attributes:
      viability:
        {assay: phenotype, role: starting_material, metric: viability_pct, comparison: ">=", limit: 80,
         unit: "%"}
      t_cells:
        {assay: phenotype, role: starting_material, metric: cd3_pct_live, comparison: ">=", limit: 20,
         unit: "%"}
"""


def _run(project: Path, tnc: str = "2.5e9", weight: str = "70", starting: str = "", config: str = CONFIG):
    lots = [LOTS[0].replace("SPEC-A", "RELEASE") + f"\t{tnc}\t{weight}\t{starting}"]
    units = [f"DEMO-001\tPHENO\tphenotype\ttest\tdata/a.fcs\t{PANEL}"]
    if starting:
        units.append(f"DEMO-001\tAPH\tphenotype\tstarting_material\tdata/aph.fcs\t{PANEL}")
    path = write_project(
        project,
        lots_text=sheet(LOTS_HEADER, lots),
        units_text=sheet(UNITS_HEADER, units),
        specs=SPECS,
        config=config,
    )
    return load_run_config(path)


def _phenotype(cd3: float = 90.0, car: float = 40.0, **more) -> UnitRecord:
    return unit_result(metrics={"cd3_pct_live": metric(cd3), "car_pct_cd3": metric(car), **more})


def _apheresis(viability: float = 95.0, cd3: float = 45.0) -> UnitRecord:
    return unit_result(
        unit_id="APH",
        role="starting_material",
        metrics={"viability_pct": metric(viability), "cd3_pct_live": metric(cd3)},
    )


def _attribute(decision: dict, name: str) -> dict:
    return next(a for a in decision["attributes"] if a["name"] == name)


def test_the_dose_is_the_viable_cells_times_the_cd3_and_car_fractions(project: Path):
    decision = judged(_run(project), "DEMO-001", [_phenotype()])
    dose, per_kg = _attribute(decision, "dose"), _attribute(decision, "dose_per_kg")
    # 2.5e9 × 90 % × 40 % = 9.0e8 viable CAR+ T cells; ÷ 70 kg
    assert (dose["result"], dose["value"]) == (PASS, 900_000_000)
    assert dose["evidence"]["unit_id"] == "dose(PHENO)"
    assert dose["reason"].endswith(
        "(2.5e+09 viable nucleated cells × 90.00 % cd3_pct_live × 40.00 % car_pct_cd3)."
    )
    # 12,857,143 cells/kg reported to 10⁵, the last digit of the limits 1.0×10⁶ (USP GN 7.20)
    assert (per_kg["result"], per_kg["value"], per_kg["value_text"]) == (PASS, 12_900_000, "1.29×10⁷")
    # the interval carries the count's 7.5 % CV and the fractions' binomial sampling (9,000 and 4,000
    # of 10,000 events) on the log scale: ±1.96 × √(ln 1.005625 + 1/9000 − 1/10⁴ + 1/4000 − 1/10⁴)
    spread = math.exp(1.959964 * math.sqrt(math.log(1 + 0.075**2) + 1 / 9000 - 1e-4 + 1 / 4000 - 1e-4))
    assert spread == pytest.approx(1.1605, abs=1e-4)
    assert dose["evidence"]["ci95"] == pytest.approx([9e8 / spread, 9e8 * spread])
    assert decision["status"] == RELEASE_CANDIDATE


def test_a_dose_outside_the_labelled_range_fails(project: Path):
    decision = judged(_run(project, tnc="1.0e10"), "DEMO-001", [_phenotype()])
    assert _attribute(decision, "dose")["result"] == FAIL  # 3.6e9 > 2.0e9
    assert decision["status"] == NOT_RELEASABLE


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no tnc", "the lot sheet gives no tnc_viable (viable nucleated cells) for lot DEMO-001"),
        ("unit error", "unit PHENO could not be measured (DEMO-001.fcs: file not found)"),
        (
            "fraction not ok",
            "the dose needs car_pct_cd3 of unit PHENO as a percentage (car_pct_cd3 rests on 40 events",
        ),
        ("fraction absent", "unit PHENO reports no car_pct_cd3, which the dose multiplies"),
    ],
)
def test_the_dose_is_inconclusive_without_every_input(project: Path, case: str, reason: str):
    run = _run(project, tnc="" if case == "no tnc" else "2.5e9")
    result = _phenotype()
    if case == "unit error":
        result = unit_result(status="error", error="DEMO-001.fcs: file not found.", metrics={})
    elif case == "fraction not ok":
        not_ok = metric(None, status="insufficient_events", reason="car_pct_cd3 rests on 40 events.")
        result = dataclasses.replace(result, metrics={**result.metrics, "car_pct_cd3": not_ok})
    elif case == "fraction absent":
        result = dataclasses.replace(result, metrics={"cd3_pct_live": result.metrics["cd3_pct_live"]})
    decision = judged(run, "DEMO-001", [result])
    for name in ("dose", "dose_per_kg"):
        attribute = _attribute(decision, name)
        assert attribute["result"] == INCONCLUSIVE
        assert reason in attribute["reason"], attribute["reason"]
    assert decision["status"] != RELEASE_CANDIDATE


def test_a_dose_per_kg_needs_the_weight(project: Path):
    decision = judged(_run(project, weight=""), "DEMO-001", [_phenotype()])
    assert _attribute(decision, "dose")["result"] == PASS
    per_kg = _attribute(decision, "dose_per_kg")
    assert (
        per_kg["result"] == INCONCLUSIVE
        and "the lot sheet gives no weight_kg for lot DEMO-001" in per_kg["reason"]
    )


def test_accepted_starting_material_leaves_the_release_decision_alone(project: Path):
    decision = judged(_run(project, starting="APHERESIS"), "DEMO-001", [_phenotype(), _apheresis()])
    starting = decision["starting_material"]
    assert (starting["spec"], starting["status"]) == ("APHERESIS", ACCEPTED)
    assert [a["result"] for a in starting["attributes"]] == [PASS, PASS]
    assert decision["status"] == RELEASE_CANDIDATE
    assert _run(project).lots["DEMO-001"].starting_spec is None
    assert judged(_run(project), "DEMO-001", [_phenotype()])["starting_material"] is None


def test_starting_material_that_fails_acceptance_makes_the_lot_not_releasable(project: Path):
    decision = judged(
        _run(project, starting="APHERESIS"), "DEMO-001", [_phenotype(), _apheresis(viability=72.0)]
    )
    assert decision["starting_material"]["status"] == NOT_ACCEPTED
    assert decision["status"] == NOT_RELEASABLE
    assert decision["status_reason"] == (
        "The lot is not releasable: its starting material is not accepted against APHERESIS "
        "(viability of the starting material fails)."
    )
    # the release attributes themselves all pass and say so
    assert [a["result"] for a in decision["attributes"]] == [PASS, PASS, PASS]


def test_starting_material_without_its_measurement_keeps_the_lot_from_release(project: Path):
    decision = judged(_run(project, starting="APHERESIS"), "DEMO-001", [_phenotype()])
    assert decision["starting_material"]["status"] == INCONCLUSIVE
    assert decision["status"] == INCONCLUSIVE
    assert decision["status_reason"] == (
        "All 3 attributes pass, but unit APH could not be measured; a release candidate needs all of "
        "the lot's evidence; also, its starting material is inconclusive against APHERESIS "
        "(viability, t_cells of the starting material are inconclusive)."
    )


def test_a_release_json_with_a_dose_and_starting_material_matches_its_schema(project: Path):
    run = _run(project, starting="APHERESIS")
    write_records(project, run, [with_inputs_on_disk(project, r) for r in (_phenotype(), _apheresis(72.0))])
    evaluate_lot_files(run, "DEMO-001", project / "release.json")
    written = json.loads((project / "release.json").read_text(encoding="utf-8"))
    assert written["starting_material"]["status"] == NOT_ACCEPTED
    assert_valid_release(written)


def test_the_viable_count_cv_is_configured_and_said_beside_the_interval(project: Path):
    run = _run(project, config=CONFIG + "dose: {viable_count_cv_pct: 10}\n")
    assert run.dose.viable_count_cv_pct == 10.0
    per_kg = _attribute(judged(run, "DEMO-001", [_phenotype()]), "dose_per_kg")
    spread = math.exp(1.959964 * math.sqrt(math.log(1.01) + 1 / 9000 - 1e-4 + 1 / 4000 - 1e-4))
    assert per_kg["evidence"]["ci95"] == pytest.approx([9e8 / 70 / spread, 9e8 / 70 * spread])
    record = dose_metrics(
        run.lots["DEMO-001"], run.dose.fractions, "PHENO", _phenotype().metrics, None, 10.0
    )["viable_car_t_cells"]
    assert record.evidence["viable_count_cv_pct"] == 10.0
    assert record.evidence["ci95_covers"] == (
        "95 % interval covering the viable count's 10 % CV and the binomial sampling of each fraction "
        "(delta method on the log scale); not the gating or the weight"
    )


def _coverage(interval_of, trials: int = 4_000, cv: float = 0.075) -> float:
    """Share of simulated lots whose interval holds the true dose: 2.5e9 viable cells counted with
    ``cv``, 90 % CD3+ of 10,000 live events and 40 % CAR+ of the CD3+ events."""
    rng = np.random.default_rng(17)
    true_dose = 2.5e9 * 0.9 * 0.4
    held = 0
    for _ in range(trials):
        counted = 2.5e9 * rng.lognormal(-0.5 * math.log1p(cv**2), math.sqrt(math.log1p(cv**2)))
        cd3 = rng.binomial(10_000, 0.9)
        car = rng.binomial(cd3, 0.4)
        low, high = interval_of(counted, [_fraction(cd3, 10_000), _fraction(car, cd3)])
        held += low <= true_dose <= high
    return held / trials


def _fraction(x: int, n: int) -> tuple[float, float, float, Metric]:
    lo, hi = wilson_interval(x, n)
    entry = Metric(100 * x / n, "%", "percent", numerator=Population("a", x), denominator=Population("b", n))
    return 100 * x / n, 100 * lo, 100 * hi, entry


def test_the_issues_30_to_72_percent_coverage_becomes_95():
    # issue 17 item 7: the count taken as exact and the fractions' bounds multiplied
    def before(cells, fractions):
        return cells * math.prod(lo / 100 for _, lo, _, _ in fractions), cells * math.prod(
            hi / 100 for _, _, hi, _ in fractions
        )

    assert 0.25 < _coverage(before) < 0.75
    after = _coverage(lambda cells, fractions: dose_interval(cells, fractions, 7.5))
    assert after == pytest.approx(0.95, abs=0.015)

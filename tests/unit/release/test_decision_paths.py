"""Every path into the release decision, enumerated: RELEASE_CANDIDATE only when all evidence is good.

test_decision.py enumerates the causes of an INCONCLUSIVE attribute for three independent ``>=``
attributes. This module enumerates, together, what that one leaves out:

- a ``>=`` attribute (viability) passed, failed, absent, not ok, NaN; a ``between`` attribute
  (CD4/CD8) inside, at its lower limit, below and above; the phenotype unit not measured at all;
- the dose (viable CAR+ T cells per kg) with both lot-sheet inputs, without ``tnc_viable``,
  without ``weight_kg``, and without a measured phenotype unit;
- sterility by sequencing, whose limit of detection is an assay-validity criterion: every call
  (NOT_DETECTED, DETECTED, absent) with every LOD (valid, not met, absent), and the unit not measured;
- the starting material: not judged, ACCEPTED, NOT_ACCEPTED, INCONCLUSIVE;
- a unit no attribute reads (a potency tube) that was measured, or could not be.

The expectation is an oracle written independently of the implementation: each attribute's result
from its own evidence, then the lot. 21 × 3 × 10 × 4 × 2 = 5,040 lots; 4 of them are release
candidates, each with every attribute PASS, valid controls and accepted (or unjudged) starting material.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from rapidrelease.config.run import Lot, RunConfig, Unit
from rapidrelease.config.specs import specs_from_data
from rapidrelease.config.vocabulary import FAIL, INCONCLUSIVE, NOT_RELEASABLE, PASS, RELEASE_CANDIDATE
from rapidrelease.records import Metric, UnitRecord

from support.configs import metric, unit_result
from support.releases import judged

SPECS = yaml.safe_load("""
specs:
  RELEASE:
    attributes:
      viability: {assay: phenotype, metric: viability_pct, comparison: ">=", limit: 70, unit: "%"}
      cd4_cd8_ratio:
        {assay: phenotype, metric: cd4_cd8_ratio, comparison: between, lower: 0.5, upper: 4.0, unit: ""}
      dose_per_kg:
        {assay: dose, metric: viable_car_t_cells_per_kg, comparison: between, lower: 1.0e+6, upper: 1.0e+7,
         unit: cells/kg}
      sterility: {assay: sterility_reads, metric: contaminant_call, comparison: equals, limit: NOT_DETECTED}
      sterility_lod:
        {assay: sterility_reads, metric: lod, comparison: "<=", limit: 10, unit: CFU/mL, validity: true,
         covers: spike}
  APHERESIS:
    attributes:
      starting_viability:
        {assay: phenotype, role: starting_material, metric: viability_pct, comparison: ">=", limit: 80,
         unit: "%"}
""")
ATTRIBUTES = ("viability", "cd4_cd8_ratio", "dose_per_kg", "sterility", "sterility_lod")

VIABILITY = {"pass": metric(88.1), "fail": metric(61.0), "absent": None,
             "not_ok": metric(None, status="insufficient_events", reason="only 12 events in Live."),
             "nan": metric(float("nan"))}  # fmt: skip
RATIO = {"inside": 1.9, "at_lower_limit": 0.5, "below": 0.3, "above": 4.6}
PHENOTYPE = [*itertools.product(VIABILITY, RATIO), "unit_error"]
DOSE_INPUTS = ("both", "no_tnc_viable", "no_weight_kg")
CALLS, LODS = ("NOT_DETECTED", "DETECTED", "absent"), ("valid", "not_met", "absent")
STERILITY = [*itertools.product(CALLS, LODS), "unit_error"]
STARTING = ("not_judged", "ACCEPTED", "NOT_ACCEPTED", "INCONCLUSIVE")
OTHER_UNIT = ("measured", "unit_error")


def _error(unit_id: str, assay: str, role: str = "test") -> UnitRecord:
    return unit_result(unit_id=unit_id, assay=assay, role=role, metrics={}, status="error",
                       error=f"data/{unit_id}.fcs: is truncated inside the DATA segment.")  # fmt: skip


def _phenotype(case: Any) -> UnitRecord:
    if case == "unit_error":
        return _error("PHENO", "phenotype")
    viability, ratio = case
    # CD3+ 95 % of viable and CAR+ 30 % of CD3+: 1.2e9 × 0.95 × 0.30 / 78 kg = 4.4e6 cells/kg, inside
    metrics = {"cd3_pct_live": metric(95.0), "car_pct_cd3": metric(30.0),
               "cd4_cd8_ratio": metric(RATIO[ratio], unit="")}  # fmt: skip
    if VIABILITY[viability] is not None:
        metrics["viability_pct"] = VIABILITY[viability]
    return unit_result(unit_id="PHENO", metrics=metrics)


def _sterility(case: Any) -> UnitRecord:
    if case == "unit_error":
        return _error("STER", "sterility_reads")
    call, lod = case
    metrics: dict[str, Metric] = {}
    if call != "absent":
        metrics["contaminant_call"] = Metric(call, None, "category")
    if lod != "absent":
        metrics["lod"] = metric({"valid": 4.2, "not_met": 25.0}[lod], unit="CFU/mL")
    return unit_result(unit_id="STER", assay="sterility_reads", metrics=metrics)


def _run(dose: str, starting: str) -> RunConfig:
    specs, _, problems = specs_from_data(SPECS, Path("specs.yaml"))
    assert problems == []
    lot = Lot(
        "DEMO-001",
        "CAR-T",
        "RELEASE",
        datetime.fromisoformat("2026-11-24T08:30:00+01:00"),
        "SITE-A",
        tnc_viable=None if dose == "no_tnc_viable" else 1.2e9,
        weight_kg=None if dose == "no_weight_kg" else 78.0,
        starting_spec=None if starting == "not_judged" else "APHERESIS",
    )
    units = [
        Unit("DEMO-001", "PHENO", "phenotype", "test", Path("data/PHENO.fcs")),
        Unit("DEMO-001", "STER", "sterility_reads", "test", Path("data/STER_R1.fastq.gz")),
        Unit("DEMO-001", "POT", "potency", "stimulated", Path("data/POT.fcs")),
    ]
    if starting != "not_judged":
        units.append(Unit("DEMO-001", "APH", "phenotype", "starting_material", Path("data/APH.fcs")))
    settings = {"lots": "lots.tsv", "units": "units.tsv", "specs": "specs.yaml", "results": "r",
                "deadline_hours": 24}  # fmt: skip
    return RunConfig(Path("config.yaml"), Path("r"), 24.0, {"DEMO-001": lot}, tuple(units), specs, settings)


def _records(phenotype: Any, sterility: Any, starting: str, other: str) -> list[UnitRecord]:
    records = [_phenotype(phenotype), _sterility(sterility)]
    records.append(
        _error("POT", "potency", "stimulated")
        if other == "unit_error"
        else unit_result(unit_id="POT", assay="potency", role="stimulated", metrics={})
    )
    if starting == "INCONCLUSIVE":
        records.append(_error("APH", "phenotype", "starting_material"))
    elif starting in ("ACCEPTED", "NOT_ACCEPTED"):
        viability = 90.0 if starting == "ACCEPTED" else 72.0
        records.append(
            unit_result(unit_id="APH", role="starting_material", metrics={"viability_pct": metric(viability)})
        )
    return records


def _expected_attributes(phenotype: Any, dose: str, sterility: Any) -> dict[str, str]:
    """The oracle: each attribute's result from its own evidence, as a QC reviewer would judge it."""
    if phenotype == "unit_error":
        viability = ratio = dose_result = INCONCLUSIVE
    else:
        viability = {"pass": PASS, "fail": FAIL}.get(phenotype[0], INCONCLUSIVE)
        ratio = PASS if phenotype[1] in ("inside", "at_lower_limit") else FAIL
        dose_result = PASS if dose == "both" else INCONCLUSIVE
    if sterility == "unit_error":
        call = lod = INCONCLUSIVE
    else:
        # the LOD judges the run: not met or not reported, a clean call cannot be relied on; a
        # detection stays a FAIL (an insensitive run can miss a contaminant, not invent one)
        valid = sterility[1] == "valid"
        lod = PASS if valid else INCONCLUSIVE
        call = {"NOT_DETECTED": PASS, "DETECTED": FAIL}.get(sterility[0], INCONCLUSIVE)
        if not valid and call == PASS:
            call = INCONCLUSIVE
    return dict(zip(ATTRIBUTES, (viability, ratio, dose_result, call, lod), strict=True))


def test_release_candidate_only_when_every_attribute_passes_on_valid_evidence() -> None:
    runs = {(dose, starting): _run(dose, starting) for dose in DOSE_INPUTS for starting in STARTING}
    seen = {RELEASE_CANDIDATE: [], NOT_RELEASABLE: 0, INCONCLUSIVE: 0}
    for phenotype, dose, sterility, starting, other in itertools.product(
        PHENOTYPE, DOSE_INPUTS, STERILITY, STARTING, OTHER_UNIT
    ):
        path = (phenotype, dose, sterility, starting, other)
        decision = judged(runs[dose, starting], "DEMO-001", _records(phenotype, sterility, starting, other))
        results = {a["name"]: a["result"] for a in decision["attributes"]}
        expected = _expected_attributes(phenotype, dose, sterility)
        assert results == expected, path
        for attribute in decision["attributes"]:
            if attribute["result"] == INCONCLUSIVE:
                assert attribute["value"] is None and attribute["reason"], path
        starting_status = (decision["starting_material"] or {}).get("status", "not_judged")
        assert starting_status == starting, path
        if FAIL in expected.values() or starting == "NOT_ACCEPTED":
            status = NOT_RELEASABLE
        elif (
            set(expected.values()) == {PASS}
            and starting in ("not_judged", "ACCEPTED")
            and other == "measured"
        ):
            status = RELEASE_CANDIDATE
        else:
            status = INCONCLUSIVE
        assert decision["status"] == status, (path, decision["status_reason"])
        if status == RELEASE_CANDIDATE:
            seen[status].append(path)
        else:
            seen[status] += 1
    # the only release candidates: everything passes, the run is valid, no evidence is broken
    assert sorted(seen[RELEASE_CANDIDATE]) == sorted(
        [(("pass", ratio), "both", ("NOT_DETECTED", "valid"), starting, "measured")
         for ratio in ("inside", "at_lower_limit") for starting in ("not_judged", "ACCEPTED")]
    )  # fmt: skip
    total = len(PHENOTYPE) * len(DOSE_INPUTS) * len(STERILITY) * len(STARTING) * len(OTHER_UNIT)
    assert total == 5_040
    assert seen[NOT_RELEASABLE] + seen[INCONCLUSIVE] == total - 4

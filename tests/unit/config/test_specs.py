"""Specifications: loading specs.yaml, USP 7.20 rounding, criteria for people, and judging a value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rapidrelease.config.specs import (
    Attribute,
    judge,
    load_specs,
    reportable_text,
    round_half_up,
    value_problem,
    written_decimals,
)
from rapidrelease.config.vocabulary import FAIL, PASS
from rapidrelease.errors import ConfigError


def write_specs(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "specs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def one_attribute(tmp_path: Path, body: str) -> Attribute:
    """The single attribute ``a`` of spec ``S`` whose YAML mapping body is ``body``."""
    specs = load_specs(write_specs(tmp_path, f"specs:\n  S:\n    attributes:\n      a: {{{body}}}\n"))
    return specs["S"].attributes[0]


def spec_problems(tmp_path: Path, text: str) -> list[str]:
    path = write_specs(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_specs(path)
    lines = str(caught.value).splitlines()
    return [line.replace(f"{path}", "specs.yaml") for line in (lines[1:] if len(lines) > 1 else lines)]


# ----------------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (69.5, 0, "70"),  # the digit right of the last kept place is 5: round up
        (69.49, 0, "69"),  # only that one digit counts (4), not the 9 behind it
        (69.95, 1, "70.0"),  # as printed by the measuring step, although the double is 69.9499999...
        (0.45, 1, "0.5"),
        (2.675, 2, "2.68"),  # Python's round() gives 2.67 (binary); USP half-up on the reported figure
        (-1.5, 0, "-2"),  # a tie goes away from zero
        (88, 1, "88.0"),
        (1e20, 2, "100000000000000000000.00"),  # large values keep every integer digit
        (Decimal("3.14159"), 3, "3.142"),
    ],
)
def test_round_half_up_follows_usp_general_notices_7_20(value, decimals: int, expected: str) -> None:
    assert str(round_half_up(value, decimals)) == expected


@pytest.mark.parametrize(
    ("written", "decimals"),
    # a limit written with an exponent is rounded to its mantissa's last digit: 1.0×10⁶ to 10⁵
    [("70", 0), ("4.0", 1), ("0.50", 2), ("1E+2", -2), ("1.0E+6", -5), ("0.005", 3)],
)
def test_written_decimals(written: str, decimals: int) -> None:
    assert written_decimals(Decimal(written)) == decimals


# --------------------------------------------------------------------------------- loading


def test_decimals_default_to_those_written_in_the_limit(tmp_path: Path) -> None:
    text = """\
specs:
  S:
    description: demo
    attributes:
      whole: {assay: phenotype, metric: m1, comparison: ">=", limit: 70, unit: "%"}
      tenth: {assay: phenotype, metric: m2, comparison: "<", limit: 4.0}
      trailing_zero: {assay: phenotype, metric: m3, comparison: ">", limit: 4.50}
      range: {assay: phenotype, metric: m4, comparison: between, lower: 0.5, upper: 4.00}
      explicit: {assay: phenotype, metric: m5, comparison: ">=", limit: 70, decimals: 2}
      category: {assay: sterility_reads, metric: call, comparison: equals, limit: NOT_DETECTED}
"""
    spec = load_specs(write_specs(tmp_path, text))["S"]
    assert spec.description == "demo"
    assert [(a.name, a.decimals) for a in spec.attributes] == [
        ("whole", 0),
        ("tenth", 1),
        ("trailing_zero", 2),
        ("range", 2),
        ("explicit", 2),
        ("category", None),
    ]
    assert spec.attributes[2].limit == Decimal("4.50")
    assert spec.attributes[0].role == "test" and spec.attributes[0].unit_id is None


def test_attribute_order_is_the_order_written(tmp_path: Path) -> None:
    names = ["zeta", "alpha", "mid"]
    body = "".join(f"      {n}: {{assay: potency, metric: {n}, comparison: '>=', limit: 1}}\n" for n in names)
    spec = load_specs(write_specs(tmp_path, "specs:\n  S:\n    attributes:\n" + body))["S"]
    assert [a.name for a in spec.attributes] == names


def test_role_and_unit_id_pin_the_supplying_unit(tmp_path: Path) -> None:
    attribute = one_attribute(
        tmp_path,
        "assay: potency, metric: ifng_pct_car, comparison: '>=', limit: 5, role: stimulated, unit_id: STIM",
    )
    assert (attribute.role, attribute.unit_id) == ("stimulated", "STIM")


@pytest.mark.parametrize(
    ("body", "criterion"),
    [
        ("comparison: '>=', limit: 70, unit: '%'", "≥ 70 %"),
        ("comparison: '>', limit: 0.5, unit: ''", "> 0.5"),
        ("comparison: '<=', limit: 5, unit: copies/cell", "≤ 5 copies/cell"),
        ("comparison: '<', limit: 1.00, unit: '%'", "< 1.00 %"),
        ("comparison: between, lower: 0.5, upper: 4.0, unit: ''", "0.5–4.0"),
        ("comparison: between, lower: 1, upper: 5, unit: '%'", "1–5 %"),
        ("comparison: equals, limit: NOT_DETECTED", "NOT_DETECTED"),
        ("comparison: equals, limit: 0, unit: CFU/mL", "= 0 CFU/mL"),
    ],
)
def test_criterion_text_for_people(tmp_path: Path, body: str, criterion: str) -> None:
    assert one_attribute(tmp_path, f"assay: phenotype, metric: m, {body}").criterion_text() == criterion


def test_criterion_record_is_the_machine_form(tmp_path: Path) -> None:
    ratio = one_attribute(
        tmp_path, "assay: phenotype, metric: m, comparison: between, lower: 0.5, upper: 4.0"
    )
    assert ratio.criterion_record() == {
        "comparison": "between",
        "limit": None,
        "lower": 0.5,
        "upper": 4.0,
        "decimals": 1,
    }
    category = one_attribute(
        tmp_path, "assay: mycoplasma_reads, metric: call, comparison: equals, limit: NOT_DETECTED"
    )
    assert category.criterion_record()["limit"] == "NOT_DETECTED"


def test_every_spec_problem_names_spec_attribute_and_key(tmp_path: Path) -> None:
    text = """\
specs:
  S:
    attributes:
      a: {assay: phenotyp, metric: viability_pct, comparison: ">=", limit: 70}
      b: {assay: phenotype, metric: m, comparison: "=>", limit: 70}
      c: {assay: phenotype, metric: m, comparison: between, lower: 5, limit: 3}
      d: {assay: phenotype, metric: m, comparison: between, lower: 5, upper: 4}
      e: {assay: phenotype, metric: m, comparison: ">=", limit: 70.5, decimals: 0}
      f: {assay: phenotype, metric: m, comparison: ">=", limit: "70 %"}
      g: {assay: phenotype, comparison: ">=", limit: 1, limt: 2}
      h: {assay: phenotype, metric: m, comparison: equals, limit: DETECTED, decimals: 1}
      i: {assay: phenotype, metric: m, comparison: "<=", lower: 1, upper: 2}
      j: {assay: phenotype, metric: m, comparison: ">=", limit: .nan}
      k: {assay: phenotype, metric: 2nd, comparison: ">=", limit: 1, unit_id: "../x"}
"""
    assert spec_problems(tmp_path, text) == [
        "specs.yaml, spec 'S', attribute 'a', key 'assay': 'phenotyp' is not one of phenotype, potency, "
        "microbial_flow, sterility_reads, mycoplasma_reads, dose.",
        "specs.yaml, spec 'S', attribute 'b', key 'comparison': '=>' is not one of >=, >, <=, <, between, "
        "equals.",
        "specs.yaml, spec 'S', attribute 'c', key 'limit': is not used with comparison 'between'.",
        "specs.yaml, spec 'S', attribute 'c', key 'upper': a value is required for comparison 'between'.",
        "specs.yaml, spec 'S', attribute 'd', key 'upper': 4 is below lower (5).",
        "specs.yaml, spec 'S', attribute 'e', key 'decimals': 0 is fewer than the 1 decimal written in the "
        "limit; the rounded value could not be compared with it.",
        "specs.yaml, spec 'S', attribute 'f', key 'limit': '70 %' is not a number.",
        "specs.yaml, spec 'S', attribute 'g', key 'limt': is not a known key (allowed: assay, metric, "
        "comparison, limit, lower, upper, decimals, unit, description, role, unit_id, covers, validity, "
        "share).",
        "specs.yaml, spec 'S', attribute 'g', key 'metric': a value is required.",
        "specs.yaml, spec 'S', attribute 'h', key 'decimals': is not used with a category limit.",
        "specs.yaml, spec 'S', attribute 'i', key 'lower': is not used with comparison '<='.",
        "specs.yaml, spec 'S', attribute 'i', key 'upper': is not used with comparison '<='.",
        "specs.yaml, spec 'S', attribute 'i', key 'limit': a value is required for comparison '<='.",
        "specs.yaml, spec 'S', attribute 'j', key 'limit': nan is not a finite number.",
        "specs.yaml, spec 'S', attribute 'k', key 'metric': '2nd' is not allowed; use a letter followed by "
        "up to 63 letters, digits or '_'.",
        "specs.yaml, spec 'S', attribute 'k', key 'unit_id': '../x' is not allowed; use 1 to 64 letters, "
        "digits, '.', '_' or '-', starting with a letter or digit, without '..'.",
    ]


def test_spec_structure_problems(tmp_path: Path) -> None:
    text = """\
specs:
  "bad name":
    attributes: {}
  EMPTY:
    description: nothing to evaluate
    attributes: {}
  NOATTR:
    description: forgot them
extra: 1
"""
    assert spec_problems(tmp_path, text) == [
        "specs.yaml, spec 'bad name': the name is not allowed; use 1 to 64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit, without '..'.",
        "specs.yaml, spec 'bad name', key 'attributes': must list at least one entry.",
        "specs.yaml, spec 'EMPTY', key 'attributes': must list at least one entry.",
        "specs.yaml, spec 'NOATTR', key 'attributes': a value is required.",
        "specs.yaml, key 'extra': is not a known key (allowed: specs).",
    ]


def test_attribute_written_twice_is_refused(tmp_path: Path) -> None:
    text = """\
specs:
  S:
    attributes:
      viability: {assay: phenotype, metric: viability_pct, comparison: ">=", limit: 70}
      viability: {assay: phenotype, metric: viability_pct, comparison: ">=", limit: 50}
"""
    assert spec_problems(tmp_path, text) == [
        "specs.yaml line 5: not valid YAML (key 'viability' is written twice)."
    ]


def test_specs_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert spec_problems(tmp_path, "- a\n- b\n") == [
        "specs.yaml: ['a', 'b'] is not a mapping of keys to values."
    ]


def test_missing_specs_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"specs.yaml: file not found\.$"):
        load_specs(tmp_path / "specs.yaml")


# ----------------------------------------------------------------------------------- judging


def attribute(comparison: str, **limits) -> Attribute:
    decimals = limits.pop("decimals", 0)
    unit = limits.pop("unit", "%")
    exact = {k: (v if isinstance(v, str) else Decimal(str(v))) for k, v in limits.items()}
    return Attribute(
        name="a", assay="phenotype", metric="m", comparison=comparison, decimals=decimals, unit=unit, **exact
    )


@pytest.mark.parametrize(
    ("attr", "value", "result", "reason"),
    [
        (attribute(">=", limit=70), 88.1, PASS, "88 % ≥ 70 %."),
        (attribute(">=", limit=70), 70.0, PASS, "70 % ≥ 70 %."),
        (attribute(">=", limit=70), 69.5, PASS, "70 % ≥ 70 %."),  # rounds up to the limit (USP 7.20)
        (attribute(">=", limit=70), 69.49, FAIL, "69 % < 70 %, so ≥ 70 % is not met."),
        (attribute(">=", limit=70, decimals=1), 69.96, PASS, "70.0 % ≥ 70 %."),
        (attribute(">=", limit=70, decimals=1), 69.94, FAIL, "69.9 % < 70 %, so ≥ 70 % is not met."),
        (attribute(">", limit=0.5, unit="", decimals=1), 0.5, FAIL, "0.5 ≤ 0.5, so > 0.5 is not met."),
        (attribute(">", limit=0.5, unit="", decimals=1), 0.55, PASS, "0.6 > 0.5."),
        (attribute("<=", limit=5, unit=""), 5.4, PASS, "5 ≤ 5."),
        (attribute("<=", limit=5, unit=""), 5.5, FAIL, "6 > 5, so ≤ 5 is not met."),
        (attribute("<", limit=1, unit="%"), 0.49, PASS, "0 % < 1 %."),
        (attribute("<", limit=1, unit="%"), 0.5, FAIL, "1 % ≥ 1 %, so < 1 % is not met."),
        (
            attribute("between", lower=0.5, upper=4.0, unit="", decimals=1),
            0.45,
            PASS,
            "0.5 is within 0.5–4.0.",
        ),
        (
            attribute("between", lower=0.5, upper=4.0, unit="", decimals=1),
            4.04,
            PASS,
            "4.0 is within 0.5–4.0.",
        ),
        (
            attribute("between", lower=0.5, upper=4.0, unit="", decimals=1),
            4.05,
            FAIL,
            "4.1 is outside 0.5–4.0.",
        ),
        (
            attribute("between", lower=0.5, upper=4.0, unit="", decimals=1),
            0.44,
            FAIL,
            "0.4 is outside 0.5–4.0.",
        ),
        (attribute("equals", limit=0, unit="CFU/mL"), 0, PASS, "0 CFU/mL = 0 CFU/mL."),
        (attribute("equals", limit=0, unit="CFU/mL"), 1, FAIL, "1 CFU/mL ≠ 0 CFU/mL."),
        (
            attribute("equals", limit="NOT_DETECTED", decimals=None),
            "NOT_DETECTED",
            PASS,
            "Result NOT_DETECTED, as required.",
        ),
        (
            attribute("equals", limit="NOT_DETECTED", decimals=None),
            "DETECTED",
            FAIL,
            "Result DETECTED, but NOT_DETECTED is required.",
        ),
    ],
)
def test_judge_compares_the_rounded_value(attr: Attribute, value, result: str, reason: str) -> None:
    judgement = judge(attr, value)
    assert (judgement.result, judgement.reason) == (result, reason)


def test_reportable_value_keeps_the_decimals_in_its_text() -> None:
    judgement = judge(attribute(">=", limit=15, decimals=2), 31.2)
    assert (judgement.value, judgement.value_text) == (31.2, "31.20")
    whole = judge(attribute(">=", limit=70), 88.4)
    assert (whole.value, whole.value_text) == (88, "88")
    assert isinstance(whole.value, int)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "has no value"),
        (float("nan"), "as nan, which is not a finite number"),
        (float("inf"), "as inf, which is not a finite number"),
        ("88.1", "as '88.1', which is not a number"),
        (True, "as True, which is not a number"),
        ([88.1], "as [88.1], which is not a number"),
    ],
)
def test_values_that_cannot_be_judged_against_a_number(value, problem: str) -> None:
    assert value_problem(attribute(">=", limit=70), value) == problem


def test_values_that_cannot_be_judged_against_a_category() -> None:
    category = attribute("equals", limit="NOT_DETECTED", decimals=None)
    assert value_problem(category, 0) == "as 0, but the criterion needs a category such as NOT_DETECTED"
    assert value_problem(category, "") == "as '', but the criterion needs a category such as NOT_DETECTED"
    assert value_problem(category, "NOT_DETECTED") is None
    assert value_problem(attribute(">=", limit=70), 12) is None


def test_names_yaml_reads_as_numbers_or_booleans_are_refused(tmp_path: Path) -> None:
    text = """\
specs:
  1:
    attributes:
      yes: {assay: phenotype, metric: m, comparison: ">=", limit: 1}
"""
    assert spec_problems(tmp_path, text) == [
        "specs.yaml, spec '1': the name must be text; put it in quotes.",
        "specs.yaml, spec '1', attribute 'True': the name must be text; put it in quotes.",
    ]


def test_empty_specs_file(tmp_path: Path) -> None:
    assert spec_problems(tmp_path, "") == ["specs.yaml: is empty; it must be a mapping of keys to values."]


def test_a_dose_is_judged_and_written_in_the_notation_of_its_limits() -> None:
    """1.0×10⁶–1.0×10⁷ cells/kg: the dose is rounded to 10⁵ (USP GN 7.20) and written as 5.5×10⁶."""
    dose = Attribute(
        name="dose_per_kg",
        assay="dose",
        metric="viable_car_t_cells_per_kg",
        comparison="between",
        limit=None,
        lower=Decimal("1.0E+6"),
        upper=Decimal("1.0E+7"),
        decimals=written_decimals(Decimal("1.0E+6")),
        unit="cells/kg",
    )
    judged = judge(dose, 5_511_214.0)
    assert (judged.result, judged.value, judged.value_text) == ("PASS", 5_500_000, "5.5×10⁶")
    assert judged.reason == "5.5×10⁶ cells/kg is within 1.0×10⁶–1.0×10⁷ cells/kg."
    assert reportable_text(4_754_005.0, dose.decimals) == "4.8×10⁶"


def test_share_marks_an_attribute_and_its_bounds_must_be_ordered(tmp_path: Path) -> None:
    text = """\
specs:
  S:
    attributes:
      a: {assay: phenotype, metric: viability_pct, comparison: ">=", limit: 70, share: {bounds: [0, 100]}}
      b: {assay: sterility_reads, metric: contaminant_call, comparison: equals, limit: NOT_DETECTED,
          share: true}
      c: {assay: phenotype, metric: cd3_pct_live, comparison: ">=", limit: 80}
"""
    path = tmp_path / "specs.yaml"
    path.write_text(text, encoding="utf-8")
    a, b, c = load_specs(path)["S"].attributes
    assert (a.share, a.share_bounds) == (True, (0.0, 100.0))
    assert (b.share, b.share_bounds) == (True, None)
    # an attribute the specification does not mark never leaves the site
    assert (c.share, c.share_bounds) == (False, None)
    reversed_bounds = text.replace("[0, 100]", "[100, 0]")
    assert spec_problems(tmp_path, reversed_bounds) == [
        "specs.yaml, spec 'S', attribute 'a', key 'share': bounds [100, 0] must be a lowest value below a "
        "highest one."
    ]

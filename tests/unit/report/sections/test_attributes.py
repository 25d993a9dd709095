"""Attribute rows: failures lead, then inconclusive attributes, then passes, each in specification order."""

from __future__ import annotations

from collections.abc import Callable

from rapidrelease.records import (
    AttributeEvidence,
    AttributeResult,
    Population,
    ResultCounts,
    StartingMaterial,
)
from rapidrelease.report.sections.attributes import attribute_rows, starting_material_view

Attribute = Callable[..., AttributeResult]


def test_failures_lead_then_inconclusive_then_passes_in_specification_order(
    make_attribute: Attribute,
) -> None:
    judged = [
        make_attribute("viability", 84.5, "PASS"),
        make_attribute("sterility", None, "INCONCLUSIVE"),
        make_attribute("car_of_cd3", 8.9, "FAIL"),
        make_attribute("cd3_of_live", 94.1, "PASS"),
        make_attribute("dose_per_kg", 1.0, "FAIL"),
    ]
    assert [r.name for r in attribute_rows(judged)] == [
        "car_of_cd3",
        "dose_per_kg",
        "sterility",
        "viability",
        "cd3_of_live",
    ]


def test_a_row_shows_the_value_as_judged_its_interval_and_the_events_behind_it(
    make_attribute: Attribute,
) -> None:
    evidence = AttributeEvidence(
        "PHENO", "ok", 8.92, Population("CD3pos/CARpos", 1807), Population("CD3pos", 20262), (8.53, 9.32)
    )
    (row,) = attribute_rows([make_attribute("car_of_cd3", 8.9, "FAIL", value_text="8.9", evidence=evidence)])
    assert (row.value, row.ci) == ("8.9 %", "8.53–9.32")
    assert row.events == ("CD3pos/CARpos: 1,807", "CD3pos: 20,262", "unit PHENO")
    (inconclusive,) = attribute_rows([make_attribute("car_of_cd3", None, "INCONCLUSIVE", evidence=evidence)])
    assert (inconclusive.value, inconclusive.ci) == ("—", None)


def test_the_starting_material_wears_the_badge_of_its_acceptance(make_attribute: Attribute) -> None:
    failed = make_attribute("viability", 72.0, "FAIL")
    starting = StartingMaterial(
        "APHERESIS", "", "NOT_ACCEPTED", "fails.", ResultCounts.of((failed,)), (failed,)
    )
    view = starting_material_view(starting)
    assert view is not None and (view.status, view.result) == ("NOT_ACCEPTED", "FAIL")
    assert [r.name for r in view.rows] == ["viability"]
    assert starting_material_view(None) is None


def test_a_limit_of_detection_shows_what_it_covers_beside_its_value(make_attribute: Attribute) -> None:
    lod = make_attribute(
        "sterility_lod", 5.6, "PASS", metric="lod", unit="CFU/mL", value_text="5.6",
        covers="the organism spiked into the positive control",
    )  # fmt: skip
    (row,) = attribute_rows([lod])
    assert (row.value, row.covers) == ("5.6 CFU/mL", "the organism spiked into the positive control")
    assert attribute_rows([make_attribute("viability", 88.1)])[0].covers is None

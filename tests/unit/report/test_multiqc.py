"""The lot's MultiQC custom-content table, from its typed decision."""

from __future__ import annotations

from collections.abc import Callable

from rapidrelease.records import AttributeResult, Release
from rapidrelease.report.multiqc import multiqc_table


def test_one_row_per_lot_with_its_status_counts_and_every_attributes_value(
    make_release: Callable[..., Release], make_attribute: Callable[..., AttributeResult]
) -> None:
    attributes = [
        make_attribute("viability", 84.5, "PASS"),
        make_attribute("car_of_cd3", 8.9, "FAIL"),
        make_attribute("sterility", None, "INCONCLUSIVE", unit=""),
        make_attribute("dose\tper\nkg", 3.2e6, "PASS", unit="cells/kg"),
    ]
    table = multiqc_table(make_release("DEMO-002", "NOT_RELEASABLE", attributes))
    *header, columns, row = table.splitlines()
    assert all(line.startswith("# ") for line in header)
    assert columns.split("\t") == [
        "Sample",
        "status",
        "pass",
        "fail",
        "inconclusive",
        "viability (%)",
        "viability result",
        "car_of_cd3 (%)",
        "car_of_cd3 result",
        "sterility",
        "sterility result",
        "dose per kg (cells/kg)",  # a tab or line break in a name would shift or end the row
        "dose per kg result",
    ]
    assert row.split("\t") == [
        "DEMO-002",
        "NOT_RELEASABLE",
        "2",
        "1",
        "1",
        "84.5",
        "PASS",
        "8.9",
        "FAIL",
        "INCONCLUSIVE",
        "INCONCLUSIVE",
        "3200000.0",
        "PASS",
    ]

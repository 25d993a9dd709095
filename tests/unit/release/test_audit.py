"""The audit block's pieces: UTC time stamps and package versions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from importlib import metadata

from rapidrelease.release.audit import KEY_PACKAGES, package_versions, utc_timestamp


def test_utc_timestamp_converts_to_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 24, 10, 2, 11, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert utc_timestamp(moment) == "2026-11-24T09:02:11.123Z"


def test_package_versions_reports_missing_packages_as_none() -> None:
    versions = package_versions(("numpy", "surely-not-installed-rapidrelease-x"))
    assert versions == {"numpy": metadata.version("numpy"), "surely-not-installed-rapidrelease-x": None}


def test_key_packages_are_those_of_the_design_card_and_the_fcs_layer() -> None:
    assert KEY_PACKAGES == (
        "snakemake",
        "flowkit",
        "flowio",
        "flowutils",
        "numpy",
        "polars",
        "plotly",
        "pysam",
    )

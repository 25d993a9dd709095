"""The audit block's pieces: UTC time stamps, package versions and the workflow's git commit."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from importlib import metadata

import pytest

from rapidrelease.release.audit import KEY_PACKAGES, package_versions, utc_timestamp, workflow_commit


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


def _git(directory, *args: str) -> None:
    subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_workflow_commit_names_head_and_whether_tracked_files_changed(tmp_path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
    _git(tmp_path, "add", "Snakefile")
    _git(tmp_path, "-c", "user.name=QC", "-c", "user.email=qc@example.org", "commit", "-q", "-m", "workflow")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    # results the run writes are untracked and must not make the checkout look edited
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "release.json").write_text("{}")
    assert workflow_commit(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "Snakefile").write_text("rule all:\n    input: ['edited']\n")
    assert workflow_commit(tmp_path) == {"commit": head, "dirty": True}


def test_workflow_commit_outside_a_checkout_is_none(tmp_path) -> None:
    assert workflow_commit(tmp_path) is None

"""The audit: the software and run, the units' data files and the configuration files, each hashed."""

from __future__ import annotations

from collections.abc import Callable

from rapidrelease.records import FileHash, FileRef, Release, UnitSummary
from rapidrelease.report.sections.audit import FileRow, audit_files, audit_view

from support.releases import minimal_audit

SHA = "ab" * 32


def test_every_data_file_is_listed_by_unit_and_every_other_file_by_role(
    make_release: Callable[..., Release],
) -> None:
    audit = minimal_audit() | {
        "workflow": {"commit": "c" * 40, "dirty": True},
        "packages": {"numpy": "2.4.6", "pysam": None},
        "command_line": ["rapidrelease", "evaluate", "--lot", "L"],
        "files": [
            {"role": "config", "path": "config/config.yaml", "sha256": SHA, "size_bytes": 1956},
            {
                "role": "metrics",
                "path": "results/L/flow/PHENO/metrics.json",
                "sha256": None,
                "size_bytes": None,
            },
        ],
    }
    unit = UnitSummary(
        "PHENO", "phenotype", "test", None, "ok", None, (FileHash("data/L.fcs", SHA, 1322609),), None
    )
    release = make_release("L", "INCONCLUSIVE", units=(unit,), audit=audit)
    assert audit_files(release) == [
        FileRef("config", "config/config.yaml", SHA, 1956),
        FileRef("metrics", "results/L/flow/PHENO/metrics.json", None, None),
    ]
    view = audit_view(release)
    assert view is not None
    assert view.data_files == (FileRow("PHENO", "data/L.fcs", 1322609, SHA),)
    assert [f.label for f in view.files] == ["config", "metrics"]
    assert (view.commit, view.dirty) == ("c" * 40, True)
    assert view.packages == (("numpy", "2.4.6"), ("pysam", None))
    assert view.command_line == "rapidrelease evaluate --lot L"


def test_a_decision_without_an_audit_shows_none(make_release: Callable[..., Release]) -> None:
    assert audit_view(make_release("L", "INCONCLUSIVE")) is None

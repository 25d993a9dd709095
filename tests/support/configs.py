"""Small real configurations and unit records for the configuration and release tests."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path
from typing import Any

from rapidrelease.config.run import RunConfig
from rapidrelease.config.vocabulary import READS_ASSAYS
from rapidrelease.records import Acquisition, FileRef, Metric, Population, UnitRecord, write_record

LOTS_HEADER = "lot_id\tproduct\tspec\tcollected_at\tsite"
UNITS_HEADER = "lot_id\tunit_id\tassay\trole\tpath\tpath2\ttemplate\tvolume_ul"
PANEL = "config/panels/car_t_phenotype.yaml"

LOTS = [
    "DEMO-001\tCAR-T (test)\tSPEC-A\t2026-11-24T08:30:00+01:00\tSITE-A",
    "DEMO-002\tCAR-T (test)\tSPEC-A\t2026-11-24T09:10:00+01:00\tSITE-B",
]
UNITS = [
    f"DEMO-001\tPHENO\tphenotype\ttest\tdata/DEMO-001.fcs\t\t{PANEL}\t",
    f"DEMO-002\tPHENO\tphenotype\ttest\tdata/DEMO-002.fcs\t\t{PANEL}\t50",
]
SPECS = """\
specs:
  SPEC-A:
    description: Test specification
    attributes:
      viability: {assay: phenotype, metric: viability_pct, comparison: ">=", limit: 70, unit: "%"}
      car_of_cd3: {assay: phenotype, metric: car_pct_cd3, comparison: ">=", limit: 15.0, unit: "%"}
      cd4_cd8_ratio:
        {assay: phenotype, metric: cd4_cd8_ratio, comparison: between, lower: 0.5, upper: 4.0, unit: ""}
"""
CONFIG = """\
lots: config/lots.tsv
units: config/units.tsv
specs: config/specs.yaml
results: results
deadline_hours: 24
"""


def sheet(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def write_project(
    root: Path,
    *,
    lots: list[str] | None = None,
    units: list[str] | None = None,
    specs: str = SPECS,
    config: str = CONFIG,
    lots_text: str | None = None,
    units_text: str | None = None,
) -> Path:
    """Write config/ under ``root``; return the config path relative to ``root`` (the working directory)."""
    folder = root / "config"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(config, encoding="utf-8")
    (folder / "lots.tsv").write_text(
        lots_text if lots_text is not None else sheet(LOTS_HEADER, LOTS if lots is None else lots),
        encoding="utf-8",
    )
    (folder / "units.tsv").write_text(
        units_text if units_text is not None else sheet(UNITS_HEADER, UNITS if units is None else units),
        encoding="utf-8",
    )
    (folder / "specs.yaml").write_text(specs, encoding="utf-8")
    return Path("config/config.yaml")


def write_sequenced_project(root: Path, **sheets: Any) -> Path:
    """write_project with a reference index folder (a stand-in manifest), as sequencing units need."""
    (root / "refdb").mkdir(exist_ok=True)
    (root / "refdb" / "manifest.json").write_text("{}", encoding="utf-8")
    return write_project(root, config=CONFIG + "reference: {index: refdb}\n", **sheets)


def metric(value: Any, *, status: str = "ok", unit: str = "%", reason: str | None = None) -> Metric:
    """A metric as the measuring step makes it: a finite number comes with the events it is the
    percentage of (value × 100 of 10,000) and an interval around it, as a real one would."""
    counted = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return Metric(
        value,
        unit,
        "percent",
        status,
        reason,
        numerator=Population("Cells/Singlets/Live", round(value * 100)) if counted else None,
        denominator=Population("Cells/Singlets", 10_000) if counted else None,
        ci95=(value - 0.5, value + 0.5) if counted else None,
    )


def good_metrics() -> dict[str, Metric]:
    return {
        "viability_pct": metric(88.1),
        "car_pct_cd3": metric(31.26),
        "cd4_cd8_ratio": metric(1.85, unit=""),
    }


def unit_result(
    lot_id: str = "DEMO-001",
    unit_id: str = "PHENO",
    *,
    metrics: dict[str, Metric] | None = None,
    status: str = "ok",
    error: str | None = None,
    assay: str = "phenotype",
    role: str = "test",
) -> UnitRecord:
    """The record of one unit as its stage writes it (``call`` for a sequencing unit, else ``measure``)."""
    return UnitRecord(
        stage="call" if assay in READS_ASSAYS else "measure",
        lot_id=lot_id,
        unit_id=unit_id,
        assay=assay,
        role=role,
        status=status,  # type: ignore[arg-type]
        error=error,
        inputs=(FileRef("fcs", f"data/{lot_id}.fcs", "a" * 64, 1300000),),
        acquisition=Acquisition("2026-11-24T10:02:11", "2026-11-24T10:02:31", "LSRFortessa"),
        metrics=(good_metrics() if metrics is None else metrics) if status == "ok" else {},
    )


def with_inputs_on_disk(root: Path, record: UnitRecord) -> UnitRecord:
    """``record`` with each input it names written under ``root`` and its SHA-256 and size made true.

    release.json is written only from inputs that still hold the bytes measured
    (rapidrelease.release.integrity), so a record written to disk needs its files beside it.
    """
    inputs = []
    for entry in record.inputs:
        data = f"bytes of {entry.path} as measured".encode()
        path = root / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        inputs.append(
            dataclasses.replace(entry, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        )
    return dataclasses.replace(record, inputs=tuple(inputs))


def write_records(root: Path, run: RunConfig, records: list[UnitRecord]) -> None:
    """Write each record where the workflow would, in its unit's results folder under ``root``."""
    for record in records:
        unit = run.unit(record.lot_id, record.unit_id)
        write_record(root / run.record_path(unit), record)

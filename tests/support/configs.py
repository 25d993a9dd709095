"""Small real configurations and metrics.json records for the release tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

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


def metric(value: Any, *, status: str = "ok", unit: str = "%", reason: str | None = None) -> dict[str, Any]:
    """A metric entry shaped as the measuring step writes it."""
    return {
        "value": value,
        "unit": unit,
        "kind": "percent",
        "status": status,
        "reason": reason,
        "numerator": {"population": "Cells/Singlets/Live", "count": 22000},
        "denominator": {"population": "Cells/Singlets", "count": 24970},
        "ci95": [87.7, 88.5],
    }


def good_metrics() -> dict[str, Any]:
    return {
        "viability_pct": metric(88.1),
        "car_pct_cd3": metric(31.26),
        "cd4_cd8_ratio": metric(1.85, unit=""),
    }


def unit_result(
    lot_id: str = "DEMO-001",
    unit_id: str = "PHENO",
    *,
    metrics: dict[str, Any] | None = None,
    status: str = "ok",
    error: str | None = None,
    assay: str = "phenotype",
    role: str = "test",
) -> dict[str, Any]:
    """A metrics.json record of one unit."""
    return {
        "lot_id": lot_id,
        "unit_id": unit_id,
        "assay": assay,
        "role": role,
        "status": status,
        "error": error,
        "inputs": [{"path": f"data/{lot_id}.fcs", "sha256": "a" * 64, "size_bytes": 1300000}],
        "acquisition": {
            "start": "2026-11-24T10:02:11",
            "end": "2026-11-24T10:02:31",
            "cytometer": "LSRFortessa",
        },
        "metrics": good_metrics() if metrics is None else metrics,
    }


def with_inputs_on_disk(root: Path, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with each input it names written under ``root`` and its SHA-256 and size made true.

    release.json is written only from inputs that still hold the bytes measured
    (rapidrelease.release.integrity), so a record written to disk needs its files beside it.
    """
    inputs = []
    for entry in record.get("inputs") or []:
        data = f"bytes of {entry['path']} as measured".encode()
        path = root / entry["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        inputs.append({**entry, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)})
    return {**record, "inputs": inputs}

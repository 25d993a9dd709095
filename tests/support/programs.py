"""Simulated programs for the share tests: the demo archive's decided lots re-labelled as other
programs' lots (their own lot ids, site, product and platform), sealed as the evaluate stage seals."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rapidrelease.records import read_release, write_record

ARCHIVE = Path(__file__).resolve().parents[2] / "resources" / "demo" / "archive"


@dataclass(frozen=True)
class Program:
    """A program: the names that must never leave it, its platform columns, the archive lots it reuses."""

    prefix: str
    site: str
    product: str
    platform: Mapping[str, str]
    archive_lots: tuple[int, ...]


LENTI_CENTRAL = {
    "cell_type": "T cell",
    "vector": "lentiviral",
    "costim_domain": "4-1BB",
    "process_days": "7",
    "manufacturing_mode": "central",
}
GAMMA_POC = {
    "cell_type": "T cell",
    "vector": "gammaretroviral",
    "costim_domain": "CD28",
    "process_days": "10",
    "manufacturing_mode": "point-of-care",
}

# two programs of one platform (so that they are pooled and compared) and one of another
PROGRAMS = (
    Program("ORION", "Orion Biologics Leiden", "ORX-CD19 (orionocel)", LENTI_CENTRAL, tuple(range(1, 9))),
    Program("VEGA", "Vega Cell Works Basel", "VGA-BCMA (vegacabtagene)", LENTI_CENTRAL, tuple(range(9, 17))),
    Program("LYRA", "Lyra Therapeutics Austin", "LYR-CD22 (lyracel)", GAMMA_POC, tuple(range(17, 25))),
)


def write_program(program: Program, out_dir: Path) -> list[Path]:
    """The program's lots as sealed release.json files under ``out_dir``; their paths."""
    paths = []
    for i, archived in enumerate(program.archive_lots, start=1):
        release = read_release(ARCHIVE / f"HIST-{archived:03d}" / "release.json")
        lot = dataclasses.replace(
            release.lot,
            lot_id=f"{program.prefix}-{i:03d}",
            site=program.site,
            product=program.product,
            extra=dict(program.platform),
        )
        path = out_dir / lot.lot_id / "release.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_record(path, dataclasses.replace(release, lot=lot))
        paths.append(path)
    return paths

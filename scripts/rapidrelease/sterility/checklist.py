"""The organisms a sterility or mycoplasma report must always account for, and what each assay calls.

USP <71> / Ph. Eur. 2.6.1 name the sterility test's growth-promotion organisms; Ph. Eur. 2.6.7
names the mycoplasmas a nucleic-acid test must detect at ≤ 10 CFU/mL. Each is listed with its
NCBI taxid (stable across NCBI's 2023 renaming of the mycoplasmas, e.g. Mycoplasma orale is now
Metamycoplasma orale with the same taxid), where a reference taxonomy may predate a species the
taxid it was known under, and its approximate genome size (NCBI reference assemblies), which caps
the share of a genome a reference can hold (:mod:`rapidrelease.sterility.calls`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ChecklistOrganism",
    "COMPENDIAL_STERILITY",
    "PH_EUR_MYCOPLASMA",
    "ALL_CHECKLISTS",
    "checklist_of",
    "TARGETS",
]


@dataclass(frozen=True)
class ChecklistOrganism:
    """An organism a report always lists, with its taxid and the taxids it was formerly known under."""

    name: str
    taxid: int
    strain: str
    genome_mb: float
    group: str
    former_taxids: tuple[int, ...] = ()
    note: str = ""


COMPENDIAL_STERILITY: tuple[ChecklistOrganism, ...] = (
    ChecklistOrganism("Staphylococcus aureus", 1280, "ATCC 6538", 2.82, "bacteria"),
    ChecklistOrganism("Pseudomonas aeruginosa", 287, "ATCC 9027", 6.26, "bacteria"),
    ChecklistOrganism(
        "Bacillus subtilis",
        1423,
        "ATCC 6633",
        4.22,
        "bacteria",
        note="the compendial strain is B. subtilis subsp. spizizenii",
    ),
    ChecklistOrganism("Clostridium sporogenes", 1509, "ATCC 19404", 4.1, "bacteria"),
    ChecklistOrganism("Candida albicans", 5476, "ATCC 10231", 14.3, "fungi"),
    ChecklistOrganism(
        "Aspergillus brasiliensis",
        319651,
        "ATCC 16404",
        35.5,
        "fungi",
        former_taxids=(5061,),
        note="ATCC 16404 was Aspergillus niger until 2007",
    ),
)
"""USP <71> / Ph. Eur. 2.6.1 growth-promotion organisms."""

PH_EUR_MYCOPLASMA: tuple[ChecklistOrganism, ...] = (
    ChecklistOrganism("Mycoplasma arginini", 2094, "ATCC 23838", 0.68, "mycoplasma"),
    ChecklistOrganism("Mycoplasma orale", 2121, "ATCC 23714", 0.75, "mycoplasma"),
    ChecklistOrganism("Mycoplasma fermentans", 2115, "ATCC 19989", 1.0, "mycoplasma"),
    ChecklistOrganism("Mycoplasma hyorhinis", 2100, "ATCC 17981", 0.84, "mycoplasma"),
    ChecklistOrganism("Mycoplasma pneumoniae", 2104, "ATCC 15531", 0.82, "mycoplasma"),
    ChecklistOrganism("Mycoplasma gallisepticum", 2096, "ATCC 19610", 1.0, "mycoplasma"),
    ChecklistOrganism("Mycoplasma synoviae", 2109, "ATCC 25204", 0.8, "mycoplasma"),
    ChecklistOrganism("Acholeplasma laidlawii", 2148, "ATCC 23206", 1.5, "mycoplasma"),
    ChecklistOrganism("Spiroplasma citri", 2133, "ATCC 27556", 1.8, "mycoplasma"),
)
"""Ph. Eur. 2.6.7 mycoplasmas a nucleic-acid amplification test must detect."""

ALL_CHECKLISTS: tuple[ChecklistOrganism, ...] = COMPENDIAL_STERILITY + PH_EUR_MYCOPLASMA

TARGETS: dict[str, tuple[str, ...]] = {
    # a sequencing sterility test sees mycoplasmas too, and a release test must not look away
    "sterility_reads": ("bacteria", "fungi", "mycoplasma"),
    "mycoplasma_reads": ("mycoplasma",),
}
"""Release categories of the taxa each sequencing assay calls (rapidrelease.reads.taxonomy)."""


def checklist_of(assay: str) -> tuple[ChecklistOrganism, ...]:
    """The organisms ``assay``'s report always lists."""
    return COMPENDIAL_STERILITY if assay == "sterility_reads" else PH_EUR_MYCOPLASMA

"""The words the sheets, the specifications and every stage share: assays, roles, read categories.

One place, so that the unit sheet's schema, the workflow's rules, the measuring stages, the decision
and the report cannot disagree on which assays are flow, which are sequenced, which role a control
plays or which read categories are contaminants (``workflow/schemas/units.schema.yaml`` lists the
same assays and roles; a test checks that they agree).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "FLOW_ASSAYS",
    "READS_ASSAYS",
    "DOSE_ASSAY",
    "DOSE_METRICS",
    "ROLES_OF_ASSAY",
    "ALL_ROLES",
    "CONTROL_ROLES_OF_ASSAY",
    "READS_CONTROL_ROLES",
    "SHARED_CONTROL_ROLES",
    "LOD_METRIC",
    "organism_lod_metric",
    "CATEGORIES",
    "CONTAMINANT_CATEGORIES",
    "PASS",
    "FAIL",
    "INCONCLUSIVE",
    "DETECTED",
    "NOT_DETECTED",
    "RESULTS",
    "RELEASE_CANDIDATE",
    "NOT_RELEASABLE",
    "LOT_STATUSES",
    "ACCEPTED",
    "NOT_ACCEPTED",
    "ACCEPTANCE_STATUSES",
    "PLATFORM_COLUMNS",
]

FLOW_ASSAYS: tuple[str, ...] = ("phenotype", "potency", "microbial_flow")
"""Assays measured by gating an FCS file with a panel's template."""

READS_ASSAYS: tuple[str, ...] = ("sterility_reads", "mycoplasma_reads")
"""Assays measured by classifying sequencing reads against the k-mer reference."""

DOSE_ASSAY = "dose"
"""The pseudo-assay of a lot's dose: computed from the lot sheet and its phenotype test unit."""

DOSE_METRICS: tuple[str, ...] = ("viable_car_t_cells", "viable_car_t_cells_per_kg")
"""The metrics of the dose pseudo-assay (rapidrelease.release.dose)."""

ROLES_OF_ASSAY: Mapping[str, tuple[str, ...]] = {
    "phenotype": ("test", "fmo", "compensation", "starting_material"),
    "potency": ("stimulated", "unstimulated", "target_only", "fmo", "compensation"),
    "microbial_flow": ("test", "negative_control"),
    "sterility_reads": ("test", "negative_control", "positive_control"),
    "mycoplasma_reads": ("test", "negative_control", "positive_control"),
}
"""The roles a unit of each assay may have."""

ALL_ROLES: frozenset[str] = frozenset(role for roles in ROLES_OF_ASSAY.values() for role in roles)

CONTROL_ROLES_OF_ASSAY: Mapping[str, tuple[str, ...]] = {
    "phenotype": ("fmo", "compensation"),
    "potency": ("unstimulated", "target_only", "fmo", "compensation"),
    "microbial_flow": ("negative_control",),
}
"""The roles of a flow assay's tubes that its other tubes (of the same lot and panel) are measured against."""

READS_CONTROL_ROLES: tuple[str, ...] = ("negative_control", "positive_control")
"""Roles of sequencing units that a test of the same assay and library is called against."""

SHARED_CONTROL_ROLES: frozenset[str] = frozenset({"negative_control", "positive_control"})
"""Roles of a run's controls, whose data file the lots measured in that run may share (a sequencing
run's negative and positive controls, a flow run's sterile-medium control)."""

LOD_METRIC = "lod"
"""A sequencing assay's limit of detection, which a specification judges for the organisms it covers:
``lod`` itself for the spiked organism, ``lod_checklist_max`` for the whole checklist, and
``lod[<organism>]`` for each checklist organism (:func:`organism_lod_metric`)."""


def organism_lod_metric(organism: str) -> str:
    """The name of the metric holding one checklist organism's limit of detection."""
    return f"{LOD_METRIC}[{organism}]"


CATEGORIES: tuple[str, ...] = (
    "host",
    "vector",
    "spike_in",
    "adapter",
    "bacteria",
    "fungi",
    "mycoplasma",
    "virus",
    "other",
)
"""What reads of a taxon are to a CAR-T product, in the order the report lists them."""

CONTAMINANT_CATEGORIES: tuple[str, ...] = ("bacteria", "fungi", "mycoplasma", "virus")
"""The categories of organisms that must not be in a cell product (DESIGN.md §5)."""

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
DETECTED, NOT_DETECTED = "DETECTED", "NOT_DETECTED"
"""A detection assay's call (sequencing sterility and mycoplasma, microbial flow)."""
RESULTS: tuple[str, ...] = (PASS, FAIL, INCONCLUSIVE)
"""What an attribute's judgement can be: INCONCLUSIVE whenever its evidence is not complete."""

RELEASE_CANDIDATE, NOT_RELEASABLE = "RELEASE_CANDIDATE", "NOT_RELEASABLE"
LOT_STATUSES: tuple[str, ...] = (RELEASE_CANDIDATE, NOT_RELEASABLE, INCONCLUSIVE)
"""A lot's status: a release candidate only when every attribute passes on complete evidence."""

ACCEPTED, NOT_ACCEPTED = "ACCEPTED", "NOT_ACCEPTED"
ACCEPTANCE_STATUSES: tuple[str, ...] = (ACCEPTED, NOT_ACCEPTED, INCONCLUSIVE)
"""The starting material's acceptance against its own specification."""

PLATFORM_COLUMNS: tuple[str, ...] = (
    "cell_type",
    "vector",
    "costim_domain",
    "process_days",
    "manufacturing_mode",
)
"""The lot sheet's optional platform columns (workflow/schemas/lots.schema.yaml): what a product is
made with, which rapidrelease share pools across programs instead of the product."""

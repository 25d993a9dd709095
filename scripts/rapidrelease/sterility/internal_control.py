"""A test sample's internal control: a known amount of an exogenous organism spiked into the sample.

The positive control measures the assay's sensitivity in clean buffer; a cell product's matrix (host
DNA, cryoprotectant, cell debris) can inhibit lysis, extraction or library preparation, so a sample
read at the buffer's sensitivity may miss what it claims to detect. An internal control (the unit
sheet's ``spike_organism``, ``spike_concentration`` and ``spike_unit`` on a test row: e.g. an
organism absent from every cell product, at a stated CFU or genome copies per mL) goes through the
same steps inside the sample. Its reads give the sample's own recovery: reads per million per unit
of concentration in this matrix, with the exact (Garwood) 95 % interval of its Poisson count.

What it changes (USP <1223> and ICH Q2(R2) matrix checks; Ph. Eur. 2.6.7's internal control of a
NAT):

- the sample's predicted LOD rests on its own recovery (its one-sided 95 % lower bound, as the
  positive control's does) instead of the positive control's in buffer;
- recovery below ``detection.min_spike_recovery`` of the positive control's flags inhibition: the
  sample's NOT_DETECTED calls become INCONCLUSIVE, because a miss in an inhibited sample shows
  nothing; a DETECTED call stands (inhibition can hide an organism, never create one);
- the spike's own taxon is never a candidate contaminant of the sample.

In a shotgun library an organism's classifiable reads per CFU scale with the share of its genome
the reference holds, so recovery compares sensitivities per reference minimizer (the same scaling the
LOD applies between organisms); an amplicon library reads one locus of every organism, unscaled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidrelease.stats import interval, lower_bound

__all__ = ["InternalControl", "assess_internal_control", "recovery_sentence"]

_CONFIDENCE = 0.95


@dataclass(frozen=True)
class InternalControl:
    """One test sample's internal control as measured.

    ``reads`` of the spike's taxon (``taxid``, its clade) in the sample's ``fragments``;
    ``rpm_per_unit`` the sample's sensitivity (RPM per unit of ``concentration``, in ``unit``) with
    its two-sided 95 % Garwood interval ``rpm_per_unit_ci95`` and one-sided 95 % lower bound
    ``rpm_per_unit_lower`` (what the LOD uses); ``reference_minimizers`` what the reference holds of
    one genome of it. ``recovery`` is that sensitivity over the positive control's in buffer (per
    reference minimizer in a shotgun library), with ``recovery_ci95`` from the spike's count (the
    positive control's taken as measured); None when no positive control gave a sensitivity in the
    same unit. ``inhibited`` is True when ``recovery`` is below ``min_recovery``.
    """

    unit_id: str
    organism: str
    taxid: int
    concentration: float
    unit: str
    reads: int
    fragments: int
    rpm_per_unit: float
    rpm_per_unit_ci95: tuple[float, float]
    rpm_per_unit_lower: float
    reference_minimizers: float
    recovery: float | None
    recovery_ci95: tuple[float, float] | None
    min_recovery: float
    inhibited: bool


def assess_internal_control(
    unit_id: str,
    organism: str,
    taxid: int,
    concentration: float,
    unit: str,
    reads: int,
    fragments: int,
    reference_minimizers: float,
    positive: Sequence[tuple[float, float]],
    min_recovery: float,
    shotgun: bool = True,
) -> InternalControl:
    """The internal control of a sample: ``reads`` of its spike in ``fragments`` at ``concentration``.

    ``positive`` holds each usable positive control's (RPM per unit of concentration, reference
    minimizers of its organism), in the same ``unit``; the recovery is judged against the least
    sensitive of them (the one the sample's LOD would otherwise rest on). ``shotgun`` scales both
    per reference minimizer (module docstring). Raises ValueError for a concentration or depth that
    is not positive (the unit sheet refuses both).
    """
    if concentration <= 0 or fragments <= 0:
        raise ValueError(
            f"an internal control needs a positive concentration and depth ({concentration}, {fragments})"
        )
    per_unit = 1e6 / fragments / concentration
    low, high = interval(reads, _CONFIDENCE)
    sensitivity = reads * per_unit
    recovery: float | None = None
    recovery_ci95: tuple[float, float] | None = None

    def per_minimizer(rpm_per_unit: float, minimizers: float) -> float:
        return rpm_per_unit / max(minimizers, 1.0) if shotgun else rpm_per_unit

    buffer = [per_minimizer(rpm, held) for rpm, held in positive if rpm > 0]
    if buffer:
        reference = min(buffer)
        recovery = per_minimizer(sensitivity, reference_minimizers) / reference
        recovery_ci95 = (
            per_minimizer(low * per_unit, reference_minimizers) / reference,
            per_minimizer(high * per_unit, reference_minimizers) / reference,
        )
    return InternalControl(
        unit_id=unit_id,
        organism=organism,
        taxid=taxid,
        concentration=concentration,
        unit=unit,
        reads=reads,
        fragments=fragments,
        rpm_per_unit=sensitivity,
        rpm_per_unit_ci95=(low * per_unit, high * per_unit),
        rpm_per_unit_lower=lower_bound(reads, _CONFIDENCE) * per_unit,
        reference_minimizers=reference_minimizers,
        recovery=recovery,
        recovery_ci95=recovery_ci95,
        min_recovery=min_recovery,
        inhibited=recovery is not None and recovery < min_recovery,
    )


def recovery_sentence(control: InternalControl) -> str:
    """How a reviewer reads the internal control: its reads, its sensitivity and its recovery."""
    low, high = control.rpm_per_unit_ci95
    text = (
        f"internal control {control.organism} at {control.concentration:g} {control.unit}: "
        f"{control.reads:,} reads, {control.rpm_per_unit:.3g} RPM per {control.unit} "
        f"(95 % CI {low:.3g}–{high:.3g})"
    )
    if control.recovery is None:
        return text + ", no positive control to compare its recovery with"
    assert control.recovery_ci95 is not None
    rlow, rhigh = control.recovery_ci95
    text += (
        f", {100 * control.recovery:.0f} % of the positive control's sensitivity in buffer "
        f"(95 % CI {100 * rlow:.0f}–{100 * rhigh:.0f} %)"
    )
    if control.inhibited:
        text += (
            f", below the {100 * control.min_recovery:g} % a sample needs: the sample's matrix inhibits "
            "the assay, so a miss in it shows nothing"
        )
    return text

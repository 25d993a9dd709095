"""The method validation summary ``rapidrelease validate-method`` prints, at stated settings.

Four parts, each simulated with the package's own rules and a fixed seed (the same seed prints the
same figures):

1. sequencing sterility: the per-lot false-FAIL rate of sterile lots with 300 reagent taxa shared
   with the negative controls, per run setting, with its Wilson 95 % upper bound (goal ≤ 1 %), and,
   given the lab's negative controls, the rate at the ``background_cv`` they show;
2. sequencing sterility: detection probability against contaminant level, the LOD95 read off the
   curve beside the predicted LOD the package reports for such runs;
3. microbial flow: the false-DETECTED rate of sterile tubes per background level (simulated and
   exact, against the stated α) and the detection curve with its LOD95;
4. potency: PASS and FAIL of lots whose true response lies near the specification's limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from rapidrelease.config.run import DetectionSettings
from rapidrelease.flow.thresholds import min_control_events
from rapidrelease.validation.background_cv import BackgroundCv
from rapidrelease.validation.flow_characteristics import (
    lod95_linear,
    microbial_detection_curve,
    microbial_false_detected,
    potency_misclassification,
)
from rapidrelease.validation.sterility_characteristics import (
    CURVES,
    N_BACKGROUND,
    SCENARIOS,
    detection_curve,
    false_fail,
)

__all__ = ["ValidationSettings", "validation_summary"]


@dataclass(frozen=True)
class ValidationSettings:
    """What the summary simulates: ``lots`` sterile lots per sterility setting, ``curve_lots`` lots per
    contaminant level, ``tubes`` per microbial-flow level and potency cell; ``seed`` of the one random
    stream; ``detection`` the sequencing rule's settings (config.yaml's ``detection``)."""

    seed: int = 17
    lots: int = 100
    curve_lots: int = 30
    tubes: int = 20_000
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    microbial_alpha: float = 0.01
    microbial_volume_ml: float = 0.05
    potency_limit: float = 5.0
    potency_percentile: float = 99.5
    potency_stimulated_events: int = 3_000


_BACKGROUNDS = (0.5, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)  # expected background events per tube
_CURVE_BACKGROUND = 10.0
_CONCENTRATIONS = (0, 50, 100, 150, 200, 300, 400, 500, 600, 800)  # microbes per mL of test
_POTENCY_CONTROLS = (2_000, 3_000, 10_000)  # CAR+ T cells in the unstimulated tube
_POTENCY_RESPONSES = (3.0, 4.0, 4.5, 5.5, 6.0, 7.0)  # true % responding, around the 5 % limit


def _pct(value: float, decimals: int = 2) -> str:
    return f"{100 * value:.{decimals}f} %"


def validation_summary(settings: ValidationSettings, measured: BackgroundCv | None = None) -> str:
    """The summary as text (module docstring). ``measured`` is the background CV estimated from the
    lab's negative controls (:func:`rapidrelease.validation.background_cv.estimate_background_cv`):
    its rows show the false-FAIL rate at that CV, configured as measured and at the default."""
    rng = np.random.default_rng(settings.seed)
    detection = settings.detection
    lines = [
        "METHOD VALIDATION SUMMARY (rapidrelease validate-method): operating characteristics by simulation",
        f"seed {settings.seed}; {settings.lots:,} sterile lots per sterility setting, "
        f"{settings.curve_lots:,} lots per contaminant level, {settings.tubes:,} tubes per flow setting "
        "and potency cell",
        f"sequencing rule: min_reads {detection.min_reads}, min_fold {detection.min_fold:g}, alpha "
        f"{detection.alpha:g} (Holm over the unit's taxa), background_cv {detection.background_cv:g}, "
        f"detection_probability {detection.detection_probability:g}",
        "",
        f"1. SEQUENCING STERILITY: per-lot false-FAIL rate of sterile lots, {N_BACKGROUND} reagent taxa "
        "shared with the NTCs (goal ≤ 1 %)",
        f"   {'setting':38s} {'test':>6s} {'NTC':>6s} {'kitome RPM NTC/test':>20s} {'false FAIL':>11s} "
        f"{'95% upper':>10s} {'no Holm':>8s}",
    ]
    scenarios = list(SCENARIOS)
    if measured is not None:
        cv = round(measured.cv, 2)
        base = replace(SCENARIOS[3], cv=cv)
        scenarios += [
            replace(base, name=f"measured CV {cv:g}, configured {cv:g}", setting_cv=cv),
            replace(base, name=f"measured CV {cv:g}, configured {detection.background_cv:g}"),
        ]
    for scenario in scenarios:
        rate = false_fail(scenario, settings.lots, rng, detection)
        lines.append(
            f"   {scenario.name:38s} {scenario.test_fragments / 1e6:5.1f}M "
            f"{scenario.control_fragments / 1e6:5.2f}M "
            f"{scenario.control_kitome_rpm:>10,.0f}/{scenario.test_kitome_rpm:<9,.0f} {_pct(rate.rate):>11s} "
            f"{_pct(rate.upper95):>10s} {_pct(rate.nominal / rate.lots, 1):>8s}"
        )
    lines += [
        "   (true between-library CV of each reagent taxon as named; the rule configured with",
        "   background_cv 0.3 unless a row says otherwise; no Holm: the read and fold rules with each",
        "   taxon's unadjusted p ≤ α. 95 % upper bound: Wilson; showing ≤ 1 % needs ≥ 381 lots with none",
        "   failed (--lots). The ≤ 1 % goal holds only with background_cv at the lab's measured value.)",
    ]
    if measured is not None:
        lines.append(
            f"   measured from {measured.libraries} negative controls, {measured.taxa} taxa, "
            f"{measured.reads:,} reads: background_cv {measured.cv:.2f} "
            f"(95 % upper bound {measured.upper95:.2f})"
        )
        shortfall = measured.shortfall()
        if shortfall is not None:
            lines.append(f"   NOT A VALIDATED VALUE: {shortfall}; do not configure it")
    lines += ["", "2. SEQUENCING STERILITY: detection probability against contaminant level"]
    for curve in CURVES:
        result = detection_curve(curve, settings.curve_lots, rng, detection)
        lines.append(f"   {curve.name}")
        lines.append(f"   {'CFU/mL':>8s} {'detected':>9s}")
        lines += [
            f"   {level:8.2f} {_pct(p, 1):>9s}"
            for level, p in zip(curve.levels, result.detected, strict=True)
        ]
        read = result.lod95
        lines.append(
            f"   LOD95 read off the curve: {'not reached' if read is None else f'{read:.2f} CFU/mL'}; "
            f"predicted LOD95 the run reports (median of up to 50 runs): "
            f"{'none' if result.reported_lod is None else f'{result.reported_lod:.3g} CFU/mL'}"
        )
    alpha, volume = settings.microbial_alpha, settings.microbial_volume_ml
    lines += [
        "",
        f"3. MICROBIAL FLOW: sterile tubes called DETECTED (test and sterile medium {volume:g} mL each, "
        f"exact conditional test at α = {alpha:g})",
        f"   {'background/tube':>16s} {'per mL':>8s} {'simulated':>10s} {'exact':>8s}",
    ]
    rows = microbial_false_detected(_BACKGROUNDS, settings.tubes, alpha, rng)
    lines += [
        f"   {r.background:>16g} {r.background / volume:>8.0f} {_pct(r.simulated):>10s} {_pct(r.exact):>8s}"
        for r in rows
    ]
    worst = max(r.exact for r in rows)
    lines.append(
        f"   worst level {_pct(worst)} (≤ α = {_pct(alpha, 0)}: {'met' if worst <= alpha else 'NOT met'})"
    )
    rates = microbial_detection_curve(_CONCENTRATIONS, _CURVE_BACKGROUND, volume, settings.tubes, alpha, rng)
    lines.append(
        f"   detection at a background of {_CURVE_BACKGROUND:g} events/tube "
        f"({_CURVE_BACKGROUND / volume:.0f}/mL):"
    )
    lines += [f"   {c:>12g}/mL {_pct(p, 1):>9s}" for c, p in zip(_CONCENTRATIONS, rates, strict=True)]
    lod = lod95_linear(_CONCENTRATIONS, rates)
    lines.append(f"   LOD95 read off the curve: {'not reached' if lod is None else f'{lod:.0f} microbes/mL'}")
    limit = settings.potency_limit
    needed = min_control_events(settings.potency_percentile)
    lines += [
        "",
        f"4. POTENCY: lots near the ≥ {limit:g} % limit (net of the unstimulated tube, threshold its "
        f"{settings.potency_percentile:g}th percentile; the control needs {needed:,} events; stimulated tube "
        f"{settings.potency_stimulated_events:,} CAR+ T cells)",
        f"   {'control events':>14s} {'true %':>7s} {'PASS':>9s} {'FAIL':>9s} {'misclassified':>14s}",
    ]
    potency = potency_misclassification(
        rng,
        settings.tubes,
        _POTENCY_CONTROLS,
        _POTENCY_RESPONSES,
        settings.potency_stimulated_events,
        limit,
        settings.potency_percentile,
    )
    lines += [
        f"   {r.control_events:>14,} {r.response_pct:>7g} {_pct(r.passed, 1):>9s} {_pct(r.failed, 1):>9s} "
        f"{_pct(r.misclassified(limit), 1):>14s}"
        for r in potency
    ]
    lines.append("   (misclassified: PASS of a lot below the limit, FAIL of a lot at or above it)")
    return "\n".join(lines)

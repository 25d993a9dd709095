"""Operating characteristics of the sequencing sterility calls, measured by simulation (issue 17).

Two rules are run side by side on the same simulated count tables:

- BEFORE: the rule of main up to issue 17 (git show main:scripts/rapidrelease/sterility/calls.py),
  re-implemented here and labelled as such: with two or more negative controls
  z = (test RPM − controls' mean RPM) / max(SD, 1 RPM) ≥ 3; with one, fold ≥ 10 and a Poisson p
  < 0.01 under the control's upper 95 % rate; ≥ 3 reads; no correction for the taxa tested. Its LOD:
  the Poisson mean detected with 95 % at its threshold over the positive control's point sensitivity.
- AFTER: rapidrelease.sterility.calls as it is, simulated by rapidrelease.validation.
  sterility_characteristics (the code `rapidrelease validate-method` runs; this script adds only
  the BEFORE rule, on the same simulated lots): the conditional binomial test against the pooled
  controls with depth as offset
  (widened by background_cv 0.3 unless a row says otherwise), Holm over every taxon of the unit,
  fold ≥ 10, ≥ 3 reads; the predicted LOD from the positive control's lower-bound sensitivity,
  with organisms Poisson in the tested volume and reads Poisson per organism (never below 3/V).

Nothing here reads sequences: the calls are made on count tables, which is what the rule sees.
Reads of a taxon in a library are Poisson around its rate × depth; between libraries the rate of a
reagent taxon varies further (gamma, coefficient of variation ``--cv``), as kit contamination does.

    .venv/bin/python tests/benchmarks/bench_sterility_calls.py [--lots 2000] [--curve-lots 400] [--seed 17]

Not part of the test suite (about 15 minutes at the defaults on one core); it prints a validation
summary a QA reviewer can file.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from rapidrelease.config.run import DetectionSettings
from rapidrelease.stats import mean_detected, tail_at_least, upper_bound
from rapidrelease.sterility.calls import sampling_floor
from rapidrelease.validation.sterility_characteristics import (
    CURVES,
    N_BACKGROUND,
    SCENARIOS,
    Curve,
    detection_curve,
    false_fail,
    lod95_off_curve,
)

SETTINGS = DetectionSettings()


# ------------------------------------------------------------------------------- BEFORE (main's rule)


def before_detected(
    test: np.ndarray, d_test: int, controls: list[np.ndarray], d_controls: list[int]
) -> np.ndarray:
    """main's rule, vectorised over taxa: which taxa it calls DETECTED (reads spread: always true here)."""
    rpm = 1e6 * test / d_test
    enough = test >= 3
    if not controls:
        return enough
    if len(controls) == 1:
        (c,), (d_c,) = controls, d_controls
        control_rpm = 1e6 * c / d_c
        with np.errstate(divide="ignore", invalid="ignore"):
            fold = np.where(control_rpm > 0, rpm / control_rpm, np.inf)
        above = np.zeros(test.size, dtype=bool)
        for i in np.flatnonzero(enough & (fold >= 10)):
            bound = upper_bound(int(c[i]), 0.95) * d_test / d_c
            above[i] = tail_at_least(int(test[i]), bound) < 0.01
        return enough & above
    control_rpm = np.array([1e6 * c / d for c, d in zip(controls, d_controls, strict=True)])
    sd = np.maximum(control_rpm.std(axis=0, ddof=1), 1.0)
    z = (rpm - control_rpm.mean(axis=0)) / sd
    return enough & (z >= 3)


def before_threshold(d_test: int, controls: int) -> int:
    """main's threshold for a taxon no control holds: z = RPM / 1 ≥ 3 (two or more controls)."""
    if controls >= 2:
        return max(3, math.ceil(3 * d_test / 1e6))
    raise ValueError("the benchmark runs two or more controls")


def before_lod(d_test: int, controls: int, pc_reads: int, d_pc: int, concentration: float) -> float:
    sensitivity = 1e6 * pc_reads / d_pc / concentration
    return 1e6 * mean_detected(before_threshold(d_test, controls)) / d_test / sensitivity


def _before_lot(d_test: int, d_control: int, controls: int):
    """main's rule as a callback of the package's simulation: does it fail this lot?"""

    def fails(test: np.ndarray, counts: list[np.ndarray]) -> bool:
        return bool(before_detected(test, d_test, counts, [d_control] * controls).any())

    return fails


def _before_contaminant(d_test: int, d_control: int, controls: int):
    """main's rule on a contaminated lot (the contaminant last): does it detect the contaminant?"""

    def detects(test: np.ndarray, counts: list[np.ndarray]) -> bool:
        return bool(before_detected(test, d_test, counts, [d_control] * controls)[-1])

    return detects


def _before_lod(curve: Curve):
    scenario = curve.scenario
    return lambda pc_reads: before_lod(
        scenario.test_fragments,
        scenario.controls,
        pc_reads,
        scenario.control_fragments,
        curve.pc_concentration,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=2000, help="sterile lots per false-FAIL scenario")
    parser.add_argument("--curve-lots", type=int, default=400, help="lots per level of a detection curve")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print("VALIDATION SUMMARY — sequencing sterility calls (rapidrelease, issue 17)")
    print(f"simulation seed {args.seed}; BEFORE = main's z ≥ 3 rule; AFTER = this package's rule")
    print(
        f"AFTER settings: min_reads {SETTINGS.min_reads}, min_fold {SETTINGS.min_fold:g}, "
        f"alpha {SETTINGS.alpha:g} (Holm, per unit), detection_probability {SETTINGS.detection_probability:g}"
    )
    print(f"background: {N_BACKGROUND} reagent taxa, log-normal shares (σ 1.5), in the test and every NTC")
    print()
    print(f"1. Per-lot false-FAIL rate of sterile lots ({args.lots:,} lots each; goal ≤ 1 %)")
    header = (
        f"{'scenario':38s} {'test':>6s} {'NTC':>6s} {'kitome RPM NTC/test':>20s} {'BEFORE':>8s} "
        f"{'AFTER':>8s} {'AFTER 95% upper':>16s} {'no Holm':>8s}"
    )
    print(header)
    for scenario in SCENARIOS:
        before = _before_lot(scenario.test_fragments, scenario.control_fragments, scenario.controls)
        result = false_fail(scenario, args.lots, rng, SETTINGS, compare=before)
        assert result.compared is not None
        print(
            f"{scenario.name:38s} {scenario.test_fragments / 1e6:5.1f}M "
            f"{scenario.control_fragments / 1e6:5.2f}M "
            f"{scenario.control_kitome_rpm:>10,.0f}/{scenario.test_kitome_rpm:<9,.0f} "
            f"{100 * result.compared / args.lots:7.1f}% {100 * result.rate:7.2f}% "
            f"{100 * result.upper95:15.2f}% {100 * result.nominal / args.lots:7.1f}%"
        )
    print(
        "   (no Holm: AFTER's fold and read rules with each taxon's unadjusted p ≤ α: "
        "what the correction buys)"
    )
    print()
    print(
        f"2. Detection probability against contaminant level ({args.curve_lots:,} lots per level, "
        "with the background)"
    )
    for curve in CURVES:
        scenario = curve.scenario
        before = _before_contaminant(scenario.test_fragments, scenario.control_fragments, scenario.controls)
        result = detection_curve(
            curve, args.curve_lots, rng, SETTINGS, compare=before, compare_lod=_before_lod(curve)
        )
        assert result.compared is not None
        print(f"   {curve.name}")
        print(f"   {'CFU/mL':>8s} {'BEFORE':>8s} {'AFTER':>8s}")
        for level, b, a in zip(curve.levels, result.compared, result.detected, strict=True):
            print(f"   {level:8.2f} {100 * b:7.1f}% {100 * a:7.1f}%")
        before_read, after_read = lod95_off_curve(curve.levels, result.compared), result.lod95
        shown = lambda v: "not reached" if v is None else f"{v:.2f} CFU/mL"  # noqa: E731
        print(f"   LOD95 read off the curve: BEFORE {shown(before_read)}, AFTER {shown(after_read)}")
        print(
            f"   LOD the rule reports (median of 50 runs): BEFORE {result.compared_lod:.3g} CFU/mL, "
            f"AFTER {result.reported_lod:.3g} CFU/mL (predicted, with the sampling floor "
            f"{sampling_floor(curve.volume_ml, 0.95):.2f} CFU/mL)"
        )
        print()
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

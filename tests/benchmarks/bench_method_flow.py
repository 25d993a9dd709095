"""Operating characteristics of the flow, dose and trend rules of issue 17 (items 5-8), before and after.

Not a test (no assertions on figures): it prints a validation summary a QA reviewer could file. Each
rule is simulated at the settings stated beside its table, and main's rule before issue 17 is
reimplemented here (``_old_*``) so the two run on the same simulated lots. The new rules are the
package's own functions. Seeds are fixed: the figures repeat.

1. Microbial flow (:mod:`rapidrelease.flow.microbial`): a test tube and its sterile-medium control
   of 0.05 mL each, background events Poisson at the same rate per mL in both.
   - old: DETECTED when the test's count x ≥ ⌊U₉₅(c)·v_t/v_c⌋ + 1, U₉₅ the exact one-sided 95 %
     upper bound of the control's Poisson mean;
   - new: DETECTED when P(X ≥ x), X ~ Bin(x + c, v_t/(v_t + v_c)), is ≤ α = 0.01.
   Printed: the false-DETECTED rate of sterile tubes per background level (simulated, and exact by
   summing over the control's count), and the detection probability against microbe concentration
   at a background of 10 events per tube, with the LOD95 read off the curve.
2. Potency (:mod:`rapidrelease.flow.thresholds`, :mod:`rapidrelease.flow.metrics`): the IFN-γ+
   threshold is the unstimulated tube's 99.5th percentile (nearest rank) of its CAR+ T cells (100
   to 10,000); the stimulated tube holds 3,000 (``--stimulated``), of which a true share responds
   (responders fully resolved above the non-responders, which share the control's distribution).
   The reported value is stimulated % − unstimulated % above the threshold, rounded half-up to
   0.1 % and judged ≥ 5 %.
   - old: any control with ≥ 100 events (the panel's min_events); a stimulated tube below its control
     is INCONCLUSIVE;
   - new: the control needs ⌈10/(1 − 0.995)⌉ = 2,000 events (else the metric is INCONCLUSIVE: an
     assay-validity control); net ≤ 0 is reported as 0 % (FAIL against the ≥ 5 % minimum).
   The threshold's exceedance is drawn exactly: the share of non-responders above the r-th of n
   control values is Beta(n − r + 1, r) whatever their distribution, and the control has n − r above.
3. Dose (:func:`rapidrelease.release.dose.dose_interval`): 2.5×10⁹ viable cells counted with a true
   CV of 5, 7.5 or 10 %, 90 % CD3+ of 10,000 live events and 40 % CAR+ of the CD3+ events.
   - old: the count taken as exact, the fractions' Wilson bounds multiplied;
   - new: the configured CV (7.5 %, the default) and each fraction's binomial sampling, on the log scale.
   Printed: coverage of the true dose by the 95 % interval.
4. Trends (:func:`rapidrelease.report.trends.individuals_limits`): in-control lots N(μ, σ); limits
   mean ± 3·MR̄/1.128 from the baseline lots, then one further in-control lot judged against them.
   - old: limits from ≥ 2 baseline lots, the baseline the release candidates only;
   - new: no limits below 20 baseline lots (nothing is flagged, the chart says so), the baseline every
     decided lot less those excluded for an assignable cause.
   Printed: the false-flag rate with 2 and 20 baseline lots, and σ as estimated from release
   candidates only against all decided lots, for a specification at μ ± 2σ (4.6 % of lots fail it).

    .venv/bin/python tests/benchmarks/bench_method_flow.py [--lots 20000] [--stimulated 3000]

A few seconds on one core.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from rapidrelease.flow.microbial import conditional_p_value, critical_count
from rapidrelease.flow.thresholds import min_control_events
from rapidrelease.records import Metric, Population
from rapidrelease.release.dose import dose_interval
from rapidrelease.report.trends import MIN_BASELINE_LOTS, individuals_limits
from rapidrelease.stats import mean_detected, upper_bound, wilson_interval
from rapidrelease.validation.flow_characteristics import (
    critical_counts,
    exact_false_rate,
    potency_net,
    reported_pass,
)

ALPHA = 0.01
VOLUME_ML = 0.05
BACKGROUNDS = (0.5, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0)  # expected background events per tube
CURVE_BACKGROUND = 10.0
CONCENTRATIONS = (0, 50, 100, 150, 200, 300, 400, 500, 600, 800)  # microbes per mL of test
PERCENTILE = 99.5
POTENCY_LIMIT = 5.0
CONTROL_SIZES = (100, 500, 2_000, 3_000, 10_000)  # CAR+ T cells per tube (both tubes)
TRUE_RESPONSES = (0.0, 2.0, 4.0, 6.0, 8.0)  # % of CAR+ T cells
COUNTER_CVS = (5.0, 7.5, 10.0)
CONFIGURED_CV = 7.5


# ----------------------------------------------------------------------------------- microbial flow


def _old_threshold(control: int, scale: float = 1.0) -> int:
    """main before issue 17: DETECTED above the 95 % upper bound of the control's mean, scaled."""
    return math.floor(upper_bound(control, 0.95) * scale) + 1


def _new_threshold(control: int, share: float = 0.5) -> int:
    return critical_count(control, share, ALPHA)


def _thresholds(rule, highest: int) -> np.ndarray:
    return np.array([rule(c) for c in range(highest + 1)])


def microbial(rng: np.random.Generator, lots: int) -> None:
    highest = int(max(BACKGROUNDS) + 15 * math.sqrt(max(BACKGROUNDS)) + 60)
    # the new rule's table is the package's (rapidrelease validate-method runs the same)
    old, new = _thresholds(_old_threshold, highest), critical_counts(highest, ALPHA)
    # the exact test at the old rule's own false-call rate, to compare power at equal size
    new_10 = critical_counts(highest, 0.10)
    print("1. MICROBIAL FLOW: sterile tubes called DETECTED (test and medium 0.05 mL each)")
    print(f"   {lots:,} simulated sterile tubes per level; exact rate in brackets; stated α = {ALPHA}")
    print(f"   {'background/tube':>16} {'per mL':>8}   {'old rule (U95)':>20}   {'new (exact cond.)':>20}")
    worst_old = worst_new = 0.0
    for background in BACKGROUNDS:
        x = rng.poisson(background, lots)
        c = rng.poisson(background, lots)
        old_rate = float(np.mean(x >= old[c]))
        # DETECTED iff x reaches the package's critical count (its p-value falls as x rises)
        new_rate = float(np.mean(x >= new[c]))
        exact_old, exact_new = exact_false_rate(background, old), exact_false_rate(background, new)
        worst_old, worst_new = max(worst_old, exact_old), max(worst_new, exact_new)
        print(
            f"   {background:>16g} {background / VOLUME_ML:>8.0f}   "
            f"{100 * old_rate:>7.2f} % [{100 * exact_old:5.2f} %]   "
            f"{100 * new_rate:>7.2f} % [{100 * exact_new:5.2f} %]"
        )
    print(
        f"   worst level: old {100 * worst_old:.1f} %, new {100 * worst_new:.2f} % (≤ α = {100 * ALPHA:g} %)"
    )
    for x, c in ((7, 0), (15, 4), (24, 10)):  # the table agrees with the p-value it comes from
        assert (conditional_p_value(x, c, 0.5) <= ALPHA) == (x >= new[c])

    print(
        "\n   Detection probability against microbe concentration, background "
        f"{CURVE_BACKGROUND:g} events/tube"
    )
    print(f"   ({CURVE_BACKGROUND / VOLUME_ML:.0f}/mL) in both tubes; {lots:,} contaminated tubes per level")
    print(f"   {'microbes/mL':>12} {'added events':>13}   {'old':>8}   {'new':>8}   {'new, α=0.10':>11}")
    curve_old, curve_new, curve_10 = [], [], []
    for concentration in CONCENTRATIONS:
        added = concentration * VOLUME_ML
        x = rng.poisson(CURVE_BACKGROUND + added, lots)
        c = rng.poisson(CURVE_BACKGROUND, lots)
        detected_old = float(np.mean(x >= old[c]))
        detected_new = float(np.mean(x >= new[c]))
        curve_10.append(float(np.mean(x >= new_10[c])))
        curve_old.append(detected_old)
        curve_new.append(detected_new)
        print(
            f"   {concentration:>12} {added:>13g}   "
            f"{100 * detected_old:>6.1f} %   {100 * detected_new:>6.1f} %   {100 * curve_10[-1]:>9.1f} %"
        )
    for name, curve in (("old", curve_old), ("new", curve_new), ("new at α = 0.10", curve_10)):
        print(f"   LOD95 read off the {name} curve: {_lod95(curve)}")
    # what a run with the median medium count (10 events) reports as its LOD
    k = _new_threshold(10)
    reported = (mean_detected(k, 0.95) - 10) / VOLUME_ML
    k_old = _old_threshold(10)
    reported_old = (mean_detected(k_old, 0.95) - 10) / VOLUME_ML
    print(
        f"   a run whose medium shows 10 events reports LOD {reported:.0f}/mL (detected from {k} test "
        f"events; old: from {k_old}, LOD {reported_old:.0f}/mL)"
    )


def _lod95(curve: list[float]) -> str:
    """The lowest concentration of the grid detected in ≥ 95 % of tubes, by linear interpolation."""
    for i, p in enumerate(curve):
        if p >= 0.95 and i > 0:
            c0, c1, p0 = CONCENTRATIONS[i - 1], CONCENTRATIONS[i], curve[i - 1]
            return f"{c0 + (0.95 - p0) / (p - p0) * (c1 - c0):.0f} microbes/mL"
    return f"above {CONCENTRATIONS[-1]} microbes/mL"


# ------------------------------------------------------------------------------------------ potency


def _potency(
    rng: np.random.Generator, lots: int, n: int, response_pct: float, stimulated_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Net % above the threshold (unclipped; the package's simulation, rapidrelease.validation.
    flow_characteristics) and whether the old rule called it INCONCLUSIVE (stimulated below control)."""
    net, _ = potency_net(rng, lots, n, response_pct, stimulated_n, PERCENTILE)
    return net, net < 0


def _reported_pass(net: np.ndarray) -> np.ndarray:
    """≥ 5 % after rounding half-up to 0.1 %, as the specification judges it."""
    return reported_pass(net, POTENCY_LIMIT)


def potency(rng: np.random.Generator, lots: int, stimulated_n: int) -> None:
    needed = min_control_events(PERCENTILE)
    print(f"\n2. POTENCY: IFN-γ+ of CAR+ T cells net of the unstimulated tube, judged ≥ {POTENCY_LIMIT:g} %")
    print(
        f"   threshold: the control's {PERCENTILE}th percentile; the new rule needs {needed:,} control events"
    )
    print(f"   stimulated tube {stimulated_n:,} CAR+ T cells (DEMO-002's potency tubes hold ~3,000)")
    print(f"   {lots:,} lots per cell; PASS = reported ≥ 5.0 %, INC = INCONCLUSIVE, FAIL otherwise")
    print(
        f"   {'control n':>11} {'true %':>7}   {'old PASS':>9} {'old INC':>8} {'old FAIL':>9}   "
        f"{'new PASS':>9} {'new INC':>8} {'new FAIL':>9}"
    )
    for n in CONTROL_SIZES:
        for response in TRUE_RESPONSES:
            net, old_inconclusive = _potency(rng, lots, n, response, stimulated_n)
            passed = _reported_pass(net)
            old_pass = float(np.mean(passed & ~old_inconclusive))
            old_inc = float(np.mean(old_inconclusive))
            if n < needed:
                new_pass, new_inc = 0.0, 1.0  # the control is refused: the assay is invalid, said so
            else:
                new_pass, new_inc = float(np.mean(passed)), 0.0
            print(
                f"   {n:>11,} {response:>7g}   {100 * old_pass:>8.2f}% {100 * old_inc:>7.1f}% "
                f"{100 * (1 - old_pass - old_inc):>8.1f}%   {100 * new_pass:>8.2f}% {100 * new_inc:>7.1f}% "
                f"{100 * (1 - new_pass - new_inc):>8.1f}%"
            )
    print(
        "   (new INC at < 2,000 control events is the control refused as too small for its 99.5th\n"
        "   percentile, not a result of the lot: the lab must acquire more events, not retest the lot)"
    )


# --------------------------------------------------------------------------------------------- dose


def _fraction(x: int, n: int) -> tuple[float, float, float, Metric]:
    lo, hi = wilson_interval(x, n)
    entry = Metric(100 * x / n, "%", "percent", numerator=Population("a", x), denominator=Population("b", n))
    return 100 * x / n, 100 * lo, 100 * hi, entry


def dose(rng: np.random.Generator, lots: int) -> None:
    cells, cd3, car, events = 2.5e9, 0.9, 0.4, 10_000
    truth = cells * cd3 * car
    print("\n3. DOSE: coverage of the true dose by the printed 95 % interval")
    print(
        f"   {cells:.2g} viable cells, {100 * cd3:g} % CD3+ of {events:,} live events, {100 * car:g} % CAR+ "
        f"of CD3+; new rule configured with a {CONFIGURED_CV:g} % count CV; {lots:,} lots per row"
    )
    print(
        f"   {'true count CV':>13}   {'old (count exact)':>18}   "
        f"{'new (CV 7.5 %)':>15}   {'new (CV = truth)':>16}"
    )
    for cv_pct in COUNTER_CVS:
        cv = cv_pct / 100
        sigma = math.sqrt(math.log1p(cv * cv))
        held_old = held_new = held_true = 0
        for _ in range(lots):
            counted = cells * rng.lognormal(-0.5 * sigma * sigma, sigma)
            x_cd3 = int(rng.binomial(events, cd3))
            x_car = int(rng.binomial(x_cd3, car))
            fractions = [_fraction(x_cd3, events), _fraction(x_car, x_cd3)]
            low = counted * math.prod(lo / 100 for _, lo, _, _ in fractions)
            high = counted * math.prod(hi / 100 for _, _, hi, _ in fractions)
            held_old += low <= truth <= high
            low, high = dose_interval(counted, fractions, CONFIGURED_CV)
            held_new += low <= truth <= high
            low, high = dose_interval(counted, fractions, cv_pct)
            held_true += low <= truth <= high
        print(
            f"   {cv_pct:>12g}%   {100 * held_old / lots:>17.1f}%   {100 * held_new / lots:>14.1f}%   "
            f"{100 * held_true / lots:>15.1f}%"
        )


# ------------------------------------------------------------------------------------------- trends


def _flag_rate(rng: np.random.Generator, lots: int, n_baseline: int) -> tuple[float, float | None]:
    """Share of in-control lots beyond limits from ``n_baseline`` lots, old and new rule on the same
    charts; the new rule's None when it draws no limits."""
    flagged_old = flagged_new = 0
    drawn = True
    for _ in range(lots):
        values = rng.normal(0.0, 1.0, n_baseline + 1)
        old = individuals_limits(list(values[:-1]), min_values=2)
        new = individuals_limits(list(values[:-1]))
        flagged_old += not old.lower <= values[-1] <= old.upper
        drawn = new is not None
        flagged_new += new is not None and not new.lower <= values[-1] <= new.upper
    return flagged_old / lots, flagged_new / lots if drawn else None


def trends(rng: np.random.Generator, lots: int) -> None:
    lots = min(lots, 10_000)
    print("\n4. TRENDS: in-control lots flagged beyond the individuals chart's ±3σ limits")
    print(f"   in-control lots N(μ, σ); {lots:,} charts per row; nominal rate for known μ, σ: 0.27 %")
    new_rule = f"new (≥ {MIN_BASELINE_LOTS} lots)"
    print(f"   {'baseline lots':>13}   {'old (≥ 2 lots)':>15}   {new_rule:>16}")
    for n in (2, 5, 10, 20, 30):
        old, new = _flag_rate(rng, lots, n)
        shown = "no limits, said" if new is None else f"{100 * new:.1f} %"
        print(f"   {n:>13}   {100 * old:>13.1f} %   {shown:>16}")
    # baseline of release candidates only: lots outside a specification at μ ± 2σ are left out
    ratio_rc, ratio_all = [], []
    for _ in range(min(lots, 4_000)):
        values = rng.normal(0.0, 1.0, 40)
        candidates = values[np.abs(values) <= 2.0]
        ratio_rc.append(individuals_limits(list(candidates), min_values=2).sigma)
        ratio_all.append(individuals_limits(list(values), min_values=2).sigma)
    print(
        f"   σ from 40 lots, specification at μ ± 2σ: release candidates only {np.mean(ratio_rc):.3f}σ, "
        f"every decided lot {np.mean(ratio_all):.3f}σ"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=20_000, help="simulated lots per setting")
    parser.add_argument(
        "--stimulated", type=int, default=3_000, help="CAR+ T cells in the potency's stimulated tube"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(20261207)
    started = time.perf_counter()
    print("VALIDATION SUMMARY: rapidrelease flow, dose and trend rules (issue 17 items 5-8)")
    print("old = main's rule before issue 17 (reimplemented here); new = this branch's rapidrelease\n")
    microbial(rng, args.lots)
    potency(rng, args.lots, args.stimulated)
    dose(rng, max(args.lots // 4, 1_000))
    trends(rng, args.lots)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

"""Operating characteristics of the sequencing sterility calls, measured by simulation (issue 17).

Two rules are run side by side on the same simulated count tables:

- BEFORE: the rule of main up to issue 17 (git show main:scripts/rapidrelease/sterility/calls.py),
  re-implemented here and labelled as such: with two or more negative controls
  z = (test RPM − controls' mean RPM) / max(SD, 1 RPM) ≥ 3; with one, fold ≥ 10 and a Poisson p
  < 0.01 under the control's upper 95 % rate; ≥ 3 reads; no correction for the taxa tested. Its LOD:
  the Poisson mean detected with 95 % at its threshold over the positive control's point sensitivity.
- AFTER: rapidrelease.sterility.calls as it is (call_organisms, assess_positive_control,
  organism_lod): the conditional binomial test against the pooled controls with depth as offset
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
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rapidrelease.config.run import DetectionSettings, Unit
from rapidrelease.reads.taxonomy import Taxonomy
from rapidrelease.stats import mean_detected, tail_at_least, upper_bound
from rapidrelease.sterility.calls import (
    DETECTED,
    LodContext,
    ReferenceFacts,
    UnitReads,
    assess_positive_control,
    call_organisms,
    organism_lod,
    sampling_floor,
)

N_BACKGROUND = 300
CONTAMINANT = 999_001  # a species no control holds
SPIKE = 999_002  # the positive control's organism
HELD = 900_000  # minimizers held per species: a 2.7 Mb genome


def _facts() -> ReferenceFacts:
    """A taxonomy of 300 reagent ("kitome") species in 30 genera, a contaminant and a spike organism."""
    rows: list[tuple[int, int, str, str, str]] = [
        (1, 1, "no rank", "root", ""),
        (2, 1, "superkingdom", "Bacteria", "bacteria"),
    ]
    for genus in range(30):
        rows.append((10_000 + genus, 2, "genus", f"Kitomegenus{genus}", ""))
    for taxon in range(N_BACKGROUND):
        rows.append(
            (100_000 + taxon, 10_000 + taxon % 30, "species", f"Kitomegenus{taxon % 30} sp{taxon}", "")
        )
    rows.append((20_000, 2, "genus", "Contaminans", ""))
    rows.append((CONTAMINANT, 20_000, "species", "Contaminans verus", ""))
    rows.append((SPIKE, 20_000, "species", "Contaminans spikei", ""))
    taxonomy = Taxonomy.from_rows(rows)
    per_taxon = np.zeros(len(taxonomy), dtype=np.int64)
    species = [i for i, rank in enumerate(taxonomy.rank) if rank == "species"]
    per_taxon[species] = HELD
    return ReferenceFacts(taxonomy, taxonomy.clade_sums(per_taxon), 3.0)


FACTS = _facts()
BACKGROUND_TAXIDS = np.arange(100_000, 100_000 + N_BACKGROUND)
_ROW_CACHE: dict[int, tuple[str, str]] = {}


def _row(taxid: int, reads: int) -> dict:
    """A taxa-table row of ``reads`` pairs spread over the genome (a real organism's reads)."""
    if taxid not in _ROW_CACHE:
        node = FACTS.node_of(taxid)
        _ROW_CACHE[taxid] = (str(FACTS.taxonomy.name[node]), str(FACTS.taxonomy.rank[node]))
    name, rank = _ROW_CACHE[taxid]
    distinct = min(40 * reads, HELD)
    return {
        "taxid": taxid,
        "name": name,
        "rank": rank,
        "category": "bacteria",
        "reads_direct": reads,
        "reads_clade": reads,
        "kmer_hits_clade": 120 * reads,
        "distinct_minimizers_clade": distinct,
        "index_minimizers_clade": HELD,
        "breadth": distinct / HELD,
    }


def _unit(unit_id: str, role: str, fragments: int, counts: dict[int, int], **spike) -> UnitReads:
    unit = Unit("LOT", unit_id, "sterility_reads", role, Path(f"{unit_id}.fq"), **spike)
    return UnitReads(unit, fragments, {t: _row(t, r) for t, r in counts.items() if r > 0})


@dataclass(frozen=True)
class Scenario:
    """A sterile lot's sequencing run: depths, controls and the reagent background (kitome)."""

    name: str
    test_fragments: int
    control_fragments: int
    controls: int
    control_kitome_rpm: float  # all 300 reagent taxa together, in each negative control
    test_kitome_rpm: float  # the same taxa in the test (lower when the product's DNA dilutes them)
    cv: float  # library-to-library variation of each taxon's rate (gamma), beyond Poisson
    setting_cv: float = 0.3  # the background_cv the rule is configured with


def _kitome_shares(rng: np.random.Generator) -> np.ndarray:
    """Each reagent taxon's share of the kitome: log-normal (σ 1.5), as a few taxa dominate a kit."""
    shares = rng.lognormal(0.0, 1.5, N_BACKGROUND)
    return shares / shares.sum()


def _library(rng: np.random.Generator, rpm: np.ndarray, fragments: int, cv: float) -> np.ndarray:
    rate = rpm * fragments / 1e6
    if cv > 0:
        rate = rate * rng.gamma(1 / cv**2, cv**2, rate.size)
    return rng.poisson(rate)


def _sterile_lot(rng: np.random.Generator, scenario: Scenario, shares: np.ndarray):
    """Counts of the 300 reagent taxa in the test and each negative control (taxid → reads)."""
    test = _library(rng, shares * scenario.test_kitome_rpm, scenario.test_fragments, scenario.cv)
    controls = [
        _library(rng, shares * scenario.control_kitome_rpm, scenario.control_fragments, scenario.cv)
        for _ in range(scenario.controls)
    ]
    return test, controls


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


# ------------------------------------------------------------------------------- AFTER (the package)


def after_calls(
    test_counts: dict[int, int],
    d_test: int,
    controls: list[dict[int, int]],
    d_control: int,
    settings: DetectionSettings | None = None,
):
    test = _unit("T", "test", d_test, test_counts)
    negatives = [_unit(f"NC{i}", "negative_control", d_control, c) for i, c in enumerate(controls, 1)]
    calls = call_organisms(test, negatives, "sterility_reads", "shotgun", settings or SETTINGS, FACTS)
    return test, negatives, calls


SETTINGS = DetectionSettings()


def false_fail(scenario: Scenario, lots: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Per-lot false-FAIL rates of BEFORE and AFTER on sterile lots, and AFTER's per-lot rate of
    taxa with a nominal (unadjusted) p ≤ α, to show what Holm buys."""
    settings = replace(SETTINGS, background_cv=scenario.setting_cv)
    before = after = nominal = 0
    for _ in range(lots):
        shares = _kitome_shares(rng)
        test, controls = _sterile_lot(rng, scenario, shares)
        d_controls = [scenario.control_fragments] * scenario.controls
        before += bool(before_detected(test, scenario.test_fragments, controls, d_controls).any())
        as_dict = lambda counts: dict(zip(BACKGROUND_TAXIDS.tolist(), counts.tolist(), strict=True))  # noqa: E731
        _, _, calls = after_calls(
            as_dict(test),
            scenario.test_fragments,
            [as_dict(c) for c in controls],
            scenario.control_fragments,
            settings,
        )
        after += any(c.call == DETECTED for c in calls)
        nominal += any(
            c.p_value is not None
            and c.p_value <= SETTINGS.alpha
            and c.reads >= 3
            and (c.fold is None or c.fold >= 10)
            for c in calls
        )
    return before / lots, after / lots, nominal / lots


def _wilson_upper(k: int, n: int) -> float:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return min(1.0, centre + half)


@dataclass(frozen=True)
class Curve:
    """A detection-probability curve: contaminant concentrations and the fraction of lots detecting it."""

    name: str
    scenario: Scenario
    sensitivity_rpm_per_cfu: float  # RPM of the test per CFU/mL of the organism (after extraction)
    volume_ml: float
    pc_concentration: float
    levels: tuple[float, ...]


def _lod95(levels: tuple[float, ...], detected: list[float]) -> float | None:
    """The lowest concentration detected in 95 % of lots, log-linearly interpolated on the curve."""
    for i, p in enumerate(detected):
        if p >= 0.95:
            if i == 0:
                return levels[0]
            p0, p1 = detected[i - 1], p
            x0, x1 = math.log(levels[i - 1]), math.log(levels[i])
            return math.exp(x0 + (0.95 - p0) / (p1 - p0) * (x1 - x0)) if p1 > p0 else levels[i]
    return None


def detection_curve(curve: Curve, lots: int, rng: np.random.Generator):
    """Per level: P(detected) for BEFORE and AFTER; and the LODs each rule reports for its runs."""
    scenario = curve.scenario
    settings = replace(SETTINGS, tested_volume_ml=curve.volume_ml)
    reads_per_organism = curve.sensitivity_rpm_per_cfu * scenario.test_fragments / 1e6 / curve.volume_ml
    d_pc = scenario.control_fragments
    pc_mean = curve.pc_concentration * curve.sensitivity_rpm_per_cfu * d_pc / 1e6
    spike = {
        "spike_organism": str(SPIKE),
        "spike_concentration": curve.pc_concentration,
        "spike_unit": "CFU/mL",
    }
    before_rates, after_rates = [], []
    before_lods, after_lods = [], []
    for level in curve.levels:
        hits_before = hits_after = 0
        for _ in range(lots):
            shares = _kitome_shares(rng)
            test, controls = _sterile_lot(rng, scenario, shares)
            organisms = rng.poisson(level * curve.volume_ml)  # in the tested volume: the sampling floor
            contaminant = int(rng.poisson(organisms * reads_per_organism)) if organisms else 0
            test_counts = dict(zip(BACKGROUND_TAXIDS.tolist(), test.tolist(), strict=True))
            test_counts[CONTAMINANT] = contaminant
            d_controls = [scenario.control_fragments] * scenario.controls
            all_test = np.append(test, contaminant)
            all_controls = [np.append(c, 0) for c in controls]
            hits_before += bool(
                before_detected(all_test, scenario.test_fragments, all_controls, d_controls)[-1]
            )
            _, negatives, calls = after_calls(
                test_counts,
                scenario.test_fragments,
                [dict(zip(BACKGROUND_TAXIDS.tolist(), c.tolist(), strict=True)) for c in controls],
                scenario.control_fragments,
            )
            hits_after += any(c.taxid == CONTAMINANT and c.call == DETECTED for c in calls)
            if level == curve.levels[0] and len(after_lods) < 50:
                # the LOD each rule would report for such a run (from its positive control)
                pc_reads = int(rng.poisson(pc_mean))
                before_lods.append(
                    before_lod(
                        scenario.test_fragments, scenario.controls, pc_reads, d_pc, curve.pc_concentration
                    )
                )
                pc = _unit("PC", "positive_control", d_pc, {SPIKE: pc_reads}, **spike)
                result = assess_positive_control(pc, negatives, "shotgun", settings, FACTS)
                context = LodContext(
                    scenario.test_fragments,
                    tuple(negatives),
                    max(1, len(calls)),
                    (result,),
                    "shotgun",
                    sampling_floor(curve.volume_ml, settings.detection_probability),
                    {},
                    settings,
                    FACTS,
                    curve.volume_ml,
                )
                after_lods.append(organism_lod(context, CONTAMINANT).value)
        before_rates.append(hits_before / lots)
        after_rates.append(hits_after / lots)
    return before_rates, after_rates, statistics.median(before_lods), statistics.median(after_lods)


SCENARIOS = (
    # the case: reagent taxa at the same level in test and controls (1 % of reads: 10,000 RPM)
    Scenario("same level, 2 NTCs, Poisson", 10_000_000, 1_000_000, 2, 10_000, 10_000, 0.0),
    Scenario("same level, 3 NTCs, Poisson", 10_000_000, 1_000_000, 3, 10_000, 10_000, 0.0),
    Scenario("same level, 2 NTCs, CV 0.3", 10_000_000, 1_000_000, 2, 10_000, 10_000, 0.3),
    Scenario("same level, 3 NTCs, CV 0.3", 10_000_000, 1_000_000, 3, 10_000, 10_000, 0.3),
    Scenario("same level, 3 NTCs, CV 0.5", 10_000_000, 1_000_000, 3, 10_000, 10_000, 0.5),
    # the same, with the rule configured to the CV a validation measured
    Scenario("  ... background_cv set to 0.5", 10_000_000, 1_000_000, 3, 10_000, 10_000, 0.5, 0.5),
    # realistic: the product's DNA dilutes the reagents' 100-fold in the test
    Scenario("diluted 100x, 2 NTCs, CV 0.3", 10_000_000, 1_000_000, 2, 10_000, 100, 0.3),
    # shallow: the demo's scale of a test and low-input controls
    Scenario("shallow, 2 NTCs, CV 0.3", 200_000, 50_000, 2, 10_000, 10_000, 0.3),
)

CURVES = (
    Curve(
        "deep (10 M test, 3 NTCs of 1 M, kitome diluted 100x, 1 RPM per CFU/mL, V 1 mL)",
        Scenario("deep", 10_000_000, 1_000_000, 3, 10_000, 100, 0.3),
        1.0,
        1.0,
        100.0,
        (1.0, 3.0, 5.0, 7.0, 10.0, 12.0, 15.0),
    ),
    Curve(
        "shallow (200 k test, 2 NTCs of 50 k, 10 RPM per CFU/mL, V 10 mL)",
        Scenario("shallow", 200_000, 50_000, 2, 10_000, 10_000, 0.3),
        10.0,
        10.0,
        100.0,
        (1.0, 4.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0),
    ),
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
        before, after, nominal = false_fail(scenario, args.lots, rng)
        upper = _wilson_upper(round(after * args.lots), args.lots)
        print(
            f"{scenario.name:38s} {scenario.test_fragments / 1e6:5.1f}M "
            f"{scenario.control_fragments / 1e6:5.2f}M "
            f"{scenario.control_kitome_rpm:>10,.0f}/{scenario.test_kitome_rpm:<9,.0f} {100 * before:7.1f}% "
            f"{100 * after:7.2f}% {100 * upper:15.2f}% {100 * nominal:7.1f}%"
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
        before_rates, after_rates, before_claim, after_claim = detection_curve(curve, args.curve_lots, rng)
        print(f"   {curve.name}")
        print(f"   {'CFU/mL':>8s} {'BEFORE':>8s} {'AFTER':>8s}")
        for level, b, a in zip(curve.levels, before_rates, after_rates, strict=True):
            print(f"   {level:8.2f} {100 * b:7.1f}% {100 * a:7.1f}%")
        before_read, after_read = _lod95(curve.levels, before_rates), _lod95(curve.levels, after_rates)
        shown = lambda v: "not reached" if v is None else f"{v:.2f} CFU/mL"  # noqa: E731
        print(f"   LOD95 read off the curve: BEFORE {shown(before_read)}, AFTER {shown(after_read)}")
        print(
            f"   LOD the rule reports (median of 50 runs): BEFORE {before_claim:.3g} CFU/mL, "
            f"AFTER {after_claim:.3g} CFU/mL (predicted, with the sampling floor "
            f"{sampling_floor(curve.volume_ml, 0.95):.2f} CFU/mL)"
        )
        print()
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

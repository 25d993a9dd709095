"""Operating characteristics of the sequencing sterility calls, by simulation on count tables.

The calls see count tables, so the simulation draws them: a sterile lot's test and negative
controls share ``N_BACKGROUND`` reagent ("kitome") taxa whose shares are log-normal (σ 1.5, a few
taxa dominate a kit); each library's reads of a taxon are Poisson around its rate × depth, the rate
varying between libraries by a gamma factor of coefficient of variation ``Scenario.cv`` (kit
contamination varies more than Poisson sampling). A contaminated lot adds one organism no control
holds: Poisson(c·V) organisms in the tested volume, each giving Poisson reads at the stated
sensitivity (the sampling floor, then the reads).

The rule is the package's own (:func:`rapidrelease.sterility.calls.call_organisms`,
:func:`~rapidrelease.sterility.calls.assess_positive_control`,
:func:`~rapidrelease.sterility.calls.organism_lod`): a lot is falsely FAILED when any taxon of a
sterile test is DETECTED. A ``compare`` callback sees the same simulated counts, so a benchmark can
run another rule beside it on identical lots.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rapidrelease.config.run import DetectionSettings, Unit
from rapidrelease.config.vocabulary import DETECTED
from rapidrelease.reads.taxonomy import Taxonomy
from rapidrelease.stats import wilson_interval
from rapidrelease.sterility.calls import (
    LodContext,
    OrganismCall,
    ReferenceFacts,
    UnitReads,
    assess_positive_control,
    call_organisms,
    organism_lod,
    sampling_floor,
)

__all__ = [
    "N_BACKGROUND",
    "CONTAMINANT",
    "SPIKE",
    "Scenario",
    "Curve",
    "FalseFailRate",
    "DetectionCurve",
    "SCENARIOS",
    "CURVES",
    "simulated_reference",
    "false_fail",
    "detection_curve",
    "lod95_off_curve",
]

N_BACKGROUND = 300
"""Reagent taxa shared by every test and negative control of a simulated lot."""
CONTAMINANT = 999_001  # a species no control holds
SPIKE = 999_002  # the positive control's organism
HELD = 900_000  # minimizers held per species: a 2.7 Mb genome
_BACKGROUND_TAXIDS = tuple(range(100_000, 100_000 + N_BACKGROUND))


@functools.cache
def simulated_reference() -> ReferenceFacts:
    """A taxonomy of 300 reagent species in 30 genera, a contaminant and a spike organism, each
    species holding ``HELD`` minimizers."""
    rows: list[tuple[int, int, str, str, str]] = [
        (1, 1, "no rank", "root", ""),
        (2, 1, "superkingdom", "Bacteria", "bacteria"),
    ]
    rows += [(10_000 + genus, 2, "genus", f"Kitomegenus{genus}", "") for genus in range(30)]
    rows += [
        (taxid, 10_000 + i % 30, "species", f"Kitomegenus{i % 30} sp{i}", "")
        for i, taxid in enumerate(_BACKGROUND_TAXIDS)
    ]
    rows.append((20_000, 2, "genus", "Contaminans", ""))
    rows.append((CONTAMINANT, 20_000, "species", "Contaminans verus", ""))
    rows.append((SPIKE, 20_000, "species", "Contaminans spikei", ""))
    taxonomy = Taxonomy.from_rows(rows)
    per_taxon = np.zeros(len(taxonomy), dtype=np.int64)
    per_taxon[[i for i, rank in enumerate(taxonomy.rank) if rank == "species"]] = HELD
    return ReferenceFacts(taxonomy, taxonomy.clade_sums(per_taxon), 3.0)


@functools.cache
def _names(taxid: int) -> tuple[str, str]:
    facts = simulated_reference()
    node = facts.node_of(taxid)
    assert node is not None
    return str(facts.taxonomy.name[node]), str(facts.taxonomy.rank[node])


def _row(taxid: int, reads: int) -> dict[str, object]:
    """A taxa-table row of ``reads`` pairs spread over the genome (a real organism's reads)."""
    name, rank = _names(taxid)
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


def _unit(unit_id: str, role: str, fragments: int, counts: Mapping[int, int], **spike: object) -> UnitReads:
    unit = Unit("LOT", unit_id, "sterility_reads", role, Path(f"{unit_id}.fq"), **spike)  # type: ignore[arg-type]
    return UnitReads(unit, fragments, {t: _row(t, r) for t, r in counts.items() if r > 0})


@dataclass(frozen=True)
class Scenario:
    """A sterile lot's sequencing run: depths (fragments), negative controls and the reagent background.

    ``control_kitome_rpm`` and ``test_kitome_rpm`` are all reagent taxa together in each negative
    control and in the test (lower when the product's DNA dilutes them); ``cv`` is the true
    between-library variation of each taxon's rate, ``setting_cv`` the ``background_cv`` the rule
    is configured with.
    """

    name: str
    test_fragments: int
    control_fragments: int
    controls: int
    control_kitome_rpm: float
    test_kitome_rpm: float
    cv: float
    setting_cv: float = 0.3


SCENARIOS: tuple[Scenario, ...] = (
    # issue 17's case: reagent taxa at the same level in test and controls (1 % of reads: 10,000 RPM)
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
"""The sterile-lot settings the validation summary states (the benchmark runs the same)."""


def _kitome_shares(rng: np.random.Generator) -> np.ndarray:
    shares = rng.lognormal(0.0, 1.5, N_BACKGROUND)
    return shares / shares.sum()


def _library(rng: np.random.Generator, rpm: np.ndarray, fragments: int, cv: float) -> np.ndarray:
    rate = rpm * fragments / 1e6
    if cv > 0:
        rate = rate * rng.gamma(1 / cv**2, cv**2, rate.size)
    return rng.poisson(rate)


def sterile_lot(rng: np.random.Generator, scenario: Scenario) -> tuple[np.ndarray, list[np.ndarray]]:
    """One simulated sterile lot: reads of the ``N_BACKGROUND`` reagent taxa in the test, shape
    (N_BACKGROUND,), and in each negative control (a list of ``scenario.controls`` such arrays)."""
    shares = _kitome_shares(rng)
    test = _library(rng, shares * scenario.test_kitome_rpm, scenario.test_fragments, scenario.cv)
    controls = [
        _library(rng, shares * scenario.control_kitome_rpm, scenario.control_fragments, scenario.cv)
        for _ in range(scenario.controls)
    ]
    return test, controls


def _counts(reads: np.ndarray) -> dict[int, int]:
    return dict(zip(_BACKGROUND_TAXIDS, reads.tolist(), strict=True))


def call_lot(
    test_counts: Mapping[int, int],
    test_fragments: int,
    controls: Sequence[Mapping[int, int]],
    control_fragments: int,
    settings: DetectionSettings,
) -> tuple[list[UnitReads], list[OrganismCall]]:
    """The package's calls of a simulated test (taxid → reads) against its negative controls: the
    controls as units, and the calls."""
    test = _unit("T", "test", test_fragments, test_counts)
    negatives = [_unit(f"NC{i}", "negative_control", control_fragments, c) for i, c in enumerate(controls, 1)]
    facts = simulated_reference()
    return negatives, call_organisms(test, negatives, "sterility_reads", "shotgun", settings, facts)


CompareRule = Callable[[np.ndarray, list[np.ndarray]], bool]
"""Another rule run on the same lot: (test reads per taxon, each control's) → whether it fails the lot."""


@dataclass(frozen=True)
class FalseFailRate:
    """Sterile lots falsely FAILED: ``fails`` of ``lots`` (with the Wilson 95 % upper bound); ``nominal``
    lots with a taxon whose unadjusted p ≤ α meets the read and fold rules (what Holm buys);
    ``compared`` the lots a ``compare`` rule fails (None without one)."""

    scenario: Scenario
    lots: int
    fails: int
    nominal: int
    compared: int | None = None

    @property
    def rate(self) -> float:
        return self.fails / self.lots

    @property
    def upper95(self) -> float:
        return wilson_interval(self.fails, self.lots)[1]


def false_fail(
    scenario: Scenario,
    lots: int,
    rng: np.random.Generator,
    settings: DetectionSettings | None = None,
    compare: CompareRule | None = None,
) -> FalseFailRate:
    """Simulate ``lots`` sterile lots of ``scenario`` and count those the rule falsely FAILS.

    ``settings`` default to the package's defaults with ``background_cv`` set to the scenario's
    ``setting_cv``.
    """
    settings = replace(settings or DetectionSettings(), background_cv=scenario.setting_cv)
    fails = nominal = compared = 0
    for _ in range(lots):
        test, controls = sterile_lot(rng, scenario)
        if compare is not None:
            compared += compare(test, controls)
        _, calls = call_lot(
            _counts(test),
            scenario.test_fragments,
            [_counts(c) for c in controls],
            scenario.control_fragments,
            settings,
        )
        fails += any(c.call == DETECTED for c in calls)
        nominal += any(
            c.p_value is not None
            and c.p_value <= settings.alpha
            and c.reads >= settings.min_reads
            and (c.fold is None or c.fold >= settings.min_fold)
            for c in calls
        )
    return FalseFailRate(scenario, lots, fails, nominal, compared if compare is not None else None)


@dataclass(frozen=True)
class Curve:
    """A detection-probability curve's setting: the run, the organism's sensitivity (test RPM per
    CFU/mL after extraction), the tested volume (mL), the positive control's concentration (CFU/mL)
    and the contaminant levels (CFU/mL) simulated."""

    name: str
    scenario: Scenario
    sensitivity_rpm_per_cfu: float
    volume_ml: float
    pc_concentration: float
    levels: tuple[float, ...]


CURVES: tuple[Curve, ...] = (
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
"""The detection curves the validation summary states."""


@dataclass(frozen=True)
class DetectionCurve:
    """P(detected) per level of ``curve`` (and of a ``compare`` rule on the same lots, else None),
    and the median LOD the package reports for such runs (``reported_lod``, CFU/mL, from up to 50
    positive controls drawn at the first level; ``compared_lod`` the compare rule's)."""

    curve: Curve
    lots: int
    detected: tuple[float, ...]
    reported_lod: float | None
    compared: tuple[float, ...] | None = None
    compared_lod: float | None = None

    @property
    def lod95(self) -> float | None:
        """The LOD95 read off the curve (CFU/mL), None when no level reaches 95 %."""
        return lod95_off_curve(self.curve.levels, self.detected)


def lod95_off_curve(levels: Sequence[float], detected: Sequence[float]) -> float | None:
    """The lowest concentration detected in 95 % of lots, log-linearly interpolated between levels."""
    for i, p in enumerate(detected):
        if p >= 0.95:
            if i == 0:
                return levels[0]
            p0 = detected[i - 1]
            x0, x1 = math.log(levels[i - 1]), math.log(levels[i])
            return math.exp(x0 + (0.95 - p0) / (p - p0) * (x1 - x0)) if p > p0 else levels[i]
    return None


def detection_curve(
    curve: Curve,
    lots: int,
    rng: np.random.Generator,
    settings: DetectionSettings | None = None,
    compare: CompareRule | None = None,
    compare_lod: Callable[[int], float] | None = None,
) -> DetectionCurve:
    """Simulate ``lots`` contaminated lots per level of ``curve`` and the fraction the rule detects.

    ``compare`` (test reads with the contaminant last, each control's) runs another rule on the same
    lots; ``compare_lod`` (the positive control's spike reads) gives that rule's reported LOD.
    """
    scenario = curve.scenario
    settings = replace(settings or DetectionSettings(), tested_volume_ml=curve.volume_ml)
    facts = simulated_reference()
    reads_per_organism = curve.sensitivity_rpm_per_cfu * scenario.test_fragments / 1e6 / curve.volume_ml
    d_pc = scenario.control_fragments
    pc_mean = curve.pc_concentration * curve.sensitivity_rpm_per_cfu * d_pc / 1e6
    spike = {
        "spike_organism": str(SPIKE),
        "spike_concentration": curve.pc_concentration,
        "spike_unit": "CFU/mL",
    }
    floor = sampling_floor(curve.volume_ml, settings.detection_probability)
    rates: list[float] = []
    compared: list[float] = []
    lods: list[float] = []
    compared_lods: list[float] = []
    for level in curve.levels:
        hits = hits_compared = 0
        for _ in range(lots):
            test, controls = sterile_lot(rng, scenario)
            organisms = rng.poisson(level * curve.volume_ml)  # in the tested volume: the sampling floor
            contaminant = int(rng.poisson(organisms * reads_per_organism)) if organisms else 0
            if compare is not None:
                hits_compared += compare(np.append(test, contaminant), [np.append(c, 0) for c in controls])
            negatives, calls = call_lot(
                _counts(test) | {CONTAMINANT: contaminant},
                scenario.test_fragments,
                [_counts(c) for c in controls],
                scenario.control_fragments,
                settings,
            )
            hits += any(c.taxid == CONTAMINANT and c.call == DETECTED for c in calls)
            if level == curve.levels[0] and len(lods) < 50:
                # the LOD the package reports for such a run, from its own positive control
                pc_reads = int(rng.poisson(pc_mean))
                if compare_lod is not None:
                    compared_lods.append(compare_lod(pc_reads))
                pc = _unit("PC", "positive_control", d_pc, {SPIKE: pc_reads}, **spike)
                result = assess_positive_control(pc, negatives, "shotgun", settings, facts)
                context = LodContext(
                    scenario.test_fragments,
                    tuple(negatives),
                    max(1, len(calls)),
                    (result,),
                    "shotgun",
                    floor,
                    {},
                    settings,
                    facts,
                    curve.volume_ml,
                )
                value = organism_lod(context, CONTAMINANT).value
                lods.append(math.inf if value is None else value)
        rates.append(hits / lots)
        compared.append(hits_compared / lots)
    return DetectionCurve(
        curve,
        lots,
        tuple(rates),
        statistics.median(lods) if lods else None,
        tuple(compared) if compare is not None else None,
        statistics.median(compared_lods) if compared_lods else None,
    )

"""Contaminant calls of a sequencing unit against its lot's controls, the run's LOD and its validity.

For every bacterium, fungus or mycoplasma (:data:`~rapidrelease.sterility.checklist.TARGETS`) with
reads in a test unit, at species level (clade reads) and at genus level for reads the classifier
could not resolve further (direct reads), the call is DETECTED only when all of these hold:

- at least ``min_reads`` reads;
- above the negative controls' background, counted in reads with the libraries' depths as offset.
  The controls are pooled (x_c reads in d_c fragments). Under equal rates the test's share of the
  x_t + x_c reads is Binomial(x_t + x_c, d_t / (d_t + d_c)), so P(X ≥ x_t) is an exact p-value
  whatever the common rate and however many controls there are (one included: one rule). Every
  taxon with a read in the unit is tested, and the p-values are Holm-adjusted over them: the
  adjusted p must be at most ``alpha``, the family-wise error rate of the unit. Reagent DNA varies
  between libraries more than Poisson sampling, so the test's RPM must also reach ``min_fold``
  times the pooled controls' RPM (SURPI+'s RPM ratio). No z-score or standard deviation of the
  controls is used: with two or three controls their SD is no estimate of anything (a z against
  n controls is t-distributed with n − 1 degrees of freedom), and decontam and CZ ID ask for five
  or more, or a historical background, before such a model;
- for shotgun libraries, reads spread like a real organism's: the distinct minimizers seen are at
  least ``min_kmer_ratio`` of those expected if its k-mer hits fell at random on its reference
  (M·(1 − e^(−G/M)) for G minimizer occurrences on M held), or cover a tenth of the reference.
  Reads piling up on a few shared or low-complexity regions are not an organism.

Host, vector, spike-in and adapter reads are never candidates; their shares are reported. Neither
is a test's internal control, the exogenous organism spiked into the sample (the spike columns of
its unit row): its recovery in the sample's matrix replaces the positive control's sensitivity in
the sample's LOD, and below ``min_spike_recovery`` of it flags an inhibited sample, whose
NOT_DETECTED calls are then INCONCLUSIVE (:mod:`rapidrelease.sterility.internal_control`).

A detection stands. The same taxon in the run's negative controls at a level that explains it
(the assignable cause of USP <71> and the FDA's OOS guidance) is weighed by the count test, which
then calls it NOT_DETECTED and says so; anything else wrong with the run (a positive control that
missed its spike, a shallow or unmeasured negative control, an organism the reference lacks, an
LOD not met) can explain a miss, never a find, so it makes only NOT_DETECTED INCONCLUSIVE.

The limit of detection is predicted (the report says "predicted LOD95") from each positive control:
the one-sided 95 % lower Poisson bound of its spike's reads, as RPM per unit of concentration, is
the assay's sensitivity (its read count is a measurement, not exact). An organism's threshold T
(the reads it needs in the test: the count test against the controls' reads of it, at Holm's
first step α/m over the m taxa tested) is reached with probability ``detection_probability`` at
its LOD: the tested volume V (the unit's ``volume_ul``, else ``tested_volume_ml``) holds
Poisson(c·V) organisms and each gives Poisson reads at the sensitivity, so the LOD is never below
the sampling floor −ln(1 − p)/V (3/V CFU/mL at 95 %) and adds the read sampling on top; the
controls' reads of an organism raise its T, so their depth-adjusted burden shows as the LOD it
masks. A lab's validated LOD95 per organism
(``lod_table``, from a dilution series) replaces the prediction. The assay's LOD is the worst over
its positive controls.

The run is valid only when the test has ``min_fragments`` fragments, every negative control was
measured and is deep enough to show the absence of what the test would call (the test's threshold
rate leaves at least −ln(1 − p) reads in it on average), every positive control was measured, has
``min_fragments`` fragments and detects its spike, and the reference holds k-mers of every
checklist organism. Otherwise a NOT_DETECTED ``contaminant_call`` and the ``lod`` are INCONCLUSIVE
with the reasons; the calls are still shown.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rapidrelease.config.lod_table import LOD_TABLE_UNIT, read_lod_table
from rapidrelease.config.run import DetectionSettings, RunConfig, Unit
from rapidrelease.config.vocabulary import DETECTED, NOT_DETECTED, organism_lod_metric
from rapidrelease.errors import ReadsError, RecordError
from rapidrelease.outputs import write_table
from rapidrelease.reads.index import KmerIndex, load_index
from rapidrelease.reads.taxonomy import Taxonomy
from rapidrelease.records import (
    OK,
    FileRef,
    Json,
    Metric,
    UnitRecord,
    file_ref,
    read_unit_record,
    write_record,
)
from rapidrelease.stats import (
    equal_rate_tail,
    holm_adjusted,
    lower_bound,
    mean_detected,
    organisms_detected,
)
from rapidrelease.sterility.checklist import ALL_CHECKLISTS, TARGETS, checklist_of
from rapidrelease.sterility.internal_control import (
    InternalControl,
    assess_internal_control,
    recovery_sentence,
)

__all__ = [
    "DETECTED",
    "NOT_DETECTED",
    "NOT_COVERED",
    "UnitReads",
    "OrganismCall",
    "ReferenceFacts",
    "load_unit_reads",
    "call_organisms",
    "detection_threshold",
    "call_unit",
    "call_contaminants",
]

NOT_COVERED = "NOT_COVERED"
_PLAUSIBLE_BREADTH = 0.1  # a tenth of a reference's minimizers seen is no pile-up, whatever the ratio


@dataclass(frozen=True)
class UnitReads:
    """A gathered sequencing unit: its fragments and its per-taxon table (taxa.tsv rows by taxid).

    ``error`` is the sentence saying why the unit could not be classified (then ``taxa`` is empty);
    ``record`` is its gather record and ``files`` the files read (the record and its taxa table).
    """

    unit: Unit
    fragments: int
    taxa: Mapping[int, Mapping[str, Any]]
    error: str | None = None
    record: UnitRecord | None = None
    files: tuple[FileRef, ...] = ()

    def rpm(self, reads: int) -> float:
        """``reads`` as reads per million of this unit's fragments."""
        return 1e6 * reads / self.fragments if self.fragments else math.inf

    def reads_of(self, taxid: int, level: str) -> int:
        """Reads of ``taxid``: its clade at species level, its own (unresolved) reads at genus level."""
        row = self.taxa.get(taxid)
        if row is None:
            return 0
        return int(row["reads_clade"] if level == "species" else row["reads_direct"])


def load_unit_reads(unit: Unit, folder: Path) -> UnitReads:
    """Read a unit's gathered ``reads.json`` record and the ``taxa.parquet`` it was written with.

    The table must be the one the record sealed (same SHA-256). Never raises for a bad or missing
    file: the returned unit carries the error sentence.
    """
    folder = Path(folder)
    path, table_path = folder / "reads.json", folder / "taxa.parquet"
    try:
        record = read_unit_record(path, stage="gather")
        _check_gathered_for(record, unit, path)
    except RecordError as exc:
        return UnitReads(unit, 0, {}, str(exc).rstrip("."))
    files = (file_ref(path, f"gathered reads ({unit.role} {unit.unit_id})"),)
    if not record.ok:
        return UnitReads(unit, 0, {}, record.error or f"{path}: status is not ok", record, files)
    table_ref = file_ref(table_path, f"taxa ({unit.role} {unit.unit_id})")
    written = next((o.sha256 for o in record.outputs if Path(o.path).name == "taxa.parquet"), None)
    if written is None:
        return UnitReads(unit, 0, {}, f"{path}: names no taxa table it was written with", record, files)
    if table_ref.sha256 != written:
        return UnitReads(
            unit, 0, {}, f"{table_path}: is not the table {path} was written with", record, files
        )
    total = record.metrics.get("fragments_total")
    fragments = total.value if total is not None else None
    if not isinstance(fragments, int) or fragments <= 0:
        # reads per million of nothing is no measurement (and no finite number to record)
        return UnitReads(unit, 0, {}, f"{path}: reports {fragments} fragments, so nothing was read", record)
    try:
        table = pl.read_parquet(table_path)
    except OSError as exc:
        return UnitReads(unit, 0, {}, f"{table_path}: cannot be read ({exc})", record, files)
    taxa = {int(row["taxid"]): row for row in table.iter_rows(named=True)}
    return UnitReads(unit, fragments, taxa, None, record, (*files, table_ref))


def _check_gathered_for(record: UnitRecord, unit: Unit, path: Path) -> None:
    """RecordError unless ``record`` gathered ``unit``'s reads: it is the unit's own record, or the
    record of the same read files measured once for another lot listing them (a shared control)."""
    if (record.lot_id, record.unit_id) == (unit.lot_id, unit.unit_id):
        return
    mine = sorted(os.path.realpath(p) for p in (unit.path, unit.path2) if p is not None)
    gathered = sorted(os.path.realpath(f.path) for f in record.inputs if f.role == "reads")
    if (record.assay, record.role, gathered) != (unit.assay, unit.role, mine):
        raise RecordError(
            f"{path}: is the record of unit {record.unit_id} of lot {record.lot_id} and other reads, "
            f"not of unit {unit.unit_id} of lot {unit.lot_id}; it was copied from another result folder."
        )


@dataclass(frozen=True)
class ReferenceFacts:
    """What the calls need of the k-mer index: taxonomy, minimizers held per clade, minimizer spacing.

    ``kmers_per_minimizer`` is the mean number of consecutive k-mers sharing one minimizer,
    (w + 1) / 2 for windows of w = k − l + 1 ℓ-mers, which turns k-mer hits into minimizer
    occurrences.
    """

    taxonomy: Taxonomy
    held_clade: np.ndarray
    kmers_per_minimizer: float

    @classmethod
    def from_index(cls, index: KmerIndex) -> ReferenceFacts:
        window = index.spec.k - index.spec.l + 1
        held = index.taxonomy.clade_sums(np.asarray(index.minimizers_per_taxon, dtype=np.int64))
        return cls(index.taxonomy, held, (window + 1) / 2)

    def held(self, taxid: int | None) -> int:
        """Minimizers the index holds for ``taxid``'s clade (0 when the taxonomy lacks it)."""
        node = self.node_of(taxid) if taxid is not None else None
        return int(self.held_clade[node]) if node is not None else 0

    def represented(self, taxid: int | None) -> float:
        """Minimizers of one genome of ``taxid`` the index holds: its clade's, capped for a checklist
        organism at what one genome has (several strains in a reference hold more than one genome)."""
        held = float(self.held(taxid))
        organism = next((o for o in ALL_CHECKLISTS if taxid in (o.taxid, *o.former_taxids)), None)
        if organism is None:
            return held
        return min(held, organism.genome_mb * 1e6 / self.kmers_per_minimizer)

    def node_of(self, taxid: int) -> int | None:
        """The node index of ``taxid``, or None when the taxonomy does not have it."""
        return int(self.taxonomy.index_of([taxid])[0]) if taxid in self.taxonomy else None

    def resolve(self, organism: str) -> int:
        """A taxid from an NCBI taxid or a scientific name (letter case ignored); ReadsError otherwise."""
        text = organism.strip()
        if text.isdigit():
            if int(text) not in self.taxonomy:
                raise ReadsError(f"spike organism {text}: no such taxid in the reference taxonomy.")
            return int(text)
        wanted = text.casefold()
        nodes = [i for i, name in enumerate(self.taxonomy.name) if name.casefold() == wanted]
        if not nodes:
            raise ReadsError(f"spike organism {text!r}: no taxon of that name in the reference taxonomy.")
        if len(nodes) > 1:
            taxids = ", ".join(str(int(self.taxonomy.taxid[i])) for i in nodes)
            raise ReadsError(
                f"spike organism {text!r}: several taxa have that name ({taxids}); give the taxid."
            )
        return int(self.taxonomy.taxid[nodes[0]])


@dataclass(frozen=True)
class Background:
    """A test count against the pooled negative controls, before the correction for the taxa tested.

    ``control_reads`` of ``control_fragments`` are the controls' pooled count; ``fold`` is the test's
    RPM over theirs (None: infinite, the controls hold none); ``p_value`` is the exact conditional
    binomial p-value of equal rates (None: no control to compare with); ``fold_ok`` says whether the
    RPM-ratio floor is met.
    """

    control_reads: int
    control_fragments: int
    control_rpm: tuple[float, ...]
    fold: float | None
    p_value: float | None
    fold_ok: bool
    phrase: str


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compare_with_controls(
    reads: int, fragments: int, controls: Sequence[tuple[int, int]], settings: DetectionSettings
) -> Background:
    """``reads`` of ``fragments`` against the controls' (reads, fragments), pooled (module docstring).

    Under equal rates in test and controls, the test's share of the n = x_test + x_control reads is
    Binomial(n, d_test / (d_test + d_control)) whatever the common rate (the conditional test of two
    Poisson rates with the library depths as offset), so P(X ≥ x_test) is an exact p-value for any
    number of controls, one included. Reagent DNA also varies between libraries: with
    ``background_cv`` > 0 each library's rate carries a gamma factor of that coefficient of
    variation and the binomial tail is averaged over the ratio of the test's factor to the pooled
    controls' (gamma-Poisson, i.e. negative binomial counts; :func:`rapidrelease.stats.equal_rate_tail`).
    The fold is the test's RPM over the pooled controls' RPM.
    """
    rpm = 1e6 * reads / fragments
    control_rpm = tuple(1e6 * r / f for r, f in controls)
    if not controls:
        return Background(0, 0, (), None, None, True, "no negative control to compare with")
    control_reads = sum(r for r, _ in controls)
    control_fragments = sum(f for _, f in controls)
    pooled = 1e6 * control_reads / control_fragments
    fold = rpm / pooled if pooled > 0 else math.inf
    # the controls' effective number: equal depths count fully, a shallow one hardly
    effective = control_fragments**2 / sum(f * f for _, f in controls)
    p_value = equal_rate_tail(
        reads, control_reads, fragments, control_fragments, settings.background_cv, effective
    )
    fold_text = "∞" if math.isinf(fold) else f"{fold:.1f}"
    whose = "the negative control's" if len(controls) == 1 else f"the {len(controls)} negative controls'"
    phrase = (
        f"{fold_text}× {whose} RPM ({control_reads} reads in {control_fragments:,} fragments, "
        f"{pooled:,.1f} RPM; needs {settings.min_fold:g}×), p {p_value:.2g}"
    )
    return Background(
        control_reads,
        control_fragments,
        control_rpm,
        _finite_or_none(fold),
        p_value,
        fold >= settings.min_fold,
        phrase,
    )


@dataclass(frozen=True)
class OrganismCall:
    """One organism's call in a unit, with the evidence a reviewer checks.

    ``control_reads`` are the negative controls' pooled reads of the taxon; ``p_value`` the exact
    conditional binomial p-value against them and ``p_adjusted`` its Holm adjustment over the
    ``taxa_tested`` taxa of the unit (None when there was no control to compare with).
    """

    taxid: int
    name: str
    rank: str
    category: str
    level: str
    reads: int
    rpm: float
    distinct_minimizers: int
    breadth: float
    kmer_ratio: float | None
    control_rpm: tuple[float, ...]
    control_reads: int
    fold: float | None
    p_value: float | None
    p_adjusted: float | None
    taxa_tested: int
    call: str
    reason: str


def _kmer_ratio(row: Mapping[str, Any], facts: ReferenceFacts) -> float | None:
    held = int(row["index_minimizers_clade"])
    occurrences = int(row["kmer_hits_clade"]) / facts.kmers_per_minimizer
    if held <= 0 or occurrences <= 0:
        return None
    expected = -held * math.expm1(-occurrences / held)
    return int(row["distinct_minimizers_clade"]) / expected


def call_organism(
    test: UnitReads,
    taxid: int,
    level: str,
    negatives: Sequence[UnitReads],
    library: str,
    settings: DetectionSettings,
    facts: ReferenceFacts,
    background: Background | None = None,
    p_adjusted: float | None = None,
    taxa_tested: int = 1,
) -> OrganismCall:
    """Call one taxon of ``test`` at ``level`` ("species": clade reads; "genus": unresolved reads).

    ``background`` and ``p_adjusted`` come from :func:`call_organisms`, which tests every taxon of
    the unit together; alone, the taxon is a family of one and its own p-value is the adjusted one.
    """
    row = test.taxa[taxid]
    reads = test.reads_of(taxid, level)
    if background is None:
        controls = [(c.reads_of(taxid, level), c.fragments) for c in negatives]
        background = compare_with_controls(reads, test.fragments, controls, settings)
        p_adjusted = background.p_value
    ratio = _kmer_ratio(row, facts) if library == "shotgun" else None
    breadth = float(row["breadth"])
    spread = library != "shotgun" or (ratio is not None and ratio >= settings.min_kmer_ratio)
    spread = spread or breadth >= _PLAUSIBLE_BREADTH
    significant = p_adjusted is None or p_adjusted <= settings.alpha
    family = (
        ""
        if p_adjusted is None
        else (
            f"; Holm-adjusted p {p_adjusted:.2g} over {taxa_tested} "
            f"{'taxon' if taxa_tested == 1 else 'taxa'} tested (needs ≤ {settings.alpha:g})"
        )
    )
    if reads < settings.min_reads:
        call, reason = NOT_DETECTED, f"{reads} reads, fewer than the {settings.min_reads} a call needs"
    elif not (background.fold_ok and significant):
        # the same taxon in the run's negative controls at this level explains the test's reads
        call, reason = NOT_DETECTED, f"not above background: {background.phrase}{family}"
    elif not spread:
        shown = "no" if ratio is None else f"{100 * ratio:.1f} % of the"
        call, reason = (
            NOT_DETECTED,
            f"reads pile up on {shown} distinct minimizers expected of an organism "
            f"(needs {100 * settings.min_kmer_ratio:g} %): shared or low-complexity sequence",
        )
    else:
        call, reason = DETECTED, f"{background.phrase}{family}"
    return OrganismCall(
        taxid=taxid,
        name=str(row["name"]),
        rank=str(row["rank"]),
        category=str(row["category"]),
        level=level if level == "species" else "genus (unresolved reads)",
        reads=reads,
        rpm=test.rpm(reads),
        distinct_minimizers=int(row["distinct_minimizers_clade"]),
        breadth=breadth,
        kmer_ratio=ratio,
        control_rpm=background.control_rpm,
        control_reads=background.control_reads,
        fold=background.fold,
        p_value=background.p_value,
        p_adjusted=p_adjusted,
        taxa_tested=taxa_tested,
        call=call,
        reason=reason,
    )


def _tested_taxa(test: UnitReads, assay: str, exclude: frozenset[int] = frozenset()) -> list[tuple[int, str]]:
    """The (taxid, level) pairs of ``test`` called for ``assay``: every target species with reads, and
    every target genus with reads the classifier could not resolve to a species; none of ``exclude``
    (the sample's internal control)."""
    tested = []
    for taxid, row in test.taxa.items():
        if row["category"] not in TARGETS[assay] or row["rank"] not in ("species", "genus"):
            continue
        if taxid in exclude:
            continue
        level = "species" if row["rank"] == "species" else "genus"
        if test.reads_of(taxid, level) > 0:
            tested.append((taxid, level))
    return tested


def call_organisms(
    test: UnitReads,
    negatives: Sequence[UnitReads],
    assay: str,
    library: str,
    settings: DetectionSettings,
    facts: ReferenceFacts,
    exclude: frozenset[int] = frozenset(),
) -> list[OrganismCall]:
    """Call every target organism of ``assay`` with reads in ``test``, highest RPM first; the taxa of
    ``exclude`` (a test's internal control, :func:`internal_control_taxa`) are not candidates.

    Every taxon with a read is tested, so the family whose error Holm's procedure holds at
    ``alpha`` is the whole unit: a sterile lot with hundreds of reagent taxa shared with the
    controls is falsely DETECTED in at most about ``alpha`` of lots (tests/benchmarks/
    bench_sterility_calls.py measures it).
    """
    tested = _tested_taxa(test, assay, exclude)
    backgrounds = [
        compare_with_controls(
            test.reads_of(taxid, level),
            test.fragments,
            [(c.reads_of(taxid, level), c.fragments) for c in negatives],
            settings,
        )
        for taxid, level in tested
    ]
    p_values = [b.p_value for b in backgrounds]
    known = [p for p in p_values if p is not None]
    adjusted = iter(holm_adjusted(known))
    calls = [
        call_organism(
            test,
            taxid,
            level,
            negatives,
            library,
            settings,
            facts,
            background,
            None if p is None else next(adjusted),
            len(tested),
        )
        for (taxid, level), background, p in zip(tested, backgrounds, p_values, strict=True)
    ]
    return sorted(calls, key=lambda c: (-c.rpm, c.name))


def detection_threshold(
    fragments: int,
    controls: Sequence[tuple[int, int]],
    settings: DetectionSettings,
    taxa_tested: int = 1,
) -> int:
    """Reads of a taxon ``fragments`` need to be called against the controls' (reads, fragments) of it.

    The fewest reads that meet ``min_reads`` and the RPM-ratio floor and whose exact p-value passes
    Holm's first (strictest) step, α / ``taxa_tested``: the threshold of a taxon that is the unit's
    most significant. For a taxon the controls hold none of, it is the test's detection threshold;
    for one they hold, the threshold their background raises it to.
    """
    family = max(1, taxa_tested)

    def called(reads: int) -> bool:
        background = compare_with_controls(reads, fragments, controls, settings)
        p_value = background.p_value
        return background.fold_ok and (p_value is None or p_value * family <= settings.alpha)

    low = settings.min_reads
    if called(low):
        return low
    high = low * 2
    while not called(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if called(middle) else (middle, high)
    return high


# ----------------------------------------------------------------------------- one unit's record


def _metric(
    value: float | str | None,
    unit: str | None,
    kind: str,
    reason: str | None = None,
    detail: str | None = None,
) -> Metric:
    return Metric(value, unit, kind, OK if reason is None else "inconclusive", reason, detail=detail)


def _sentence_list(items: Sequence[str]) -> str:
    return "; ".join(item.rstrip(".") for item in items)


def _control_depth_problems(
    negatives: Sequence[UnitReads], test: UnitReads, threshold: int, settings: DetectionSettings
) -> list[str]:
    """Negative controls too shallow to show the absence of what the test would call.

    A contaminant at the test's detection threshold (``threshold`` reads in the test's fragments)
    leaves on average threshold × d_control / d_test reads in a control; unless that mean is the
    −ln(1 − p) reads seen with the run's detection probability p (3.0 at 95 %), a control reading
    none of an organism is no evidence that the reagents were free of it at the level that matters.
    """
    needed = -math.log1p(-settings.detection_probability)
    problems = []
    for control in negatives:
        if control.error is not None:
            problems.append(
                f"negative control {control.unit.unit_id} could not be measured ({control.error})"
            )
            continue
        expected = threshold * control.fragments / test.fragments
        if expected < needed:
            minimum = math.ceil(needed * test.fragments / threshold)
            problems.append(
                f"negative control {control.unit.unit_id} has {control.fragments:,} fragments, too few to "
                f"protect anything: a contaminant at the test's detection threshold ({threshold} reads in "
                f"{test.fragments:,} fragments, {test.rpm(threshold):,.0f} RPM) would leave {expected:.1f} "
                f"reads in it on average, so none there shows nothing; this test needs controls of at least "
                f"{minimum:,} fragments"
            )
    return problems


@dataclass(frozen=True)
class SpikeResult:
    """A positive control's spike: detected or not, and the sensitivity it gives (RPM per unit).

    ``rpm_per_unit`` is the point estimate, ``rpm_per_unit_lower`` its one-sided 95 % lower bound
    from the spike's Poisson read count: the limit of detection is predicted from the lower bound,
    so a control read by few reads cannot promise more sensitivity than it showed.
    """

    unit_id: str
    organism: str
    taxid: int | None
    concentration: float
    unit: str
    reads: int
    rpm: float
    call: str
    rpm_per_unit: float | None
    problem: str | None
    reference_minimizers: float = 0.0
    rpm_per_unit_lower: float | None = None


_SENSITIVITY_CONFIDENCE = 0.95  # the positive control's count is a Poisson measurement, not exact


def assess_positive_control(
    control: UnitReads,
    negatives: Sequence[UnitReads],
    library: str,
    settings: DetectionSettings,
    facts: ReferenceFacts,
) -> SpikeResult:
    """Was the positive control's spike detected, by the test's own rules, and at what sensitivity?"""
    unit = control.unit
    organism, concentration = unit.spike_organism or "", float(unit.spike_concentration or 0)
    result = {"unit_id": unit.unit_id, "organism": organism, "concentration": concentration}
    result |= {"unit": unit.spike_unit or "", "taxid": None, "reads": 0, "rpm": 0.0, "call": NOT_DETECTED}
    if control.error is not None:
        problem = f"positive control {unit.unit_id} could not be measured ({control.error})"
        return SpikeResult(**result, rpm_per_unit=None, problem=problem)
    try:
        taxid = facts.resolve(organism)
    except ReadsError as exc:
        return SpikeResult(**result, rpm_per_unit=None, problem=f"positive control {unit.unit_id}: {exc}")
    node = facts.node_of(taxid)
    category = str(facts.taxonomy.category[node]) if node is not None else "other"
    assay = unit.assay if unit.assay in TARGETS else "sterility_reads"
    targets = TARGETS[assay]
    if category not in targets:
        # the product's own reads (host), the vector or a spike-in are in every sample: a "spike" of
        # them shows nothing about the assay's sensitivity to a contaminant
        problem = (
            f"positive control {unit.unit_id}: its spike {organism} is {category.replace('_', '-')} in the "
            f"reference taxonomy, not one of the organisms the {unit.assay} assay detects "
            f"({', '.join(targets)}), so it shows nothing of the assay's sensitivity"
        )
        return SpikeResult(**result | {"taxid": taxid}, rpm_per_unit=None, problem=problem)
    reads = control.reads_of(taxid, "species")
    rpm = control.rpm(reads)
    result |= {"taxid": taxid, "reads": reads, "rpm": rpm}
    if control.fragments < settings.min_fragments:
        problem = (
            f"positive control {unit.unit_id} has {control.fragments:,} fragments, "
            f"fewer than the {settings.min_fragments:,} a valid control needs"
        )
        return SpikeResult(**result, rpm_per_unit=None, problem=problem)
    # the spike is judged as a contaminant of the test would be: against the same negative controls,
    # among every taxon of its own library
    calls = call_organisms(control, negatives, assay, library, settings, facts)
    spike = next((c for c in calls if c.taxid == taxid and c.level == "species"), None)
    if spike is None or spike.call != DETECTED:
        why = spike.reason if spike is not None else "no reads"
        problem = (
            f"positive control {unit.unit_id} did not detect its spike {organism} ({reads} reads; {why})"
        )
        return SpikeResult(**result, rpm_per_unit=None, problem=problem)
    lower = 1e6 * lower_bound(reads, _SENSITIVITY_CONFIDENCE) / control.fragments
    return SpikeResult(
        **result | {"call": DETECTED},
        rpm_per_unit=rpm / concentration,
        problem=None,
        reference_minimizers=facts.represented(taxid),
        rpm_per_unit_lower=lower / concentration,
    )


PREDICTED = "predicted"
EMPIRICAL = "empirical"
SAMPLING_FLOOR = "sampling floor"


@dataclass(frozen=True)
class LodContext:
    """What every organism's limit of detection in one test is computed from.

    ``fragments`` are the test's; ``negatives`` the measured negative controls; ``taxa_tested`` the
    size of the test's family of taxa (Holm); ``spikes`` the usable positive controls; ``floor`` the
    sampling floor −ln(1 − p)/V in the spikes' unit and ``volume_ml`` the tested volume V (both None
    when that unit is not per mL);
    ``empirical`` the lab's validated LOD95 table (organism, letter case folded → CFU/mL), applied
    only when the spikes' unit is CFU/mL.
    """

    fragments: int
    negatives: tuple[UnitReads, ...]
    taxa_tested: int
    spikes: tuple[SpikeResult, ...]
    library: str
    floor: float | None
    empirical: Mapping[str, float]
    settings: DetectionSettings
    facts: ReferenceFacts
    volume_ml: float | None = None


@dataclass(frozen=True)
class OrganismLod:
    """One organism's limit of detection in a test and what it rests on.

    ``basis`` is ``predicted`` (from the positive control's lower-bound sensitivity and the reads
    the organism needs, ``threshold_reads``, which the negative controls' reads of it raise),
    ``empirical`` (the lab's validation table) or ``sampling floor`` (the tested volume, where the
    other is lower); ``predicted`` is the modelled value whatever the basis.
    """

    value: float | None
    basis: str | None
    predicted: float | None
    threshold_reads: int
    control_reads: int


def _empirical_lod(context: LodContext, taxid: int | None, names: Sequence[str]) -> float | None:
    if not context.empirical or any(s.unit != LOD_TABLE_UNIT for s in context.spikes):
        return None
    keys = [name.casefold() for name in names if name] + ([str(taxid)] if taxid is not None else [])
    return next((context.empirical[k] for k in keys if k in context.empirical), None)


def organism_lod(
    context: LodContext,
    taxid: int | None,
    names: Sequence[str] = (),
    spikes: Sequence[SpikeResult] | None = None,
) -> OrganismLod:
    """The concentration of ``taxid`` detected with the run's probability (its LOD, module docstring).

    Predicted: the concentration at which the organism's threshold (raised by the negative
    controls' reads of it: the depth-adjusted burden of a control masks what lies under it) is
    reached with the run's probability, from the worst positive control's lower-bound sensitivity.
    Per mL, both samplings count: the V mL tested hold Poisson(c·V) organisms and each gives
    Poisson(ρ) reads, ρ the sensitivity's reads per organism at the test's depth
    (:func:`rapidrelease.stats.organisms_detected`), so few organisms read deeply are limited by
    the sample and many read thinly by the reads; in other units, the Poisson mean of reads at the
    threshold over the sensitivity. In a shotgun library
    an organism's classifiable reads per CFU scale with the share of its genome the reference
    holds, so the spike's sensitivity is rescaled by the minimizers held for the organism over
    those held for the spike; an amplicon library reads one locus of every organism, so no
    rescaling applies. An empirical LOD95 for the organism replaces the prediction. Neither is
    reported below the sampling floor.
    """
    spikes = context.spikes if spikes is None else spikes
    controls = [
        (c.reads_of(taxid, "species") if taxid is not None else 0, c.fragments) for c in context.negatives
    ]
    threshold = detection_threshold(context.fragments, controls, context.settings, context.taxa_tested)
    control_reads = sum(r for r, _ in controls)
    held = context.facts.represented(taxid)
    if not spikes or any(s.rpm_per_unit_lower is None for s in spikes) or held <= 0:
        return OrganismLod(None, None, None, threshold, control_reads)
    probability = context.settings.detection_probability
    rpm = 1e6 * mean_detected(threshold, probability) / context.fragments
    limits = []
    for spike in spikes:
        assert spike.rpm_per_unit_lower is not None
        scale = 1.0 if context.library != "shotgun" else held / max(spike.reference_minimizers, 1.0)
        sensitivity = spike.rpm_per_unit_lower * scale  # RPM of the test per unit of concentration
        if sensitivity <= 0:
            limits.append(math.inf)
        elif context.volume_ml is not None:
            per_organism = sensitivity * context.fragments / 1e6 / context.volume_ml
            limits.append(organisms_detected(threshold, per_organism, probability) / context.volume_ml)
        else:
            limits.append(rpm / sensitivity)
    predicted = max(limits)
    empirical = _empirical_lod(context, taxid, names)
    value, basis = (predicted, PREDICTED) if empirical is None else (empirical, EMPIRICAL)
    if context.floor is not None and context.floor > value:
        value, basis = context.floor, SAMPLING_FLOOR
    return OrganismLod(_finite_or_none(value), basis, _finite_or_none(predicted), threshold, control_reads)


def _lod_phrase(lod: OrganismLod, unit: str) -> str:
    """How a reviewer reads one LOD: its value, what it rests on and what raised it."""
    if lod.value is None:
        return "the run's LOD is unknown"
    words = {
        PREDICTED: "predicted LOD95",
        EMPIRICAL: "empirical LOD95 (the lab's validation table)",
        SAMPLING_FLOOR: "LOD95 at the sampling floor of the tested volume",
    }
    text = f"{words[lod.basis or PREDICTED]} {lod.value:.3g} {unit}"
    if lod.control_reads:
        text += (
            f", raised by the negative controls' {lod.control_reads} reads of it "
            f"({lod.threshold_reads} reads needed in the test)"
        )
    return text


def _checklist(
    assay: str, calls: Sequence[OrganismCall], test: UnitReads, context: LodContext, lod_unit: str
) -> list[dict[str, Any]]:
    facts = context.facts
    detected = [c for c in calls if c.call == DETECTED]
    entries = []
    for organism in checklist_of(assay):
        taxid = next(
            (t for t in (organism.taxid, *organism.former_taxids) if facts.node_of(t) is not None), None
        )
        node = facts.node_of(taxid) if taxid is not None else None
        held = facts.held(taxid)
        lod = organism_lod(context, taxid, (organism.name,)) if held else None
        entry = {
            "organism": organism.name,
            "strain": organism.strain,
            "group": organism.group,
            "taxid": taxid,
            "reference_minimizers": held,
            "reference_genome_share": min(
                1.0, facts.represented(taxid) * facts.kmers_per_minimizer / (organism.genome_mb * 1e6)
            ),
            "reads": test.reads_of(taxid, "species") if taxid is not None else 0,
            "lod": lod.value if lod is not None else None,
            "lod_unit": lod_unit,
            "lod_basis": lod.basis if lod is not None else None,
            "predicted_lod": lod.predicted if lod is not None else None,
            "threshold_reads": lod.threshold_reads if lod is not None else None,
            "control_reads": lod.control_reads if lod is not None else 0,
        }
        if held == 0:
            status = NOT_COVERED
            reason = "the reference holds no k-mers of it, so its absence cannot be shown"
        elif any(
            facts.node_of(c.taxid) is not None
            and facts.taxonomy.is_ancestor([node], [facts.node_of(c.taxid)])[0]
            for c in detected
        ):
            status, reason = DETECTED, "detected (see the calls)"
        else:
            assert lod is not None
            status, reason = NOT_DETECTED, f"not detected; {_lod_phrase(lod, lod_unit)}"
        if organism.note:
            reason += f" ({organism.note})"
        entries.append(entry | {"status": status, "reason": reason})
    return entries


def _control_background(test: UnitReads, context: LodContext, assay: str) -> list[dict[str, Any]]:
    """Every target taxon the negative controls hold: their burden, scaled to the test's depth, and
    the reads (and RPM) the test needs of it to call it over that burden: what it masks."""
    taxa: dict[int, str] = {}
    for control in context.negatives:
        for taxid, level in _tested_taxa(control, assay):
            if level == "species":
                taxa.setdefault(taxid, str(control.taxa[taxid]["name"]))
    rows = []
    for taxid, name in sorted(taxa.items(), key=lambda item: item[1]):
        controls = [(c.reads_of(taxid, "species"), c.fragments) for c in context.negatives]
        reads = sum(r for r, _ in controls)
        fragments = sum(f for _, f in controls)
        threshold = detection_threshold(test.fragments, controls, context.settings, context.taxa_tested)
        rows.append(
            {
                "taxid": taxid,
                "name": name,
                "control_reads": reads,
                "control_fragments": fragments,
                "control_rpm": 1e6 * reads / fragments,
                # the controls' reads as the test's depth would show them: the depth-adjusted burden
                "expected_test_reads": reads * test.fragments / fragments,
                "threshold_reads": threshold,
                "threshold_rpm": test.rpm(threshold),
            }
        )
    return rows


def _call_detail(calls: Sequence[OrganismCall]) -> str | None:
    detected = [c for c in calls if c.call == DETECTED]
    if not detected:
        return None
    return "; ".join(f"{c.name}: {c.reads:,} reads, {c.rpm:,.1f} RPM, {c.reason}" for c in detected)


def call_unit(run: RunConfig, unit: Unit, db: Path) -> UnitRecord:
    """Call a sequencing unit of the configured run against the lot's controls the configuration
    gives it (:meth:`RunConfig.controls_of`), reading and writing the units' results folders."""
    controls = run.controls_of(unit)
    # the gathered reads are measured once per run (shared controls); the calls are the lot's own
    folders = {u.unit_id: run.measured_dir(u) for u in (unit, *controls)}
    return call_contaminants(unit, controls, folders, db, run.detection, out_dir=run.unit_dir(unit))


def call_contaminants(
    unit: Unit,
    controls: Sequence[Unit],
    folders: Mapping[str, Path],
    db: Path,
    settings: DetectionSettings,
    out_dir: Path | None = None,
) -> UnitRecord:
    """Write a sequencing unit's ``metrics.json`` (and ``calls.tsv``) from its gathered reads and controls.

    ``controls`` are the lot's negative and positive controls of the unit's assay and library;
    ``folders`` maps each unit id to the folder holding its gathered ``reads.json`` and taxa table;
    the record and calls are written to ``out_dir`` (default: the unit's own folder in ``folders``).
    A test unit gets the calls, checklist, LOD and validity; a control gets its own reads' metrics
    and, for a positive control, its spike's detection. Returns the record; never raises for a bad
    input (the record's status is ``error``). The record's inputs are the read files and the index
    manifest as gathered, and every gathered record and taxa table read, with their SHA-256.
    """
    folder = Path(folders[unit.unit_id])
    out = folder if out_dir is None else Path(out_dir)
    record = UnitRecord("call", unit.lot_id, unit.unit_id, unit.assay, unit.role)
    evidence: dict[str, Json] = {"library": unit.library}
    inputs: list[FileRef] = []
    metrics: dict[str, Metric] = {}
    calls: list[OrganismCall] = []
    try:
        this = load_unit_reads(unit, folder)
        if this.record is not None:
            # the read files and the index, with their SHA-256 as the classification recorded them
            inputs += this.record.inputs
        inputs += this.files
        if this.error is not None:
            raise ReadsError(this.error.rstrip(".") + ".")
        assert this.record is not None
        evidence["index_minimizers"] = this.record.evidence.get("index_minimizers")
        metrics = dict(this.record.metrics)
        facts = ReferenceFacts.from_index(load_index(Path(db)))
        others = {u.unit_id: load_unit_reads(u, Path(folders[u.unit_id])) for u in controls if u != unit}
        for other in others.values():
            inputs += other.files
        others = {unit_id: _independent_of(this, other) for unit_id, other in others.items()}
        negatives = [others[u.unit_id] for u in controls if u.role == "negative_control" and u != unit]
        positives = [others[u.unit_id] for u in controls if u.role == "positive_control" and u != unit]
        evidence["settings"] = asdict(settings)
        if unit.role == "negative_control":
            metrics |= _negative_control_metrics(this, unit.assay)
        elif unit.role == "positive_control":
            measured = [n for n in negatives if n.error is None]
            spike = assess_positive_control(this, measured, unit.library, settings, facts)
            evidence["spike"] = asdict(spike)
            metrics["spike_call"] = _metric(spike.call, None, "category", spike.problem)
            metrics["spike_rpm_per_unit"] = _metric(
                spike.rpm_per_unit, f"RPM per {spike.unit}", "sensitivity", spike.problem
            )
        else:
            # a control that could not be measured invalidates the run but is no background
            measured = [n for n in negatives if n.error is None]
            internal, exclude = internal_control_taxa(unit, facts)
            calls = call_organisms(this, measured, unit.assay, unit.library, settings, facts, exclude)
            empirical: dict[str, float] = {}
            if settings.lod_table is not None:
                # the lab's validated limits replace the predicted ones; a table that cannot be read
                # makes the unit an error, never a silently predicted LOD
                inputs.append(file_ref(Path(settings.lod_table), "validated LOD95 table"))
                empirical = read_lod_table(Path(settings.lod_table))
            metrics |= _test_metrics(
                this, calls, negatives, positives, unit, settings, facts, evidence, empirical, internal
            )
        record = dataclasses.replace(record, metrics=metrics)
    except Exception as exc:  # a bad input, or a bug: either makes only this lot INCONCLUSIVE
        record = record.failed(exc, "calling contaminants of")
    _write_calls(out / "calls.tsv", calls)
    record = dataclasses.replace(
        record,
        inputs=tuple(inputs),
        outputs=(file_ref(out / "calls.tsv", "calls"),),
        evidence=evidence,
    )
    write_record(out / "metrics.json", record)
    return record


_NO_RECOVERY = ("host", "vector", "adapter")  # in every sample: their reads measure no recovery


def internal_control_taxa(unit: Unit, facts: ReferenceFacts) -> tuple[int | None, frozenset[int]]:
    """A test's internal control: its taxid (None when the unit states none) and the taxa that are
    never candidates in the test because of it, the taxon itself and its species and genus (reads of
    the spike the classifier resolved no further than its genus are the spike's as likely as not).

    Raises ReadsError, naming the unit, for an organism the taxonomy lacks, whose reads every sample
    holds (host, vector, adapter), that the reference holds no k-mers of, or that is on the assay's
    checklist (the test must detect it: it cannot be both a spike and a contaminant).
    """
    if not unit.spike_organism:
        return None, frozenset()
    where = f"test {unit.unit_id}'s internal control"
    try:
        taxid = facts.resolve(unit.spike_organism)
    except ReadsError as exc:
        raise ReadsError(f"{where}: {str(exc).rstrip('.')}.") from exc
    node = facts.node_of(taxid)
    assert node is not None  # resolve() found it in the taxonomy
    category = str(facts.taxonomy.category[node])
    if category in _NO_RECOVERY:
        raise ReadsError(
            f"{where} {unit.spike_organism} is {category} in the reference taxonomy, whose reads every "
            "sample holds, so it measures no recovery."
        )
    if facts.held(taxid) == 0:
        raise ReadsError(
            f"{where} {unit.spike_organism}: the reference holds no k-mers of it, "
            "so its reads cannot be counted."
        )
    lineage = set(facts.taxonomy.path_to_root(node))
    listed = [
        o.name
        for o in checklist_of(unit.assay)
        if any(facts.node_of(t) in lineage for t in (o.taxid, *o.former_taxids))
    ]
    if listed:
        raise ReadsError(
            f"{where} {unit.spike_organism} is {listed[0]}, an organism of the {unit.assay} checklist the "
            "test must detect; an internal control must be absent from every product."
        )
    excluded = {taxid}
    for ancestor in facts.taxonomy.path_to_root(node):
        rank = facts.taxonomy.rank[ancestor]
        if rank in ("species", "genus"):
            excluded.add(int(facts.taxonomy.taxid[ancestor]))
        if rank == "genus":
            break
    return taxid, frozenset(excluded)


def _internal_spike(internal: InternalControl, this: UnitReads) -> SpikeResult:
    """The internal control as the sensitivity the sample's LOD rests on (its lower bound, as a
    positive control's)."""
    return SpikeResult(
        unit_id=internal.unit_id,
        organism=internal.organism,
        taxid=internal.taxid,
        concentration=internal.concentration,
        unit=internal.unit,
        reads=internal.reads,
        rpm=this.rpm(internal.reads),
        call=DETECTED if internal.reads else NOT_DETECTED,
        rpm_per_unit=internal.rpm_per_unit,
        problem=None,
        reference_minimizers=internal.reference_minimizers,
        rpm_per_unit_lower=internal.rpm_per_unit_lower,
    )


def _independent_of(this: UnitReads, control: UnitReads) -> UnitReads:
    """``control``, or the same control as an error when its reads are the test's own bytes.

    A test listed as its own control under another file name (a copy) would be its own background:
    every contaminant would cancel out, and the run would look clean.
    """
    if control.error is not None or this.record is None or control.record is None:
        return control
    mine = {f.sha256 for f in this.record.inputs if f.role == "reads" and f.sha256}
    same = [f for f in control.record.inputs if f.role == "reads" and f.sha256 in mine]
    if not same:
        return control
    error = (
        f"{same[0].path}: holds the same reads as unit {this.unit.unit_id} under test "
        f"(SHA-256 {str(same[0].sha256)[:12]}…), so it is no independent control"
    )
    return dataclasses.replace(control, fragments=0, taxa={}, error=error)


def _negative_control_metrics(this: UnitReads, assay: str) -> dict[str, Metric]:
    """A negative control's own record: its highest target taxon, for information. Whether it is
    acceptable depends on the test it controls (its depth against the test's threshold, its burden
    against each organism's LOD), so each test's record judges it."""
    worst = max(
        (
            this.rpm(int(row["reads_clade"]))
            for row in this.taxa.values()
            if row["category"] in TARGETS[assay] and row["rank"] in ("species", "genus")
        ),
        default=0.0,
    )
    return {"max_contaminant_rpm": _metric(worst, "RPM", "rate")}


def tested_volume_ml(unit: Unit, settings: DetectionSettings) -> float:
    """The volume of product (mL) the test extracted: the unit sheet's ``volume_ul``, else the setting."""
    return unit.volume_ul / 1000 if unit.volume_ul else float(settings.tested_volume_ml)


def sampling_floor(volume_ml: float, probability: float) -> float:
    """The lowest concentration (per mL) a sample of ``volume_ml`` holds an organism of with ``probability``.

    Organisms are Poisson-distributed in the product: a V mL sample of c per mL holds none with
    probability e^(−cV), so no method detects below −ln(1 − p)/V, 3.0/V at 95 % (USP <1223>'s
    sampling limit; Ph. Eur. 5.1.6).
    """
    return -math.log1p(-probability) / volume_ml


def _test_metrics(
    this: UnitReads,
    calls: Sequence[OrganismCall],
    negatives: Sequence[UnitReads],
    positives: Sequence[UnitReads],
    unit: Unit,
    settings: DetectionSettings,
    facts: ReferenceFacts,
    evidence: dict[str, Json],
    empirical: Mapping[str, float],
    internal_taxid: int | None = None,
) -> dict[str, Metric]:
    problems: list[str] = []
    if this.fragments < settings.min_fragments:
        problems.append(
            f"unit {unit.unit_id} has {this.fragments:,} fragments, fewer than the "
            f"{settings.min_fragments:,} a valid test needs"
        )
    kind = f"{unit.assay} ({unit.library})"
    if not negatives:
        problems.append(f"lot {unit.lot_id} has no negative control for {kind}")
    measured = [n for n in negatives if n.error is None]
    taxa_tested = max(1, len(calls))
    clean = [(0, c.fragments) for c in measured]
    threshold = detection_threshold(this.fragments, clean, settings, taxa_tested)
    problems += _control_depth_problems(negatives, this, threshold, settings)
    spikes = [assess_positive_control(p, measured, unit.library, settings, facts) for p in positives]
    problems += [s.problem for s in spikes if s.problem is not None]
    units = sorted({s.unit for s in spikes if s.rpm_per_unit is not None})
    lod_problem: str | None = None
    if not positives:
        lod_problem = (
            f"lot {unit.lot_id} has no positive control for {kind}, so the limit of detection is unknown"
        )
        problems.append(lod_problem)
    elif len(units) > 1:
        lod_problem = f"the positive controls give concentrations in different units ({', '.join(units)})"
        problems.append(lod_problem)
    elif any(s.rpm_per_unit is None for s in spikes):
        failed = _sentence_list([s.problem for s in spikes if s.problem is not None])
        lod_problem = f"the limit of detection is unknown: {failed}"
    usable = () if lod_problem else tuple(spikes)
    lod_unit = units[0] if len(units) == 1 else (spikes[0].unit if spikes else "")
    internal, inhibition, recovery = _internal_control(
        this, unit, usable, lod_unit, internal_taxid, facts, settings
    )
    if internal is not None and internal.recovery is None and usable:
        problems.append(
            f"test {unit.unit_id}'s internal control is in {internal.unit} and its positive controls in "
            f"{lod_unit}, so its recovery cannot be compared with theirs"
        )
    sensitivities = usable
    if internal is not None and internal.recovery is not None:
        # the sample's own sensitivity, in its matrix, instead of the positive control's in buffer
        sensitivities = (_internal_spike(internal, this),)
        if internal.reads == 0:
            lod_problem = inhibition
    volume = tested_volume_ml(unit, settings)
    per_ml = lod_unit.replace(" ", "").lower().endswith("/ml")
    floor = sampling_floor(volume, settings.detection_probability) if per_ml else None
    context = LodContext(
        this.fragments,
        tuple(measured),
        taxa_tested,
        sensitivities,
        unit.library,
        floor,
        empirical,
        settings,
        facts,
        volume if per_ml else None,
    )
    checklist = _checklist(unit.assay, calls, this, context, lod_unit)
    uncovered = [e["organism"] for e in checklist if e["status"] == NOT_COVERED]
    if uncovered:
        problems.append(
            f"the reference holds no k-mers of {', '.join(uncovered)}, which the {unit.assay} checklist "
            "requires, so their absence cannot be shown"
        )
    by_group: dict[str, float | None] = {}
    for entry in checklist:
        known = by_group.get(entry["group"], 0.0)
        by_group[entry["group"]] = None if known is None or entry["lod"] is None else max(known, entry["lod"])
    evidence["lod_by_group"] = {"unit": lod_unit, **by_group}
    worst = None if not by_group or None in by_group.values() else max(by_group.values())
    detected = [c for c in calls if c.call == DETECTED]
    invalid = _sentence_list(problems) or None
    evidence["validity"] = {"valid": invalid is None, "problems": problems}
    evidence["controls"] = {
        "negative": [
            {"unit_id": c.unit.unit_id, "fragments": c.fragments, "error": c.error} for c in negatives
        ],
        "positive": [asdict(s) for s in spikes],
    }
    evidence["control_background"] = _control_background(this, context, unit.assay)
    evidence["detection_threshold"] = {
        "reads": threshold,
        "rpm": this.rpm(threshold),
        "taxa_tested": taxa_tested,
        "alpha": settings.alpha,
    }
    evidence["sampling"] = {"tested_volume_ml": volume, "floor": floor, "unit": lod_unit}
    evidence["calls"] = [asdict(c) for c in calls]
    evidence["checklist"] = checklist
    # the spiked organisms' own limits: what the positive controls measured (scaled by the sample's
    # internal control where it has one)
    own = sensitivities is usable
    spike_lods = [
        organism_lod(context, s.taxid, (s.organism, _name_of(facts, s.taxid)), spikes=(s,) if own else None)
        for s in usable
    ]
    spike_lod = max(
        (lod for lod in spike_lods if lod.value is not None), key=lambda lod: lod.value or 0.0, default=None
    )
    lod = spike_lod.value if spike_lod is not None else None
    spiked = sorted({s.organism for s in usable})
    evidence["lod"] = asdict(spike_lod) if spike_lod is not None else None
    worst_entry = max((e for e in checklist if e["lod"] is not None), key=lambda e: e["lod"], default=None)
    organism_lods = {
        organism_lod_metric(e["organism"]): _metric(
            e["lod"],
            lod_unit,
            "concentration",
            invalid if e["lod"] is not None else lod_problem or invalid or e["reason"],
            detail=f"{e['organism']} {e['strain']}: {e['reason'].split('; ', 1)[-1]}",
        )
        for e in checklist
    }
    # a detection stands whatever else is wrong with the run (USP <71>, FDA OOS guidance): a failed
    # positive control, a shallow or unmeasured control or a missing organism can explain a miss, not
    # a find; a negative control holding the same taxon at a level that explains it already made
    # the call NOT_DETECTED
    # an inhibited sample (its internal control's recovery too low) can miss, never find
    call_reason = None if detected else (_sentence_list([r for r in (invalid, inhibition) if r]) or None)
    detail = _call_detail(calls)
    if detected and invalid:
        detail = f"{detail}; the run also has validity problems ({invalid}), which cannot explain a detection"
    if detected and inhibition:
        detail = f"{detail}; {inhibition}, which cannot explain a detection"
    if internal is not None:
        evidence["internal_control"] = asdict(internal)
    lod_detail = None
    if spike_lod is not None and spiked:
        lod_detail = (
            f"{_lod_phrase(spike_lod, lod_unit)}, for {', '.join(spiked)}, the positive control's spike"
        )
        if not own and internal is not None:
            lod_detail += f", at the sample's own sensitivity: {recovery_sentence(internal)}"
    return {
        "contaminant_call": _metric(
            DETECTED if detected else NOT_DETECTED, None, "category", call_reason, detail
        ),
        "contaminants_detected": _metric(len(detected), "organisms", "count", call_reason),
        "detection_threshold_reads": _metric(threshold, "reads", "count"),
        # the spiked organism's: what the positive control measured
        "lod": _metric(
            lod,
            lod_unit,
            "concentration",
            invalid if lod is not None else lod_problem or invalid,
            detail=lod_detail,
        ),
        # the least sensitive checklist organism: the LOD of a claim that covers the whole checklist
        "lod_checklist_max": _metric(
            worst,
            lod_unit,
            "concentration",
            invalid if worst is not None else lod_problem or invalid,
            detail=(
                f"least sensitive: {worst_entry['organism']}, of {len(checklist)} checklist organisms"
                if worst_entry is not None and worst is not None
                else None
            ),
        ),
        **organism_lods,
        **recovery,
    }


def _internal_control(
    this: UnitReads,
    unit: Unit,
    usable: Sequence[SpikeResult],
    lod_unit: str,
    taxid: int | None,
    facts: ReferenceFacts,
    settings: DetectionSettings,
) -> tuple[InternalControl | None, str | None, dict[str, Metric]]:
    """The test's internal control (None without one), the sentence saying the sample is inhibited
    (None when it is not) and its ``spike_recovery`` metric (the share of the positive control's
    sensitivity recovered, %, with its 95 % interval; none without an internal control)."""
    if taxid is None:
        return None, None, {}
    # the unit sheet requires all three spike columns of a test once one is given
    assert unit.spike_organism and unit.spike_concentration and unit.spike_unit
    positive = [
        (s.rpm_per_unit, s.reference_minimizers)
        for s in usable
        if s.rpm_per_unit is not None and s.unit == unit.spike_unit == lod_unit
    ]
    internal = assess_internal_control(
        unit.unit_id,
        unit.spike_organism,
        taxid,
        float(unit.spike_concentration),
        unit.spike_unit,
        this.reads_of(taxid, "species"),
        this.fragments,
        facts.represented(taxid),
        positive,
        settings.min_spike_recovery,
        unit.library == "shotgun",
    )
    inhibition = f"the sample is inhibited: {recovery_sentence(internal)}" if internal.inhibited else None
    if internal.recovery is None or internal.recovery_ci95 is None:
        reason = (
            inhibition
            or "no positive control gave a sensitivity in the internal control's unit to compare with"
        )
        return internal, inhibition, {"spike_recovery": _metric(None, "%", "ratio", reason)}
    low, high = internal.recovery_ci95
    metric = Metric(
        100 * internal.recovery,
        "%",
        "ratio",
        ci95=(100 * low, 100 * high),
        detail=recovery_sentence(internal),
    )
    return internal, inhibition, {"spike_recovery": metric}


def _name_of(facts: ReferenceFacts, taxid: int | None) -> str:
    node = facts.node_of(taxid) if taxid is not None else None
    return str(facts.taxonomy.name[node]) if node is not None else ""


def _write_calls(path: Path, calls: Sequence[OrganismCall]) -> None:
    """The calls as a table (one row per organism; control RPMs comma-separated)."""
    integers = {"taxid", "reads", "distinct_minimizers", "control_reads", "taxa_tested"}
    numbers = {"rpm", "breadth", "kmer_ratio", "fold", "p_value", "p_adjusted"}
    schema = {
        name: pl.Int64 if name in integers else pl.Float64 if name in numbers else pl.String
        for name in OrganismCall.__dataclass_fields__
    }
    rows = [asdict(c) | {"control_rpm": ",".join(f"{r:.3f}" for r in c.control_rpm)} for c in calls]
    write_table(pl.DataFrame(rows, schema=schema), path)

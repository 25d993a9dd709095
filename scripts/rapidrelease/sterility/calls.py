"""Contaminant calls of a sequencing unit against its lot's controls, the run's LOD and its validity.

For every bacterium, fungus or mycoplasma (:data:`~rapidrelease.sterility.checklist.TARGETS`) with
reads in a test unit, at species level (clade reads) and at genus level for reads the classifier
could not resolve further (direct reads), the call is DETECTED only when all of these hold:

- at least ``min_reads`` reads;
- above the negative controls' background, in reads per million fragments (RPM): with two or more
  controls a z-score of at least ``z_threshold`` against their mean and standard deviation (floored
  at ``min_sd_rpm``); with one control at least ``min_fold`` times its RPM and a count improbable
  (``alpha``) under the upper 95 % Poisson bound of the control's rate scaled to the test's depth;
- for shotgun libraries, reads spread like a real organism's: the distinct minimizers seen are at
  least ``min_kmer_ratio`` of those expected if its k-mer hits fell at random on its reference
  (M·(1 − e^(−G/M)) for G minimizer occurrences on M held), or cover a tenth of the reference.
  Reads piling up on a few shared or low-complexity regions are not an organism.

Host, vector, spike-in and adapter reads are never candidates; their shares are reported.

The limit of detection comes from each positive control: its spike's RPM per unit of concentration
(e.g. RPM per CFU/mL) is the assay's sensitivity; the test's detection threshold T (reads a taxon
absent from every control needs to be called) becomes the Poisson mean detected with probability
``detection_probability``, and that mean, as RPM of the test, divided by the sensitivity is the
LOD. The assay's LOD is the worst over its positive controls.

The run is valid only when the test has ``min_fragments`` fragments, every negative control was
measured and holds no target taxon above ``negative_control_max_rpm``, every positive control was
measured, has ``min_fragments`` fragments and detects its spike, and the reference holds k-mers of
every checklist organism. Otherwise ``contaminant_call`` and ``lod`` are INCONCLUSIVE with the
reasons; the calls are still shown.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from rapidrelease.config.run import DetectionSettings, RunConfig, Unit
from rapidrelease.config.vocabulary import organism_lod_metric
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
from rapidrelease.stats import mean_detected, tail_at_least, upper_bound
from rapidrelease.sterility.checklist import ALL_CHECKLISTS, TARGETS, checklist_of

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

DETECTED = "DETECTED"
NOT_DETECTED = "NOT_DETECTED"
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
        record = read_unit_record(path, stage="gather", lot_id=unit.lot_id, unit_id=unit.unit_id)
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
    """A test count measured against the negative controls: passed or not, with the statistics."""

    above: bool
    control_rpm: tuple[float, ...]
    z: float | None
    fold: float | None
    p_value: float | None
    phrase: str


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compare_with_controls(
    reads: int, fragments: int, controls: Sequence[tuple[int, int]], settings: DetectionSettings
) -> Background:
    """Is ``reads`` of ``fragments`` above the controls' (reads, fragments) background? (module docstring)"""
    rpm = 1e6 * reads / fragments
    control_rpm = tuple(1e6 * r / f for r, f in controls)
    if not controls:
        return Background(True, (), None, None, None, "no negative control to compare with")
    if len(controls) == 1:
        (control_reads, control_fragments), (reference,) = controls[0], control_rpm
        fold = rpm / reference if reference > 0 else math.inf
        bound = upper_bound(control_reads, 0.95) * fragments / control_fragments
        p_value = tail_at_least(reads, bound)
        above = fold >= settings.min_fold and p_value < settings.alpha
        fold_text = "∞" if math.isinf(fold) else f"{fold:.1f}"
        phrase = (
            f"{fold_text}× the negative control's RPM (needs {settings.min_fold:g}×), Poisson p {p_value:.2g}"
        )
        return Background(above, control_rpm, None, _finite_or_none(fold), p_value, phrase)
    mean = statistics.fmean(control_rpm)
    sd = max(statistics.stdev(control_rpm), settings.min_sd_rpm)
    z = (rpm - mean) / sd
    phrase = (
        f"z {z:.1f} against {len(controls)} negative controls "
        f"(mean {mean:.1f} RPM, SD {sd:.1f}; needs {settings.z_threshold:g})"
    )
    return Background(z >= settings.z_threshold, control_rpm, z, None, None, phrase)


@dataclass(frozen=True)
class OrganismCall:
    """One organism's call in a unit, with the evidence a reviewer checks."""

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
    z: float | None
    fold: float | None
    p_value: float | None
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
) -> OrganismCall:
    """Call one taxon of ``test`` at ``level`` ("species": clade reads; "genus": unresolved reads)."""
    row = test.taxa[taxid]
    reads = test.reads_of(taxid, level)
    controls = [(c.reads_of(taxid, level), c.fragments) for c in negatives]
    background = compare_with_controls(reads, test.fragments, controls, settings)
    ratio = _kmer_ratio(row, facts) if library == "shotgun" else None
    breadth = float(row["breadth"])
    spread = library != "shotgun" or (ratio is not None and ratio >= settings.min_kmer_ratio)
    spread = spread or breadth >= _PLAUSIBLE_BREADTH
    if reads < settings.min_reads:
        call, reason = NOT_DETECTED, f"{reads} reads, fewer than the {settings.min_reads} a call needs"
    elif not background.above:
        call, reason = NOT_DETECTED, f"not above background: {background.phrase}"
    elif not spread:
        shown = "no" if ratio is None else f"{100 * ratio:.1f} % of the"
        call, reason = (
            NOT_DETECTED,
            f"reads pile up on {shown} distinct minimizers expected of an organism "
            f"(needs {100 * settings.min_kmer_ratio:g} %): shared or low-complexity sequence",
        )
    else:
        call, reason = DETECTED, background.phrase
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
        z=background.z,
        fold=background.fold,
        p_value=background.p_value,
        call=call,
        reason=reason,
    )


def call_organisms(
    test: UnitReads,
    negatives: Sequence[UnitReads],
    assay: str,
    library: str,
    settings: DetectionSettings,
    facts: ReferenceFacts,
) -> list[OrganismCall]:
    """Call every target organism of ``assay`` with reads in ``test``, highest RPM first."""
    calls = []
    for taxid, row in test.taxa.items():
        if row["category"] not in TARGETS[assay] or row["rank"] not in ("species", "genus"):
            continue
        level = "species" if row["rank"] == "species" else "genus"
        if test.reads_of(taxid, level) > 0:
            calls.append(call_organism(test, taxid, level, negatives, library, settings, facts))
    return sorted(calls, key=lambda c: (-c.rpm, c.name))


def detection_threshold(fragments: int, control_fragments: Sequence[int], settings: DetectionSettings) -> int:
    """Reads a taxon absent from every negative control needs in ``fragments`` to be called."""

    def called(reads: int) -> bool:
        controls = [(0, f) for f in control_fragments]
        return compare_with_controls(reads, fragments, controls, settings).above

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


def _negative_control_problems(
    negatives: Sequence[UnitReads], assay: str, settings: DetectionSettings
) -> list[str]:
    problems = []
    for control in negatives:
        if control.error is not None:
            problems.append(
                f"negative control {control.unit.unit_id} could not be measured ({control.error})"
            )
            continue
        worst = max(
            (
                (control.rpm(int(row["reads_clade"])), str(row["name"]))
                for row in control.taxa.values()
                if row["category"] in TARGETS[assay] and row["rank"] in ("species", "genus")
            ),
            default=(0.0, ""),
        )
        if worst[0] > settings.negative_control_max_rpm:
            problems.append(
                f"negative control {control.unit.unit_id} holds {worst[1]} at {worst[0]:,.0f} RPM, above the "
                f"{settings.negative_control_max_rpm:,g} RPM a valid control allows"
            )
    return problems


@dataclass(frozen=True)
class SpikeResult:
    """A positive control's spike: detected or not, and the sensitivity it gives (RPM per unit)."""

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
    targets = TARGETS.get(unit.assay, TARGETS["sterility_reads"])
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
    # the spike is judged as a contaminant of the test would be, against the same negative controls
    spike = (
        None
        if taxid not in control.taxa
        else call_organism(control, taxid, "species", negatives, library, settings, facts)
    )
    if spike is None or spike.call != DETECTED:
        why = spike.reason if spike is not None else "no reads"
        problem = (
            f"positive control {unit.unit_id} did not detect its spike {organism} ({reads} reads; {why})"
        )
        return SpikeResult(**result, rpm_per_unit=None, problem=problem)
    return SpikeResult(
        **result | {"call": DETECTED},
        rpm_per_unit=rpm / concentration,
        problem=None,
        reference_minimizers=facts.represented(taxid),
    )


def _organism_lod(
    taxid: int | None,
    lod_reads_rpm: float,
    spikes: Sequence[SpikeResult],
    library: str,
    facts: ReferenceFacts,
) -> float | None:
    """The concentration of ``taxid`` detected with the run's probability, from every positive control.

    In a shotgun library an organism's classifiable reads per CFU scale with the share of its
    genome the reference holds, so the spike's sensitivity is rescaled by the minimizers held for
    the organism over those held for the spike; an amplicon library reads one locus of every
    organism, so no rescaling applies. The worst positive control gives the limit.
    """
    if not spikes or any(s.rpm_per_unit is None for s in spikes):
        return None
    held = facts.represented(taxid)
    if held <= 0:
        return None
    limits = []
    for spike in spikes:
        scale = 1.0 if library != "shotgun" else held / max(spike.reference_minimizers, 1.0)
        limits.append(lod_reads_rpm / (spike.rpm_per_unit * scale))
    return max(limits)


def _checklist(
    assay: str,
    calls: Sequence[OrganismCall],
    test: UnitReads,
    facts: ReferenceFacts,
    lod_rpm: float,
    spikes: Sequence[SpikeResult],
    library: str,
    lod_unit: str,
) -> list[dict[str, Any]]:
    detected = [c for c in calls if c.call == DETECTED]
    entries = []
    for organism in checklist_of(assay):
        taxid = next(
            (t for t in (organism.taxid, *organism.former_taxids) if facts.node_of(t) is not None), None
        )
        node = facts.node_of(taxid) if taxid is not None else None
        held = facts.held(taxid)
        lod = _organism_lod(taxid, lod_rpm, spikes, library, facts) if held else None
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
            "lod": lod,
            "lod_unit": lod_unit,
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
            status = NOT_DETECTED
            reason = (
                f"not detected; LOD {lod:.3g} {lod_unit}"
                if lod is not None
                else ("not detected; the run's LOD is unknown")
            )
        if organism.note:
            reason += f" ({organism.note})"
        entries.append(entry | {"status": status, "reason": reason})
    return entries


def _call_detail(calls: Sequence[OrganismCall]) -> str | None:
    detected = [c for c in calls if c.call == DETECTED]
    if not detected:
        return None
    return "; ".join(f"{c.name}: {c.reads:,} reads, {c.rpm:,.1f} RPM, {c.reason}" for c in detected)


def call_unit(run: RunConfig, unit: Unit, db: Path) -> UnitRecord:
    """Call a sequencing unit of the configured run against the lot's controls the configuration
    gives it (:meth:`RunConfig.controls_of`), reading and writing the units' results folders."""
    controls = run.controls_of(unit)
    folders = {u.unit_id: run.unit_dir(u) for u in (unit, *controls)}
    return call_contaminants(unit, controls, folders, db, run.detection)


def call_contaminants(
    unit: Unit,
    controls: Sequence[Unit],
    folders: Mapping[str, Path],
    db: Path,
    settings: DetectionSettings,
) -> UnitRecord:
    """Write a sequencing unit's ``metrics.json`` (and ``calls.tsv``) from its gathered reads and controls.

    ``controls`` are the lot's negative and positive controls of the unit's assay and library;
    ``folders`` maps each unit id to its results folder (holding ``reads.json`` and the taxa table).
    A test unit gets the calls, checklist, LOD and validity; a control gets its own reads' metrics
    and, for a positive control, its spike's detection. Returns the record; never raises for a bad
    input (the record's status is ``error``). The record's inputs are the read files and the index
    manifest as gathered, and every gathered record and taxa table read, with their SHA-256.
    """
    folder = Path(folders[unit.unit_id])
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
            metrics |= _negative_control_metrics(this, unit.assay, settings)
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
            calls = call_organisms(this, measured, unit.assay, unit.library, settings, facts)
            metrics |= _test_metrics(this, calls, negatives, positives, unit, settings, facts, evidence)
        record = dataclasses.replace(record, metrics=metrics)
    except Exception as exc:  # a bad input, or a bug: either makes only this lot INCONCLUSIVE
        record = record.failed(exc, "calling contaminants of")
    _write_calls(folder / "calls.tsv", calls)
    record = dataclasses.replace(
        record,
        inputs=tuple(inputs),
        outputs=(file_ref(folder / "calls.tsv", "calls"),),
        evidence=evidence,
    )
    write_record(folder / "metrics.json", record)
    return record


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


def _negative_control_metrics(this: UnitReads, assay: str, settings: DetectionSettings) -> dict[str, Metric]:
    problems = _negative_control_problems([this], assay, settings)
    worst = max(
        (
            this.rpm(int(row["reads_clade"]))
            for row in this.taxa.values()
            if row["category"] in TARGETS[assay] and row["rank"] in ("species", "genus")
        ),
        default=0.0,
    )
    return {"max_contaminant_rpm": _metric(worst, "RPM", "rate", _sentence_list(problems) or None)}


def _test_metrics(
    this: UnitReads,
    calls: Sequence[OrganismCall],
    negatives: Sequence[UnitReads],
    positives: Sequence[UnitReads],
    unit: Unit,
    settings: DetectionSettings,
    facts: ReferenceFacts,
    evidence: dict[str, Json],
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
    problems += _negative_control_problems(negatives, unit.assay, settings)
    measured = [n for n in negatives if n.error is None]
    threshold = detection_threshold(this.fragments, [c.fragments for c in measured], settings)
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
    # the RPM a taxon absent from the controls reaches with the run's detection probability
    lod_rpm = this.rpm(1) * mean_detected(threshold, settings.detection_probability)
    usable = [] if lod_problem else spikes
    lod = max((lod_rpm / s.rpm_per_unit for s in usable), default=None)
    lod_unit = units[0] if len(units) == 1 else (spikes[0].unit if spikes else "")
    checklist = _checklist(unit.assay, calls, this, facts, lod_rpm, usable, unit.library, lod_unit)
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
    evidence["detection_threshold"] = {"reads": threshold, "rpm": this.rpm(threshold)}
    evidence["calls"] = [asdict(c) for c in calls]
    evidence["checklist"] = checklist
    spiked = sorted({s.organism for s in usable})
    worst_entry = max((e for e in checklist if e["lod"] is not None), key=lambda e: e["lod"], default=None)
    organism_lods = {
        organism_lod_metric(e["organism"]): _metric(
            e["lod"],
            lod_unit,
            "concentration",
            invalid if e["lod"] is not None else lod_problem or invalid or e["reason"],
            detail=f"{e['organism']} {e['strain']}",
        )
        for e in checklist
    }
    return {
        "contaminant_call": _metric(
            DETECTED if detected else NOT_DETECTED, None, "category", invalid, _call_detail(calls)
        ),
        "contaminants_detected": _metric(len(detected), "organisms", "count", invalid),
        "detection_threshold_reads": _metric(threshold, "reads", "count"),
        # the spiked organism's: what the positive control measured
        "lod": _metric(
            lod,
            lod_unit,
            "concentration",
            invalid if lod is not None else lod_problem or invalid,
            detail=f"for {', '.join(spiked)}, the positive control's spike" if spiked else None,
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
    }


def _write_calls(path: Path, calls: Sequence[OrganismCall]) -> None:
    """The calls as a table (one row per organism; control RPMs comma-separated)."""
    integers = {"taxid", "reads", "distinct_minimizers"}
    numbers = {"rpm", "breadth", "kmer_ratio", "z", "fold", "p_value"}
    schema = {
        name: pl.Int64 if name in integers else pl.Float64 if name in numbers else pl.String
        for name in OrganismCall.__dataclass_fields__
    }
    rows = [asdict(c) | {"control_rpm": ",".join(f"{r:.3f}" for r in c.control_rpm)} for c in calls]
    write_table(pl.DataFrame(rows, schema=schema), path)

"""The run configuration a site edits, validated as a whole before any job runs.

``config/config.yaml`` points to the lot sheet, the unit sheet and the specifications. Loading
checks all of them against ``workflow/schemas/`` and against each other, collects every problem
(one line each, naming the file, row and column) and refuses the configuration if there is any:
a malformed sheet, an unsafe or repeated identifier, a unit of an unknown lot, a lot of an unknown
specification, a specification with an unknown comparison or assay, and, when any lot has a
sequencing unit, a k-mer reference that is missing or whose files do not exist.

What concerns one lot's evidence is deliberately not checked here, so that a scheduled run is
not blocked for every lot by one lot's gap: a data file that does not exist (yet), or a lot that
has no unit for an attribute's assay. Those make the affected attributes INCONCLUSIVE when the
lot is evaluated (rapidrelease.release.decision).

Relative paths (sheets, results, data files, panels) are relative to the working directory, as
everywhere in Snakemake, not to config.yaml.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rapidrelease.config.lod_table import read_lod_table
from rapidrelease.config.schemas import load_schema, problems_error, schema_problems
from rapidrelease.config.sheets import CheckedRow, read_sheet, row_records, sheet_problems
from rapidrelease.config.specs import Spec, specs_from_data
from rapidrelease.config.vocabulary import (
    ALL_ROLES,
    CONTROL_ROLES_OF_ASSAY,
    DOSE_ASSAY,
    DOSE_METRICS,
    FLOW_ASSAYS,
    READS_ASSAYS,
    READS_CONTROL_ROLES,
    ROLES_OF_ASSAY,
    SHARED_CONTROL_ROLES,
)
from rapidrelease.config.yaml_files import load_yaml, read_config_bytes
from rapidrelease.errors import ConfigError

__all__ = [
    "DEFAULT_VIABLE_COUNT_CV_PCT",
    "DoseSettings",
    "ClassifySettings",
    "DetectionSettings",
    "Lot",
    "Reference",
    "Unit",
    "RunConfig",
    "load_run_config",
    "run_config_from_dict",
    "describe_run_config",
    "independence_problems",
    "unmeasured_metric_problems",
]

_LOT_COLUMNS = (
    "lot_id",
    "product",
    "spec",
    "collected_at",
    "site",
    "tnc_viable",
    "weight_kg",
    "starting_spec",
)
_EXAMPLE_TIME = "2026-11-24T08:30:00+01:00"
MEASURED_DIR = "_measured"
"""The folder under the results where data files shared by lots (a run's controls) are measured once."""
RESULTS_FILES = frozenset({"index.html", "releases.csv", MEASURED_DIR})
"""Names of files the workflow writes at the top of the results folder, beside the lots' folders."""


@dataclass(frozen=True)
class Lot:
    """One row of the lot sheet. ``collected_at`` is time-zone aware; ``extra`` holds further columns.

    ``tnc_viable`` is the final product's total viable nucleated cells (cells), ``weight_kg`` the
    patient's weight, ``starting_spec`` the specification its starting material is accepted against.
    """

    lot_id: str
    product: str
    spec: str
    collected_at: datetime
    site: str
    extra: Mapping[str, str] = field(default_factory=dict)
    tnc_viable: float | None = None
    weight_kg: float | None = None
    starting_spec: str | None = None


@dataclass(frozen=True)
class Unit:
    """One row of the unit sheet: a measured sample of a lot. ``volume_ul`` is in microlitres.

    ``stain`` is a compensation control's detector (or ``unstained``), an FMO control's left-out channel.

    A sequencing positive control names the organism spiked in (``spike_organism``, a scientific
    name or NCBI taxid) and its concentration (``spike_concentration`` in ``spike_unit``, e.g.
    CFU/mL); on a sequencing test the same columns name its internal control, an exogenous organism
    spiked into the sample to measure the matrix's recovery; ``library`` is ``shotgun`` or
    ``amplicon`` for sequencing units.
    """

    lot_id: str
    unit_id: str
    assay: str
    role: str
    path: Path | None
    path2: Path | None = None
    template: Path | None = None
    volume_ul: float | None = None
    library: str = "shotgun"
    spike_organism: str | None = None
    spike_concentration: float | None = None
    spike_unit: str | None = None
    stain: str | None = None
    line: int = field(default=0, compare=False, repr=False)
    """The unit's row in the unit sheet (its line number), for messages that name it."""


@dataclass(frozen=True)
class Reference:
    """The k-mer reference of the sequencing assays: a prebuilt ``index`` folder, or the files to build one.

    ``fasta`` holds the files the configured patterns matched, sorted, each pattern's files once.
    """

    index: Path | None = None
    fasta: tuple[Path, ...] = ()
    taxonomy: Path | None = None
    seqid2taxid: Path | None = None
    mask_low_complexity: bool = True
    host_sample: int = 1

    def fasta_megabases(self) -> float:
        """Megabases of the reference FASTA, estimated from the files' sizes (gzip about 1:4)."""
        return sum(p.stat().st_size * (4 if p.suffix == ".gz" else 1) for p in self.fasta) / 1e6

    def index_megabytes(self) -> float:
        """Megabytes of the k-mer index, which every classification job maps into memory."""
        if self.index is None:
            # measured: 25.4 MB for the 29.2-Mb default panel, about 0.9 MB per Mb of FASTA
            return 0.9 * self.fasta_megabases()
        if (self.index / "hash.k2d").is_file():  # a Kraken 2 database, read in place
            return sum(p.stat().st_size for p in self.index.glob("*.k2d")) / 1e6
        return sum(p.stat().st_size for p in self.index.glob("*.npy")) / 1e6


@dataclass(frozen=True)
class ClassifySettings:
    """How reads are classified: Kraken 2's ``confidence`` (0–1) and ``min_hit_groups``; a unit in
    one job per ``part_mb`` megabytes of its read files, at most ``parts`` parallel jobs, each with
    ``threads`` worker processes; ``cram_reference``, the FASTA CRAM read files were compressed
    against (when they do not embed it).

    Every part reads and parses the whole input to find its own batches, which cost 5.4 CPU s more
    for 1 M gzip-compressed 150-bp pairs in 2 parts than in one (26.4 against 21.0): on a
    workstation running many lots, splitting only takes cores from other lots. So a part is 1 GB of
    read files, about 3 M such pairs: a production lot of 1 M pairs is one job, and a deep unit is
    still spread over cores or nodes."""

    confidence: float = 0.0
    min_hit_groups: int = 2
    parts: int = 4
    threads: int = 1
    cram_reference: Path | None = None
    part_mb: float = 1024.0

    def parts_for(self, files: Sequence[Path | None]) -> int:
        """Jobs a unit with these read ``files`` is classified in: one per ``part_mb`` of their size on
        disk, at least 1 and at most ``parts``. A missing file counts as empty (its job records it);
        only the files' sizes are read, so the DAG never waits on their content."""
        size = 0
        for path in files:
            if path is not None and os.path.isfile(path):
                size += os.stat(path).st_size
        return max(1, min(self.parts, math.ceil(size / (self.part_mb * 1e6))))


@dataclass(frozen=True)
class DetectionSettings:
    """How a sequencing assay calls contaminants against its negative controls and when it is valid.

    Reads per million (RPM) are per million fragments of the unit. A taxon is called when it has
    ``min_reads`` reads, at least ``min_fold`` times the pooled negative controls' RPM, and a count
    the controls cannot explain: the conditional test of equal rates with the libraries' depths as
    offset, Holm-adjusted over the taxa tested in the unit, at most ``alpha`` (a family-wise error
    rate per unit). ``background_cv`` is the coefficient of variation of a reagent taxon's rate
    between libraries beyond Poisson sampling (gamma-Poisson counts; 0: the exact binomial test), a
    figure of the method's validation from replicate negative controls. ``min_kmer_ratio`` is the
    distinct/expected minimizer ratio a shotgun organism needs; ``min_fragments`` is the depth a
    test or positive control needs; ``detection_probability`` defines the LOD (0.95: LOD95);
    ``tested_volume_ml`` is the volume of product a test extracts (mL) when the unit sheet gives
    no ``volume_ul``, which puts the sampling floor −ln(1 − p)/V (3/V CFU/mL at 95 %) under every
    LOD; ``lod_table`` is an optional TSV of the lab's validated LOD95 per organism
    (:mod:`rapidrelease.config.lod_table`); ``min_spike_recovery`` is the fraction of the positive
    control's sensitivity a test's internal control must recover in the sample's matrix, below
    which the sample is inhibited (:mod:`rapidrelease.sterility.internal_control`).
    """

    min_reads: int = 3
    min_fold: float = 10.0
    alpha: float = 0.01
    background_cv: float = 0.3
    min_kmer_ratio: float = 0.5
    min_fragments: int = 2_000
    detection_probability: float = 0.95
    tested_volume_ml: float = 1.0
    lod_table: str | None = None
    min_spike_recovery: float = 0.1


DEFAULT_VIABLE_COUNT_CV_PCT = 7.5
"""The viable cell count's coefficient of variation (%) when config.yaml sets none: automated counters
and haemocytometers repeat to 5–10 % on cell-therapy products; the middle of that range."""


@dataclass(frozen=True)
class DoseSettings:
    """The percent metrics of a lot's phenotype test unit multiplied with its viable nucleated cells,
    and the viable count's coefficient of variation (%) that the dose's interval carries."""

    fractions: tuple[str, ...] = ("cd3_pct_live", "car_pct_cd3")
    viable_count_cv_pct: float = DEFAULT_VIABLE_COUNT_CV_PCT


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration: settings, lots, units and specifications that agree with each other.

    ``settings`` is config.yaml as validated; ``deadline_hours`` is the release decision window
    counted from each lot's ``collected_at``; ``file_sha256`` maps each configuration file read
    (path as written) to the SHA-256 of the bytes that were parsed, for the audit trail.
    """

    config_path: Path
    results_dir: Path
    deadline_hours: float
    lots: Mapping[str, Lot]
    units: tuple[Unit, ...]
    specs: Mapping[str, Spec]
    settings: Mapping[str, Any]
    file_sha256: Mapping[str, str | None] = field(default_factory=dict)
    reference: Reference = field(default_factory=Reference)
    classify: ClassifySettings = field(default_factory=ClassifySettings)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    dose: DoseSettings = field(default_factory=DoseSettings)

    def units_of(self, lot_id: str) -> tuple[Unit, ...]:
        """The units of ``lot_id`` in unit-sheet order (empty if it has none)."""
        return self._units_by_lot.get(lot_id, ())

    @functools.cached_property
    def _units_by_lot(self) -> dict[str, tuple[Unit, ...]]:
        # the workflow asks for a lot's units once per job: a scan of every unit made DAG building
        # quadratic in the number of lots
        by_lot: dict[str, list[Unit]] = {}
        for unit in self.units:
            by_lot.setdefault(unit.lot_id, []).append(unit)
        return {lot_id: tuple(units) for lot_id, units in by_lot.items()}

    def deadline_of(self, lot_id: str) -> datetime:
        """When the lot's release decision window closes: collected_at + deadline_hours."""
        return self.lots[lot_id].collected_at + timedelta(hours=self.deadline_hours)

    def unit(self, lot_id: str, unit_id: str) -> Unit:
        """The unit ``unit_id`` of lot ``lot_id``; ConfigError naming the unit sheet if there is none."""
        for unit in self.units_of(lot_id):
            if unit.unit_id == unit_id:
                return unit
        raise ConfigError(f"{self.settings['units']}: lot {lot_id!r} has no unit {unit_id!r}.")

    def controls_of(self, unit: Unit) -> tuple[Unit, ...]:
        """The lot's units that ``unit`` is measured or called against, in unit-sheet order.

        A flow tube: the lot's other tubes of the same assay and panel whose role is a control of that
        assay (unstimulated, target-only, FMO, single-stain or sterile-medium control); the panel
        decides which of them its thresholds and metrics read. A sequencing unit: the lot's negative
        and positive controls of the same assay and library. A control itself is measured against
        its own kind where the assay needs that (a positive control's spike against the negatives).
        """
        if unit.assay in READS_ASSAYS:
            return tuple(
                u
                for u in self.units_of(unit.lot_id)
                if u.unit_id != unit.unit_id
                and (u.assay, u.library) == (unit.assay, unit.library)
                and u.role in READS_CONTROL_ROLES
            )
        return tuple(
            u
            for u in self.units_of(unit.lot_id)
            if u.unit_id != unit.unit_id
            and (u.assay, u.template) == (unit.assay, unit.template)
            and u.role in CONTROL_ROLES_OF_ASSAY.get(unit.assay, ())
        )

    def settings_digest(self, unit: Unit) -> str:
        """The SHA-256 of what the configuration says of ``unit``: its sheet row, those of the controls
        it is judged against and the detection settings (the workflow reruns its jobs when it changes)."""
        settings = repr((unit, self.controls_of(unit), self.detection))
        return hashlib.sha256(settings.encode()).hexdigest()

    def measurement_key(self, unit: Unit) -> str:
        """The key under which a sequencing unit's reads are classified and gathered once per run,
        however many lots list them (a run's negative and positive controls): 16 hex digits of the
        SHA-256 of its assay, role, read files (resolved paths relative to the working folder: ``./a``
        and a symlink to ``a`` are one file) and the classification settings. Known without reading
        the files; their content is what each job records (SHA-256) and what the decision checks
        again."""
        key = self._keys.get(unit)
        if key is None:
            key = self._keys[unit] = self._measurement_key(unit)
        return key

    @functools.cached_property
    def _keys(self) -> dict[Unit, str]:
        # the workflow asks for a unit's key in several input functions of every job that reads it
        return {}

    def _measurement_key(self, unit: Unit) -> str:
        # resolved, then relative to the run's folder: the same site copied elsewhere keeps its keys
        # (and its decisions name the same folders)
        here = os.path.realpath(os.getcwd())

        def resolved(path: Path) -> str:
            return os.path.relpath(os.path.realpath(path), here)

        files = tuple(resolved(p) for p in (unit.path, unit.path2) if p is not None)
        classify = self.classify
        cram = None if classify.cram_reference is None else resolved(classify.cram_reference)
        index = None if self.reference.index is None else resolved(self.reference.index)
        settings = (unit.assay, unit.role, files, classify.confidence, classify.min_hit_groups, cram, index)
        return hashlib.sha256(repr(settings).encode()).hexdigest()[:16]

    def measured_dir(self, unit: Unit) -> Path:
        """Where a sequencing unit's reads are classified and gathered, shared by every lot listing
        the same files: ``<results>/_measured/reads/<key>`` (:meth:`measurement_key`)."""
        return self.results_dir / MEASURED_DIR / "reads" / self.measurement_key(unit)

    def measured_unit(self, key: str) -> Unit:
        """The first unit (in unit-sheet order) whose reads are measured under ``key``."""
        try:
            return self._units_by_key[key]
        except KeyError:
            raise ConfigError(
                f"{self.settings['units']}: no sequencing unit is measured under {key!r}."
            ) from None

    @functools.cached_property
    def _units_by_key(self) -> dict[str, Unit]:
        by_key: dict[str, Unit] = {}
        for unit in self.units:
            if unit.assay in READS_ASSAYS:
                by_key.setdefault(self.measurement_key(unit), unit)
        return by_key

    def unit_dir(self, unit: Unit) -> Path:
        """The unit's results folder: ``<results>/<lot>/flow/<unit>`` or ``<results>/<lot>/reads/<unit>``."""
        stage = "reads" if unit.assay in READS_ASSAYS else "flow"
        return self.results_dir / unit.lot_id / stage / unit.unit_id

    def record_path(self, unit: Unit) -> Path:
        """The unit's record the decision reads: ``metrics.json`` in its results folder."""
        return self.unit_dir(unit) / "metrics.json"

    @staticmethod
    def record_stage(unit: Unit) -> str:
        """The stage that writes the unit's ``metrics.json``: ``call`` for sequencing, else ``measure``."""
        return "call" if unit.assay in READS_ASSAYS else "measure"


def load_run_config(config_path: Path) -> RunConfig:
    """Load config.yaml and everything it names; ConfigError listing every problem found."""
    config_path = Path(config_path)
    data, sha256 = load_yaml(config_path)
    return _build_run_config(data, config_path, sha256)


def run_config_from_dict(config: Mapping[str, Any], source: Path) -> RunConfig:
    """Same as :func:`load_run_config` for a config already loaded (Snakemake's ``config``).

    ``source`` is the config file the dict came from; it names the file in messages and its
    SHA-256 is recorded when it can be read (settings given on the command line are recorded in
    ``settings``).
    """
    source = Path(source)
    try:
        sha256: str | None = hashlib.sha256(read_config_bytes(source)).hexdigest()
    except ConfigError:
        sha256 = None
    return _build_run_config(dict(config), source, sha256)


def _build_run_config(data: Any, config_path: Path, config_sha256: str | None) -> RunConfig:
    located = schema_problems(data, load_schema("config.schema.yaml"))
    if located:
        # Without valid settings the sheets cannot even be found: stop here.
        raise problems_error(
            [
                f"{config_path}, key '{'.'.join(map(str, keys))}': {message}"
                if keys
                else f"{config_path}: {message}"
                for keys, message in located
            ],
            config_path,
        )
    deadline_hours = float(data["deadline_hours"])
    if not math.isfinite(deadline_hours):
        raise ConfigError(f"{config_path}, key 'deadline_hours': {deadline_hours} is not a finite number.")
    settings = _plain_settings(data)
    lots_path, units_path, specs_path = (Path(settings[key]) for key in ("lots", "units", "specs"))
    problems: list[str] = []
    file_sha256: dict[str, str | None] = {str(config_path): config_sha256}

    specs: dict[str, Spec] = {}
    spec_names: tuple[str, ...] | None = None
    try:
        spec_data, file_sha256[str(specs_path)] = load_yaml(specs_path, exact_decimals=True)
        specs, spec_names, spec_problems = specs_from_data(spec_data, specs_path)
        problems.extend(spec_problems)
    except ConfigError as exc:
        problems.append(str(exc))
    lots, lot_ids, lots_sha = _read_lots(lots_path, spec_names, problems)
    file_sha256[str(lots_path)] = lots_sha
    units, units_sha = _read_units(units_path, lot_ids, problems)
    file_sha256[str(units_path)] = units_sha
    reference = _reference(settings.get("reference") or {}, units, config_path, problems)
    classify = _classify_settings(settings.get("classify") or {})
    sequenced = any(u.assay in READS_ASSAYS for u in units)
    if sequenced and classify.cram_reference is not None and not classify.cram_reference.is_file():
        problems.append(
            f"{config_path}, key 'classify.cram_reference': {str(classify.cram_reference)!r} does not exist."
        )
    detection = DetectionSettings(**(settings.get("detection") or {}))
    if sequenced and detection.lod_table is not None:
        try:
            file_sha256[detection.lod_table] = hashlib.sha256(
                Path(detection.lod_table).read_bytes()
            ).hexdigest()
            read_lod_table(Path(detection.lod_table))
        except OSError as exc:
            problems.append(
                f"{config_path}, key 'detection.lod_table': {detection.lod_table!r} cannot be read ({exc})."
            )
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise problems_error(problems, config_path)
    run = RunConfig(
        config_path=config_path,
        results_dir=Path(settings["results"]),
        deadline_hours=deadline_hours,
        lots=lots,
        units=units,
        specs=specs,
        settings=settings,
        file_sha256=file_sha256,
        reference=reference,
        classify=classify,
        detection=detection,
        dose=DoseSettings(
            **{
                k: tuple(v) if isinstance(v, list) else float(v)
                for k, v in (settings.get("dose") or {}).items()
            }
        ),
    )
    problems = independence_problems(run)
    if problems:
        raise problems_error(problems, config_path)
    return run


def independence_problems(run: RunConfig) -> list[str]:
    """Units whose data file is not an independent measurement, one sentence each naming the row.

    A control must be a different measurement from the test it controls (and from the other controls
    it is judged with): a test listed as its own negative control (by the same path) would hide any
    contamination. A data file may serve two
    lots only as a shared run control (a sequencing run's negative or positive control, a flow run's
    sterile medium): one lot's test file in another lot is a copy-and-paste slip that would
    decide the second lot on the first lot's cells. Byte-identical copies under other names are
    caught when the units are measured (rapidrelease.flow.measure, rapidrelease.sterility.calls).
    """
    sheet = run.settings["units"]
    problems: list[str] = []
    files = {(unit.lot_id, unit.unit_id): _data_files(unit) for unit in run.units}
    reported: set[frozenset[tuple[str, str]]] = set()
    for unit in run.units:
        mine = files[unit.lot_id, unit.unit_id]
        for control in run.controls_of(unit):
            shared = mine.keys() & files[control.lot_id, control.unit_id].keys()
            pair = frozenset({(unit.lot_id, unit.unit_id), (control.lot_id, control.unit_id)})
            if shared and pair not in reported:
                reported.add(pair)
                problems.append(
                    f"{sheet} row {control.line}: unit {control.unit_id} of lot {control.lot_id}, a "
                    f"{control.role.replace('_', ' ')}, names the same file as unit {unit.unit_id} (row "
                    f"{unit.line}), {mine[min(shared)]}; a control must be a different measurement "
                    "from the test it controls."
                )
    first_use: dict[str, Unit] = {}
    for unit in run.units:
        for key, written in sorted(files[unit.lot_id, unit.unit_id].items()):
            other = first_use.setdefault(key, unit)
            if other.lot_id == unit.lot_id:
                continue
            if unit.role in SHARED_CONTROL_ROLES and other.role == unit.role and other.assay == unit.assay:
                continue
            problems.append(
                f"{sheet} row {unit.line}: unit {unit.unit_id} of lot {unit.lot_id} names {written}, "
                f"the data file of unit {other.unit_id} of lot {other.lot_id} (row {other.line}); a data "
                "file may serve two lots only as the same shared run control (negative or positive control)."
            )
    return problems


def _data_files(unit: Unit) -> dict[str, str]:
    """The unit's data files, by normalised path (``a/./b.fcs`` and ``a/b.fcs`` are one file), as written."""
    return {os.path.normpath(os.path.abspath(p)): str(p) for p in (unit.path, unit.path2) if p is not None}


def _classify_settings(settings: Mapping[str, Any]) -> ClassifySettings:
    values = dict(settings)
    if "cram_reference" in values:
        values["cram_reference"] = Path(values["cram_reference"])
    return ClassifySettings(**values)


def _reference(
    settings: Mapping[str, Any], units: tuple[Unit, ...], config_path: Path, problems: list[str]
) -> Reference:
    """The configured reference, its FASTA patterns expanded; checked only when a lot is sequenced.

    A flow-only site is not made to keep reference files it never uses.
    """
    key = f"{config_path}, key 'reference"
    sequenced = sorted({u.lot_id for u in units if u.assay in READS_ASSAYS})
    fasta: list[Path] = []
    for pattern in settings.get("fasta", []):
        matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        matched = [m for m in matched if Path(m).is_file()]
        if sequenced and not matched:
            problems.append(f"{key}.fasta': {pattern!r} matches no file.")
        fasta.extend(Path(m) for m in matched if Path(m) not in fasta)
    reference = Reference(
        index=Path(settings["index"]) if "index" in settings else None,
        fasta=tuple(fasta),
        taxonomy=Path(settings["taxonomy"]) if "taxonomy" in settings else None,
        seqid2taxid=Path(settings["seqid2taxid"]) if "seqid2taxid" in settings else None,
        mask_low_complexity=settings.get("mask_low_complexity", True),
        host_sample=settings.get("host_sample", 1),
    )
    if not sequenced:
        return reference
    if reference.index is not None and "fasta" in settings:
        problems.append(f"{key}': give either 'index' or 'fasta' with 'taxonomy', not both.")
    elif reference.index is not None:
        kraken2 = all((reference.index / name).is_file() for name in ("hash.k2d", "opts.k2d", "taxo.k2d"))
        if not (reference.index / "manifest.json").is_file() and not kraken2:
            problems.append(
                f"{key}.index': {str(reference.index)!r} is not an index folder (no manifest.json of "
                "rapidrelease refdb build, nor hash.k2d, opts.k2d and taxo.k2d of kraken2-build)."
            )
    elif "fasta" not in settings:
        lots = ", ".join(sequenced)
        problems.append(
            f"{key}': lot(s) {lots} have sequencing units, so give the k-mer reference: "
            "'index' (a rapidrelease refdb build folder) or 'fasta' with 'taxonomy'."
        )
    elif reference.taxonomy is None:
        problems.append(f"{key}.taxonomy': the FASTA files need a taxonomy (TSV or NCBI nodes.dmp).")
    for name, path in (("taxonomy", reference.taxonomy), ("seqid2taxid", reference.seqid2taxid)):
        if reference.index is None and path is not None and not path.is_file():
            problems.append(f"{key}.{name}': {str(path)!r} does not exist.")
    return reference


def _plain_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """config.yaml as plain JSON-ready values, in file order (dates and the like become text)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        return str(value)

    return plain(data)


def _parse_collected_at(text: str) -> datetime | str:
    """The sampling time, or the phrase saying why ``text`` is not a time-zone-aware ISO 8601 time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"{text!r} is not an ISO 8601 date and time such as {_EXAMPLE_TIME}."
    if moment.tzinfo is None or moment.utcoffset() is None:
        return (
            f"{text!r} has no time zone offset; write it like {_EXAMPLE_TIME}, "
            "since the release window is counted from this moment."
        )
    return moment


def _read_lots(
    path: Path, spec_names: tuple[str, ...] | None, problems: list[str]
) -> tuple[dict[str, Lot], set[str] | None, str | None]:
    """Lots by id, every lot id the sheet names (None if unreadable), the sheet's SHA-256."""
    schema = load_schema("lots.schema.yaml")
    sheet = read_sheet(path, schema, problems)
    if sheet is None:
        return {}, None, None
    checked = row_records(sheet, schema, _check_lot_row)
    lot_ids = {item.row.cells["lot_id"] for item in checked if item.row.cells["lot_id"]}
    _flag_repeats(checked, "lot_id", scope_column=None)
    lots: dict[str, Lot] = {}
    for item in checked:
        cells = item.row.cells
        if cells.get("lot_id", "").casefold() in RESULTS_FILES:
            # results/<lot>/ beside results/index.html: the lot's folder and the index would collide
            item.add("lot_id", f"{cells['lot_id']!r} is the name of a file in the results folder.")
        for column in ("spec", "starting_spec"):
            if spec_names is not None and cells.get(column) and cells[column] not in spec_names:
                item.add(column, f"{cells[column]!r} is not a specification in the specs file.")
        if item.bad:
            continue
        lots[cells["lot_id"]] = Lot(
            lot_id=cells["lot_id"],
            product=cells["product"],
            spec=cells["spec"],
            collected_at=_parse_collected_at(cells["collected_at"]),
            site=cells["site"],
            extra={column: cells[column] for column in sheet.columns if column not in _LOT_COLUMNS},
            tnc_viable=item.record.get("tnc_viable"),
            weight_kg=item.record.get("weight_kg"),
            starting_spec=item.record.get("starting_spec"),
        )
    problems.extend(sheet_problems(checked))
    if not sheet.data_lines:
        problems.append(f"{path}: lists no lots; add one row per lot below the header.")
    return lots, lot_ids, sheet.sha256


def _check_lot_row(record: dict[str, Any]) -> list[tuple[str, str]]:
    if "collected_at" not in record:
        return []
    parsed = _parse_collected_at(record["collected_at"])
    return [("collected_at", parsed)] if isinstance(parsed, str) else []


def _flag_repeats(checked: list[CheckedRow], column: str, scope_column: str | None) -> None:
    """Mark every row whose id in ``column`` (within ``scope_column``) repeats an earlier row's.

    Letter case is ignored: folders named by ids that differ only in case collide on macOS and
    Windows file systems. Rows whose id cells are already invalid are skipped.
    """
    first: dict[tuple[str, str], tuple[int, str]] = {}
    for item in checked:
        if column in item.bad or (scope_column is not None and scope_column in item.bad):
            continue
        value = item.row.cells[column]
        scope = item.row.cells[scope_column] if scope_column is not None else ""
        key = (scope.casefold(), value.casefold())
        if key not in first:
            first[key] = (item.row.line, value)
            continue
        line, written = first[key]
        where = f" for lot {scope}" if scope_column is not None else ""
        if value == written:
            item.add(column, f"{value!r} is already used{where} in row {line}.")
        else:
            item.add(
                column,
                f"{value!r} is already used{where} in row {line} as {written!r} "
                "(ids may not differ only in letter case).",
            )


def _read_units(
    path: Path, lot_ids: set[str] | None, problems: list[str]
) -> tuple[tuple[Unit, ...], str | None]:
    """The units in sheet order and the sheet's SHA-256; units of unknown lots are problems."""
    schema = load_schema("units.schema.yaml")
    sheet = read_sheet(path, schema, problems)
    if sheet is None:
        return (), None
    checked = row_records(sheet, schema, _check_unit_row)
    for item in checked:
        lot_id = item.row.cells["lot_id"]
        if lot_ids is not None and "lot_id" not in item.bad and lot_id not in lot_ids:
            item.add("lot_id", f"{lot_id!r} is not a lot in the lot sheet.")
    _flag_repeats(checked, "unit_id", scope_column="lot_id")
    units = [
        Unit(
            lot_id=item.record["lot_id"],
            unit_id=item.record["unit_id"],
            assay=item.record["assay"],
            role=item.record["role"],
            path=Path(item.record["path"]),
            path2=Path(item.record["path2"]) if "path2" in item.record else None,
            template=Path(item.record["template"]) if "template" in item.record else None,
            volume_ul=item.record.get("volume_ul"),
            library=item.record.get("library", "shotgun"),
            spike_organism=item.record.get("spike_organism"),
            spike_concentration=item.record.get("spike_concentration"),
            spike_unit=item.record.get("spike_unit"),
            stain=item.record.get("stain"),
            line=item.row.line,
        )
        for item in checked
        if not item.bad
    ]
    problems.extend(sheet_problems(checked))
    return tuple(units), sheet.sha256


_SPIKE_COLUMNS = ("spike_organism", "spike_concentration", "spike_unit")
# Snakemake 9 replaces <name> in every input path with a path variable (snakemake.pathvars): a file
# named "tube <b>.fcs" would stop the whole run, and one named "<logs>.fcs" would silently become
# another file's path.
_SNAKEMAKE_PATHVAR = re.compile(r"<[a-z][a-z0-9_]*>")


def _check_unit_row(record: dict[str, Any]) -> list[tuple[str, str]]:
    assay = record.get("assay")
    role = record.get("role")
    if assay in ROLES_OF_ASSAY and role in ALL_ROLES and role not in ROLES_OF_ASSAY[assay]:
        return [
            (
                "role",
                f"{role!r} is not a role of the {assay} assay "
                f"(its roles are {', '.join(ROLES_OF_ASSAY[assay])}).",
            )
        ]
    if assay in FLOW_ASSAYS and "template" not in record:
        return [("template", f"a panel YAML is required for the flow assay {assay!r}.")]
    problems = []
    for column in ("path", "path2", "template"):
        found = _SNAKEMAKE_PATHVAR.search(str(record.get(column, "")))
        if found:
            problems.append(
                (
                    column,
                    f"{found.group(0)!r} in the path is what Snakemake reads as one of its path variables, "
                    "so it would look for another file; rename the file or folder.",
                )
            )
    if "stain" in record and role not in ("compensation", "fmo"):
        problems.append(("stain", "is only used for a compensation or fmo control."))
    if role == "compensation" and "stain" not in record:
        problems.append(
            (
                "stain",
                "is required for a compensation control: the detector its single stain is for, or unstained.",
            )
        )
    if "library" in record and assay not in READS_ASSAYS:
        problems.append(("library", "is only used for the sequencing assays."))
    spiked = assay in READS_ASSAYS and record.get("role") == "positive_control"
    # a test may carry an internal control: all three columns or none
    internal = assay in READS_ASSAYS and role == "test" and any(c in record for c in _SPIKE_COLUMNS)
    for column in _SPIKE_COLUMNS:
        if spiked and column not in record:
            problems.append(
                (
                    column,
                    "is required for a sequencing positive control: the limit of detection is "
                    "computed from the organism spiked in and its concentration.",
                )
            )
        elif internal and column not in record:
            problems.append(
                (
                    column,
                    "is required for a sequencing test's internal control once another spike column "
                    "is given: its recovery needs the organism, its concentration and its unit.",
                )
            )
        elif not (spiked or internal) and column in record:
            problems.append(
                (
                    column,
                    "is only used for a sequencing positive control or a sequencing test's internal control.",
                )
            )
    return problems


def describe_run_config(run: RunConfig) -> str:
    """A short summary for people (``rapidrelease validate-config``), with per-lot warnings.

    A warning names a lot that cannot become a release candidate as configured (no unit of the
    assay and role an attribute needs); it is not an error, because scheduled runs must still
    evaluate the other lots.
    """
    lines = [
        f"{run.config_path}: valid. {_count(len(run.lots), 'lot')}, {_count(len(run.units), 'unit')}, "
        f"{_count(len(run.specs), 'specification')}; results in {run.results_dir}/; "
        f"decision window {run.deadline_hours:g} h from collection."
    ]
    for lot in run.lots.values():
        units = ", ".join(f"{u.unit_id} ({u.assay} {u.role})" for u in run.units_of(lot.lot_id)) or "none"
        lines.append(
            f"  lot {lot.lot_id} at {lot.site}, spec {lot.spec}: collected {lot.collected_at.isoformat()}, "
            f"deadline {run.deadline_of(lot.lot_id).isoformat()}; units: {units}"
        )
    for spec in run.specs.values():
        criteria = "; ".join(f"{a.name} {a.criterion_text()}" for a in spec.attributes)
        lines.append(f"  spec {spec.name}: {criteria}")
    for lot in run.lots.values():
        units = run.units_of(lot.lot_id)
        specs = [run.specs[lot.spec]] + ([run.specs[lot.starting_spec]] if lot.starting_spec else [])
        for attribute in [a for spec in specs for a in spec.attributes]:
            if attribute.assay == "dose":
                # a lot's dose comes from the lot sheet and its phenotype test unit
                missing = [column for column in ("tnc_viable", "weight_kg") if getattr(lot, column) is None]
                if not attribute.metric.endswith("_per_kg") and "weight_kg" in missing:
                    missing.remove("weight_kg")
                found = not missing and any((u.assay, u.role) == ("phenotype", "test") for u in units)
                need = (
                    f"{' or '.join(missing)} in the lot sheet" if missing else "phenotype unit with role test"
                )
            elif attribute.unit_id is not None:
                found = any(u.unit_id == attribute.unit_id for u in units)
                need = f"unit {attribute.unit_id}"
            else:
                found = any(u.assay == attribute.assay and u.role == attribute.role for u in units)
                need = f"{attribute.assay} unit with role {attribute.role}"
            if not found:
                lines.append(
                    f"  warning: lot {lot.lot_id} has no {need}, "
                    f"so attribute {attribute.name} will be INCONCLUSIVE."
                )
        for test in [u for u in units if u.assay in READS_ASSAYS and u.role == "test"]:
            for role in ("negative_control", "positive_control"):
                if not any((u.assay, u.library, u.role) == (test.assay, test.library, role) for u in units):
                    lines.append(
                        f"  warning: lot {lot.lot_id} has no {test.assay} ({test.library}) {role} "
                        f"for unit {test.unit_id}, so its contaminant calls will be INCONCLUSIVE."
                    )
    return "\n".join(lines)


def unmeasured_metric_problems(run: RunConfig, panel_metrics: Mapping[Path, Sequence[str]]) -> list[str]:
    """Specification attributes whose metric no panel of their lots' flow units reports, one sentence each.

    ``panel_metrics`` maps each flow unit's panel file to the metric names it reports. Such an
    attribute could only ever be INCONCLUSIVE (a typing error such as ``viability_percent``), so the
    configuration is refused instead of every lot of the specification failing to be decided.
    Attributes of lots without a unit of the assay stay a warning (:func:`describe_run_config`).
    """
    problems: list[str] = []
    specs_file = run.settings.get("specs", "the specifications")
    for spec in run.specs.values():
        lots = [lot for lot in run.lots.values() if spec.name in (lot.spec, lot.starting_spec)]
        for attribute in spec.attributes:
            where = f"{specs_file}, spec {spec.name!r}, attribute {attribute.name!r}, key 'metric'"
            if attribute.assay == DOSE_ASSAY:
                if attribute.metric not in DOSE_METRICS:
                    problems.append(
                        f"{where}: {attribute.metric!r} is not a dose metric ({', '.join(DOSE_METRICS)})."
                    )
                continue
            if attribute.assay not in FLOW_ASSAYS:
                continue
            panels = sorted(
                {
                    u.template
                    for lot in lots
                    for u in run.units_of(lot.lot_id)
                    if u.template in panel_metrics
                    and u.assay == attribute.assay
                    and (u.unit_id == attribute.unit_id if attribute.unit_id else u.role == attribute.role)
                }
            )
            if panels and not any(attribute.metric in panel_metrics[t] for t in panels):
                reported = sorted({m for t in panels for m in panel_metrics[t]})
                problems.append(
                    f"{where}: {attribute.metric!r} is not a metric of panel "
                    f"{', '.join(map(str, panels))} (it reports {', '.join(reported)})."
                )
    return problems


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

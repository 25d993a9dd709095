"""The synthetic demo lots: simulate each phenotype tube event by event and write the demo folder.

There are no public CAR-T FCS files, so the demo the workflow runs by default is simulated here,
with known truth. One tube per lot is acquired on a simulated LSRFortessa
(:mod:`rapidrelease.synthetic.demo.panel`): debris, doublets, dead and live cells; T cells with a
CAR+ fraction, CD4/CD8 subsets and CD45RA/CCR7 memory phenotypes; NK, B cells and monocytes as the
CD3− rest (:mod:`rapidrelease.synthetic.demo.cells`). Each event's detector signals are built the
way a cytometer makes them: dye abundance times the spillover matrix, plus autofluorescence, then
photon-counting (Poisson) and electronic (Gaussian) noise, so that compensating with the file's own
``$SPILLOVER`` recovers the dye abundances and compensated negatives spread around their
autofluorescence.

Each lot also has the two tubes of the potency assay (:func:`simulate_potency_tube`): the same
cells, instrument and dyes, with intracellular IFN-γ, TNF-α, IL-2 and CD107a in place of four
phenotype markers, after stimulation with CD19 antigen or with medium only
(:mod:`rapidrelease.synthetic.demo.potency`); and a microbial-flow test tube acquired on a bench
cytometer, with the flow run's sterile-medium control
(:mod:`rapidrelease.synthetic.demo.microbial`).

Everything is drawn from one ``numpy.random.Generator`` per tube: the phenotype tube's is seeded
from ``(seed, lot.stream)``, the other tubes' from ``(seed, lot.stream, tube stream)`` (the
sterility reads use tube stream 2, see :mod:`rapidrelease.synthetic.demo.sterility_reads`); and
every keyword that would otherwise carry "now" comes from the lot definition, so the same seed
writes byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.outputs import atomic_path, write_table, write_text
from rapidrelease.synthetic.demo.archive import ARCHIVE_DIR, write_archive
from rapidrelease.synthetic.demo.cells import (
    CYTOKINE_DYES,
    LINEAGES,
    CellDraw,
    draw_cells,
    draw_cytokine_dye,
    draw_debris,
)
from rapidrelease.synthetic.demo.fcs_writer import (
    apheresis_keywords,
    potency_keywords,
    write_fcs,
    write_phenotype_fcs,
)
from rapidrelease.synthetic.demo.lots import DEMO_LOTS, FUNCTIONS, DemoLot
from rapidrelease.synthetic.demo.microbial import FLOW_RUN_ID, write_medium_control, write_microbial_test
from rapidrelease.synthetic.demo.panel import (
    AUTOFLUORESCENCE,
    CHANNELS,
    ELECTRONIC_NOISE_SD,
    MAX_SIGNAL,
    POTENCY_CHANNELS,
    SPILLOVER,
    TIMESTEP_S,
    UNITS_PER_PHOTOELECTRON,
)
from rapidrelease.synthetic.demo.potency import draw_responses
from rapidrelease.synthetic.demo.readme import demo_readme
from rapidrelease.synthetic.demo.sterility_reads import RUN_ID, write_run_controls, write_sterility_reads
from rapidrelease.synthetic.demo.template import (
    MICROBIAL_TEMPLATE_NAME,
    POTENCY_TEMPLATE_NAME,
    TEMPLATE_NAME,
    gating_ml_template,
    microbial_template,
    potency_template,
)
from rapidrelease.synthetic.demo.truth import STARTING_MATERIAL_METRICS, potency_truth_table, truth_table

__all__ = [
    "APHERESIS_STREAM",
    "DEFAULT_SEED",
    "EVENT_KINDS",
    "POTENCY_STIMULATED_STREAM",
    "POTENCY_UNSTIMULATED_STREAM",
    "PotencyTube",
    "SimulatedTube",
    "simulate_apheresis_tube",
    "simulate_potency_tube",
    "simulate_tube",
    "write_demo_lots",
]

DEFAULT_SEED = 20261125
"""Seed of the committed demo in ``resources/demo``."""

EVENT_KINDS: tuple[str, ...] = ("debris", "doublet", "dead", "live")
"""What an event is: a fragment, two cells in one pulse, or one membrane-damaged or intact cell."""

POTENCY_STIMULATED_STREAM = 3
"""Tube stream of a lot's stimulated potency tube: its generator is seeded from (seed, lot.stream, 3)."""
POTENCY_UNSTIMULATED_STREAM = 4
"""Tube stream of a lot's unstimulated potency tube."""
APHERESIS_STREAM = 5
"""Tube stream of a lot's starting-material (apheresis) tube."""

_DEBRIS, _DOUBLET, _DEAD, _LIVE = range(4)
_DOUBLET_HEIGHT_GAIN = (2.0, 5.0, 0.7)  # Beta(a, b) * scale: how much a second cell raises the pulse height


@dataclass(frozen=True)
class SimulatedTube:
    """One simulated acquisition and its per-event truth.

    ``events`` (n_events, 11) float32: the list-mode data in
    :data:`~rapidrelease.synthetic.demo.panel.CHANNELS` order, uncompensated, area units (Time in
    ``$TIMESTEP`` ticks). ``dye`` (n_events, 7) float64: the true dye abundance of each event before
    spillover, autofluorescence and noise, area units. ``autofluorescence`` (n_events, 7) float64:
    each event's autofluorescence per detector, area units. ``labels``: one row per event
    (``event``, ``kind``, ``lineage``, ``cd3``, ``car``, ``cd4``, ``cd8``, ``cd45ra``, ``ccr7``);
    identity is null for debris and doublets. ``duration_s``: time from the start of acquisition to
    the last event, seconds.
    """

    lot: DemoLot
    seed: int
    events: np.ndarray
    dye: np.ndarray
    autofluorescence: np.ndarray
    labels: pl.DataFrame
    duration_s: float


@dataclass(frozen=True)
class PotencyTube(SimulatedTube):
    """One simulated potency tube (``stimulated`` or not) and its per-event truth.

    The fields are those of :class:`SimulatedTube`, with the cytokine dyes in the dye columns of
    :data:`~rapidrelease.synthetic.demo.cells.CYTOKINE_DYES` and ``labels`` one row per event: ``event``,
    ``kind``, ``lineage``, ``cd3``, ``car``, ``activated`` (the latent antigen-activated state),
    ``cd107a``, ``ifng``, ``tnfa``, ``il2`` (whether the cell shows the function); identity is
    null for debris and doublets.
    """

    stimulated: bool


def _lot_rng(seed: int, lot: DemoLot) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, lot.stream]))


def _event_kinds(rng: np.random.Generator, lot: DemoLot) -> np.ndarray:
    n_debris, n_doublet, n_single = rng.multinomial(
        lot.n_events,
        [
            lot.debris_fraction,
            (1 - lot.debris_fraction) * lot.doublet_fraction,
            (1 - lot.debris_fraction) * (1 - lot.doublet_fraction),
        ],
    )
    n_dead = rng.binomial(n_single, 1 - lot.viability)
    kinds = np.repeat(
        np.array([_DEBRIS, _DOUBLET, _DEAD, _LIVE], dtype=np.int8),
        [n_debris, n_doublet, n_dead, n_single - n_dead],
    )
    # Particles reach the laser in random order.
    return rng.permutation(kinds)


def _doublets(rng: np.random.Generator, lot: DemoLot, n: int) -> CellDraw:
    """``n`` pulses of two cells passing the laser together: areas add, height rises less."""
    first, second = (draw_cells(rng, lot, rng.random(n) >= lot.viability) for _ in range(2))
    a, b, scale = _DOUBLET_HEIGHT_GAIN
    height = np.maximum(first.fsc_h, second.fsc_h) * (1 + scale * rng.beta(a, b, size=n))
    return CellDraw.without_identity(
        first.dye + second.dye,
        first.fsc_a + second.fsc_a,
        height,
        first.ssc_a + second.ssc_a,
        first.af_scale + second.af_scale,
    )


def _detect(rng: np.random.Generator, dye: np.ndarray, autofluorescence: np.ndarray) -> np.ndarray:
    """Detector readings (n, 7) from dye abundance and autofluorescence ((n, 7) each, area units).

    Light reaching each detector is the dye abundances times the spillover matrix (FCS 3.1
    $SPILLOVER: row = dye, column = detector) plus autofluorescence; it is counted as Poisson
    photoelectrons and read with Gaussian electronic noise around a restored zero baseline, so dim
    events can read below zero, as on a digital cytometer.
    """
    light = dye @ SPILLOVER + autofluorescence
    photoelectrons = rng.poisson(light / UNITS_PER_PHOTOELECTRON)
    reading = photoelectrons * UNITS_PER_PHOTOELECTRON + ELECTRONIC_NOISE_SD * rng.standard_normal(
        light.shape
    )
    return np.minimum(reading, MAX_SIGNAL)


def _acquisition_times(rng: np.random.Generator, lot: DemoLot) -> np.ndarray:
    """Arrival time of each event in seconds from the start: Poisson arrivals at a drifting rate."""
    n = lot.n_events
    drift = 1 + 0.12 * np.sin(np.linspace(0.0, 3 * np.pi, n) + rng.uniform(0, 2 * np.pi))
    gaps = rng.exponential(1.0 / lot.event_rate_per_s, size=n) / drift
    return rng.uniform(0.05, 0.25) + np.cumsum(gaps)


@dataclass(frozen=True)
class _EventDraw:
    """What each event of a tube is before detection: kind, identity, dye and scatter (see simulate_tube)."""

    kinds: np.ndarray
    lineage: np.ndarray
    flags: dict[str, np.ndarray]
    dye: np.ndarray
    af_scale: np.ndarray
    fsc_a: np.ndarray
    fsc_h: np.ndarray
    ssc_a: np.ndarray

    @property
    def single(self) -> np.ndarray:
        """(n,) bool: events that are one cell, dead or alive."""
        return (self.kinds == _DEAD) | (self.kinds == _LIVE)


def _draw_events(rng: np.random.Generator, lot: DemoLot) -> _EventDraw:
    """Draw every event of one of ``lot``'s LSRFortessa tubes: debris, doublets and single cells."""
    kinds = _event_kinds(rng, lot)
    n = kinds.size

    lineage = np.full(n, -1, dtype=np.int8)
    flags = {name: np.zeros(n, dtype=bool) for name in ("car", "cd4", "cd8", "cd45ra", "ccr7")}
    dye = np.zeros((n, 7))
    af_scale = np.zeros(n)
    fsc_a = np.zeros(n)
    fsc_h = np.zeros(n)
    ssc_a = np.zeros(n)

    single = (kinds == _DEAD) | (kinds == _LIVE)
    parts = (
        (kinds == _DEBRIS, draw_debris(rng, int((kinds == _DEBRIS).sum()))),
        (kinds == _DOUBLET, _doublets(rng, lot, int((kinds == _DOUBLET).sum()))),
        (single, draw_cells(rng, lot, kinds[single] == _DEAD)),
    )
    for mask, draw in parts:
        lineage[mask] = draw.lineage
        for name, values in flags.items():
            values[mask] = getattr(draw, name)
        dye[mask] = draw.dye
        af_scale[mask] = draw.af_scale
        fsc_a[mask] = draw.fsc_a
        fsc_h[mask] = draw.fsc_h
        ssc_a[mask] = draw.ssc_a
    return _EventDraw(kinds, lineage, flags, dye, af_scale, fsc_a, fsc_h, ssc_a)


def _acquire(
    rng: np.random.Generator, lot: DemoLot, draw: _EventDraw
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detect ``draw``'s events; return list-mode ``events`` (n, 11) float32, ``autofluorescence``
    (n, 7) area units, and arrival times (n,) in seconds."""
    n = draw.kinds.size
    autofluorescence = draw.af_scale[:, None] * AUTOFLUORESCENCE
    fluorescence = _detect(rng, draw.dye, autofluorescence)
    times_s = _acquisition_times(rng, lot)

    events = np.empty((n, len(CHANNELS)), dtype=np.float32)
    events[:, 0] = np.minimum(draw.fsc_a, MAX_SIGNAL)
    events[:, 1] = np.minimum(draw.fsc_h, MAX_SIGNAL)
    events[:, 2] = np.minimum(draw.ssc_a, MAX_SIGNAL)
    events[:, 3:10] = fluorescence
    events[:, 10] = times_s / TIMESTEP_S
    return events, autofluorescence, times_s


def _labels(draw: _EventDraw, flags: dict[str, np.ndarray]) -> pl.DataFrame:
    """Per-event labels: ``event``, ``kind``, ``lineage``, ``cd3``, then ``flags`` ((n,) bool each);
    identity columns are null for events that are not one cell."""
    n = draw.kinds.size
    identity = pl.Series(draw.single)
    kind_names = np.array(EVENT_KINDS)[draw.kinds]
    lineage_names = np.where(draw.lineage >= 0, np.array(LINEAGES)[np.maximum(draw.lineage, 0)], None)
    return pl.DataFrame(
        {
            "event": pl.Series(np.arange(n, dtype=np.uint32)),
            "kind": pl.Series(kind_names, dtype=pl.Enum(EVENT_KINDS)),
            "lineage": pl.Series(lineage_names.tolist(), dtype=pl.Enum(LINEAGES)),
            "cd3": pl.Series(draw.lineage == 0),
            **{name: pl.Series(values) for name, values in flags.items()},
        }
    ).with_columns(pl.when(identity).then(pl.col(c)).otherwise(None).alias(c) for c in ("cd3", *flags))


def simulate_tube(lot: DemoLot, seed: int = DEFAULT_SEED) -> SimulatedTube:
    """Simulate the phenotype tube of ``lot`` event by event; deterministic in ``(seed, lot.stream)``."""
    return _phenotype_tube(_lot_rng(seed, lot), lot, seed)


def _phenotype_tube(rng: np.random.Generator, lot: DemoLot, seed: int) -> SimulatedTube:
    """A phenotype-panel tube of ``lot``'s cells, drawn and acquired from ``rng``."""
    draw = _draw_events(rng, lot)
    events, autofluorescence, times_s = _acquire(rng, lot, draw)
    return SimulatedTube(
        lot=lot,
        seed=seed,
        events=events,
        dye=draw.dye,
        autofluorescence=autofluorescence,
        labels=_labels(draw, draw.flags),
        duration_s=float(times_s[-1]),
    )


def apheresis_lot(lot: DemoLot) -> DemoLot:
    """``lot`` as its starting material: the apheresis tube's viability, T cells, events and clock,
    and no CAR+ cell (the cells are not transduced yet)."""
    tube = lot.apheresis
    return replace(
        lot,
        viability=tube.viability,
        cd3_of_live=tube.cd3_of_live,
        car_of_cd3=0.0,
        n_events=tube.n_events,
        acquisition_start=tube.acquisition_start,
    )


def simulate_apheresis_tube(lot: DemoLot, seed: int = DEFAULT_SEED) -> SimulatedTube:
    """Simulate ``lot``'s starting-material tube as a phenotype tube of :func:`apheresis_lot`;
    deterministic in ``(seed, lot.stream, APHERESIS_STREAM)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, lot.stream, APHERESIS_STREAM]))
    return _phenotype_tube(rng, apheresis_lot(lot), seed)


def _potency_dye(rng: np.random.Generator, draw: _EventDraw, positive: np.ndarray) -> np.ndarray:
    """``draw.dye`` (n, 7) with the four cytokine dye columns restained for the potency panel.

    ``positive`` (n_single, 4) bool: the functions of each single cell, in event order. Debris
    keeps its unspecific debris staining. A doublet is two cells: it carries two cells' unspecific
    staining and, per function, a responder's signal if either cell responds, each cell at the
    rate realised among this tube's single cells.
    """
    dye = draw.dye.copy()
    columns = list(CYTOKINE_DYES)
    single = draw.single
    kinds = draw.kinds[single]
    dye[np.flatnonzero(single)[:, None], columns] = draw_cytokine_dye(rng, positive, kinds == _DEAD)
    doublet = draw.kinds == _DOUBLET
    n_doublet = int(doublet.sum())
    rate = positive.mean(axis=0) if positive.size else np.zeros(len(FUNCTIONS))
    either = rng.random((n_doublet, len(FUNCTIONS))) < 1 - (1 - rate) ** 2
    # Doublets are mostly of live cells; the viability detector, not this staining, tells them apart.
    not_dead = np.zeros(n_doublet, dtype=bool)
    pair = draw_cytokine_dye(rng, either, not_dead) + draw_cytokine_dye(rng, np.zeros_like(either), not_dead)
    dye[np.flatnonzero(doublet)[:, None], columns] = pair
    return dye


def simulate_potency_tube(lot: DemoLot, stimulated: bool, seed: int = DEFAULT_SEED) -> PotencyTube:
    """Simulate ``lot``'s stimulated or unstimulated potency tube event by event.

    Deterministic in ``(seed, lot.stream, POTENCY_STIMULATED_STREAM or POTENCY_UNSTIMULATED_STREAM)``.
    The cells are drawn as for the phenotype tube (same fractions, own random stream), then who
    responds is drawn from ``lot.potency`` (:func:`~rapidrelease.synthetic.demo.potency.draw_responses`) and
    the four cytokine dyes are restained; detection, noise and acquisition are the phenotype tube's.
    """
    stream = POTENCY_STIMULATED_STREAM if stimulated else POTENCY_UNSTIMULATED_STREAM
    rng = np.random.default_rng(np.random.SeedSequence([seed, lot.stream, stream]))
    if lot.potency_n_events is not None:
        lot = replace(lot, n_events=lot.potency_n_events)
    draw = _draw_events(rng, lot)
    single = draw.single
    live_t = (draw.kinds[single] == _LIVE) & (draw.lineage[single] == 0)
    activated, positive = draw_responses(rng, lot.potency, live_t, draw.flags["car"][single], stimulated)
    draw = replace(draw, dye=_potency_dye(rng, draw, positive))
    events, autofluorescence, times_s = _acquire(rng, lot, draw)

    n = draw.kinds.size
    flags = {"car": draw.flags["car"], "activated": np.zeros(n, dtype=bool)}
    flags["activated"][single] = activated
    for j, function in enumerate(FUNCTIONS):
        flags[function] = np.zeros(n, dtype=bool)
        flags[function][single] = positive[:, j]
    return PotencyTube(
        lot=lot,
        seed=seed,
        events=events,
        dye=draw.dye,
        autofluorescence=autofluorescence,
        labels=_labels(draw, flags),
        duration_s=float(times_s[-1]),
        stimulated=stimulated,
    )


def _acquisition_end(tube: SimulatedTube) -> timedelta:
    """Whole seconds from ``$BTIM`` to ``$ETIM``: the last event's time, rounded up."""
    return timedelta(seconds=math.ceil(tube.duration_s))


def _write_labels(labels: pl.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        labels.write_parquet(tmp)
    return path


def _write_potency(lot: DemoLot, seed: int, lot_dir: Path) -> tuple[list[Path], pl.DataFrame]:
    """Write ``lot``'s two potency tubes, their per-event labels and ``potency_truth.tsv``.

    Returns the paths written and the truth table.
    """
    written: list[Path] = []
    labels: dict[bool, pl.DataFrame] = {}
    for stimulated in (True, False):
        tube = simulate_potency_tube(lot, stimulated, seed)
        fcs_path = lot_dir / lot.potency_fcs_name(stimulated)
        write_fcs(
            fcs_path,
            tube.events,
            POTENCY_CHANNELS,
            potency_keywords(lot, seed, stimulated, _acquisition_end(tube)),
        )
        labels[stimulated] = tube.labels
        written.append(fcs_path)
    for stimulated in (True, False):
        stem = lot.potency_fcs_name(stimulated).removesuffix(".fcs")
        written.append(_write_labels(labels[stimulated], lot_dir / f"{stem}_events_truth.parquet"))
    truth = potency_truth_table(labels[True], labels[False])
    truth_path = lot_dir / "potency_truth.tsv"
    write_table(truth, truth_path)
    return [*written, truth_path], truth


def _write_apheresis(lot: DemoLot, seed: int, lot_dir: Path) -> list[Path]:
    """Write ``lot``'s starting-material tube and ``apheresis_truth.tsv`` (its metrics from the labels)."""
    tube = simulate_apheresis_tube(lot, seed)
    fcs_path = lot_dir / lot.apheresis_fcs_name
    write_fcs(fcs_path, tube.events, CHANNELS, apheresis_keywords(lot, seed, _acquisition_end(tube)))
    truth_path = lot_dir / "apheresis_truth.tsv"
    write_table(truth_table(tube.labels, STARTING_MATERIAL_METRICS), truth_path)
    return [fcs_path, truth_path]


def write_demo_lots(
    out_dir: Path,
    seed: int = DEFAULT_SEED,
    reference_dir: Path = Path("resources/reference"),
    specs_path: Path = Path("config/specs.yaml"),
) -> list[Path]:
    """Simulate every demo lot and write the demo folder under ``out_dir``; return the paths written.

    Per lot ``<LOT>/<LOT>_phenotype.fcs`` (FCS 3.1, float32, uncompensated, with ``$SPILLOVER``),
    ``<LOT>/truth.tsv`` (release metrics counted from the simulator's own event labels),
    ``<LOT>/events_truth.parquet`` (one row of labels per event, in file order), and the sterility
    sample's reads ``<LOT>/<LOT>_sterility_R1/R2.fastq.gz`` with their truth table; the potency
    tubes ``<LOT>/<LOT>_potency_stimulated.fcs`` and ``_unstimulated.fcs`` with their event labels
    (``<LOT>_potency_<condition>_events_truth.parquet``) and ``<LOT>/potency_truth.tsv``; the
    microbial-flow test tube ``<LOT>/<LOT>_microbial.fcs`` with ``<LOT>/microbial_truth.tsv``. Then
    the sequencing run's controls under ``SEQ-RUN-01/``, drawn from the panel in ``reference_dir``
    (:mod:`rapidrelease.synthetic.demo.sterility_reads`), the flow run's sterile-medium control
    under ``FLOW-RUN-01/``, the GatingML 2.0 templates that gate the files (phenotype, potency,
    microbial flow), the synthetic history of earlier lots the index's trends need,
    ``archive/<lot>/release.json`` decided against the specifications in ``specs_path``
    (:mod:`rapidrelease.synthetic.demo.archive`), and a README documenting the data as synthetic.
    The same ``seed`` writes byte-identical files.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    truths: dict[str, pl.DataFrame] = {}
    potency_truths: dict[str, pl.DataFrame] = {}
    microbial_truths: dict[str, pl.DataFrame] = {}
    for lot in DEMO_LOTS:
        tube = simulate_tube(lot, seed)
        lot_dir = out_dir / lot.lot_id
        fcs_path = lot_dir / lot.fcs_name
        write_phenotype_fcs(fcs_path, tube.events, lot, seed, _acquisition_end(tube))
        truth = truth_table(tube.labels)
        truths[lot.lot_id] = truth
        truth_path = lot_dir / "truth.tsv"
        write_table(truth, truth_path)
        labels_path = _write_labels(tube.labels, lot_dir / "events_truth.parquet")
        written += [fcs_path, truth_path, labels_path]
        written += write_sterility_reads(lot, seed, Path(reference_dir), lot_dir)
        potency_paths, potency_truths[lot.lot_id] = _write_potency(lot, seed, lot_dir)
        written += potency_paths
        microbial_paths, microbial_truths[lot.lot_id] = write_microbial_test(lot, seed, lot_dir)
        written += microbial_paths
        written += _write_apheresis(lot, seed, lot_dir)
    written += write_run_controls(seed, Path(reference_dir), out_dir / RUN_ID)
    medium_paths, microbial_truths[FLOW_RUN_ID] = write_medium_control(seed, out_dir / FLOW_RUN_ID)
    written += medium_paths
    templates = {
        TEMPLATE_NAME: gating_ml_template(),
        POTENCY_TEMPLATE_NAME: potency_template(),
        MICROBIAL_TEMPLATE_NAME: microbial_template(),
    }
    for name, text in templates.items():
        write_text(out_dir / name, text)
        written.append(out_dir / name)
    archive = write_archive(out_dir / ARCHIVE_DIR, seed, Path(specs_path))
    written += [path for path, _ in archive]
    readme_path = out_dir / "README.md"
    write_text(
        readme_path,
        demo_readme(seed, truths, potency_truths, microbial_truths, [release for _, release in archive]),
    )
    written.append(readme_path)
    return written

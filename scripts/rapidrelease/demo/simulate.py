"""The synthetic demo lots: simulate each phenotype tube event by event and write the demo folder.

There are no public CAR-T FCS files, so the demo the workflow runs by default is simulated here,
with known truth. One tube per lot is acquired on a simulated LSRFortessa
(:mod:`rapidrelease.demo.panel`): debris, doublets, dead and live cells; T cells with a CAR+
fraction, CD4/CD8 subsets and CD45RA/CCR7 memory phenotypes; NK, B cells and monocytes as the CD3−
rest (:mod:`rapidrelease.demo.cells`). Each event's detector signals are built the way a cytometer
makes them: dye abundance times the spillover matrix, plus autofluorescence, then photon-counting
(Poisson) and electronic (Gaussian) noise, so that compensating with the file's own ``$SPILLOVER``
recovers the dye abundances and compensated negatives spread around their autofluorescence.

Everything is drawn from one ``numpy.random.Generator`` per lot seeded from ``(seed, lot.stream)``,
and every keyword that would otherwise carry "now" comes from the lot definition, so the same seed
writes byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.demo.cells import LINEAGES, CellDraw, draw_cells, draw_debris
from rapidrelease.demo.fcs_writer import write_phenotype_fcs
from rapidrelease.demo.lots import DEMO_LOTS, DemoLot
from rapidrelease.demo.panel import (
    AUTOFLUORESCENCE,
    CHANNELS,
    ELECTRONIC_NOISE_SD,
    MAX_SIGNAL,
    SPILLOVER,
    TIMESTEP_S,
    UNITS_PER_PHOTOELECTRON,
)
from rapidrelease.demo.readme import demo_readme
from rapidrelease.demo.reads import RUN_ID, write_run_controls, write_sterility_reads
from rapidrelease.demo.template import TEMPLATE_NAME, gating_ml_template
from rapidrelease.demo.truth import truth_table
from rapidrelease.outputs import atomic_path, write_table, write_text

__all__ = ["DEFAULT_SEED", "EVENT_KINDS", "SimulatedTube", "simulate_tube", "write_demo_lots"]

DEFAULT_SEED = 20261125
"""Seed of the committed demo in ``resources/demo``."""

EVENT_KINDS: tuple[str, ...] = ("debris", "doublet", "dead", "live")
"""What an event is: a fragment, two cells in one pulse, or one membrane-damaged or intact cell."""

_DEBRIS, _DOUBLET, _DEAD, _LIVE = range(4)
_DOUBLET_HEIGHT_GAIN = (2.0, 5.0, 0.7)  # Beta(a, b) * scale: how much a second cell raises the pulse height


@dataclass(frozen=True)
class SimulatedTube:
    """One simulated acquisition and its per-event truth.

    ``events`` (n_events, 11) float32: the list-mode data in :data:`~rapidrelease.demo.panel.CHANNELS`
    order, uncompensated, area units (Time in ``$TIMESTEP`` ticks). ``dye`` (n_events, 7) float64:
    the true dye abundance of each event before spillover, autofluorescence and noise, area units.
    ``autofluorescence`` (n_events, 7) float64: each event's autofluorescence per detector, area
    units. ``labels``: one row per event (``event``, ``kind``, ``lineage``, ``cd3``, ``car``,
    ``cd4``, ``cd8``, ``cd45ra``, ``ccr7``); identity is null for debris and doublets.
    ``duration_s``: time from the start of acquisition to the last event, seconds.
    """

    lot: DemoLot
    seed: int
    events: np.ndarray
    dye: np.ndarray
    autofluorescence: np.ndarray
    labels: pl.DataFrame
    duration_s: float


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


def simulate_tube(lot: DemoLot, seed: int = DEFAULT_SEED) -> SimulatedTube:
    """Simulate the phenotype tube of ``lot`` event by event; deterministic in ``(seed, lot.stream)``."""
    rng = _lot_rng(seed, lot)
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

    autofluorescence = af_scale[:, None] * AUTOFLUORESCENCE
    fluorescence = _detect(rng, dye, autofluorescence)
    times_s = _acquisition_times(rng, lot)

    events = np.empty((n, len(CHANNELS)), dtype=np.float32)
    events[:, 0] = np.minimum(fsc_a, MAX_SIGNAL)
    events[:, 1] = np.minimum(fsc_h, MAX_SIGNAL)
    events[:, 2] = np.minimum(ssc_a, MAX_SIGNAL)
    events[:, 3:10] = fluorescence
    events[:, 10] = times_s / TIMESTEP_S

    identity = pl.Series(single)
    kind_names = np.array(EVENT_KINDS)[kinds]
    lineage_names = np.where(lineage >= 0, np.array(LINEAGES)[np.maximum(lineage, 0)], None)
    labels = pl.DataFrame(
        {
            "event": pl.Series(np.arange(n, dtype=np.uint32)),
            "kind": pl.Series(kind_names, dtype=pl.Enum(EVENT_KINDS)),
            "lineage": pl.Series(lineage_names.tolist(), dtype=pl.Enum(LINEAGES)),
            "cd3": pl.Series(lineage == 0),
            **{name: pl.Series(values) for name, values in flags.items()},
        }
    ).with_columns(
        pl.when(identity).then(pl.col(c)).otherwise(None).alias(c)
        for c in ("cd3", "car", "cd4", "cd8", "cd45ra", "ccr7")
    )
    return SimulatedTube(
        lot=lot,
        seed=seed,
        events=events,
        dye=dye,
        autofluorescence=autofluorescence,
        labels=labels,
        duration_s=float(times_s[-1]),
    )


def _acquisition_end(tube: SimulatedTube) -> timedelta:
    """Whole seconds from ``$BTIM`` to ``$ETIM``: the last event's time, rounded up."""
    return timedelta(seconds=math.ceil(tube.duration_s))


def write_demo_lots(
    out_dir: Path, seed: int = DEFAULT_SEED, reference_dir: Path = Path("resources/reference")
) -> list[Path]:
    """Simulate every demo lot and write the demo folder under ``out_dir``; return the paths written.

    Per lot ``<LOT>/<LOT>_phenotype.fcs`` (FCS 3.1, float32, uncompensated, with ``$SPILLOVER``),
    ``<LOT>/truth.tsv`` (release metrics counted from the simulator's own event labels),
    ``<LOT>/events_truth.parquet`` (one row of labels per event, in file order), and the sterility
    sample's reads ``<LOT>/<LOT>_sterility_R1/R2.fastq.gz`` with their truth table, and the
    sequencing run's controls under ``SEQ-RUN-01/``, drawn from the panel in ``reference_dir``
    (:mod:`rapidrelease.demo.reads`); then the GatingML 2.0
    template that gates the files and a README documenting the data as synthetic. The same ``seed``
    writes byte-identical files.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    truths: dict[str, pl.DataFrame] = {}
    for lot in DEMO_LOTS:
        tube = simulate_tube(lot, seed)
        lot_dir = out_dir / lot.lot_id
        fcs_path = lot_dir / lot.fcs_name
        write_phenotype_fcs(fcs_path, tube.events, lot, seed, _acquisition_end(tube))
        truth = truth_table(tube.labels)
        truths[lot.lot_id] = truth
        truth_path = lot_dir / "truth.tsv"
        write_table(truth, truth_path)
        labels_path = lot_dir / "events_truth.parquet"
        with atomic_path(labels_path) as tmp:
            tube.labels.write_parquet(tmp)
        written += [fcs_path, truth_path, labels_path]
        written += write_sterility_reads(lot, seed, Path(reference_dir), lot_dir)
    written += write_run_controls(seed, Path(reference_dir), out_dir / RUN_ID)
    template_path = out_dir / TEMPLATE_NAME
    write_text(template_path, gating_ml_template())
    readme_path = out_dir / "README.md"
    write_text(readme_path, demo_readme(seed, truths))
    written += [template_path, readme_path]
    return written

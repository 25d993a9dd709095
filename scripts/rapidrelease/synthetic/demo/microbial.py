"""The microbial-flow tubes: a lot's product sample and the run's sterile medium on a bench cytometer.

A BD Accuri C6 Plus-like instrument (blue 488 nm laser; FSC-H, SSC-H, FL1-H 533/30 and FL3-H 670LP;
24-bit heights, ``$PnR`` 16777215, float data) acquires a fixed volume of sample stained with
SYBR Green I (nucleic acid, every cell) and propidium iodide (PI, only membrane-damaged cells),
triggered on FL1-H. Heights are in the instrument's units, on the 0 to 16777215 scale.

What passes the laser:

- **noise**: electronic noise, medium particles and dye background just above the trigger: dim
  in every channel, in both the test and the medium control;
- **stain aggregates**: rare SYBR-bright, small particles of dye and free nucleic acid that the
  medium itself carries; they fall in the microbial gate, and are the background the medium
  control measures;
- **product fragments** (test tubes only): lysed-cell debris and membrane fragments of the
  product, dimly SYBR-stained, with a wide spread of scatter (bigger fragments carry more stain);
- **microbes**: only when the sample has them: small SSC, SYBR about two decades above the
  fragments; damaged cells take up PI (bright FL3-H), which quenches some of their SYBR.

Each tube has its own generator: a lot's test tube is seeded from ``(seed, lot.stream, 5)``, the
medium control from ``(seed, 31, 5)``, and the acquisition clock comes from the lot (or the run
here), so the same seed writes byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.outputs import write_table
from rapidrelease.synthetic.demo.fcs_writer import SYNTHETIC_COMMENT, fcs_date, parameter_keywords, write_fcs
from rapidrelease.synthetic.demo.lots import DemoLot
from rapidrelease.synthetic.demo.panel import Channel

__all__ = [
    "FLOW_RUN_ID",
    "MEDIUM_NAME",
    "MEDIUM_START",
    "MEDIUM_STREAM",
    "MICROBIAL_CHANNELS",
    "MICROBIAL_CYTOMETER",
    "MICROBIAL_CYTOMETER_SERIAL",
    "MICROBIAL_KINDS",
    "MICROBIAL_MAX_SIGNAL",
    "MICROBIAL_STREAM",
    "MICROBIAL_TIMESTEP_S",
    "FL1_THRESHOLD",
    "FLOW_RATE_UL_PER_MIN",
    "VOLUME_UL",
    "NOISE_PER_ML",
    "AGGREGATES_PER_ML",
    "FRAGMENTS_PER_ML",
    "MicrobialTube",
    "simulate_microbial_tube",
    "simulate_microbial_test",
    "simulate_medium_control",
    "microbial_keywords",
    "microbial_truth_table",
    "write_microbial_test",
    "write_medium_control",
]

FLOW_RUN_ID = "FLOW-RUN-01"
"""The microbial-flow run both lots' test tubes were acquired in, with its sterile-medium control."""

MEDIUM_NAME = f"{FLOW_RUN_ID}_medium.fcs"
"""File name (and ``$FIL``) of the run's sterile-medium negative control."""

MEDIUM_START = datetime(2026, 11, 25, 11, 27, 54)
"""Cytometer clock at the medium control's first event: before both lots' test tubes."""

MEDIUM_STREAM = 31
"""Stream of the medium control's generator, (seed, 31, MICROBIAL_STREAM): no lot uses 31."""

MICROBIAL_STREAM = 5
"""Tube stream of the microbial-flow tubes: a lot's test tube is seeded from (seed, lot.stream, 5)."""

MICROBIAL_CYTOMETER = "BD Accuri C6 Plus"
MICROBIAL_CYTOMETER_SERIAL = "SIM-C6P-0001"

MICROBIAL_CHANNELS: tuple[Channel, ...] = (
    Channel("FSC-H", "", "", None, 488, "488/10", "PD"),
    Channel("SSC-H", "", "", None, 488, "488/10", "PMT"),
    Channel("FL1-H", "SYBR Green I", "SYBR Green I", None, 488, "533/30", "PMT"),
    Channel("FL3-H", "PI", "propidium iodide", None, 488, "670LP", "PMT"),
    Channel("Time", "", "", None, None, None, None),
)
"""The parameters of a microbial-flow tube, in data order. Heights only, uncompensated."""

MICROBIAL_RANGE = 16777215
"""``$PnR`` of every parameter: the instrument's 24-bit scale."""
MICROBIAL_MAX_SIGNAL = 16777215.0
"""Largest height recorded; brighter pulses are clipped here."""
MICROBIAL_TIMESTEP_S = 0.01
"""``$TIMESTEP``: Time counts 10 ms ticks."""
FL1_THRESHOLD = 1000.0
"""Acquisition trigger on FL1-H (SYBR), height units: the instrument records no dimmer pulse."""
VOLUME_UL = 25.0
"""Volume acquired per tube, µL (a fixed-volume run limit); ``$VOL`` is written in nanolitres."""
FLOW_RATE_UL_PER_MIN = 35.0
"""Sample flow rate, µL per minute (the instrument's medium fluidics setting)."""

NOISE_PER_ML = 60_000.0
"""Triggered noise events per mL of acquired sample, test or medium."""
AGGREGATES_PER_ML = 80.0
"""SYBR-bright stain aggregates per mL that the stained medium carries: about 2 per 25 µL tube."""
FRAGMENTS_PER_ML = 400_000.0
"""Triggered fragments of the product per mL of a (lysed, diluted) product sample."""

MICROBIAL_KINDS: tuple[str, ...] = ("noise", "aggregate", "fragment", "microbe")
"""What an event of a microbial-flow tube is (index into this tuple in :attr:`MicrobialTube.kinds`)."""
_NOISE, _AGGREGATE, _FRAGMENT, _MICROBE = range(4)

_ELECTRONIC_NOISE_SD = np.array([20.0, 20.0, 25.0, 25.0])  # FSC-H, SSC-H, FL1-H, FL3-H
_SYBR_INTO_FL3 = 0.08  # the long-wavelength tail of SYBR Green emission reaches the 670LP detector
_PI_QUENCH = 0.6  # PI takes energy from SYBR bound nearby: damaged cells are dimmer in FL1
_DAMAGED_PI = (900_000.0, 0.5)  # (median, sigma ln) of PI in a damaged microbe, FL3-H
_MICROBE_FL1 = (400_000.0, 0.5)
_MICROBE_SSC = (6_000.0, 0.5)
_MICROBE_FSC = (8_000.0, 0.5)
_FRAGMENT_FL1 = (4_000.0, 0.7)
_FRAGMENT_SSC = (60_000.0, 1.1)
_FRAGMENT_FSC = (80_000.0, 1.0)
_FRAGMENT_PI = (2_000.0, 1.0)  # fragments of dead product cells carry a little PI
_FRAGMENT_SIZE_STAIN = 0.6  # correlation of a fragment's SYBR with its size (SSC)


@dataclass(frozen=True)
class MicrobialTube:
    """One simulated microbial-flow acquisition and its per-event truth.

    ``events`` (n_events, 5) float32: FSC-H, SSC-H, FL1-H, FL3-H in height units and Time in
    ``$TIMESTEP`` ticks (:data:`MICROBIAL_CHANNELS` order). ``kinds`` (n_events,) int8: index
    into :data:`MICROBIAL_KINDS`. ``damaged`` (n_events,) bool: a microbe with a damaged membrane
    (PI+). ``volume_ul``: volume acquired, µL. ``duration_s``: seconds from the start of
    acquisition to the end of the run.
    """

    events: np.ndarray
    kinds: np.ndarray
    damaged: np.ndarray
    volume_ul: float
    duration_s: float

    @property
    def microbes(self) -> int:
        """Microbes acquired."""
        return int((self.kinds == _MICROBE).sum())

    @property
    def intact_microbes(self) -> int:
        """Microbes acquired with intact membranes (PI−)."""
        return int(((self.kinds == _MICROBE) & ~self.damaged).sum())


def _lognormal(median_sigma: tuple[float, float], z: np.ndarray) -> np.ndarray:
    """Log-normal values of the given (median, sigma of ln) from standard normal deviates ``z``."""
    median, sigma = median_sigma
    return median * np.exp(sigma * z)


def _light(rng: np.random.Generator, kind: int, n: int, damaged: np.ndarray) -> np.ndarray:
    """Light (n, 4) of ``n`` particles of ``kind`` in FSC-H, SSC-H, FL1-H, FL3-H, height units."""
    z = rng.standard_normal((n, 4))
    light = np.empty((n, 4))
    if kind == _NOISE:
        light[:, 0] = _lognormal((2_500.0, 0.9), z[:, 0])
        light[:, 1] = _lognormal((1_500.0, 0.9), z[:, 1])
        light[:, 2] = _lognormal((1_500.0, 0.5), z[:, 2])
        light[:, 3] = _lognormal((300.0, 0.6), z[:, 3])
        return light
    if kind == _AGGREGATE:
        light[:, 0] = _lognormal((3_000.0, 0.6), z[:, 0])
        light[:, 1] = _lognormal((2_500.0, 0.6), z[:, 1])
        light[:, 2] = _lognormal((120_000.0, 0.6), z[:, 2])
        light[:, 3] = _SYBR_INTO_FL3 * light[:, 2] + _lognormal((300.0, 0.6), z[:, 3])
        return light
    if kind == _FRAGMENT:
        size = z[:, 1]
        light[:, 1] = _lognormal(_FRAGMENT_SSC, size)
        light[:, 0] = _lognormal(_FRAGMENT_FSC, 0.7 * size + math.sqrt(1 - 0.7**2) * z[:, 0])
        rho = _FRAGMENT_SIZE_STAIN
        light[:, 2] = _lognormal(_FRAGMENT_FL1, rho * size + math.sqrt(1 - rho**2) * z[:, 2])
        light[:, 3] = _SYBR_INTO_FL3 * light[:, 2] + _lognormal(_FRAGMENT_PI, z[:, 3])
        return light
    light[:, 1] = _lognormal(_MICROBE_SSC, z[:, 1])
    light[:, 0] = _lognormal(_MICROBE_FSC, 0.6 * z[:, 1] + 0.8 * z[:, 0])
    sybr = _lognormal(_MICROBE_FL1, z[:, 2])
    light[:, 2] = np.where(damaged, _PI_QUENCH * sybr, sybr)
    pi = np.where(damaged, _lognormal(_DAMAGED_PI, z[:, 3]), _lognormal((300.0, 0.6), z[:, 3]))
    light[:, 3] = _SYBR_INTO_FL3 * light[:, 2] + pi
    return light


def _triggered(
    rng: np.random.Generator, kind: int, n: int, damaged_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Readings (n, 4) and damaged flags (n,) of ``n`` particles of ``kind`` that pass the FL1-H trigger.

    Readings are light plus Gaussian electronic noise, never negative (heights above the restored
    baseline) and clipped at the top of the scale. Rejection keeps exactly the pulses the
    instrument would have triggered on, as for the phenotype tube's debris.
    """
    readings = np.empty((0, 4))
    damaged = np.empty(0, dtype=bool)
    while readings.shape[0] < n:
        m = 2 * (n - readings.shape[0])
        hurt = (rng.random(m) < damaged_fraction) if kind == _MICROBE else np.zeros(m, dtype=bool)
        light = _light(rng, kind, m, hurt)
        reading = np.clip(
            light + _ELECTRONIC_NOISE_SD * rng.standard_normal((m, 4)), 0.0, MICROBIAL_MAX_SIGNAL
        )
        keep = reading[:, 2] >= FL1_THRESHOLD
        readings = np.concatenate([readings, reading[keep]])
        damaged = np.concatenate([damaged, hurt[keep]])
    return readings[:n], damaged[:n]


def simulate_microbial_tube(
    rng: np.random.Generator,
    *,
    microbes_per_ml: float = 0.0,
    damaged_fraction: float = 0.25,
    product: bool = True,
    volume_ul: float = VOLUME_UL,
) -> MicrobialTube:
    """Simulate one microbial-flow tube: ``volume_ul`` µL of a sample with ``microbes_per_ml`` microbes.

    ``product`` adds the product's stained fragments (a test tube; False for sterile medium).
    ``damaged_fraction`` of the microbes are PI+. The number of particles of each kind is a
    Poisson draw of concentration × volume; events arrive in random order, uniformly over the
    run (a Poisson process at constant flow rate).
    """
    volume_ml = volume_ul / 1000.0
    per_ml = {
        _NOISE: NOISE_PER_ML,
        _AGGREGATE: AGGREGATES_PER_ML,
        _FRAGMENT: FRAGMENTS_PER_ML if product else 0.0,
        _MICROBE: microbes_per_ml,
    }
    counts = {kind: int(rng.poisson(concentration * volume_ml)) for kind, concentration in per_ml.items()}
    parts = [_triggered(rng, kind, n, damaged_fraction) for kind, n in counts.items()]
    kinds = np.repeat(np.arange(len(MICROBIAL_KINDS), dtype=np.int8), list(counts.values()))
    readings = np.concatenate([reading for reading, _ in parts])
    damaged = np.concatenate([hurt for _, hurt in parts])
    order = rng.permutation(kinds.size)
    duration_s = 60.0 * volume_ul / FLOW_RATE_UL_PER_MIN
    times_s = np.sort(rng.uniform(0.0, duration_s, kinds.size))

    events = np.empty((kinds.size, len(MICROBIAL_CHANNELS)), dtype=np.float32)
    events[:, :4] = readings[order]
    events[:, 4] = times_s / MICROBIAL_TIMESTEP_S
    return MicrobialTube(events, kinds[order], damaged[order], volume_ul, duration_s)


def _tube_rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, MICROBIAL_STREAM]))


def simulate_microbial_test(lot: DemoLot, seed: int) -> MicrobialTube:
    """``lot``'s microbial-flow test tube (its product, with ``lot.microbial``'s microbes)."""
    return simulate_microbial_tube(
        _tube_rng(seed, lot.stream),
        microbes_per_ml=lot.microbial.microbes_per_ml,
        damaged_fraction=lot.microbial.damaged_fraction,
        product=True,
    )


def simulate_medium_control(seed: int) -> MicrobialTube:
    """The run's negative control: sterile culture medium, stained and acquired like the test tubes."""
    return simulate_microbial_tube(_tube_rng(seed, MEDIUM_STREAM), product=False)


def microbial_keywords(
    tube: MicrobialTube,
    *,
    seed: int,
    start: datetime,
    file_name: str,
    source: str,
    sample: str,
    operator: str,
    tube_name: str,
) -> dict[str, str]:
    """The optional TEXT keywords (FCS 3.1 §3.2) of a microbial-flow tube, in the order written.

    ``$VOL`` is the volume acquired in nanolitres; ``$ETIM`` is the end of the fixed-volume run,
    rounded up to the second; every ``$PnR`` is the 24-bit range.
    """
    end = start + timedelta(seconds=math.ceil(tube.duration_s))
    keywords: dict[str, str] = {
        "$CYT": MICROBIAL_CYTOMETER,
        "$CYTSN": MICROBIAL_CYTOMETER_SERIAL,
        "$DATE": fcs_date(start),
        "$BTIM": start.strftime("%H:%M:%S"),
        "$ETIM": end.strftime("%H:%M:%S"),
        "$FIL": file_name,
        "$INST": "rapidrelease demo QC laboratory (synthetic)",
        "$OP": operator,
        "$SRC": source,
        "$SMNO": sample,
        "$PROJ": "rapidrelease demo",
        "$SYS": "rapidrelease simulate-demo",
        "$COM": f"{SYNTHETIC_COMMENT} (seed {seed})",
        "$TIMESTEP": f"{MICROBIAL_TIMESTEP_S:g}",
        "$VOL": f"{1000.0 * tube.volume_ul:g}",
        **{f"$P{number}R": str(MICROBIAL_RANGE) for number in range(1, len(MICROBIAL_CHANNELS) + 1)},
        **parameter_keywords(MICROBIAL_CHANNELS),
    }
    keywords |= {
        "CREATOR": "rapidrelease simulate-demo (Accuri C6 Plus-like export of synthetic data)",
        "SYNTHETIC": "TRUE",
        "SIMULATION SEED": str(seed),
        "EXPERIMENT NAME": f"{FLOW_RUN_ID} microbial detection",
        "TUBE NAME": tube_name,
        "THRESHOLD": f"FL1-H,{FL1_THRESHOLD:.0f}",
        "FLUIDICS": f"Medium ({FLOW_RATE_UL_PER_MIN:g} uL/min)",
        "RUN LIMIT": f"{tube.volume_ul:g} uL",
        "STAIN": "SYBR Green I 1x + propidium iodide 3 uM, 15 min, 37 C",
    }
    return keywords


def microbial_truth_table(tube: MicrobialTube) -> pl.DataFrame:
    """The microbes a tube holds, from its labels: columns ``metric``, ``value``, ``events``, ``volume_ul``.

    Rows: ``microbes_simulated`` (count), ``microbes_per_ml`` and ``intact_per_ml`` (PI− microbes)
    per mL of acquired volume, and ``stain_aggregates`` (count of the SYBR-bright background
    particles the medium carries, which the microbial gate cannot tell from microbes).
    """
    volume_ml = tube.volume_ul / 1000.0
    aggregates = int((tube.kinds == _AGGREGATE).sum())
    rows = [
        ("microbes_simulated", float(tube.microbes), tube.microbes),
        ("microbes_per_ml", round(tube.microbes / volume_ml, 4), tube.microbes),
        ("intact_per_ml", round(tube.intact_microbes / volume_ml, 4), tube.intact_microbes),
        ("stain_aggregates", float(aggregates), aggregates),
    ]
    return pl.DataFrame(
        [(*row, tube.volume_ul) for row in rows],
        schema={"metric": pl.String, "value": pl.Float64, "events": pl.Int64, "volume_ul": pl.Float64},
        orient="row",
    )


def write_microbial_test(lot: DemoLot, seed: int, lot_dir: Path) -> tuple[list[Path], pl.DataFrame]:
    """Write ``<LOT>_microbial.fcs`` and ``microbial_truth.tsv`` into ``lot_dir``.

    Returns their paths and the truth table.
    """
    tube = simulate_microbial_test(lot, seed)
    fcs_path = lot_dir / lot.microbial_fcs_name
    keywords = microbial_keywords(
        tube,
        seed=seed,
        start=lot.microbial_start,
        file_name=lot.microbial_fcs_name,
        source=f"{lot.lot_id} CAR-T drug product, microbial detection sample",
        sample=lot.lot_id,
        operator=lot.operator,
        tube_name="Microbial test",
    )
    write_fcs(fcs_path, tube.events, MICROBIAL_CHANNELS, keywords)
    truth = microbial_truth_table(tube)
    truth_path = lot_dir / "microbial_truth.tsv"
    write_table(truth, truth_path)
    return [fcs_path, truth_path], truth


def write_medium_control(
    seed: int, run_dir: Path, operator: str = "qc.analyst1"
) -> tuple[list[Path], pl.DataFrame]:
    """Write the run's ``<RUN>_medium.fcs`` and ``<RUN>_medium_truth.tsv`` into ``run_dir``.

    Returns their paths and the truth table.
    """
    tube = simulate_medium_control(seed)
    fcs_path = run_dir / MEDIUM_NAME
    keywords = microbial_keywords(
        tube,
        seed=seed,
        start=MEDIUM_START,
        file_name=MEDIUM_NAME,
        source="Sterile culture medium (negative control)",
        sample=f"{FLOW_RUN_ID} medium",
        operator=operator,
        tube_name="Medium negative control",
    )
    write_fcs(fcs_path, tube.events, MICROBIAL_CHANNELS, keywords)
    truth = microbial_truth_table(tube)
    truth_path = run_dir / f"{FLOW_RUN_ID}_medium_truth.tsv"
    write_table(truth, truth_path)
    return [fcs_path, truth_path], truth

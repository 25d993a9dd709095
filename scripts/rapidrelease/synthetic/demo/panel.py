"""The simulated instrument and phenotype panel: channels, detectors, spillover and detector noise.

A BD LSRFortessa-like cytometer (blue 488 nm, yellow-green 561 nm, red 640 nm and violet 405 nm
lasers) acquiring one CAR-T phenotype tube and the two tubes of the potency assay, which use the
same dyes (and so the same spillover) with four of them on intracellular cytokine antibodies
(:data:`POTENCY_CHANNELS`). Detector names follow the FACSDiva habit of naming a
detector by laser and band centre (``B530-A`` is the 530/30 filter behind the blue laser).

Intensities everywhere in :mod:`rapidrelease.synthetic.demo` are in the instrument's area units, the scale of
an 18-bit channel (``$PnR`` 262144), as FACSDiva writes float list-mode data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "Channel",
    "CHANNELS",
    "POTENCY_MARKERS",
    "POTENCY_CHANNELS",
    "FLUORESCENCE",
    "SPILLOVER",
    "AUTOFLUORESCENCE",
    "UNITS_PER_PHOTOELECTRON",
    "ELECTRONIC_NOISE_SD",
    "CHANNEL_RANGE",
    "MAX_SIGNAL",
    "TIMESTEP_S",
    "FSC_THRESHOLD",
    "spillover_keyword",
]

CHANNEL_RANGE = 262144
"""``$PnR`` of every area/height parameter: an 18-bit scale, as FACSDiva writes float data."""

MAX_SIGNAL = 262143.0
"""Largest value the instrument records; brighter pulses are clipped here (saturation)."""

FSC_THRESHOLD = 5000.0
"""Acquisition trigger on FSC-H, area units: the instrument records no smaller pulse."""

TIMESTEP_S = 0.01
"""``$TIMESTEP``: the Time parameter counts 10 ms ticks, as on a FACSDiva instrument."""


@dataclass(frozen=True)
class Channel:
    """One parameter of the list-mode data set (FCS 3.1 §3.2, the ``$Pn*`` TEXT keywords).

    ``pnn`` is the detector name ($PnN), ``pns`` the marker ($PnS, empty for scatter and Time),
    ``fluorochrome`` the dye the detector is assigned to, ``voltage`` the PMT/photodiode voltage
    ($PnV, volts), ``laser_nm`` the excitation wavelength ($PnL, nm), ``filter`` the emission
    filter ($PnF) and ``detector`` the detector type ($PnT).
    """

    pnn: str
    pns: str
    fluorochrome: str
    voltage: int | None
    laser_nm: int | None
    filter: str | None
    detector: str | None


CHANNELS: tuple[Channel, ...] = (
    Channel("FSC-A", "", "", 380, 488, "488/10", "PD"),
    Channel("FSC-H", "", "", 380, 488, "488/10", "PD"),
    Channel("SSC-A", "", "", 255, 488, "488/10", "PMT"),
    Channel("B530-A", "CAR", "FITC", 475, 488, "530/30", "PMT"),
    Channel("YG586-A", "CCR7", "PE", 520, 561, "586/15", "PMT"),
    Channel("B695-A", "CD8", "PerCP-Cy5.5", 575, 488, "695/40", "PMT"),
    Channel("R780-A", "Viability", "Fixable Viability Dye NIR", 610, 640, "780/60", "PMT"),
    Channel("V450-A", "CD45RA", "BV421", 430, 405, "450/50", "PMT"),
    Channel("V525-A", "CD3", "BV510", 455, 405, "525/50", "PMT"),
    Channel("V610-A", "CD4", "BV605", 505, 405, "610/20", "PMT"),
    Channel("Time", "", "", None, None, None, None),
)
"""The parameters in the order they are stored in each event (FCS 3.1 §3.3, list mode)."""

POTENCY_MARKERS: dict[str, str] = {"YG586-A": "IFNg", "B695-A": "TNFa", "V450-A": "CD107a", "V610-A": "IL2"}
"""$PnS of the potency tubes' cytokine detectors: PE IFN-γ, PerCP-Cy5.5 TNF-α, BV421 CD107a and BV605
IL-2 (intracellular, after brefeldin A/monensin; anti-CD107a present during the stimulation)."""

POTENCY_CHANNELS: tuple[Channel, ...] = tuple(
    replace(c, pns=POTENCY_MARKERS.get(c.pnn, c.pns)) for c in CHANNELS
)
"""The potency tubes' parameters: :data:`CHANNELS` with the cytokine markers in place of CCR7, CD8,
CD45RA and CD4. CAR (FITC), CD3 (BV510) and viability (NIR) are stained as in the phenotype tube."""

FLUORESCENCE: tuple[str, ...] = tuple(c.pnn for c in CHANNELS if c.fluorochrome)
"""The seven fluorescence detectors ($PnN), in data order; also the order of every per-dye array."""

# Rows: fluorochrome (the dye assigned to the detector of the same index); columns: detector.
# Entry [i, j] is the signal dye i gives in detector j relative to its own detector, the FCS 3.1
# $SPILLOVER convention, so observed = true @ SPILLOVER for a row vector of dye abundances.
# Values are of the size seen on a 4-laser Fortessa; the FITC->PE and BV510->BV421 terms are kept
# large on purpose so that a transposed matrix would visibly mis-compensate.
SPILLOVER: np.ndarray = np.array(
    [
        # B530   YG586  B695   R780   V450   V525   V610
        [1.000, 0.200, 0.035, 0.000, 0.000, 0.010, 0.000],  # FITC
        [0.008, 1.000, 0.020, 0.000, 0.000, 0.000, 0.012],  # PE
        [0.000, 0.010, 1.000, 0.040, 0.000, 0.000, 0.004],  # PerCP-Cy5.5
        [0.000, 0.000, 0.012, 1.000, 0.000, 0.000, 0.000],  # viability dye NIR
        [0.000, 0.000, 0.000, 0.000, 1.000, 0.120, 0.015],  # BV421
        [0.020, 0.005, 0.000, 0.000, 0.100, 1.000, 0.080],  # BV510
        [0.000, 0.050, 0.020, 0.002, 0.000, 0.010, 1.000],  # BV605
    ]
)
SPILLOVER.setflags(write=False)

AUTOFLUORESCENCE: np.ndarray = np.array([260.0, 110.0, 90.0, 25.0, 170.0, 240.0, 80.0])
"""Median autofluorescence of a live activated T cell (FSC-A 95 000) per detector, area units.

Violet and blue detectors see most of it, as in real unstained lymphoblasts.
"""
AUTOFLUORESCENCE.setflags(write=False)

UNITS_PER_PHOTOELECTRON: np.ndarray = np.array([6.0, 4.0, 8.0, 12.0, 5.0, 5.0, 7.0])
"""Area units one photoelectron adds per detector at the panel's voltages (sets Poisson spread)."""
UNITS_PER_PHOTOELECTRON.setflags(write=False)

ELECTRONIC_NOISE_SD: np.ndarray = np.array([22.0, 18.0, 25.0, 30.0, 18.0, 22.0, 22.0])
"""Standard deviation of the baseline-restored electronic noise per detector, area units."""
ELECTRONIC_NOISE_SD.setflags(write=False)


def spillover_keyword() -> str:
    """The ``$SPILLOVER`` value (FCS 3.1 §3.2): n, the n detector $PnN, then the n×n matrix row by row."""
    values = ",".join(f"{v:.3f}" for v in SPILLOVER.ravel())
    return f"{len(FLUORESCENCE)},{','.join(FLUORESCENCE)},{values}"

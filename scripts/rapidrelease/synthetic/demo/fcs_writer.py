"""Writing a simulated tube as an FCS 3.1 list-mode file with the keywords a cytometer writes.

flowio.create_fcs writes the HEADER, the required TEXT keywords ($BEGINDATA … $TOT, $PnB/E/G/R/N/S)
and float32 DATA; this module supplies everything else an LSRFortessa export (phenotype and
potency tubes) or a BD Accuri C6 Plus export (microbial-flow tubes) carries, with values derived
from the lot definition only, never from the clock.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import flowio
import numpy as np

from rapidrelease.outputs import atomic_path
from rapidrelease.synthetic.demo.lots import DemoLot
from rapidrelease.synthetic.demo.panel import (
    CHANNELS,
    FSC_THRESHOLD,
    POTENCY_CHANNELS,
    TIMESTEP_S,
    Channel,
    spillover_keyword,
)

__all__ = [
    "CYTOMETER",
    "apheresis_keywords",
    "CYTOMETER_SERIAL",
    "SYNTHETIC_COMMENT",
    "fcs_date",
    "fortessa_keywords",
    "parameter_keywords",
    "phenotype_keywords",
    "potency_keywords",
    "write_fcs",
    "write_phenotype_fcs",
]

CYTOMETER = "LSRFortessa"
CYTOMETER_SERIAL = "SIM-LSRF-0001"
SYNTHETIC_COMMENT = "SYNTHETIC DATA simulated by rapidrelease simulate-demo; not a measurement of real cells"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_NO_CRC = b"00000000"  # FCS 3.1: the CRC field is eight ASCII zeros when no CRC is computed


def fcs_date(moment: datetime) -> str:
    """``moment`` as dd-mmm-yyyy with English month abbreviations (FCS 3.1 $DATE), whatever the locale."""
    return f"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d}"


def parameter_keywords(channels: Sequence[Channel]) -> dict[str, str]:
    """The optional per-parameter keywords ($PnV, $PnL, $PnF, $PnT) of ``channels``, in parameter order."""
    keywords: dict[str, str] = {}
    for number, channel in enumerate(channels, start=1):
        if channel.voltage is not None:
            keywords[f"$P{number}V"] = str(channel.voltage)
        if channel.laser_nm is not None:
            keywords[f"$P{number}L"] = str(channel.laser_nm)
        if channel.filter is not None:
            keywords[f"$P{number}F"] = channel.filter
        if channel.detector is not None:
            keywords[f"$P{number}T"] = channel.detector
    return keywords


def fortessa_keywords(
    *,
    lot: DemoLot,
    seed: int,
    start: datetime,
    duration: timedelta,
    file_name: str,
    source: str,
    experiment: str,
    tube: str,
    channels: Sequence[Channel] = CHANNELS,
) -> dict[str, str]:
    """The optional TEXT keywords of one of ``lot``'s LSRFortessa tubes (FCS 3.1 §3.2), in the order written.

    ``start`` is the cytometer clock at the first event ($DATE, $BTIM), ``duration`` the time to
    the last event (whole seconds, sets $ETIM), ``file_name`` the $FIL, ``source`` the $SRC,
    ``experiment`` and ``tube`` the FACSDiva EXPERIMENT NAME and TUBE NAME. Standard keywords
    carry their ``$``; the rest are the vendor keywords a FACSDiva export adds.
    """
    end = start + duration
    keywords: dict[str, str] = {
        "$CYT": CYTOMETER,
        "$CYTSN": CYTOMETER_SERIAL,
        "$DATE": fcs_date(start),
        "$BTIM": start.strftime("%H:%M:%S"),
        "$ETIM": end.strftime("%H:%M:%S"),
        "$FIL": file_name,
        "$INST": "rapidrelease demo QC laboratory (synthetic)",
        "$OP": lot.operator,
        "$SRC": source,
        "$SMNO": lot.lot_id,
        "$PROJ": "rapidrelease demo",
        "$SYS": "rapidrelease simulate-demo",
        "$COM": f"{SYNTHETIC_COMMENT} (seed {seed})",
        "$TIMESTEP": f"{TIMESTEP_S:g}",
        "$SPILLOVER": spillover_keyword(),
        **parameter_keywords(channels),
    }
    keywords |= {
        "CREATOR": "rapidrelease simulate-demo (FACSDiva-like export of synthetic data)",
        "SYNTHETIC": "TRUE",
        "SIMULATION SEED": str(seed),
        "EXPERIMENT NAME": experiment,
        "TUBE NAME": tube,
        "SETTINGS": "Cytometer",
        "THRESHOLD": f"FSC,{FSC_THRESHOLD:.0f}",
        "WINDOW EXTENSION": "10.00",
        "FSC ASF": "0.78",
        "LASER1NAME": "Blue",
        "LASER2NAME": "YellowGreen",
        "LASER3NAME": "Red",
        "LASER4NAME": "Violet",
        "APPLY COMPENSATION": "TRUE",
        "EXPORT TIME": f"{fcs_date(end)}-{end:%H:%M:%S}",
    }
    return keywords


def phenotype_keywords(lot: DemoLot, seed: int, duration: timedelta) -> dict[str, str]:
    """The optional TEXT keywords of ``lot``'s phenotype tube (FCS 3.1 §3.2), in the order written.

    ``duration`` is the time from the first to the last event (whole seconds) and sets ``$ETIM``.
    """
    return fortessa_keywords(
        lot=lot,
        seed=seed,
        start=lot.acquisition_start,
        duration=duration,
        file_name=lot.fcs_name,
        source=f"{lot.lot_id} CAR-T drug product",
        experiment=f"{lot.lot_id} release phenotype",
        tube="CAR-T phenotype",
    )


def apheresis_keywords(lot: DemoLot, seed: int, duration: timedelta) -> dict[str, str]:
    """The optional TEXT keywords of ``lot``'s starting-material (apheresis) tube, in the order written;
    ``duration`` sets ``$ETIM`` as for :func:`phenotype_keywords`."""
    return fortessa_keywords(
        lot=lot,
        seed=seed,
        start=lot.apheresis.acquisition_start,
        duration=duration,
        file_name=lot.apheresis_fcs_name,
        source=f"{lot.lot_id} starting material, leukapheresis unit",
        experiment=f"{lot.lot_id} starting material acceptance",
        tube="Apheresis phenotype",
    )


def potency_keywords(lot: DemoLot, seed: int, stimulated: bool, duration: timedelta) -> dict[str, str]:
    """The optional TEXT keywords of ``lot``'s stimulated or unstimulated potency tube, in the order written.

    The potency tubes are acquired after the phenotype tube, on the same instrument and settings,
    with the cytokine markers as their detectors' $PnS; ``duration`` sets ``$ETIM`` as for
    :func:`phenotype_keywords`.
    """
    condition = "stimulated with plate-bound CD19 antigen" if stimulated else "unstimulated (medium only)"
    return fortessa_keywords(
        lot=lot,
        seed=seed,
        start=lot.stimulated_start if stimulated else lot.unstimulated_start,
        duration=duration,
        file_name=lot.potency_fcs_name(stimulated),
        source=f"{lot.lot_id} CAR-T drug product, {condition}, 5 h",
        experiment=f"{lot.lot_id} release potency",
        tube="Potency stimulated" if stimulated else "Potency unstimulated",
        channels=POTENCY_CHANNELS,
    )


def write_fcs(
    path: Path, events: np.ndarray, channels: Sequence[Channel], keywords: Mapping[str, str]
) -> None:
    """Write ``events`` ((n_events, len(channels)), float32, ``channels`` order) as FCS 3.1 at ``path``.

    DATA is float32 ($DATATYPE F, §3.2 and §3.3), little-endian ($BYTEORD 1,2,3,4), list mode, with
    $PnE 0,0 and $PnG 1; $PnR is 262144 unless ``keywords`` give ``$PnR``. ``keywords`` are the
    optional TEXT keywords, written in their order. The CRC field closing the data set is written
    as eight ASCII zeros (no CRC computed).
    """
    data = array("f")
    data.frombytes(np.ascontiguousarray(events, dtype="<f4").tobytes())
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        flowio.create_fcs(
            fh,
            data,
            channel_names=[c.pnn for c in channels],
            opt_channel_names=[c.pns or None for c in channels],
            metadata_dict=dict(keywords),
        )
        fh.write(_NO_CRC)


def write_phenotype_fcs(path: Path, events: np.ndarray, lot: DemoLot, seed: int, duration: timedelta) -> None:
    """Write ``events`` ((n_events, 11) float32, CHANNELS order, uncompensated) as FCS 3.1 at ``path``.

    Each area/height parameter has $PnR 262144, $PnE 0,0 and $PnG 1 (see :func:`write_fcs`).
    """
    write_fcs(path, events, CHANNELS, phenotype_keywords(lot, seed, duration))

"""Writing a simulated tube as an FCS 3.1 list-mode file with the keywords a cytometer writes.

flowio.create_fcs writes the HEADER, the required TEXT keywords ($BEGINDATA … $TOT, $PnB/E/G/R/N/S)
and float32 DATA; this module supplies everything else an LSRFortessa export carries, with values
derived from the lot definition only, never from the clock.
"""

from __future__ import annotations

from array import array
from datetime import datetime, timedelta
from pathlib import Path

import flowio
import numpy as np

from rapidrelease.demo.lots import DemoLot
from rapidrelease.demo.panel import CHANNELS, FSC_THRESHOLD, TIMESTEP_S, spillover_keyword
from rapidrelease.outputs import atomic_path

__all__ = ["CYTOMETER", "CYTOMETER_SERIAL", "SYNTHETIC_COMMENT", "phenotype_keywords", "write_phenotype_fcs"]

CYTOMETER = "LSRFortessa"
CYTOMETER_SERIAL = "SIM-LSRF-0001"
SYNTHETIC_COMMENT = "SYNTHETIC DATA simulated by rapidrelease simulate-demo; not a measurement of real cells"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_NO_CRC = b"00000000"  # FCS 3.1: the CRC field is eight ASCII zeros when no CRC is computed


def _fcs_date(moment: datetime) -> str:
    # dd-mmm-yyyy with English month abbreviations (FCS 3.1 $DATE), whatever the process locale.
    return f"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d}"


def phenotype_keywords(lot: DemoLot, seed: int, duration: timedelta) -> dict[str, str]:
    """The optional TEXT keywords of ``lot``'s phenotype tube (FCS 3.1 §3.2), in the order written.

    ``duration`` is the time from the first to the last event (whole seconds) and sets ``$ETIM``.
    Standard keywords carry their ``$``; the rest are the vendor keywords a FACSDiva export adds.
    """
    start = lot.acquisition_start
    end = start + duration
    keywords: dict[str, str] = {
        "$CYT": CYTOMETER,
        "$CYTSN": CYTOMETER_SERIAL,
        "$DATE": _fcs_date(start),
        "$BTIM": start.strftime("%H:%M:%S"),
        "$ETIM": end.strftime("%H:%M:%S"),
        "$FIL": lot.fcs_name,
        "$INST": "rapidrelease demo QC laboratory (synthetic)",
        "$OP": lot.operator,
        "$SRC": f"{lot.lot_id} CAR-T drug product",
        "$SMNO": lot.lot_id,
        "$PROJ": "rapidrelease demo",
        "$SYS": "rapidrelease simulate-demo",
        "$COM": f"{SYNTHETIC_COMMENT} (seed {seed})",
        "$TIMESTEP": f"{TIMESTEP_S:g}",
        "$SPILLOVER": spillover_keyword(),
    }
    for number, channel in enumerate(CHANNELS, start=1):
        if channel.voltage is not None:
            keywords[f"$P{number}V"] = str(channel.voltage)
        if channel.laser_nm is not None:
            keywords[f"$P{number}L"] = str(channel.laser_nm)
        if channel.filter is not None:
            keywords[f"$P{number}F"] = channel.filter
        if channel.detector is not None:
            keywords[f"$P{number}T"] = channel.detector
    keywords |= {
        "CREATOR": "rapidrelease simulate-demo (FACSDiva-like export of synthetic data)",
        "SYNTHETIC": "TRUE",
        "SIMULATION SEED": str(seed),
        "EXPERIMENT NAME": f"{lot.lot_id} release phenotype",
        "TUBE NAME": "CAR-T phenotype",
        "SETTINGS": "Cytometer",
        "THRESHOLD": f"FSC,{FSC_THRESHOLD:.0f}",
        "WINDOW EXTENSION": "10.00",
        "FSC ASF": "0.78",
        "LASER1NAME": "Blue",
        "LASER2NAME": "YellowGreen",
        "LASER3NAME": "Red",
        "LASER4NAME": "Violet",
        "APPLY COMPENSATION": "TRUE",
        "EXPORT TIME": f"{_fcs_date(end)}-{end:%H:%M:%S}",
    }
    return keywords


def write_phenotype_fcs(path: Path, events: np.ndarray, lot: DemoLot, seed: int, duration: timedelta) -> None:
    """Write ``events`` ((n_events, 11) float32, CHANNELS order, uncompensated) as FCS 3.1 at ``path``.

    DATA is float32 ($DATATYPE F, §3.2 and §3.3), little-endian ($BYTEORD 1,2,3,4), list mode; each
    area/height parameter has $PnR 262144, $PnE 0,0 and $PnG 1. The CRC field closing the data set
    is written as eight ASCII zeros (no CRC computed).
    """
    data = array("f")
    data.frombytes(np.ascontiguousarray(events, dtype="<f4").tobytes())
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        flowio.create_fcs(
            fh,
            data,
            channel_names=[c.pnn for c in CHANNELS],
            opt_channel_names=[c.pns or None for c in CHANNELS],
            metadata_dict=phenotype_keywords(lot, seed, duration),
        )
        fh.write(_NO_CRC)

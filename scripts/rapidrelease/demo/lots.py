"""The two synthetic demo lots: what each simulated CAR-T product is made of.

Every number here is a probability the simulator draws each event's identity from; the realised
counts (and so the truth tables) differ from them by sampling noise only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Quadrants", "DemoLot", "DEMO_LOTS"]

Quadrants = tuple[float, float, float, float]
"""Four fractions summing to 1.

For CD4/CD8: (CD4+CD8−, CD4+CD8+, CD4−CD8+, CD4−CD8−). For memory: (CD45RA+CCR7+ naive/stem-like,
CD45RA−CCR7+ central memory, CD45RA−CCR7− effector memory, CD45RA+CCR7− TEMRA).
"""


@dataclass(frozen=True)
class DemoLot:
    """One simulated post-manufacture CAR-T drug product and its phenotype-tube acquisition.

    Fractions are probabilities in [0, 1]; ``event_rate_per_s`` is the mean acquisition rate in
    events per second; ``acquisition_start`` is the cytometer's local clock at the first event,
    the source of ``$DATE`` and ``$BTIM`` so that a regenerated file never carries "now".
    """

    lot_id: str
    stream: int
    description: str
    acquisition_start: datetime
    operator: str
    n_events: int
    debris_fraction: float
    doublet_fraction: float
    viability: float
    cd3_of_live: float
    car_of_cd3: float
    cd4_cd8_car_pos: Quadrants
    cd4_cd8_car_neg: Quadrants
    memory_cd4: Quadrants
    memory_cd8: Quadrants
    event_rate_per_s: float

    @property
    def fcs_name(self) -> str:
        """File name of the lot's phenotype tube, also its ``$FIL``."""
        return f"{self.lot_id}_phenotype.fcs"


DEMO_LOTS: tuple[DemoLot, ...] = (
    DemoLot(
        lot_id="DEMO-001",
        stream=1,
        description="meets the demo specification (transduction efficiency about 38 % CAR+ of CD3+)",
        acquisition_start=datetime(2026, 11, 25, 9, 41, 12),
        operator="qc.analyst1",
        n_events=30_000,
        debris_fraction=0.08,
        doublet_fraction=0.05,
        viability=0.88,
        cd3_of_live=0.95,
        car_of_cd3=0.38,
        # CD4:CD8 among CAR+ = 0.545 / 0.390 = 1.40
        cd4_cd8_car_pos=(0.545, 0.020, 0.390, 0.045),
        cd4_cd8_car_neg=(0.560, 0.015, 0.380, 0.045),
        memory_cd4=(0.30, 0.40, 0.22, 0.08),
        memory_cd8=(0.34, 0.24, 0.26, 0.16),
        event_rate_per_s=2100.0,
    ),
    DemoLot(
        lot_id="DEMO-002",
        stream=2,
        description="fails CAR+ (transduction efficiency about 9 % CAR+ of CD3+, below a 15 % specification)",
        acquisition_start=datetime(2026, 11, 25, 10, 7, 45),
        operator="qc.analyst1",
        n_events=30_000,
        debris_fraction=0.10,
        doublet_fraction=0.06,
        viability=0.84,
        cd3_of_live=0.94,
        car_of_cd3=0.09,
        # CD4:CD8 among CAR+ = 0.520 / 0.410 = 1.27
        cd4_cd8_car_pos=(0.520, 0.025, 0.410, 0.045),
        cd4_cd8_car_neg=(0.540, 0.020, 0.395, 0.045),
        memory_cd4=(0.26, 0.38, 0.26, 0.10),
        memory_cd8=(0.28, 0.22, 0.30, 0.20),
        event_rate_per_s=1750.0,
    ),
)
"""The committed demo lots, in the order their files are written."""

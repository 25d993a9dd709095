"""The two synthetic demo lots: what each simulated CAR-T product is made of.

Every number here is a probability the simulator draws each event's identity from; the realised
counts (and so the truth tables) differ from them by sampling noise only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "FUNCTIONS",
    "Quadrants",
    "PotencyResponse",
    "MicrobialLoad",
    "ApheresisTube",
    "DemoLot",
    "DEMO_LOTS",
]

FUNCTIONS: tuple[str, ...] = ("cd107a", "ifng", "tnfa", "il2")
"""The effector functions the potency tubes stain for: degranulation (CD107a), IFN-γ, TNF-α, IL-2."""

Quadrants = tuple[float, float, float, float]
"""Four fractions summing to 1.

For CD4/CD8: (CD4+CD8−, CD4+CD8+, CD4−CD8+, CD4−CD8−). For memory: (CD45RA+CCR7+ naive/stem-like,
CD45RA−CCR7+ central memory, CD45RA−CCR7− effector memory, CD45RA+CCR7− TEMRA).
"""


@dataclass(frozen=True)
class PotencyResponse:
    """How a lot's T cells respond in the potency tubes (probabilities per live cell, in [0, 1]).

    In the stimulated tube a live CAR+ T cell becomes activated with probability ``activated``;
    an activated cell then shows each function independently, with probability
    ``<function> / activated``, so that ``cd107a``, ``ifng``, ``tnfa`` and ``il2`` are the
    specific (antigen-driven) fractions of live CAR+ T cells showing that function. Sharing the
    activated state correlates the functions and makes polyfunctional cells. ``bystander`` is the
    per-function rate of live CAR− T cells of the stimulated tube (cytokine-driven bystander
    activation), ``background`` the per-function rate of every live T cell in both tubes
    (spontaneous production). The stimulated tube's gross fraction among CAR+ T cells is about
    the specific fraction plus ``background``; net of the unstimulated tube it is the specific one.
    """

    activated: float
    cd107a: float
    ifng: float
    tnfa: float
    il2: float
    bystander: float = 0.003
    background: float = 0.0015

    def __post_init__(self) -> None:
        for function in FUNCTIONS:
            if not 0.0 <= getattr(self, function) <= self.activated <= 1.0:
                raise ValueError(f"PotencyResponse: {function} must lie between 0 and activated (≤ 1).")

    def given_activation(self) -> tuple[float, ...]:
        """Probability of each function (``FUNCTIONS`` order) in an activated CAR+ T cell."""
        return tuple(getattr(self, function) / self.activated for function in FUNCTIONS)


@dataclass(frozen=True)
class MicrobialLoad:
    """The microbes in a lot's microbial-flow test sample.

    ``microbes_per_ml`` is the concentration of stainable microbial cells in the acquired sample
    (cells per mL); ``damaged_fraction`` the share of them with damaged membranes, which take up
    propidium iodide. A sterile lot has ``microbes_per_ml = 0``.
    """

    microbes_per_ml: float = 0.0
    damaged_fraction: float = 0.25


@dataclass(frozen=True)
class ApheresisTube:
    """The lot's starting material: the patient's leukapheresis unit, stained with the phenotype panel
    at receipt, before manufacture, and accepted against its own specification.

    ``viability`` and ``cd3_of_live`` are fractions in [0, 1]; no cell is CAR+ yet. The tube is
    acquired on the lot's instrument from ``acquisition_start`` (local clock) with ``n_events``.
    """

    viability: float
    cd3_of_live: float
    acquisition_start: datetime
    n_events: int = 20_000


@dataclass(frozen=True)
class DemoLot:
    """One simulated post-manufacture CAR-T drug product and its phenotype-tube acquisition.

    Fractions are probabilities in [0, 1]; ``event_rate_per_s`` is the mean acquisition rate in
    events per second; ``acquisition_start`` is the cytometer's local clock at the first event,
    the source of ``$DATE`` and ``$BTIM`` so that a regenerated file never carries "now".
    ``potency`` describes the potency tubes (same cell composition as the phenotype tube), which
    were acquired from ``stimulated_start`` and ``unstimulated_start``; ``microbial`` the
    microbial-flow test sample, acquired on the bench cytometer from ``microbial_start``;
    ``apheresis`` the starting material's tube.
    ``potency_n_events`` is how many events each potency tube acquires (None: ``n_events``): the
    unstimulated tube's CAR+ T cells set the cytokine thresholds at their 99.5th percentile, which
    needs 2,000 of them (rapidrelease.flow.thresholds), so a lot with few CAR+ cells acquires more.
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
    potency: PotencyResponse
    stimulated_start: datetime
    unstimulated_start: datetime
    microbial: MicrobialLoad
    microbial_start: datetime
    apheresis: ApheresisTube
    potency_n_events: int | None = None

    @property
    def fcs_name(self) -> str:
        """File name of the lot's phenotype tube, also its ``$FIL``."""
        return f"{self.lot_id}_phenotype.fcs"

    def potency_fcs_name(self, stimulated: bool) -> str:
        """File name (and ``$FIL``) of the lot's stimulated or unstimulated potency tube."""
        return f"{self.lot_id}_potency_{'stimulated' if stimulated else 'unstimulated'}.fcs"

    @property
    def apheresis_fcs_name(self) -> str:
        """File name (and ``$FIL``) of the lot's starting-material (apheresis) tube."""
        return f"{self.lot_id}_apheresis.fcs"

    @property
    def microbial_fcs_name(self) -> str:
        """File name (and ``$FIL``) of the lot's microbial-flow test tube."""
        return f"{self.lot_id}_microbial.fcs"


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
        # 5 h antigen stimulation after the phenotype tube; CD107a > TNF-α > IFN-γ > IL-2, as
        # CD19 CAR-T products typically show.
        potency=PotencyResponse(activated=0.65, cd107a=0.35, ifng=0.25, tnfa=0.30, il2=0.12),
        stimulated_start=datetime(2026, 11, 25, 15, 18, 40),
        unstimulated_start=datetime(2026, 11, 25, 15, 3, 5),
        microbial=MicrobialLoad(),
        microbial_start=datetime(2026, 11, 25, 11, 32, 20),
        # received the day after collection, twelve days before the drug product was sampled
        apheresis=ApheresisTube(
            viability=0.97, cd3_of_live=0.52, acquisition_start=datetime(2026, 11, 13, 8, 14, 30)
        ),
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
        # Fewer CAR+ cells, but each responds about as well as DEMO-001's.
        potency=PotencyResponse(activated=0.60, cd107a=0.30, ifng=0.20, tnfa=0.26, il2=0.10),
        stimulated_start=datetime(2026, 11, 25, 15, 51, 2),
        unstimulated_start=datetime(2026, 11, 25, 15, 36, 27),
        microbial=MicrobialLoad(),
        microbial_start=datetime(2026, 11, 25, 11, 36, 48),
        # a lymphopenic patient after chemotherapy: fewer T cells, still above the demo's 20 %
        apheresis=ApheresisTube(
            viability=0.95, cd3_of_live=0.31, acquisition_start=datetime(2026, 11, 13, 9, 2, 15)
        ),
        # 9 % CAR+: 30,000 events would hold ~1,800 CAR+ T cells, too few for a 99.5th-percentile
        # threshold (2,000); 50,000 hold ~3,000
        potency_n_events=50_000,
    ),
)
"""The committed demo lots, in the order their files are written."""

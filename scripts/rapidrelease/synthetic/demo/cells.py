"""Cell-by-cell draws for the demo simulator: identity, scatter and stained-dye abundance.

Each cell gets a lineage and marker phenotype drawn from its lot's fractions, log-normal scatter,
a log-normal amount of each dye it carries, and an autofluorescence scale. Dye amounts are "true"
signal: what the dye would give in its own detector, before spillover, autofluorescence and
detector noise are added by :mod:`rapidrelease.synthetic.demo.simulate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rapidrelease.synthetic.demo.lots import DemoLot, Quadrants
from rapidrelease.synthetic.demo.panel import FSC_THRESHOLD

__all__ = [
    "CYTOKINE_DYES",
    "CYTOKINE_POSITIVE",
    "LINEAGES",
    "CellDraw",
    "draw_cells",
    "draw_cytokine_dye",
    "draw_debris",
]

LINEAGES: tuple[str, ...] = ("T", "NK", "B", "monocyte")
"""Lineage codes used in :attr:`CellDraw.lineage` (index into this tuple)."""

_T, _NK, _B, _MONO = range(4)
_NON_T_MIX = np.array([0.65, 0.20, 0.15])  # NK, B, monocyte among CD3− live cells of a CAR-T product

# Dye order = rapidrelease.synthetic.demo.panel.FLUORESCENCE: CAR(FITC), CCR7(PE), CD8(PerCP-Cy5.5),
# viability(NIR), CD45RA(BV421), CD3(BV510), CD4(BV605).
_CAR, _CCR7, _CD8, _VIA, _CD45RA, _CD3, _CD4 = range(7)

# (median, sigma of ln) of specific staining on a positive live cell, area units in the dye's own
# detector. CCR7 is dim and CAR detection broad, as with real reagents.
_POSITIVE = {
    _CAR: (5000.0, 0.85),
    _CCR7: (3000.0, 0.65),
    _CD8: (9000.0, 0.35),
    _CD45RA: (9000.0, 0.45),
    _CD3: (7000.0, 0.33),
    _CD4: (5200.0, 0.30),
}
_NK_CD8_DIM = (1800.0, 0.45)
_MONO_CD4_DIM = (1500.0, 0.35)
_NON_T_CD45RA = (12000.0, 0.40)
# Unspecific binding of each reagent on a live cell lacking the antigen.
_NEGATIVE = np.array([40.0, 50.0, 35.0, 0.0, 60.0, 50.0, 35.0])
_LIVE_VIABILITY = (350.0, 0.45)  # amine-reactive dye dimly labels surface amines of intact cells
_DEAD_VIABILITY = (22000.0, 0.55)  # and brightly the cytoplasm of membrane-damaged cells
# A few dying cells have taken up only part of the dye and straddle any live/dead boundary.
_DYING_FRACTION = 0.06
_DYING_VIABILITY = (2500.0, 0.60)
_DEAD_SPECIFIC = 0.6  # antigen lost from damaged membranes
_DEAD_UNSPECIFIC = 4.0  # dead cells are sticky

CYTOKINE_DYES: tuple[int, ...] = (_CD45RA, _CCR7, _CD8, _CD4)
"""Dye column of each potency function (``lots.FUNCTIONS`` order): CD107a on BV421, IFN-γ on PE,
TNF-α on PerCP-Cy5.5 and IL-2 on BV605, the dyes of CD45RA, CCR7, CD8 and CD4 in the phenotype tube."""

CYTOKINE_POSITIVE: tuple[tuple[float, float], ...] = (
    (6000.0, 0.65),
    (4000.0, 0.65),
    (5000.0, 0.60),
    (3000.0, 0.70),
)
"""(median, sigma of ln) of a responding cell's specific signal per function (``lots.FUNCTIONS`` order),
area units in the dye's own detector: 1.5-2 decades above the negatives, broad enough to overlap them."""

# Scatter: (FSC-A median, SSC-A median, sigma ln FSC, sigma ln SSC) per lineage of a live cell.
_SCATTER = {
    _T: (95000.0, 30000.0, 0.16, 0.22),
    _NK: (90000.0, 34000.0, 0.15, 0.22),
    _B: (78000.0, 22000.0, 0.14, 0.20),
    _MONO: (125000.0, 80000.0, 0.15, 0.25),
}
_SCATTER_CORRELATION = 0.5  # bigger cells scatter more to the side too
_DEAD_FSC = (0.62, 0.15)  # dead cells shrink (median factor, sigma ln)
_DEAD_SSC = (1.7, 0.25)  # and become granular
_SINGLET_HEIGHT_RATIO = (0.93, 0.03)  # FSC-H / FSC-A of a single cell (mean, sd)
_AF_SIGMA = 0.25
_DEAD_AF = 1.5


@dataclass(frozen=True)
class CellDraw:
    """``n`` cells: identity, scatter and dye abundance.

    ``lineage`` (n,) int8 index into :data:`LINEAGES`; ``car``, ``cd4``, ``cd8``, ``cd45ra``,
    ``ccr7`` (n,) bool, whether the cell carries the antigen; ``dye`` (n, 7) float64 true signal per
    dye in area units; ``fsc_a``, ``fsc_h``, ``ssc_a`` (n,) float64 area units; ``af_scale`` (n,)
    float64, the cell's autofluorescence relative to a median live T cell.
    """

    lineage: np.ndarray
    car: np.ndarray
    cd4: np.ndarray
    cd8: np.ndarray
    cd45ra: np.ndarray
    ccr7: np.ndarray
    dye: np.ndarray
    fsc_a: np.ndarray
    fsc_h: np.ndarray
    ssc_a: np.ndarray
    af_scale: np.ndarray

    @classmethod
    def without_identity(
        cls, dye: np.ndarray, fsc_a: np.ndarray, fsc_h: np.ndarray, ssc_a: np.ndarray, af_scale: np.ndarray
    ) -> CellDraw:
        """Events that are not one cell (debris, doublets): lineage -1 and no antigen."""
        n = len(fsc_a)
        no = np.zeros(n, dtype=bool)
        return cls(np.full(n, -1, dtype=np.int8), no, no, no, no, no, dye, fsc_a, fsc_h, ssc_a, af_scale)


def _lognormal(rng: np.random.Generator, median_sigma: tuple[float, float], n: int) -> np.ndarray:
    median, sigma = median_sigma
    return median * np.exp(sigma * rng.standard_normal(n))


def _quadrant(rng: np.random.Generator, probabilities: Quadrants, n: int) -> np.ndarray:
    return rng.choice(4, size=n, p=np.asarray(probabilities) / sum(probabilities)).astype(np.int8)


def draw_cells(rng: np.random.Generator, lot: DemoLot, dead: np.ndarray) -> CellDraw:
    """Draw one cell per entry of ``dead`` ((n,) bool, True for a membrane-damaged cell).

    Dead cells keep the lineage and phenotype mix of live ones; they differ in scatter, in
    viability-dye uptake and in staining quality.
    """
    n = dead.size
    t_cell = rng.random(n) < lot.cd3_of_live
    lineage = np.where(t_cell, _T, 1 + rng.choice(3, size=n, p=_NON_T_MIX)).astype(np.int8)
    car = t_cell & (rng.random(n) < lot.car_of_cd3)

    # CD4/CD8 quadrant 0..3 = CD4+CD8−, CD4+CD8+, CD4−CD8+, CD4−CD8−; memory quadrant 0..3 =
    # CD45RA+CCR7+, CD45RA−CCR7+, CD45RA−CCR7−, CD45RA+CCR7−.
    cd4_cd8 = np.where(car, _quadrant(rng, lot.cd4_cd8_car_pos, n), _quadrant(rng, lot.cd4_cd8_car_neg, n))
    memory = np.where(cd4_cd8 <= 1, _quadrant(rng, lot.memory_cd4, n), _quadrant(rng, lot.memory_cd8, n))
    nk_cd8_dim = rng.random(n) < 0.35

    cd4 = np.where(t_cell, cd4_cd8 <= 1, lineage == _MONO)
    cd8 = np.where(t_cell, (cd4_cd8 == 1) | (cd4_cd8 == 2), (lineage == _NK) & nk_cd8_dim)
    cd45ra = np.where(t_cell, (memory == 0) | (memory == 3), lineage != _MONO)
    ccr7 = np.where(t_cell, memory <= 1, lineage == _B)

    dye = _NEGATIVE * np.exp(0.5 * rng.standard_normal((n, 7)))
    specific = np.zeros((n, 7))
    specific[:, _CAR] = np.where(car, _lognormal(rng, _POSITIVE[_CAR], n), 0.0)
    specific[:, _CCR7] = np.where(ccr7, _lognormal(rng, _POSITIVE[_CCR7], n), 0.0)
    specific[:, _CD8] = np.where(
        cd8,
        np.where(t_cell, _lognormal(rng, _POSITIVE[_CD8], n), _lognormal(rng, _NK_CD8_DIM, n)),
        0.0,
    )
    specific[:, _CD45RA] = np.where(
        cd45ra,
        np.where(t_cell, _lognormal(rng, _POSITIVE[_CD45RA], n), _lognormal(rng, _NON_T_CD45RA, n)),
        0.0,
    )
    specific[:, _CD3] = np.where(t_cell, _lognormal(rng, _POSITIVE[_CD3], n), 0.0)
    specific[:, _CD4] = np.where(
        cd4,
        np.where(t_cell, _lognormal(rng, _POSITIVE[_CD4], n), _lognormal(rng, _MONO_CD4_DIM, n)),
        0.0,
    )
    dye = np.where(dead[:, None], dye * _DEAD_UNSPECIFIC + specific * _DEAD_SPECIFIC, dye + specific)
    dead_uptake = np.where(
        rng.random(n) < _DYING_FRACTION,
        _lognormal(rng, _DYING_VIABILITY, n),
        _lognormal(rng, _DEAD_VIABILITY, n),
    )
    dye[:, _VIA] = np.where(dead, dead_uptake, _lognormal(rng, _LIVE_VIABILITY, n))

    scatter = np.array([_SCATTER[int(code)] for code in range(4)])[lineage]
    z_fsc = rng.standard_normal(n)
    z_ssc = _SCATTER_CORRELATION * z_fsc + np.sqrt(1 - _SCATTER_CORRELATION**2) * rng.standard_normal(n)
    fsc_a = scatter[:, 0] * np.exp(scatter[:, 2] * z_fsc)
    ssc_a = scatter[:, 1] * np.exp(scatter[:, 3] * z_ssc)
    fsc_a = np.where(dead, fsc_a * _lognormal(rng, _DEAD_FSC, n), fsc_a)
    ssc_a = np.where(dead, ssc_a * _lognormal(rng, _DEAD_SSC, n), ssc_a)
    fsc_h = fsc_a * rng.normal(*_SINGLET_HEIGHT_RATIO, size=n)
    af_scale = np.exp(_AF_SIGMA * rng.standard_normal(n)) * fsc_a / _SCATTER[_T][0]
    af_scale = np.where(dead, af_scale * _DEAD_AF, af_scale)

    return CellDraw(
        lineage=lineage,
        car=car,
        cd4=cd4,
        cd8=cd8,
        cd45ra=cd45ra,
        ccr7=ccr7,
        dye=dye,
        fsc_a=fsc_a,
        fsc_h=fsc_h,
        ssc_a=ssc_a,
        af_scale=af_scale,
    )


def draw_cytokine_dye(rng: np.random.Generator, positive: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """Dye abundance (n, 4) of the potency functions, area units, ``lots.FUNCTIONS`` order.

    ``positive`` (n, 4) bool marks the functions each cell shows; ``dead`` (n,) bool the
    membrane-damaged cells. Every cell carries the phenotype panel's dim unspecific staining of
    these dyes (dead cells more, being sticky); a responder adds a log-normal specific signal.
    """
    n = dead.size
    unspecific = _NEGATIVE[list(CYTOKINE_DYES)] * np.exp(0.5 * rng.standard_normal((n, 4)))
    unspecific = np.where(dead[:, None], unspecific * _DEAD_UNSPECIFIC, unspecific)
    specific = np.column_stack([_lognormal(rng, median_sigma, n) for median_sigma in CYTOKINE_POSITIVE])
    return unspecific + np.where(positive, specific, 0.0)


_DEBRIS_FSC = (12000.0, 0.45)
_DEBRIS_SSC = (8000.0, 0.60)
_DEBRIS_HEIGHT_RATIO = (0.97, 0.04)  # short pulses: height close to area
_DEBRIS_DEAD_FRAGMENT = 0.4  # share of debris that is viability-dye-bright membrane fragments
_DEBRIS_AF = (0.15, 0.5)


def draw_debris(rng: np.random.Generator, n: int) -> CellDraw:
    """Draw ``n`` debris events (cell fragments, apoptotic bodies) above the FSC-H threshold.

    The fields have the meaning of :class:`CellDraw`; identity flags are all False and ``lineage``
    is -1.
    """
    fsc_a = np.empty(0)
    fsc_h = np.empty(0)
    # Rejection keeps exactly the pulses the instrument would have triggered on.
    while fsc_a.size < n:
        a = _lognormal(rng, _DEBRIS_FSC, 2 * n)
        h = a * rng.normal(*_DEBRIS_HEIGHT_RATIO, size=2 * n)
        keep = h >= FSC_THRESHOLD
        fsc_a = np.concatenate([fsc_a, a[keep]])
        fsc_h = np.concatenate([fsc_h, h[keep]])
    fsc_a, fsc_h = fsc_a[:n], fsc_h[:n]
    ssc_a = _lognormal(rng, _DEBRIS_SSC, n)
    dye = 60.0 * np.exp(0.9 * rng.standard_normal((n, 7)))
    fragment = rng.random(n) < _DEBRIS_DEAD_FRAGMENT
    dye[:, _VIA] = np.where(fragment, _lognormal(rng, (6000.0, 0.9), n), _lognormal(rng, (150.0, 0.6), n))
    return CellDraw.without_identity(dye, fsc_a, fsc_h, ssc_a, _lognormal(rng, _DEBRIS_AF, n))

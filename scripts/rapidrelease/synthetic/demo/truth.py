"""The truth of simulated tubes: release metrics counted from the simulator's own event labels.

Nothing here looks at intensities or gates; a metric is a ratio of label counts, so gating the file
with the demo template should reproduce it up to the events that fall on the wrong side of a gate.
"""

from __future__ import annotations

import polars as pl

from rapidrelease.errors import MetricError
from rapidrelease.synthetic.demo.lots import FUNCTIONS

__all__ = [
    "POTENCY_METRICS",
    "STARTING_MATERIAL_METRICS",
    "TRUTH_METRICS",
    "potency_truth_table",
    "truth_table",
]

TRUTH_METRICS: tuple[str, ...] = (
    "viability_pct",
    "cd3_pct_live",
    "car_pct_cd3",
    "cd4_pct_car",
    "cd8_pct_car",
    "cd4_cd8_ratio",
    "cd45ra_pos_ccr7_pos_pct_car",
    "cd45ra_neg_ccr7_pos_pct_car",
    "cd45ra_neg_ccr7_neg_pct_car",
    "cd45ra_pos_ccr7_neg_pct_car",
)
"""Metric names of ``truth.tsv``, in row order. ``*_pct*`` are percentages; the ratio is unitless."""

STARTING_MATERIAL_METRICS: tuple[str, ...] = ("viability_pct", "cd3_pct_live", "car_pct_cd3")
"""Metric names of ``apheresis_truth.tsv``: a starting material holds no CAR+ cell to divide by."""


def truth_table(labels: pl.DataFrame, metrics: tuple[str, ...] = TRUTH_METRICS) -> pl.DataFrame:
    """Truth ``metrics`` of one tube from its per-event ``labels`` (see ``SimulatedTube.labels``).

    Returns columns ``metric`` (str), ``value`` (float, percent for ``*_pct*``, CD4+CD8− over
    CD4−CD8+ events for ``cd4_cd8_ratio``, rounded to 4 decimals), ``numerator_events`` and
    ``denominator_events`` (int). Populations: singlet cells are ``live`` or ``dead`` events;
    CD3+ are live T cells; CAR+ are CAR-expressing live T cells; CD4 and CD8 percentages count the
    single-positive quadrants.
    """
    kind = pl.col("kind")
    live = kind == "live"
    cd3 = live & pl.col("cd3")
    car = cd3 & pl.col("car")
    cd4, cd8 = pl.col("cd4"), pl.col("cd8")
    ra, ccr7 = pl.col("cd45ra"), pl.col("ccr7")
    populations = {
        "singlet": kind.is_in(["live", "dead"]),
        "live": live,
        "cd3": cd3,
        "car": car,
        "car_cd4": car & cd4 & ~cd8,
        "car_cd8": car & ~cd4 & cd8,
        "car_ra_pos_ccr7_pos": car & ra & ccr7,
        "car_ra_neg_ccr7_pos": car & ~ra & ccr7,
        "car_ra_neg_ccr7_neg": car & ~ra & ~ccr7,
        "car_ra_pos_ccr7_neg": car & ra & ~ccr7,
    }
    counts = labels.select(expr.fill_null(False).sum().alias(name) for name, expr in populations.items()).row(
        0, named=True
    )
    pairs = {
        "viability_pct": ("live", "singlet"),
        "cd3_pct_live": ("cd3", "live"),
        "car_pct_cd3": ("car", "cd3"),
        "cd4_pct_car": ("car_cd4", "car"),
        "cd8_pct_car": ("car_cd8", "car"),
        "cd4_cd8_ratio": ("car_cd4", "car_cd8"),
        "cd45ra_pos_ccr7_pos_pct_car": ("car_ra_pos_ccr7_pos", "car"),
        "cd45ra_neg_ccr7_pos_pct_car": ("car_ra_neg_ccr7_pos", "car"),
        "cd45ra_neg_ccr7_neg_pct_car": ("car_ra_neg_ccr7_neg", "car"),
        "cd45ra_pos_ccr7_neg_pct_car": ("car_ra_pos_ccr7_neg", "car"),
    }
    rows = []
    for metric in metrics:
        numerator, denominator = (int(counts[p]) for p in pairs[metric])
        if denominator == 0:
            raise MetricError(f"simulated labels: {metric} has no {pairs[metric][1]} events to divide by.")
        scale = 1.0 if metric == "cd4_cd8_ratio" else 100.0
        rows.append((metric, round(scale * numerator / denominator, 4), numerator, denominator))
    return pl.DataFrame(
        rows,
        schema={
            "metric": pl.String,
            "value": pl.Float64,
            "numerator_events": pl.Int64,
            "denominator_events": pl.Int64,
        },
        orient="row",
    )


POTENCY_METRICS: tuple[str, ...] = (
    "cd107a_pct_car",
    "ifng_pct_car",
    "tnfa_pct_car",
    "il2_pct_car",
    "polyfunctional_pct_car",
)
"""Metric names of ``potency_truth.tsv``, in row order: percentages of live CAR+ T cells showing
CD107a, IFN-γ, TNF-α, IL-2, and at least two of the four (polyfunctional)."""


def _potency_counts(labels: pl.DataFrame) -> tuple[dict[str, int], int]:
    """Events per metric of ``POTENCY_METRICS`` among live CAR+ T cells, and the number of those cells."""
    car = (pl.col("kind") == "live") & pl.col("cd3") & pl.col("car")
    functions = [pl.col(f).fill_null(False) for f in FUNCTIONS]
    positive = {f"{f}_pct_car": expr for f, expr in zip(FUNCTIONS, functions, strict=True)}
    positive["polyfunctional_pct_car"] = pl.sum_horizontal(e.cast(pl.Int8) for e in functions) >= 2
    cells = labels.filter(car.fill_null(False))
    counts = cells.select(expr.sum().alias(name) for name, expr in positive.items()).row(0, named=True)
    return {name: int(counts[name]) for name in POTENCY_METRICS}, cells.height


def potency_truth_table(stimulated: pl.DataFrame, unstimulated: pl.DataFrame) -> pl.DataFrame:
    """Potency truth of a lot from its two tubes' per-event labels (see ``PotencyTube.labels``).

    Returns one row per metric of :data:`POTENCY_METRICS` with columns ``metric`` (str);
    ``stimulated`` and ``unstimulated`` (float, % of each tube's live CAR+ T cells, 4 decimals);
    ``net`` (stimulated − unstimulated, percentage points, from the unrounded values);
    ``stimulated_numerator_events``, ``stimulated_denominator_events``,
    ``unstimulated_numerator_events``, ``unstimulated_denominator_events`` (int).
    """
    (stim, stim_cells), (unstim, unstim_cells) = _potency_counts(stimulated), _potency_counts(unstimulated)
    if min(stim_cells, unstim_cells) == 0:
        raise MetricError("simulated potency labels: a tube has no live CAR+ T cells to divide by.")
    rows = []
    for metric in POTENCY_METRICS:
        gross, background = 100 * stim[metric] / stim_cells, 100 * unstim[metric] / unstim_cells
        rows.append(
            (
                metric,
                round(gross, 4),
                round(background, 4),
                round(gross - background, 4),
                stim[metric],
                stim_cells,
                unstim[metric],
                unstim_cells,
            )
        )
    return pl.DataFrame(
        rows,
        schema={
            "metric": pl.String,
            "stimulated": pl.Float64,
            "unstimulated": pl.Float64,
            "net": pl.Float64,
            "stimulated_numerator_events": pl.Int64,
            "stimulated_denominator_events": pl.Int64,
            "unstimulated_numerator_events": pl.Int64,
            "unstimulated_denominator_events": pl.Int64,
        },
        orient="row",
    )

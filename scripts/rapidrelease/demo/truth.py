"""The truth of a simulated tube: release metrics counted from the simulator's own event labels.

Nothing here looks at intensities or gates; a metric is a ratio of label counts, so gating the file
with the demo template should reproduce it up to the events that fall on the wrong side of a gate.
"""

from __future__ import annotations

import polars as pl

from rapidrelease.errors import MetricError

__all__ = ["TRUTH_METRICS", "truth_table"]

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


def truth_table(labels: pl.DataFrame) -> pl.DataFrame:
    """Truth metrics of one tube from its per-event ``labels`` (see ``SimulatedTube.labels``).

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
    for metric in TRUTH_METRICS:
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

"""A lot's dose: viable CAR+ T cells from the counted viable cells and the phenotype's fractions.

Dose = total viable nucleated cells (``tnc_viable`` of the lot sheet, counted by manufacturing)
× each configured percentage of the lot's phenotype test unit (by default CD3+ of viable cells and
CAR+ of CD3+). Divided by ``weight_kg`` it is the dose per kg. The metrics are those of a unit of
the pseudo-assay ``dose``, so the specification judges them like any other attribute.

The 95 % interval covers the two random errors the dose is built from, combined on the log scale
(the delta method; the logarithm of a product is a sum of independent terms):

- the viable cell count's coefficient of variation (config.yaml ``dose.viable_count_cv_pct``, 7.5 %
  by default — automated counters and haemocytometers repeat to 5–10 %): var(ln N) = ln(1 + CV²);
- each fraction's binomial sampling from the events it was counted in: var(ln p̂) = 1/x − 1/n for x
  of n events (from the fraction's own interval when its counts are not recorded).

The dose is N·∏p̂ and its interval N·∏p̂·exp(±1.96·√(Σ var)). It does not cover the gating (a
systematic error of the method) or the weight (taken as exact). Taking the count as exact and
multiplying the fractions' bounds, as before issue 17, covered only 30–72 % of true doses with a
counter of 5–10 % CV. With a fraction of 0 % the dose is 0 and its interval the product of bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rapidrelease.config.run import DEFAULT_VIABLE_COUNT_CV_PCT, Lot
from rapidrelease.records import Json, Metric, to_json
from rapidrelease.stats import Z_95

__all__ = ["dose_interval", "dose_metrics"]


def _log_variance(value: float, low: float, high: float, entry: Metric) -> float:
    """var(ln p̂) of a percentage ``value`` (0–100) by the delta method on its counts, else its interval."""
    x = entry.numerator.count if entry.numerator is not None else None
    n = entry.denominator.count if entry.denominator is not None else None
    if x is not None and n is not None and 0 < x <= n and math.isclose(100.0 * x / n, value, rel_tol=1e-9):
        return 1.0 / x - 1.0 / n
    # no counts behind the value: the interval's half-width on the log scale is 1.96 standard errors
    return (math.log(high / low) / (2 * Z_95)) ** 2 if 0 < low < high else 0.0


def dose_interval(
    cells: float, fractions: Sequence[tuple[float, float, float, Metric]], cv_pct: float
) -> tuple[float, float]:
    """The 95 % interval of ``cells`` × each fraction (value, low, high in %, with its metric).

    Delta method on the log scale: the count's ln(1 + CV²) plus each fraction's binomial variance
    of ln p̂. With any fraction at 0 the dose is 0, and its interval is the product of the bounds
    with the count's own interval.
    """
    cv = cv_pct / 100.0
    count_variance = math.log1p(cv * cv)
    dose = cells * math.prod(value / 100.0 for value, *_ in fractions)
    if dose <= 0:
        spread = math.exp(Z_95 * math.sqrt(count_variance))
        low = cells / spread * math.prod(lo / 100.0 for _, lo, _, _ in fractions)
        high = cells * spread * math.prod(hi / 100.0 for _, _, hi, _ in fractions)
        return low, high
    variance = count_variance + math.fsum(_log_variance(v, lo, hi, e) for v, lo, hi, e in fractions)
    spread = math.exp(Z_95 * math.sqrt(variance))
    return dose / spread, dose * spread


def _metric(value: float | None, unit: str, status: str, reason: str | None, **more: Any) -> Metric:
    return Metric(value, unit, "dose", status, reason, **more)


def dose_metrics(
    lot: Lot,
    fractions: Sequence[str],
    phenotype_unit_id: str | None,
    phenotype_metrics: Mapping[str, Metric] | None,
    problem: str | None = None,
    viable_count_cv_pct: float = DEFAULT_VIABLE_COUNT_CV_PCT,
) -> dict[str, Metric]:
    """``viable_car_t_cells`` and ``viable_car_t_cells_per_kg`` of ``lot``, with 95 % intervals.

    ``phenotype_metrics`` are the metrics of the lot's phenotype test unit, or None with
    ``problem`` saying why there are none. ``viable_count_cv_pct`` is the viable cell count's
    coefficient of variation in %, propagated into the interval (:func:`dose_interval`). Each
    metric is ``not_computable`` with a one-sentence reason when an input is missing or unusable.
    """

    def both(status: str, reason: str) -> dict[str, Metric]:
        return {
            "viable_car_t_cells": _metric(None, "cells", status, reason),
            "viable_car_t_cells_per_kg": _metric(None, "cells/kg", status, reason),
        }

    if lot.tnc_viable is None:
        return both(
            "not_computable",
            f"the lot sheet gives no tnc_viable (viable nucleated cells) for lot {lot.lot_id}.",
        )
    if phenotype_metrics is None:
        return both("not_computable", problem or f"lot {lot.lot_id} has no phenotype test unit.")
    factors: list[tuple[str, float, float, float, Metric]] = []
    for name in fractions:
        entry = phenotype_metrics.get(name)
        if entry is None:
            return both(
                "not_computable", f"unit {phenotype_unit_id} reports no {name}, which the dose multiplies."
            )
        value = entry.value
        usable = (
            entry.status == "ok"
            and entry.unit == "%"
            and isinstance(value, int | float)
            and math.isfinite(value)
            and 0 <= value <= 100
        )
        if not usable or not isinstance(value, int | float):
            why = entry.reason or f"status {entry.status!r}, value {value!r}"
            return both(
                "not_computable",
                f"the dose needs {name} of unit {phenotype_unit_id} as a percentage ({why.rstrip('.')}).",
            )
        lo, hi = entry.ci95 if entry.ci95 is not None else (value, value)
        factors.append((name, value, float(lo), float(hi), entry))
    cells = lot.tnc_viable * math.prod(value / 100.0 for _, value, *_ in factors)
    lo, hi = dose_interval(
        lot.tnc_viable, [(v, f_lo, f_hi, e) for _, v, f_lo, f_hi, e in factors], viable_count_cv_pct
    )
    covers = (
        f"95 % interval covering the viable count's {viable_count_cv_pct:g} % CV and the binomial "
        "sampling of each fraction (delta method on the log scale); not the gating or the weight"
    )
    detail = f"{lot.tnc_viable:.4g} viable nucleated cells × " + " × ".join(
        f"{value:.2f} % {name}" for name, value, *_ in factors
    )
    evidence: dict[str, Json] = {
        "tnc_viable": lot.tnc_viable,
        "viable_count_cv_pct": viable_count_cv_pct,
        "ci95_covers": covers,
        "weight_kg": lot.weight_kg,
        "unit_id": phenotype_unit_id,
        "fractions": [
            {
                "metric": name,
                "value": value,
                "ci95": [f_lo, f_hi],
                "numerator": to_json(e.numerator),
                "denominator": to_json(e.denominator),
            }
            for name, value, f_lo, f_hi, e in factors
        ],
    }
    total = _metric(cells, "cells", "ok", None, ci95=(lo, hi), detail=detail, evidence=evidence)
    if lot.weight_kg is None:
        per_kg = _metric(
            None, "cells/kg", "not_computable", f"the lot sheet gives no weight_kg for lot {lot.lot_id}."
        )
    else:
        per_kg = _metric(
            cells / lot.weight_kg,
            "cells/kg",
            "ok",
            None,
            ci95=(lo / lot.weight_kg, hi / lot.weight_kg),
            detail=f"{detail} ÷ {lot.weight_kg:g} kg",
            evidence=evidence,
        )
    return {"viable_car_t_cells": total, "viable_car_t_cells_per_kg": per_kg}

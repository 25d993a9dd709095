"""A lot's dose: viable CAR+ T cells from the counted viable cells and the phenotype's fractions.

Dose = total viable nucleated cells (``tnc_viable`` of the lot sheet, counted by manufacturing)
× each configured percentage of the lot's phenotype test unit (by default CD3+ of viable cells and
CAR+ of CD3+). Divided by ``weight_kg`` it is the dose per kg. The cell count is taken as exact.
The 95 % interval is the product of the fractions' own intervals: conservative, since it assumes
both err in the same direction at once. The metrics are those of a unit of the pseudo-assay
``dose``, so the specification judges them like any other attribute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rapidrelease.config.run import Lot
from rapidrelease.records import Json, Metric, to_json

__all__ = ["dose_metrics"]


def _metric(value: float | None, unit: str, status: str, reason: str | None, **more: Any) -> Metric:
    return Metric(value, unit, "dose", status, reason, **more)


def dose_metrics(
    lot: Lot,
    fractions: Sequence[str],
    phenotype_unit_id: str | None,
    phenotype_metrics: Mapping[str, Metric] | None,
    problem: str | None = None,
) -> dict[str, Metric]:
    """``viable_car_t_cells`` and ``viable_car_t_cells_per_kg`` of ``lot``.

    ``phenotype_metrics`` are the metrics of the lot's phenotype test unit, or None with
    ``problem`` saying why there are none. Each metric is ``not_computable`` with a one-sentence
    reason when an input is missing or unusable.
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
    cells = lot.tnc_viable
    lo = hi = cells
    for _, value, f_lo, f_hi, _ in factors:
        cells *= value / 100.0
        lo *= f_lo / 100.0
        hi *= f_hi / 100.0
    detail = f"{lot.tnc_viable:.4g} viable nucleated cells × " + " × ".join(
        f"{value:.2f} % {name}" for name, value, *_ in factors
    )
    evidence: dict[str, Json] = {
        "tnc_viable": lot.tnc_viable,
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

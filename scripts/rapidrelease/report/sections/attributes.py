"""The quality attributes: each with its value, criterion, result and reason, failures first.

The same table shows the starting material's attributes against its own specification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidrelease.config.specs import reportable_text, with_unit
from rapidrelease.config.vocabulary import ACCEPTED, FAIL, INCONCLUSIVE, NOT_ACCEPTED, PASS
from rapidrelease.records import AttributeResult, EvidenceFigure, StartingMaterial
from rapidrelease.report.page import num

__all__ = ["AttributeRow", "StartingMaterialView", "attribute_rows", "starting_material_view"]

_RESULT_ORDER = {FAIL: 0, INCONCLUSIVE: 1, PASS: 2}


@dataclass(frozen=True)
class AttributeRow:
    """An attribute as its table row shows it: ``value`` with its unit ("—" when there is none) and
    ``ci`` its 95 % interval; ``covers`` what a limit of detection is claimed for; ``events`` the
    populations and unit it rests on, one line each."""

    name: str
    metric: str
    value: str
    ci: str | None
    covers: str | None
    criterion: str
    result: str
    reason: str
    events: tuple[str, ...]


def _figure_text(figure: EvidenceFigure) -> str:
    """``test count per mL: 160 events/mL (95 % CI 43.6–410)``; counts with thousands separators."""
    value = figure.value
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        text = f"{int(value):,}"
    elif isinstance(value, float):
        text = num(value)
    else:
        text = str(value)
    text = with_unit(text, figure.unit or "")
    if figure.ci95 is not None:
        text += f" (95 % CI {figure.ci95[0]:.3g}–{figure.ci95[1]:.3g})"
    return f"{figure.label}: {text}"


def _interval(ci: tuple[float, float], decimals: int | None) -> str:
    """An interval's bounds to 3 significant digits, or in ×10ⁿ notation to the decimals of the
    value and its limits where those are written so (a dose: 4.8×10⁶–6.4×10⁶)."""
    if decimals is not None and decimals < 0:
        return f"{reportable_text(ci[0], decimals)}–{reportable_text(ci[1], decimals)}"
    return f"{ci[0]:.3g}–{ci[1]:.3g}"


def _row(attribute: AttributeResult) -> AttributeRow:
    evidence = attribute.evidence
    ci = evidence.ci95 if attribute.value_text is not None else None
    events = [f"{p.population}: {p.count:,}" for p in (evidence.numerator, evidence.denominator) if p]
    events += [_figure_text(f) for f in evidence.figures]
    if evidence.unit_id:
        events.append(f"unit {evidence.unit_id}")
    return AttributeRow(
        name=attribute.name,
        metric=attribute.metric,
        value="—" if attribute.value_text is None else with_unit(attribute.value_text, attribute.unit),
        ci=None if ci is None else _interval(ci, attribute.decimals),
        covers=attribute.covers,
        criterion=attribute.criterion,
        result=attribute.result,
        reason=attribute.reason,
        events=tuple(events),
    )


def attribute_rows(attributes: Sequence[AttributeResult]) -> list[AttributeRow]:
    """The attributes' rows: failures, then inconclusive ones, then passes, each in specification order."""
    return [_row(a) for a in sorted(attributes, key=lambda a: _RESULT_ORDER[a.result])]


@dataclass(frozen=True)
class StartingMaterialView:
    """The starting material's acceptance (``result`` the badge its status wears) and its attributes."""

    spec: str
    status: str
    result: str
    reason: str
    rows: list[AttributeRow]


def starting_material_view(starting: StartingMaterial | None) -> StartingMaterialView | None:
    """The starting material as the report shows it, or None when the lot's specification has none."""
    if starting is None:
        return None
    badge = {ACCEPTED: PASS, NOT_ACCEPTED: FAIL}.get(starting.status, INCONCLUSIVE)
    return StartingMaterialView(
        starting.spec, starting.status, badge, starting.status_reason, attribute_rows(starting.attributes)
    )

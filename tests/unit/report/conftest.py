"""Decisions made in memory for the report's tests: typed records, without a run or a file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from rapidrelease.config.vocabulary import PASS
from rapidrelease.records import AttributeEvidence, AttributeResult, LotInfo, Release, ResultCounts


def _attribute(name: str, value: float | str | None, result: str = PASS, **fields: Any) -> AttributeResult:
    """``name`` judged ``result`` on ``value`` (its value text as written); ``fields`` replace the rest."""
    judged = AttributeResult(
        name=name,
        description=name,
        assay="phenotype",
        metric=name,
        role="test",
        unit_id="PHENO",
        value=value,
        value_text=None if value is None else str(value),
        unit="%",
        criterion="≥ 0 %",
        comparison=">=",
        limit=0,
        lower=None,
        upper=None,
        decimals=1,
        validity=False,
        covers=None,
        result=result,  # type: ignore[arg-type]
        reason=f"{name} is {value}.",
        evidence=AttributeEvidence("PHENO", "ok", value, None, None, None),
    )
    return dataclasses.replace(judged, **fields)


def _release(
    lot_id: str,
    status: str,
    attributes: Sequence[AttributeResult] = (),
    *,
    site: str = "SITE-A",
    product: str = "CAR-T",
    collected_at: str = "2026-11-24T08:00:00+01:00",
    **fields: Any,
) -> Release:
    """The decision ``status`` on ``attributes`` of a lot collected at ``collected_at``; ``fields``
    replace the rest (``status_reason``, ``units``, ``audit`` …)."""
    deadline = datetime.fromisoformat(collected_at) + timedelta(hours=24)
    lot = LotInfo(lot_id, product, "CART", "", site, collected_at, 24.0, deadline.isoformat())
    decided = Release(
        schema_version="1",
        lot=lot,
        status=status,  # type: ignore[arg-type]
        status_reason=f"reason of {lot_id}",
        counts=ResultCounts.of(tuple(attributes)),
        attributes=tuple(attributes),
        starting_material=None,
        units=(),
    )
    return dataclasses.replace(decided, **fields)


@pytest.fixture
def make_attribute() -> Callable[..., AttributeResult]:
    """Build an :class:`AttributeResult`: ``make_attribute(name, value, result="PASS", **fields)``."""
    return _attribute


@pytest.fixture
def make_release() -> Callable[..., Release]:
    """Build a :class:`Release`: ``make_release(lot_id, status, attributes, site=…, **fields)``."""
    return _release

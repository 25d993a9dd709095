"""Differentially private aggregates for a shared package, made by OpenDP (never by our own noise).

A package's aggregates can be released under a privacy budget ε (``--epsilon``): every count and
sum is then released through OpenDP's Laplace mechanism (``make_laplace``: discrete Laplace for
counts, continuous for the sums of clamped values), with the noise scale calibrated by OpenDP's own
``binary_search_param`` so that the measurement's privacy map meets the ε given to that query.
The unit of privacy is one lot (symmetric distance 1: a lot added or removed), since a lot is one
patient's product.

How ε is spent (:func:`budget_split`): one lot enters every query of its platform, so the queries
of one platform compose sequentially and the export's ε is divided evenly among them; platforms
hold disjoint lots, so they compose in parallel and each gets the whole ε. A histogram over a
fixed vocabulary of categories (each lot in exactly one) is one query; so is the histogram of
organisms over the taxonomy's names (OpenDP's count by categories, calibrated for the most
organisms one lot contributes). Means and standard
deviations are post-processing of the noisy count, sum and sum of squares, which costs no budget.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rapidrelease.errors import ShareError

__all__ = ["Noised", "budget_split", "private_count", "private_histogram", "private_sum"]


@functools.cache
def _opendp() -> Any:
    """OpenDP, imported when a budget is given: it is the optional extra ``share`` (pyproject.toml),
    so that a site that exports exact aggregates, or none, does not install it."""
    try:
        import opendp.prelude as dp
    except ImportError:
        raise ShareError(
            "a privacy budget (--epsilon) needs OpenDP: install rapidrelease with its share extra "
            "(pip install -e '.[share]')."
        ) from None
    # OpenDP gates its mechanisms behind "contrib" until they are vetted; the Laplace mechanism and
    # the clamp and sum transformations used here are among them
    dp.enable_features("contrib")
    return dp


def _lots() -> tuple[Any, Any]:
    dp = _opendp()
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()


@dataclass(frozen=True)
class Noised:
    """A released aggregate: ``value`` with OpenDP's noise, ``scale`` the Laplace scale b it was
    drawn with (standard deviation √2·b), ``epsilon`` the budget the query spent."""

    value: float
    scale: float
    epsilon: float


def budget_split(epsilon: float, queries: int) -> float:
    """The ε each of ``queries`` sequentially composed queries may spend of a total ``epsilon``."""
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ShareError(f"the privacy budget ε must be a positive number, not {epsilon}.")
    if queries < 1:
        raise ShareError("a privacy budget needs at least one query to spend it on.")
    return epsilon / queries


def _count_measurement(scale: float) -> Any:
    dp = _opendp()
    return _lots() >> dp.t.then_count() >> dp.m.then_laplace(scale=scale)


def _sum_measurement(bounds: tuple[float, float]) -> Callable[[float], Any]:
    dp = _opendp()

    def make(scale: float) -> Any:
        return _lots() >> dp.t.then_clamp(bounds) >> dp.t.then_sum() >> dp.m.then_laplace(scale=scale)

    return make


@functools.cache
def _calibrated(kind: str, bounds: tuple[float, float] | None, epsilon: float) -> tuple[Any, float]:
    """The measurement whose privacy map gives ``epsilon`` for one lot, and its scale (OpenDP's
    binary search over the scale; cached, as an export asks for the same few many times)."""
    dp = _opendp()
    make = _count_measurement if bounds is None else _sum_measurement(bounds)
    try:
        # the ε the mechanism spends at scale 1 brackets the search: with values up to 10¹⁴ (a
        # dose's square) an unbracketed search starts where the sums overflow
        hint = float(make(1.0).map(1)) / epsilon
        scale = dp.binary_search_param(make, d_in=1, d_out=epsilon, bounds=(hint / 4, hint * 4))
    except dp.OpenDPException as exc:
        raise ShareError(
            f"OpenDP cannot calibrate a {kind} at ε = {epsilon:g} with bounds {bounds} ({exc.variant})."
        ) from None
    return make(scale), float(scale)


def private_count(n: int, epsilon: float) -> Noised:
    """``n`` lots counted through OpenDP's count and (discrete) Laplace mechanism at ``epsilon``.

    The count is of ``n`` placeholder rows: a count's sensitivity does not depend on their values.
    """
    measurement, scale = _calibrated("count", None, epsilon)
    return Noised(float(measurement([0.0] * n)), scale, epsilon)


def private_sum(values: Sequence[float], bounds: tuple[float, float], epsilon: float) -> Noised:
    """The sum of ``values`` clamped to ``bounds`` (lowest, highest) through OpenDP's clamp, sum and
    Laplace mechanism at ``epsilon``; its scale grows with the bounds (OpenDP's sensitivity: the
    highest value for bounds from 0, their width across 0)."""
    measurement, scale = _calibrated("sum", (float(bounds[0]), float(bounds[1])), epsilon)
    return Noised(float(measurement([float(v) for v in values])), scale, epsilon)


def private_histogram(
    rows: Sequence[str], categories: Sequence[str], rows_per_lot: int, epsilon: float
) -> tuple[list[float], float]:
    """Counts of ``rows`` over a fixed vocabulary of ``categories`` through OpenDP's count by
    categories and (discrete) Laplace mechanism at ``epsilon``, one query for the whole vocabulary.

    A lot contributes at most ``rows_per_lot`` rows (e.g. the organisms detected in it), so a lot
    added or removed changes the histogram by up to that many: the mechanism is calibrated for it.
    Returns the noisy counts in the order of ``categories`` and the scale.
    """
    dp = _opendp()
    domain = (dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance())
    vocabulary = list(categories)

    def make(scale: float) -> Any:
        return (
            domain
            >> dp.t.then_count_by_categories(categories=vocabulary, null_category=False)
            >> dp.m.then_laplace(scale=scale)
        )

    try:
        hint = float(make(1.0).map(rows_per_lot)) / epsilon
        scale = float(
            dp.binary_search_param(make, d_in=rows_per_lot, d_out=epsilon, bounds=(hint / 4, hint * 4))
        )
    except dp.OpenDPException as exc:
        raise ShareError(f"OpenDP cannot calibrate a histogram at ε = {epsilon:g} ({exc.variant}).") from None
    return [float(v) for v in make(scale)(list(rows))], scale

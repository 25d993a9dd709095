"""Poisson counting statistics for reads of a taxon: confidence bounds, tails, detection limits.

Reads of one organism in a library of N fragments are a Poisson count when the organism is a small
share of the library. The regularized incomplete gamma function gives each quantity exactly
(P(X ≥ r | λ) = P(r, λ), the lower regularized gamma), so no table or simulation is needed.
"""

from __future__ import annotations

import math

from scipy.special import gammainc, gammaincinv

__all__ = ["upper_bound", "tail_at_least", "mean_detected"]


def upper_bound(count: int, confidence: float = 0.95) -> float:
    """The one-sided upper ``confidence`` bound of a Poisson mean after observing ``count`` (exact).

    The λ for which P(X ≤ count | λ) = 1 − confidence; 2.996 for a count of 0 at 95 %.
    """
    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    return float(gammaincinv(count + 1, confidence))


def tail_at_least(count: int, mean: float) -> float:
    """P(X ≥ ``count``) for X ~ Poisson(``mean``); 1 for a count of 0 or less."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    return float(gammainc(count, mean))


def mean_detected(threshold: int, probability: float = 0.95) -> float:
    """The Poisson mean at which at least ``threshold`` reads are seen with ``probability``.

    With a threshold of one read this is −ln(1 − p) (3.0 reads for 95 %): the classic limit that a
    single-copy detector cannot beat.
    """
    if threshold < 1:
        raise ValueError(f"a detection threshold is at least one read ({threshold})")
    if threshold == 1:
        return -math.log1p(-probability)
    return float(gammaincinv(threshold, probability))

"""Poisson counting statistics: confidence bounds, tails, detection limits.

Reads of one organism in a library of N fragments are a Poisson count when the organism is a small
share of the library, and so are the events of a gate in a volume of sample (microbial flow). The
regularized incomplete gamma function gives each quantity exactly (P(X ≥ r | λ) = P(r, λ), the
lower regularized gamma), so no table or simulation is needed.
"""

from __future__ import annotations

import math

from scipy.special import gammainc, gammaincinv

__all__ = ["upper_bound", "interval", "tail_at_least", "mean_detected"]


def upper_bound(count: int, confidence: float = 0.95) -> float:
    """The one-sided upper ``confidence`` bound of a Poisson mean after observing ``count`` (exact).

    The λ for which P(X ≤ count | λ) = 1 − confidence; 2.996 for a count of 0 at 95 %.
    """
    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    return float(gammaincinv(count + 1, confidence))


def interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided ``confidence`` interval of a Poisson mean after observing ``count`` (Garwood).

    (0, 3.69) for a count of 0 and (7.65, 23.49) for 14 at 95 %.
    """
    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    tail = (1.0 - confidence) / 2.0
    lower = 0.0 if count == 0 else float(gammaincinv(count, tail))
    return lower, float(gammaincinv(count + 1, 1.0 - tail))


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

"""Counting statistics shared by the flow and sequencing assays: binomial and Poisson intervals,
tails and detection limits.

Events in a gate out of its parent's events are binomial (Wilson's interval, Newcombe's for a
difference of two such proportions). Reads of one organism in a library of N fragments are a
Poisson count when the organism is a small share of the library, and so are the events of a gate
in a volume of sample (microbial flow). The regularized incomplete gamma function gives each
Poisson quantity exactly (P(X ≥ r | λ) = P(r, λ), the lower regularized gamma), so no table or
simulation is needed.
"""

from __future__ import annotations

import math

from scipy.special import gammainc, gammaincinv

__all__ = [
    "Z_95",
    "wilson_interval",
    "newcombe_interval",
    "upper_bound",
    "interval",
    "tail_at_least",
    "mean_detected",
]

Z_95 = 1.959963984540054  # two-sided 95 % standard normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion, as fractions in [0, 1].

    Wilson (1927); preferred to the normal (Wald) interval because it stays inside [0, 1] and keeps
    its coverage for proportions near 0 or 1 — typical of CAR+ or viability fractions.
    """
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """95 % interval of p1 − p2 by Newcombe's hybrid score method (1998, method 10), as fractions."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1)
    l2, u2 = wilson_interval(x2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


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

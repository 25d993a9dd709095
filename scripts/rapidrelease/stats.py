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

import functools
import math

import numpy as np

# SciPy is imported by the function that needs it, not here: scipy.stats alone took 1–3 s to import,
# paid by every job that imports this module (most of them never call a Poisson quantile).

__all__ = [
    "Z_95",
    "wilson_interval",
    "newcombe_interval",
    "upper_bound",
    "interval",
    "tail_at_least",
    "mean_detected",
    "lower_bound",
    "binomial_tail_at_least",
    "holm_adjusted",
    "equal_rate_tail",
    "organisms_detected",
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
    from scipy.special import gammaincinv

    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    return float(gammaincinv(count + 1, confidence))


def interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact two-sided ``confidence`` interval of a Poisson mean after observing ``count`` (Garwood).

    (0, 3.69) for a count of 0 and (7.65, 23.49) for 14 at 95 %.
    """
    from scipy.special import gammaincinv

    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    tail = (1.0 - confidence) / 2.0
    lower = 0.0 if count == 0 else float(gammaincinv(count, tail))
    return lower, float(gammaincinv(count + 1, 1.0 - tail))


def tail_at_least(count: int, mean: float) -> float:
    """P(X ≥ ``count``) for X ~ Poisson(``mean``); 1 for a count of 0 or less."""
    from scipy.special import gammainc

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
    from scipy.special import gammaincinv

    if threshold < 1:
        raise ValueError(f"a detection threshold is at least one read ({threshold})")
    if threshold == 1:
        return -math.log1p(-probability)
    return float(gammaincinv(threshold, probability))


def lower_bound(count: int, confidence: float = 0.95) -> float:
    """The one-sided lower ``confidence`` bound of a Poisson mean after observing ``count`` (exact).

    The λ for which P(X ≥ count | λ) = 1 − confidence; 0 for a count of 0, 95.2 for 112 at 95 %.
    """
    from scipy.special import gammaincinv

    if count < 0:
        raise ValueError(f"a count cannot be negative ({count})")
    return 0.0 if count == 0 else float(gammaincinv(count, 1.0 - confidence))


def binomial_tail_at_least(successes: int, trials: int, p: float) -> float:
    """P(X ≥ ``successes``) for X ~ Binomial(``trials``, ``p``); 1 for 0 successes or fewer.

    The regularized incomplete beta function gives the tail exactly: P(X ≥ k) = I_p(k, n − k + 1).
    It is the p-value of the conditional test of two Poisson rates: ``successes`` of ``trials``
    counts fell in the first of two samples whose exposures put a share ``p`` there under equal rates.
    """
    from scipy.special import betainc

    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return float(betainc(successes, trials - successes + 1, p))


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (Holm 1979).

    Rejecting every hypothesis whose adjusted p-value is at most α keeps the family-wise error rate
    (the chance of one or more false rejections) at most α, whatever the dependence between tests.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def equal_rate_tail(
    test: int,
    control: int,
    test_exposure: float,
    control_exposure: float,
    cv: float = 0.0,
    controls: float = 1.0,
) -> float:
    """P-value of ``test`` counts against ``control`` counts under equal rates, exposures as offset.

    Given the n = test + control counts, the test's share is Binomial(n, π) with
    π = e_t / (e_t + e_c) when both are Poisson at one rate (the exact conditional test); the value
    is P(X ≥ ``test``). When each library's rate also varies by a gamma factor of coefficient of
    variation ``cv`` (gamma-Poisson, i.e. negative binomial counts, as reagent DNA varies between
    libraries), the ratio R of the test's factor to the pooled controls' is F(2k, 2k·m) for
    k = 1/cv² and ``controls`` = m, the controls' effective number ((Σe)² / Σe²), and π =
    e_t·R / (e_t·R + e_c): the tail is the binomial one averaged over R (numerically, on a grid of
    log R holding all but 1e-13 of either tail). ``cv`` 0 gives the exact binomial tail.
    """
    from scipy.special import betainc

    if test <= 0:
        return 1.0
    if cv <= 0:
        return binomial_tail_at_least(
            test, test + control, test_exposure / (test_exposure + control_exposure)
        )
    ratio, weight = _ratio_grid(round(cv, 9), round(controls, 6))
    share = test_exposure * ratio / (test_exposure * ratio + control_exposure)
    return float(np.dot(weight, betainc(test, control + 1, share)))


@functools.lru_cache(maxsize=64)
def _ratio_grid(cv: float, controls: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights over R ~ F(2k, 2k·m) on a log scale (k = 1/cv²), the weights summing to 1."""
    # the F law's quantiles and density from scipy.special: scipy.stats costs every call job seconds
    from scipy.special import betaincinv, betaln

    shape = 1.0 / (cv * cv)
    a, b = shape, shape * controls  # F(2a, 2b) = (X/a)/(Y/b) with X~Γ(a), Y~Γ(b); x = X/(X+Y) ~ Beta(a, b)
    low = b * betaincinv(a, b, 1e-13) / (a * (1.0 - betaincinv(a, b, 1e-13)))
    high_y = betaincinv(b, a, 1e-13)  # 1 − x at the upper 1e-13 tail, kept exact in its own tail
    high = b * (1.0 - high_y) / (a * high_y)
    nodes = np.linspace(math.log(low), math.log(high), 401)
    ratio = np.exp(nodes)
    # density of F(2a, 2b) at r, times r (the log-scale Jacobian)
    log_pdf = a * math.log(a / b) + (a - 1.0) * nodes - (a + b) * np.log1p(a * ratio / b) - betaln(a, b)
    weight = np.exp(log_pdf) * ratio
    return ratio, weight / weight.sum()


def _compound_detected(organisms: float, reads_per_organism: float, threshold: int) -> float:
    """P(at least ``threshold`` reads) when Poisson(``organisms``) organisms each give
    Poisson(``reads_per_organism``) reads (Neyman type A), summed over organism counts within 12 SD
    of their mean (the Poisson mass beyond is below 1e-30): a few thousand terms for a million
    organisms, which a sample with few reads per organism needs, instead of a million."""
    from scipy.special import gammainc, gammaln

    spread = 12 * math.sqrt(organisms) + 40
    counts = np.arange(max(1, int(organisms - spread)), int(organisms + spread) + 1)
    return float(
        np.dot(
            np.exp(counts * math.log(organisms) - organisms - gammaln(counts + 1)),
            gammainc(threshold, counts * reads_per_organism),
        )
    )


def organisms_detected(threshold: int, reads_per_organism: float, probability: float = 0.95) -> float:
    """The mean number of organisms in the tested sample detected with ``probability``: at least
    ``threshold`` reads, when the sample holds Poisson-many organisms and each gives
    Poisson(``reads_per_organism``) reads (the Neyman type A law of sampling, then sequencing).

    It is never below −ln(1 − p) (3.0 at 95 %: the sample must hold an organism at all) nor below
    :func:`mean_detected` (threshold) / ``reads_per_organism`` (reads Poisson about their mean), and
    tends to the larger of the two when one stage dominates; in between, both add up (e.g. 18.6
    reads per organism and 14 reads needed: 3.32 organisms, where either bound says 3.0).
    """
    if threshold < 1 or reads_per_organism <= 0:
        raise ValueError(
            f"needs a threshold ≥ 1 and reads per organism > 0 ({threshold}, {reads_per_organism})"
        )
    low = max(-math.log1p(-probability), mean_detected(threshold, probability) / reads_per_organism)
    high = low
    while _compound_detected(high, reads_per_organism, threshold) < probability:
        low, high = high, high * 2
    while high - low > 1e-9 * high:
        middle = (low + high) / 2
        low, high = (
            (low, middle)
            if _compound_detected(middle, reads_per_organism, threshold) >= probability
            else (middle, high)
        )
    return high

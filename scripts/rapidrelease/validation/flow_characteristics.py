"""Operating characteristics of the flow rules by simulation: microbial flow and potency.

Microbial flow (:mod:`rapidrelease.flow.microbial`): a test tube and its sterile-medium control of
``volume_ml`` each, background events Poisson at the same rate per mL in both; the test is DETECTED
when its count reaches the exact conditional test's critical count against the control's
(:func:`~rapidrelease.flow.microbial.critical_count`, level α). The false-DETECTED rate of sterile
tubes is given simulated and exact (summed over the control's Poisson count); the detection
probability against microbe concentration gives the LOD95 off the curve.

Potency (:mod:`rapidrelease.flow.thresholds`): the positivity threshold is the unstimulated tube's
``percentile`` (nearest rank) of its ``control_events`` CAR+ T cells; the stimulated tube holds
``stimulated_events``, of which a true share responds (responders fully above the non-responders,
which share the control's distribution). The share of non-responders above the r-th of n control
values is Beta(n − r + 1, r) whatever their distribution, so it is drawn exactly. The reported value
is stimulated % − unstimulated % above the threshold, 0 when negative, rounded half-up to 0.1 % and
judged ≥ ``limit``; a control with fewer than :func:`~rapidrelease.flow.thresholds.min_control_events`
events is refused (the assay is invalid, said so). Misclassification is a PASS of a lot whose true
response is below the limit, or a FAIL of one above it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import poisson

from rapidrelease.flow.microbial import critical_count
from rapidrelease.flow.thresholds import min_control_events

__all__ = [
    "MicrobialFalseRate",
    "critical_counts",
    "exact_false_rate",
    "microbial_false_detected",
    "microbial_detection_curve",
    "lod95_linear",
    "potency_net",
    "reported_pass",
    "PotencyRow",
    "potency_misclassification",
]


def critical_counts(highest: int, alpha: float, test_share: float = 0.5) -> np.ndarray:
    """The critical test count for every control count 0..``highest``, shape (highest + 1,)."""
    return np.array([critical_count(c, test_share, alpha) for c in range(highest + 1)])


def exact_false_rate(background: float, table: np.ndarray) -> float:
    """P(DETECTED) of a sterile tube pair at ``background`` expected events per tube, exact: summed
    over the control's Poisson count, for a rule given as its critical-count ``table``."""
    controls = np.arange(table.size)
    return float(np.dot(poisson.pmf(controls, background), poisson.sf(table - 1, background)))


@dataclass(frozen=True)
class MicrobialFalseRate:
    """Sterile tubes called DETECTED at ``background`` events per tube: simulated over ``tubes`` and exact."""

    background: float
    tubes: int
    simulated: float
    exact: float


def _table(backgrounds: Sequence[float]) -> int:
    top = max(backgrounds)
    return int(top + 15 * math.sqrt(top) + 60)


def microbial_false_detected(
    backgrounds: Sequence[float], tubes: int, alpha: float, rng: np.random.Generator
) -> list[MicrobialFalseRate]:
    """The false-DETECTED rate of sterile tubes at each background (expected events per tube)."""
    table = critical_counts(_table(backgrounds), alpha)
    rows = []
    for background in backgrounds:
        x, c = rng.poisson(background, tubes), rng.poisson(background, tubes)
        simulated = float(np.mean(x >= table[np.minimum(c, table.size - 1)]))
        rows.append(MicrobialFalseRate(background, tubes, simulated, exact_false_rate(background, table)))
    return rows


def microbial_detection_curve(
    concentrations: Sequence[float],
    background: float,
    volume_ml: float,
    tubes: int,
    alpha: float,
    rng: np.random.Generator,
) -> list[float]:
    """P(DETECTED) per microbe concentration (per mL of test), ``background`` events per tube in both."""
    table = critical_counts(_table([background + max(concentrations) * volume_ml]), alpha)
    rates = []
    for concentration in concentrations:
        x = rng.poisson(background + concentration * volume_ml, tubes)
        c = rng.poisson(background, tubes)
        rates.append(float(np.mean(x >= table[np.minimum(c, table.size - 1)])))
    return rates


def lod95_linear(levels: Sequence[float], detected: Sequence[float]) -> float | None:
    """The lowest level detected with 95 %, linearly interpolated; None when no level reaches it."""
    for i, p in enumerate(detected):
        if p >= 0.95:
            if i == 0:
                return float(levels[0])
            p0 = detected[i - 1]
            return float(levels[i - 1] + (0.95 - p0) / (p - p0) * (levels[i] - levels[i - 1]))
    return None


def potency_net(
    rng: np.random.Generator,
    lots: int,
    control_events: int,
    response_pct: float,
    stimulated_events: int,
    percentile: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated net % above the threshold (unclipped, shape (lots,)) and the unstimulated tube's %
    above its own threshold (shape (lots,), constant: the nearest-rank percentile leaves n − r above)."""
    rank = max(1, math.ceil(percentile / 100 * control_events))
    above_share = rng.beta(control_events - rank + 1, rank, lots)  # non-responders above the threshold
    rho = response_pct / 100
    stimulated = rng.binomial(stimulated_events, rho + (1 - rho) * above_share) / stimulated_events * 100
    unstimulated = np.full(lots, (control_events - rank) / control_events * 100)
    return stimulated - unstimulated, unstimulated


def reported_pass(net: np.ndarray, limit: float) -> np.ndarray:
    """Whether each net % passes ``≥ limit`` as the specification judges it: negative reported as 0,
    rounded half-up to 0.1 %."""
    return np.floor(np.maximum(net, 0.0) * 10 + 0.5 + 1e-9) / 10 >= limit


@dataclass(frozen=True)
class PotencyRow:
    """Lots with a true response of ``response_pct`` judged PASS, FAIL or INCONCLUSIVE (fractions)."""

    control_events: int
    response_pct: float
    passed: float
    failed: float
    inconclusive: float

    def misclassified(self, limit: float) -> float:
        """The wrong call's share: PASS below the limit, FAIL at or above it."""
        return self.passed if self.response_pct < limit else self.failed


def potency_misclassification(
    rng: np.random.Generator,
    lots: int,
    control_events: Sequence[int],
    responses: Sequence[float],
    stimulated_events: int,
    limit: float,
    percentile: float,
    min_events: Callable[[float], int] = min_control_events,
) -> list[PotencyRow]:
    """PASS/FAIL/INCONCLUSIVE shares per control size and true response (the package's rule)."""
    needed = min_events(percentile)
    rows = []
    for n in control_events:
        for response in responses:
            if n < needed:
                rows.append(PotencyRow(n, response, 0.0, 0.0, 1.0))  # the control is refused, said so
                continue
            net, _ = potency_net(rng, lots, n, response, stimulated_events, percentile)
            passed = float(np.mean(reported_pass(net, limit)))
            rows.append(PotencyRow(n, response, passed, 1.0 - passed, 0.0))
    return rows

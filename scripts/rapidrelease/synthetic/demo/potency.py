"""The potency tubes' response model: which live T cells show which effector function.

The potency assay stains the lot's cells after a 5 h stimulation with plate-bound CD19 antigen
(the stimulated tube) or with medium only (the unstimulated tube), with brefeldin A and monensin
keeping cytokines inside the cell and anti-CD107a present throughout to catch degranulation. The
cells are the lot's own (drawn as for the phenotype tube); this module decides who responds, and
:func:`rapidrelease.synthetic.demo.cells.draw_cytokine_dye` turns that into dye.
"""

from __future__ import annotations

import numpy as np

from rapidrelease.synthetic.demo.lots import FUNCTIONS, PotencyResponse

__all__ = ["draw_responses"]


def draw_responses(
    rng: np.random.Generator,
    response: PotencyResponse,
    live_t: np.ndarray,
    car: np.ndarray,
    stimulated: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw each cell's activation and functions; return ``(activated, positive)``.

    ``live_t`` and ``car`` are (n,) bool: live T cells, and cells carrying the CAR. ``activated``
    is (n,) bool, the latent antigen-activated state (never set in the unstimulated tube);
    ``positive`` is (n, 4) bool, the functions each cell shows in
    :data:`~rapidrelease.synthetic.demo.lots.FUNCTIONS` order. Only live T cells respond: activated
    CAR+ T cells with the per-function probabilities of :meth:`PotencyResponse.given_activation`,
    CAR− T cells of the stimulated tube at the bystander rate, and every live T cell at the
    spontaneous background rate.
    """
    n = live_t.size
    k = len(FUNCTIONS)
    positive = live_t[:, None] & (rng.random((n, k)) < response.background)
    activated = np.zeros(n, dtype=bool)
    if stimulated:
        activated = live_t & car & (rng.random(n) < response.activated)
        specific = activated[:, None] & (rng.random((n, k)) < np.array(response.given_activation()))
        bystander = (live_t & ~car)[:, None] & (rng.random((n, k)) < response.bystander)
        positive = positive | specific | bystander
    return activated, positive

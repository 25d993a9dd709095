"""A sample's internal control: its sensitivity, its interval and its recovery of the buffer's."""

from __future__ import annotations

import pytest

from rapidrelease.stats import interval, lower_bound
from rapidrelease.sterility.internal_control import assess_internal_control, recovery_sentence


def _assess(reads: int, shotgun: bool = True, positive=((100.0, 1_000_000.0),), minimum: float = 0.1):
    # 100 CFU/mL spiked into a 200,000-fragment test; its organism's genome holds 500,000 minimizers
    return assess_internal_control("T", "Streptococcus suis", 1307, 100.0, "CFU/mL", reads, 200_000,
                                   500_000.0, positive, minimum, shotgun)  # fmt: skip


def test_sensitivity_and_its_intervals_come_from_the_spikes_poisson_count() -> None:
    control = _assess(400)
    # 400 reads in 200,000 fragments per 100 CFU/mL: 20 RPM per CFU/mL
    assert control.rpm_per_unit == pytest.approx(20.0)
    low, high = interval(400)
    assert control.rpm_per_unit_ci95 == pytest.approx((low / 20, high / 20))
    assert control.rpm_per_unit_lower == pytest.approx(lower_bound(400) / 20)


def test_recovery_compares_sensitivities_per_reference_minimizer_in_shotgun_libraries() -> None:
    # the spike's genome is half as large in the reference as the positive control's organism: 20 RPM
    # per CFU/mL of it is as much DNA per genome as 40 of the other, 40 % of the buffer's 100
    assert _assess(400).recovery == pytest.approx(0.4)
    # an amplicon library reads one locus of each organism: no scaling
    assert _assess(400, shotgun=False).recovery == pytest.approx(0.2)
    # several positive controls: the least sensitive, the one the LOD would otherwise rest on
    both = _assess(400, positive=((100.0, 1_000_000.0), (50.0, 1_000_000.0)))
    assert both.recovery == pytest.approx(0.8)


def test_inhibition_is_recovery_below_the_floor_and_says_so() -> None:
    assert not _assess(400, minimum=0.4).inhibited
    inhibited = _assess(40)
    assert inhibited.recovery == pytest.approx(0.04) and inhibited.inhibited
    assert recovery_sentence(inhibited) == (
        "internal control Streptococcus suis at 100 CFU/mL: 40 reads, 2 RPM per CFU/mL (95 % CI 1.43–2.72), "
        "4 % of the positive control's sensitivity in buffer (95 % CI 3–5 %), below the 10 % a sample "
        "needs: the sample's matrix inhibits the assay, so a miss in it shows nothing"
    )
    # without a positive control to compare with there is no recovery, and no inhibition claimed
    alone = _assess(40, positive=())
    assert (alone.recovery, alone.inhibited) == (None, False)
    assert recovery_sentence(alone).endswith("no positive control to compare its recovery with")

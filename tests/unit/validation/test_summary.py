"""rapidrelease validate-method: the summary a QA reviewer files, at stated settings."""

from __future__ import annotations

import pytest

from rapidrelease.cli import main
from rapidrelease.validation.background_cv import BackgroundCv
from rapidrelease.validation.summary import ValidationSettings, validation_summary


def test_validate_method_prints_every_characteristic_at_its_settings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate-method", "--lots", "2", "--curve-lots", "1", "--tubes", "500", "--seed", "5"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("METHOD VALIDATION SUMMARY (rapidrelease validate-method)")
    assert "seed 5; 2 sterile lots per sterility setting, 1 lots per contaminant level" in text
    for heading in (
        "1. SEQUENCING STERILITY: per-lot false-FAIL rate of sterile lots, 300 reagent taxa shared",
        "2. SEQUENCING STERILITY: detection probability against contaminant level",
        "3. MICROBIAL FLOW: sterile tubes called DETECTED",
        "4. POTENCY: lots near the ≥ 5 % limit",
    ):
        assert heading in text
    # the microbial test's size is exact, whatever the number of simulated tubes
    assert "worst level 0.82 % (≤ α = 1 %: met)" in text


def test_validate_method_refuses_an_empty_simulation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate-method", "--lots", "0"]) == 1
    assert capsys.readouterr().err.strip() == "rapidrelease: --lots must be at least 1 (0 given)."


def test_a_measured_background_cv_adds_the_false_fail_rate_at_it() -> None:
    measured = BackgroundCv(cv=0.47, upper95=0.61, libraries=6, taxa=212, reads=48_000)
    text = validation_summary(ValidationSettings(seed=3, lots=1, curve_lots=1, tubes=200), measured)
    # the lab's CV, configured as measured and left at the default 0.3, on the same kind of lot
    assert "   measured CV 0.47, configured 0.47 " in text
    assert "   measured CV 0.47, configured 0.3 " in text
    assert (
        "   measured from 6 negative controls, 212 taxa, 48,000 reads: background_cv 0.47 "
        "(95 % upper bound 0.61)"
    ) in text

    assert "NOT A VALIDATED VALUE" not in text


def test_a_background_cv_from_too_few_controls_is_said_to_be_no_validated_value() -> None:
    # the demo's four NTCs hold four E. coli reads between them: no estimate of anything
    thin = BackgroundCv(cv=0.71, upper95=0.71, libraries=4, taxa=1, reads=4)
    text = validation_summary(ValidationSettings(seed=3, lots=1, curve_lots=1, tubes=200), thin)
    assert (
        "   NOT A VALIDATED VALUE: too little to estimate the variation from: 1 taxa with reads (needs 20), "
        "4 reads (needs 1,000); do not configure it"
    ) in text

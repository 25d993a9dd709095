"""An input that changed after it was measured: never evidence for a release candidate."""

from __future__ import annotations

from pathlib import Path

from rapidrelease.config.run import RunConfig, load_run_config
from rapidrelease.config.vocabulary import INCONCLUSIVE, RELEASE_CANDIDATE
from rapidrelease.records import FileRef, UnitRecord, read_release, to_json
from rapidrelease.release.decision import evaluate_lot_files
from rapidrelease.release.integrity import changed_inputs

from support.configs import unit_result, with_inputs_on_disk, write_project, write_records


def _measured(project: Path, run: RunConfig | None = None) -> UnitRecord:
    record = with_inputs_on_disk(project, unit_result())
    if run is not None:
        write_records(project, run, [record])
    return record


def test_unchanged_inputs_pass_the_check(project: Path) -> None:
    assert changed_inputs(_measured(project).inputs) == []


def test_a_file_rewritten_after_measurement_is_named_with_both_hashes(project: Path) -> None:
    record = _measured(project)
    (project / "data" / "DEMO-001.fcs").write_bytes(b"the instrument wrote the file again")
    (problem,) = changed_inputs(record.inputs)
    recorded = record.inputs[0].sha256
    assert recorded is not None
    assert problem.startswith(f"data/DEMO-001.fcs: changed after it was measured (SHA-256 {recorded[:12]}")
    assert problem.endswith("now); measure the lot again.")


def test_a_file_removed_after_measurement_is_named(project: Path) -> None:
    record = _measured(project)
    (project / "data" / "DEMO-001.fcs").unlink()
    assert changed_inputs(record.inputs) == [
        "data/DEMO-001.fcs: was removed after it was measured; measure the lot again."
    ]


def test_an_input_that_was_already_missing_is_its_units_own_error_and_not_checked_again() -> None:
    assert changed_inputs([FileRef("fcs", "data/lost.fcs", None, None)]) == []


def test_release_json_of_a_lot_whose_tube_changed_after_measurement_is_inconclusive(project: Path) -> None:
    run = load_run_config(write_project(project))
    _measured(project, run)
    assert evaluate_lot_files(run, "DEMO-001", project / "release.json").status == RELEASE_CANDIDATE
    # the same bytes measured, then one appended (an instrument still writing)
    with open(project / "data" / "DEMO-001.fcs", "ab") as fh:
        fh.write(b"\0")
    decision = to_json(evaluate_lot_files(run, "DEMO-001", project / "release.json"))
    assert isinstance(decision, dict)
    assert decision["status"] == INCONCLUSIVE
    assert {a["result"] for a in decision["attributes"]} == {INCONCLUSIVE}
    (unit,) = decision["units"]
    assert unit["status"] == "error" and unit["error"].startswith(
        "data/DEMO-001.fcs: changed after it was measured"
    )
    assert read_release(project / "release.json").status == INCONCLUSIVE

"""An input that changed after it was measured: never evidence for a release candidate."""

from __future__ import annotations

import json
from pathlib import Path

from rapidrelease.config.run import load_run_config
from rapidrelease.release.decision import INCONCLUSIVE, RELEASE_CANDIDATE, evaluate_lot_files
from rapidrelease.release.integrity import changed_inputs, with_changed_inputs_as_errors

from support.configs import unit_result, with_inputs_on_disk, write_project


def _measured(project: Path) -> tuple[dict, Path]:
    record = with_inputs_on_disk(project, unit_result())
    path = project / "results" / "DEMO-001" / "units" / "PHENO" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record), encoding="utf-8")
    return record, path


def test_unchanged_inputs_pass_the_check(project: Path) -> None:
    record, _ = _measured(project)
    assert changed_inputs(record["inputs"]) == []
    assert with_changed_inputs_as_errors(record) is record


def test_a_file_rewritten_after_measurement_is_named_with_both_hashes(project: Path) -> None:
    record, _ = _measured(project)
    (project / "data" / "DEMO-001.fcs").write_bytes(b"the instrument wrote the file again")
    (problem,) = changed_inputs(record["inputs"])
    assert problem.startswith(
        f"data/DEMO-001.fcs: changed after it was measured (SHA-256 {record['inputs'][0]['sha256'][:12]}"
    )
    assert problem.endswith("now); measure the lot again.")


def test_a_file_removed_after_measurement_is_named(project: Path) -> None:
    record, _ = _measured(project)
    (project / "data" / "DEMO-001.fcs").unlink()
    assert changed_inputs(record["inputs"]) == [
        "data/DEMO-001.fcs: was removed after it was measured; measure the lot again."
    ]


def test_an_input_that_was_already_missing_is_its_units_own_error_and_not_checked_again() -> None:
    assert changed_inputs([{"path": "data/lost.fcs", "sha256": None, "size_bytes": None}]) == []


def test_release_json_of_a_lot_whose_tube_changed_after_measurement_is_inconclusive(project: Path) -> None:
    run = load_run_config(write_project(project))
    _, metrics = _measured(project)
    assert (
        evaluate_lot_files(run, "DEMO-001", [metrics], project / "release.json")["status"]
        == RELEASE_CANDIDATE
    )
    # the same bytes measured, then one appended (an instrument still writing)
    with open(project / "data" / "DEMO-001.fcs", "ab") as fh:
        fh.write(b"\0")
    decision = evaluate_lot_files(run, "DEMO-001", [metrics], project / "release.json")
    assert decision["status"] == INCONCLUSIVE
    assert {a["result"] for a in decision["attributes"]} == {INCONCLUSIVE}
    (unit,) = decision["units"]
    assert unit["status"] == "error" and unit["error"].startswith(
        "data/DEMO-001.fcs: changed after it was measured"
    )
    assert json.loads((project / "release.json").read_text(encoding="utf-8"))["status"] == INCONCLUSIVE

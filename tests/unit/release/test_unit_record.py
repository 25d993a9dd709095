"""The metrics.json record of every measuring stage: a bad input or a bug leaves one sentence, no metrics."""

from __future__ import annotations

from rapidrelease.errors import ReadsError
from rapidrelease.release.unit_record import new_unit_record, record_failure


def test_a_new_record_is_ok_with_the_stage_evidence_before_the_metrics():
    record = new_unit_record("LOT-1", "STER", "sterility_reads", "test", index=None)
    assert list(record) == [
        "lot_id",
        "unit_id",
        "assay",
        "role",
        "status",
        "error",
        "inputs",
        "index",
        "metrics",
    ]
    assert (record["status"], record["error"], record["metrics"]) == ("ok", None, {})


def test_a_bad_input_keeps_its_sentence_and_a_bug_is_named_an_internal_error(capsys):
    record = new_unit_record("LOT-1", "STER", "sterility_reads", "test")
    record["metrics"] = {"host_pct": {"value": 96.5}}
    record_failure(record, ReadsError("r1.fq.gz: the gzip data end early (truncated file)."), "gathering")
    assert (record["status"], record["metrics"]) == ("error", {})
    assert record["error"] == "r1.fq.gz: the gzip data end early (truncated file)."
    assert capsys.readouterr().err == ""
    try:
        {}["cells"]
    except KeyError as bug:
        record_failure(record, bug, "gathering")
    assert record["error"] == "internal error while gathering unit STER of lot LOT-1 (KeyError: 'cells')."
    assert "Traceback" in capsys.readouterr().err

"""Electronic signatures of a lot's decision: appended sealed, refused when they cannot apply, void
once the release.json they signed has changed."""

from __future__ import annotations

import dataclasses
import getpass
import json
from pathlib import Path

import pytest

from rapidrelease.cli import main
from rapidrelease.errors import SignatureError
from rapidrelease.outputs import sha256_file
from rapidrelease.records import file_ref, seal_of, write_record
from rapidrelease.release.signatures import SIGNATURES_FILE, read_signatures, sign_lot

from support.releases import (
    DEMO_001_VIABILITY,
    DEMO_002_CAR,
    STERILITY_NOT_DETECTED,
    demo_release,
    minimal_audit,
)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results folder as the demo run leaves it: DEMO-001 a release candidate, DEMO-002 not
    releasable (its CAR+ of CD3+ fails), each with release.json and its report."""
    decisions = {
        "DEMO-001": demo_release(
            "DEMO-001", [DEMO_001_VIABILITY, STERILITY_NOT_DETECTED], "RELEASE_CANDIDATE"
        ),
        "DEMO-002": demo_release("DEMO-002", [DEMO_001_VIABILITY, DEMO_002_CAR], "NOT_RELEASABLE"),
    }
    for lot_id, decision in decisions.items():
        write_record(tmp_path / lot_id / "release.json", decision)
        (tmp_path / lot_id / "report.html").write_text(f"<p>report of {lot_id}</p>", encoding="utf-8")
    return tmp_path


def _statuses(results: Path, lot_id: str):
    return read_signatures(results / lot_id / SIGNATURES_FILE, results / lot_id / "release.json")


def test_each_signature_is_one_sealed_line_naming_who_signed_which_files(results: Path) -> None:
    release = results / "DEMO-001" / "release.json"
    before = release.read_bytes()
    sign_lot(results, "DEMO-001", "Ada Reviewer", "reviewed", role="QC analyst")
    sign_lot(results, "DEMO-001", " Grace  Approver ", "approved", comment='OK, "as specified"', role="QA")
    assert release.read_bytes() == before  # signing never changes the decision
    lines = (results / "DEMO-001" / SIGNATURES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    for line in lines:
        data = json.loads(line)
        assert data["record_type"] == "signature" and data["seal"]["sha256"] == seal_of(data)
    first, second = _statuses(results, "DEMO-001")
    assert [s.status for s in (first, second)] == ["VALID", "VALID"]
    approval = second.signature
    assert approval is not None
    assert (approval.reviewer, approval.role, approval.meaning) == ("Grace Approver", "QA", "approved")
    assert approval.comment == 'OK, "as specified"'
    assert approval.account == getpass.getuser()
    assert approval.release.sha256 == sha256_file(release)
    assert approval.report.sha256 == sha256_file(results / "DEMO-001" / "report.html")
    assert approval.release_status == "RELEASE_CANDIDATE"
    assert approval.signed_at.endswith("Z")


def test_a_release_json_changed_after_signing_voids_the_signature(results: Path) -> None:
    sign_lot(results, "DEMO-001", "Grace Approver", "approved")
    # the lot is evaluated again: the same attributes, another record
    again = demo_release("DEMO-001", [DEMO_001_VIABILITY, STERILITY_NOT_DETECTED], "RELEASE_CANDIDATE")
    write_record(results / "DEMO-001" / "release.json", dataclasses.replace(again, status_reason="again"))
    (status,) = _statuses(results, "DEMO-001")
    assert status.status == "VOID"
    assert status.reason is not None and "release.json changed after it was signed" in status.reason


def test_a_report_rendered_again_leaves_the_signature_valid(results: Path) -> None:
    sign_lot(results, "DEMO-001", "Ada Reviewer", "reviewed")
    (results / "DEMO-001" / "report.html").write_text("<p>now with its signatures</p>", encoding="utf-8")
    assert [s.status for s in _statuses(results, "DEMO-001")] == ["VALID"]


def test_an_edited_signature_line_is_void_and_the_others_stand(results: Path) -> None:
    sign_lot(results, "DEMO-001", "Ada Reviewer", "reviewed")
    sign_lot(results, "DEMO-001", "Grace Approver", "approved")
    path = results / "DEMO-001" / SIGNATURES_FILE
    first, second = path.read_text(encoding="utf-8").splitlines()
    path.write_text(first.replace("Ada Reviewer", "Someone Else") + "\n" + second + "\n", encoding="utf-8")
    edited, kept = _statuses(results, "DEMO-001")
    assert edited.status == "VOID" and edited.signature is None
    assert edited.reason is not None and "does not match its seal" in edited.reason
    assert kept.status == "VALID"


def test_approving_a_lot_that_is_not_a_release_candidate_is_refused(results: Path) -> None:
    with pytest.raises(SignatureError, match="NOT_RELEASABLE, not RELEASE_CANDIDATE"):
        sign_lot(results, "DEMO-002", "Grace Approver", "approved")
    assert not (results / "DEMO-002" / SIGNATURES_FILE).exists()
    sign_lot(results, "DEMO-002", "Grace Approver", "rejected", comment="CAR+ of CD3+ 8.9 % < 15 %")
    (status,) = _statuses(results, "DEMO-002")
    assert status.signature is not None and status.signature.meaning == "rejected"


def _break_seal(results: Path) -> None:
    release = results / "DEMO-001" / "release.json"
    release.write_text(release.read_text(encoding="utf-8").replace("88.1", "98.1"), encoding="utf-8")


@pytest.mark.parametrize(
    ("lot_id", "reviewer", "meaning", "prepare", "problem"),
    [
        ("DEMO-003", "Ada Reviewer", "reviewed", None, "release.json: not found"),
        ("DEMO-001", "Ada Reviewer", "reviewed", _break_seal, "does not match its seal"),
        ("DEMO-001", "Ada Reviewer", "released", None, "'released' is not a meaning"),
        ("DEMO-001", "  ", "reviewed", None, "needs the reviewer's printed name"),
    ],
)
def test_what_cannot_be_signed_is_refused_in_one_sentence_and_nothing_is_written(
    results: Path, lot_id, reviewer, meaning, prepare, problem
) -> None:
    if prepare is not None:
        prepare(results)
    with pytest.raises(SignatureError, match=problem):
        sign_lot(results, lot_id, reviewer, meaning)
    assert not (results / lot_id / SIGNATURES_FILE).exists()


def test_the_command_prints_the_refusal_as_one_line(
    results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "sign",
        "--results",
        str(results),
        "--lot",
        "DEMO-002",
        "--reviewer",
        "G",
        "--meaning",
        "approved",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rapidrelease: lot DEMO-002 is NOT_RELEASABLE")
    assert main(["signatures", "--results", str(results), "--lot", "DEMO-002"]) == 0
    assert "no signatures" in capsys.readouterr().out


def test_a_lot_whose_unit_record_changed_after_the_decision_cannot_be_approved(results: Path) -> None:
    record = results / "DEMO-001" / "flow" / "PHENO" / "metrics.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"viability": 88.1}', encoding="utf-8")
    measured = file_ref(record, "metrics")
    entry = {
        "role": "metrics",
        "path": measured.path,
        "sha256": measured.sha256,
        "size_bytes": measured.size_bytes,
    }
    audit = {**minimal_audit(), "files": [entry]}
    decision = demo_release("DEMO-001", [DEMO_001_VIABILITY, STERILITY_NOT_DETECTED], "RELEASE_CANDIDATE")
    write_record(results / "DEMO-001" / "release.json", dataclasses.replace(decision, audit=audit))
    (results / "DEMO-001" / "report.html").touch()
    record.write_text('{"viability": 98.1}', encoding="utf-8")  # the evidence behind the report changed
    with pytest.raises(
        SignatureError, match=r"cannot be approved: .*metrics\.json: changed after it was measured"
    ):
        sign_lot(results, "DEMO-001", "Grace Approver", "approved")
    sign_lot(results, "DEMO-001", "Grace Approver", "rejected", comment="evidence changed after the decision")


def test_a_line_that_is_not_utf8_is_void_and_does_not_hide_the_others(results: Path) -> None:
    sign_lot(results, "DEMO-001", "Ada Reviewer", "reviewed")
    path = results / "DEMO-001" / SIGNATURES_FILE
    path.write_bytes(b"\xff\xfe garbage\n" + path.read_bytes())
    broken, kept = _statuses(results, "DEMO-001")
    assert (
        broken.status == "VOID" and broken.reason is not None and broken.reason.endswith("is not UTF-8 text.")
    )
    assert kept.status == "VALID" and kept.line == 2

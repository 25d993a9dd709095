"""The report's signatures: valid ones with who signed what, void ones with the reason, and the
sign-off block for print."""

from __future__ import annotations

from collections.abc import Callable

from rapidrelease.records import FileHash, Release
from rapidrelease.release.signatures import Signature, SignatureStatus
from rapidrelease.report.html import render_lot_report


def _signature(reviewer: str, meaning: str) -> Signature:
    return Signature(
        lot_id="DEMO-001",
        reviewer=reviewer,
        role="QA reviewer",
        meaning=meaning,  # type: ignore[arg-type]
        comment="<b>checked</b>",
        signed_at="2026-11-26T07:30:00.000Z",
        account="grace",
        host="qa-ws-1",
        release_status="RELEASE_CANDIDATE",
        release=FileHash("results/DEMO-001/release.json", "a" * 64, 44691),
        report=FileHash("results/DEMO-001/report.html", "b" * 64, 7301124),
    )


def test_valid_and_void_signatures_and_the_sign_off_block(make_release: Callable[..., Release]) -> None:
    statuses = [
        SignatureStatus(1, _signature("Ada Reviewer", "reviewed"), True, None),
        SignatureStatus(
            2, _signature("Grace Approver", "approved"), False, "release.json changed after it was signed."
        ),
        SignatureStatus(3, None, False, "signatures.jsonl line 3: its content does not match its seal."),
    ]
    page = render_lot_report(make_release("DEMO-001", "RELEASE_CANDIDATE"), {}, statuses)
    signed = page[page.index("<h2>Signatures</h2>") :]
    assert signed.count("result VALID'>VALID") == 1 and signed.count("result VOID'>VOID") == 2
    assert "release.json changed after it was signed." in signed
    assert "line 3: signatures.jsonl line 3: its content does not match its seal." in signed
    assert "a" * 64 in signed and "grace@qa-ws-1" in signed
    assert "&lt;b&gt;checked&lt;/b&gt;" in signed  # a comment is text, never markup
    block = signed[signed.index("<section class='signoff'>") :]
    # only the valid signature is carried into the printed sign-off, beside lines to sign by hand
    assert "Ada Reviewer" in block and "Grace Approver" not in block
    assert block.count("<td class='line'></td>") == 8


def test_a_report_without_signatures_says_so(make_release: Callable[..., Release]) -> None:
    page = render_lot_report(make_release("DEMO-001", "RELEASE_CANDIDATE"), {})
    assert "No signatures when this report was rendered." in page

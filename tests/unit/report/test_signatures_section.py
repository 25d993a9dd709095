"""The report's signatures: valid ones with who signed what, void ones with the reason, and the
sign-off block for print; the index's signatures of every lot."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from rapidrelease.records import FileHash, Release, write_record
from rapidrelease.release.signatures import Signature, SignatureStatus, sign_lot
from rapidrelease.report.html import render_lot_report
from rapidrelease.report.index import write_index

from support.releases import DEMO_001_VIABILITY, STERILITY_NOT_DETECTED, demo_release


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
    assert block.count("<td class='line'><span></span></td>") == 8


def test_a_report_without_signatures_says_so(make_release: Callable[..., Release]) -> None:
    page = render_lot_report(make_release("DEMO-001", "RELEASE_CANDIDATE"), {})
    assert "No signatures when this report was rendered." in page


def test_the_index_lists_every_lots_signatures_as_they_stand_when_it_is_built(tmp_path: Path) -> None:
    decision = demo_release("DEMO-001", [DEMO_001_VIABILITY, STERILITY_NOT_DETECTED], "RELEASE_CANDIDATE")
    release = tmp_path / "DEMO-001" / "release.json"
    write_record(release, decision)
    (tmp_path / "DEMO-001" / "report.html").write_text("<p>report</p>", encoding="utf-8")
    index = tmp_path / "index.html"
    assert "No lot has been signed." in _index(release, index)
    sign_lot(tmp_path, "DEMO-001", "Grace Approver", "approved")
    assert "result VALID'>VALID</span></td>\n<td><b>approved</b></td><td>Grace Approver" in _index(
        release, index
    )
    write_record(release, dataclasses.replace(decision, status_reason="evaluated again"))
    assert "result VOID'>VOID</span><br><span class='note'>release.json changed" in _index(release, index)


def _index(release: Path, index: Path) -> str:
    write_index([release], index, None)
    page = index.read_text(encoding="utf-8")
    return page[page.index("<h2>Sign-off</h2>") : page.index("<h2>Attributes across lots</h2>")]

"""Electronic signatures of a lot's decision: who reviewed, approved or rejected which release.json.

``rapidrelease sign`` appends one :class:`Signature` to ``<results>/<lot>/signatures.jsonl``: a JSON
object on one line, sealed like every record (:func:`rapidrelease.records.record_json`: the SHA-256
of its canonical JSON). The file is only ever appended to: a signature is never edited or removed,
and a later one (a rejection after a review) stands beside the earlier ones, as 21 CFR Part 11
§11.10(e) asks of an audit trail. Each signature shows what §11.50 asks of its manifestation: the
printed name, the date and time (UTC) and the meaning (reviewed, approved, rejected).

A signature applies to the bytes it names: the SHA-256 of release.json and of report.html as they
were when it was made. Signing never changes either file. When release.json has changed since (the
lot was evaluated again), the signature is VOID: the decision it signed is gone. The report may be
rendered again (it lists the signatures present when it is rendered), so a changed report.html
does not void a signature; the recorded SHA-256 says which rendering the reviewer signed.

Authentication stays the lab's (its LIMS, its OS accounts): a signature records the OS account that
ran the command and the host, beside the name the reviewer gave.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Literal

from rapidrelease.config.vocabulary import RELEASE_CANDIDATE
from rapidrelease.errors import RapidReleaseError, RecordError, SignatureError
from rapidrelease.outputs import sha256_file
from rapidrelease.records import FileHash, Release, parse_record_text, read_release, record_json
from rapidrelease.release.audit import utc_timestamp
from rapidrelease.release.integrity import changed_inputs

__all__ = [
    "MEANINGS",
    "SIGNATURES_FILE",
    "Signature",
    "SignatureStatus",
    "read_signatures",
    "sign_lot",
    "signature_lines",
]

MEANINGS: tuple[str, ...] = ("reviewed", "approved", "rejected")
"""What a signature means (21 CFR Part 11 §11.50(a)(3)); only a release candidate can be approved."""

SIGNATURES_FILE = "signatures.jsonl"
"""The lot's signature file, beside its release.json and report.html."""


@dataclass(frozen=True)
class Signature:
    """One electronic signature of a lot's decision, one line of ``signatures.jsonl``.

    ``reviewer`` is the printed name and ``role`` the function the reviewer signs in (e.g. "QA
    reviewer"), both as given; ``signed_at`` the UTC time (ISO 8601, ``Z``); ``account`` and
    ``host`` the OS account and machine that ran ``rapidrelease sign``. ``release`` and ``report``
    are the files signed, with the SHA-256 and size in bytes they had; ``release_status`` the lot's
    status in that release.json.
    """

    RECORD_TYPE: ClassVar[str] = "signature"
    RECORD_VERSION: ClassVar[int] = 1

    lot_id: str
    reviewer: str
    role: str | None
    meaning: Literal["reviewed", "approved", "rejected"]
    comment: str | None
    signed_at: str
    account: str
    host: str
    release_status: Literal["RELEASE_CANDIDATE", "NOT_RELEASABLE", "INCONCLUSIVE"]
    release: FileHash
    report: FileHash


@dataclass(frozen=True)
class SignatureStatus:
    """A line of the signature file as it stands now: its signature (None when the line is no
    sealed signature), ``valid`` or VOID, and ``reason`` why it is void."""

    line: int
    signature: Signature | None
    valid: bool
    reason: str | None

    @property
    def status(self) -> str:
        return "VALID" if self.valid else "VOID"


def _account() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        # no login name in a bare container or under some schedulers; the host still says where
        return "unknown"


def _signed_file(path: Path) -> FileHash:
    return FileHash(str(path), sha256_file(path), path.stat().st_size)


def sign_lot(
    results_dir: Path,
    lot_id: str,
    reviewer: str,
    meaning: str,
    comment: str | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> tuple[Signature, Path]:
    """``rapidrelease sign``: append a signature of lot ``lot_id``'s decision; return it and its file.

    The lot's release.json (``<results_dir>/<lot_id>/release.json``) must read as a sealed,
    consistent record, and its report.html must exist and be no older than it (the reviewer signs
    what the report shows). An ``approved`` signature needs a RELEASE_CANDIDATE whose data files are
    unchanged since they were measured. Anything else is a :class:`SignatureError`; nothing is then
    written. release.json and report.html are read, never written.
    """
    reviewer = " ".join((reviewer or "").split())
    lot_dir = Path(results_dir) / lot_id
    release_path, report_path = lot_dir / "release.json", lot_dir / "report.html"
    if meaning not in MEANINGS:
        raise SignatureError(
            f"lot {lot_id}: {meaning!r} is not a meaning of a signature; give one of {', '.join(MEANINGS)}."
        )
    if not reviewer:
        raise SignatureError(f"lot {lot_id}: a signature needs the reviewer's printed name (--reviewer).")
    if not release_path.is_file():
        raise SignatureError(f"{release_path}: not found, so lot {lot_id} has no decision to sign.")
    try:
        release = read_release(release_path)
    except RecordError as exc:
        raise SignatureError(f"lot {lot_id} cannot be signed: {exc}") from None
    if release.lot.lot_id != lot_id:
        raise SignatureError(
            f"{release_path}: is the decision of lot {release.lot.lot_id}, not {lot_id}; it cannot be signed."
        )
    if not report_path.is_file():
        raise SignatureError(f"{report_path}: not found; render the report the signature applies to first.")
    if report_path.stat().st_mtime < release_path.stat().st_mtime:
        raise SignatureError(
            f"{report_path}: is older than release.json, so it does not show the decision; render it again."
        )
    if meaning == "approved":
        if release.status != RELEASE_CANDIDATE:
            raise SignatureError(
                f"lot {lot_id} is {release.status}, not RELEASE_CANDIDATE: it can be reviewed or "
                "rejected, not approved."
            )
        changed = changed_inputs([*(i for u in release.units for i in u.inputs), *_unit_records(release)])
        if changed:
            raise SignatureError(f"lot {lot_id} cannot be approved: {changed[0]}")
    signature = Signature(
        lot_id=lot_id,
        reviewer=reviewer,
        role=" ".join((role or "").split()) or None,
        meaning=meaning,  # type: ignore[arg-type]
        comment=comment or None,
        signed_at=utc_timestamp(now or datetime.now(UTC)),
        account=_account(),
        host=socket.gethostname(),
        release_status=release.status,
        release=_signed_file(release_path),
        report=_signed_file(report_path),
    )
    path = lot_dir / SIGNATURES_FILE
    _append_line(path, json.dumps(record_json(signature), ensure_ascii=False, separators=(",", ":")))
    return signature, path


def _unit_records(release: Release) -> list[FileHash]:
    """The unit records (``metrics.json``) the decision was made from, as its audit lists them: the
    report shows no decision once one of them has changed, and nor may an approval rest on it."""
    files = release.audit.get("files")
    return [
        FileHash(f.get("path"), f.get("sha256"), f.get("size_bytes"))
        for f in (files if isinstance(files, list) else [])
        if isinstance(f, dict) and f.get("role") == "metrics"
    ]


def _append_line(path: Path, line: str) -> None:
    """Append ``line`` to ``path`` under an exclusive lock, on disk before returning.

    Appending, never rewriting, keeps every earlier signature's bytes as they were. A line left
    incomplete by a crash is ended first, so that it stays one void line and the new one is whole.
    """
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        prefix = b""
        if end:
            fh.seek(end - 1)
            prefix = b"" if fh.read(1) == b"\n" else b"\n"
        fh.write(prefix + line.encode("utf-8") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_signatures(path: Path, release_path: Path) -> list[SignatureStatus]:
    """Every line of the signature file ``path``, each VALID or VOID against ``release_path`` now.

    A line is VOID when it is not a sealed signature record (edited, truncated), is the signature
    of another lot, or signed a release.json whose SHA-256 is no longer the file's. A missing
    signature file has no signatures.
    """
    path, release_path = Path(path), Path(release_path)
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RecordError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    try:
        current = sha256_file(release_path)
    except FileNotFoundError:
        current = None
    lot_id = release_path.parent.name
    statuses = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = Path(f"{path} line {number}")
        try:
            signature, _ = parse_record_text(where, raw.decode("utf-8"), Signature)
        except UnicodeDecodeError:
            statuses.append(SignatureStatus(number, None, False, f"{where}: is not UTF-8 text."))
            continue
        except RapidReleaseError as exc:
            statuses.append(SignatureStatus(number, None, False, str(exc)))
            continue
        reason = None
        signed = signature.release.sha256 or ""
        if signature.lot_id != lot_id:
            reason = f"it is a signature of lot {signature.lot_id}, not of lot {lot_id}."
        elif current is None:
            reason = f"{release_path} it signed no longer exists."
        elif current != signed:
            reason = (
                f"release.json changed after it was signed (SHA-256 {signed[:12]}… signed, "
                f"{current[:12]}… now): the lot was evaluated again."
            )
        statuses.append(SignatureStatus(number, signature, reason is None, reason))
    return statuses


def signature_lines(statuses: list[SignatureStatus]) -> list[str]:
    """The signatures as ``rapidrelease signatures`` prints them: one line each, tab-separated."""
    lines = []
    for s in statuses:
        sig = s.signature
        if sig is None:
            lines.append(f"{s.line}\tVOID\t\t\t\t\t{s.reason}")
            continue
        lines.append(
            "\t".join(
                [
                    str(s.line),
                    s.status,
                    sig.signed_at,
                    sig.meaning,
                    f"{sig.reviewer}" + (f" ({sig.role})" if sig.role else ""),
                    f"{sig.account}@{sig.host}",
                    f"release.json {(sig.release.sha256 or '')[:12]}…",
                    s.reason or (sig.comment or ""),
                ]
            )
        )
    return lines

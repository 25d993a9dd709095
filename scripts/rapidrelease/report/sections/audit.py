"""The audit: who evaluated the lot with which software, when, and every file with its SHA-256.

release.json holds it in ``audit`` (:func:`rapidrelease.release.audit.audit_block`); the data
files are the units' inputs as the decision saw them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rapidrelease.records import FileRef, Release
from rapidrelease.report.sections.evidence import as_mapping, as_mappings, as_number, as_text

__all__ = ["AuditView", "FileRow", "audit_files", "audit_view"]


@dataclass(frozen=True)
class FileRow:
    """A file as a table lists it: ``label`` says whose or what it is; size and SHA-256 None when it
    could not be read."""

    label: str
    path: str | None
    size_bytes: int | None
    sha256: str | None


def audit_files(release: Release) -> list[FileRef]:
    """The configuration, panel and unit-record files the decision rests on, as the audit lists them."""
    files = []
    for entry in as_mappings(release.audit.get("files")):
        size = as_number(entry.get("size_bytes"))
        files.append(
            FileRef(
                as_text(entry.get("role")) or "",
                as_text(entry.get("path")) or "",
                as_text(entry.get("sha256")),
                None if size is None else int(size),
            )
        )
    return files


@dataclass(frozen=True)
class AuditView:
    """The audit as the report shows it: the software, the run, and the files in two tables."""

    rapidrelease_version: str | None
    python_version: str | None
    packages: tuple[tuple[str, str | None], ...]
    commit: str | None
    dirty: bool
    run_command: str | None
    command_line: str
    host: str | None
    user: str | None
    started_at: str | None
    finished_at: str | None
    data_files: tuple[FileRow, ...]
    files: tuple[FileRow, ...]


def audit_view(release: Release) -> AuditView | None:
    """The lot's audit, or None when release.json holds none."""
    audit = release.audit
    if not audit:
        return None
    workflow = as_mapping(audit.get("workflow"))
    command_line = audit.get("command_line")
    return AuditView(
        rapidrelease_version=as_text(audit.get("rapidrelease_version")),
        python_version=as_text(audit.get("python_version")),
        packages=tuple((name, as_text(v)) for name, v in as_mapping(audit.get("packages")).items()),
        commit=as_text(workflow.get("commit")),
        dirty=workflow.get("dirty") is True,
        run_command=as_text(audit.get("run_command")),
        command_line=" ".join(map(str, command_line)) if isinstance(command_line, list) else "",
        host=as_text(audit.get("host")),
        user=as_text(audit.get("user")),
        started_at=as_text(audit.get("started_at")),
        finished_at=as_text(audit.get("finished_at")),
        data_files=tuple(
            FileRow(unit.unit_id, f.path, f.size_bytes, f.sha256)
            for unit in release.units
            for f in unit.inputs
        ),
        files=tuple(FileRow(f.role, f.path, f.size_bytes, f.sha256) for f in audit_files(release)),
    )

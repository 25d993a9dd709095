"""Exceptions raised by rapidrelease.

Every error a user can meet is one of these classes, and its message is one sentence that names
the file (and, for sheets, the row and column) and the problem. The command line prints the message
alone, never a traceback, and a lot whose evidence raised one of them can only be INCONCLUSIVE.
"""

from __future__ import annotations

__all__ = [
    "RapidReleaseError",
    "ConfigError",
    "FCSReadError",
    "TemplateError",
    "GatingError",
    "MetricError",
    "SpecError",
    "ReadsError",
    "RecordError",
    "PrintError",
    "SignatureError",
    "ShareError",
    "IndexBuildError",
]


class RapidReleaseError(Exception):
    """Base class: an input or configuration problem described in one sentence."""


class ConfigError(RapidReleaseError):
    """config.yaml, a sample sheet, a panel or specs.yaml is missing or invalid."""


class FCSReadError(RapidReleaseError):
    """An FCS file cannot be read (truncated, corrupt, or not FCS at all)."""


class TemplateError(RapidReleaseError):
    """A gating template (GatingML 2.0 or FlowJo .wsp) cannot be loaded or used."""


class GatingError(RapidReleaseError):
    """A gate tree cannot be applied to a sample (e.g. a channel the template needs is absent)."""


class MetricError(RapidReleaseError):
    """A metric cannot be computed from the gated populations."""


class SpecError(RapidReleaseError):
    """A specification cannot be evaluated (e.g. it names an attribute nothing measures)."""


class ReadsError(RapidReleaseError):
    """Sequencing reads cannot be read (truncated, malformed, not the format claimed)."""


class RecordError(RapidReleaseError):
    """A record one stage wrote for another is missing, changed since it was sealed, or inconsistent."""


class PrintError(RapidReleaseError):
    """A report cannot be printed to PDF (no headless Chromium, or the browser failed)."""


class SignatureError(RapidReleaseError):
    """A signature cannot be recorded: no sealed decision to sign, no name, an unknown meaning, or an
    approval of a lot that is not a release candidate."""


class ShareError(RapidReleaseError):
    """A de-identified package cannot be exported or combined: nothing may be shared under the
    settings given, or a package is not complete, was changed after export or is of another version."""


class IndexBuildError(RapidReleaseError):
    """A reference index cannot be built within its limits: a memory budget too small for one chunk of
    the build, or a disk that filled while it was written (nothing is left in the index's place)."""

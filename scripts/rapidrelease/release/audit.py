"""The audit block of release.json: who evaluated what, with which software, from which files, when.

21 CFR Part 11 §11.10(e) asks for secure, computer-generated, time-stamped audit trails. The block
names the software (rapidrelease, Python and the key packages with their versions), every file
the decision rests on with its SHA-256 (config, sheets, specifications, the lot's panels and
metrics.json files), the command line, host and user, and the start and end of the evaluation in
UTC. It is the only part of release.json that may differ between reruns of the same inputs.
"""

from __future__ import annotations

import getpass
import platform
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rapidrelease import __version__
from rapidrelease.outputs import sha256_file
from rapidrelease.release.config import RunConfig

__all__ = ["KEY_PACKAGES", "audit_block", "package_versions", "utc_timestamp"]

KEY_PACKAGES = ("snakemake", "flowkit", "flowio", "flowutils", "numpy", "polars", "plotly", "pysam")


def package_versions(names: Sequence[str] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed), in the order given."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def utc_timestamp(moment: datetime) -> str:
    """``moment`` as an ISO 8601 UTC time with milliseconds and a ``Z``, e.g. 2026-11-24T10:02:11.123Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _file_entry(role: str, path: Path | str, sha256: str | None = None) -> dict[str, Any]:
    """A file of the audit trail; its hash is computed now unless the caller parsed the bytes itself."""
    if sha256 is None:
        try:
            sha256 = sha256_file(Path(path))
        except OSError:
            sha256 = None
    return {"role": role, "path": str(path), "sha256": sha256}


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        # No login name in a bare container or under some schedulers; the host still identifies the run.
        return "unknown"


def audit_block(
    run: RunConfig,
    lot_id: str,
    unit_result_paths: Sequence[Path],
    started_at: datetime,
    finished_at: datetime,
) -> dict[str, Any]:
    """The audit block for one lot's evaluation (see the module docstring for what it holds)."""
    roles = {str(run.config_path): "config"}
    roles.update({str(run.settings[key]): key for key in ("lots", "units", "specs")})
    files = [_file_entry(roles.get(path, "config"), path, sha) for path, sha in run.file_sha256.items()]
    templates = dict.fromkeys(str(u.template) for u in run.units_of(lot_id) if u.template is not None)
    files += [_file_entry("panel", path) for path in templates]
    files += [_file_entry("metrics", path) for path in unit_result_paths]
    return {
        "rapidrelease_version": __version__,
        "python_version": platform.python_version(),
        "packages": package_versions(),
        "files": files,
        "settings": dict(run.settings),
        "command_line": list(sys.argv),
        "host": socket.gethostname(),
        "user": _user(),
        "started_at": utc_timestamp(started_at),
        "finished_at": utc_timestamp(finished_at),
    }

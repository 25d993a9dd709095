"""The audit block of release.json: who evaluated what, with which software, from which files, when.

21 CFR Part 11 §11.10(e) asks for secure, computer-generated, time-stamped audit trails. The block
names the software (rapidrelease, Python and the key packages with their versions), every file
the decision rests on with its SHA-256 and size (config, sheets, specifications, the lot's panels
and metrics.json files), the git commit of the workflow checkout the run was started from, the
snakemake command of the run and the evaluating command line, host and user, the start and end of
the evaluation in UTC and the lot's timeline (release/timeline.py).
It is the only part of release.json that may differ between reruns of the same inputs.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rapidrelease import __version__
from rapidrelease.config.run import RunConfig
from rapidrelease.outputs import sha256_file

__all__ = ["KEY_PACKAGES", "audit_block", "package_versions", "utc_timestamp", "workflow_commit"]

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
    try:
        if sha256 is None:
            sha256 = sha256_file(Path(path))
        size: int | None = Path(path).stat().st_size
    except OSError:
        sha256, size = None, None
    return {"role": role, "path": str(path), "sha256": sha256, "size_bytes": size}


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def workflow_commit(directory: Path | None = None) -> dict[str, Any] | None:
    """The git commit of the workflow checkout at ``directory``: by default the workflow's folder the
    run names in ``RAPIDRELEASE_WORKFLOW_DIR`` (rules/common.smk), else the working directory.

    Returns ``{"commit": <40 hex digits>, "dirty": <tracked files changed since the commit>}``, or
    None when the directory is not in a git checkout (or git is not installed): a run from an
    unpacked release archive still has rapidrelease's version in the audit block.
    """
    if directory is None:
        directory = Path(os.environ.get("RAPIDRELEASE_WORKFLOW_DIR") or Path.cwd())
    commit = _git(directory, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


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
    timeline: dict[str, Any] | None = None,
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
        "workflow": workflow_commit(),
        "files": files,
        "settings": dict(run.settings),
        "command_line": list(sys.argv),
        # set by the workflow (rules/common.smk) for its jobs: the snakemake command of the run
        "run_command": os.environ.get("RAPIDRELEASE_RUN_COMMAND"),
        "host": socket.gethostname(),
        "user": _user(),
        "started_at": utc_timestamp(started_at),
        "finished_at": utc_timestamp(finished_at),
        "timeline": timeline,
    }

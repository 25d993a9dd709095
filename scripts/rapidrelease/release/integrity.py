"""Inputs that changed during the run: a decision must rest on the bytes that were measured.

A unit's record lists the SHA-256 of every file it was made from (the FCS file or read files,
control tubes, the panel and gating template, a compensation matrix, the records of earlier stages
and of the controls it was called against; :mod:`rapidrelease.records`). An instrument that is
still writing, a copy step that replaces a file, or a person who edits one while the pipeline runs
can leave a decision resting on bytes nobody measured. Every recorded input is therefore hashed
again just before release.json and again just before report.html are written; a file that is gone
or whose hash differs makes its unit an error — the lot's attributes that rest on it become
INCONCLUSIVE and the lot cannot be a release candidate until it is measured again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rapidrelease.outputs import sha256_file
from rapidrelease.records import FileHash, FileRef

__all__ = ["changed_inputs"]


def changed_inputs(inputs: Iterable[FileRef | FileHash]) -> list[str]:
    """One sentence per input whose file is gone or no longer has its recorded SHA-256.

    An input recorded without a hash (the file was missing when measured) is already its unit's
    error and is not checked again.
    """
    problems = []
    for entry in inputs:
        if entry.sha256 is None or entry.path is None:
            continue
        try:
            now = sha256_file(Path(entry.path))
        except FileNotFoundError:
            problems.append(f"{entry.path}: was removed after it was measured; measure the lot again.")
            continue
        except OSError as exc:
            problems.append(
                f"{entry.path}: can no longer be read ({exc.strerror or exc}); measure the lot again."
            )
            continue
        if now != entry.sha256:
            problems.append(
                f"{entry.path}: changed after it was measured (SHA-256 {entry.sha256[:12]}… then, "
                f"{now[:12]}… now); measure the lot again."
            )
    return problems

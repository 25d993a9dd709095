"""Earlier lots' decisions for the lots index: the archive a lab keeps of its sealed release.json files.

Phase I control limits need 20 baseline lots (:mod:`rapidrelease.report.trends`) and a site
comparison two lots per site, more than one run holds. A lab keeps its earlier decisions, so
config.yaml ``trends.archive`` names a folder of them, one ``<archive>/<lot>/release.json`` per
lot, and the index reads them beside the run's own ``results/<lot>/release.json``.

An archived file is trusted exactly as far as a current one: :func:`~rapidrelease.records.read_release`
checks its seal, the published schema and that its status follows from its own results. A file
that fails, or whose lot is not the folder it lies in (a copy into the wrong folder), is left out
with one sentence naming it, never shown. An archived lot never changes a current lot: a lot id in
both (letter case aside, as the lot sheet counts them) is shown from the results, and the index
says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rapidrelease.errors import RecordError
from rapidrelease.records import Release, read_release

__all__ = ["ARCHIVE_RECORD", "ArchivedLots", "read_archive"]

ARCHIVE_RECORD = "release.json"
"""The file of each lot folder in the archive: ``<archive>/<lot>/release.json``."""


@dataclass(frozen=True)
class ArchivedLots:
    """What the index takes from the archive.

    ``releases`` are the (path, record) pairs that passed every check and whose lot is not in the
    current results, in folder order; ``refused`` one sentence per file left out because it could not
    be trusted; ``superseded`` one sentence per archived lot that the current results replace.
    """

    releases: tuple[tuple[Path, Release], ...] = ()
    refused: tuple[str, ...] = ()
    superseded: tuple[str, ...] = ()


def read_archive(folder: Path, current: Iterable[tuple[Path, Release]]) -> ArchivedLots:
    """Read every ``<folder>/<lot>/release.json``; ``current`` are the run's own (path, record) pairs.

    Each file is read with :func:`~rapidrelease.records.read_release` (seal, schema, status consistent
    with its results); a file that fails it, or that holds another lot than its folder names, is
    refused with one sentence naming it. A folder that does not exist is one refusal too: an archive
    on a share that is not mounted must show, not silently shrink the baseline.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return ArchivedLots(
            refused=(f"{folder}: the archive of earlier lots (config.yaml trends.archive) is not a folder.",)
        )
    now = {release.lot.lot_id.casefold(): path for path, release in current}
    releases: list[tuple[Path, Release]] = []
    refused: list[str] = []
    superseded: list[str] = []
    archived: dict[str, Path] = {}
    for path in sorted(folder.glob(f"*/{ARCHIVE_RECORD}")):
        try:
            release = read_release(path)
        except RecordError as exc:
            refused.append(f"{exc} It is left out of the index.")
            continue
        lot_id = release.lot.lot_id
        if lot_id != path.parent.name:
            refused.append(
                f"{path}: is the decision of lot {lot_id}, not of {path.parent.name} (its folder); "
                "it is left out of the index."
            )
            continue
        twin = archived.get(lot_id.casefold())
        if twin is not None:
            refused.append(
                f"{path}: is a second archived decision of lot {lot_id} (beside {twin}); "
                "it is left out of the index."
            )
            continue
        shown = now.get(lot_id.casefold())
        if shown is not None:
            superseded.append(
                f"Lot {lot_id} is both in this run ({shown}) and in the archive ({path}): "
                "the index shows this run's decision."
            )
            continue
        archived[lot_id.casefold()] = path
        releases.append((path, release))
    return ArchivedLots(tuple(releases), tuple(refused), tuple(superseded))

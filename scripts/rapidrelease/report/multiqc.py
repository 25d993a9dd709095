"""MultiQC-ready files of a lot: a custom-content summary table and the units' Kraken-style reports.

A lab that collects its QC in MultiQC runs ``multiqc results/`` and finds rapidrelease in it:

- ``<lot>_mqc.tsv`` is MultiQC custom content (a commented YAML header, then a table): one row
  per lot with its status, attribute counts and every attribute's value and result, so that lots
  line up in one table across a MultiQC run (``config/multiqc_config.yaml`` colours the status and
  results: PASS and RELEASE_CANDIDATE green, FAIL and NOT_RELEASABLE red, INCONCLUSIVE amber);
- ``<lot>_<unit>.kreport`` is each sequencing unit's report in Kraken 2's format, which MultiQC's
  Kraken module reads. The unit folders all name theirs ``reads.kreport``, and MultiQC names a
  sample after its file, so each is copied under a name that says whose it is.

Both are written to a temporary folder that replaces the output folder in one rename, so a reader
never sees half of them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from rapidrelease.config.vocabulary import INCONCLUSIVE
from rapidrelease.errors import RapidReleaseError
from rapidrelease.records import Release, read_release

__all__ = ["multiqc_table", "write_multiqc_files"]

_HEADER = """# id: 'rapidrelease'
# section_name: 'rapidrelease release decision'
# description: 'Status of the lot and the value of every specification attribute (release.json).'
# plot_type: 'table'
# pconfig:
#     id: 'rapidrelease_release_table'
#     namespace: 'rapidrelease'
"""


def _cell(value: object) -> str:
    if value is None:
        return ""
    # a tab or line break would shift or end the row
    return " ".join(str(value).split())


def multiqc_table(release: Release) -> str:
    """The lot's MultiQC custom-content table: the header, the column names and one row."""
    counts = release.counts
    columns = ["Sample", "status", "pass", "fail", "inconclusive"]
    values: list[object] = [release.lot.lot_id, release.status, counts.PASS, counts.FAIL, counts.INCONCLUSIVE]
    for attribute in release.attributes:
        unit = attribute.unit
        columns.append(f"{attribute.name} ({unit})" if unit else attribute.name)
        values.append(INCONCLUSIVE if attribute.result == INCONCLUSIVE else attribute.value)
        # beside its value, so that config/multiqc_config.yaml colours it PASS, FAIL or INCONCLUSIVE
        columns.append(f"{attribute.name} result")
        values.append(attribute.result)
    return _HEADER + "\t".join(map(_cell, columns)) + "\n" + "\t".join(map(_cell, values)) + "\n"


def write_multiqc_files(
    release_path: Path, kreports: Sequence[Path] | Mapping[str, Path], out_dir: Path
) -> None:
    """Write ``<lot>_mqc.tsv`` and the copied kreports to ``out_dir``: ``kreports`` maps unit ids to
    their kreport (a run's controls are gathered once, in a folder named by key, not by unit), or
    lists ``<unit folder>/reads.kreport`` files named by their folder."""
    if not isinstance(kreports, Mapping):
        kreports = {Path(k).parent.name: Path(k) for k in kreports}
    release = read_release(Path(release_path))
    lot_id = release.lot.lot_id
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (staging / f"{lot_id}_mqc.tsv").write_text(multiqc_table(release), encoding="utf-8")
        for unit_id, kreport in kreports.items():
            shutil.copyfile(kreport, staging / f"{lot_id}_{unit_id}.kreport")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RapidReleaseError(f"{out_dir}: cannot write the MultiQC files ({exc}).") from exc

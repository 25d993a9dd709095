"""A sequencing unit's classification, gathered from its parts: kreport, per-taxon table, reads.json.

The workflow classifies a unit's reads in parallel parts (:func:`rapidrelease.reads.classify.classify_reads`
with ``part``); this module adds their totals up and writes the unit's outputs. As for flow units, a
part that could not read its input records the reason instead of failing the run, and the unit's
``reads.json`` then carries ``status: error`` with that sentence. ``reads.json`` is a unit record
(:mod:`rapidrelease.release.unit_record`) of the reads alone; the contaminant calls against the
lot's controls (:mod:`rapidrelease.sterility.calls`) build the unit's ``metrics.json`` from it, so
only this lot's attributes that need the unit become INCONCLUSIVE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rapidrelease.config.vocabulary import CATEGORIES, CONTAMINANT_CATEGORIES
from rapidrelease.errors import RapidReleaseError
from rapidrelease.outputs import input_record, write_json, write_text
from rapidrelease.release.unit_record import new_unit_record, record_failure

__all__ = ["gather_unit", "unit_metrics"]


def _percent(count: int, total: int) -> dict[str, Any]:
    return {"value": 100.0 * count / total, "unit": "%", "kind": "percent"}


def unit_metrics(index: Any, totals: Any) -> dict[str, dict[str, Any]]:
    """Fragment counts and shares (%) by category of the taxon each fragment was called to.

    A fragment is a single-end read or a read pair, classified as one (Kraken's "sequence"). One
    called to a taxon above every category (the root, or "cellular organisms") counts as ``other``;
    unclassified fragments are counted apart. ``contaminant_pct`` sums bacteria, fungi, mycoplasma
    and virus.
    """
    categories = np.array(index.taxonomy.category, dtype=object)
    fragments = totals.reads
    by_category: dict[str, int] = {}
    for category in np.unique(categories):
        by_category[str(category)] = int(totals.direct_reads[categories == category].sum())
    metrics: dict[str, dict[str, Any]] = {
        "fragments_total": {"value": fragments, "unit": "fragments", "kind": "count"},
        "fragments_shorter_than_k": {"value": totals.too_short, "unit": "fragments", "kind": "count"},
        "classified_pct": _percent(totals.classified, fragments),
        "unclassified_pct": _percent(fragments - totals.classified, fragments),
    }
    for category in CATEGORIES:
        metrics[f"{category}_pct"] = _percent(by_category.get(category, 0), fragments)
    contaminants = sum(by_category.get(c, 0) for c in CONTAMINANT_CATEGORIES)
    metrics["contaminant_pct"] = _percent(contaminants, fragments)
    for record in metrics.values():
        record.update({"status": "ok", "reason": None})
    return metrics


def gather_unit(
    db: Path,
    parts: list[Path],
    out_dir: Path,
    lot_id: str,
    unit_id: str,
    assay: str,
    role: str,
    reads: list[Path],
) -> dict[str, Any]:
    """Merge a unit's parts; write ``reads.kreport``, ``taxa.tsv`` (+ Parquet) and ``reads.json``.

    Returns the reads.json record. Never raises for a bad input: the record's status is ``error``.
    """
    from rapidrelease.reads.index import load_index
    from rapidrelease.reads.kraken_outputs import TAXA_COLUMNS, kraken_report_lines, taxon_table, write_taxa
    from rapidrelease.reads.parts import load_parts, part_error

    out_dir = Path(out_dir)
    # the manifest holds the SHA-256 of every FASTA and taxonomy file the index was built from
    index_record = input_record(Path(db) / "manifest.json", "index")
    record = new_unit_record(lot_id, unit_id, assay, role, index=index_record)
    record["inputs"] = [input_record(p, "reads") for p in reads]
    # an unusable unit still gets every output, empty: the workflow declares them all
    report, reads_total = "", 0
    taxa = {name: np.empty(0, dtype=dtype) for name, dtype in TAXA_COLUMNS.items()}
    try:
        index = load_index(Path(db))
        record["index"]["minimizers"] = index.manifest["counts"]["minimizers"]
        error = part_error(parts)
        if error is not None:
            raise RapidReleaseError(error)
        totals = load_parts(parts, index)
        if totals.reads == 0:
            # an empty read file is valid FASTQ, but as a unit's evidence it is a failed transfer or run
            files = ", ".join(str(p) for p in reads) or "the unit's read files"
            raise RapidReleaseError(f"{files}: no reads to classify (empty read file).")
        report = "".join(kraken_report_lines(index, totals))
        taxa, reads_total = taxon_table(index, totals), totals.reads
        record["metrics"] = unit_metrics(index, totals)
    except Exception as exc:  # a bad input, or a bug: either makes only this lot INCONCLUSIVE
        record_failure(record, exc, "gathering")
    write_text(out_dir / "reads.kreport", report)
    write_taxa(out_dir / "taxa.tsv", taxa, reads_total)
    write_json(out_dir / "reads.json", record)
    return record

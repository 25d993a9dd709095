"""A sequencing unit's classification, gathered from its parts: kreport, per-taxon table, reads.json.

The workflow classifies a unit's reads in parallel parts (:func:`rapidrelease.reads.classify.classify_reads`
with ``part``); this module adds their totals up and writes the unit's outputs. As for flow units, a
part that could not read its input records the reason instead of failing the run, and the unit's
``reads.json`` then carries ``status: error`` with that sentence. ``reads.json`` is a unit record
(:mod:`rapidrelease.records`, stage ``gather``) of the reads alone; the contaminant calls against the
lot's controls (:mod:`rapidrelease.sterility.calls`) build the unit's ``metrics.json`` from it, so
only this lot's attributes that need the unit become INCONCLUSIVE.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from rapidrelease.config.run import RunConfig, Unit
from rapidrelease.config.vocabulary import CATEGORIES, CONTAMINANT_CATEGORIES
from rapidrelease.errors import RapidReleaseError
from rapidrelease.outputs import write_text
from rapidrelease.reads.classify import ClassificationTotals
from rapidrelease.reads.index import KmerIndex, load_index
from rapidrelease.reads.kraken2_db import index_file_refs
from rapidrelease.reads.kraken_outputs import TAXA_COLUMNS, kraken_report_lines, taxon_table, write_taxa
from rapidrelease.reads.parts import load_parts, part_error
from rapidrelease.records import Json, Metric, Population, UnitRecord, file_ref, write_record

__all__ = ["gather_unit", "gather_reads", "unit_metrics"]


def _share(category: str, count: int, total: int) -> Metric:
    return Metric(
        100.0 * count / total,
        "%",
        "percent",
        numerator=Population(f"{category} fragments", count),
        denominator=Population("fragments", total),
    )


def unit_metrics(index: KmerIndex, totals: ClassificationTotals) -> dict[str, Metric]:
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
    metrics: dict[str, Metric] = {
        "fragments_total": Metric(fragments, "fragments", "count"),
        "fragments_shorter_than_k": Metric(totals.too_short, "fragments", "count"),
        "classified_pct": _share("classified", totals.classified, fragments),
        "unclassified_pct": _share("unclassified", fragments - totals.classified, fragments),
    }
    for category in CATEGORIES:
        metrics[f"{category}_pct"] = _share(category, by_category.get(category, 0), fragments)
    contaminants = sum(by_category.get(c, 0) for c in CONTAMINANT_CATEGORIES)
    metrics["contaminant_pct"] = _share("contaminant", contaminants, fragments)
    return metrics


def gather_unit(run: RunConfig, unit: Unit, db: Path, parts: list[Path]) -> UnitRecord:
    """Gather a sequencing unit of the configured run into the folder its reads are measured in once
    for every lot listing them (:meth:`RunConfig.measured_dir`; see :func:`gather_reads`). The record
    names ``unit``, the first unit listing the files; other lots' calls accept it by its read files."""
    return gather_reads(
        db,
        parts,
        run.measured_dir(unit),
        lot_id=unit.lot_id,
        unit_id=unit.unit_id,
        assay=unit.assay,
        role=unit.role,
        reads=[p for p in (unit.path, unit.path2) if p is not None],
    )


def gather_reads(
    db: Path,
    parts: list[Path],
    out_dir: Path,
    lot_id: str,
    unit_id: str,
    assay: str,
    role: str,
    reads: list[Path],
) -> UnitRecord:
    """Merge a unit's parts; write ``reads.kreport``, ``taxa.tsv`` (+ Parquet) and ``reads.json``.

    Returns the record written to ``reads.json``. Never raises for a bad input: the record's status
    is ``error`` with the sentence saying why.
    """
    out_dir = Path(out_dir)
    # the manifest holds the SHA-256 of every FASTA and taxonomy file the index was built from; a
    # Kraken 2 database is named by its options and taxonomy files and its table's size
    inputs = [file_ref(p, "reads") for p in reads] + index_file_refs(Path(db))
    record = UnitRecord("gather", lot_id, unit_id, assay, role, inputs=tuple(inputs))
    # an unusable unit still gets every output, empty: the workflow declares them all
    report, reads_total = "", 0
    taxa = {name: np.empty(0, dtype=dtype) for name, dtype in TAXA_COLUMNS.items()}
    evidence: dict[str, Json] = {}
    try:
        index = load_index(Path(db))
        evidence["index_minimizers"] = index.manifest["counts"]["minimizers"]
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
        record = dataclasses.replace(record, metrics=unit_metrics(index, totals))
    except Exception as exc:  # a bad input, or a bug: either makes only this lot INCONCLUSIVE
        record = record.failed(exc, "gathering")
    write_text(out_dir / "reads.kreport", report)
    write_taxa(out_dir / "taxa.tsv", taxa, reads_total)
    outputs = tuple(
        file_ref(out_dir / name, role)
        for name, role in (("reads.kreport", "kreport"), ("taxa.tsv", "taxa"), ("taxa.parquet", "taxa"))
    )
    record = dataclasses.replace(record, evidence=evidence, outputs=outputs)
    write_record(out_dir / "reads.json", record)
    return record

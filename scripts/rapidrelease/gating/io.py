"""Gating I/O: FCS files gated with a template, written as ``populations.tsv`` and per-event Parquet.

What ``rapidrelease gate`` does around the engine (:mod:`rapidrelease.gating.engine`, which works on
arrays only): read each file, pick the template's gates for it, stream its events through the
engine, and write the population counts as a table and, when asked, every event's membership.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from rapidrelease.config.specs import round_half_up
from rapidrelease.errors import GatingError, RapidReleaseError
from rapidrelease.fcs.compensation import read_spillover_file
from rapidrelease.fcs.reader import FCSFile, read_fcs
from rapidrelease.gating.engine import (
    DEFAULT_CHUNK_SIZE,
    CompiledTree,
    GatingResult,
    PopulationCount,
    SampleLayout,
    compile_tree,
    gate_chunks,
    gate_events,
)
from rapidrelease.gating.template import load_template, population_path
from rapidrelease.outputs import atomic_path, write_table

__all__ = ["PERCENT_DECIMALS", "gate_files", "populations_table"]


PERCENT_DECIMALS = 2
"""Decimals of the table's percentages, all alike (the counts beside them are exact)."""


def _percent(count: int, total: int) -> float | None:
    return float(round_half_up(100.0 * count / total, PERCENT_DECIMALS)) if total else None


def populations_table(results: Sequence[GatingResult]) -> pl.DataFrame:
    """One row per sample and population: the ``populations.tsv`` of ``rapidrelease gate``.

    Columns: sample (FCS file name), population (path from the root), gate (gate or quadrant id),
    parent (parent path, empty at the root), count, parent_count, percent_parent (100·count/parent_count),
    percent_total (100·count/events of the sample), both rounded half-up to
    :data:`PERCENT_DECIMALS`; a percentage of an empty parent is null.
    """
    rows = []
    for result in results:
        for pop in result.populations:
            rows.append(
                {
                    "sample": result.sample_id,
                    "population": population_path(pop.path),
                    "gate": pop.path[-1],
                    "parent": population_path(pop.parent),
                    "count": pop.count,
                    "parent_count": pop.parent_count,
                    "percent_parent": _percent(pop.count, pop.parent_count),
                    "percent_total": _percent(pop.count, result.n_events),
                }
            )
    schema = {
        "sample": pl.String,
        "population": pl.String,
        "gate": pl.String,
        "parent": pl.String,
        "count": pl.Int64,
        "parent_count": pl.Int64,
        "percent_parent": pl.Float64,
        "percent_total": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def gate_files(
    template_path: Path,
    fcs_paths: Sequence[Path],
    out_dir: Path,
    events_out: Path | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compensation: Path | None = None,
) -> list[str]:
    """``rapidrelease gate``: gate FCS files, write ``out_dir/populations.tsv`` (and per-event Parquet).

    Each file is gated with the template's gates for that file (its own sample's gates in a FlowJo
    workspace, matched by file name). A file that cannot be read or gated is reported on stderr and
    left out of the table; returns those one-line messages (empty when every file was gated).
    ``compensation`` names a spillover matrix file used instead of each file's own $SPILLOVER.
    """
    if chunk_size < 1:
        raise GatingError(f"--chunk-size must be a positive number of events, not {chunk_size}.")
    template = load_template(template_path)
    spillover = None if compensation is None else read_spillover_file(compensation)
    results, failures = [], []
    for path in fcs_paths:
        try:
            fcs = read_fcs(path)
            tree = template.tree_for(fcs.sample_id)
            layout = SampleLayout.of(fcs)
            compiled = compile_tree(tree, layout if spillover is None else layout.with_spillover(spillover))
            if events_out is None:
                result = gate_chunks(fcs.sample_id, fcs.iter_event_chunks(chunk_size), compiled)
            else:
                with atomic_path(Path(events_out) / f"{fcs.sample_id}.parquet") as tmp:
                    result = _gate_writing_events(fcs, compiled, chunk_size, tmp)
        except RapidReleaseError as exc:
            failures.append(str(exc))
            print(f"rapidrelease: {exc}", file=sys.stderr)
            continue
        results.append(result)
    write_table(populations_table(results), Path(out_dir) / "populations.tsv")
    return failures


def _gate_writing_events(fcs: FCSFile, compiled: CompiledTree, chunk_size: int, out: Path) -> GatingResult:
    # Stream per-event membership to Parquet chunk by chunk, so memory stays bounded by the chunk.
    import pyarrow as pa
    import pyarrow.parquet as pq

    pops = compiled.populations
    schema = pa.schema([(population_path(p), pa.bool_()) for p, _ in pops])
    counts = dict.fromkeys((p for p, _ in pops), 0)
    n_events = 0
    with pq.ParquetWriter(out, schema) as writer:
        for chunk in fcs.iter_event_chunks(chunk_size):
            masks = gate_events(chunk, compiled)
            n_events += len(chunk)
            for path, mask in masks.items():
                counts[path] += int(np.count_nonzero(mask))
            writer.write_table(pa.table([masks[p] for p, _ in pops], schema=schema))
        if n_events == 0:
            writer.write_table(schema.empty_table())
    populations = [
        PopulationCount(p, parent, counts[p], counts[parent] if parent else n_events) for p, parent in pops
    ]
    return GatingResult(fcs.sample_id, n_events, populations)

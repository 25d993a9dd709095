"""Classifying reads against a k-mer index: Kraken 2's scoring, vectorised over batches of reads.

Per read (Kraken 2, ``src/classify.cc``): every k-mer's minimizer is looked up (only when it differs
from the previous k-mer's, within a mate); each k-mer counts one hit for the taxon its minimizer is
labelled with. The call is the hit taxon with the largest root-to-leaf score (the sum of the hits on
its path from the root), ties resolved by their lowest common ancestor; with a confidence threshold
``c`` the call climbs towards the root until its clade holds at least ⌈c × k-mers⌉ hits (unclassified
if none does), and a call resting on fewer than ``min_hit_groups`` distinct minimizer hits is voided.
Ambiguous k-mers (holding a non-ACGT base) count in the read's k-mers but hit nothing.

Here those steps run on a whole batch at once: hits are grouped per lookup, counted into a reads ×
taxa matrix (the taxa hit in the batch, usually a few dozen), root-to-leaf scores are that matrix
times an ancestor matrix, and the climb is a loop over taxonomy depth, not over reads.

Beyond Kraken 2, every distinct minimizer hit is remembered (by its cell in the index), so each
taxon's distinct k-mers and the share of its index minimizers seen (breadth) are reported:
KrakenUniq's lesson that a real organism spreads over its genome while a false positive hits a few
k-mers many times.

The outputs are written by :mod:`rapidrelease.reads.kraken_outputs`; the totals of a part of a
unit's reads are saved and merged by :mod:`rapidrelease.reads.parts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from rapidrelease.errors import ConfigError
from rapidrelease.reads.index import KmerIndex
from rapidrelease.reads.kmers import kmer_minimizers
from rapidrelease.reads.kraken_outputs import (
    AMBIGUOUS,
    MATE_BORDER,
    MISS,
    KrakenText,
    kraken_read_lines,
    kraken_report_lines,
    read_output,
    taxon_table,
    write_taxa,
)

if TYPE_CHECKING:
    from rapidrelease.reads.input import ReadBatch
    from rapidrelease.reads.taxonomy import Taxonomy

__all__ = [
    "BatchResult",
    "ClassificationTotals",
    "ClassifyOptions",
    "classify_batch",
    "classify_reads",
]

_DENSE_LIMIT = 16_000_000  # reads × hit taxa above which a batch is scored in slices


@dataclass(frozen=True)
class ClassifyOptions:
    """Kraken 2's defaults: confidence 0 (any hit decides), minimum hit groups 2."""

    confidence: float = 0.0
    min_hit_groups: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ConfigError(f"confidence must be within 0–1, not {self.confidence}.")
        if self.min_hit_groups < 0:
            raise ConfigError(f"minimum hit groups must be 0 or more, not {self.min_hit_groups}.")


@dataclass
class BatchResult:
    """Calls for one batch of reads (or pairs).

    ``calls`` int32 (n,): internal taxon index, or -1 for unclassified. ``kmers`` int32 (n,): k-mers
    of the read (both mates). ``hit_taxa``/``hit_kmers``: per lookup that hit, its taxon and the number
    of k-mers it covers; ``hit_slots``: the index cells hit (distinct minimizers). ``bases``: bases
    of the batch's reads, both mates. ``runs``: for Kraken's per-read output, (read, code, length) of
    each run of equal per-k-mer codes — codes are taxon indices, -1 miss, -2 ambiguous, -3 the mate
    border — in read order.
    """

    calls: np.ndarray
    kmers: np.ndarray
    hit_groups: np.ndarray
    hit_taxa: np.ndarray
    hit_kmers: np.ndarray
    hit_slots: np.ndarray
    bases: int
    runs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _layout(batch: ReadBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One buffer of every mate, each followed by an 'N' separator; segment starts, lengths and reads."""
    seqs = [(batch.seq, batch.offsets)]
    if batch.seq2 is not None:
        seqs.append((batch.seq2, batch.offsets2))
    lengths = np.concatenate([np.diff(offsets) for _, offsets in seqs]).astype(np.int64)
    n_segments = len(lengths)
    starts = np.zeros(n_segments, dtype=np.int64)
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    buffer = np.full(int(lengths.sum()) + n_segments, ord("N"), dtype=np.uint8)
    bases = np.concatenate([seq for seq, _ in seqs])
    destination = np.arange(len(bases), dtype=np.int64) + np.repeat(
        np.arange(n_segments, dtype=np.int64), lengths
    )
    buffer[destination] = bases
    read_of_segment = np.tile(np.arange(batch.n_reads, dtype=np.int64), len(seqs))
    return buffer, starts, lengths, read_of_segment


def classify_batch(
    batch: ReadBatch, index: KmerIndex, options: ClassifyOptions, want_runs: bool = False
) -> BatchResult:
    """Classify one :class:`~rapidrelease.reads.input.ReadBatch` (paired when it has mate 2)."""
    n_reads = batch.n_reads
    k = index.spec.k
    buffer, starts, lengths, read_of_segment = _layout(batch)
    minimizers, ambiguous = kmer_minimizers(buffer, index.spec)
    del buffer
    kmers_per_segment = np.maximum(lengths - k + 1, 0)
    # the k-mers of each mate, in buffer order (those spanning a separator belong to no read)
    segment_of_kmer = np.repeat(np.arange(len(lengths), dtype=np.int32), kmers_per_segment)
    first_kmer = np.cumsum(kmers_per_segment) - kmers_per_segment
    kmer_positions = np.arange(len(segment_of_kmer), dtype=np.int64) + np.repeat(
        starts - first_kmer, kmers_per_segment
    )
    kmer_ambiguous = ambiguous[kmer_positions]
    valid = ~kmer_ambiguous
    valid_positions = kmer_positions[valid]
    valid_minimizers = minimizers[valid_positions]
    valid_segments = segment_of_kmer[valid]
    # a lookup where the minimizer changes, or a mate starts (Kraken 2 resets it per mate)
    change = np.ones(len(valid_minimizers), dtype=bool)
    if len(change) > 1:
        change[1:] = (valid_minimizers[1:] != valid_minimizers[:-1]) | (
            valid_segments[1:] != valid_segments[:-1]
        )
    group_first = np.flatnonzero(change)
    group_taxa, group_slots = index.lookup(valid_minimizers[group_first])
    group_kmers = np.diff(np.append(group_first, len(valid_minimizers)))
    group_reads = read_of_segment[valid_segments[group_first]]

    kmers_per_read = np.bincount(read_of_segment, weights=kmers_per_segment, minlength=n_reads).astype(
        np.int64
    )
    hit = group_taxa >= 0
    hit_groups = np.bincount(group_reads[hit], minlength=n_reads)
    calls = _resolve(
        index,
        group_reads[hit],
        group_taxa[hit],
        group_kmers[hit],
        kmers_per_read,
        hit_groups,
        n_reads,
        options,
    )
    runs = None
    if want_runs:
        codes = np.full(len(kmer_positions), AMBIGUOUS, dtype=np.int32)
        codes[valid] = np.repeat(np.where(hit, group_taxa, MISS), group_kmers)
        runs = _runs(codes, segment_of_kmer, read_of_segment, batch.seq2 is not None, n_reads)
    return BatchResult(
        calls=calls,
        kmers=kmers_per_read.astype(np.int32),
        hit_groups=hit_groups.astype(np.int32),
        hit_taxa=group_taxa[hit],
        hit_kmers=group_kmers[hit],
        hit_slots=group_slots[hit],
        bases=int(lengths.sum()),
        runs=runs,
    )


def _resolve(
    index: KmerIndex,
    reads: np.ndarray,
    taxa: np.ndarray,
    kmers: np.ndarray,
    kmers_per_read: np.ndarray,
    hit_groups: np.ndarray,
    n_reads: int,
    options: ClassifyOptions,
) -> np.ndarray:
    """Kraken 2's ``ResolveTree`` for every read of a batch; -1 for unclassified."""
    calls = np.full(n_reads, -1, dtype=np.int32)
    if len(taxa) == 0:
        return calls
    taxonomy = index.taxonomy
    present = np.zeros(len(taxonomy), dtype=bool)
    present[taxa] = True
    hit_taxa = np.flatnonzero(present).astype(np.int32)  # the taxa hit in this batch, sorted
    compact = np.full(len(taxonomy), -1, dtype=np.int64)
    compact[hit_taxa] = np.arange(len(hit_taxa))
    # ancestor[a, b]: hit taxon a is b or an ancestor of b (Kraken 2's IsAAncestorOfB)
    ancestor = taxonomy.is_ancestor(hit_taxa[:, None], hit_taxa[None, :]).astype(np.float64)
    width = len(hit_taxa)
    step = max(1, _DENSE_LIMIT // max(width, 1))
    for first in range(0, n_reads, step):  # one slice unless the batch hits thousands of taxa
        last = min(n_reads, first + step)
        rows = last - first
        mine = slice(None) if step >= n_reads else (reads >= first) & (reads < last)
        counts = np.bincount(
            (reads[mine] - first) * width + compact[taxa[mine]], weights=kmers[mine], minlength=rows * width
        ).reshape(rows, width)
        calls[first:last] = _resolve_dense(
            taxonomy, hit_taxa, ancestor, counts, kmers_per_read[first:last], options.confidence
        )
    calls[hit_groups < options.min_hit_groups] = -1
    return calls


def _resolve_dense(
    taxonomy: Taxonomy,
    hit_taxa: np.ndarray,
    ancestor: np.ndarray,
    counts: np.ndarray,
    kmers_per_read: np.ndarray,
    confidence: float,
) -> np.ndarray:
    rows = len(counts)
    calls = np.full(rows, -1, dtype=np.int32)
    has_hits = counts.any(axis=1)
    scores = counts @ ancestor  # root-to-leaf score of every hit taxon
    scores[counts == 0] = -1.0  # only taxa that were hit are candidates
    best = scores.max(axis=1)
    tied = (scores == best[:, None]) & has_hits[:, None]
    first_best = np.argmax(tied, axis=1)
    calls[has_hits] = hit_taxa[first_best[has_hits]]
    several = np.flatnonzero(tied.sum(axis=1) > 1)
    for row in several:  # ties are rare: resolve each by the LCA of the tied taxa
        lca = hit_taxa[np.flatnonzero(tied[row])]
        call = lca[0]
        for other in lca[1:]:
            call = int(taxonomy.lca(np.array([call]), np.array([other]))[0])
        calls[row] = call
    if confidence <= 0.0:
        return calls
    required = np.ceil(confidence * kmers_per_read)  # Kraken 2: ceil(confidence * total k-mers)
    pending = np.flatnonzero(calls >= 0)
    while pending.size:
        candidate = calls[pending]
        inside = taxonomy.is_ancestor(candidate[:, None], hit_taxa[None, :])
        clade = (counts[pending] * inside).sum(axis=1)
        done = clade >= required[pending]
        climbing = pending[~done]
        at_root = calls[climbing] == 0
        calls[climbing[at_root]] = -1
        climbing = climbing[~at_root]
        calls[climbing] = taxonomy.parent[calls[climbing]]
        pending = climbing
    return calls


def _runs(
    codes: np.ndarray, segment_of_kmer: np.ndarray, read_of_segment: np.ndarray, paired: bool, n_reads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(read, code, length) runs of equal per-k-mer codes in read order; mates split by a border run."""
    change = np.ones(len(codes), dtype=bool)
    if len(codes) > 1:
        change[1:] = (codes[1:] != codes[:-1]) | (segment_of_kmer[1:] != segment_of_kmer[:-1])
    first = np.flatnonzero(change)
    run_code = codes[first].astype(np.int64)
    run_length = np.diff(np.append(first, len(codes)))
    run_segment = segment_of_kmer[first]
    run_read = read_of_segment[run_segment]
    if not paired:
        return run_read, run_code, run_length
    # mate 1's runs (rank 0), the border (1), mate 2's runs (2); lexsort is stable within a rank
    rank = np.concatenate([np.where(run_segment < n_reads, 0, 2), np.ones(n_reads, dtype=np.int64)])
    run_read = np.concatenate([run_read, np.arange(n_reads)])
    run_code = np.concatenate([run_code, np.full(n_reads, MATE_BORDER)])
    run_length = np.concatenate([run_length, np.zeros(n_reads, dtype=np.int64)])
    order = np.lexsort((rank, run_read))
    return run_read[order], run_code[order], run_length[order]


@dataclass
class ClassificationTotals:
    """What a whole run accumulates in memory: per-taxon reads and hits, distinct minimizers, read counts.

    Written out by :mod:`rapidrelease.reads.kraken_outputs` (kreport, per-taxon table), or saved as one
    part of a unit's reads and summed with the others by :mod:`rapidrelease.reads.parts`.
    """

    reads: int = 0
    classified: int = 0
    too_short: int = 0
    direct_reads: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    kmer_hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    seen_cells: np.ndarray | None = None  # bool per index cell, when distinct minimizers are counted

    @classmethod
    def empty(cls, index: KmerIndex, count_distinct: bool = True) -> ClassificationTotals:
        n = len(index.taxonomy)
        return cls(
            direct_reads=np.zeros(n, dtype=np.int64),
            kmer_hits=np.zeros(n, dtype=np.int64),
            seen_cells=np.zeros(index.size, dtype=bool) if count_distinct else None,
        )

    def add(self, result: BatchResult) -> None:
        self.reads += len(result.calls)
        classified = result.calls >= 0
        self.classified += int(classified.sum())
        self.too_short += int(np.count_nonzero(result.kmers == 0))
        self.direct_reads += np.bincount(result.calls[classified], minlength=len(self.direct_reads))
        self.kmer_hits += np.bincount(
            result.hit_taxa, weights=result.hit_kmers, minlength=len(self.kmer_hits)
        ).astype(np.int64)
        if self.seen_cells is not None:
            self.seen_cells[result.hit_slots] = True


def classify_reads(
    index: KmerIndex,
    reads1: Path,
    reads2: Path | None = None,
    options: ClassifyOptions = ClassifyOptions(),
    report_path: Path | None = None,
    reads_path: Path | None = None,
    taxa_path: Path | None = None,
    batch_reads: int = 1_500,
    threads: int = 1,
    interleaved: bool = False,
    batches: Iterable[ReadBatch] | None = None,
    part: tuple[int, int] = (0, 1),
    count_distinct: bool | None = None,
    cram_reference: Path | None = None,
    progress: TextIO | None = None,
) -> ClassificationTotals:
    """Classify a read file (or pair of files) in batches; write the kreport, per-read and per-taxon tables.

    Memory is bounded by the batch (plus the index and one byte per index cell for distinct counts).
    With ``threads`` > 1, batches are classified by that many worker processes sharing the
    memory-mapped index, results taken in read order. ``part = (i, n)`` classifies only every n-th
    batch starting at the i-th, so n jobs can share one file's reads without splitting it; their saved
    totals are then merged (:func:`rapidrelease.reads.parts.load_parts`). ``cram_reference`` is the FASTA
    a CRAM input was compressed against, when the file does not embed it. Every output is written
    under a temporary name and renamed when complete.

    ``progress`` is where to show the running count when it is a terminal (the command passes
    stderr): as Kraken 2 does, ``Processed N sequences (M bp) ...`` rewritten in place after every
    batch, then a line break. A stream that is not a terminal, such as a workflow's log, gets nothing.
    """
    from rapidrelease.outputs import write_text

    if threads < 1:
        raise ConfigError(f"threads must be 1 or more, not {threads}.")
    if batches is None:
        from rapidrelease.reads.input import iter_read_batches

        batches = iter_read_batches(
            Path(reads1),
            Path(reads2) if reads2 else None,
            batch_reads=batch_reads,
            interleaved=interleaved,
            reference=Path(cram_reference) if cram_reference else None,
        )
    which, parts = part
    if not 0 <= which < parts:
        raise ConfigError(f"part {which + 1} of {parts} does not exist.")
    if parts > 1:
        batches = (batch for number, batch in enumerate(batches) if number % parts == which)
    if count_distinct is None:
        count_distinct = taxa_path is not None
    totals = ClassificationTotals.empty(index, count_distinct=count_distinct)
    with ExitStack() as stack:
        shown = _Progress(progress)
        stack.callback(shown.end)  # registered first, so it runs last, after the outputs are closed
        writer = None
        if reads_path is not None:
            writer = stack.enter_context(read_output(Path(reads_path)))
        for result, lines in _classified(batches, index, options, writer is not None, threads, stack):
            totals.add(result)
            shown.add(result)
            if writer is not None:
                writer.write(lines)
    if report_path is not None:
        write_text(Path(report_path), "".join(kraken_report_lines(index, totals)))
    if taxa_path is not None:
        write_taxa(Path(taxa_path), taxon_table(index, totals), totals.reads)
    return totals


class _Progress:
    """Kraken 2's progress line (``classify.cc``: ``\\rProcessed N sequences (M bp) ...`` on stderr,
    only when stderr is a terminal), rewritten after every batch and ended with a line break."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None
        self.sequences = 0  # reads (pairs) classified so far
        self.bases = 0  # their bases, both mates

    def add(self, result: BatchResult) -> None:
        if self.stream is None:
            return
        self.sequences += len(result.calls)
        self.bases += result.bases
        self.stream.write(f"\rProcessed {self.sequences} sequences ({self.bases} bp) ...")
        self.stream.flush()

    def end(self) -> None:
        # also when classifying fails, so an error message starts on a line of its own
        if self.stream is not None and self.sequences:
            self.stream.write("\n")
            self.stream.flush()


def _classify_one(
    batch: ReadBatch, index: KmerIndex, options: ClassifyOptions, text: KrakenText | None
) -> tuple[BatchResult, bytes]:
    result = classify_batch(batch, index, options, want_runs=text is not None)
    lines = b""
    if text is not None:
        assert result.runs is not None
        lines = kraken_read_lines(batch, result.calls, result.runs, text)
    result.runs = None  # not needed past here, and not worth sending between processes
    return result, lines


_WORKER: tuple[KmerIndex, KrakenText | None] | None = None


def _start_worker(folder: Path, want_lines: bool) -> None:
    global _WORKER
    from rapidrelease.reads.index import load_index

    index = load_index(folder)
    _WORKER = (index, KrakenText(index.taxonomy.taxid) if want_lines else None)


def _work(job: tuple[ReadBatch, ClassifyOptions]) -> tuple[BatchResult, bytes]:
    batch, options = job
    assert _WORKER is not None
    index, text = _WORKER
    return _classify_one(batch, index, options, text)


def _classified(
    batches: Iterable[ReadBatch],
    index: KmerIndex,
    options: ClassifyOptions,
    want_lines: bool,
    threads: int,
    stack: ExitStack,
) -> Iterator[tuple[BatchResult, bytes]]:
    if threads == 1:
        text = KrakenText(index.taxonomy.taxid) if want_lines else None
        for batch in batches:
            yield _classify_one(batch, index, options, text)
        return
    import multiprocessing

    pool = stack.enter_context(
        multiprocessing.get_context("fork").Pool(
            threads, initializer=_start_worker, initargs=(index.folder, want_lines)
        )
    )
    yield from pool.imap(_work, ((batch, options) for batch in batches), chunksize=1)

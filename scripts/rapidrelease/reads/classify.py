"""Classifying reads against a k-mer index: Kraken 2's scoring, vectorised over batches of reads.

Per read (Kraken 2, ``src/classify.cc``): every k-mer's minimizer is looked up (only when it differs
from the previous k-mer's, within a mate); each k-mer counts one hit for the taxon its minimizer is
labelled with. The call is the hit taxon with the largest root-to-leaf score (the sum of the hits on
its path from the root), ties resolved by their lowest common ancestor; with a confidence threshold
``c`` the call climbs towards the root until its clade holds at least ⌈c × k-mers⌉ hits (unclassified
if none does), and a call resting on fewer than ``min_hit_groups`` distinct minimizer hits is voided.
Ambiguous k-mers (holding a non-ACGT base) count in the read's k-mers but hit nothing.

Here those steps run on a whole batch at once: hits are grouped per lookup and summed per (read,
taxon) pair; a pair's root-to-leaf score gathers the pairs of its read found by climbing the
taxonomy one level a pass, and the confidence climb is a loop over taxonomy depth, not over reads.

Memory does not grow with a read's length: k-mers are scanned in slices of at most
:data:`SLICE_BASES` bases, and a read longer than a slice in windows overlapping by k - 1 bases, so
that each k-mer is scanned once. Since Kraken 2 calls a read (both mates) from the counts of all its
hits, the windows' hits are added up per read and taxon before the call, and a lookup that a window
border cuts in two is counted once; the call, hit list and totals are those of the unsplit read.

Beyond Kraken 2, every distinct minimizer hit is remembered (by its cell in the index), so each
taxon's distinct k-mers and the share of its index minimizers seen (breadth) are reported:
KrakenUniq's lesson that a real organism spreads over its genome while a false positive hits a few
k-mers many times.

The outputs are written by :mod:`rapidrelease.reads.kraken_outputs`; the totals of a part of a
unit's reads are saved and merged by :mod:`rapidrelease.reads.parts`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from rapidrelease.errors import ConfigError
from rapidrelease.reads.hit_cells import HitCells
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
from rapidrelease.reads.malloc import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, set_malloc_thresholds

if TYPE_CHECKING:
    from rapidrelease.reads.input import ReadBatch
    from rapidrelease.reads.taxonomy import Taxonomy

__all__ = [
    "BatchResult",
    "ClassificationTotals",
    "ClassifyOptions",
    "SLICE_BASES",
    "classify_batch",
    "classify_reads",
]


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


_DENSE_PAIRS = 1 << 21  # reads × taxa hit in a batch up to which (read, taxon) sums are a bincount

SLICE_BASES = 1 << 20
"""Most bases (a separator counted after each piece) whose k-mers are scanned at once.

Scanning holds about 70 bytes per base at its peak (uint64 l-mers, their reverse complements and
window minima, int64 k-mer positions), so a batch is scanned in slices of at most this many bases
and a longer read in windows: 1 Mi bases keep a scan near 70 MB whatever the read's length, and are
long enough that the per-slice overhead does not show (``tests/benchmarks/bench_long_reads.py``).
"""


@dataclass
class BatchResult:
    """Calls for one batch of reads (or pairs).

    ``calls`` int32 (n,): internal taxon index, or -1 for unclassified. ``kmers`` int32 (n,): k-mers
    of the read (both mates). ``hit_groups`` int32 (n,): the lookups that hit (Kraken 2's minimizer
    hit groups). ``hit_taxa``/``hit_kmers``: taxa hit and the k-mers they cover, one row per lookup
    that hit — or per read and taxon when the batch was scanned in slices; only their sums per read
    and taxon mean something. ``hit_slots``: the index cells hit (distinct minimizers), as cell
    numbers, one per lookup that hit — or sorted and unique when the batch was scanned in slices;
    they are added to :attr:`ClassificationTotals.seen_cells`. ``bases``: bases of the batch's reads, both
    mates. ``runs``: for Kraken's per-read output, (read, code, length) of each run of equal per-k-mer
    codes — codes are taxon indices, -1 miss, -2 ambiguous, -3 the mate border — in read order.
    """

    calls: np.ndarray
    kmers: np.ndarray
    hit_groups: np.ndarray
    hit_taxa: np.ndarray
    hit_kmers: np.ndarray
    hit_slots: np.ndarray
    bases: int
    runs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class _Pieces:
    """The stretches of a batch's mates scanned for k-mers: whole mates, or windows of long ones.

    Segments (mates) are numbered mate 1 of every read, then mate 2 of every read. One entry per
    piece, in scanning order: ``mate`` 0 or 1, ``start`` in that mate's ``seq``, ``length`` in bases,
    ``segment``. A mate longer than a slice is cut into windows that overlap by k - 1 bases, so each
    of its k-mers lies in exactly one window; every window but the last fills a slice alone.
    """

    mate: np.ndarray
    start: np.ndarray
    length: np.ndarray
    segment: np.ndarray


def _pieces(batch: ReadBatch, k: int, slice_bases: int) -> tuple[_Pieces, np.ndarray, np.ndarray]:
    """The batch's pieces, with each segment's length and read."""
    offsets = [batch.offsets] if batch.offsets2 is None else [batch.offsets, batch.offsets2]
    lengths = np.concatenate([np.diff(o) for o in offsets]).astype(np.int64)
    starts = np.concatenate([o[:-1] for o in offsets]).astype(np.int64)
    mates = np.repeat(np.arange(len(offsets), dtype=np.int64), batch.n_reads)
    read_of_segment = np.tile(np.arange(batch.n_reads, dtype=np.int64), len(offsets))
    widest = slice_bases - 1
    step = widest - (k - 1)
    windows = np.ones(len(lengths), dtype=np.int64)
    long = lengths > widest
    windows[long] += -(-(lengths[long] - widest) // step)
    segment = np.repeat(np.arange(len(lengths), dtype=np.int64), windows)
    shift = step * (
        np.arange(len(segment), dtype=np.int64) - np.repeat(np.cumsum(windows) - windows, windows)
    )
    pieces = _Pieces(
        mate=mates[segment],
        start=starts[segment] + shift,
        length=np.minimum(lengths[segment] - shift, widest),
        segment=segment,
    )
    return pieces, lengths, read_of_segment


def _slices(lengths: np.ndarray, slice_bases: int) -> list[tuple[int, int]]:
    """(first, end) of consecutive pieces whose bases, a separator after each, fit in ``slice_bases``."""
    ends = np.cumsum(lengths + 1)
    bounds = []
    first = 0
    while first < len(lengths):
        before = int(ends[first - 1]) if first else 0
        end = max(int(np.searchsorted(ends, before + slice_bases, side="right")), first + 1)
        bounds.append((first, end))
        first = end
    return bounds


@dataclass
class _Scan:
    """One slice's lookups (Kraken 2's hit groups) in read order: the segment, taxon (-1 miss), index
    cell and k-mers of each; ``continued``: the first one goes on from the previous slice's last
    lookup (same mate, same minimizer), so it was no new lookup; ``runs``: (segment, code, length)."""

    segments: np.ndarray
    taxa: np.ndarray
    slots: np.ndarray
    kmers: np.ndarray
    continued: bool
    runs: tuple[np.ndarray, np.ndarray, np.ndarray] | None


def _scan_slice(
    batch: ReadBatch,
    pieces: _Pieces,
    first: int,
    end: int,
    index: KmerIndex,
    last: tuple[int, int] | None,
    want_runs: bool,
) -> tuple[_Scan, tuple[int, int] | None]:
    """Look up the k-mers of pieces ``first:end``; ``last`` is the (segment, minimizer) of the last
    unambiguous k-mer scanned before, returned updated for the next slice."""
    k = index.spec.k
    lengths = pieces.length[first:end]
    segments = pieces.segment[first:end]
    n = len(lengths)
    starts = np.zeros(n, dtype=np.int64)  # in the buffer, where each piece is followed by an 'N'
    np.cumsum(lengths[:-1] + 1, out=starts[1:])
    buffer = np.full(int(lengths.sum()) + n, ord("N"), dtype=np.uint8)
    for mate, seq in enumerate((batch.seq, batch.seq2)):
        mine = np.flatnonzero(pieces.mate[first:end] == mate)
        if not len(mine):
            continue
        # a slice never holds two windows of one mate (all but the last fill a slice), so its pieces
        # of one mate file are consecutive reads: one contiguous stretch of that mate's bases
        assert seq is not None
        a, b = int(mine[0]), int(mine[-1])
        source = pieces.start[first + a]
        bases = seq[source : pieces.start[first + b] + lengths[b]]
        assert len(bases) == int(lengths[a : b + 1].sum())
        # the stretch's bases fill its part of the buffer in order, around the separators between
        # its pieces: a mask assignment, cheaper than scattering them to computed positions
        end_of_stretch = int(starts[b] + lengths[b])
        bases_at = np.ones(end_of_stretch - int(starts[a]), dtype=bool)
        bases_at[starts[a:b] + lengths[a:b] - starts[a]] = False
        buffer[int(starts[a]) : end_of_stretch][bases_at] = bases
        del bases_at
    minimizers, ambiguous = kmer_minimizers(buffer, index.spec)
    del buffer
    kmers_per_piece = np.maximum(lengths - k + 1, 0)
    # the k-mers of each piece, in buffer order (those spanning a separator belong to no piece)
    piece_of_kmer = np.repeat(np.arange(n, dtype=np.int32), kmers_per_piece)
    kmer_positions = np.arange(len(piece_of_kmer), dtype=np.int64)
    kmer_positions += np.repeat(starts - (np.cumsum(kmers_per_piece) - kmers_per_piece), kmers_per_piece)
    valid = ~ambiguous[kmer_positions]
    del ambiguous
    valid_minimizers = minimizers[kmer_positions[valid]]
    del minimizers, kmer_positions
    valid_segments = segments[piece_of_kmer[valid]]
    # a lookup where the minimizer changes, or a mate starts (Kraken 2 resets it per mate)
    change = np.ones(len(valid_minimizers), dtype=bool)
    if len(change) > 1:
        change[1:] = (valid_minimizers[1:] != valid_minimizers[:-1]) | (
            valid_segments[1:] != valid_segments[:-1]
        )
    continued = bool(
        last is not None
        and len(valid_minimizers)
        and int(valid_segments[0]) == last[0]
        and int(valid_minimizers[0]) == last[1]
    )
    if len(valid_minimizers):
        last = (int(valid_segments[-1]), int(valid_minimizers[-1]))
    group_first = np.flatnonzero(change)
    taxa, slots = index.lookup(valid_minimizers[group_first])
    del valid_minimizers
    group_kmers = np.diff(np.append(group_first, len(valid_segments)))
    runs = None
    if want_runs:
        codes = np.full(len(valid), AMBIGUOUS, dtype=np.int32)
        codes[valid] = np.repeat(np.where(taxa >= 0, taxa, MISS), group_kmers)
        runs = _runs_of(codes, segments[piece_of_kmer])
    scan = _Scan(valid_segments[group_first], taxa, slots, group_kmers, continued, runs)
    return scan, last


def classify_batch(
    batch: ReadBatch,
    index: KmerIndex,
    options: ClassifyOptions,
    want_runs: bool = False,
    slice_bases: int | None = None,
) -> BatchResult:
    """Classify one :class:`~rapidrelease.reads.input.ReadBatch` (paired when it has mate 2).

    The batch is scanned in slices of at most ``slice_bases`` bases (default :data:`SLICE_BASES`),
    a longer mate in windows. Kraken 2 scores a read by all of its hits, so a window's hits are only
    added up: their k-mer counts per read and taxon, and their lookups, except that a window whose
    first minimizer is its mate's previous one continues that lookup (Kraken 2 looks a minimizer up
    once per run of k-mers that share it). The call is then made on the read's totals, exactly as on
    the unsplit read.
    """
    n_reads = batch.n_reads
    k = index.spec.k
    if slice_bases is None:
        slice_bases = SLICE_BASES
    if slice_bases < 2 * k:
        raise ValueError(f"slice_bases must be at least 2 k ({2 * k}), not {slice_bases}")
    pieces, lengths, read_of_segment = _pieces(batch, k, slice_bases)
    kmers_per_read = np.bincount(
        read_of_segment, weights=np.maximum(lengths - k + 1, 0), minlength=n_reads
    ).astype(np.int64)
    slices = _slices(pieces.length, slice_bases)
    # over several slices, each one's hits are summed per read and taxon and its cells united in a
    # set, so what is kept grows with a read's distinct hits only, not with its length
    seen = HitCells(index.size) if len(slices) > 1 else None
    hit_groups = np.zeros(n_reads, dtype=np.int64)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    slots = np.zeros(0, dtype=np.int64)
    runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    last = None
    for first, end in slices:
        scan, last = _scan_slice(batch, pieces, first, end, index, last, want_runs)
        hit = scan.taxa >= 0
        lookups = hit.copy()
        lookups[:1] &= not scan.continued
        hit_groups += np.bincount(read_of_segment[scan.segments[lookups]], minlength=n_reads)
        reads, taxa, kmers = read_of_segment[scan.segments[hit]], scan.taxa[hit], scan.kmers[hit]
        if seen is None:
            slots = scan.slots[hit]
        else:
            seen.add(scan.slots[hit])
            reads, taxa, kmers = _sum_hits(reads, taxa, kmers)
        kept.append((reads, taxa, kmers))
        if scan.runs is not None:
            runs.append(scan.runs)
    if len(kept) == 1:
        reads, taxa, kmers = kept[0]
    else:
        reads, taxa, kmers = (
            np.concatenate([part[j] for part in kept]) if kept else np.zeros(0, dtype=dtype)
            for j, dtype in enumerate((np.int64, np.int32, np.int64))
        )
    calls = _resolve(index, reads, taxa, kmers, kmers_per_read, hit_groups, n_reads, options)
    return BatchResult(
        calls=calls,
        kmers=kmers_per_read.astype(np.int32),
        hit_groups=hit_groups.astype(np.int32),
        hit_taxa=taxa,
        hit_kmers=kmers,
        hit_slots=slots if seen is None else seen.cells(),
        bases=int(lengths.sum()),
        runs=_read_runs(runs, read_of_segment, batch.seq2 is not None, n_reads) if want_runs else None,
    )


def _sum_hits(
    reads: np.ndarray, taxa: np.ndarray, kmers: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k-mers hit per (read, taxon): one row for each pair, read-major."""
    keys, inverse = np.unique((reads << 32) | taxa.astype(np.int64), return_inverse=True)
    sums = np.bincount(inverse, weights=kmers, minlength=len(keys)).astype(np.int64)
    return keys >> 32, (keys & 0xFFFFFFFF).astype(np.int32), sums


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
    """Kraken 2's ``ResolveTree`` for every read of a batch; -1 for unclassified.

    Sparse, over the (read, hit taxon) pairs only: each pair's score adds the k-mers of the pairs of
    the same read whose taxon is its own or an ancestor, found by climbing the taxonomy one level a
    pass (passes: the depth of the deepest taxon hit). No reads × taxa matrix and no matrix product:
    BLAS would start threads of its own, which cost more CPU than they save on a batch this size.
    """
    calls = np.full(n_reads, -1, dtype=np.int32)
    if len(taxa) == 0:
        return calls
    taxonomy = index.taxonomy
    n_taxa = len(taxonomy)
    reads = np.asarray(reads, dtype=np.int64)
    # one entry per (read, taxon), read-major: keys sorted, their k-mers summed
    present = np.zeros(n_taxa, dtype=bool)
    present[taxa] = True
    hit_taxa = np.flatnonzero(present)  # ascending, so compact numbers keep the taxa's order
    width = len(hit_taxa)
    if n_reads * width <= _DENSE_PAIRS:  # a batch of short reads: a bincount, no sort
        compact = np.zeros(n_taxa, dtype=np.int64)
        compact[hit_taxa] = np.arange(width)
        sums = np.bincount(reads * width + compact[taxa], weights=kmers, minlength=n_reads * width)
        cell = np.flatnonzero(sums)
        pair_kmers = sums[cell].astype(np.int64)
        del sums
        pair_read = cell // width
        pair_taxon = hit_taxa[cell - pair_read * width].astype(np.int32)
        keys = pair_read * n_taxa + pair_taxon
    else:
        keys, inverse = np.unique(reads * n_taxa + taxa, return_inverse=True)
        pair_kmers = np.bincount(inverse, weights=kmers, minlength=len(keys)).astype(np.int64)
        del inverse
        pair_read = keys // n_taxa
        pair_taxon = (keys - pair_read * n_taxa).astype(np.int32)
    # score of a pair: the k-mers of its read's pairs at its taxon or above (the root-to-leaf score)
    scores = np.zeros(len(keys), dtype=np.int64)
    climbing = np.arange(len(keys))
    node = pair_taxon.copy()
    parent = taxonomy.parent
    while len(climbing):
        at = np.searchsorted(keys, pair_read[climbing] * n_taxa + node)
        at[at == len(keys)] = 0
        match = keys[at] == pair_read[climbing] * n_taxa + node
        scores[climbing[match]] += pair_kmers[at[match]]  # each pair once a pass: no repeats
        going = node != 0  # the root's parent is itself
        climbing, node = climbing[going], parent[node[going]]
    # the best score of each read, and the pairs that reach it
    starts = np.flatnonzero(np.diff(pair_read, prepend=-1))
    best = np.maximum.reduceat(scores, starts)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
    tied = scores == best[group]
    read_of_group = pair_read[starts]
    ties = np.bincount(group[tied], minlength=len(starts))
    winner = np.flatnonzero(tied)
    first_tied = winner[np.searchsorted(group[winner], np.arange(len(starts)))]
    calls[read_of_group] = pair_taxon[first_tied]
    for g in np.flatnonzero(ties > 1):  # ties are rare: resolve each by the LCA of the tied taxa
        tied_taxa = pair_taxon[winner[group[winner] == g]]
        call = int(tied_taxa[0])
        for other in tied_taxa[1:]:
            call = int(taxonomy.lca(np.array([call]), np.array([other]))[0])
        calls[read_of_group[g]] = call
    if options.confidence > 0.0:
        _climb_to_confidence(taxonomy, calls, pair_read, pair_taxon, pair_kmers, kmers_per_read, options)
    calls[hit_groups < options.min_hit_groups] = -1
    return calls


def _climb_to_confidence(
    taxonomy: Taxonomy,
    calls: np.ndarray,
    pair_read: np.ndarray,
    pair_taxon: np.ndarray,
    pair_kmers: np.ndarray,
    kmers_per_read: np.ndarray,
    options: ClassifyOptions,
) -> None:
    """Kraken 2's confidence: a call climbs towards the root until its clade holds at least
    ⌈confidence × the read's k-mers⌉ of the read's hits; -1 past the root. ``calls`` is updated."""
    required = np.ceil(options.confidence * kmers_per_read)  # Kraken 2: ceil(confidence * total k-mers)
    pending = calls[pair_read] >= 0  # the pairs of reads still climbing
    while pending.any():
        read, taxon, kmer = pair_read[pending], pair_taxon[pending], pair_kmers[pending]
        inside = taxonomy.is_ancestor(calls[read], taxon)
        clade = np.bincount(read[inside], weights=kmer[inside], minlength=len(calls))
        reads = np.unique(read)
        climbing = reads[clade[reads] < required[reads]]
        at_root = calls[climbing] == 0
        calls[climbing[at_root]] = -1
        climbing = climbing[~at_root]
        calls[climbing] = taxonomy.parent[calls[climbing]]
        still = np.zeros(len(calls), dtype=bool)
        still[climbing] = True
        pending = still[pair_read]


def _runs_of(codes: np.ndarray, segment_of_kmer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(segment, code, length) of each run of equal per-k-mer codes within a segment."""
    change = np.ones(len(codes), dtype=bool)
    if len(codes) > 1:
        change[1:] = (codes[1:] != codes[:-1]) | (segment_of_kmer[1:] != segment_of_kmer[:-1])
    first = np.flatnonzero(change)
    return (
        segment_of_kmer[first].astype(np.int64),
        codes[first].astype(np.int64),
        np.diff(np.append(first, len(codes))),
    )


def _read_runs(
    slices: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    read_of_segment: np.ndarray,
    paired: bool,
    n_reads: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(read, code, length) runs in read order from the slices' runs; mates split by a border run."""
    if len(slices) == 1:
        run_segment, run_code, run_length = slices[0]
    elif slices:
        run_segment, run_code, run_length = (np.concatenate([s[j] for s in slices]) for j in range(3))
        # a run cut by a window's edge is one run of the read
        change = np.ones(len(run_code), dtype=bool)
        change[1:] = (run_code[1:] != run_code[:-1]) | (run_segment[1:] != run_segment[:-1])
        first = np.flatnonzero(change)
        if len(first) < len(change):
            run_segment, run_code = run_segment[first], run_code[first]
            run_length = np.add.reduceat(run_length, first)
    else:
        run_segment = run_code = run_length = np.zeros(0, dtype=np.int64)
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
    seen_cells: HitCells | None = None  # the index cells hit, when distinct minimizers are counted

    @classmethod
    def empty(cls, index: KmerIndex, count_distinct: bool = True) -> ClassificationTotals:
        n = len(index.taxonomy)
        return cls(
            direct_reads=np.zeros(n, dtype=np.int64),
            kmer_hits=np.zeros(n, dtype=np.int64),
            seen_cells=HitCells(index.size) if count_distinct else None,
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
            self.seen_cells.add(result.hit_slots)


def classify_reads(
    index: KmerIndex,
    reads1: Path,
    reads2: Path | None = None,
    options: ClassifyOptions = ClassifyOptions(),
    report_path: Path | None = None,
    reads_path: Path | None = None,
    taxa_path: Path | None = None,
    batch_reads: int = 1_000,
    threads: int = 1,
    interleaved: bool = False,
    batches: Iterable[ReadBatch] | None = None,
    part: tuple[int, int] = (0, 1),
    count_distinct: bool | None = None,
    cram_reference: Path | None = None,
    progress: TextIO | None = None,
) -> ClassificationTotals:
    """Classify a read file (or pair of files) in batches; write the kreport, per-read and per-taxon tables.

    Memory is bounded by the batch (:func:`~rapidrelease.reads.input.iter_read_batches`) and one
    slice's scan (:data:`SLICE_BASES`), plus the index and a byte per index cell for distinct counts.
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
    _keep_freed_memory()
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
        # islice, not a generator expression, whose variable would keep a batch alive while the next
        # one is read
        batches = itertools.islice(batches, which, None, parts)
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


def _keep_freed_memory() -> None:
    """Have glibc's malloc keep the memory of freed batch arrays for the next batch.

    Every batch allocates and frees the same few MB of arrays. By default glibc gives arrays above
    its mmap threshold back to the kernel and trims the heap's top, so the next batch faults every
    page in again (zeroed): ~1.7 million page faults per million reads, a third of the CPU time.
    With both thresholds raised above a batch's arrays, they are reused; the peak memory is the same,
    since that memory was in use at the peak anyway. Elsewhere than glibc this does nothing.
    """
    set_malloc_thresholds({M_TRIM_THRESHOLD: _KEEP_FREED_BYTES, M_MMAP_THRESHOLD: _KEEP_FREED_BYTES})


_KEEP_FREED_BYTES = 1 << 25  # 32 MiB: glibc's largest mmap threshold; above a batch's arrays


def _start_worker(folder: Path, want_lines: bool) -> None:
    global _WORKER
    _keep_freed_memory()
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
        # map, not a for loop, whose variable would keep a batch alive while the next one is read
        yield from map(lambda batch: _classify_one(batch, index, options, text), batches)
        return
    import multiprocessing

    pool = stack.enter_context(
        multiprocessing.get_context("fork").Pool(
            threads, initializer=_start_worker, initargs=(index.folder, want_lines)
        )
    )
    yield from pool.imap(_work, ((batch, options) for batch in batches), chunksize=1)

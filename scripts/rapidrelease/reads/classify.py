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
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from rapidrelease.errors import ConfigError
from rapidrelease.reads.index import KmerIndex
from rapidrelease.reads.kmers import kmer_minimizers

__all__ = [
    "BatchResult",
    "ClassificationTotals",
    "ClassifyOptions",
    "classify_batch",
    "classify_reads",
    "kraken_report_lines",
]

_MISS = -1  # a k-mer whose minimizer is not in the index (Kraken 2 prints taxid 0)
_AMBIGUOUS = -2  # a k-mer holding a non-ACGT base (Kraken 2 prints "A")
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
    of k-mers it covers; ``hit_slots``: the index cells hit (distinct minimizers). ``runs``: for
    Kraken's per-read output, (read, code, length) of each run of equal per-k-mer codes — codes are
    taxon indices, -1 miss, -2 ambiguous, -3 the mate border — in read order.
    """

    calls: np.ndarray
    kmers: np.ndarray
    hit_groups: np.ndarray
    hit_taxa: np.ndarray
    hit_kmers: np.ndarray
    hit_slots: np.ndarray
    runs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _layout(batch: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    batch: Any, index: KmerIndex, options: ClassifyOptions, want_runs: bool = False
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
        codes = np.full(len(kmer_positions), _AMBIGUOUS, dtype=np.int32)
        codes[valid] = np.repeat(np.where(hit, group_taxa, _MISS), group_kmers)
        runs = _runs(codes, segment_of_kmer, read_of_segment, batch.seq2 is not None, n_reads)
    return BatchResult(
        calls=calls,
        kmers=kmers_per_read.astype(np.int32),
        hit_groups=hit_groups.astype(np.int32),
        hit_taxa=group_taxa[hit],
        hit_kmers=group_kmers[hit],
        hit_slots=group_slots[hit],
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
    taxonomy: Any,
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


_BORDER = -3  # the mate-pair border in Kraken 2's per-read hit list ("|:|")


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
    run_code = np.concatenate([run_code, np.full(n_reads, _BORDER)])
    run_length = np.concatenate([run_length, np.zeros(n_reads, dtype=np.int64)])
    order = np.lexsort((rank, run_read))
    return run_read[order], run_code[order], run_length[order]


@dataclass
class ClassificationTotals:
    """What a whole run accumulates: per-taxon reads and hits, distinct minimizers, read counts."""

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

    def save(self, path: Path, index: KmerIndex) -> None:
        """Write these totals (a part of a unit's reads) as ``.npz``, written atomically.

        The index's manifest hash is stored with them, so parts of different indexes are never merged.
        """
        from rapidrelease.outputs import atomic_path

        seen = np.packbits(self.seen_cells) if self.seen_cells is not None else np.zeros(0, dtype=np.uint8)
        with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                counts=np.array([self.reads, self.classified, self.too_short], dtype=np.int64),
                direct_reads=self.direct_reads,
                kmer_hits=self.kmer_hits,
                seen_bits=seen,
                index_id=np.frombuffer(_index_id(index).encode(), dtype=np.uint8),
            )

    @classmethod
    def load_parts(cls, paths: Sequence[Path], index: KmerIndex) -> ClassificationTotals:
        """The sum of saved parts (counts added, distinct minimizers united). A part of another index,
        or a missing or damaged one, raises ConfigError naming it."""
        totals = cls.empty(index, count_distinct=True)
        for path in paths:
            try:
                with np.load(Path(path)) as part:
                    if part["index_id"].tobytes().decode() != _index_id(index):
                        raise ConfigError(f"{path}: classified against another index than {index.folder}.")
                    reads, classified, too_short = (int(v) for v in part["counts"])
                    totals.reads += reads
                    totals.classified += classified
                    totals.too_short += too_short
                    totals.direct_reads += part["direct_reads"]
                    totals.kmer_hits += part["kmer_hits"]
                    bits = part["seen_bits"]
                    if not bits.size:
                        raise ValueError("saved without its distinct minimizers")
                    totals.seen_cells |= np.unpackbits(bits, count=index.size).astype(bool)
            except (OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"{path}: not a classification part of this run ({exc}).") from None
        return totals


def _index_id(index: KmerIndex) -> str:
    """Identifies an index build: its inputs, parameters and counts (its manifest)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(index.manifest, sort_keys=True).encode()).hexdigest()


def _open_binary(path: Path, compressed: bool) -> IO[bytes]:
    if compressed:  # level 1: the per-read table is large and written while classifying
        return gzip.open(path, "wb", compresslevel=1)
    return open(path, "wb")


class _KrakenText:
    """Byte strings the per-read output is assembled from: fixed pieces and every taxid, made once.

    Kraken 2's per-read line is ``C|U <tab> read id <tab> taxid <tab> length[|length2] <tab> hit list``,
    the hit list being ``taxid:k-mers`` runs separated by spaces (``0`` for no hit, ``A`` for an
    ambiguous span, ``|:|`` between mates, ``0:0`` for a read without k-mers). Each line is a sequence
    of slices of one byte buffer (this dictionary, the batch's read ids and the batch's numbers), so a
    whole batch is written with array arithmetic and one gather instead of a Python loop per read.
    """

    FIXED = (b"C\t", b"U\t", b"\t", b"\n", b" ", b":", b"|", b"A", b"0", b"|:|")

    def __init__(self, taxids: np.ndarray):
        pieces = [*self.FIXED, *(str(t).encode() for t in taxids.tolist())]
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        self.buffer = np.frombuffer(b"".join(pieces), dtype=np.uint8)
        self.starts = np.cumsum(lengths) - lengths
        self.lengths = lengths
        self.fixed = {piece: i for i, piece in enumerate(self.FIXED)}
        self.first_taxon = len(self.FIXED)  # piece of internal taxon t: first_taxon + t

    def piece(self, text: bytes) -> int:
        return self.fixed[text]


def _number_pieces(values: np.ndarray, base: int) -> tuple[np.ndarray, list[bytes]]:
    """Piece ids (from ``base``) of the decimal text of ``values``, and those texts (distinct values)."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return base + inverse, [str(v).encode() for v in distinct.tolist()]


def _read_lines(batch: Any, result: BatchResult, text: _KrakenText) -> bytes:
    """Kraken 2's per-read output for a batch, as bytes (see :class:`_KrakenText`)."""
    assert result.runs is not None
    n = batch.n_reads
    run_read, run_code, run_length = result.runs
    # a read without k-mers prints "0:0": give it one empty miss run
    empty = np.flatnonzero(np.bincount(run_read, minlength=n) == 0)
    if empty.size:
        run_read = np.concatenate([run_read, empty])
        run_code = np.concatenate([run_code, np.full(empty.size, _MISS)])
        run_length = np.concatenate([run_length, np.zeros(empty.size, dtype=np.int64)])
        order = np.argsort(run_read, kind="stable")
        run_read, run_code, run_length = run_read[order], run_code[order], run_length[order]
    paired = batch.seq2 is not None
    lengths1 = np.diff(batch.offsets)
    numbers = [run_length, lengths1] + ([np.diff(batch.offsets2)] if paired else [])
    # dynamic pieces: read ids, then the batch's distinct numbers
    names = "\0".join(batch.names).encode()
    name_bytes = np.frombuffer(names, dtype=np.uint8)
    name_ends = np.append(np.flatnonzero(name_bytes == 0), len(name_bytes))
    name_starts = np.append(0, name_ends[:-1] + 1)
    base = len(text.lengths)
    number_ids, number_texts = _number_pieces(np.concatenate(numbers), base + n)
    run_length_ids = number_ids[: len(run_length)]
    length1_ids = number_ids[len(run_length) : len(run_length) + n]
    length2_ids = number_ids[len(run_length) + n :] if paired else None
    numbers_blob = b"".join(number_texts)
    number_lengths = np.array([len(t) for t in number_texts], dtype=np.int64)
    dictionary = np.concatenate([text.buffer, name_bytes, np.frombuffer(numbers_blob, dtype=np.uint8)])
    starts = np.concatenate(
        [
            text.starts,
            len(text.buffer) + name_starts,
            len(text.buffer) + len(name_bytes) + np.cumsum(number_lengths) - number_lengths,
        ]
    )
    sizes = np.concatenate([text.lengths, name_ends - name_starts, number_lengths])

    # pieces of each line: head (flag, id, tab, taxid, tab, length[, |, length2], tab), then 4 per run
    # (label, colon, count, space — the border run is "|:|" alone), then the newline
    head = 9 if paired else 7
    runs_per_read = np.bincount(run_read, minlength=n)
    per_line = head + 4 * runs_per_read + 1
    line_first = np.cumsum(per_line) - per_line
    ids = np.full(int(per_line.sum()), -1, dtype=np.int64)
    tab = text.piece(b"\t")
    calls = result.calls
    flag = np.where(calls >= 0, text.piece(b"C\t"), text.piece(b"U\t"))
    call_piece = np.where(calls >= 0, text.first_taxon + calls, text.piece(b"0"))
    columns = [flag, base + np.arange(n), np.full(n, tab), call_piece, np.full(n, tab), length1_ids]
    if paired:
        columns += [np.full(n, text.piece(b"|")), length2_ids]
    columns.append(np.full(n, tab))
    for j, column in enumerate(columns):
        ids[line_first + j] = column
    run_rank = np.arange(len(run_read)) - np.repeat(np.cumsum(runs_per_read) - runs_per_read, runs_per_read)
    slot = line_first[run_read] + head + 4 * run_rank
    border = run_code == _BORDER
    label = np.where(
        run_code >= 0,
        text.first_taxon + np.maximum(run_code, 0),
        np.where(run_code == _AMBIGUOUS, text.piece(b"A"), text.piece(b"0")),
    )
    label[border] = text.piece(b"|:|")
    ids[slot] = label
    ids[slot + 1] = np.where(border, -1, text.piece(b":"))
    ids[slot + 2] = np.where(border, -1, run_length_ids)
    last_run = np.append(run_read[1:] != run_read[:-1], True)
    # Kraken 2 (AddHitlistString) ends a hit list that ends in an ambiguous span with a space
    ids[slot + 3] = np.where(last_run & (run_code != _AMBIGUOUS), -1, text.piece(b" "))
    ids[line_first + per_line - 1] = text.piece(b"\n")
    ids = ids[ids >= 0]
    piece_sizes = sizes[ids]
    out_first = np.cumsum(piece_sizes) - piece_sizes
    gather = np.arange(int(piece_sizes.sum())) + np.repeat(starts[ids] - out_first, piece_sizes)
    return dictionary[gather].tobytes()


def kraken_report_lines(index: KmerIndex, totals: ClassificationTotals) -> list[str]:
    """The kreport (Kraken 2 ``reports.cc`` format): percent, clade reads, direct reads, rank code,
    taxid, name indented two spaces per level; unclassified first (when any read is), then the tree
    depth-first with children in decreasing clade reads; taxa with no reads left out."""
    taxonomy = index.taxonomy
    clade = totals.direct_reads.copy()
    for node in range(len(clade) - 1, 0, -1):  # children have larger indices than parents
        clade[taxonomy.parent[node]] += clade[node]
    total = max(totals.reads, 1)
    unclassified = totals.reads - totals.classified
    lines = []
    if unclassified:  # as Kraken 2 (reports.cc): no unclassified line when every read was classified
        lines.append(
            f"{100 * unclassified / total:6.2f}\t{unclassified}\t{unclassified}\tU\t0\tunclassified\n"
        )
    children: dict[int, list[int]] = {}
    for node in np.flatnonzero(clade > 0).tolist():
        if node:
            children.setdefault(int(taxonomy.parent[node]), []).append(node)
    if clade[0] == 0:
        return lines
    stack: list[tuple[int, int]] = [(0, 0)]
    while stack:
        node, level = stack.pop()
        lines.append(
            f"{100 * clade[node] / total:6.2f}\t{clade[node]}\t{totals.direct_reads[node]}\t"
            f"{taxonomy.rank_code(node)}\t{taxonomy.taxid[node]}\t{'  ' * level}{taxonomy.name[node]}\n"
        )
        kids = sorted(children.get(node, []), key=lambda c: (-clade[c], taxonomy.taxid[c]))
        stack.extend((kid, level + 1) for kid in reversed(kids))
    return lines


TAXA_COLUMNS: dict[str, type] = {
    "taxid": np.int64,
    "name": object,
    "rank": object,
    "category": object,
    "reads_direct": np.int64,
    "reads_clade": np.int64,
    "kmer_hits": np.int64,
    "kmer_hits_clade": np.int64,
    "distinct_minimizers": np.int64,
    "distinct_minimizers_clade": np.int64,
    "index_minimizers_clade": np.int64,
    "breadth": np.float64,
}
"""Columns of the per-taxon table and their types (``rpm_clade`` is added when it is written)."""


def taxon_table(index: KmerIndex, totals: ClassificationTotals) -> dict[str, np.ndarray]:
    """Per taxon with reads or hits: reads and k-mer hits (direct and clade), distinct minimizers of the
    taxon and of its clade, minimizers the index holds for the clade, and breadth = distinct / held."""
    taxonomy = index.taxonomy
    n = len(taxonomy)
    assert totals.seen_cells is not None, "distinct minimizers were not counted"
    distinct = np.bincount(index.taxa_of_cells(np.flatnonzero(totals.seen_cells)), minlength=n)
    clade_reads, clade_hits, clade_distinct, clade_held = taxonomy.clade_sums(
        np.column_stack([totals.direct_reads, totals.kmer_hits, distinct, index.minimizers_per_taxon])
    ).T
    keep = np.flatnonzero((clade_reads > 0) | (totals.kmer_hits > 0) | (distinct > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        breadth = np.where(clade_held > 0, clade_distinct / np.maximum(clade_held, 1), 0.0)
    columns = (
        taxonomy.taxid[keep],
        np.array([taxonomy.name[i] for i in keep], dtype=object),
        np.array([taxonomy.rank[i] for i in keep], dtype=object),
        np.array([taxonomy.category[i] for i in keep], dtype=object),
        totals.direct_reads[keep],
        clade_reads[keep],
        totals.kmer_hits[keep],
        clade_hits[keep],
        distinct[keep],
        clade_distinct[keep],
        clade_held[keep],
        breadth[keep],
    )
    return {
        name: values.astype(dtype, copy=False)
        for (name, dtype), values in zip(TAXA_COLUMNS.items(), columns, strict=True)
    }


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
    batches: Iterable[Any] | None = None,
    part: tuple[int, int] = (0, 1),
    count_distinct: bool | None = None,
    cram_reference: Path | None = None,
) -> ClassificationTotals:
    """Classify a read file (or pair of files) in batches; write the kreport, per-read and per-taxon tables.

    Memory is bounded by the batch (plus the index and one byte per index cell for distinct counts).
    With ``threads`` > 1, batches are classified by that many worker processes sharing the
    memory-mapped index, results taken in read order. ``part = (i, n)`` classifies only every n-th
    batch starting at the i-th, so n jobs can share one file's reads without splitting it; their saved
    totals are then merged (:meth:`ClassificationTotals.load_parts`). ``cram_reference`` is the FASTA
    a CRAM input was compressed against, when the file does not embed it. Every output is written
    under a temporary name and renamed when complete.
    """
    from rapidrelease.outputs import atomic_path, write_text

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
        writer = None
        if reads_path is not None:
            temporary = stack.enter_context(atomic_path(Path(reads_path)))
            writer = stack.enter_context(_open_binary(temporary, str(reads_path).endswith(".gz")))
        for result, lines in _classified(batches, index, options, writer is not None, threads, stack):
            totals.add(result)
            if writer is not None:
                writer.write(lines)
    if report_path is not None:
        write_text(Path(report_path), "".join(kraken_report_lines(index, totals)))
    if taxa_path is not None:
        write_taxa(Path(taxa_path), taxon_table(index, totals), totals.reads)
    return totals


def _classify_one(
    batch: Any, index: KmerIndex, options: ClassifyOptions, text: _KrakenText | None
) -> tuple[BatchResult, bytes]:
    result = classify_batch(batch, index, options, want_runs=text is not None)
    lines = _read_lines(batch, result, text) if text is not None else b""
    result.runs = None  # not needed past here, and not worth sending between processes
    return result, lines


_WORKER: tuple[KmerIndex, _KrakenText | None] | None = None


def _start_worker(folder: Path, want_lines: bool) -> None:
    global _WORKER
    from rapidrelease.reads.index import load_index

    index = load_index(folder)
    _WORKER = (index, _KrakenText(index.taxonomy.taxid) if want_lines else None)


def _work(job: tuple[Any, ClassifyOptions]) -> tuple[BatchResult, bytes]:
    batch, options = job
    assert _WORKER is not None
    index, text = _WORKER
    return _classify_one(batch, index, options, text)


def _classified(
    batches: Iterable[Any],
    index: KmerIndex,
    options: ClassifyOptions,
    want_lines: bool,
    threads: int,
    stack: ExitStack,
) -> Iterator[tuple[BatchResult, bytes]]:
    if threads == 1:
        text = _KrakenText(index.taxonomy.taxid) if want_lines else None
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


def write_taxa(path: Path, table: dict[str, np.ndarray], reads: int) -> None:
    """The per-taxon table as TSV (and Parquet beside a ``.tsv``), with ``rpm_clade``: the clade's
    reads per million of the ``reads`` in the sample."""
    import polars as pl

    from rapidrelease.outputs import write_table

    schema = {
        name: pl.String if dtype is object else pl.Float64 if dtype is np.float64 else pl.Int64
        for name, dtype in TAXA_COLUMNS.items()
    }
    frame = pl.DataFrame({name: table[name].tolist() for name in TAXA_COLUMNS}, schema=schema)
    frame = frame.with_columns((pl.col("reads_clade") * 1_000_000 / max(reads, 1)).alias("rpm_clade"))
    parquet = path.with_suffix(".parquet") if path.suffix == ".tsv" else None
    write_table(frame.sort("reads_clade", descending=True, maintain_order=True), path, parquet)

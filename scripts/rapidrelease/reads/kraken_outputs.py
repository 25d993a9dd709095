"""Kraken 2's text outputs, and the per-taxon table beside them, written from a classification run.

- the kreport (``kraken2 --report``, Kraken 2 ``src/reports.cc``): :func:`kraken_report_lines`;
- the per-read output (``kraken2 --output``, ``src/classify.cc``): one line per read (pair),
  assembled for a whole batch at once by :func:`kraken_read_lines` from the classifier's per-k-mer runs;
- the per-taxon table (``taxa.tsv`` and Parquet, beyond Kraken 2: distinct minimizers and breadth,
  KrakenUniq's lesson): :func:`taxon_table` and :func:`write_taxa`.

The classifier (:mod:`rapidrelease.reads.classify`) calls these; they know its results only through
the arrays they read, so this module does not import it.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import numpy as np

from rapidrelease.outputs import atomic_path, write_table

if TYPE_CHECKING:
    from rapidrelease.reads.hit_cells import HitCells
    from rapidrelease.reads.index import KmerIndex
    from rapidrelease.reads.input import ReadBatch

__all__ = [
    "AMBIGUOUS",
    "MATE_BORDER",
    "MISS",
    "TAXA_COLUMNS",
    "KrakenText",
    "RunCounts",
    "kraken_read_lines",
    "kraken_report_lines",
    "read_output",
    "taxon_table",
    "write_taxa",
]

# Per-k-mer codes of the classifier's runs besides taxon indices (>= 0), as the per-read hit list prints them
MISS = -1  # a k-mer whose minimizer is not in the index (Kraken 2 prints taxid 0)
AMBIGUOUS = -2  # a k-mer holding a non-ACGT base (Kraken 2 prints "A")
MATE_BORDER = -3  # the mate-pair border in Kraken 2's per-read hit list ("|:|")


class RunCounts(Protocol):
    """What the kreport and the per-taxon table read of a run: a
    :class:`~rapidrelease.reads.classify.ClassificationTotals` (or a sum of saved parts)."""

    reads: int
    classified: int
    direct_reads: np.ndarray  # int64 (n_taxa,): reads called to each taxon
    kmer_hits: np.ndarray  # int64 (n_taxa,): k-mers hitting minimizers labelled with each taxon
    seen_cells: HitCells | None  # the index cells (minimizers) hit at least once, when counted


@contextmanager
def read_output(path: Path) -> Iterator[IO[bytes]]:
    """The per-read output file open for writing: gzip when its name ends in ``.gz``; written under a
    temporary name and renamed when complete."""
    with atomic_path(Path(path)) as temporary, _open_binary(temporary, str(path).endswith(".gz")) as fh:
        yield fh


def _open_binary(path: Path, compressed: bool) -> IO[bytes]:
    if compressed:  # level 1: the per-read table is large and written while classifying
        return gzip.open(path, "wb", compresslevel=1)
    return open(path, "wb")


class KrakenText:
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


_GATHER_BYTES = 4 << 20  # per-read output assembled per step


def _number_pieces(values: np.ndarray, base: int) -> tuple[np.ndarray, list[bytes]]:
    """Piece ids (from ``base``) of the decimal text of ``values``, and those texts (distinct values)."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return base + inverse, [str(v).encode() for v in distinct.tolist()]


def kraken_read_lines(
    batch: ReadBatch, calls: np.ndarray, runs: tuple[np.ndarray, np.ndarray, np.ndarray], text: KrakenText
) -> bytes:
    """Kraken 2's per-read output for a batch, as bytes (see :class:`KrakenText`).

    ``calls`` int32 (n_reads,): internal taxon index of each read's call, -1 unclassified. ``runs``:
    (read, code, length) of each run of equal per-k-mer codes in read order, each array of shape
    (n_runs,) — a code is a taxon index, :data:`MISS`, :data:`AMBIGUOUS` or :data:`MATEMATE_BORDER`.
    """
    n = batch.n_reads
    run_read, run_code, run_length = runs
    # a read without k-mers prints "0:0": give it one empty miss run
    empty = np.flatnonzero(np.bincount(run_read, minlength=n) == 0)
    if empty.size:
        run_read = np.concatenate([run_read, empty])
        run_code = np.concatenate([run_code, np.full(empty.size, MISS)])
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
    border = run_code == MATE_BORDER
    label = np.where(
        run_code >= 0,
        text.first_taxon + np.maximum(run_code, 0),
        np.where(run_code == AMBIGUOUS, text.piece(b"A"), text.piece(b"0")),
    )
    label[border] = text.piece(b"|:|")
    ids[slot] = label
    ids[slot + 1] = np.where(border, -1, text.piece(b":"))
    ids[slot + 2] = np.where(border, -1, run_length_ids)
    last_run = np.append(run_read[1:] != run_read[:-1], True)
    # Kraken 2 (AddHitlistString) ends a hit list that ends in an ambiguous span with a space
    ids[slot + 3] = np.where(last_run & (run_code != AMBIGUOUS), -1, text.piece(b" "))
    ids[line_first + per_line - 1] = text.piece(b"\n")
    ids = ids[ids >= 0]
    piece_sizes = sizes[ids]
    piece_ends = np.cumsum(piece_sizes)
    # gathered a few MiB of output at a time: the index of every output byte takes 8 bytes, 1 GB for
    # the hit list of one 100-Mb read; a batch of short reads is one step
    out = []
    first = 0
    while first < len(ids):
        before = int(piece_ends[first - 1]) if first else 0
        end = max(int(np.searchsorted(piece_ends, before + _GATHER_BYTES, side="right")), first + 1)
        out_first = piece_ends[first:end] - piece_sizes[first:end] - before
        gather = np.arange(int(piece_ends[end - 1]) - before) + np.repeat(
            starts[ids[first:end]] - out_first, piece_sizes[first:end]
        )
        out.append(dictionary[gather].tobytes())
        first = end
    return b"".join(out)


def kraken_report_lines(index: KmerIndex, totals: RunCounts) -> list[str]:
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


def taxon_table(index: KmerIndex, totals: RunCounts) -> dict[str, np.ndarray]:
    """Per taxon with reads or hits: reads and k-mer hits (direct and clade), distinct minimizers of the
    taxon and of its clade, minimizers the index holds for the clade, and breadth = distinct / held."""
    taxonomy = index.taxonomy
    n = len(taxonomy)
    assert totals.seen_cells is not None, "distinct minimizers were not counted"
    distinct = np.bincount(index.taxa_of_cells(totals.seen_cells.cells()), minlength=n)
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


def write_taxa(path: Path, table: dict[str, np.ndarray], reads: int) -> None:
    """The per-taxon table as TSV (and Parquet beside a ``.tsv``), with ``rpm_clade``: the clade's
    reads per million of the ``reads`` in the sample."""
    import polars as pl

    schema = {
        name: pl.String if dtype is object else pl.Float64 if dtype is np.float64 else pl.Int64
        for name, dtype in TAXA_COLUMNS.items()
    }
    frame = pl.DataFrame({name: table[name].tolist() for name in TAXA_COLUMNS}, schema=schema)
    frame = frame.with_columns((pl.col("reads_clade") * 1_000_000 / max(reads, 1)).alias("rpm_clade"))
    parquet = path.with_suffix(".parquet") if path.suffix == ".tsv" else None
    write_table(frame.sort("reads_clade", descending=True, maintain_order=True), path, parquet)

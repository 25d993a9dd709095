"""The reference index: every minimizer of a reference panel, labelled with the lowest common ancestor
of the taxa whose sequences contain it.

Like Kraken 2's compact hash table (``src/compact_hash.cc``), an entry is one 32-bit cell: the high
bits of the minimizer's hash (a fingerprint) above its taxon label in the low ``value_bits``; the
hash is MurmurHash3's 64-bit finalizer, Kraken 2's. Unlike it, the table is not open addressing but a
static layout built once: minimizers are put in buckets of about :data:`BUCKET_LOAD` by their hash
(multiply-shift range reduction of its low 32 bits, Lemire 2019), each bucket's cells sorted, and an
offset array says where each bucket starts. A lookup is a fixed number of vectorised binary-search
steps within a bucket, and the table has no empty cells: 4 + 4/``BUCKET_LOAD`` bytes per minimizer
against Kraken 2's 4/0.7 at its default load factor. Labels are renumbered to the taxa the index
actually uses, so fingerprints keep as many bits as possible; minimizers that collide on bucket and
fingerprint are merged into one cell labelled with their LCA, so a collision can make a call less
specific, never wrong. A query whose fingerprint equals a stored one of its bucket by chance is
reported as that entry (probability about bucket size / 2**fingerprint bits), as in Kraken 2.

On disk an index is a folder: ``cells.npy``, ``offsets.npy``, ``labels.npy`` (label → taxon),
``taxonomy.tsv``, ``minimizers_per_taxon.npy`` (minimizers held per taxon, for breadth of coverage)
and ``manifest.json`` (parameters, inputs with SHA-256, counts). :func:`load_index` memory-maps the
arrays, so loading takes milliseconds and several processes share one copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rapidrelease import __version__
from rapidrelease.errors import ConfigError
from rapidrelease.outputs import sha256_file, write_json
from rapidrelease.reads.kmers import ENCODE, KRAKEN2_DEFAULTS, MinimizerSpec, kmer_minimizers

if TYPE_CHECKING:
    from rapidrelease.reads.taxonomy import Taxonomy

__all__ = [
    "BUCKET_LOAD",
    "INDEX_FORMAT",
    "KmerIndex",
    "build_index",
    "dust_mask",
    "fmix64",
    "host_sampled",
    "load_index",
]

INDEX_FORMAT = 1
BUCKET_LOAD = 8
"""Mean minimizers per bucket: half a byte of offsets per minimizer, and five search steps (a bucket
of 32 or more, which needs a sixth, has a chance of 1.3e-10, so under 2 % even at 1e9 minimizers;
16 a bucket needs six from ~1e5). Against 16 a bucket, one step fewer took lookups on the demo's index
from 1.8 to 1.5 CPU s per 15.6 M keys, and halves the chance that a key not in the index matches a
stored fingerprint."""
_SENTINEL = np.uint32(0xFFFFFFFF)  # after the last cell, so a search that ends past it reads in bounds
_LOOKUP_KEYS = 1 << 15  # keys a lookup searches at a time (a few MB of cache lines)
_KRAKEN_TAXID = re.compile(r"\|kraken:taxid\|(\d+)")
_SEGMENT_BASES = 1 << 22  # minimizers of long sequences are computed 4 Mb at a time (bounded memory)
_DUST_WINDOWS = 1 << 17  # DUST scores 4 Mb at a time (windows every 32 bases)

U64 = np.uint64


def fmix64(keys: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer of uint64 ``keys`` (Kraken 2's hash), same shape."""
    h = keys ^ (keys >> U64(33))
    h *= U64(0xFF51AFD7ED558CCD)
    h ^= h >> U64(33)
    h *= U64(0xC4CEB9FE1A85EC53)
    h ^= h >> U64(33)
    return h


@dataclass
class KmerIndex:
    """A loaded index. ``taxonomy`` is a :class:`rapidrelease.reads.taxonomy.Taxonomy`."""

    folder: Path
    spec: MinimizerSpec
    taxonomy: Taxonomy
    cells: (
        np.ndarray
    )  # uint32 (n_minimizers + 1,): fingerprint << value_bits | label, sorted per bucket; sentinel
    offsets: np.ndarray  # uint32 (n_buckets + 1,): bucket b holds cells[offsets[b]:offsets[b + 1]]
    labels: np.ndarray  # int32 (n_labels,): internal taxon index of each label
    value_bits: int
    search_steps: int
    minimizers_per_taxon: np.ndarray  # int64 (n_taxa,): minimizers whose LCA is each taxon
    manifest: dict[str, Any] = field(default_factory=dict)
    hash_threshold: int | None = None  # a size-capped index: only minimizers sampled below it are held

    @property
    def size(self) -> int:
        """Minimizers (cells) the index holds; a cell number identifies a distinct minimizer."""
        return len(self.cells) - 1

    @property
    def n_buckets(self) -> int:
        return len(self.offsets) - 1

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Taxa of minimizers ``keys`` (uint64, shape ``(n,)``).

        Returns ``(taxa, cells)``: the internal taxon index of each key's entry, or -1 when the index
        does not hold it, and the cell it was found in (-1 when not found).
        """
        taxa = np.empty(len(keys), dtype=np.int32)
        cells = np.empty(len(keys), dtype=np.int64)
        # a slice of keys at a time, so that each search step finds the cells the previous one read
        # still in the cache: a bucket is one or two cache lines, but the steps of a whole batch's
        # keys take turns over megabytes. With the steps' arrays reused, 2.7-2.8 CPU s per 15.6 M
        # keys of the demo's reads, against 4.1-4.7 for a batch at once with new arrays each step.
        for start in range(0, len(keys), _LOOKUP_KEYS):
            chunk = slice(start, start + _LOOKUP_KEYS)
            self._lookup(keys[chunk], taxa[chunk], cells[chunk])
        return taxa, cells

    def _lookup(self, keys: np.ndarray, taxa: np.ndarray, where: np.ndarray) -> None:
        """:meth:`lookup` of ``keys``, writing into ``taxa`` and ``where`` (views of its results)."""
        buckets, fingerprints = _home(keys, self.n_buckets, self.value_bits)
        # the last cell below the target is found, starting before the bucket and stepping by
        # halves of a power of two; a step past the bucket's last cell is held at it
        last = self.offsets[buckets + 1].astype(np.int64)
        last -= 1
        below = self.offsets[buckets].astype(np.int64)
        below -= 1
        target = fingerprints << np.uint32(self.value_bits)  # the smallest cell with this fingerprint
        cells = self.cells
        probe = np.empty_like(below)
        less = np.empty(len(keys), dtype=bool)
        step = 1 << (self.search_steps - 1)
        while step:
            np.add(below, step, out=probe)
            np.minimum(probe, last, out=probe)
            np.less(cells[probe], target, out=less)  # indexing with int64: np.take(out=) was slower
            np.copyto(below, probe, where=less)
            step >>= 1
        below += 1  # the lower bound of the target in its bucket (its end when all cells are below)
        found_cells = cells[below]
        found = (below <= last) & ((found_cells >> np.uint32(self.value_bits)) == fingerprints)
        label = (found_cells & np.uint32((1 << self.value_bits) - 1)).astype(np.int64)
        if self.hash_threshold is not None:
            # a minimizer the size cap left out is not looked up, as Kraken 2 skips one below its
            # minimum hash: it must not match a stored fingerprint by chance
            found &= size_sampled(keys, self.hash_threshold)
        taxa[:] = np.where(found, self.labels[np.minimum(label, len(self.labels) - 1)], -1)
        where[:] = np.where(found, below, -1)

    def taxa_of_cells(self, cell_numbers: np.ndarray) -> np.ndarray:
        """Internal taxon index of the minimizers in these cells (numbers as :meth:`lookup` returns)."""
        label = self.cells[cell_numbers] & np.uint32((1 << self.value_bits) - 1)
        return self.labels[label.astype(np.int64)]


def bucket_count(n_minimizers: int) -> int:
    """Buckets of a table of ``n_minimizers`` distinct minimizers: about :data:`BUCKET_LOAD` each."""
    return max(1, int(np.ceil(n_minimizers / BUCKET_LOAD)))


def label_bits(n_taxa_used: int) -> int:
    """Low bits of a cell that hold its label, for ``n_taxa_used`` taxa labelling minimizers."""
    # the LCA of colliding minimizers may be a taxon no minimizer had: leave room for it in the labels
    value_bits = max(1, int(2 * n_taxa_used).bit_length())
    if value_bits > 16:
        raise ConfigError(f"the index would label {n_taxa_used} taxa, which leaves too few fingerprint bits.")
    return value_bits


def _home(keys: np.ndarray, n_buckets: int, value_bits: int) -> tuple[np.ndarray, np.ndarray]:
    h = fmix64(keys)
    buckets = ((h & U64(0xFFFFFFFF)) * U64(n_buckets)) >> U64(32)
    fingerprints = (h >> U64(32 + value_bits)).astype(np.uint32)
    return buckets.astype(np.int64), fingerprints


def _layout_table(
    keys: np.ndarray, taxa: np.ndarray, taxonomy: Taxonomy
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, np.ndarray, int]:
    """Cells, offsets, labels, value bits and search steps of distinct minimizers ``keys`` (uint64)
    labelled with taxa ``taxa`` (int32 node indices, same shape).

    Also returns the taxon of each cell (collisions merged), for per-taxon counts, and the number of
    distinct minimizers (before collisions merged them). Each minimizer
    becomes one uint64 sort key, bucket (high 32 bits) above fingerprint above label, so one in-place
    sort lays the table out: the build's peak measured 48 bytes per minimizer.
    """
    n_buckets = bucket_count(len(keys))
    used = np.unique(taxa)
    value_bits = label_bits(len(used))
    n_minimizers = len(keys)
    h = fmix64(keys)
    del keys
    packed = h & U64(0xFFFFFFFF)
    packed *= U64(n_buckets)
    packed >>= U64(32)  # the bucket
    packed <<= U64(32)
    h >>= U64(32 + value_bits)  # the fingerprint
    h <<= U64(value_bits)
    packed |= h
    del h
    packed |= np.searchsorted(used, taxa).astype(U64)
    del taxa
    packed.sort()
    label_mask = U64((1 << value_bits) - 1)
    # minimizers with the same bucket and fingerprint are indistinguishable: one cell, labelled by LCA
    home = packed >> U64(value_bits)
    first = np.ones(len(packed), dtype=bool)
    np.not_equal(home[1:], home[:-1], out=first[1:])
    del home
    labels = used
    if not first.all():
        starts = np.flatnonzero(first)
        counts = np.diff(starts, append=len(packed))
        collided = np.flatnonzero(counts > 1)  # about bucket size / 2**fingerprint bits of them
        group_starts = np.concatenate(([0], np.cumsum(counts[collided])[:-1]))
        within = np.arange(int(counts[collided].sum())) - np.repeat(group_starts, counts[collided])
        members = np.repeat(starts[collided], counts[collided]) + within
        member_taxa = used[(packed[members] & label_mask).astype(np.int64)]
        merged = taxonomy.lca_of_groups(member_taxa, group_starts)
        packed = packed[starts]
        labels = np.union1d(used, merged)
        if len(labels) > len(used):  # a new taxon among the labels: renumber every cell's label
            relabel = np.searchsorted(labels, used).astype(U64)
            label_of = relabel[(packed & label_mask).astype(np.int64)]
            packed &= ~label_mask
            packed |= label_of
            del label_of
        packed[collided] = (packed[collided] & ~label_mask) | np.searchsorted(labels, merged).astype(U64)
    del first
    per_bucket = np.bincount((packed >> U64(32)).astype(np.int64), minlength=n_buckets)
    offsets = np.zeros(n_buckets + 1, dtype=np.uint32)
    np.cumsum(per_bucket, out=offsets[1:])
    search_steps = int(per_bucket.max()).bit_length() if len(per_bucket) else 1
    cells = np.empty(len(packed) + 1, dtype=np.uint32)
    cells[:-1] = packed  # the low 32 bits: fingerprint << value_bits | label
    cells[-1] = _SENTINEL
    cell_taxa = labels[(packed & label_mask).astype(np.int64)]
    return cells, offsets, labels.astype(np.int32), value_bits, search_steps, cell_taxa, n_minimizers


def dust_mask(seq: np.ndarray, window: int = 64, threshold: float = 20.0) -> np.ndarray:
    """Low-complexity masking in the manner of DUST (Morgulis et al. 2006): ACGT → N in dusty windows.

    A window of ``window`` bases scores Σ c_t(c_t − 1)/2 / (l − 1) over its l = window − 2 triplets
    (c_t the count of triplet t); windows placed every ``window`` / 2 bases and scoring above
    ``threshold`` (dustmasker's default level, 20) are masked whole. Homopolymers and triplet repeats
    score far above 20; random sequence about 0.5. Returns a masked copy, uint8 ASCII. Windows are
    scored :data:`_DUST_WINDOWS` at a time, so memory stays bounded for a whole chromosome.
    """
    seq = np.asarray(seq, dtype=np.uint8)
    n = len(seq)
    masked = seq.copy()
    if n < window:
        return masked
    step = window // 2
    n_windows = (n - window) // step + 1
    for first in range(0, n_windows, _DUST_WINDOWS):
        last = min(first + _DUST_WINDOWS, n_windows)  # windows first..last-1, wholly inside the slice
        scores = _dust_scores(seq[first * step : (last - 1) * step + window], window)
        for start in (first + np.flatnonzero(scores > threshold)) * step:
            segment = masked[start : start + window]
            segment[ENCODE[segment] < 4] = ord("N")
    return masked


def _dust_scores(seq: np.ndarray, window: int) -> np.ndarray:
    """DUST score of each window of ``seq`` (windows every ``window`` / 2 bases from its start)."""
    c = ENCODE[seq]
    ok = c < 4
    triplet = (c[:-2].astype(np.int32) << 4) | (c[1:-1].astype(np.int32) << 2) | c[2:]
    valid = ok[:-2] & ok[1:-1] & ok[2:]
    step = window // 2
    per_window = window - 2
    n_windows = (len(seq) - window) // step + 1
    positions = np.arange(len(triplet), dtype=np.int32)
    # a triplet belongs to the window starting at its position rounded down to a step and to the one
    # before (windows span two steps): one bincount per membership, summed before scoring
    counts = np.zeros(n_windows * 64, dtype=np.int64)
    for back in (0, 1):
        window_of = positions // step - back
        inside = (
            valid & (window_of >= 0) & (window_of < n_windows) & (positions - window_of * step < per_window)
        )
        counts += np.bincount(window_of[inside] * 64 + triplet[inside], minlength=n_windows * 64)
    counts = counts.reshape(n_windows, 64)
    return (counts * (counts - 1) // 2).sum(axis=1) / max(per_window - 1, 1)


def _taxid_of_header(header: str, seqid2taxid: Mapping[str, int], source: Path) -> int:
    match = _KRAKEN_TAXID.search(header)
    if match:
        return int(match.group(1))
    seqid = header.split()[0] if header else ""
    taxid = seqid2taxid.get(seqid)
    if taxid is None:
        raise ConfigError(
            f"{source}: sequence {seqid!r} has no taxid "
            "(no '|kraken:taxid|N' in its header and not in the seqid map)."
        )
    return taxid


def read_seqid2taxid(path: Path) -> dict[str, int]:
    """A ``seqid<TAB>taxid`` map (Kraken 2's seqid2taxid.map); ConfigError naming file and line."""
    mapping: dict[str, int] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[1].strip().isdigit():
            raise ConfigError(f"{path} line {number}: expected 'seqid<TAB>taxid', got {line[:60]!r}.")
        mapping[parts[0].strip()] = int(parts[1])
    return mapping


def _distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of ``keys``, sorted; sorts in place when it can (pass a copy to keep one).

    Not ``np.unique``: NumPy 2.4's hash-based unique measured 17× slower on 3 million minimizers.
    """
    keys.sort()
    first = np.ones(len(keys), dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return keys[first]


def segment_minimizers(
    seq: np.ndarray, spec: MinimizerSpec, keep_only: Callable[[np.ndarray], np.ndarray] | None = None
) -> Iterator[np.ndarray]:
    """Distinct minimizers (uint64, sorted) of each :data:`_SEGMENT_BASES` segment of one reference
    sequence, segment after segment (a minimizer may recur in several); with ``keep_only``, only those
    it marks True. Memory is bounded by a segment's, whatever the sequence's length."""
    for start in range(0, max(len(seq) - spec.k + 1, 1), _SEGMENT_BASES):
        piece = seq[start : start + _SEGMENT_BASES + spec.k - 1]
        minimizers, ambiguous = kmer_minimizers(piece, spec)
        keep = minimizers[~ambiguous]
        if keep_only is not None:
            keep = keep[keep_only(keep)]
        if keep.size:
            change = np.empty(keep.size, dtype=bool)
            change[0] = True
            np.not_equal(keep[1:], keep[:-1], out=change[1:])
            yield _distinct(keep[change])


def _sequence_minimizers(
    seq: np.ndarray, spec: MinimizerSpec, keep_only: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """Distinct minimizers of one reference sequence (uint64, sorted), computed segment by segment;
    with ``keep_only``, only those it marks True (applied per segment, so memory stays bounded)."""
    parts = list(segment_minimizers(seq, spec, keep_only))
    if not parts:
        return np.zeros(0, dtype=U64)
    return _distinct(np.concatenate(parts))


@dataclass
class _BuildStats:
    sequences: int = 0
    bases: int = 0
    masked_bases: int = 0
    per_category_bases: dict[str, int] = field(default_factory=dict)
    taxa: int = 0  # nodes of the taxonomy


_SAMPLING_SEED = U64(0x9E3779B97F4A7C15)  # decorrelates the sample from buckets and fingerprints


def host_sampled(keys: np.ndarray, host_sample: int) -> np.ndarray:
    """Which minimizers (uint64) a ``host_sample`` index keeps of the host's own: one in ``host_sample``,
    chosen by a hash of the minimizer, so every build and every host sequence keeps the same ones."""
    if host_sample == 1:
        return np.ones(keys.shape, dtype=bool)
    return fmix64(keys ^ _SAMPLING_SEED) % U64(host_sample) == 0


def open_taxonomy(taxonomy_path: Path) -> Taxonomy:
    """The build's taxonomy: a TSV (taxid, parent_taxid, rank, name, category) or, for a path ending
    in ``nodes.dmp``, NCBI's dump with names.dmp beside it."""
    from rapidrelease.reads.taxonomy import Taxonomy

    taxonomy_path = Path(taxonomy_path)
    if taxonomy_path.name == "nodes.dmp":
        return Taxonomy.from_ncbi(taxonomy_path, taxonomy_path.with_name("names.dmp"))
    return Taxonomy.from_tsv(taxonomy_path)


def reference_sequences(
    fasta_paths: Sequence[Path],
    taxonomy: Taxonomy,
    seqid2taxid: Mapping[str, int],
    mask_low_complexity: bool,
    stats: _BuildStats,
    host_pass: bool | None,
) -> Iterator[tuple[int, np.ndarray]]:
    """(taxon node, sequence uint8 ASCII, DUST-masked when asked) of each reference sequence, in
    file order; with ``host_pass`` True or False, only the host's sequences or only the others.
    Counts what it yields into ``stats``."""
    from rapidrelease.reads.fasta import iter_fasta

    for path in fasta_paths:
        for header, seq in iter_fasta(Path(path)):
            taxid = _taxid_of_header(header, seqid2taxid, Path(path))
            node = int(taxonomy.index_of([taxid])[0])
            category = taxonomy.category[node]
            if host_pass is not None and (category == "host") != host_pass:
                continue
            stats.sequences += 1
            stats.bases += len(seq)
            stats.per_category_bases[category] = stats.per_category_bases.get(category, 0) + len(seq)
            if mask_low_complexity:
                masked = dust_mask(seq)
                stats.masked_bases += int(np.count_nonzero(masked != seq))
                seq = masked
                del masked
            yield node, seq
            del seq  # before the next record is read: a budgeted build counts one sequence held


_SIZE_SEED = U64(0xD6E8FEB86659FD93)  # another seed than host sampling's, so the two samples are independent
CELL_BYTES = 4 + 4 / BUCKET_LOAD
"""Bytes of table per minimizer: its cell and its share of the bucket offsets."""


def size_hashes(hashes: np.ndarray) -> np.ndarray:
    """The hash that a size-capped index samples by, of minimizers' :func:`fmix64` ``hashes`` (uint64,
    same shape). Not the table's own hash: keeping only its low values would fix the top fingerprint
    bits and so multiply false matches; this one is independent of bucket and fingerprint."""
    return fmix64(hashes ^ _SIZE_SEED)


def size_cap_threshold(n_minimizers: int, max_db_size: int) -> int | None:
    """Kraken 2's ``--max-db-size``: the hash threshold below which a minimizer is kept (a minimizer is
    kept when its :func:`size_hashes` value is below it), so that about ``max_db_size`` bytes of table
    hold the ``n_minimizers`` distinct minimizers' sample; None when they all fit. Kraken 2 keeps
    hashes at or above a minimum instead (``min_clear_hash_value``); the fraction is the same."""
    capacity = int(max_db_size / CELL_BYTES)
    if capacity < 1:
        raise ConfigError(f"--max-db-size {max_db_size} bytes cannot hold a single minimizer.")
    if n_minimizers <= capacity:
        return None
    return capacity * 2**64 // n_minimizers


def size_sampled(keys: np.ndarray, threshold: int | None) -> np.ndarray:
    """Which minimizers (uint64 ``keys``) a size-capped index with this threshold keeps (bool, same
    shape); every one when ``threshold`` is None. Classification skips the others, as Kraken 2 does."""
    if threshold is None:
        return np.ones(keys.shape, dtype=bool)
    return size_hashes(fmix64(keys)) < U64(threshold)


def build_index(
    fasta_paths: Sequence[Path],
    taxonomy_path: Path,
    out_dir: Path,
    seqid2taxid_path: Path | None = None,
    spec: MinimizerSpec = KRAKEN2_DEFAULTS,
    mask_low_complexity: bool = True,
    host_sample: int = 1,
    max_db_size: int | None = None,
) -> KmerIndex:
    """Build an index of the sequences in ``fasta_paths`` (FASTA, plain or gzipped), in memory.

    Each sequence's taxon comes from ``|kraken:taxid|N`` in its header or from the seqid map; the
    taxonomy is a TSV (taxid, parent_taxid, rank, name, category) or, for a path ending in
    ``nodes.dmp``, NCBI's dump with names.dmp beside it. Every distinct minimizer is labelled with the
    LCA of the taxa containing it. Writes the index folder atomically (a temporary folder renamed
    into place) and returns the loaded index. Peak memory is about 48 bytes per minimizer;
    :func:`rapidrelease.reads.index_build.build_index_within` writes the same index within a budget.

    ``host_sample`` = N > 1 is for a whole host genome: of the minimizers found only in host
    sequences (category ``host``) it keeps one in N (:func:`host_sampled`); a host minimizer that is
    also in a non-host sequence is always kept, labelled with the LCA as usual, so sampling can cost
    host reads hits but can never leave a shared k-mer labelled with a contaminant alone. Host
    sequences are then read in a second pass, after the non-host ones, so the host's full minimizer
    set is never held in memory.

    ``max_db_size`` (bytes) caps the table as Kraken 2's option does: when the distinct minimizers
    would need more, only a hash-chosen fraction is kept (:func:`size_cap_threshold`), the threshold
    recorded in the manifest, and lookups skip the minimizers it leaves out.
    """
    taxonomy_path = Path(taxonomy_path)
    taxonomy = open_taxonomy(taxonomy_path)
    if host_sample < 1:
        raise ConfigError(f"host_sample must be 1 (every host minimizer) or more, not {host_sample}.")
    seqid2taxid = read_seqid2taxid(seqid2taxid_path) if seqid2taxid_path else {}
    stats = _BuildStats(taxa=len(taxonomy))
    per_taxon: dict[int, list[np.ndarray]] = {}
    keep_host: Callable[[np.ndarray], np.ndarray] | None = None
    # one pass over every sequence, or, sampling the host, the non-host ones first and then the host's
    for host_pass in [None] if host_sample == 1 else [False, True]:
        if host_pass:
            keep_host = _host_filter(per_taxon, host_sample)
        sequences = reference_sequences(
            fasta_paths, taxonomy, seqid2taxid, mask_low_complexity, stats, host_pass
        )
        for node, seq in sequences:
            minimizers = _sequence_minimizers(seq, spec, keep_host if host_pass else None)
            per_taxon.setdefault(node, []).append(minimizers)
    if stats.sequences == 0:
        raise ConfigError(f"{', '.join(map(str, fasta_paths))}: no sequences to index.")
    keys, taxa = _label_with_lca(per_taxon, taxonomy)
    distinct = len(keys)
    threshold = size_cap_threshold(distinct, max_db_size) if max_db_size else None
    if threshold is not None:
        kept = size_sampled(keys, threshold)
        keys, taxa = keys[kept], taxa[kept]
        del kept
    table = _layout_table(keys, taxa, taxonomy)
    cells, offsets, labels, value_bits, search_steps, cell_taxa, n_minimizers = table
    minimizers_per_taxon = np.bincount(cell_taxa, minlength=len(taxonomy)).astype(np.int64)
    layout = TableLayout(
        len(offsets) - 1, value_bits, search_steps, n_minimizers, len(cells) - 1, len(labels)
    )
    size_cap = SizeCap(max_db_size, threshold, distinct) if max_db_size else None
    manifest = index_manifest(
        spec,
        mask_low_complexity,
        host_sample,
        stats,
        layout,
        size_cap,
        fasta_paths,
        taxonomy_path,
        seqid2taxid_path,
    )
    arrays = {
        "cells": cells,
        "offsets": offsets,
        "labels": labels,
        "minimizers_per_taxon": minimizers_per_taxon,
    }
    _write_index_folder(Path(out_dir), arrays, taxonomy, manifest)
    return load_index(Path(out_dir))


@dataclass(frozen=True)
class TableLayout:
    """What a built table's manifest states about it."""

    buckets: int
    value_bits: int
    search_steps: int
    minimizers: int  # distinct minimizers kept (before colliding ones shared a cell)
    cells: int
    labels: int

    @property
    def table_bytes(self) -> int:
        """Bytes of cells (with the sentinel), offsets and labels, as their .npy arrays hold them."""
        return 4 * (self.cells + 1) + 4 * (self.buckets + 1) + 4 * self.labels


@dataclass(frozen=True)
class SizeCap:
    """A ``--max-db-size`` build: the cap in bytes, the hash threshold (None: all fitted) and the
    distinct minimizers found before sampling."""

    max_db_size: int
    hash_threshold: int | None
    minimizers_before: int


def index_manifest(
    spec: MinimizerSpec,
    mask_low_complexity: bool,
    host_sample: int,
    stats: _BuildStats,
    layout: TableLayout,
    size_cap: SizeCap | None,
    fasta_paths: Sequence[Path],
    taxonomy_path: Path,
    seqid2taxid_path: Path | None,
) -> dict[str, Any]:
    """The manifest.json of a built index: parameters, counts and inputs with their SHA-256 (nothing
    about how it was built, time or memory, so two builds of the same inputs are the same index)."""
    return {
        "format": INDEX_FORMAT,
        "rapidrelease_version": __version__,
        "minimizer": spec.as_dict(),
        "hash": "fmix64 (MurmurHash3 finalizer); bucket from its low 32 bits, fingerprint from its high bits",
        "bucket_load": BUCKET_LOAD,
        "buckets": layout.buckets,
        "value_bits": layout.value_bits,
        "search_steps": layout.search_steps,
        "low_complexity_masking": "DUST window 64, score 20" if mask_low_complexity else None,
        "host_sample": host_sample,
        "size_cap": None
        if size_cap is None
        else {
            "max_db_size": size_cap.max_db_size,
            "hash_threshold": size_cap.hash_threshold,
            "sampled_hash": "fmix64(fmix64(minimizer) ^ 0xD6E8FEB86659FD93) below hash_threshold kept",
            "minimizers_before_cap": size_cap.minimizers_before,
        },
        "counts": {
            "sequences": stats.sequences,
            "bases": stats.bases,
            "masked_bases": stats.masked_bases,
            "bases_per_category": dict(sorted(stats.per_category_bases.items())),
            "minimizers": layout.minimizers,
            "cells": layout.cells,
            "labels": layout.labels,
            "taxa": stats.taxa,
            "table_bytes": layout.table_bytes,
        },
        "inputs": [{"role": "fasta", "path": str(p), "sha256": sha256_file(Path(p))} for p in fasta_paths]
        + [{"role": "taxonomy", "path": str(taxonomy_path), "sha256": sha256_file(taxonomy_path)}]
        + (
            [
                {
                    "role": "seqid2taxid",
                    "path": str(seqid2taxid_path),
                    "sha256": sha256_file(Path(seqid2taxid_path)),
                }
            ]
            if seqid2taxid_path
            else []
        ),
    }


def _host_filter(
    non_host: Mapping[int, list[np.ndarray]], host_sample: int
) -> Callable[[np.ndarray], np.ndarray]:
    """Which host minimizers to keep: those sampled, and all that a non-host sequence also holds."""
    arrays = [a for per_sequence in non_host.values() for a in per_sequence if a.size]
    if not arrays:
        return lambda keys: host_sampled(keys, host_sample)
    shared = _distinct(np.concatenate(arrays))

    def keep(keys: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(shared, keys), len(shared) - 1)
        return (shared[at] == keys) | host_sampled(keys, host_sample)

    return keep


def _label_with_lca(
    per_taxon: dict[int, list[np.ndarray]], taxonomy: Taxonomy
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct minimizers (sorted uint64) and, for each, the LCA of the taxa that contain it (int32).

    Consumes ``per_taxon``, freeing each taxon's arrays as they are merged.
    """
    keys_parts, taxa_parts = [], []
    for node in list(per_taxon):
        arrays = per_taxon.pop(node)
        keys = _distinct(np.concatenate(arrays)) if len(arrays) > 1 else arrays[0]
        del arrays
        keys_parts.append(keys)
        taxa_parts.append(np.full(len(keys), node, dtype=np.int32))
    all_keys = np.concatenate(keys_parts)
    del keys_parts
    all_taxa = np.concatenate(taxa_parts)
    del taxa_parts
    order = np.argsort(all_keys, kind="stable")
    all_keys = all_keys[order]
    all_taxa = all_taxa[order]
    del order
    first = np.ones(len(all_keys), dtype=bool)
    np.not_equal(all_keys[1:], all_keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    del first
    unique_keys = all_keys[starts]
    del all_keys
    labels = all_taxa[starts]
    # a minimizer in several taxa (a few percent) is labelled with their LCA; only those are folded
    counts = np.diff(starts, append=len(all_taxa))
    shared = counts > 1
    if shared.any():
        members = all_taxa[np.repeat(shared, counts)]
        group_starts = np.zeros(int(shared.sum()), dtype=np.int64)
        np.cumsum(counts[shared][:-1], out=group_starts[1:])
        labels[shared] = taxonomy.lca_of_groups(members, group_starts)
    return unique_keys, labels


def _write_index_folder(
    folder: Path, arrays: Mapping[str, np.ndarray], taxonomy: Taxonomy, manifest: dict[str, Any]
) -> None:
    """Write the index under a temporary name beside ``folder``, then put it in place."""
    with staging_folder(folder) as staging:
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", array)
        taxonomy.to_tsv(staging / "taxonomy.tsv")
        write_json(staging / "manifest.json", manifest)


@contextmanager
def staging_folder(folder: Path) -> Iterator[Path]:
    """A temporary folder beside ``folder`` to write an index into; renamed to ``folder`` (replacing
    any index there) when the block ends, deleted if it raises (a full disk, an interrupt), so
    ``folder`` never holds a half-written index."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old)
    else:
        staging.rename(folder)


def load_index(folder: Path) -> KmerIndex:
    """Open an index folder; its arrays are memory-mapped (shared by processes, loaded lazily).

    A folder written by kraken2-build (hash.k2d, opts.k2d, taxo.k2d) is opened as it is, by
    :func:`rapidrelease.reads.kraken2_db.load_kraken2_db`, and answers the same calls.
    """
    from rapidrelease.reads.kraken2_db import KRAKEN2_FILES, load_kraken2_db
    from rapidrelease.reads.taxonomy import Taxonomy

    folder = Path(folder)
    if not (folder / "manifest.json").is_file() and any((folder / f).is_file() for f in KRAKEN2_FILES):
        return load_kraken2_db(folder)  # type: ignore[return-value]  # the same interface
    manifest_path = folder / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{folder}: not a rapidrelease index (no manifest.json).") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{manifest_path}: cannot be read ({exc}).") from None
    if manifest.get("format") != INDEX_FORMAT:
        raise ConfigError(
            f"{folder}: index format {manifest.get('format')!r} is not {INDEX_FORMAT}; "
            "rebuild it with this version."
        )
    try:
        # plain arrays over the mappings: numpy.memmap's per-indexing overhead adds up over lookups
        arrays = {
            name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r"))
            for name in ("cells", "offsets", "labels", "minimizers_per_taxon")
        }
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder}: index files cannot be read ({exc}).") from None
    if (
        len(arrays["cells"]) != manifest["counts"]["cells"] + 1
        or len(arrays["offsets"]) != manifest["buckets"] + 1
    ):
        raise ConfigError(f"{folder}: its arrays do not match its manifest (a damaged index?).")
    taxonomy = Taxonomy.from_tsv(folder / "taxonomy.tsv")
    return KmerIndex(
        folder=folder,
        spec=MinimizerSpec(**manifest["minimizer"]),
        taxonomy=taxonomy,
        cells=arrays["cells"],
        offsets=arrays["offsets"],
        labels=arrays["labels"],
        value_bits=int(manifest["value_bits"]),
        search_steps=int(manifest["search_steps"]),
        minimizers_per_taxon=arrays["minimizers_per_taxon"],
        manifest=manifest,
        hash_threshold=(manifest.get("size_cap") or {}).get("hash_threshold"),
    )

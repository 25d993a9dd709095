"""Building the reference index within a memory budget: an external sort and merge of minimizers.

:func:`rapidrelease.reads.index.build_index` holds every minimizer of the panel at once and peaks at
about 48 bytes per minimizer (a whole human genome, ~0.9 G minimizers, would need ~43 GB).
:func:`build_index_within` writes the same index, cell for cell, within a budget:

1. **runs**: the minimizers of the reference sequences, each with its sequence's taxon, are
   collected until the budget's share for them is full; the run is sorted by each minimizer's
   *rotated hash* (:func:`rotated_hashes`: the table's fmix64 hash with its 32-bit halves swapped, a
   bijection, so equal minimizers have equal values), reduced to distinct minimizers labelled with
   the LCA of their taxa (as the in-memory build labels them) and spilled to disk as two ``.npy``
   arrays in a temporary folder beside the output;
2. **merge**: the sorted runs are merged k ways a chunk at a time (each step takes from every run
   what lies below the smallest of their next chunks' last values, so no value is emitted before a
   smaller one), equal minimizers of several runs labelled with the LCA again, into merged chunks;
3. **layout**: a stream sorted by rotated hash is sorted by the hash's low 32 bits, hence by bucket
   (the bucket is those bits range-reduced): cut at bucket boundaries, each piece is laid out on
   its own, its cells sorted and colliding minimizers merged exactly as the in-memory build's one
   global sort does, and appended to ``cells.npy``; only the bucket counts (¼ byte per minimizer)
   stay in memory.

Every array is read and written with plain file reads and writes, not memory maps: mapped pages
count as the process's resident memory, which the budget bounds. Two things the budget covers
beside the runs: the sequence being indexed with its masked copy (2 bytes per base, so a 250-Mb
chromosome needs 0.5 GB) and the work arrays of one 4-Mb segment (:data:`_WORK_BYTES_PER_BASE`).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rapidrelease.errors import ConfigError, IndexBuildError
from rapidrelease.outputs import write_json
from rapidrelease.reads.index import (
    _SEGMENT_BASES,
    _SENTINEL,
    KRAKEN2_DEFAULTS,
    KmerIndex,
    SizeCap,
    TableLayout,
    _BuildStats,
    bucket_count,
    fmix64,
    host_sampled,
    index_manifest,
    label_bits,
    load_index,
    open_taxonomy,
    read_seqid2taxid,
    reference_sequences,
    segment_minimizers,
    size_cap_threshold,
    size_hashes,
    staging_folder,
)
from rapidrelease.reads.kmers import MinimizerSpec
from rapidrelease.reads.malloc import M_MMAP_THRESHOLD, set_malloc_thresholds
from rapidrelease.reads.taxonomy import Taxonomy

__all__ = [
    "SortedRun",
    "build_index_within",
    "default_memory_budget",
    "merge_sorted_runs",
    "parse_byte_size",
    "process_rss",
    "reduce_sorted",
    "rotated_hashes",
    "save_run",
    "table_from_runs",
]

U64 = np.uint64
_LOW32 = U64(0xFFFFFFFF)
_RUN_ENTRY_BYTES = 40
"""Peak bytes per collected minimizer while its run is sorted: hash 8, taxon 4, sort order 8, sorted
copies 12, and the reduction's flags and group starts."""
_MERGE_ENTRY_BYTES = 64
"""Peak bytes per minimizer a merge step takes: its hash and taxon read (12), joined (12), sort order
(8), sorted (12), reduced (12), and the reduction's flags and group starts."""
_LAYOUT_ENTRY_BYTES = 80
"""Peak bytes per minimizer of a layout piece: hash and taxon read (12) and joined to the carried last
bucket (12), bucket (8), label (8), packed cell (8), collision keys (8), cell taxa (4), uint32 cells
(4), and the reduction's flags."""
_WORK_BYTES_PER_BASE = 64
"""Work arrays per base of one segment: DUST masking measured 61 bytes, minimizers 34, not at once."""
_MIN_CHUNK = 1024
"""The fewest minimizers per run read in a merge step or per layout piece the build accepts."""
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_byte_size(text: str) -> int:
    """Bytes of a size such as ``12G``, ``500M``, ``64K`` or ``1000000`` (binary units: G = 2**30)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), flags=re.IGNORECASE)
    if not match:
        raise ConfigError(f"{text!r} is not a size (a number of bytes, or with K, M, G or T, e.g. 12G).")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def process_rss() -> int:
    """Resident memory of this process now, bytes (Linux /proc; 0 where it cannot be read)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def default_memory_budget() -> int:
    """Half the memory the machine has available now (MemAvailable), bytes: room for other work."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") // 2


def return_freed_arrays_to_the_system() -> None:
    """Make glibc give every freed array of 128 KiB or more back to the system at once (mallopt).

    By default glibc raises its mmap threshold to the largest block freed so far (up to 32 MiB): a
    segment's temporaries (a few MiB to 32 MiB each) then come from the heap, between the run's
    long-lived minimizer arrays, and freed heap memory stays resident. A 1-Gb build measured 7.7 GB
    resident for 2.4 GB of minimizers that way. Fixing the threshold disables that adjustment.
    Elsewhere than glibc this does nothing.
    """
    set_malloc_thresholds({M_MMAP_THRESHOLD: 128 * 1024})


def rotated_hashes(keys: np.ndarray) -> np.ndarray:
    """The table's :func:`fmix64` hash of minimizers ``keys`` (uint64) with its halves swapped, same
    shape. Sorting by it sorts by the hash's low half (the bucket's source) first, then its high half
    (the fingerprint's); swapping again gives the hash back."""
    h = fmix64(keys)
    return (h << U64(32)) | (h >> U64(32))


def _hashes_of_rotated(rotated: np.ndarray) -> np.ndarray:
    return (rotated << U64(32)) | (rotated >> U64(32))


def reduce_sorted(values: np.ndarray, taxa: np.ndarray, taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``values`` (sorted uint64, ``(n,)``) and, for each, the LCA of the ``taxa`` (int32 node
    indices, ``(n,)``) they came with: the in-memory build's labelling rule, applied to a run or a
    merge step (LCA is associative, so reducing runs and then their merge gives the same labels)."""
    if len(values) == 0:
        return values, taxa
    first = np.ones(len(values), dtype=bool)
    np.not_equal(values[1:], values[:-1], out=first[1:])
    if first.all():
        return values, taxa
    starts = np.flatnonzero(first)
    del first
    labels = taxa[starts]
    counts = np.diff(starts, append=len(values))
    shared = counts > 1
    members = taxa[np.repeat(shared, counts)]
    group_starts = np.zeros(int(shared.sum()), dtype=np.int64)
    np.cumsum(counts[shared][:-1], out=group_starts[1:])
    labels[shared] = taxonomy.lca_of_groups(members, group_starts)
    return values[starts], labels


@dataclass(frozen=True)
class SortedRun:
    """A sorted run (or merged chunk) on disk: rotated hashes (uint64) and taxa (int32), ``length``
    of each, the hashes distinct and increasing."""

    hashes: Path
    taxa: Path
    length: int


class _NpyReader:
    """Reads slices of a one-dimensional .npy file with plain reads (never a memory map)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        version = np.lib.format.read_magic(self._file)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read_header(self._file)
        self.dtype = dtype
        self.length = int(shape[0])
        self._start = self._file.tell()

    def read(self, start: int, count: int) -> np.ndarray:
        """Items ``start`` to ``start + count`` (fewer at the end)."""
        count = max(0, min(count, self.length - start))
        self._file.seek(self._start + start * self.dtype.itemsize)
        return np.fromfile(self._file, dtype=self.dtype, count=count)

    def close(self) -> None:
        self._file.close()


def _npy_header(dtype: np.dtype, length: int) -> bytes:
    """The bytes np.save writes before a one-dimensional array (format 1.0, as np.save chooses)."""
    buffer = io.BytesIO()
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": (length,),
    }
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


class _RunCollector:
    """Collects (rotated hash, taxon) of minimizers and spills sorted, reduced runs to ``folder``."""

    def __init__(self, folder: Path, taxonomy: Taxonomy, budget: int, out_dir: Path) -> None:
        self.folder = folder
        self.taxonomy = taxonomy
        self.budget = budget
        self.out_dir = out_dir
        self.runs: list[SortedRun] = []
        self._parts: list[np.ndarray] = []
        self._part_taxa: list[int] = []
        self._filled = 0

    def add(self, hashes: np.ndarray, node: int, reserved: int) -> None:
        """Add one segment's rotated hashes of taxon ``node``; ``reserved`` bytes are held meanwhile
        (the sequence, its masked copy and the segment's work arrays)."""
        if (self._filled + len(hashes)) * _RUN_ENTRY_BYTES + reserved > self.budget:
            self.spill()
            needed = len(hashes) * _RUN_ENTRY_BYTES + reserved
            if needed > self.budget:
                raise IndexBuildError(
                    f"{self.out_dir}: a memory budget of {_size(self.budget)} cannot hold one chunk of "
                    f"the build (a sequence, its segment's work and minimizers need {_size(needed)}); "
                    "give --max-memory more."
                )
        self._parts.append(hashes)
        self._part_taxa.append(node)
        self._filled += len(hashes)

    def spill(self) -> None:
        """Sort, reduce and write the collected minimizers as one run."""
        if not self._parts:
            return
        sizes = [len(p) for p in self._parts]
        hashes = np.concatenate(self._parts)
        self._parts.clear()
        taxa = np.repeat(np.asarray(self._part_taxa, dtype=np.int32), sizes)
        self._part_taxa.clear()
        self._filled = 0
        order = np.argsort(hashes)
        hashes = hashes[order]
        taxa = taxa[order]
        del order
        hashes, taxa = reduce_sorted(hashes, taxa, self.taxonomy)
        self.runs.append(_save_run(self.folder, f"run-{len(self.runs):05d}", hashes, taxa))


def _save_run(folder: Path, name: str, hashes: np.ndarray, taxa: np.ndarray) -> SortedRun:
    run = SortedRun(folder / f"{name}.hashes.npy", folder / f"{name}.taxa.npy", len(hashes))
    np.save(run.hashes, hashes)
    np.save(run.taxa, taxa.astype(np.int32, copy=False))
    return run


def merge_sorted_runs(
    runs: Sequence[SortedRun], taxonomy: Taxonomy, budget: int, folder: Path, prefix: str, out_dir: Path
) -> list[SortedRun]:
    """Merge sorted runs (their values may recur across runs) into merged chunks: together one
    sorted stream of distinct rotated hashes labelled with the LCA of their taxa in every run.

    A step reads the next chunk of every unfinished run and takes, from each, the values up to the
    smallest of those chunks' last values: every value below it has been read, so the step's output
    follows the previous step's, and at least one run's chunk is consumed whole. The inputs are
    deleted as they are consumed. Returns the merged chunks in order (the one run itself if one)."""
    if len(runs) <= 1:
        return list(runs)
    per_run = budget // (_MERGE_ENTRY_BYTES * len(runs))
    if per_run < _MIN_CHUNK:
        raise IndexBuildError(
            f"{out_dir}: a memory budget of {_size(budget)} cannot merge {len(runs)} sorted runs "
            f"{_MIN_CHUNK:,} minimizers at a time; give --max-memory more."
        )
    readers = [(_NpyReader(run.hashes), _NpyReader(run.taxa)) for run in runs]
    positions = [0] * len(runs)
    merged: list[SortedRun] = []
    try:
        while True:
            active = [i for i, run in enumerate(runs) if positions[i] < run.length]
            if not active:
                break
            heads = {i: readers[i][0].read(positions[i], per_run) for i in active}
            bound = min(head[-1] for head in heads.values())
            hash_parts, taxa_parts = [], []
            for i, head in heads.items():
                take = int(np.searchsorted(head, bound, side="right"))
                hash_parts.append(head[:take])
                taxa_parts.append(readers[i][1].read(positions[i], take))
                positions[i] += take
            hashes = np.concatenate(hash_parts)
            del heads, hash_parts  # the parts are views of the heads: both go, or neither
            taxa = np.concatenate(taxa_parts)
            del taxa_parts
            # a stable sort is NumPy's timsort, which merges the k sorted runs it finds in O(n log k);
            # each array is replaced by its sorted copy at once, so no more than one extra is alive
            order = np.argsort(hashes, kind="stable")
            hashes = hashes[order]
            taxa = taxa[order]
            del order
            hashes, taxa = reduce_sorted(hashes, taxa, taxonomy)
            merged.append(_save_run(folder, f"{prefix}-{len(merged):05d}", hashes, taxa))
    finally:
        for hashes_reader, taxa_reader in readers:
            hashes_reader.close()
            taxa_reader.close()
    for run in runs:
        run.hashes.unlink(missing_ok=True)
        run.taxa.unlink(missing_ok=True)
    return merged


def _stream(chunks: Sequence[SortedRun], piece: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rotated hashes, taxa) of merged chunks in order, at most ``piece`` at a time."""
    for chunk in chunks:
        hashes_reader, taxa_reader = _NpyReader(chunk.hashes), _NpyReader(chunk.taxa)
        try:
            for start in range(0, chunk.length, piece):
                yield hashes_reader.read(start, piece), taxa_reader.read(start, piece)
        finally:
            hashes_reader.close()
            taxa_reader.close()


def _kept(hashes: np.ndarray, threshold: int | None) -> np.ndarray | None:
    if threshold is None:
        return None
    return size_hashes(_hashes_of_rotated(hashes)) < U64(threshold)


@dataclass
class _Table:
    layout: TableLayout
    labels: np.ndarray
    offsets: np.ndarray
    minimizers_per_taxon: np.ndarray


def _lay_out(
    chunks: Sequence[SortedRun],
    n_minimizers: int,
    used: np.ndarray,
    threshold: int | None,
    taxonomy: Taxonomy,
    cells_path: Path,
    budget: int,
    out_dir: Path,
) -> _Table:
    """Write ``cells.npy`` from the merged stream, piece by piece; return the rest of the table.

    ``n_minimizers`` distinct minimizers are kept (after any size cap); ``used`` (int32, sorted) are
    the taxa that label them. Cells are sorted by bucket, then fingerprint, then label, as the
    in-memory build's one sort of all packed cells orders them: a piece ends at a bucket boundary (the
    rest of its last bucket is carried into the next), so sorting each piece alone is that order.
    """
    n_buckets = bucket_count(n_minimizers)
    value_bits = label_bits(len(used))
    label_mask = U64((1 << value_bits) - 1)
    fixed = 8 * n_buckets + 16 * len(taxonomy)  # bucket counts and offsets; per-taxon counts, labels
    piece = (budget - fixed) // _LAYOUT_ENTRY_BYTES
    if piece < _MIN_CHUNK:
        raise IndexBuildError(
            f"{out_dir}: a memory budget of {_size(budget)} cannot lay out a table of "
            f"{n_minimizers:,} minimizers (its bucket counts alone need {_size(fixed)}); "
            "give --max-memory more."
        )
    label_of_taxon = np.full(len(taxonomy), -1, dtype=np.int64)
    label_of_taxon[used] = np.arange(len(used))
    per_bucket = np.zeros(n_buckets, dtype=np.uint32)
    per_taxon = np.zeros(len(taxonomy), dtype=np.int64)
    collided_at: list[np.ndarray] = []  # cell numbers whose label is the LCA of colliding minimizers
    collided_taxa: list[np.ndarray] = []
    written = 0
    carry_hashes = np.zeros(0, dtype=U64)
    carry_taxa = np.zeros(0, dtype=np.int32)

    def write_piece(hashes: np.ndarray, taxa: np.ndarray, out: io.BufferedWriter) -> None:
        nonlocal written
        buckets = ((hashes >> U64(32)) * U64(n_buckets)) >> U64(32)
        packed = buckets << U64(32)
        first_bucket = int(buckets[0])
        del buckets
        packed |= ((hashes & _LOW32) >> U64(value_bits)) << U64(value_bits)
        packed |= label_of_taxon[taxa].astype(U64)
        packed.sort()
        home = packed >> U64(value_bits)
        first = np.ones(len(packed), dtype=bool)
        np.not_equal(home[1:], home[:-1], out=first[1:])
        del home
        cell_taxa_labels = None
        if not first.all():  # as the in-memory layout: one cell per bucket and fingerprint, its LCA
            starts = np.flatnonzero(first)
            counts = np.diff(starts, append=len(packed))
            collided = np.flatnonzero(counts > 1)
            group_starts = np.concatenate(([0], np.cumsum(counts[collided])[:-1]))
            within = np.arange(int(counts[collided].sum())) - np.repeat(group_starts, counts[collided])
            members = np.repeat(starts[collided], counts[collided]) + within
            member_taxa = used[(packed[members] & label_mask).astype(np.int64)]
            merged = taxonomy.lca_of_groups(member_taxa, group_starts)
            packed = packed[starts]
            # a merged taxon among the used ones gets its label now; another waits for the relabelling
            label = np.maximum(label_of_taxon[merged], 0).astype(U64)
            packed[collided] = (packed[collided] & ~label_mask) | label
            cell_taxa_labels = (collided, merged)
            collided_at.append(written + collided)
            collided_taxa.append(merged.astype(np.int32))
        # counted after collisions merged: a bucket holds cells, not minimizers
        per_bucket_here = np.bincount(((packed >> U64(32)) - U64(first_bucket)).astype(np.int64))
        per_bucket[first_bucket : first_bucket + len(per_bucket_here)] += per_bucket_here.astype(np.uint32)
        cell_taxa = used[(packed & label_mask).astype(np.int64)] if len(used) else np.zeros(0, np.int32)
        if cell_taxa_labels is not None:
            cell_taxa[cell_taxa_labels[0]] = cell_taxa_labels[1]
        per_taxon[:] += np.bincount(cell_taxa, minlength=len(taxonomy))
        out.write(packed.astype(np.uint32).tobytes())
        written += len(packed)

    header = _npy_header(np.uint32, n_minimizers + 1)
    with open(cells_path, "wb") as out:
        out.write(header)
        for hashes, taxa in _stream(chunks, piece):
            kept = _kept(hashes, threshold)
            if kept is not None:
                hashes, taxa = hashes[kept], taxa[kept]
            if len(carry_hashes):
                hashes = np.concatenate([carry_hashes, hashes])
                taxa = np.concatenate([carry_taxa, taxa])
            if len(hashes) == 0:
                continue
            buckets = ((hashes >> U64(32)) * U64(n_buckets)) >> U64(32)
            cut = int(np.searchsorted(buckets, buckets[-1], side="left"))  # the last bucket waits
            del buckets
            carry_hashes, carry_taxa = hashes[cut:], taxa[cut:]
            if cut:
                write_piece(hashes[:cut], taxa[:cut], out)
        if len(carry_hashes):
            write_piece(carry_hashes, carry_taxa, out)
        out.write(np.array([_SENTINEL], dtype=np.uint32).tobytes())
    labels = used
    if collided_taxa:
        all_merged = np.concatenate(collided_taxa)
        labels = np.union1d(used, all_merged).astype(used.dtype)
        if len(labels) > len(used):  # a new taxon among the labels: renumber every cell's label
            relabel = np.searchsorted(labels, used).astype(np.uint32)
            _relabel_cells(cells_path, len(header), written, relabel, value_bits, piece)
            _set_labels(
                cells_path,
                len(header),
                np.concatenate(collided_at),
                np.searchsorted(labels, all_merged).astype(np.uint32),
                value_bits,
            )
    if written != n_minimizers:  # collisions made fewer cells than minimizers: the header says so
        _fix_length(cells_path, header, _npy_header(np.uint32, written + 1))
    offsets = np.zeros(n_buckets + 1, dtype=np.uint32)
    np.cumsum(per_bucket, out=offsets[1:])
    search_steps = int(per_bucket.max()).bit_length() if len(per_bucket) else 1
    layout = TableLayout(n_buckets, value_bits, search_steps, n_minimizers, written, len(labels))
    return _Table(layout, labels.astype(np.int32), offsets, per_taxon)


def _relabel_cells(
    path: Path, start: int, n_cells: int, relabel: np.ndarray, value_bits: int, piece: int
) -> None:
    """Replace each cell's label by ``relabel[label]``, ``piece`` cells at a time, in place."""
    mask = np.uint32((1 << value_bits) - 1)
    with open(path, "r+b") as f:
        for first in range(0, n_cells, piece):
            f.seek(start + 4 * first)
            cells = np.fromfile(f, dtype=np.uint32, count=min(piece, n_cells - first))
            cells = (cells & ~mask) | relabel[(cells & mask).astype(np.int64)]
            f.seek(start + 4 * first)
            f.write(cells.tobytes())


def _set_labels(
    path: Path, start: int, cell_numbers: np.ndarray, labels: np.ndarray, value_bits: int
) -> None:
    """Set the label of a few cells (the collisions', about one in 2**fingerprint bits / bucket size)."""
    mask = np.uint32((1 << value_bits) - 1)
    with open(path, "r+b") as f:
        for number, label in zip(cell_numbers.tolist(), labels.tolist(), strict=True):
            f.seek(start + 4 * number)
            cell = np.fromfile(f, dtype=np.uint32, count=1)
            f.seek(start + 4 * number)
            f.write(((cell & ~mask) | np.uint32(label)).tobytes())


def _fix_length(path: Path, old_header: bytes, new_header: bytes) -> None:
    """Rewrite a .npy header for its true length; in place when it is as long (as nearly always)."""
    if len(new_header) == len(old_header):
        with open(path, "r+b") as f:
            f.write(new_header)
        return
    moved = path.with_name(path.name + ".tmp")
    with open(path, "rb") as src, open(moved, "wb") as dst:
        src.seek(len(old_header))
        dst.write(new_header)
        shutil.copyfileobj(src, dst, 1 << 24)
    moved.replace(path)


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:,.0f} {unit}" if unit == "B" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:,.1f} GiB"


def build_index_within(
    fasta_paths: Sequence[Path],
    taxonomy_path: Path,
    out_dir: Path,
    memory_budget: int,
    seqid2taxid_path: Path | None = None,
    spec: MinimizerSpec = KRAKEN2_DEFAULTS,
    mask_low_complexity: bool = True,
    host_sample: int = 1,
    max_db_size: int | None = None,
) -> KmerIndex:
    """Build the index :func:`rapidrelease.reads.index.build_index` builds from the same arguments
    (the same files, byte for byte), holding at most about ``memory_budget`` bytes on top of what the
    process held when it was called.

    Runs are spilled to ``.<out name>.runs-<pid>/`` beside ``out_dir`` (about 12 bytes per minimizer
    per run on disk, then as much again while they are merged) and deleted at the end; the index is
    written to a temporary folder renamed into place, so a full disk or an interrupt leaves no
    half-written index. Raises :class:`IndexBuildError` when the budget cannot hold one chunk of a
    step or the disk fills.
    """
    out_dir = Path(out_dir)
    taxonomy_path = Path(taxonomy_path)
    if host_sample < 1:
        raise ConfigError(f"host_sample must be 1 (every host minimizer) or more, not {host_sample}.")
    return_freed_arrays_to_the_system()
    before = process_rss()
    taxonomy = open_taxonomy(taxonomy_path)
    seqid2taxid = read_seqid2taxid(seqid2taxid_path) if seqid2taxid_path else {}
    budget = memory_budget - max(0, process_rss() - before)  # a full NCBI taxonomy is not small
    stats = _BuildStats(taxa=len(taxonomy))
    runs_dir = out_dir.with_name(f".{out_dir.name}.runs-{os.getpid()}")
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.parent.mkdir(parents=True, exist_ok=True)
    runs_dir.mkdir()
    try:
        with staging_folder(out_dir) as staging:
            table, size_cap = _build_table(
                fasta_paths,
                taxonomy,
                seqid2taxid,
                spec,
                mask_low_complexity,
                host_sample,
                max_db_size,
                stats,
                budget,
                runs_dir,
                staging / "cells.npy",
                out_dir,
            )
            np.save(staging / "offsets.npy", table.offsets)
            np.save(staging / "labels.npy", table.labels)
            np.save(staging / "minimizers_per_taxon.npy", table.minimizers_per_taxon)
            taxonomy.to_tsv(staging / "taxonomy.tsv")
            manifest = index_manifest(
                spec,
                mask_low_complexity,
                host_sample,
                stats,
                table.layout,
                size_cap,
                fasta_paths,
                taxonomy_path,
                seqid2taxid_path,
            )
            write_json(staging / "manifest.json", manifest)
    except OSError as exc:
        raise IndexBuildError(
            f"{out_dir}: the index could not be written ({exc.strerror or exc}); "
            "nothing was left in its place."
        ) from None
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    return load_index(out_dir)


def _build_table(
    fasta_paths: Sequence[Path],
    taxonomy: Taxonomy,
    seqid2taxid: dict[str, int],
    spec: MinimizerSpec,
    mask_low_complexity: bool,
    host_sample: int,
    max_db_size: int | None,
    stats: _BuildStats,
    budget: int,
    runs_dir: Path,
    cells_path: Path,
    out_dir: Path,
) -> tuple[_Table, SizeCap | None]:
    collector = _RunCollector(runs_dir, taxonomy, budget, out_dir)
    keep_host: Callable[[np.ndarray], np.ndarray] | None = None
    earlier: list[SortedRun] = []  # the non-host pass's merged chunks, when the host is sampled
    for host_pass in [None] if host_sample == 1 else [False, True]:
        if host_pass:
            collector.spill()
            earlier = merge_sorted_runs(collector.runs, taxonomy, budget, runs_dir, "non-host", out_dir)
            keep_host, held = _host_filter(earlier, host_sample, out_dir, budget)
            collector = _RunCollector(runs_dir, taxonomy, budget - held, out_dir)
            collector.runs = list(earlier)
        sequences = reference_sequences(
            fasta_paths, taxonomy, seqid2taxid, mask_low_complexity, stats, host_pass
        )
        longest = 0
        for node, seq in sequences:
            # held meanwhile: this sequence and its masked copy, or, once it is done, the next one
            # being read (its lines and their join); a record longer than every one before it can
            # take up to twice its excess more than reserved here
            longest = max(longest, len(seq))
            reserved = 2 * longest + _WORK_BYTES_PER_BASE * min(len(seq), _SEGMENT_BASES)
            for minimizers in segment_minimizers(seq, spec, keep_host if host_pass else None):
                collector.add(rotated_hashes(minimizers), node, reserved)
            del seq
    if stats.sequences == 0:
        raise ConfigError(f"{', '.join(map(str, fasta_paths))}: no sequences to index.")
    collector.spill()
    keep_host = None
    return table_from_runs(collector.runs, taxonomy, budget, runs_dir, cells_path, out_dir, max_db_size)


def table_from_runs(
    runs: Sequence[SortedRun],
    taxonomy: Taxonomy,
    budget: int,
    runs_dir: Path,
    cells_path: Path,
    out_dir: Path,
    max_db_size: int | None = None,
) -> tuple[_Table, SizeCap | None]:
    """Merge sorted runs and lay out their table: ``cells.npy`` written to ``cells_path``, the rest
    returned with the size cap applied (None without ``max_db_size``). The runs are consumed."""
    merged = merge_sorted_runs(runs, taxonomy, budget, runs_dir, "merged", out_dir)
    distinct = sum(chunk.length for chunk in merged)
    threshold = size_cap_threshold(distinct, max_db_size) if max_db_size else None
    # the taxa labelling kept minimizers (and, with a size cap, how many are kept): one read pass
    used_mask = np.zeros(len(taxonomy), dtype=bool)
    kept_count = 0
    for hashes, taxa in _stream(merged, max(_MIN_CHUNK, budget // 48)):  # read 12, hash 16, flags
        kept = _kept(hashes, threshold)
        if kept is not None:
            taxa = taxa[kept]
        kept_count += len(taxa)
        used_mask[taxa] = True
    used = np.flatnonzero(used_mask).astype(np.int32)
    table = _lay_out(merged, kept_count, used, threshold, taxonomy, cells_path, budget, out_dir)
    size_cap = SizeCap(max_db_size, threshold, distinct) if max_db_size else None
    return table, size_cap


def save_run(folder: Path, name: str, keys: np.ndarray, taxa: np.ndarray, taxonomy: Taxonomy) -> SortedRun:
    """Sort minimizers ``keys`` (uint64) with their ``taxa`` (int32 node indices) by rotated hash,
    reduce them by LCA and write them as a run ``name`` in ``folder``."""
    hashes = rotated_hashes(keys)
    order = np.argsort(hashes)
    hashes, taxa = reduce_sorted(hashes[order], np.asarray(taxa, dtype=np.int32)[order], taxonomy)
    return _save_run(folder, name, hashes, taxa)


def _host_filter(
    non_host: Sequence[SortedRun], host_sample: int, out_dir: Path, budget: int
) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """The in-memory build's host filter (keep sampled host minimizers and every one a non-host
    sequence holds), over the non-host pass's merged chunks; and the bytes it holds."""
    held = 8 * sum(run.length for run in non_host)
    if held * 2 > budget:
        raise IndexBuildError(
            f"{out_dir}: a memory budget of {_size(budget)} cannot hold the non-host minimizers "
            f"({_size(held)}) that host sampling keeps; give --max-memory more."
        )
    parts = [np.load(run.hashes) for run in non_host]
    shared = np.concatenate(parts) if parts else np.zeros(0, dtype=U64)  # sorted: chunks in order

    def keep(keys: np.ndarray) -> np.ndarray:
        sampled = host_sampled(keys, host_sample)
        if not len(shared):
            return sampled
        rotated = rotated_hashes(keys)
        at = np.minimum(np.searchsorted(shared, rotated), len(shared) - 1)
        return (shared[at] == rotated) | sampled

    return keep, held

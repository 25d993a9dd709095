"""A Kraken 2 database as kraken2-build 2.1.x writes it, read in place and read-only.

A lab's own Kraken 2 build, or a prebuilt collection (Standard-8/16, PlusPF, PlusPFP), is a folder
of three files (Kraken 2, ``src/kraken2_data.h``, ``compact_hash.cc``, ``taxonomy.cc``):

- ``opts.k2d``: the ``IndexOptions`` struct: k, l, spaced-seed mask, toggle mask (size_t/uint64 at
  bytes 0, 8, 16, 24), ``dna_db`` (a bool at byte 32), the minimum acceptable hash value of a
  size-capped (``--max-db-size``) database (uint64 at 40), ``revcom_version``, ``db_version``,
  ``db_type`` (int32 at 48, 52, 56). A file shorter than the struct (a build before Kraken 2.0.8)
  leaves the missing fields zero, as ``kraken2`` reads it.
- ``hash.k2d``: capacity, size, key bits, value bits (four size_t), then ``capacity`` uint32 cells:
  the high ``key_bits`` are the top bits of the minimizer's 64-bit MurmurHash3 finalizer, the low
  ``value_bits`` its taxon (internal id; 0 marks an empty cell). A minimizer's home cell is its
  hash modulo the capacity, and a lookup walks on one cell at a time (Kraken 2 is compiled with
  ``LINEAR_PROBING``) until it meets the fingerprint (a hit) or an empty cell (a miss).
- ``taxo.k2d``: ``K2TAXDAT``, node count, name and rank data lengths, then one ``TaxonomyNode`` per
  internal id (seven uint64: parent, first child, child count, name offset, rank offset, external
  taxid, godparent) with node 0 the null node and node 1 the root, breadth-first with children in
  ascending taxid — the order :class:`~rapidrelease.reads.taxonomy.Taxonomy` numbers its nodes in,
  so Kraken 2's internal id ``i`` is node ``i - 1`` here; then NUL-terminated names and ranks.

:class:`Kraken2Index` answers the calls :mod:`rapidrelease.reads.classify` makes of an index
(``spec``, ``taxonomy``, ``size``, ``lookup``, ``taxa_of_cells``, ``minimizers_per_taxon``), so
reads are classified by the same kernel as against rapidrelease's own index, and their calls are
Kraken 2's read by read. Lookups walk a :class:`CompactTable`: the table without its empty cells,
an occupancy bitmap and a rank per 64 cells, written by one pass over ``hash.k2d`` into a cache
outside the database folder (:func:`open_compact_table`) and memory-mapped from there. At Kraken 2's
load factor (0.7) it is three quarters of the table's size, so a classifying process holds less
than Kraken 2 does, which reads the whole table into memory; the same pass counts the minimizers
the database holds per taxon (breadth, LOD). An occupied cell's number in that copy (its rank)
identifies a distinct minimizer, so distinct minimizers and breadth per taxon work on a Kraken 2
database too.

Release categories (host, vector, bacteria, …) come from the database's own taxonomy by lineage:
:data:`~rapidrelease.reads.taxonomy.DEFAULT_CATEGORIES` on NCBI taxids, overridden by a site's
table (:func:`read_category_overrides`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rapidrelease.config.vocabulary import CATEGORIES
from rapidrelease.errors import ConfigError
from rapidrelease.reads.hit_cells import cell_dtype
from rapidrelease.reads.index import fmix64
from rapidrelease.reads.kmers import MinimizerSpec
from rapidrelease.reads.taxonomy import DEFAULT_CATEGORIES, Taxonomy

if TYPE_CHECKING:
    from rapidrelease.records import FileRef

__all__ = [
    "CATEGORY_FILE",
    "KRAKEN2_FILES",
    "CompactTable",
    "Kraken2Index",
    "Kraken2Options",
    "Kraken2Spec",
    "index_file_refs",
    "is_kraken2_db",
    "load_kraken2_db",
    "open_compact_table",
    "read_category_overrides",
    "read_kraken2_taxonomy",
    "read_options",
]

KRAKEN2_FILES = ("hash.k2d", "opts.k2d", "taxo.k2d")
"""The files that make a folder a Kraken 2 database."""

CATEGORY_FILE = "rapidrelease_categories.tsv"
"""A site's category overrides (``taxid<TAB>category``), looked for beside the database folder."""

_OPTIONS_BYTES = 64  # sizeof(IndexOptions) on x86-64 / aarch64
_HASH_HEADER_BYTES = 32  # capacity, size, key_bits, value_bits: size_t each
_TAXONOMY_MAGIC = b"K2TAXDAT"
_NODE_FIELDS = 7  # parent, first_child, child_count, name_offset, rank_offset, external_id, godparent
_SCAN_CELLS = 1 << 18  # cells read per step of the pass that writes the compact copy (1 MiB)
_COMPACT_VERSION = 1  # of the compact copy's files; another version is rebuilt, not read
_CACHE_ENV = "RAPIDRELEASE_CACHE"
_LOOKUP_KEYS = 1 << 14  # keys looked up at once (about 1.3 MB of arrays)
_RUN_CELLS = 1 << 16  # cells of runs read at once by a lookup (about 2 MB of arrays)

U64 = np.uint64


@dataclass(frozen=True)
class Kraken2Spec(MinimizerSpec):
    """Minimizer parameters read from ``opts.k2d``: the seed mask as the database stores it.

    Kraken 2 keeps the spaced-seed mask itself (2 bits per base, a 0 pair where a base is ignored),
    not the number of spaced positions, so :attr:`spaced_seed_mask` returns it as stored (0 means no
    seed mask) and ``spaced_positions`` is only the count of masked bases, for display.
    """

    seed_mask: int = 0

    @property
    def spaced_seed_mask(self) -> int:
        return self.seed_mask if self.seed_mask else self.lmer_mask

    def as_dict(self) -> dict[str, int]:
        return {**super().as_dict(), "spaced_seed_mask": self.seed_mask}


@dataclass(frozen=True)
class Kraken2Options:
    """``opts.k2d`` (Kraken 2's ``IndexOptions``), every field as the database holds it."""

    k: int
    l: int  # noqa: E741 - Kraken 2's name
    spaced_seed_mask: int
    toggle_mask: int
    dna_db: bool
    minimum_acceptable_hash_value: int
    revcom_version: int
    db_version: int
    db_type: int

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def is_kraken2_db(folder: Path) -> bool:
    """True when ``folder`` holds Kraken 2's three database files."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in KRAKEN2_FILES)


def index_file_refs(folder: Path) -> list[FileRef]:
    """The files that identify an index in a record: a rapidrelease index's ``manifest.json`` (which
    holds the SHA-256 of its inputs), or a Kraken 2 database's ``opts.k2d`` and ``taxo.k2d`` with
    their SHA-256 and ``hash.k2d`` by size only (hashing gigabytes for every unit would cost more
    than classifying it)."""
    from rapidrelease.records import file_ref  # not at import: classifying needs no records (9 MB)

    folder = Path(folder)
    if (folder / "manifest.json").is_file() or not is_kraken2_db(folder):
        return [file_ref(folder / "manifest.json", "index")]
    table = folder / "hash.k2d"
    return [
        file_ref(folder / "opts.k2d", "index"),
        file_ref(folder / "taxo.k2d", "index"),
        dataclasses.replace(file_ref(table, "index", hashed=False), size_bytes=table.stat().st_size),
    ]


def read_options(path: Path) -> Kraken2Options:
    """Parse ``opts.k2d``; a short file (an old build) leaves its missing fields 0, as kraken2 does."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}).") from None
    if len(raw) < 33 or len(raw) > _OPTIONS_BYTES:
        raise ConfigError(
            f"{path}: holds {len(raw)} bytes, not a Kraken 2 options file (33 to {_OPTIONS_BYTES})."
        )
    data = raw + bytes(_OPTIONS_BYTES - len(raw))
    words = np.frombuffer(data, dtype="<u8")
    ints = np.frombuffer(data[48:60], dtype="<i4")
    return Kraken2Options(
        k=int(words[0]),
        l=int(words[1]),
        spaced_seed_mask=int(words[2]),
        toggle_mask=int(words[3]),
        dna_db=bool(data[32]),
        minimum_acceptable_hash_value=int(words[5]),
        revcom_version=int(ints[0]),
        db_version=int(ints[1]),
        db_type=int(ints[2]),
    )


def _spec(options: Kraken2Options, path: Path) -> Kraken2Spec:
    """The scanner's parameters, or a ConfigError for a database this classifier cannot read."""
    if not options.dna_db:
        raise ConfigError(
            f"{path}: a protein (translated-search) Kraken 2 database; only nucleotide databases are read."
        )
    if options.revcom_version != 1:
        raise ConfigError(
            f"{path}: reverse-complement version {options.revcom_version} (a build before Kraken 2.0.8); "
            "rebuild it with kraken2-build 2.1."
        )
    if options.db_type != 0 or options.db_version != 0:
        raise ConfigError(
            f"{path}: database type {options.db_type}, version {options.db_version} is not the compact "
            "hash table of kraken2-build 2.1."
        )
    if not 9 <= options.l <= 31 or not options.l <= options.k <= 255:
        raise ConfigError(f"{path}: k {options.k} and l {options.l} are outside 9 <= l <= 31, l <= k.")
    lmer_mask = (1 << (2 * options.l)) - 1
    seed = options.spaced_seed_mask & lmer_mask
    masked_bases = sum(((seed >> (2 * i)) & 3) == 0 for i in range(options.l)) if seed else 0
    return Kraken2Spec(
        k=options.k,
        l=options.l,
        spaced_positions=masked_bases if 2 * masked_bases <= options.l else 0,
        toggle_mask=options.toggle_mask,
        seed_mask=seed,
    )


def read_category_overrides(path: Path) -> dict[int, str]:
    """A site's category table: ``taxid<TAB>category`` lines (``#`` comments, blank lines skipped).

    Each taxid's category is inherited by its descendants unless one of them has its own; an empty
    category (``taxid<TAB>``) removes a default assignment so that the clade inherits from above.
    """
    path = Path(path)
    table: dict[int, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}).") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0].strip().lower() == "taxid":
            continue  # a header
        if len(fields) != 2 or not fields[0].strip().isdigit():
            raise ConfigError(f"{path} line {number}: expected 'taxid<TAB>category', found {line[:60]!r}.")
        category = fields[1].strip()
        if category and category not in CATEGORIES:
            raise ConfigError(
                f"{path} line {number}: category {category!r} is not one of {', '.join(CATEGORIES)}."
            )
        table[int(fields[0])] = category
    return table


def read_kraken2_taxonomy(path: Path, categories: Mapping[int, str] | None = None) -> Taxonomy:
    """Parse ``taxo.k2d`` into a :class:`Taxonomy`; node ``i`` is Kraken 2's internal id ``i + 1``.

    ``categories`` (taxid → category, ``""`` for none) defaults to
    :data:`~rapidrelease.reads.taxonomy.DEFAULT_CATEGORIES`; taxids the database does not hold are
    ignored, since a database holds only the lineages of its sequences.
    """
    path = Path(path)
    try:
        data = np.memmap(path, dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}).") from None
    if len(data) < 32 or bytes(data[:8]) != _TAXONOMY_MAGIC:
        raise ConfigError(f"{path}: not a Kraken 2 taxonomy (no K2TAXDAT header).")
    node_count, name_len, rank_len = (int(v) for v in np.frombuffer(bytes(data[8:32]), dtype="<u8"))
    node_bytes = node_count * _NODE_FIELDS * 8
    if node_count < 2 or 32 + node_bytes + name_len + rank_len != len(data):
        raise ConfigError(f"{path}: its header does not match its size (a damaged taxonomy?).")
    nodes = np.frombuffer(bytes(data[32 : 32 + node_bytes]), dtype="<u8").reshape(node_count, _NODE_FIELDS)
    names = bytes(data[32 + node_bytes : 32 + node_bytes + name_len])
    ranks = bytes(data[32 + node_bytes + name_len :])
    nodes = nodes[1:]  # internal id 0 is "no taxon"
    parent = nodes[:, 0].astype(np.int64) - 1
    parent[0] = 0
    n = len(nodes)
    if np.any(parent[1:] >= np.arange(1, n)) or np.any(parent < 0):
        raise ConfigError(f"{path}: nodes are not in breadth-first order (a damaged taxonomy?).")

    def text(blob: bytes, offsets: np.ndarray) -> list[str]:
        cache: dict[int, str] = {}
        out = []
        for offset in offsets.tolist():
            if offset not in cache:
                end = blob.find(b"\0", offset)
                cache[offset] = blob[offset : end if end >= 0 else len(blob)].decode("utf-8", "replace")
            out.append(cache[offset])
        return out

    taxid = nodes[:, 5].astype(np.int64)
    assignments = dict(DEFAULT_CATEGORIES if categories is None else categories)
    assigned = [assignments.get(t, "") for t in taxid.tolist()]
    name = [value or f"taxid {t}" for value, t in zip(text(names, nodes[:, 3]), taxid.tolist(), strict=True)]
    rank = [value or "no rank" for value in text(ranks, nodes[:, 4])]
    return Taxonomy(taxid, parent.astype(np.int32), rank, name, assigned, source=str(path))


@dataclass(frozen=True)
class CompactTable:
    """A Kraken 2 hash table without its empty cells, as lookups walk it.

    ``packed`` holds the occupied cells in table order (uint32, shape ``(stored,)``), cells as
    ``hash.k2d`` stores them; ``occupied`` is a bitmap of the table (uint64, shape
    ``(ceil(capacity / 64),)``: bit ``i % 64`` of word ``i // 64`` is set when cell ``i`` is
    occupied); ``rank`` the number of occupied cells before each word (uint32, uint64 for 2^32 cells
    or more). An occupied cell ``i`` is ``packed[rank[i // 64] + popcount(bits of its word below
    i % 64)]``, and the cells of a probing run, being consecutive, are consecutive in ``packed``.
    ``per_taxon`` (int64, shape ``(n_taxa,)``) counts the cells labelled with each taxon.
    """

    packed: np.ndarray
    occupied: np.ndarray
    rank: np.ndarray
    per_taxon: np.ndarray


@dataclass
class Kraken2Index:
    """A Kraken 2 database opened in place; answers the calls the classifier makes of an index.

    ``capacity`` is the table's cell count; ``stored`` the minimizers it holds (its header's size),
    which is :attr:`size`: the numbers :meth:`lookup` returns are ranks of occupied cells (0 to
    ``stored - 1``, one per distinct minimizer). The :class:`CompactTable` behind the lookups is
    opened on first use (:func:`open_compact_table`), so a job that only reads the taxonomy never
    reads the table.
    """

    folder: Path
    spec: Kraken2Spec
    taxonomy: Taxonomy
    options: Kraken2Options
    capacity: int
    value_bits: int
    stored: int
    manifest: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path | None = None
    _table: CompactTable | None = None

    @property
    def size(self) -> int:
        """Distinct minimizers the table holds: the numbers :meth:`lookup` returns are below it."""
        return self.stored

    @property
    def table(self) -> CompactTable:
        """The compact copy of ``hash.k2d`` (:func:`open_compact_table`), opened once."""
        if self._table is None:
            self._table = open_compact_table(self, self.cache_dir)
        return self._table

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Taxa of minimizers ``keys`` (uint64, shape ``(n,)``), as Kraken 2's classifier finds them.

        A minimizer whose hash is below the database's minimum acceptable hash value is not looked
        up (a size-capped database never stored it). Returns ``(taxa, cells)``: the internal taxon
        index of each key (-1 when the table does not hold it) and the rank of the occupied cell it
        was found in (-1).
        """
        n = len(keys)
        taxa = np.full(n, -1, dtype=np.int32)
        where = np.full(n, -1, dtype=np.int64)
        if self.stored == 0:
            return taxa, where
        keys = np.asarray(keys, dtype=U64)
        # a few thousand keys at a time: a lookup holds ~80 bytes per key at its peak, which would
        # otherwise be the peak of a whole batch's classification
        for start in range(0, n, _LOOKUP_KEYS):
            chunk = slice(start, start + _LOOKUP_KEYS)
            self._lookup(keys[chunk], taxa[chunk], where[chunk])
        return taxa, where

    def _lookup(self, keys: np.ndarray, taxa: np.ndarray, where: np.ndarray) -> None:
        """:meth:`lookup` of ``keys``, writing into ``taxa`` and ``where`` (views of its results)."""
        table = self.table
        h = fmix64(keys)
        fingerprint = (h >> U64(32 + self.value_bits)).astype(np.uint32)
        position = (h % U64(self.capacity)).astype(np.int64)
        # the home cell: shifted to the top of its occupancy word, its bit says whether it is
        # occupied and the bits below count the occupied cells before it (its rank in the copy).
        # Every key reads its home's rank and cell (an empty one's is another cell's, or the last
        # cell for rank -1, and is not used): cheaper than setting the few empty ones aside first.
        word = position >> 6
        bits = np.take(table.occupied, word)
        upto = bits << (U64(63) - (position & 63).astype(U64))
        home = upto >= U64(1 << 63)  # an empty home cell: a miss without a probe
        if self.options.minimum_acceptable_hash_value:
            home &= h >= U64(self.options.minimum_acceptable_hash_value)
        del h
        slot = np.take(table.rank, word).astype(np.int64) + np.bitwise_count(upto) - 1
        del upto
        cell = np.take(table.packed, slot)
        hit = home & ((cell >> np.uint32(self.value_bits)) == fingerprint)
        self._found(taxa, where, hit, cell[hit], slot[hit])
        # linear probing: the others read the rest of their run, the occupied cells up to the next
        # empty one (8 on average at Kraken 2's load factor of 0.7), all keys' runs at once
        active = np.flatnonzero(home & ~hit)
        left = self._run_lengths(position[active], word[active], bits[active]) - 1
        fingerprint, slot = fingerprint[active], slot[active] + 1
        going = left > 0
        active, fingerprint, slot, left = active[going], fingerprint[going], slot[going], left[going]
        slot[slot == self.stored] = 0  # a run that reaches the table's end goes on at cell 0
        ends = np.cumsum(left)
        first = 0
        while first < len(active):  # in groups of about _RUN_CELLS cells, to bound the memory
            last = max(int(np.searchsorted(ends, ends[first] - left[first] + _RUN_CELLS, "right")), first + 1)
            self._scan_runs(
                taxa, where, active[first:last], fingerprint[first:last], slot[first:last], left[first:last]
            )
            first = last

    def _scan_runs(
        self,
        taxa: np.ndarray,
        where: np.ndarray,
        keys: np.ndarray,
        fingerprint: np.ndarray,
        slot: np.ndarray,
        left: np.ndarray,
    ) -> None:
        """Read ``left`` cells from rank ``slot`` on for each key (int64, shape (n,)) and record the
        first whose fingerprint matches, if any."""
        packed = self.table.packed
        ends = np.cumsum(left)
        slots = np.repeat(slot - (ends - left), left) + np.arange(int(ends[-1]), dtype=np.int64)
        slots[slots >= self.stored] -= self.stored
        cell = np.take(packed, slots)
        matched = np.flatnonzero((cell >> np.uint32(self.value_bits)) == np.repeat(fingerprint, left))
        if not len(matched):
            return
        owner = np.searchsorted(ends, matched, "right")
        first = np.r_[True, owner[1:] != owner[:-1]]
        matched, owner = matched[first], owner[first]
        self._found(taxa, where, keys[owner], cell[matched], slots[matched])

    def _run_lengths(
        self, position: np.ndarray, word: np.ndarray, bits: np.ndarray, wrap: bool = True
    ) -> np.ndarray:
        """int64, shape of ``position``: occupied cells from each cell on up to the next empty one
        (0 for an empty cell), at most the capacity. ``word`` is ``position >> 6`` and ``bits`` its
        occupancy word; ``wrap=False`` stops a run at the table's end."""
        occupied = self.table.occupied
        shift = (position & 63).astype(U64)
        from_home = bits >> shift
        after = from_home + U64(1)
        length = np.bitwise_count(from_home & ~after).astype(np.int64)
        # all ones from the cell to its word's top: the run goes on in the following words
        more = np.flatnonzero((after << shift) == U64(0))
        following = word[more] + 1
        while len(more):
            inside = following < len(occupied)
            more, following = more[inside], following[inside]
            ones = _trailing_ones(np.take(occupied, following))
            length[more] += ones
            full = ones == 64
            more, following = more[full], following[full] + 1
        # bits past the last cell are 0, so a run stops at the table's end: it goes on at cell 0
        wraps = position + length == self.capacity
        if wrap and wraps.any():
            zero = np.zeros(1, np.int64)
            length[wraps] += int(self._run_lengths(zero, zero, occupied[:1], wrap=False)[0])
        return np.minimum(length, self.capacity)

    def _taxa(self, cells: np.ndarray) -> np.ndarray:
        """int32, shape of ``cells`` (occupied uint32 cells): the internal taxon index each labels."""
        return (cells & np.uint32((1 << self.value_bits) - 1)).astype(np.int32) - 1

    def _found(
        self, taxa: np.ndarray, where: np.ndarray, keys: np.ndarray, cells: np.ndarray, slots: np.ndarray
    ) -> None:
        """Record hits: ``keys`` (indices or a mask of the results), the cells found, their ranks."""
        taxa[keys] = self._taxa(cells)
        where[keys] = slots

    def taxa_of_cells(self, cell_numbers: np.ndarray) -> np.ndarray:
        """Internal taxon index of the minimizers of these occupied cells (ranks, as :meth:`lookup`
        returns them)."""
        return self._taxa(np.take(self.table.packed, np.asarray(cell_numbers, dtype=np.int64)))

    @property
    def minimizers_per_taxon(self) -> np.ndarray:
        """int64 (n_taxa,): minimizers the table labels with each taxon (counted by the pass that
        writes the compact copy)."""
        return self.table.per_taxon


def _trailing_ones(words: np.ndarray) -> np.ndarray:
    """int64, shape of ``words`` (uint64): the count of consecutive 1 bits from each word's lowest."""
    return np.bitwise_count(words & ~(words + U64(1))).astype(np.int64)


def _cache_key(folder: Path) -> str:
    """Names a database's cached copy: its path, and the size and modification time of its table."""
    stat = (folder / "hash.k2d").stat()
    text = f"{folder.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    """Where compact copies of Kraken 2 databases are cached: ``$RAPIDRELEASE_CACHE``, else
    ``.rapidrelease_cache`` in the working directory (a workflow's run folder); never the database's
    own folder."""
    return Path(os.environ.get(_CACHE_ENV) or Path.cwd() / ".rapidrelease_cache")


def _compact_layout(index: Kraken2Index) -> dict[str, tuple[int, str]]:
    """The compact copy's arrays: name → (length, little-endian dtype)."""
    words = -(-index.capacity // 64)
    rank = np.dtype(cell_dtype(index.stored)).newbyteorder("<").str
    return {"packed": (index.stored, "<u4"), "occupied": (words, "<u8"), "rank": (words, rank)}


def _compact_about(index: Kraken2Index) -> dict[str, int]:
    """What ``compact.json`` says of a copy of this table: a copy saying anything else is rebuilt."""
    lengths = {name: length for name, (length, _) in _compact_layout(index).items()}
    return {"version": _COMPACT_VERSION, **lengths, "value_bits": index.value_bits}


def _compact_pass(index: Kraken2Index, keep: Callable[[dict[str, np.ndarray]], None]) -> np.ndarray:
    """Read ``hash.k2d`` once, :data:`_SCAN_CELLS` cells at a time (read, not mapped, so the table
    never counts in the process's memory), handing ``keep`` each step's ``packed``, ``occupied`` and
    ``rank``; return the per-taxon counts (int64, shape ``(n_taxa,)``). A cell labelled with a taxon
    ``taxo.k2d`` lacks, or a table holding another number of minimizers than its header says, is a
    ConfigError."""
    path = index.folder / "hash.k2d"
    n_taxa = len(index.taxonomy)
    value_mask = np.uint32((1 << index.value_bits) - 1)
    rank_dtype = _compact_layout(index)["rank"][1]
    counts = np.zeros(n_taxa + 1, dtype=np.int64)
    before = 0
    with open(path, "rb") as table:
        table.seek(_HASH_HEADER_BYTES)
        for start in range(0, index.capacity, _SCAN_CELLS):
            want = min(_SCAN_CELLS, index.capacity - start)
            cells = np.fromfile(table, dtype="<u4", count=want)
            if len(cells) != want:
                raise ConfigError(f"{path}: ends before its capacity of {index.capacity} cells.")
            values = cells & value_mask
            top = int(values.max())
            if top > n_taxa:
                raise ConfigError(
                    f"{path}: a cell labels taxon {top}, which {index.folder / 'taxo.k2d'} does not "
                    "hold (files of different databases?)."
                )
            counts += np.bincount(values, minlength=n_taxa + 1)
            full = values != 0
            bits = np.packbits(full, bitorder="little")
            words = np.concatenate([bits, np.zeros(-len(bits) % 8, np.uint8)]).view("<u8")
            population = np.bitwise_count(words).astype(np.int64)
            rank = before + np.cumsum(population) - population
            before += int(population.sum())
            keep({"packed": cells[full], "occupied": words, "rank": rank.astype(rank_dtype)})
    if before != index.stored:
        raise ConfigError(
            f"{path}: holds {before} minimizers where its header says {index.stored} (a damaged table?)."
        )
    return counts[1:]  # value 0: empty cells


def _compact_in_memory(index: Kraken2Index) -> CompactTable:
    layout = _compact_layout(index)
    steps: dict[str, list[np.ndarray]] = {name: [np.zeros(0, dtype)] for name, (_, dtype) in layout.items()}

    def keep(arrays: dict[str, np.ndarray]) -> None:
        for name, array in arrays.items():
            steps[name].append(array)

    per_taxon = _compact_pass(index, keep)
    return CompactTable(**{name: np.concatenate(parts) for name, parts in steps.items()}, per_taxon=per_taxon)


def _read_compact(folder: Path, index: Kraken2Index) -> CompactTable | None:
    """The compact copy in ``folder`` when it is complete and of this table, else None."""
    try:
        if json.loads((folder / "compact.json").read_text()) != _compact_about(index):
            return None
        arrays = {}
        for name, (length, dtype) in _compact_layout(index).items():
            path = folder / f"{name}.bin"
            if path.stat().st_size != length * np.dtype(dtype).itemsize:
                return None
            mapped = np.memmap(path, dtype=dtype, mode="r", shape=(length,)) if length else np.zeros(0, dtype)
            arrays[name] = np.asarray(mapped)
        per_taxon = np.load(folder / "per_taxon.npy")
    except (OSError, ValueError):
        return None
    if per_taxon.shape != (len(index.taxonomy),):
        return None
    return CompactTable(**arrays, per_taxon=per_taxon)


def _write_compact(folder: Path, index: Kraken2Index) -> None:
    """Write the compact copy into a staging folder beside ``folder`` and rename it into place, so
    a reader finds a whole copy or none."""
    staging = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with ExitStack() as files:
            out = {
                name: files.enter_context(open(staging / f"{name}.bin", "wb"))
                for name in _compact_layout(index)
            }

            def keep(arrays: dict[str, np.ndarray]) -> None:
                for name, array in arrays.items():
                    array.tofile(out[name])

            np.save(staging / "per_taxon.npy", _compact_pass(index, keep))
        (staging / "compact.json").write_text(json.dumps(_compact_about(index)))
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete or stale copy of an earlier run
        try:
            staging.rename(folder)
        except OSError:
            # another process (where there are no locks) put its whole copy there first: keep it
            if _read_compact(folder, index) is None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def open_compact_table(index: Kraken2Index, cache_dir: Path | None = None) -> CompactTable:
    """The database's :class:`CompactTable`, memory-mapped from ``cache_dir`` (default
    :func:`default_cache_dir`), written there by one pass over ``hash.k2d`` the first time.

    The copy is named by the database's path and its table's size and modification time, so a
    rebuilt database gets a new one; processes that start together wait on a lock while one of them
    writes it (where the file system has no locks, each writes its own and the last rename wins:
    the copies are the same). Where the copy cannot be written at all, it is made in this process's
    memory (still smaller than the table) and stderr says why. It takes 0.75 of ``hash.k2d``'s disk.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache_dir / f"kraken2_{_cache_key(index.folder)}"
    found = _read_compact(folder, index)
    if found is not None:
        return found
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with open(folder.with_name(folder.name + ".lock"), "a") as lock:
            # released when the file is closed; a file system without locks (some network ones)
            # fails here, and the rename still keeps every copy whole
            with suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_EX)
            found = _read_compact(folder, index)
            if found is None:
                _write_compact(folder, index)
                found = _read_compact(folder, index)
    except OSError as exc:
        print(
            f"rapidrelease: cannot write the compact copy of {index.folder / 'hash.k2d'} into {cache_dir} "
            f"({exc.strerror or exc}); it is made in memory for this process.",
            file=sys.stderr,
        )
    return found if found is not None else _compact_in_memory(index)


def load_kraken2_db(folder: Path, cache_dir: Path | None = None) -> Kraken2Index:
    """Open a kraken2-build 2.1.x database folder read-only.

    Categories come from :data:`~rapidrelease.reads.taxonomy.DEFAULT_CATEGORIES` by lineage,
    overridden by :data:`CATEGORY_FILE` beside the folder (in its parent) when there is one. Any
    file that is missing, damaged or of a kind not read here is one ConfigError naming it. The
    table is read when a lookup or count first needs it (:attr:`Kraken2Index.table`).
    """
    folder = Path(folder)
    if not is_kraken2_db(folder):
        missing = [name for name in KRAKEN2_FILES if not (folder / name).is_file()]
        raise ConfigError(f"{folder}: not a Kraken 2 database (no {', '.join(missing)}).")
    options = read_options(folder / "opts.k2d")
    spec = _spec(options, folder / "opts.k2d")
    hash_path = folder / "hash.k2d"
    try:
        header = np.fromfile(hash_path, dtype="<u8", count=4)
    except OSError as exc:
        raise ConfigError(f"{hash_path}: cannot be read ({exc.strerror}).") from None
    if len(header) < 4:
        raise ConfigError(f"{hash_path}: shorter than a Kraken 2 hash table's header.")
    capacity, stored, key_bits, value_bits = (int(v) for v in header)
    if key_bits + value_bits != 32 or not 1 <= value_bits <= 31:
        raise ConfigError(f"{hash_path}: key bits {key_bits} and value bits {value_bits} do not make a cell.")
    if hash_path.stat().st_size != _HASH_HEADER_BYTES + 4 * capacity or capacity == 0:
        raise ConfigError(f"{hash_path}: its size does not match its capacity of {capacity} cells.")
    if stored > capacity:
        raise ConfigError(f"{hash_path}: its header holds {stored} minimizers in {capacity} cells.")
    overrides = folder.parent / CATEGORY_FILE
    categories = dict(DEFAULT_CATEGORIES)
    if overrides.is_file():
        categories.update(read_category_overrides(overrides))
    taxonomy = read_kraken2_taxonomy(folder / "taxo.k2d", categories)
    manifest = {
        "format": "kraken2",
        "folder": str(folder),
        "options": options.as_dict(),
        "minimizer": spec.as_dict(),
        "hash_table": {
            "capacity": capacity,
            "size": stored,
            "key_bits": key_bits,
            "value_bits": value_bits,
            "bytes": hash_path.stat().st_size,
        },
        "counts": {"cells": capacity, "minimizers": stored, "taxa": len(taxonomy)},
    }
    return Kraken2Index(
        folder=folder,
        spec=spec,
        taxonomy=taxonomy,
        options=options,
        capacity=capacity,
        value_bits=value_bits,
        stored=stored,
        manifest=manifest,
        cache_dir=cache_dir,
    )

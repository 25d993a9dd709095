"""A Kraken 2 database as kraken2-build 2.1.x writes it, read in place: memory-mapped, read-only.

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
Kraken 2's read by read. A cell number identifies a distinct minimizer, so distinct minimizers and
breadth per taxon work on a Kraken 2 database too; the minimizers a database holds per taxon take
one pass over its table, cached outside the database folder (:func:`minimizers_per_taxon`).

Release categories (host, vector, bacteria, …) come from the database's own taxonomy by lineage:
:data:`~rapidrelease.reads.taxonomy.DEFAULT_CATEGORIES` on NCBI taxids, overridden by a site's
table (:func:`read_category_overrides`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rapidrelease.config.vocabulary import CATEGORIES
from rapidrelease.errors import ConfigError
from rapidrelease.reads.index import fmix64
from rapidrelease.reads.kmers import MinimizerSpec
from rapidrelease.reads.taxonomy import DEFAULT_CATEGORIES, Taxonomy

if TYPE_CHECKING:
    from rapidrelease.records import FileRef

__all__ = [
    "CATEGORY_FILE",
    "KRAKEN2_FILES",
    "Kraken2Index",
    "Kraken2Options",
    "Kraken2Spec",
    "index_file_refs",
    "is_kraken2_db",
    "load_kraken2_db",
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
_SCAN_CELLS = 1 << 24  # cells per step of the one pass that counts minimizers per taxon (64 MB)
_CACHE_ENV = "RAPIDRELEASE_CACHE"
_TAIL_KEYS = 4096  # keys still walking below which a lookup reads whole windows of cells
_TAIL_WINDOW = 16  # cells per key and pass then: 64 bytes, a cache line (64 cells measured 15 % slower)

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


@dataclass
class Kraken2Index:
    """A Kraken 2 database opened in place; answers the calls the classifier makes of an index.

    ``cells`` is the memory-mapped uint32 table (``capacity`` cells); ``size`` is the capacity, and
    a cell number (:meth:`lookup`) identifies a distinct minimizer, as with rapidrelease's index.
    """

    folder: Path
    spec: Kraken2Spec
    taxonomy: Taxonomy
    options: Kraken2Options
    cells: np.ndarray
    value_bits: int
    stored: int  # minimizers the table holds (its header's size)
    manifest: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path | None = None
    _per_taxon: np.ndarray | None = None

    @property
    def size(self) -> int:
        """Cells of the table (its capacity)."""
        return len(self.cells)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Taxa of minimizers ``keys`` (uint64, shape ``(n,)``), as Kraken 2's classifier finds them.

        A minimizer whose hash is below the database's minimum acceptable hash value is not looked
        up (a size-capped database never stored it). Returns ``(taxa, cells)``: the internal taxon
        index of each key (-1 when the table does not hold it) and the cell it was found in (-1).
        """
        n = len(keys)
        taxa = np.full(n, -1, dtype=np.int32)
        where = np.full(n, -1, dtype=np.int64)
        if n == 0:
            return taxa, where
        h = fmix64(np.asarray(keys, dtype=U64))
        active = np.arange(n, dtype=np.int64)
        if self.options.minimum_acceptable_hash_value:
            keep = h >= U64(self.options.minimum_acceptable_hash_value)
            active, h = active[keep], h[keep]
        capacity = U64(len(self.cells))
        fingerprint = (h >> U64(32 + self.value_bits)).astype(np.uint32)
        position = (h % capacity).astype(np.int64)
        del h
        value_mask = np.uint32((1 << self.value_bits) - 1)
        cells = self.cells
        size = len(cells)
        # linear probing, every key one cell per pass while many keys are walking: at Kraken 2's
        # load factor (0.7) most end within a few cells. The few in long clusters then walk
        # :data:`_TAIL_WINDOW` cells a pass, so a batch ends in a few more passes, not ~100.
        # (Windows from the start measured 2-3x slower: 2-D gathers cost more than the passes.)
        walked = 0
        while len(active) > _TAIL_KEYS and walked < size:
            cell = cells[position]
            value = cell & value_mask
            hit = (value != 0) & ((cell >> np.uint32(self.value_bits)) == fingerprint)
            if hit.any():
                self._found(taxa, where, active[hit], value[hit], position[hit])
            going = (value != 0) & ~hit
            active, fingerprint, position = active[going], fingerprint[going], position[going] + 1
            position[position == size] = 0
            walked += 1
        steps = np.arange(_TAIL_WINDOW, dtype=np.int64)
        while len(active) and walked < size:  # only a table without an empty cell is walked round
            spots = position[:, None] + steps
            spots[spots >= size] -= size
            cell = cells[spots]
            value = cell & value_mask
            hit = (value != 0) & ((cell >> np.uint32(self.value_bits)) == fingerprint[:, None])
            stop = hit | (value == 0)
            first = np.argmax(stop, axis=1)
            rows = np.arange(len(active))
            ended = stop[rows, first]
            found = ended & hit[rows, first]
            if found.any():
                self._found(taxa, where, active[found], value[rows, first][found], spots[rows, first][found])
            going = ~ended
            active, fingerprint = active[going], fingerprint[going]
            position = position[going] + _TAIL_WINDOW
            position[position >= size] -= size
            walked += _TAIL_WINDOW
        return taxa, where

    def _found(
        self, taxa: np.ndarray, where: np.ndarray, keys: np.ndarray, values: np.ndarray, cells: np.ndarray
    ) -> None:
        """Record hits: key numbers, their cells' taxon values (internal ids) and cell numbers."""
        labels = values.astype(np.int32)
        if int(labels.max()) > len(self.taxonomy):
            raise ConfigError(
                f"{self.folder / 'hash.k2d'}: a cell labels taxon {int(labels.max())}, which "
                f"{self.folder / 'taxo.k2d'} does not hold (files of different databases?)."
            )
        taxa[keys] = labels - 1
        where[keys] = cells

    def taxa_of_cells(self, cell_numbers: np.ndarray) -> np.ndarray:
        """Internal taxon index of the minimizers in these cells (numbers as :meth:`lookup` returns)."""
        value = self.cells[np.asarray(cell_numbers, dtype=np.int64)] & np.uint32((1 << self.value_bits) - 1)
        return value.astype(np.int32) - 1

    @property
    def minimizers_per_taxon(self) -> np.ndarray:
        """int64 (n_taxa,): minimizers the table labels with each taxon; one pass over the table,
        cached (see :func:`minimizers_per_taxon`)."""
        if self._per_taxon is None:
            self._per_taxon = minimizers_per_taxon(self, self.cache_dir)
        return self._per_taxon


def _cache_key(folder: Path) -> str:
    """Names a database's cached counts: its path, and the size and modification time of its table."""
    stat = (folder / "hash.k2d").stat()
    text = f"{folder.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    """Where counts of Kraken 2 databases are cached: ``$RAPIDRELEASE_CACHE``, else ``.rapidrelease_cache``
    in the working directory (a workflow's run folder); never the database's own folder."""
    return Path(os.environ.get(_CACHE_ENV) or Path.cwd() / ".rapidrelease_cache")


def minimizers_per_taxon(index: Kraken2Index, cache_dir: Path | None = None) -> np.ndarray:
    """int64 (n_taxa,): how many table cells carry each taxon, counted in one pass over the table.

    The pass reads the whole table (seconds per GB), so its result is kept in ``cache_dir``
    (default :func:`default_cache_dir`) under a name made of the database's path, table size and
    modification time, and read back by later processes; a cache that cannot be written is skipped.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    n_taxa = len(index.taxonomy)
    cache = cache_dir / f"kraken2_{_cache_key(index.folder)}_minimizers_per_taxon.npy"
    if cache.is_file():
        try:
            counts = np.load(cache)
            if counts.shape == (n_taxa,):
                return counts
        except (OSError, ValueError):
            pass
    counts = np.zeros(n_taxa + 1, dtype=np.int64)
    value_mask = np.uint32((1 << index.value_bits) - 1)
    for start in range(0, index.size, _SCAN_CELLS):
        values = index.cells[start : start + _SCAN_CELLS] & value_mask
        counts += np.bincount(values, minlength=n_taxa + 1)[: n_taxa + 1]
    counts = counts[1:]  # value 0: empty cells
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = cache.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(staging, counts)
        staging.replace(cache)
    except OSError:
        pass
    return counts


def load_kraken2_db(folder: Path, cache_dir: Path | None = None) -> Kraken2Index:
    """Open a kraken2-build 2.1.x database folder read-only, its table memory-mapped.

    Categories come from :data:`~rapidrelease.reads.taxonomy.DEFAULT_CATEGORIES` by lineage,
    overridden by :data:`CATEGORY_FILE` beside the folder (in its parent) when there is one. Any
    file that is missing, damaged or of a kind not read here is one ConfigError naming it.
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
    cells = np.asarray(
        np.memmap(hash_path, dtype="<u4", mode="r", offset=_HASH_HEADER_BYTES, shape=(capacity,))
    )
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
        cells=cells,
        value_bits=value_bits,
        stored=stored,
        manifest=manifest,
        cache_dir=cache_dir,
    )

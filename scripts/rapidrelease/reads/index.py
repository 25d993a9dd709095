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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rapidrelease import __version__
from rapidrelease.errors import ConfigError
from rapidrelease.outputs import sha256_file, write_json
from rapidrelease.reads.kmers import ENCODE, KRAKEN2_DEFAULTS, MinimizerSpec, kmer_minimizers

__all__ = [
    "BUCKET_LOAD",
    "INDEX_FORMAT",
    "KmerIndex",
    "build_index",
    "dust_mask",
    "fmix64",
    "load_index",
]

INDEX_FORMAT = 1
BUCKET_LOAD = 16
"""Mean minimizers per bucket: 0.25 byte of offsets per minimizer, and about six search steps."""
_SENTINEL = np.uint32(0xFFFFFFFF)  # after the last cell, so a search that ends past it reads in bounds
_KRAKEN_TAXID = re.compile(r"\|kraken:taxid\|(\d+)")
_SEGMENT_BASES = 1 << 22  # minimizers of long sequences are computed 4 Mb at a time (bounded memory)

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
    taxonomy: Any
    cells: (
        np.ndarray
    )  # uint32 (n_minimizers + 1,): fingerprint << value_bits | label, sorted per bucket; sentinel
    offsets: np.ndarray  # uint32 (n_buckets + 1,): bucket b holds cells[offsets[b]:offsets[b + 1]]
    labels: np.ndarray  # int32 (n_labels,): internal taxon index of each label
    value_bits: int
    search_steps: int
    minimizers_per_taxon: np.ndarray  # int64 (n_taxa,): minimizers whose LCA is each taxon
    manifest: dict[str, Any] = field(default_factory=dict)

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
        if len(keys) == 0:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
        buckets, fingerprints = _home(keys, self.n_buckets, self.value_bits)
        lo = self.offsets[buckets].astype(np.int32 if len(self.cells) < 2**31 else np.int64)
        end = self.offsets[buckets + 1].astype(lo.dtype)
        hi = end.copy()
        target = fingerprints << np.uint32(self.value_bits)  # the smallest cell with this fingerprint
        cells = self.cells
        for _ in range(self.search_steps):  # lower bound of target within each bucket
            middle = (lo + hi) >> 1
            below = cells[middle] < target
            lo = np.where(below, middle + 1, lo)
            hi = np.where(below, hi, middle)
        found_cells = cells[lo]
        found = (lo < end) & ((found_cells >> np.uint32(self.value_bits)) == fingerprints)
        label = (found_cells & np.uint32((1 << self.value_bits) - 1)).astype(np.int64)
        taxa = np.where(found, self.labels[np.minimum(label, len(self.labels) - 1)], -1).astype(np.int32)
        return taxa, np.where(found, lo, -1)

    def taxa_of_cells(self, cell_numbers: np.ndarray) -> np.ndarray:
        """Internal taxon index of the minimizers in these cells (numbers as :meth:`lookup` returns)."""
        label = self.cells[cell_numbers] & np.uint32((1 << self.value_bits) - 1)
        return self.labels[label.astype(np.int64)]


def _home(keys: np.ndarray, n_buckets: int, value_bits: int) -> tuple[np.ndarray, np.ndarray]:
    h = fmix64(keys)
    buckets = ((h & U64(0xFFFFFFFF)) * U64(n_buckets)) >> U64(32)
    fingerprints = (h >> U64(32 + value_bits)).astype(np.uint32)
    return buckets.astype(np.int64), fingerprints


def _layout_table(
    keys: np.ndarray, taxa: np.ndarray, taxonomy: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, np.ndarray]:
    """Cells, offsets, labels, value bits and search steps for distinct ``keys`` labelled ``taxa``.

    Also returns the taxa after collisions are merged (one per cell), for per-taxon counts.
    """
    n_buckets = max(1, int(np.ceil(len(keys) / BUCKET_LOAD)))
    used = np.unique(taxa)
    # the LCA of colliding minimizers may be a taxon no minimizer had: leave room for it in the labels
    value_bits = max(1, int(2 * len(used)).bit_length())
    if value_bits > 16:
        raise ConfigError(f"the index would label {len(used)} taxa, which leaves too few fingerprint bits.")
    buckets, fingerprints = _home(keys, n_buckets, value_bits)
    order = np.lexsort((fingerprints, buckets))
    buckets, fingerprints, taxa = buckets[order], fingerprints[order], taxa[order].astype(np.int64)
    # minimizers with the same bucket and fingerprint are indistinguishable: one cell, labelled by LCA
    same = np.zeros(len(keys), dtype=bool)
    same[1:] = (buckets[1:] == buckets[:-1]) & (fingerprints[1:] == fingerprints[:-1])
    if same.any():
        first = np.flatnonzero(~same)
        group = np.cumsum(~same) - 1
        merged = taxa[first].copy()
        for j in np.flatnonzero(same):
            merged[group[j]] = int(taxonomy.lca(np.array([merged[group[j]]]), np.array([taxa[j]]))[0])
        buckets, fingerprints, taxa = buckets[first], fingerprints[first], merged
    labels, label_of = np.unique(taxa, return_inverse=True)
    cells = (fingerprints << np.uint32(value_bits)) | label_of.astype(np.uint32)
    per_bucket = np.bincount(buckets, minlength=n_buckets)
    offsets = np.zeros(n_buckets + 1, dtype=np.uint32)
    np.cumsum(per_bucket, out=offsets[1:])
    search_steps = int(per_bucket.max()).bit_length() if len(per_bucket) else 1
    cells = np.append(cells, _SENTINEL)
    return cells, offsets, labels.astype(np.int32), value_bits, search_steps, taxa


def dust_mask(seq: np.ndarray, window: int = 64, threshold: float = 20.0) -> np.ndarray:
    """Low-complexity masking in the manner of DUST (Morgulis et al. 2006): ACGT → N in dusty windows.

    A window of ``window`` bases scores Σ c_t(c_t − 1)/2 / (l − 1) over its l = window − 2 triplets
    (c_t the count of triplet t); windows placed every ``window`` / 2 bases and scoring above
    ``threshold`` (dustmasker's default level, 20) are masked whole. Homopolymers and triplet repeats
    score far above 20; random sequence about 0.5. Returns a masked copy, uint8 ASCII.
    """
    seq = np.asarray(seq, dtype=np.uint8)
    n = len(seq)
    if n < window:
        return seq.copy()
    c = ENCODE[seq].astype(np.int64)
    ok = c < 4
    triplet = (c[:-2] << 4) | (c[1:-1] << 2) | c[2:]
    valid = ok[:-2] & ok[1:-1] & ok[2:]
    step = window // 2
    per_window = window - 2
    n_windows = (n - window) // step + 1
    positions = np.arange(len(triplet))
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
    scores = (counts * (counts - 1) // 2).sum(axis=1) / max(per_window - 1, 1)
    masked = seq.copy()
    for start in np.flatnonzero(scores > threshold) * step:
        segment = masked[start : start + window]
        segment[ENCODE[segment] < 4] = ord("N")
    return masked


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


def _sequence_minimizers(seq: np.ndarray, spec: MinimizerSpec) -> np.ndarray:
    """Distinct minimizers of one reference sequence (uint64, sorted), computed segment by segment."""
    parts = []
    for start in range(0, max(len(seq) - spec.k + 1, 1), _SEGMENT_BASES):
        piece = seq[start : start + _SEGMENT_BASES + spec.k - 1]
        minimizers, ambiguous = kmer_minimizers(piece, spec)
        keep = minimizers[~ambiguous]
        if keep.size:
            change = np.empty(keep.size, dtype=bool)
            change[0] = True
            np.not_equal(keep[1:], keep[:-1], out=change[1:])
            parts.append(np.unique(keep[change]))
    if not parts:
        return np.zeros(0, dtype=U64)
    return np.unique(np.concatenate(parts))


@dataclass
class _BuildStats:
    sequences: int = 0
    bases: int = 0
    masked_bases: int = 0
    per_category_bases: dict[str, int] = field(default_factory=dict)


def build_index(
    fasta_paths: Sequence[Path],
    taxonomy_path: Path,
    out_dir: Path,
    seqid2taxid_path: Path | None = None,
    spec: MinimizerSpec = KRAKEN2_DEFAULTS,
    mask_low_complexity: bool = True,
) -> KmerIndex:
    """Build an index of the sequences in ``fasta_paths`` (FASTA, plain or gzipped).

    Each sequence's taxon comes from ``|kraken:taxid|N`` in its header or from the seqid map; the
    taxonomy is a TSV (taxid, parent_taxid, rank, name, category) or, for a path ending in
    ``nodes.dmp``, NCBI's dump with names.dmp beside it. Every distinct minimizer is labelled with the
    LCA of the taxa containing it. Writes the index folder atomically (a temporary folder renamed
    into place) and returns the loaded index.
    """
    from rapidrelease.reads.fasta import iter_fasta
    from rapidrelease.reads.taxonomy import Taxonomy

    started = time.time()
    taxonomy_path = Path(taxonomy_path)
    if taxonomy_path.name == "nodes.dmp":
        taxonomy = Taxonomy.from_ncbi(taxonomy_path, taxonomy_path.with_name("names.dmp"))
    else:
        taxonomy = Taxonomy.from_tsv(taxonomy_path)
    seqid2taxid = read_seqid2taxid(seqid2taxid_path) if seqid2taxid_path else {}
    stats = _BuildStats()
    per_taxon: dict[int, list[np.ndarray]] = {}
    for path in fasta_paths:
        for header, seq in iter_fasta(Path(path)):
            taxid = _taxid_of_header(header, seqid2taxid, Path(path))
            node = int(taxonomy.index_of([taxid])[0])
            stats.sequences += 1
            stats.bases += len(seq)
            category = taxonomy.category[node]
            stats.per_category_bases[category] = stats.per_category_bases.get(category, 0) + len(seq)
            if mask_low_complexity:
                masked = dust_mask(seq)
                stats.masked_bases += int(np.count_nonzero(masked != seq))
                seq = masked
            per_taxon.setdefault(node, []).append(_sequence_minimizers(seq, spec))
    if stats.sequences == 0:
        raise ConfigError(f"{', '.join(map(str, fasta_paths))}: no sequences to index.")
    keys, taxa = _label_with_lca(per_taxon, taxonomy)
    del per_taxon
    cells, offsets, labels, value_bits, search_steps, cell_taxa = _layout_table(keys, taxa, taxonomy)
    minimizers_per_taxon = np.bincount(cell_taxa, minlength=len(taxonomy)).astype(np.int64)
    manifest = {
        "format": INDEX_FORMAT,
        "rapidrelease_version": __version__,
        "minimizer": spec.as_dict(),
        "hash": "fmix64 (MurmurHash3 finalizer); bucket from its low 32 bits, fingerprint from its high bits",
        "bucket_load": BUCKET_LOAD,
        "buckets": len(offsets) - 1,
        "value_bits": value_bits,
        "search_steps": search_steps,
        "low_complexity_masking": "DUST window 64, score 20" if mask_low_complexity else None,
        "counts": {
            "sequences": stats.sequences,
            "bases": stats.bases,
            "masked_bases": stats.masked_bases,
            "bases_per_category": dict(sorted(stats.per_category_bases.items())),
            "minimizers": len(keys),
            "cells": len(cells) - 1,
            "labels": len(labels),
            "taxa": len(taxonomy),
            "table_bytes": int(cells.nbytes + offsets.nbytes + labels.nbytes),
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
        "build_seconds": round(time.time() - started, 2),
    }
    arrays = {
        "cells": cells,
        "offsets": offsets,
        "labels": labels,
        "minimizers_per_taxon": minimizers_per_taxon,
    }
    _write_index_folder(Path(out_dir), arrays, taxonomy, manifest)
    return load_index(Path(out_dir))


def _label_with_lca(
    per_taxon: Mapping[int, list[np.ndarray]], taxonomy: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct minimizers (sorted uint64) and, for each, the LCA of the taxa that contain it."""
    keys_parts, taxa_parts = [], []
    for node, arrays in per_taxon.items():
        keys = np.unique(np.concatenate(arrays)) if len(arrays) > 1 else arrays[0]
        keys_parts.append(keys)
        taxa_parts.append(np.full(len(keys), node, dtype=np.int32))
    all_keys = np.concatenate(keys_parts)
    all_taxa = np.concatenate(taxa_parts)
    order = np.argsort(all_keys, kind="stable")
    all_keys, all_taxa = all_keys[order], all_taxa[order]
    unique_keys, starts, counts = np.unique(all_keys, return_index=True, return_counts=True)
    labels = all_taxa[starts].copy()
    # minimizers shared by several taxa (a few percent): fold the LCA over each group's members
    shared = np.flatnonzero(counts > 1)
    for j in range(1, int(counts.max()) if counts.size else 1):
        groups = shared[counts[shared] > j]
        if groups.size == 0:
            break
        labels[groups] = taxonomy.lca(labels[groups], all_taxa[starts[groups] + j])
    return unique_keys, labels.astype(np.int64)


def _write_index_folder(
    folder: Path, arrays: Mapping[str, np.ndarray], taxonomy: Any, manifest: dict[str, Any]
) -> None:
    """Write the index under a temporary name beside ``folder``, then put it in place."""
    import shutil

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    for name, array in arrays.items():
        np.save(staging / f"{name}.npy", array)
    taxonomy.to_tsv(staging / "taxonomy.tsv")
    write_json(staging / "manifest.json", manifest)
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old)
    else:
        staging.rename(folder)


def load_index(folder: Path) -> KmerIndex:
    """Open an index folder; its arrays are memory-mapped (shared by processes, loaded lazily)."""
    from rapidrelease.reads.taxonomy import Taxonomy

    folder = Path(folder)
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
    )

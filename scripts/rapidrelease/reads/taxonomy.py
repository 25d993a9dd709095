"""The taxonomy that labels reference k-mers and scores reads, with Kraken 2's semantics.

A :class:`Taxonomy` is a rooted tree of taxa held as NumPy arrays. Nodes are numbered 0..n-1 in
breadth-first order from the root (node 0), children in ascending taxid, exactly the order in which
Kraken 2's ``NCBITaxonomy::ConvertToKrakenTaxonomy`` (``src/taxonomy.cc``) numbers them (Kraken 2
counts from 1, keeping 0 for "no taxon"). Every parent therefore has a smaller index than its
children, which is what Kraken 2's ``IsAAncestorOfB`` and ``LowestCommonAncestor`` rely on: a node
can only be an ancestor of nodes with larger indices.

Each node carries an NCBI rank word and scientific name (NCBI taxonomy dump, ``nodes.dmp`` /
``names.dmp``), and a release *category* (:data:`~rapidrelease.config.vocabulary.CATEGORIES`) that
says whether reads of the taxon are expected in a CAR-T product (host, vector, spike-in, adapter)
or a contaminant (bacteria, fungi, mycoplasma, virus). A category is assigned to a few nodes and
inherited by their descendants; the root and everything not below an assigned node is ``other``.

The LCA and ancestor kernels are vectorised over arrays of node indices (binary lifting over the
parent array, ``log2(max depth)`` NumPy passes), so the index build can label millions of shared
minimizers at once. A negative index stands for "no taxon" (Kraken 2's taxid 0): ``lca(-1, x) = x``.

Two file forms are read and written: a TSV (``taxid, parent_taxid, rank, name, category``; an empty
category inherits) and NCBI's ``nodes.dmp`` + ``names.dmp``, the form ``kraken2-build`` reads.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from rapidrelease.config.vocabulary import CATEGORIES
from rapidrelease.errors import ConfigError

__all__ = [
    "DEFAULT_CATEGORIES",
    "NO_TAXON",
    "RANK_CODES",
    "TSV_COLUMNS",
    "UNCLASSIFIED_RANK_CODE",
    "Taxonomy",
]

TSV_COLUMNS: tuple[str, ...] = ("taxid", "parent_taxid", "rank", "name", "category")

NO_TAXON = -1

# Kraken 2 reports.cc (KrakenReportDFS): these ranks reset the code; any other rank (or "no rank")
# below them is written as the last code plus its distance, e.g. S1 for a strain under a species.
# NCBI renamed "superkingdom" to "domain" in 2025; the Kraken 2 maintainers treat it as D
# (DerrickWood/kraken2 issue #991), so both map to D here.
RANK_CODES: Mapping[str, str] = {
    "superkingdom": "D",
    "domain": "D",
    "kingdom": "K",
    "phylum": "P",
    "class": "C",
    "order": "O",
    "family": "F",
    "genus": "G",
    "species": "S",
}
UNCLASSIFIED_RANK_CODE = "U"

# Which NCBI taxa carry a category in the default panel, and in from_ncbi() unless told otherwise.
# Every descendant inherits; a more specific assignment (phiX under Viruses) wins.
DEFAULT_CATEGORIES: Mapping[int, str] = {
    9606: "host",  # Homo sapiens
    2: "bacteria",  # Bacteria
    31969: "mycoplasma",  # Mollicutes: Mycoplasma, Acholeplasma, Spiroplasma, Ureaplasma
    4751: "fungi",  # Fungi
    10239: "virus",  # Viruses
    10847: "spike_in",  # phiX174, Illumina's run control
    10710: "spike_in",  # phage lambda, a DNA spike-in and internal control
    29278: "vector",  # vectors (cloning, expression, packaging plasmids)
    32630: "adapter",  # synthetic construct: adapter and primer oligonucleotides
}

# Columns 5-13 of nodes.dmp that this taxonomy does not hold: division 8 (Unassigned), genetic code 1.
_NODES_DMP_TAIL = ("", "8", "0", "1", "0", "0", "0", "0", "0", "")


@dataclass(frozen=True, slots=True)
class _Row:
    """One taxon as read from a file, with the line it came from (for error messages)."""

    taxid: int
    parent_taxid: int
    rank: str
    name: str
    category: str
    line: int


class Taxonomy:
    """A rooted taxonomy in breadth-first node order (Kraken 2's internal order).

    Attributes (``n`` nodes; node 0 is the root; ``parent[i] < i`` for every ``i > 0``):

    - ``taxid``: int64 ``(n,)`` external (NCBI) taxid of each node.
    - ``parent``: int32 ``(n,)`` parent node index; ``parent[0] == 0``.
    - ``depth``: int16 ``(n,)`` edges from the root (root 0).
    - ``rank``: NCBI rank word per node ("superkingdom"/"domain", "phylum", …, "species", "strain",
      "no rank").
    - ``name``: scientific name per node.
    - ``category``: resolved category per node: its own, else its nearest ancestor's, else ``other``.
    - ``assigned_category``: the category given to the node itself, ``""`` where inherited.
    - ``source``: the file (or folder) it was read from, for messages.

    Build one with :meth:`from_tsv`, :meth:`from_ncbi` or :meth:`from_rows`; the constructor takes
    arrays that are already validated and in breadth-first order.
    """

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside; equality is by content

    def __init__(
        self,
        taxid: np.ndarray,
        parent: np.ndarray,
        rank: Sequence[str],
        name: Sequence[str],
        assigned_category: Sequence[str],
        source: str = "<taxonomy>",
    ) -> None:
        self.taxid = np.asarray(taxid, dtype=np.int64)
        self.parent = np.asarray(parent, dtype=np.int32)
        n = len(self.taxid)
        if n == 0 or self.parent.shape != (n,) or self.parent[0] != 0:
            raise ValueError("a taxonomy needs a root at node 0 and one parent per node")
        if n > 1 and not np.all(self.parent[1:] < np.arange(1, n)):
            raise ValueError("nodes must be in breadth-first order (every parent before its children)")
        self.rank = tuple(rank)
        self.name = tuple(name)
        self.assigned_category = tuple(assigned_category)
        self.source = source
        depth = np.zeros(n, dtype=np.int16)
        category = ["other"] * n
        if self.assigned_category[0]:
            category[0] = self.assigned_category[0]
        parents = self.parent.tolist()
        for i in range(1, n):
            depth[i] = depth[parents[i]] + 1
            category[i] = self.assigned_category[i] or category[parents[i]]
        self.depth = depth
        self.category = tuple(category)
        self._rank_codes = _rank_codes(parents, self.rank)
        self._sorted_taxid_order = np.argsort(self.taxid, kind="stable").astype(np.int32)
        self._sorted_taxids = self.taxid[self._sorted_taxid_order]
        self._jumps: list[np.ndarray] | None = None
        self._preorder_rank: np.ndarray | None = None

    # ------------------------------------------------------------------ basics

    def __len__(self) -> int:
        return len(self.taxid)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Taxonomy):
            return NotImplemented
        return (
            np.array_equal(self.taxid, other.taxid)
            and np.array_equal(self.parent, other.parent)
            and self.rank == other.rank
            and self.name == other.name
            and self.assigned_category == other.assigned_category
        )

    def __repr__(self) -> str:
        return f"Taxonomy({len(self)} taxa from {self.source})"

    @property
    def root(self) -> int:
        """The root's node index (always 0)."""
        return 0

    def index_of(self, taxids: ArrayLike, where: str | None = None) -> np.ndarray:
        """Node indices (int32, the shape of ``taxids``) of external taxids.

        Raises ConfigError naming the first unknown taxid; ``where`` (e.g. ``"panel.tsv line 7"``)
        replaces the taxonomy's source at the start of that message.
        """
        wanted = np.asarray(taxids, dtype=np.int64)
        pos = np.searchsorted(self._sorted_taxids, wanted)
        pos_clipped = np.minimum(pos, len(self._sorted_taxids) - 1)
        found = self._sorted_taxids[pos_clipped] == wanted
        if not np.all(found):
            first = int(wanted.reshape(-1)[np.flatnonzero(~found.reshape(-1))[0]])
            raise ConfigError(f"{where or self.source}: taxid {first} is not in the taxonomy {self.source}.")
        return self._sorted_taxid_order[pos_clipped].astype(np.int32)

    def __contains__(self, taxid: object) -> bool:
        if not isinstance(taxid, int | np.integer):
            return False
        pos = int(np.searchsorted(self._sorted_taxids, taxid))
        return pos < len(self._sorted_taxids) and int(self._sorted_taxids[pos]) == int(taxid)

    def path_to_root(self, i: int) -> list[int]:
        """Node indices from ``i`` up to the root, both included (``[i, parent[i], …, 0]``)."""
        self._check_index(i)
        path = [int(i)]
        while path[-1] != 0:
            path.append(int(self.parent[path[-1]]))
        return path

    def lineage(self, i: int) -> list[tuple[int, str, str]]:
        """``(taxid, rank, name)`` from the root down to node ``i``, for people and reports."""
        return [(int(self.taxid[j]), self.rank[j], self.name[j]) for j in reversed(self.path_to_root(i))]

    def rank_code(self, i: int) -> str:
        """Kraken 2 report rank code of node ``i``: R, D, K, P, C, O, F, G, S, or one with a depth.

        Follows Kraken 2 ``src/reports.cc`` (``KrakenReportDFS``): the walk from the root starts at
        code R with depth -1; a node of a coded rank (:data:`RANK_CODES`) sets the code and depth 0,
        any other node adds 1 to the depth; the code is written with the depth when it is not 0. So
        the root is R, "cellular organisms" R1, a strain under a species S1, a "no rank" clade under
        a genus G1. Unclassified reads are :data:`UNCLASSIFIED_RANK_CODE` (U), which is no node.
        """
        self._check_index(i)
        return self._rank_codes[int(i)]

    def category_assignments(self) -> dict[int, str]:
        """``{taxid: category}`` for the nodes that carry their own category (the TSV's non-empty cells)."""
        return {int(self.taxid[i]): c for i, c in enumerate(self.assigned_category) if c}

    def children(self, i: int) -> np.ndarray:
        """Node indices of the children of ``i`` (int32, ascending taxid, contiguous in node order)."""
        self._check_index(i)
        kids = np.flatnonzero(self.parent == i)
        return kids[kids != 0].astype(np.int32)

    def preorder(self) -> np.ndarray:
        """Node indices in depth-first preorder, children in ascending taxid (Kraken report order
        before its sort by clade count); int32 ``(n,)``."""
        rank = self._preorder()
        order = np.empty(len(self), dtype=np.int32)
        order[rank] = np.arange(len(self), dtype=np.int32)
        return order

    # ------------------------------------------------------------------ vectorised kernels

    def clade_sums(self, values: ArrayLike) -> np.ndarray:
        """Per node, the sum of ``values`` (one per node, shape ``(n,)`` or ``(n, m)``) over its clade.

        Level by level from the deepest, so the cost is a few NumPy passes, not a loop over nodes.
        """
        sums = np.array(values, copy=True)
        if sums.shape[:1] != (len(self),):
            raise ValueError(f"clade_sums needs one value per node ({len(self)}), got {sums.shape}")
        for d in range(int(self.depth.max()), 0, -1):
            level = np.flatnonzero(self.depth == d)
            np.add.at(sums, self.parent[level], sums[level])
        return sums

    def lca(self, a: ArrayLike, b: ArrayLike) -> np.ndarray:
        """Lowest common ancestor of node indices ``a`` and ``b`` (shapes broadcast), int32.

        Kraken 2 ``Taxonomy::LowestCommonAncestor``: ``lca(x, x) = x``, ``lca(root, x) = root``, and a
        negative index (no taxon, Kraken's 0) yields the other argument.
        """
        a_arr, b_arr = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        a_arr = a_arr.astype(np.int32)  # broadcast views are read-only; these copies are ours
        b_arr = b_arr.astype(np.int32)
        none_a = a_arr < 0
        none_b = b_arr < 0
        self._check_indices(a_arr[~none_a])
        self._check_indices(b_arr[~none_b])
        x = np.where(none_a, np.where(none_b, 0, b_arr), a_arr)
        y = np.where(none_b, x, b_arr)
        out = self._lca_nodes(x, y)
        out[none_a & none_b] = NO_TAXON
        return out

    def lca_of_groups(self, values: ArrayLike, group_starts: ArrayLike) -> np.ndarray:
        """LCA of each group of node indices, int32 ``(g,)``; for labelling shared minimizers.

        ``values`` (``(m,)``) holds the groups one after another; ``group_starts`` (``(g,)``,
        strictly increasing, first 0, all < m) is where each begins (as for ``np.ufunc.reduceat``).
        The LCA of a set is the LCA of its members with the smallest and largest preorder rank (the
        subtree of that LCA spans a contiguous preorder interval holding both, hence all members), so
        one min/max ``reduceat`` and one :meth:`lca` call do every group. Negative values (no taxon)
        are ignored; a group of them only is ``NO_TAXON``.
        """
        vals = np.asarray(values, dtype=np.int64)
        starts = np.asarray(group_starts, dtype=np.int64)
        if vals.ndim != 1 or starts.ndim != 1:
            raise ValueError("values and group_starts must be one-dimensional")
        if len(starts) == 0:
            return np.zeros(0, dtype=np.int32)
        if starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= len(vals):
            raise ValueError("group_starts must start at 0, increase strictly and stay below len(values)")
        present = vals >= 0
        self._check_indices(vals[present])
        pre = self._preorder()
        big = np.int64(len(self))
        ranks_lo = np.where(present, pre[np.where(present, vals, 0)], big)
        ranks_hi = np.where(present, ranks_lo, -1)
        lo = np.minimum.reduceat(ranks_lo, starts)
        hi = np.maximum.reduceat(ranks_hi, starts)
        empty = hi < 0
        order = self.preorder()
        first = order[np.where(empty, 0, lo)]
        last = order[np.where(empty, 0, hi)]
        out = self._lca_nodes(first.astype(np.int32), last.astype(np.int32))
        out[empty] = NO_TAXON
        return out

    def is_ancestor(self, a: ArrayLike, b: ArrayLike) -> np.ndarray:
        """Whether ``a`` is ``b`` or an ancestor of ``b`` (shapes broadcast), bool.

        Kraken 2 ``Taxonomy::IsAAncestorOfB`` (which a node is of itself); false when either is
        negative (no taxon).
        """
        a_arr, b_arr = np.broadcast_arrays(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        valid = (a_arr >= 0) & (b_arr >= 0)
        a_ok = np.where(valid, a_arr, 0).astype(np.int32)
        b_ok = np.where(valid, b_arr, 0).astype(np.int32)
        self._check_indices(a_ok)
        self._check_indices(b_ok)
        deeper = self.depth[b_ok].astype(np.int32) - self.depth[a_ok].astype(np.int32)
        climbed = self._climb(b_ok, np.maximum(deeper, 0))
        return valid & (deeper >= 0) & (climbed == a_ok)

    # ------------------------------------------------------------------ subsets and files

    def pruned(self, keep_taxids: Iterable[int]) -> Taxonomy:
        """The taxonomy of these taxa and all their ancestors (categories resolve as before).

        Raises ConfigError naming the first taxid that is not in this taxonomy.
        """
        keep_nodes = self.index_of(np.fromiter((int(t) for t in keep_taxids), dtype=np.int64))
        mark = np.zeros(len(self), dtype=bool)
        mark[0] = True
        frontier = np.unique(keep_nodes)
        while frontier.size:
            frontier = frontier[~mark[frontier]]
            mark[frontier] = True
            frontier = np.unique(self.parent[frontier])
        kept = np.flatnonzero(mark)  # ascending old index = still breadth-first, children by taxid
        new_index = np.full(len(self), -1, dtype=np.int32)
        new_index[kept] = np.arange(len(kept), dtype=np.int32)
        return Taxonomy(
            self.taxid[kept],
            new_index[self.parent[kept]],
            [self.rank[i] for i in kept],
            [self.name[i] for i in kept],
            [self.assigned_category[i] for i in kept],
            source=self.source,
        )

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[object]], source: str = "<rows>") -> Taxonomy:
        """Build from ``(taxid, parent_taxid, rank, name, category)`` tuples in any order.

        The root is the row whose parent is itself; errors name ``source`` and the row number.
        """
        parsed = []
        for number, row in enumerate(rows, start=1):
            if len(row) != len(TSV_COLUMNS):
                raise ConfigError(
                    f"{source} row {number}: expected {len(TSV_COLUMNS)} fields, got {len(row)}."
                )
            taxid = _parse_taxid(str(row[0]), source, number, "taxid")
            parent = _parse_taxid(str(row[1]), source, number, "parent_taxid")
            parsed.append(_Row(taxid, parent, str(row[2]), str(row[3]), str(row[4]), number))
        return cls._build(parsed, source, "row")

    @classmethod
    def from_tsv(cls, path: Path) -> Taxonomy:
        """Read a taxonomy TSV: a header naming ``taxid, parent_taxid, rank, name, category`` (any
        order), then one taxon per line, in any order.

        An empty category inherits the parent's. Blank lines and lines starting with ``#`` are skipped.
        Raises ConfigError naming the file and line of the first problem: a missing or unknown column,
        a wrong number of cells, a taxid that is not a positive integer, a repeated taxid, a parent
        that is absent, no root or several (the root is the row whose parent is itself), a cycle, an
        empty rank or name, an unknown category.
        """
        path = Path(path)
        rows: list[_Row] = []
        header: list[str] | None = None
        for number, line in _numbered_lines(path):
            if not line.strip() or line.startswith("#"):
                continue
            cells = [cell.strip() for cell in line.split("\t")]
            if header is None:
                header = cells
                missing = [c for c in TSV_COLUMNS if c not in header]
                unknown = [c for c in header if c not in TSV_COLUMNS]
                if missing or unknown or len(set(header)) != len(header):
                    problem = (
                        f"missing column(s) {', '.join(missing)}"
                        if missing
                        else f"unknown column(s) {', '.join(unknown)}"
                        if unknown
                        else "a repeated column"
                    )
                    raise ConfigError(
                        f"{path} line {number}: the header must name {', '.join(TSV_COLUMNS)}, "
                        f"found {problem}."
                    )
                position = [header.index(c) for c in TSV_COLUMNS]
                continue
            if len(cells) > len(header) or len(cells) < len(header) - 1:
                raise ConfigError(f"{path} line {number}: expected {len(header)} cells, found {len(cells)}.")
            cells += [""] * (len(header) - len(cells))  # editors drop a trailing empty category
            taxid_cell, parent_cell, rank, name, category = (cells[p] for p in position)
            rows.append(
                _Row(
                    _parse_taxid(taxid_cell, str(path), number, "taxid", "line"),
                    _parse_taxid(parent_cell, str(path), number, "parent_taxid", "line"),
                    rank,
                    name,
                    category,
                    number,
                )
            )
        if header is None:
            raise ConfigError(f"{path}: the file is empty (expected a header and one taxon per line).")
        return cls._build(rows, str(path), "line")

    def rows(self) -> list[tuple[int, int, str, str, str]]:
        """(taxid, parent taxid, rank, name, assigned category) per node, in node order: the TSV's rows."""
        parent_taxids = self.taxid[self.parent].tolist()
        return list(
            zip(self.taxid.tolist(), parent_taxids, self.rank, self.name, self.assigned_category, strict=True)
        )

    def to_tsv(self, path: Path) -> None:
        """Write the TSV :meth:`from_tsv` reads, in node order; only assigned categories are written."""
        lines = ["\t".join(TSV_COLUMNS)]
        lines += ["\t".join(map(str, row)) for row in self.rows()]
        _write_text_atomic(Path(path), "\n".join(lines) + "\n")

    @classmethod
    def from_ncbi(
        cls,
        nodes_dmp: Path,
        names_dmp: Path,
        categories: Mapping[int, str] | None = None,
        keep: Iterable[int] | None = None,
    ) -> Taxonomy:
        """Read NCBI's taxonomy dump (``nodes.dmp`` and ``names.dmp`` from ``taxdump.tar.gz``).

        Lines are ``field\\t|\\tfield\\t|…\\t|`` (NCBI taxdump readme); nodes.dmp gives taxid, parent
        taxid and rank, names.dmp the name whose class is ``scientific name``. With ``keep`` only those
        taxa and their ancestors are loaded: NCBI's full tree has ~2.6 M nodes, a panel needs a few
        thousand. ``categories`` (taxid → category) defaults to :data:`DEFAULT_CATEGORIES`; pass
        ``{}`` for none. Categories on taxa pruned away are ignored; a category on a taxid that is not
        in nodes.dmp at all, or an unknown category word, is a ConfigError, as are the problems
        :meth:`from_tsv` checks (named by nodes.dmp line) and a kept taxon without a scientific name.
        """
        nodes_dmp, names_dmp = Path(nodes_dmp), Path(names_dmp)
        # compact columns first: NCBI's dump has ~2.6 M lines and only the kept ones become rows
        taxids, parents, numbers = array("q"), array("q"), array("q")
        ranks: list[str] = []
        rank_words: dict[str, str] = {}
        for number, line in _numbered_lines(nodes_dmp):
            if not line.strip():
                continue
            fields = _dmp_fields(line)
            if len(fields) < 3:
                raise ConfigError(
                    f"{nodes_dmp} line {number}: expected 'taxid\\t|\\tparent\\t|\\trank\\t|…', "
                    f"found {line[:60]!r}."
                )
            taxids.append(_parse_taxid(fields[0], str(nodes_dmp), number, "taxid", "line"))
            parents.append(_parse_taxid(fields[1], str(nodes_dmp), number, "parent taxid", "line"))
            ranks.append(rank_words.setdefault(fields[2], fields[2]))
            numbers.append(number)
        position = {taxid: i for i, taxid in enumerate(taxids)}
        assignments = dict(DEFAULT_CATEGORIES if categories is None else categories)
        for taxid, category in assignments.items():
            if category not in CATEGORIES:
                raise ConfigError(
                    f"{nodes_dmp}: category {category!r} for taxid {taxid} is not one of "
                    f"{', '.join(CATEGORIES)}."
                )
            if categories is not None and taxid not in position:
                raise ConfigError(f"{nodes_dmp}: taxid {taxid} given a category is not in this nodes.dmp.")
        chosen = (
            range(len(taxids))
            if keep is None
            else _with_ancestors(taxids, parents, position, keep, nodes_dmp)
        )
        rows = [_Row(taxids[i], parents[i], ranks[i], "", "", numbers[i]) for i in chosen]
        wanted = {row.taxid for row in rows}
        names: dict[int, str] = {}
        for number, line in _numbered_lines(names_dmp):
            if not line.strip():
                continue
            fields = _dmp_fields(line)
            if len(fields) < 4:
                raise ConfigError(
                    f"{names_dmp} line {number}: expected "
                    "'taxid\\t|\\tname\\t|\\tunique name\\t|\\tclass\\t|', "
                    f"found {line[:60]!r}."
                )
            if fields[3] != "scientific name":
                continue
            taxid = _parse_taxid(fields[0], str(names_dmp), number, "taxid", "line")
            if taxid in wanted:
                if taxid in names:
                    raise ConfigError(
                        f"{names_dmp} line {number}: taxid {taxid} has a second scientific name."
                    )
                names[taxid] = fields[1]
        named = []
        for row in rows:
            if row.taxid not in names:
                raise ConfigError(
                    f"{names_dmp}: taxid {row.taxid} (nodes.dmp line {row.line}) has no scientific name."
                )
            named.append(
                _Row(
                    row.taxid,
                    row.parent_taxid,
                    row.rank,
                    names[row.taxid],
                    assignments.get(row.taxid, ""),
                    row.line,
                )
            )
        return cls._build(named, str(nodes_dmp), "line")

    def to_ncbi_dmp(self, folder: Path) -> None:
        """Write ``nodes.dmp`` and ``names.dmp`` in NCBI's layout into ``folder`` (created if needed).

        Kraken 2 (``NCBITaxonomy``, ``src/taxonomy.cc``) reads fields split on ``\\t|\\t`` after
        dropping the trailing ``\\t|``: taxid, parent, rank from nodes.dmp and the ``scientific name``
        rows of names.dmp, and it starts its tree at taxid 1, so the root must be taxid 1. nodes.dmp
        gets NCBI's 13 columns, those this taxonomy does not hold set to neutral values (division 8
        "Unassigned", genetic code 1). Categories are not part of the NCBI format: keep them with
        :meth:`category_assignments` (or the TSV) and pass them back to :meth:`from_ncbi`.
        """
        if int(self.taxid[0]) != 1:
            raise ConfigError(
                f"{self.source}: the root has taxid {int(self.taxid[0])}, but NCBI dumps and Kraken 2 "
                "need the root to be taxid 1."
            )
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        nodes, names = [], []
        for i, (t, r, n) in enumerate(zip(self.taxid.tolist(), self.rank, self.name, strict=True)):
            parent = int(self.taxid[self.parent[i]])
            nodes.append("\t|\t".join([str(t), str(parent), r, *_NODES_DMP_TAIL]) + "\t|\n")
            names.append(f"{t}\t|\t{n}\t|\t\t|\tscientific name\t|\n")
        _write_text_atomic(folder / "nodes.dmp", "".join(nodes))
        _write_text_atomic(folder / "names.dmp", "".join(names))

    # ------------------------------------------------------------------ internals

    @classmethod
    def _build(cls, rows: list[_Row], source: str, unit: str) -> Taxonomy:
        """Validate rows (any order) and lay them out breadth-first, children by ascending taxid."""
        if not rows:
            raise ConfigError(f"{source}: holds no taxa.")
        seen: dict[int, int] = {}
        roots: list[_Row] = []
        for row in rows:
            if row.taxid in seen:
                raise ConfigError(
                    f"{source} {unit} {row.line}: taxid {row.taxid} repeats the one on "
                    f"{unit} {seen[row.taxid]}."
                )
            seen[row.taxid] = row.line
            if not row.rank:
                raise ConfigError(f"{source} {unit} {row.line}: taxid {row.taxid} has an empty rank.")
            if not row.name:
                raise ConfigError(f"{source} {unit} {row.line}: taxid {row.taxid} has an empty name.")
            if any(c in row.rank + row.name for c in "\t\r\n"):
                raise ConfigError(
                    f"{source} {unit} {row.line}: the rank or name of taxid {row.taxid} "
                    "holds a tab or line break."
                )
            if row.category and row.category not in CATEGORIES:
                raise ConfigError(
                    f"{source} {unit} {row.line}: category {row.category!r} is not one of "
                    f"{', '.join(CATEGORIES)}."
                )
            if row.taxid == row.parent_taxid:
                roots.append(row)
        for row in rows:
            if row.parent_taxid not in seen:
                raise ConfigError(
                    f"{source} {unit} {row.line}: parent taxid {row.parent_taxid} of taxid {row.taxid} "
                    "is not in the taxonomy."
                )
        if not roots:
            raise ConfigError(f"{source}: no root (a row whose parent_taxid is its own taxid).")
        if len(roots) > 1:
            raise ConfigError(
                f"{source} {unit} {roots[1].line}: taxid {roots[1].taxid} is a second root "
                f"(taxid {roots[0].taxid} on {unit} {roots[0].line} is the first)."
            )
        root = roots[0]
        taxids = np.array([row.taxid for row in rows], dtype=np.int64)
        parents = np.array([row.parent_taxid for row in rows], dtype=np.int64)
        order = np.argsort(taxids, kind="stable")
        sorted_taxids = taxids[order]
        parent_row = order[np.searchsorted(sorted_taxids, parents)]
        root_row = int(order[np.searchsorted(sorted_taxids, root.taxid)])
        # children of each row, grouped by parent row and ascending taxid within a group
        child_rows = np.flatnonzero(np.arange(len(rows)) != root_row)
        child_rows = child_rows[np.lexsort((taxids[child_rows], parent_row[child_rows]))]
        group_parent = parent_row[child_rows]
        first_child = np.searchsorted(group_parent, np.arange(len(rows)), side="left")
        end_child = np.searchsorted(group_parent, np.arange(len(rows)), side="right")
        bfs = [np.array([root_row], dtype=np.int64)]
        new_parent = [np.array([0], dtype=np.int64)]
        placed = 1
        frontier = bfs[0]
        frontier_start = 0
        while frontier.size:
            counts = end_child[frontier] - first_child[frontier]
            total = int(counts.sum())
            if total == 0:
                break
            starts = np.repeat(first_child[frontier] - np.cumsum(counts) + counts, counts)
            nxt = child_rows[starts + np.arange(total)]
            bfs.append(nxt)
            new_parent.append(np.repeat(np.arange(frontier_start, frontier_start + frontier.size), counts))
            frontier_start = placed
            placed += total
            frontier = nxt
        layout = np.concatenate(bfs)
        if len(layout) != len(rows):
            reached = np.zeros(len(rows), dtype=bool)
            reached[layout] = True
            stray = min((rows[i] for i in np.flatnonzero(~reached)), key=lambda r: r.line)
            raise ConfigError(
                f"{source} {unit} {stray.line}: taxid {stray.taxid} never reaches the root through its "
                "parents (they form a cycle)."
            )
        return cls(
            taxids[layout],
            np.concatenate(new_parent).astype(np.int32),
            [rows[i].rank for i in layout],
            [rows[i].name for i in layout],
            [rows[i].category for i in layout],
            source=source,
        )

    def _check_index(self, i: int) -> None:
        if not 0 <= int(i) < len(self):
            raise IndexError(f"node index {i} is outside 0..{len(self) - 1}")

    def _check_indices(self, values: np.ndarray) -> None:
        if values.size and (int(values.min()) < 0 or int(values.max()) >= len(self)):
            raise IndexError(f"node indices must lie in 0..{len(self) - 1}")

    def _jump_table(self) -> list[np.ndarray]:
        """``jumps[j][i]`` = the ``2**j``-th ancestor of ``i`` (the root for climbs past it)."""
        if self._jumps is None:
            jumps = [self.parent.copy()]
            max_depth = int(self.depth.max()) if len(self) else 0
            while (1 << len(jumps)) <= max_depth:
                jumps.append(jumps[-1][jumps[-1]])
            self._jumps = jumps
        return self._jumps

    def _climb(self, nodes: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The ``steps``-th ancestor of each node (same shapes), by binary lifting."""
        out = nodes.astype(np.int32, copy=True)
        for j, jump in enumerate(self._jump_table()):
            bit = ((steps >> j) & 1).astype(bool)
            if bit.any():
                out = np.where(bit, jump[out], out)
        return out

    def _lca_nodes(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """LCA of valid node indices, same shape (binary lifting: level the depths, then climb both)."""
        da = self.depth[a].astype(np.int32)
        db = self.depth[b].astype(np.int32)
        deep = np.where(da >= db, a, b)
        shallow = np.where(da >= db, b, a)
        deep = self._climb(deep, np.abs(da - db))
        for jump in reversed(self._jump_table()):
            up_deep, up_shallow = jump[deep], jump[shallow]
            differ = up_deep != up_shallow
            deep = np.where(differ, up_deep, deep)
            shallow = np.where(differ, up_shallow, shallow)
        return np.where(deep == shallow, deep, self.parent[deep]).astype(np.int32)

    def _preorder(self) -> np.ndarray:
        """Preorder rank of every node (int64 ``(n,)``), computed level by level from subtree sizes."""
        if self._preorder_rank is None:
            n = len(self)
            size = np.ones(n, dtype=np.int64)
            for d in range(int(self.depth.max()), 0, -1):
                level = np.flatnonzero(self.depth == d)
                np.add.at(size, self.parent[level], size[level])
            rank = np.zeros(n, dtype=np.int64)
            # children of one parent are contiguous in node order, so an exclusive running sum of
            # sizes within each block gives each child's offset inside its parent's subtree
            kids = np.arange(1, n)
            block_start = np.r_[True, self.parent[2:] != self.parent[1:-1]] if n > 1 else np.zeros(0, bool)
            running = np.cumsum(size[kids]) - size[kids]
            offset = running - np.maximum.accumulate(np.where(block_start, running, 0))
            for d in range(1, int(self.depth.max()) + 1):
                level = np.flatnonzero(self.depth == d)
                rank[level] = rank[self.parent[level]] + 1 + offset[level - 1]
            self._preorder_rank = rank
        return self._preorder_rank


def _rank_codes(parents: list[int], ranks: Sequence[str]) -> tuple[str, ...]:
    """Kraken report rank code per node, carried down the breadth-first order (see rank_code)."""
    codes: list[str] = []
    state: list[tuple[str, int]] = []
    for i, rank in enumerate(ranks):
        code, depth = ("R", -1) if i == 0 else state[parents[i]]
        if rank in RANK_CODES:
            code, depth = RANK_CODES[rank], 0
        else:
            depth += 1
        state.append((code, depth))
        codes.append(code if depth == 0 else f"{code}{depth}")
    return tuple(codes)


def _with_ancestors(
    taxids: Sequence[int],
    parents: Sequence[int],
    position: Mapping[int, int],
    keep: Iterable[int],
    source: Path,
) -> list[int]:
    """Positions (ascending) of the ``keep`` taxa and all their ancestors; unknown taxids are errors."""
    chosen: set[int] = set()
    for taxid in keep:
        i = position.get(int(taxid))
        if i is None:
            raise ConfigError(f"{source}: taxid {int(taxid)} asked for is not in this nodes.dmp.")
        steps = 0
        while i is not None and i not in chosen and steps <= len(taxids):
            chosen.add(i)
            i = position.get(parents[i]) if parents[i] != taxids[i] else None
            steps += 1  # a cycle stops here; _build names its line
    return sorted(chosen)


def _parse_taxid(cell: str, source: str, number: int, column: str, unit: str = "row") -> int:
    text = cell.strip()
    if not text.isdigit() or int(text) <= 0 or int(text) >= 2**63:
        raise ConfigError(f"{source} {unit} {number}: {column} {cell!r} is not a positive integer.")
    return int(text)


def _dmp_fields(line: str) -> list[str]:
    """Fields of one NCBI .dmp line (``a\\t|\\tb\\t|…\\t|``)."""
    if line.endswith("\t|"):
        line = line[:-2]
    return [field.strip() for field in line.split("\t|\t")]


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines of a UTF-8 text file (BOM and CR/LF tolerated) with their 1-based numbers."""
    try:
        with open(path, encoding="utf-8-sig", newline=None) as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\n")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such taxonomy file.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a taxonomy file.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {exc.start} cannot be decoded).") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def _write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot be written ({exc.strerror or exc}).") from None

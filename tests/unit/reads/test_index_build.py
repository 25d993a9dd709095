"""The budgeted build: the in-memory build's index, byte for byte, from runs spilled to disk."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.cli import main
from rapidrelease.errors import ConfigError, IndexBuildError
from rapidrelease.reads import index_build
from rapidrelease.reads.index import _label_with_lca, _layout_table, build_index, open_taxonomy
from rapidrelease.reads.index_build import (
    build_index_within,
    parse_byte_size,
    save_run,
    table_from_runs,
)

from support.reads import PANEL

TAXONOMY = PANEL / "taxonomy.tsv"
S_AUREUS, E_COLI, HUMAN = 93061, 511145, 9606
INDEX_FILES = [
    "cells.npy",
    "labels.npy",
    "manifest.json",
    "minimizers_per_taxon.npy",
    "offsets.npy",
    "taxonomy.tsv",
]


def _random_dna(n: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


@pytest.fixture(scope="module")
def panel_fasta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 sequences of 3 taxa, 2-4 kb each, a 1-kb segment shared by all three (LCA labels) and one
    shared by the two bacteria; about 16,000 distinct minimizers."""
    rng = np.random.default_rng(16)
    everywhere, bacterial = _random_dna(1000, rng), _random_dna(1000, rng)
    records = []
    for i in range(18):
        taxid = (S_AUREUS, E_COLI, HUMAN)[i % 3]
        seq = _random_dna(int(rng.integers(2000, 4000)), rng)
        if i % 5 == 0:
            seq += everywhere
        if taxid != HUMAN and i % 4 == 1:
            seq = bacterial + seq
        records.append(f">s{i}|kraken:taxid|{taxid}\n{seq}\n")
    path = tmp_path_factory.mktemp("budget") / "panel.fa"
    path.write_text("".join(records))
    return path


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many sorted runs each merge of the build received."""
    seen: list[int] = []
    merge = index_build.merge_sorted_runs

    def counting(runs, *args, **kwargs):
        seen.append(len(runs))
        return merge(runs, *args, **kwargs)

    monkeypatch.setattr(index_build, "merge_sorted_runs", counting)
    return seen


@pytest.mark.parametrize(
    "options",
    [{}, {"host_sample": 3}, {"max_db_size": 30_000}],
    ids=["every minimizer", "host sampled", "size capped"],
)
def test_a_budget_forcing_several_runs_writes_the_in_memory_index_byte_for_byte(
    panel_fasta: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict
):
    in_memory = build_index([panel_fasta], TAXONOMY, tmp_path / "in_memory", **options)
    runs = _count_runs(monkeypatch)
    # 600 kB: a 6-kb sequence's work reserve (~400 kB) leaves room for about 5,000 minimizers a run
    budgeted = build_index_within([panel_fasta], TAXONOMY, tmp_path / "budgeted", 600_000, **options)
    assert max(runs) >= 3  # several runs were spilled and merged
    for name in INDEX_FILES:
        assert filecmp.cmp(in_memory.folder / name, budgeted.folder / name, shallow=False), name
    # nothing left beside the index: the runs and the staging folder are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budgeted", "in_memory"]


def _inverse_fmix64(h: int) -> int:
    """The minimizer whose fmix64 hash is ``h`` (the finalizer is a bijection on 64-bit values)."""
    mask = 2**64 - 1
    h ^= h >> 33
    h = (h * pow(0xC4CEB9FE1A85EC53, -1, 2**64)) & mask
    h ^= h >> 33
    h = (h * pow(0xFF51AFD7ED558CCD, -1, 2**64)) & mask
    h ^= h >> 33
    return h


def test_colliding_minimizers_share_one_cell_labelled_with_a_new_lca_as_in_memory(tmp_path: Path):
    # two minimizers of S. aureus and E. coli whose hashes differ only in a label bit: same bucket,
    # same fingerprint, so one cell labelled with their LCA, Bacteria, a taxon no minimizer had,
    # which renumbers every label; the rest are random minimizers spread over three runs, 500 of
    # them in E. coli's and the host's (labelled cellular organisms in the merge)
    taxonomy = open_taxonomy(TAXONOMY)
    aureus, coli, human = (int(t) for t in taxonomy.index_of([S_AUREUS, E_COLI, HUMAN]))
    rng = np.random.default_rng(5)
    h = int(rng.integers(0, 2**63))
    colliding = np.array([_inverse_fmix64(h), _inverse_fmix64(h ^ (1 << 33))], dtype=np.uint64)
    others = rng.integers(0, 2**62, size=6000, dtype=np.uint64)
    keys = [
        np.concatenate([colliding[:1], others[:2000]]),
        np.concatenate([colliding[1:], others[2000:4500]]),
    ]
    keys.append(others[4000:])
    taxa = [aureus, coli, human]
    per_taxon = {taxon: [np.unique(k)] for taxon, k in zip(taxa, keys, strict=True)}
    cells, offsets, labels, _, _, cell_taxa, _ = _layout_table(
        *_label_with_lca(per_taxon, taxonomy), taxonomy
    )

    runs = [
        save_run(tmp_path, f"run{i}", k, np.full(len(k), t, dtype=np.int32), taxonomy)
        for i, (k, t) in enumerate(zip(keys, taxa, strict=True))
    ]
    # 300 kB: merge steps of about 1,500 minimizers a run, layout pieces of about 2,100 (the taxonomy's
    # per-taxon tables take 123 kB)
    table, _ = table_from_runs(runs, taxonomy, 300_000, tmp_path, tmp_path / "cells.npy", tmp_path)
    written = np.load(tmp_path / "cells.npy")
    assert len(cells) == len(written) == 6002  # 6002 distinct minimizers, two in one cell, the sentinel
    assert np.array_equal(written, cells)
    assert np.array_equal(table.offsets, offsets)
    assert np.array_equal(table.labels, labels)
    bacteria = int(taxonomy.index_of([2])[0])
    assert bacteria in labels and len(labels) == 5  # 3 taxa, cellular organisms, the pair's LCA
    assert table.minimizers_per_taxon[bacteria] == 1
    assert np.array_equal(table.minimizers_per_taxon, np.bincount(cell_taxa, minlength=len(taxonomy)))


def test_a_budget_too_small_for_one_chunk_says_so_and_leaves_nothing(panel_fasta: Path, tmp_path: Path):
    with pytest.raises(IndexBuildError, match="cannot hold one chunk of the build"):
        build_index_within([panel_fasta], TAXONOMY, tmp_path / "db", 100_000)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_keeps_the_previous_index_and_leaves_no_temporary_files(
    panel_fasta: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    previous = build_index_within([panel_fasta], TAXONOMY, tmp_path / "db", 10**9)
    cells_before = (previous.folder / "cells.npy").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(index_build, "_lay_out", disk_full)
    with pytest.raises(IndexBuildError, match="No space left on device"):
        build_index_within([panel_fasta], TAXONOMY, tmp_path / "db", 10**9, max_db_size=20_000)
    assert (tmp_path / "db" / "cells.npy").read_bytes() == cells_before
    assert [p.name for p in tmp_path.iterdir()] == ["db"]


@pytest.mark.parametrize(
    ("text", "n_bytes"),
    [("12G", 12 * 2**30), ("500M", 500 * 2**20), ("1.5g", 3 * 2**29), ("64KiB", 65536), ("1000", 1000)],
)
def test_sizes_are_read_in_binary_units(text: str, n_bytes: int):
    assert parse_byte_size(text) == n_bytes


def test_a_size_that_is_no_size_is_refused():
    with pytest.raises(ConfigError, match="'12 GB please' is not a size"):
        parse_byte_size("12 GB please")


def test_the_cli_refuses_a_max_memory_below_what_the_process_holds(
    panel_fasta: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    argv = ["refdb", "build", "--fasta", str(panel_fasta), "--taxonomy", str(TAXONOMY)]
    assert main([*argv, "--out", str(tmp_path / "db"), "--max-memory", "1M"]) == 1
    assert "cannot hold one chunk of the build" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()


def test_the_cli_builds_within_max_memory_the_index_an_unlimited_build_writes(
    panel_fasta: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    argv = ["refdb", "build", "--fasta", str(panel_fasta), "--taxonomy", str(TAXONOMY)]
    assert main([*argv, "--out", str(tmp_path / "cli"), "--max-memory", "2G", "--max-db-size", "40K"]) == 0
    in_memory = build_index([panel_fasta], TAXONOMY, tmp_path / "in_memory", max_db_size=40 * 1024)
    assert in_memory.hash_threshold is not None  # 40 KiB holds fewer than the panel's minimizers
    for name in INDEX_FILES:
        assert filecmp.cmp(in_memory.folder / name, tmp_path / "cli" / name, shallow=False), name

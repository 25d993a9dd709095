"""The reference index: every minimizer found with the LCA of its taxa, and nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.errors import ConfigError
from rapidrelease.reads import index as index_module
from rapidrelease.reads.index import CELL_BYTES, _home, build_index, dust_mask, load_index, size_sampled
from rapidrelease.reads.kmers import kmer_minimizers
from rapidrelease.reads.taxonomy import Taxonomy

from support.reads import PANEL

TAXONOMY = PANEL / "taxonomy.tsv"
S_AUREUS, E_COLI, HUMAN = 93061, 511145, 9606  # taxa of the default panel's taxonomy


def _random_dna(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=n))


def _index_of(tmp_path: Path, records: list[tuple[str, int]], **options) -> object:
    tmp_path.mkdir(parents=True, exist_ok=True)
    fasta = tmp_path / "ref.fa"
    fasta.write_text(
        "".join(f">r{i}|kraken:taxid|{taxid}\n{seq}\n" for i, (seq, taxid) in enumerate(records))
    )
    return build_index([fasta], TAXONOMY, tmp_path / "db", **options)


def _taxa_of(index, seq: str) -> np.ndarray:
    minimizers, ambiguous = kmer_minimizers(np.frombuffer(seq.encode(), dtype=np.uint8), index.spec)
    taxa, _ = index.lookup(minimizers[~ambiguous])
    return taxa


def test_shared_minimizers_carry_the_lca_and_the_rest_their_own_taxon(tmp_path: Path):
    shared = _random_dna(2000, 1)
    own_a, own_b = _random_dna(3000, 2), _random_dna(3000, 3)
    index = _index_of(tmp_path, [(own_a + shared, S_AUREUS), (shared + own_b, E_COLI)])
    taxonomy = index.taxonomy
    a, b, bacteria = taxonomy.index_of([S_AUREUS, E_COLI, 2])
    assert set(_taxa_of(index, own_a[100:2900]).tolist()) == {a}
    assert set(_taxa_of(index, own_b[100:2900]).tolist()) == {b}
    # every minimizer wholly inside the shared segment belongs to both: the LCA, Bacteria
    assert set(_taxa_of(index, shared[100:1900]).tolist()) == {bacteria}
    assert index.minimizers_per_taxon[bacteria] > 0


def test_a_host_sampled_index_keeps_one_in_n_host_minimizers_and_every_shared_one(tmp_path: Path):
    # a host chromosome that carries 3 kb also found in S. aureus (as host DNA may share a k-mer with
    # a contaminant): sampling may drop host-only minimizers, never the shared ones or their LCA
    host_only, shared, bug = _random_dna(120_000, 4), _random_dna(3000, 5), _random_dna(20_000, 6)
    records = [(host_only[:60_000] + shared + host_only[60_000:], HUMAN), (bug + shared, S_AUREUS)]
    full = _index_of(tmp_path / "full", records)
    sampled = _index_of(tmp_path / "sampled", records, host_sample=4)
    human, aureus, cellular = full.taxonomy.index_of([HUMAN, S_AUREUS, 131567])
    assert set(_taxa_of(sampled, shared[100:2900]).tolist()) == {cellular}  # human and S. aureus share it
    assert set(_taxa_of(sampled, bug[100:19_900]).tolist()) == {aureus}
    assert np.array_equal(_taxa_of(sampled, bug[100:19_900]), _taxa_of(full, bug[100:19_900]))
    found = _taxa_of(sampled, host_only)
    assert set(found[found >= 0].tolist()) == {human}
    kept = sampled.minimizers_per_taxon[human] / full.minimizers_per_taxon[human]
    assert 0.22 < kept < 0.28
    assert sampled.manifest["host_sample"] == 4 and full.manifest["host_sample"] == 1
    assert sampled.manifest["counts"]["bases"] == full.manifest["counts"]["bases"]
    with pytest.raises(ConfigError, match="host_sample must be 1"):
        _index_of(tmp_path / "zero", records, host_sample=0)


def test_a_sequence_absent_from_the_index_finds_almost_nothing(small_index):
    taxa = _taxa_of(small_index, _random_dna(200_000, 9))
    # random sequence shares no 31-mer with the panel; hits are fingerprint coincidences only
    assert np.count_nonzero(taxa >= 0) <= 2


def test_every_minimizer_of_phix_is_found_as_phix(small_index):
    from rapidrelease.reads.fasta import iter_fasta

    (_, phix), *_ = list(iter_fasta(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa"))
    taxa = _taxa_of(small_index, phix.tobytes().decode())
    phix_taxon = small_index.taxonomy.index_of([10847])[0]
    assert len(taxa) > 1000 and set(taxa.tolist()) == {phix_taxon}


@pytest.mark.parametrize("slice_keys", [7, 1 << 15])
def test_a_lookup_finds_each_stored_fingerprint_in_its_own_bucket_and_nothing_else(
    small_index, slice_keys, monkeypatch
):
    # a table laid out by hand: empty buckets (the first and the last among them), buckets of every
    # size up to 31 cells (five search steps); keys searched 7 at a time and all at once
    monkeypatch.setattr(index_module, "_LOOKUP_KEYS", slice_keys)
    rng = np.random.default_rng(20)
    value_bits, n_buckets = 4, 64
    keys = rng.integers(0, 2**63, 20_000, dtype=np.int64).astype(np.uint64)
    buckets, fingerprints = _home(keys, n_buckets, value_bits)
    sizes = rng.integers(0, 32, n_buckets)
    sizes[[0, 7, 40, n_buckets - 1]] = 0
    sizes[[3, 9]] = 31
    stored: dict[tuple[int, int], int] = {}  # (bucket, fingerprint) -> label
    cells, offsets = [], [0]
    for b in range(n_buckets):
        mine = np.unique(fingerprints[buckets == b])[: sizes[b]]
        labels = rng.integers(0, 1 << value_bits, len(mine))
        stored.update({(b, int(f)): int(lab) for f, lab in zip(mine, labels, strict=True)})
        cells += sorted((int(f) << value_bits) | int(lab) for f, lab in zip(mine, labels, strict=True))
        offsets.append(len(cells))
    label_taxa = np.arange(1 << value_bits, dtype=np.int32) + 100
    index = dataclasses.replace(
        small_index,
        cells=np.array([*cells, 0xFFFFFFFF], dtype=np.uint32),
        offsets=np.array(offsets, dtype=np.uint32),
        labels=label_taxa,
        value_bits=value_bits,
        search_steps=5,
        hash_threshold=None,
    )
    taxa, found_cells = index.lookup(keys)
    for key, b, f, taxon, cell in zip(keys, buckets, fingerprints, taxa, found_cells, strict=True):
        label = stored.get((int(b), int(f)))
        if label is None:
            assert (taxon, cell) == (-1, -1), key
        else:
            assert taxon == label_taxa[label], key
            assert offsets[b] <= cell < offsets[b + 1] and index.cells[cell] >> value_bits == f, key
    assert 0 < np.count_nonzero(taxa >= 0) < len(keys)
    empty = np.isin(buckets, [0, 7, 40, n_buckets - 1])
    assert empty.any() and (taxa[empty] == -1).all()


def test_low_complexity_sequence_is_masked_before_indexing(tmp_path: Path):
    poly_a = "A" * 400
    index = _index_of(tmp_path, [(_random_dna(1000, 4) + poly_a + _random_dna(1000, 5), S_AUREUS)])
    assert index.manifest["counts"]["masked_bases"] >= 350
    assert np.all(_taxa_of(index, poly_a) < 0)
    unmasked = _index_of(
        tmp_path / "u", [(poly_a + _random_dna(200, 6), S_AUREUS)], mask_low_complexity=False
    )
    assert np.any(_taxa_of(unmasked, poly_a) >= 0)


def test_dust_scores_homopolymers_high_and_random_sequence_low():
    seq = np.frombuffer((_random_dna(640, 7) + "T" * 128 + _random_dna(640, 8)).encode(), dtype=np.uint8)
    masked = dust_mask(seq)
    assert np.all(masked[640 + 32 : 640 + 96] == ord("N"))
    assert not np.any(masked[:600] == ord("N"))


def test_building_twice_gives_the_same_index(tmp_path: Path):
    records = [(_random_dna(5000, 11), S_AUREUS), (_random_dna(5000, 12), E_COLI)]
    first = _index_of(tmp_path / "1", records)
    second = _index_of(tmp_path / "2", records)
    assert np.array_equal(first.cells, second.cells) and np.array_equal(first.offsets, second.offsets)


def test_manifest_records_inputs_and_counts(small_index, small_panel_fasta: Path):
    manifest = small_index.manifest
    assert manifest["minimizer"] == {
        "k": 35,
        "l": 31,
        "spaced_positions": 7,
        "toggle_mask": 0xE37E28C4271B5A2D,
    }
    assert manifest["counts"]["sequences"] == small_panel_fasta.read_text().count(">")
    fasta = next(i for i in manifest["inputs"] if i["role"] == "fasta")
    assert fasta["path"] == str(small_panel_fasta) and len(fasta["sha256"]) == 64
    # 4 bytes a minimizer plus half a byte of bucket offsets: less than Kraken 2's 4 / 0.7
    assert manifest["counts"]["table_bytes"] / manifest["counts"]["minimizers"] < 4.6
    reloaded = load_index(small_index.folder)
    assert reloaded.size == small_index.size


def test_bad_inputs_are_one_sentence_naming_the_file(tmp_path: Path):
    no_taxid = tmp_path / "no_taxid.fa"
    no_taxid.write_text(">contig7 some organism\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n")
    with pytest.raises(ConfigError, match=r"no_taxid\.fa: sequence 'contig7' has no taxid"):
        build_index([no_taxid], TAXONOMY, tmp_path / "db")
    unknown = tmp_path / "unknown.fa"
    unknown.write_text(">x|kraken:taxid|999999999\nACGTACGTACGTACGTACGTACGTACGTACGTACGTACGT\n")
    with pytest.raises(ConfigError, match=r"taxid 999999999 is not in the taxonomy"):
        build_index([unknown], TAXONOMY, tmp_path / "db")
    with pytest.raises(ConfigError, match=r"not a rapidrelease index \(no manifest\.json\)"):
        load_index(tmp_path)


def test_taxonomy_of_the_index_is_the_one_it_was_built_with(small_index):
    assert small_index.taxonomy == Taxonomy.from_tsv(TAXONOMY)


def test_two_builds_of_the_same_inputs_are_byte_identical(tmp_path: Path) -> None:
    # a unit's metrics.json records the index manifest's SHA-256, so a build that wrote its own
    # timing made reruns on another machine give other release.json files
    fasta = tmp_path / "ref.fa"
    fasta.write_text(f">r1|kraken:taxid|562\n{_random_dna(5000, 3)}\n")
    first = build_index([fasta], TAXONOMY, tmp_path / "db1")
    second = build_index([fasta], TAXONOMY, tmp_path / "db2")
    for name in sorted(p.name for p in (tmp_path / "db1").iterdir()):
        assert (tmp_path / "db1" / name).read_bytes() == (tmp_path / "db2" / name).read_bytes(), name
    assert first.manifest == second.manifest


def test_a_size_capped_index_holds_a_hash_chosen_quarter_and_lookups_skip_the_rest(tmp_path: Path):
    seq = _random_dna(60_000, 7)
    full = _index_of(tmp_path / "full", [(seq, S_AUREUS)])
    max_db_size = int(full.size * CELL_BYTES / 4)  # room for a quarter of the minimizers
    capped = _index_of(tmp_path / "capped", [(seq, S_AUREUS)], max_db_size=max_db_size)
    minimizers, ambiguous = kmer_minimizers(np.frombuffer(seq.encode(), dtype=np.uint8), full.spec)
    minimizers = np.unique(minimizers[~ambiguous])
    sampled = size_sampled(minimizers, capped.hash_threshold)
    assert abs(sampled.mean() - 0.25) < 0.02  # 20,000 minimizers: the sample's sd is 0.003
    assert capped.size == sampled.sum()
    assert capped.manifest["size_cap"]["minimizers_before_cap"] == len(minimizers) == full.size
    aureus = int(capped.taxonomy.index_of([S_AUREUS])[0])
    taxa, _ = capped.lookup(minimizers)
    assert (taxa[sampled] == aureus).all() and (taxa[~sampled] == -1).all()
    # the rule is the lookup's, not only the table's: a minimizer the cap leaves out is not looked up
    # even where the table holds it (so it cannot match a stored fingerprint by chance either)
    as_capped = dataclasses.replace(full, hash_threshold=capped.hash_threshold)
    taxa, cells = as_capped.lookup(minimizers)
    assert (taxa[~sampled] == -1).all() and (cells[~sampled] == -1).all()
    assert (taxa[sampled] == aureus).all()


def test_a_size_cap_that_holds_everything_keeps_everything(tmp_path: Path):
    seq = _random_dna(20_000, 8)
    index = _index_of(tmp_path, [(seq, S_AUREUS)], max_db_size=10**9)
    assert index.hash_threshold is None and index.manifest["size_cap"]["hash_threshold"] is None
    assert index.size == index.manifest["size_cap"]["minimizers_before_cap"]

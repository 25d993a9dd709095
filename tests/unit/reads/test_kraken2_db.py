"""A Kraken 2 database read in place, against kraken2 itself on the same database and reads.

The database is built by kraken2-build 2.1 from real genomes of the default panel; the reads are
simulated pairs of those genomes (a few with N bases), the real ONT lambda control (long reads) and
real human pairs. Kraken 2's own calls and kreport are the truth.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.errors import ConfigError
from rapidrelease.reads.classify import classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.index import fmix64, load_index
from rapidrelease.reads.kmers import KRAKEN2_DEFAULTS, kmer_minimizers
from rapidrelease.reads.kraken2_db import (
    CATEGORY_FILE,
    Kraken2Index,
    load_kraken2_db,
    read_options,
)
from rapidrelease.sterility.calls import ReferenceFacts
from rapidrelease.sterility.checklist import PH_EUR_MYCOPLASMA
from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

from support.kraken2 import needs_kraken2
from support.reads import HOSTILE_R1, HOSTILE_R2, ONT_LAMBDA, PANEL, read_table

pytestmark = needs_kraken2


@pytest.fixture(autouse=True)
def _cache_outside_the_checkout(tmp_path_factory, monkeypatch):
    # compact copies of the tables go to the session's temporary folder, not the working directory
    monkeypatch.setenv("RAPIDRELEASE_CACHE", str(tmp_path_factory.getbasetemp() / "rapidrelease_cache"))


@pytest.fixture(scope="module")
def k2db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.kraken2 import kraken2_database

    return kraken2_database(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """6,000 simulated pairs: S. aureus, human, phiX, the packaging plasmid and K. pneumoniae, which
    the database does not hold."""
    folder = tmp_path_factory.mktemp("k2reads")
    genomes = [
        SourceGenome.from_records(name, taxid, [seq for _, seq in iter_fasta(PANEL / "panel" / file)])
        for name, taxid, file in (
            ("sa", 93061, "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz"),
            ("hs", 9606, "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz"),
            ("phix", 10847, "phiX174_sequana_NC_001422.1.fa"),
            ("pcmv", 29278, "pCMVR8.74_lentiviral_packaging_addgene.fa"),
            ("kp", 272620, "Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz"),
        )
    ]
    write_fastq(simulate_reads(genomes, 6_000, paired=True, seed=11), folder / "r1.fq", folder / "r2.fq")
    return folder / "r1.fq", folder / "r2.fq"


def _kraken2(db: Path, reads: list[Path], out: Path, paired: bool = False) -> None:
    command = ["kraken2", "--db", str(db), "--threads", "1", "--report", str(out.with_suffix(".kreport"))]
    command += ["--output", str(out), *(["--paired"] if paired else []), *map(str, reads)]
    subprocess.run(command, check=True, capture_output=True)


def _report_without_rank_codes(path: Path) -> list[list[str]]:
    # Debian's kraken2 2.1.2 leaves the rank code empty for "no rank" ancestors (root R, cellular
    # organisms R1) and for superkingdoms (D): test_classify.py compares the rest the same way
    return [[field for j, field in enumerate(row) if j != 3] for row in read_table(path)]


def test_options_and_taxonomy_are_read_as_kraken2_build_wrote_them(k2db):
    options = read_options(k2db / "opts.k2d")
    assert (options.k, options.l, options.dna_db, options.revcom_version) == (35, 31, True, 1)
    # kraken2-build's default seed (7 spaced positions) and toggle mask are rapidrelease's defaults
    assert options.spaced_seed_mask == KRAKEN2_DEFAULTS.spaced_seed_mask
    assert options.toggle_mask == KRAKEN2_DEFAULTS.toggle_mask
    assert options.minimum_acceptable_hash_value == 0  # not size-capped
    index = load_index(k2db)  # the same entry point as a rapidrelease index
    assert isinstance(index, Kraken2Index)
    taxonomy = index.taxonomy
    assert taxonomy.taxid[0] == 1 and taxonomy.name[0] == "root"
    node = {int(t): i for i, t in enumerate(taxonomy.taxid)}
    assert taxonomy.name[node[93061]] == "Staphylococcus aureus subsp. aureus NCTC 8325"
    assert taxonomy.rank[node[1280]] == "species"
    assert taxonomy.taxid[taxonomy.parent[node[93061]]] == 46170  # the strain under its subspecies
    # release categories follow the lineage in the database's own taxonomy
    category = {taxid: taxonomy.category[node[taxid]] for taxid in (93061, 9606, 10847, 10710, 29278, 1)}
    assert category == {
        93061: "bacteria",
        9606: "host",
        10847: "spike_in",
        10710: "spike_in",
        29278: "vector",
        1: "other",
    }
    # the table header: 4 bytes a cell, every stored minimizer labelled with a taxon of the taxonomy
    stored = index.manifest["hash_table"]["size"]
    assert k2db.joinpath("hash.k2d").stat().st_size == 32 + 4 * index.capacity
    assert int(index.minimizers_per_taxon.sum()) == stored == index.size > 1_000_000
    # kraken2-build fills its table to 70 %: the compact copy lookups walk holds only those cells
    assert 0.65 < stored / index.capacity < 0.72
    assert len(index.table.packed) == stored and not np.any(index.table.packed == 0)


def test_paired_calls_and_report_equal_kraken2s(k2db, pairs, tmp_path):
    _kraken2(k2db, list(pairs), tmp_path / "k2.out", paired=True)
    classify_reads(
        load_index(k2db), *pairs, report_path=tmp_path / "rr.kreport", reads_path=tmp_path / "rr.out"
    )
    theirs, ours = read_table(tmp_path / "k2.out"), read_table(tmp_path / "rr.out")
    assert len(ours) == len(theirs) == 6_000
    assert [(r[0], r[1], r[2]) for r in ours] == [(r[0], r[1], r[2]) for r in theirs]
    calls = {r[2] for r in theirs}
    assert {"0", "9606", "10847", "29278"} <= calls  # K. pneumoniae is not in the database
    # hit lists too, but for the k-mer at an N that Kraken 2.1.2 counts unambiguous (test_classify.py)
    no_n = [i for i, row in enumerate(theirs) if "A:" not in row[4]]
    assert len(no_n) > 5_500
    assert all(ours[i] == theirs[i] for i in no_n)
    assert _report_without_rank_codes(tmp_path / "k2.kreport") == _report_without_rank_codes(
        tmp_path / "rr.kreport"
    )


def test_a_size_capped_database_skips_the_minimizers_it_never_stored(k2db, pairs, tmp_path):
    # kraken2-build --max-db-size keeps the minimizers whose hash is at least a minimum, and the
    # classifier does not look the others up: the same database with a minimum of 2^62 in its
    # options skips a quarter of the lookups in kraken2 and here alike
    capped = tmp_path / "capped"
    capped.mkdir()
    for name in ("hash.k2d", "taxo.k2d"):
        (capped / name).symlink_to(k2db / name)
    options = bytearray((k2db / "opts.k2d").read_bytes())
    options[40:48] = (1 << 62).to_bytes(8, "little")
    (capped / "opts.k2d").write_bytes(bytes(options))
    assert read_options(capped / "opts.k2d").minimum_acceptable_hash_value == 1 << 62
    _kraken2(capped, list(pairs), tmp_path / "k2.out", paired=True)
    classify_reads(load_index(capped), *pairs, reads_path=tmp_path / "rr.out")
    theirs, ours = read_table(tmp_path / "k2.out"), read_table(tmp_path / "rr.out")
    assert [(r[0], r[2]) for r in ours] == [(r[0], r[2]) for r in theirs]
    no_n = [i for i, row in enumerate(theirs) if "A:" not in row[4]]
    assert all(ours[i] == theirs[i] for i in no_n)
    # about a quarter of the k-mer hits of the whole database are gone, counted as misses
    classify_reads(load_index(k2db), *pairs, reads_path=tmp_path / "whole.out")
    share = _kmers_hit(tmp_path / "rr.out") / _kmers_hit(tmp_path / "whole.out")
    assert 0.65 < share < 0.85


def _kmers_hit(path: Path) -> int:
    """K-mers with a taxon in the hit lists of a per-read output (not 0, A or the mate border)."""
    pieces = (piece.split(":") for row in read_table(path) for piece in row[4].split())
    return sum(int(count) for taxid, count in pieces if taxid not in ("0", "A", "|"))


def test_real_long_and_short_reads_get_kraken2s_calls(k2db, shared_data, tmp_path):
    # the qcat ONT lambda control (989 reads up to tens of kb), and real human NovaSeq pairs
    for name, reads, paired in (
        ("ont", [shared_data / ONT_LAMBDA], False),
        ("hostile", [shared_data / HOSTILE_R1, shared_data / HOSTILE_R2], True),
    ):
        _kraken2(k2db, reads, tmp_path / f"{name}.k2.out", paired=paired)
        classify_reads(
            load_index(k2db),
            *reads,
            report_path=tmp_path / f"{name}.kreport",
            reads_path=tmp_path / f"{name}.out",
        )
        theirs, ours = read_table(tmp_path / f"{name}.k2.out"), read_table(tmp_path / f"{name}.out")
        assert [(r[0], r[2]) for r in ours] == [(r[0], r[2]) for r in theirs], name
        assert _report_without_rank_codes(tmp_path / f"{name}.k2.kreport") == _report_without_rank_codes(
            tmp_path / f"{name}.kreport"
        )
    lambda_calls = [r for r in read_table(tmp_path / "ont.out") if r[2] == "10710"]
    assert len(lambda_calls) >= 950


def test_counts_are_cached_beside_the_run_and_the_database_is_left_as_it_was(k2db, tmp_path, monkeypatch):
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in k2db.iterdir()}
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAPIDRELEASE_CACHE", raising=False)
    counts = load_kraken2_db(k2db).minimizers_per_taxon
    (cached,) = (tmp_path / ".rapidrelease_cache").glob("kraken2_*/per_taxon.npy")
    assert np.array_equal(np.load(cached), counts)
    # a second process reads the cache instead of the table
    np.save(cached, counts + 1)
    assert np.array_equal(load_kraken2_db(k2db).minimizers_per_taxon, counts + 1)
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in k2db.iterdir()} == before
    assert not load_kraken2_db(k2db).table.packed.flags.writeable  # mapped read-only


def test_a_site_table_overrides_a_category(k2db, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "db").symlink_to(k2db)
    (site / CATEGORY_FILE).write_text(
        "taxid\tcategory\n# lambda is our positive-control spike\n10710\tvirus\n"
    )
    taxonomy = load_kraken2_db(site / "db").taxonomy
    node = {int(t): i for i, t in enumerate(taxonomy.taxid)}
    assert taxonomy.category[node[10710]] == "virus"
    assert taxonomy.category[node[10847]] == "spike_in"
    (site / CATEGORY_FILE).write_text("10710\tcontaminant\n")
    with pytest.raises(ConfigError, match=r"rapidrelease_categories.tsv line 1: category 'contaminant'"):
        load_kraken2_db(site / "db")


def test_damaged_or_unreadable_databases_are_refused_in_one_sentence(k2db, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("opts.k2d", "taxo.k2d"):
        (bad / name).write_bytes((k2db / name).read_bytes())
    (bad / "hash.k2d").write_bytes((k2db / "hash.k2d").read_bytes()[:100_000])  # a broken-off copy
    with pytest.raises(ConfigError, match=r"hash.k2d: its size does not match its capacity of \d+ cells"):
        load_index(bad)
    options = bytearray((k2db / "opts.k2d").read_bytes())
    options[32] = 0  # a protein database (kraken2-build --protein)
    (bad / "opts.k2d").write_bytes(bytes(options))
    with pytest.raises(ConfigError, match=r"a protein \(translated-search\) Kraken 2 database"):
        load_index(bad)
    (bad / "opts.k2d").unlink()
    with pytest.raises(ConfigError, match=r"bad: not a Kraken 2 database \(no opts.k2d\)"):
        load_index(bad)


def test_a_checklist_organism_the_database_lacks_is_held_by_nothing(k2db):
    # the sterility calls read what a Kraken 2 table holds per clade: the panel's rRNA genes cover
    # M. arginini (a few 16S/23S genes) but no sequence of M. fermentans is in it, so a mycoplasma
    # checklist must say the reference holds nothing of it rather than call it absent
    facts = ReferenceFacts.from_index(load_index(k2db))
    held = {organism.name: facts.held(organism.taxid) for organism in PH_EUR_MYCOPLASMA}
    assert held["Mycoplasma fermentans"] == 0
    assert 0 < held["Mycoplasma arginini"] < 1_000
    assert facts.held(1280) > 500_000  # S. aureus: a whole genome


def _table_of(k2db: Path, folder: Path, keys: np.ndarray, capacity: int, value_bits: int = 6) -> list[int]:
    """A Kraken 2 database in ``folder`` whose table holds ``keys`` as kraken2-build inserts them
    (home cell = hash mod capacity, linear probing to the first empty cell), with k2db's options and
    taxonomy; returns the cells. Taxon values cycle through 1-20."""
    folder.mkdir()
    for name in ("opts.k2d", "taxo.k2d"):
        (folder / name).write_bytes((k2db / name).read_bytes())
    cells = [0] * capacity
    hashes = fmix64(keys.astype(np.uint64))
    for number, h in enumerate(hashes.tolist()):
        fingerprint, cell = h >> (32 + value_bits), h % capacity
        while cells[cell] and cells[cell] >> value_bits != fingerprint:
            cell = (cell + 1) % capacity
        if not cells[cell]:
            cells[cell] = fingerprint << value_bits | (1 + number % 20)
    stored = sum(1 for c in cells if c)
    header = np.array([capacity, stored, 32 - value_bits, value_bits], dtype="<u8").tobytes()
    (folder / "hash.k2d").write_bytes(header + np.array(cells, dtype="<u4").tobytes())
    return cells


def _walk(cells: list[int], key: int, value_bits: int = 6) -> tuple[int, int]:
    """Kraken 2's CompactHashTable::Get, one cell at a time: (internal taxon index, rank of the
    occupied cell) of ``key``, or (-1, -1)."""
    h = int(fmix64(np.array([key], dtype=np.uint64))[0])
    fingerprint, cell, capacity = h >> (32 + value_bits), h % len(cells), len(cells)
    for _ in range(capacity):
        if not cells[cell]:
            return -1, -1
        if cells[cell] >> value_bits == fingerprint:
            return (cells[cell] & ((1 << value_bits) - 1)) - 1, sum(1 for c in cells[:cell] if c)
        cell = (cell + 1) % capacity
    return -1, -1


@pytest.mark.parametrize(("capacity", "load"), [(1_000, 0.7), (1_000, 0.95), (4_096, 0.9), (999, 1.0)])
def test_lookups_in_the_compact_copy_walk_the_table_as_kraken2_does(k2db, tmp_path, capacity, load):
    # a small, crowded table: runs of occupied cells cross 64-cell words and, at the table's end,
    # go on at cell 0 (capacity 999 is not a multiple of 64, and 1.0 leaves no empty cell at all)
    rng = np.random.default_rng(capacity + int(100 * load))
    stored_keys = rng.integers(0, 2**62, size=int(capacity * load), dtype=np.int64)
    candidates = rng.integers(0, 2**62, size=20_000, dtype=np.int64)
    at_the_end = candidates[fmix64(candidates.astype(np.uint64)) % np.uint64(capacity) == capacity - 1]
    stored_keys[:3] = at_the_end[:3]  # inserted first: the last cell, then cells 0 and 1
    cells = _table_of(k2db, tmp_path / "db", stored_keys, capacity)
    absent = rng.integers(0, 2**62, size=3_000, dtype=np.int64)
    keys = np.concatenate([stored_keys, absent])
    index = load_kraken2_db(tmp_path / "db", cache_dir=tmp_path / "cache")
    taxa, where = index.lookup(keys.astype(np.uint64))
    expected = [_walk(cells, key) for key in keys.tolist()]
    assert list(zip(taxa.tolist(), where.tolist(), strict=True)) == expected
    found = where[where >= 0]
    assert np.array_equal(index.taxa_of_cells(found), taxa[where >= 0])
    # a run wrapping round the end was walked, and most stored keys were found
    assert cells[-1] and cells[0]
    assert (taxa[: len(stored_keys)] >= 0).mean() > 0.99
    assert index.minimizers_per_taxon.sum() == sum(1 for c in cells if c) == index.size


def test_the_compact_copy_survives_damage_a_file_system_without_locks_and_a_read_only_cache(
    k2db, tmp_path, capsys, monkeypatch
):
    phix = next(seq for _, seq in iter_fasta(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa"))
    keys = np.unique(kmer_minimizers(np.asarray(phix, dtype=np.uint8))[0])
    cache = tmp_path / "cache"
    index = load_kraken2_db(k2db, cache_dir=cache)
    taxa, _ = index.lookup(keys)
    assert (taxa >= 0).mean() > 0.99  # phiX is in the database
    (copy,) = cache.glob("kraken2_*/")
    # a copy cut short (a disk that filled up, say) is written again, not read
    with open(copy / "packed.bin", "r+b") as packed:
        packed.truncate(1_000)
    again = load_kraken2_db(k2db, cache_dir=cache)
    assert np.array_equal(again.lookup(keys)[0], taxa)
    assert (copy / "packed.bin").stat().st_size == 4 * again.size
    # a cache folder that cannot be made: the copy is made in this process's memory, the same
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be\n")
    in_memory = load_kraken2_db(k2db, cache_dir=blocked / "cache")
    assert np.array_equal(in_memory.lookup(keys)[0], taxa)
    (said,) = capsys.readouterr().err.splitlines()
    assert said.startswith(f"rapidrelease: cannot write the compact copy of {k2db / 'hash.k2d'} into")
    assert said.endswith("it is made in memory for this process.")
    for name in ("packed", "occupied", "rank", "per_taxon"):
        assert np.array_equal(getattr(in_memory.table, name), getattr(again.table, name)), name
    assert in_memory.table.packed.flags.writeable and not again.table.packed.flags.writeable

    # a file system without locks (flock fails, as on some NFS mounts): the copy is still written
    def no_locks(*_):
        raise OSError(37, "No locks available")

    monkeypatch.setattr("rapidrelease.reads.kraken2_db.fcntl.flock", no_locks)
    unlocked = load_kraken2_db(k2db, cache_dir=tmp_path / "nfs")
    assert np.array_equal(unlocked.lookup(keys)[0], taxa)
    assert not unlocked.table.packed.flags.writeable and len(list((tmp_path / "nfs").glob("kraken2_*/"))) == 1


def test_a_table_that_disagrees_with_its_header_or_its_taxonomy_is_refused_in_one_sentence(k2db, tmp_path):
    rng = np.random.default_rng(5)
    _table_of(k2db, tmp_path / "db", rng.integers(0, 2**62, size=600, dtype=np.int64), 1_000)
    table = tmp_path / "db" / "hash.k2d"
    raw = bytearray(table.read_bytes())
    raw[8:16] = (601).to_bytes(8, "little")  # the header's count of stored minimizers, one too many
    table.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match=r"hash.k2d: holds \d+ minimizers where its header says 601"):
        load_kraken2_db(tmp_path / "db", cache_dir=tmp_path / "cache").lookup(np.arange(10, dtype=np.uint64))
    # a cell labelled with a taxon taxo.k2d does not hold: a table from another database
    cells = _table_of(k2db, tmp_path / "mixed", rng.integers(0, 2**62, size=600, dtype=np.int64), 1_000, 10)
    first = next(i for i, cell in enumerate(cells) if cell)
    table = tmp_path / "mixed" / "hash.k2d"
    raw = bytearray(table.read_bytes())
    raw[32 + 4 * first : 36 + 4 * first] = (cells[first] | 1023).to_bytes(4, "little")
    table.write_bytes(bytes(raw))
    with pytest.raises(
        ConfigError, match=r"hash.k2d: a cell labels taxon 1023, which .*taxo.k2d does not hold"
    ):
        load_kraken2_db(tmp_path / "mixed", cache_dir=tmp_path / "cache").lookup(
            np.arange(10, dtype=np.uint64)
        )

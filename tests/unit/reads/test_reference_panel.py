"""The default reference panel in resources/reference: complete, correctly labelled, and traceable."""

from __future__ import annotations

import gzip
import hashlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from rapidrelease.reads.taxonomy import Taxonomy

REFERENCE = Path(__file__).resolve().parents[3] / "resources" / "reference"
# Files that describe the panel rather than hold its data; everything else must be in PROVENANCE.tsv.
NOT_DATA = {"README.md", "PROVENANCE.tsv", "make_default_panel.py"}
MAX_PANEL_BYTES = 10 * 1024 * 1024


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    return rows


@cache
def panel_rows() -> tuple[dict[str, str], ...]:
    return tuple(read_tsv(REFERENCE / "panel.tsv"))


@cache
def taxonomy() -> Taxonomy:
    return Taxonomy.from_tsv(REFERENCE / "taxonomy.tsv")


@cache
def seqids_in(file: str) -> tuple[str, ...]:
    """First word of every FASTA header, in file order (plain or gzipped FASTA)."""
    path = REFERENCE / file
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return tuple(
            line[1:].split()[0] if line[1:].split() else "" for line in handle if line.startswith(">")
        )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def categories_of(file_part: str) -> set[str]:
    t = taxonomy()
    taxids = [int(row["taxid"]) for row in panel_rows() if file_part in row["file"]]
    assert taxids, f"no panel rows for {file_part}"
    return {t.category[i] for i in t.index_of(taxids)}


def records_under(taxid: int) -> int:
    """Panel records whose taxon is ``taxid`` or below it."""
    t = taxonomy()
    nodes = t.index_of([int(row["taxid"]) for row in panel_rows()])
    return int(np.count_nonzero(t.is_ancestor(int(t.index_of([taxid])[0]), nodes)))


# ---------------------------------------------------------------- panel.tsv against the FASTA files


def test_every_row_names_an_existing_file_and_a_record_in_it() -> None:
    rows = panel_rows()
    assert [*rows[0]] == ["file", "seqid", "taxid", "content", "note"]
    for row in rows:
        assert (REFERENCE / row["file"]).is_file(), row["file"]
        assert row["seqid"] in seqids_in(row["file"]), row


def test_every_record_of_every_panel_file_has_exactly_one_row() -> None:
    by_file: dict[str, list[str]] = {}
    for row in panel_rows():
        by_file.setdefault(row["file"], []).append(row["seqid"])
    on_disk = {f"panel/{p.name}" for p in (REFERENCE / "panel").iterdir()}
    assert set(by_file) == on_disk
    for file, seqids in by_file.items():
        assert seqids == list(seqids_in(file)), file


def test_every_taxid_is_in_the_taxonomy_with_a_full_lineage() -> None:
    t = taxonomy()
    nodes = t.index_of([int(row["taxid"]) for row in panel_rows()])  # ConfigError if one is missing
    # cellular organisms sit under 131567; viruses under 10239; constructs under "other sequences"
    tops = {int(t.taxid[t.path_to_root(int(i))[-2]]) for i in np.unique(nodes)}
    assert tops == {131567, 10239, 28384}


def test_seqid2taxid_map_agrees_with_panel_tsv() -> None:
    mapping: dict[str, str] = {}
    for row in panel_rows():
        # one seqid, one taxon, across files: the map Kraken 2 and our index read is global
        assert mapping.setdefault(row["seqid"], row["taxid"]) == row["taxid"], row
    lines = (REFERENCE / "seqid2taxid.map").read_text(encoding="utf-8").splitlines()
    assert dict(line.split("\t") for line in lines) == mapping


# ---------------------------------------------------------------- categories as designed


def test_expected_sequences_are_not_contaminants() -> None:
    assert categories_of("Homo_sapiens_TPA") == {"host"}
    assert categories_of("phiX174") == {"spike_in"}
    assert categories_of("lambda_NC_001416.1") == {"spike_in"}
    assert categories_of("pCMVR8.74") == {"vector"}
    assert categories_of("pUC19") == {"vector"}
    assert categories_of("illumina_adapters") == {"adapter"}


def test_contaminants_carry_their_category() -> None:
    assert categories_of("Staphylococcus_aureus") == {"bacteria"}
    assert categories_of("Escherichia_coli") == {"bacteria"}
    assert categories_of("Klebsiella_pneumoniae") == {"bacteria"}
    assert categories_of("Streptococcus") == {"bacteria"}
    assert categories_of("MetaPhlAn2_markers_Acholeplasma") == {"mycoplasma"}
    assert categories_of("Measles_virus") == {"virus"}
    # the rRNA sets hold bacteria, mycoplasmas, fungi and the human rRNA genes (host)
    assert categories_of("SILVA93_SSU") == {"bacteria", "mycoplasma", "fungi", "host"}


def test_mycoplasma_category_is_exactly_the_mollicutes() -> None:
    t = taxonomy()
    mollicutes = int(t.index_of([31969])[0])
    nodes = np.unique(t.index_of([int(row["taxid"]) for row in panel_rows()]))
    under = t.is_ancestor(mollicutes, nodes)
    labelled = np.array([t.category[i] == "mycoplasma" for i in nodes])
    assert np.array_equal(under, labelled)


@pytest.mark.parametrize(
    ("organism", "taxid", "at_least"),
    [
        # USP <71> / Ph. Eur. 2.6.1 growth-promotion organisms (A. brasiliensis through A. niger's rRNA)
        ("Staphylococcus aureus", 1280, 1),
        ("Pseudomonas aeruginosa", 287, 1),
        ("Bacillus subtilis", 1423, 1),
        ("Clostridium sporogenes", 1509, 1),
        ("Candida albicans", 5476, 1),
        ("Aspergillus niger", 5061, 1),
        # common contaminants of cell products
        ("Escherichia coli", 562, 2),
        ("Klebsiella pneumoniae", 573, 2),
        ("Streptococcus", 1301, 2),
        ("Cutibacterium (Propionibacterium) acnes", 1747, 1),
        ("Staphylococcus epidermidis", 1282, 1),
        ("Enterococcus faecalis", 1351, 1),
        # Ph. Eur. 2.6.7 mycoplasma NAT detection panel
        ("Mycoplasma arginini", 2094, 1),
        ("Mycoplasma orale", 2121, 1),
        ("Mycoplasma fermentans", 2115, 2),
        ("Mycoplasma hyorhinis", 2100, 2),
        ("Mycoplasma pneumoniae", 2104, 1),
        ("Mycoplasma gallisepticum", 2096, 1),
        ("Mycoplasma synoviae", 2109, 1),
        ("Acholeplasma laidlawii", 2148, 2),
        ("Spiroplasma citri", 2133, 1),
    ],
)
def test_panel_covers_the_compendial_and_common_organisms(organism: str, taxid: int, at_least: int) -> None:
    assert records_under(taxid) >= at_least, organism


def test_whole_genomes_are_one_strain_per_species_so_others_stay_held_out() -> None:
    genomes = [row for row in panel_rows() if row["content"] == "genome"]
    t = taxonomy()
    species = {}
    for row in genomes:
        node = int(t.index_of([int(row["taxid"])])[0])
        sp = next((i for i in t.path_to_root(node) if t.rank[i] == "species"), node)
        species.setdefault(t.name[sp], set()).add(row["file"])
    assert all(len(files) == 1 for files in species.values()), species
    assert "Staphylococcus aureus" in species and "Escherichia coli" in species


def test_committed_panel_stays_small() -> None:
    total = sum(p.stat().st_size for p in (REFERENCE / "panel").iterdir())
    assert total <= MAX_PANEL_BYTES


# ---------------------------------------------------------------- provenance


def test_provenance_covers_every_committed_data_file_with_its_sha256() -> None:
    rows = read_tsv(REFERENCE / "PROVENANCE.tsv")
    listed = {row["file"]: row for row in rows}
    assert len(listed) == len(rows)
    on_disk = {
        p.relative_to(REFERENCE).as_posix()
        for p in REFERENCE.rglob("*")
        if p.is_file() and p.name not in NOT_DATA and "__pycache__" not in p.parts
    }
    assert set(listed) == on_disk
    for name, row in listed.items():
        path = REFERENCE / name
        assert row["sha256"] == sha256(path), name
        assert int(row["size_bytes"]) == path.stat().st_size, name


def test_every_sequence_file_comes_from_a_registry_package() -> None:
    for row in read_tsv(REFERENCE / "PROVENANCE.tsv"):
        if row["file"].startswith("panel/"):
            assert row["origin"] in {"debian", "pypi"}, row["file"]
            assert row["package"] and row["version"] not in {"", "-"}, row["file"]
            assert row["path_in_package"] not in {"", "-"} and row["license"], row["file"]


def test_copies_of_shared_data_are_registry_files_byte_for_byte(shared_data: Path) -> None:
    manifest = {row["path"]: row for row in read_tsv_loose(shared_data / "MANIFEST.tsv")}
    copied = [row for row in read_tsv(REFERENCE / "PROVENANCE.tsv") if row["manifest_path"] != "-"]
    assert copied
    for row in copied:
        entry = manifest[row["manifest_path"]]
        assert entry["origin"] == "registry", row["file"]
        assert sha256(shared_data / row["manifest_path"]) == row["sha256"], row["file"]
    # and no committed file is a repository- or derived-origin file of the shared data
    forbidden = {
        sha256(shared_data / path)
        for path, entry in manifest.items()
        if entry["origin"] != "registry" and path.startswith("seq/") and (shared_data / path).is_file()
    }
    committed = {row["sha256"] for row in read_tsv(REFERENCE / "PROVENANCE.tsv")}
    assert not committed & forbidden


def read_tsv_loose(path: Path) -> list[dict[str, str]]:
    """MANIFEST.tsv rows (trailing empty cells may be missing)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]

"""Read classification against independent truth: Kraken 2 on the same panel, reads of known origin,
host reads the index does not hold, and Kraken 2's scoring rules on a hand-made taxonomy."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rapidrelease.cli import main
from rapidrelease.errors import ReadsError
from rapidrelease.reads import classify
from rapidrelease.reads.classify import ClassifyOptions, _resolve, classify_reads
from rapidrelease.reads.fasta import iter_fasta
from rapidrelease.reads.taxonomy import Taxonomy
from rapidrelease.synthetic.reads import SourceGenome, simulate_reads, write_fastq

from support.reads import PANEL, read_table

CONTAMINANT = {"bacteria", "mycoplasma", "fungi", "virus"}


def _genome(path: Path, name: str, taxid: int) -> SourceGenome:
    return SourceGenome.from_records(name, taxid, [seq for _, seq in iter_fasta(path)])


def _species(taxonomy: Taxonomy, taxid: int) -> int | None:
    if taxid == 0:
        return None
    for node in taxonomy.path_to_root(int(taxonomy.index_of([taxid])[0])):
        if taxonomy.rank[node] == "species":
            return int(taxonomy.taxid[node])
    return None


@pytest.fixture(scope="module")
def panel_reads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 simulated pairs from the small panel's own genomes."""
    folder = tmp_path_factory.mktemp("reads")
    genomes = [
        _genome(PANEL / "panel" / "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz", "sa", 93061),
        _genome(PANEL / "panel" / "Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz", "kp", 272620),
        _genome(PANEL / "panel" / "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz", "hs", 9606),
        _genome(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa", "phix", 10847),
    ]
    reads = simulate_reads(genomes, 20_000, paired=True, seed=5)
    write_fastq(reads, folder / "r1.fq", folder / "r2.fq")
    return folder


@pytest.mark.skipif(shutil.which("kraken2-build") is None, reason="kraken2 is not installed (CI installs it)")
def test_calls_and_report_equal_kraken2s_on_the_same_panel(
    small_index, small_panel_fasta, panel_reads, tmp_path
):
    # Kraken 2 built from the same FASTA and taxonomy, unmasked, with its defaults (k 35, l 31, s 7)
    db = tmp_path / "k2"
    (db / "taxonomy").mkdir(parents=True)
    small_index.taxonomy.to_ncbi_dmp(db / "taxonomy")
    for step in (["--add-to-library", str(small_panel_fasta), "--no-masking"], ["--build", "--threads", "2"]):
        subprocess.run(["kraken2-build", *step, "--db", str(db)], check=True, capture_output=True)
    r1, r2 = panel_reads / "r1.fq", panel_reads / "r2.fq"
    subprocess.run(
        ["kraken2", "--db", str(db), "--threads", "1", "--paired", "--report", str(tmp_path / "k2.kreport"),
         "--output", str(tmp_path / "k2.out"), str(r1), str(r2)],
        check=True, capture_output=True,
    )  # fmt: skip
    classify_reads(
        small_index,
        r1,
        r2,
        report_path=tmp_path / "rr.kreport",
        reads_path=tmp_path / "rr.out",
        batch_reads=3000,
    )
    theirs, ours = read_table(tmp_path / "k2.out"), read_table(tmp_path / "rr.out")
    assert len(ours) == len(theirs) == 20_000
    assert [r[2] for r in ours] == [r[2] for r in theirs], "every pair gets Kraken 2's call"
    # hit lists agree too, except that Kraken 2.1.2 counts the k-mer starting at an N as unambiguous
    # (an off-by-one its later sources fix: 'Must use <= due to increment of queue_pos_')
    no_n = [i for i, row in enumerate(theirs) if "A:" not in row[4]]
    assert len(no_n) > 19_000
    assert all(ours[i] == theirs[i] for i in no_n)
    # the kreport: same percentages, counts, taxa and names (Debian's 2.1.2 drops some D/R rank codes)
    report = [[f for j, f in enumerate(row) if j != 3] for row in read_table(tmp_path / "k2.kreport")]
    assert report == [[f for j, f in enumerate(row) if j != 3] for row in read_table(tmp_path / "rr.kreport")]


@pytest.fixture(scope="module")
def toy() -> SimpleNamespace:
    """root → Bacteria → genus G → species A, B;  root → Eukaryota → species H."""
    taxonomy = Taxonomy.from_rows(
        [
            (1, 1, "no rank", "root", ""),
            (2, 1, "superkingdom", "Bacteria", "bacteria"),
            (10, 2, "genus", "G", ""),
            (11, 10, "species", "A", ""),
            (12, 10, "species", "B", ""),
            (2759, 1, "superkingdom", "Eukaryota", ""),
            (9606, 2759, "species", "H", "host"),
        ]
    )
    return SimpleNamespace(taxonomy=taxonomy, node=lambda taxid: int(taxonomy.index_of([taxid])[0]))


def _call(toy, hits: list[tuple[int, int]], kmers: int = 100, groups: int = 5, **options) -> int:
    """Kraken 2's ResolveTree for one read with (taxid, k-mers) hits; returns the called taxid or 0."""
    taxa = np.array([toy.node(t) for t, _ in hits], dtype=np.int32)
    counts = np.array([c for _, c in hits], dtype=np.int64)
    calls = _resolve(
        toy, np.zeros(len(hits), dtype=np.int64), taxa, counts, np.array([kmers]), np.array([groups]), 1,
        ClassifyOptions(**options),
    )  # fmt: skip
    return 0 if calls[0] < 0 else int(toy.taxonomy.taxid[calls[0]])


def test_kraken2_scoring_rules(toy):
    # root-to-leaf: a species wins with the hits of its ancestors added to its own
    assert _call(toy, [(11, 10), (10, 20), (12, 25)]) == 12  # B: 25 + 20 + … beats A: 10 + 20
    assert _call(toy, [(11, 30), (10, 20), (12, 25)]) == 11
    # a tie between two species goes to their LCA
    assert _call(toy, [(11, 20), (12, 20)]) == 10
    # confidence: the call climbs until its clade holds ceil(c × k-mers) hits
    assert _call(toy, [(11, 30), (12, 25)], kmers=100, confidence=0.3) == 11  # 30 ≥ 30
    assert _call(toy, [(11, 30), (12, 25)], kmers=100, confidence=0.31) == 10  # A 30 < 31; G 55 ≥ 31
    assert _call(toy, [(11, 30), (9606, 25)], kmers=100, confidence=0.6) == 0  # no clade reaches 60
    # a call resting on fewer distinct minimizer hits than required is voided
    assert _call(toy, [(11, 40)], groups=1) == 0
    assert _call(toy, [(11, 40)], groups=2) == 11
    assert _call(toy, [(11, 40)], groups=1, min_hit_groups=1) == 11
    assert _call(toy, []) == 0


def test_held_out_strains_are_called_to_their_species(small_index, shared_data, tmp_path):
    reference = shared_data / "seq" / "reference" / "bacteria"
    genomes = [  # strains NOT in the index; the index holds S. aureus NCTC 8325 and K. pneumoniae MGH 78578
        _genome(reference / "Staphylococcus_aureus_COL_NC_002951.2.fasta.gz", "saCOL", 93062),
        _genome(reference / "Klebsiella_pneumoniae_HS11286_CP003200.1.fna.gz", "kpHS", 1125630),
    ]
    reads = simulate_reads(genomes, 10_000, paired=False, seed=8)
    write_fastq(reads, tmp_path / "held_out.fq")
    classify_reads(small_index, tmp_path / "held_out.fq", reads_path=tmp_path / "out.tsv")
    expected = {"saCOL": 1280, "kpHS": 573}  # the species
    taxonomy = small_index.taxonomy
    correct = called = 0
    for row in read_table(tmp_path / "out.tsv"):
        species = _species(taxonomy, int(row[2]))
        if species is not None:
            called += 1
            correct += species == expected[row[1].split("|")[0]]
    assert correct / 10_000 >= 0.85  # species-level recall (Kraken 2 reaches 0.91 on the benchmark)
    assert correct / called >= 0.99  # species-level precision


def test_host_reads_missing_from_the_index_are_never_called_a_contaminant(small_index, shared_data, tmp_path):
    # the index holds 1 Mb of human scaffolds; these reads come from chr22 20-21 Mb, which it lacks,
    # and from real human sequencing reads: the reads that make false contaminant calls in practice
    chr22 = (
        shared_data / "seq" / "reference" / "host_human" / "Homo_sapiens_chr22_20-21Mb_hisat2_example.fa.gz"
    )
    reads = simulate_reads([_genome(chr22, "hs22", 9606)], 20_000, paired=False, seed=9)
    write_fastq(reads, tmp_path / "host.fq")
    host = shared_data / "seq" / "reads" / "host"
    taxonomy = small_index.taxonomy
    for files in ([tmp_path / "host.fq"], sorted(host.glob("hostile_human_*_R?.fastq.gz"))):
        out = tmp_path / f"out{len(files)}.tsv"
        classify_reads(small_index, *files, reads_path=out)
        categories = [
            taxonomy.category[int(taxonomy.index_of([int(r[2])])[0])] for r in read_table(out) if r[0] == "C"
        ]
        assert not CONTAMINANT & set(categories), categories


def test_real_nanopore_lambda_control_reads_are_lambda(small_index, shared_data, tmp_path):
    # qcat's ONT lambda control (a registry file): 972 of 989 reads map to lambda NC_001416.1
    reads = shared_data / "seq" / "reads" / "shotgun_real" / "qcat_ONT_lambda_control_1k.fastq.gz"
    totals = classify_reads(
        small_index, reads, report_path=tmp_path / "r.kreport", taxa_path=tmp_path / "taxa.tsv"
    )
    lambda_node = small_index.taxonomy.index_of([10710])[0]
    assert totals.reads == 989
    assert totals.direct_reads[lambda_node] >= 950
    taxa = (tmp_path / "taxa.tsv").read_text().splitlines()
    header = taxa[0].split("\t")
    row = dict(zip(header, next(r for r in taxa if r.split("\t")[0] == "10710").split("\t"), strict=True))
    assert row["category"] == "spike_in"
    # a ~49 kb genome sequenced over a thousand long reads is seen almost everywhere
    assert float(row["breadth"]) > 0.9


def test_worker_processes_give_the_same_outputs(small_index, panel_reads, tmp_path):
    files = (panel_reads / "r1.fq", panel_reads / "r2.fq")
    for threads in (1, 2):
        out = tmp_path / str(threads)
        classify_reads(
            small_index, *files, report_path=out.with_suffix(".kreport"), reads_path=out.with_suffix(".out"),
            threads=threads, batch_reads=4000,
        )  # fmt: skip
    assert (tmp_path / "1.out").read_bytes() == (tmp_path / "2.out").read_bytes()
    assert (tmp_path / "1.kreport").read_bytes() == (tmp_path / "2.kreport").read_bytes()


def test_the_command_line_reports_a_bad_read_file_in_one_line(small_index, tmp_path):
    truncated = tmp_path / "cut.fastq.gz"
    reads = simulate_reads(
        [SourceGenome.from_records("x", 10847, [np.frombuffer(b"ACGT" * 2000, dtype=np.uint8)])],
        2000,
        paired=False,
    )
    write_fastq(reads, tmp_path / "whole.fastq.gz", gzip=True)
    data = (tmp_path / "whole.fastq.gz").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    done = subprocess.run(
        [sys.executable, "-m", "rapidrelease", "classify", "--db", str(small_index.folder),
         "--out-report", str(tmp_path / "r.kreport"), str(truncated)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("rapidrelease: ")
    assert "cut.fastq.gz" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r.kreport").exists(), "no report from a run that failed"


def test_cram_reads_classify_against_the_fasta_they_were_compressed_with(small_index, tmp_path, monkeypatch):
    import pysam

    monkeypatch.setenv("REF_PATH", str(tmp_path / "no_ref_path"))  # htslib may not fetch it elsewhere
    monkeypatch.setenv("REF_CACHE", str(tmp_path / "no_ref_cache"))
    phix = next(iter_fasta(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa"))[1].tobytes().decode()
    fasta = tmp_path / "phix.fa"
    fasta.write_text(">phix\n" + phix + "\n")
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "phix", "LN": len(phix)}]}
    cram = tmp_path / "phix.cram"
    with pysam.AlignmentFile(str(cram), "wc", header=header, reference_filename=str(fasta)) as out:
        for i, start in enumerate(range(0, 5000, 250)):
            record = pysam.AlignedSegment(out.header)
            record.query_name, record.reference_id, record.reference_start = f"r{i}", 0, start
            record.query_sequence, record.cigarstring = phix[start : start + 150], "150M"
            record.query_qualities, record.mapping_quality = pysam.qualitystring_to_array("I" * 150), 60
            out.write(record)
    totals = classify_reads(small_index, cram, cram_reference=fasta, report_path=tmp_path / "r.kreport")
    phix_node = small_index.taxonomy.index_of([10847])[0]
    assert totals.reads == 20 and totals.direct_reads[phix_node] == 20
    done = subprocess.run(
        [sys.executable, "-m", "rapidrelease", "classify", "--db", str(small_index.folder),
         "--out-report", str(tmp_path / "cli.kreport"), "--cram-reference", str(fasta), str(cram)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cli.kreport").read_text() == (tmp_path / "r.kreport").read_text()


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a user's is."""

    def isatty(self) -> bool:
        return True


def _phix_pairs(folder: Path, n: int) -> tuple[Path, Path]:
    phix = next(iter_fasta(PANEL / "panel" / "phiX174_sequana_NC_001422.1.fa"))[1].tobytes().decode()
    r1, r2 = folder / "r1.fq", folder / "r2.fq"
    mates1 = [phix[40 * i : 40 * i + 150] for i in range(n)]  # 150 bp
    mates2 = [phix[40 * i + 200 : 40 * i + 300] for i in range(n)]  # 100 bp
    r1.write_text("".join(f"@p{i}/1\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(mates1)))
    r2.write_text("".join(f"@p{i}/2\n{s}\n+\n{'I' * len(s)}\n" for i, s in enumerate(mates2)))
    return r1, r2


def test_progress_is_shown_on_a_terminal_as_kraken2_shows_it_and_never_in_a_log(small_index, tmp_path):
    r1, r2 = _phix_pairs(tmp_path, 25)
    terminal = _Terminal()
    classify_reads(small_index, r1, r2, batch_reads=10, progress=terminal)
    # Kraken 2 (classify.cc): "\rProcessed N sequences (M bp) ..." after each batch, bases of both mates
    assert terminal.getvalue() == (
        "\rProcessed 10 sequences (2500 bp) ...\rProcessed 20 sequences (5000 bp) ..."
        "\rProcessed 25 sequences (6250 bp) ...\n"
    )
    log = io.StringIO()  # not a terminal: a workflow's log stays clean
    classify_reads(small_index, r1, r2, batch_reads=10, progress=log)
    assert log.getvalue() == ""


def test_progress_ends_its_line_before_the_error_of_a_file_that_breaks_off(small_index, tmp_path):
    r1, _ = _phix_pairs(tmp_path, 25)
    cut = tmp_path / "cut.fq"
    cut.write_bytes(r1.read_bytes()[:-300])  # record 25 cut short, after 24 complete reads
    terminal = _Terminal()
    with pytest.raises(ReadsError):
        classify_reads(small_index, cut, batch_reads=10, progress=terminal)
    assert terminal.getvalue() == (
        "\rProcessed 10 sequences (1500 bp) ...\rProcessed 20 sequences (3000 bp) ..."
        "\rProcessed 24 sequences (3600 bp) ...\n"
    )


def test_the_classify_command_shows_progress_on_a_terminal_only(small_index, tmp_path, monkeypatch):
    r1, r2 = _phix_pairs(tmp_path, 20)
    command = ["classify", "--db", str(small_index.folder), "--paired", "--out-report", str(tmp_path / "k")]
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([*command, str(r1), str(r2)]) == 0
    first, summary = terminal.getvalue().split("\n")[:2]
    assert first == "\rProcessed 20 sequences (5000 bp) ..."
    assert summary.startswith("20 reads: ")
    monkeypatch.undo()
    piped = subprocess.run(
        [sys.executable, "-m", "rapidrelease", *command, str(r1), str(r2)], capture_output=True, text=True
    )
    assert piped.returncode == 0 and "Processed" not in piped.stderr and "\r" not in piped.stderr


@pytest.mark.parametrize("dense", [True, False], ids=["bincount", "sorted"])
def test_a_batch_of_reads_is_scored_read_by_read(toy, monkeypatch, dense):
    # reads scored together in one batch get the calls each gets alone: hits of one read (listed out
    # of order, a taxon twice) never add to another's score, and ties and confidence stay per read;
    # whether the (read, taxon) sums are a bincount (small batches) or come from sorting
    if not dense:
        monkeypatch.setattr(classify, "_DENSE_PAIRS", 0)
    reads = [
        [(11, 10), (10, 20), (12, 25)],  # B: 25 + 20 beats A: 10 + 20
        [(9606, 7)],  # H alone
        [(11, 20), (12, 20)],  # a tie: genus G
        [(11, 30), (11, 5), (9606, 30)],  # A's two lookups: 35 beats H's 30
        [(2, 3), (11, 1)],  # A: 1 + 3 above Bacteria's 3
    ]
    expected = [12, 9606, 10, 11, 11]
    rows = [(r, toy.node(t), c) for r, hits in enumerate(reads) for t, c in hits][::-1]
    read_of, taxa, counts = (np.array(column) for column in zip(*rows, strict=True))
    n = len(reads)
    calls = _resolve(
        toy, read_of.astype(np.int64), taxa.astype(np.int32), counts.astype(np.int64),
        np.full(n, 100), np.full(n, 5), n, ClassifyOptions(),
    )  # fmt: skip
    assert [int(toy.taxonomy.taxid[c]) for c in calls] == expected
    assert [_call(toy, hits) for hits in reads] == expected
    # confidence 0.3 per read (30 of 100 k-mers): B's clade holds 25, so it climbs to G (55);
    # H's 7 and Bacteria's 4 reach no clade of 30, so those reads are unclassified
    calls = _resolve(
        toy, read_of.astype(np.int64), taxa.astype(np.int32), counts.astype(np.int64),
        np.full(n, 100), np.full(n, 5), n, ClassifyOptions(confidence=0.3),
    )  # fmt: skip
    assert [0 if c < 0 else int(toy.taxonomy.taxid[c]) for c in calls] == [10, 0, 10, 11, 0]

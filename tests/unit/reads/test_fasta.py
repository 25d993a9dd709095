"""Streaming FASTA: real genomes against pysam, edge cases and malformed files written in tmp_path."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pysam
import pytest

from rapidrelease.errors import ReadsError
from rapidrelease.reads import _stream
from rapidrelease.reads.fasta import iter_fasta

CHR17 = Path("seq/reads/host/bcftools_mpileup.ref.fa")
KLEBSIELLA = Path("seq/reference/bacteria/Klebsiella_pneumoniae_HS11286_CP003200.1.fna.gz")


def _records(path: Path) -> list[tuple[str, str]]:
    return [(header, seq.tobytes().decode()) for header, seq in iter_fasta(path)]


def _error(path: Path) -> str:
    with pytest.raises(ReadsError) as caught:
        list(iter_fasta(path))
    return str(caught.value)


def test_human_chr17_extract_is_one_record_of_4200_bases(shared_data):
    ((header, seq),) = list(iter_fasta(shared_data / CHR17))
    assert header == "17 17:1-4200"
    assert seq.dtype == np.uint8 and seq.shape == (4200,)
    assert seq[:10].tobytes() == b"AAGCTTCTCA"


def test_gzipped_genome_with_plasmids_matches_pysam(shared_data):
    path = shared_data / KLEBSIELLA
    with pysam.FastxFile(str(path)) as fastx:
        expected = [(r.name, r.sequence) for r in fastx]
    got = _records(path)
    assert [h.split()[0] for h, _ in got] == [name for name, _ in expected]
    assert [s for _, s in got] == [s for _, s in expected]
    assert len(got) == 7 and len(got[0][1]) == 5_333_942  # chromosome CP003200.1, then 6 plasmids


def test_wrapping_crlf_case_and_iupac_are_kept(tmp_path):
    path = tmp_path / "odd.fa"
    path.write_bytes(
        b"\r\n>seq1 soft-masked\r\nACGTNacgtn\r\nRYKM-*\r\n\r\n>seq2\r\n"
        b">seq3 last line unterminated\r\nGATTACA"
    )
    assert _records(path) == [
        ("seq1 soft-masked", "ACGTNacgtnRYKM-*"),
        ("seq2", ""),
        ("seq3 last line unterminated", "GATTACA"),
    ]


def test_block_boundaries_never_change_the_records(tmp_path, monkeypatch, shared_data):
    path = tmp_path / "many.fa.gz"
    text = (shared_data / CHR17).read_bytes().replace(b"\n", b"\r\n") + b">second\nAC\nGT\n\n>third\n"
    path.write_bytes(gzip.compress(text))
    expected = _records(path)
    monkeypatch.setattr(_stream, "BLOCK_BYTES", 3)  # splits headers, \r\n and every sequence line
    assert _records(path) == expected
    assert [(h, len(s)) for h, s in expected] == [("17 17:1-4200", 4200), ("second", 4), ("third", 0)]


def test_empty_and_blank_files_have_no_records(tmp_path):
    for name, content in (("empty.fa", b""), ("blank.fa", b"\n\r\n\n"), ("empty.fa.gz", gzip.compress(b""))):
        path = tmp_path / name
        path.write_bytes(content)
        assert list(iter_fasta(path)) == []


def test_sequence_before_the_first_header_names_the_line(tmp_path):
    path = tmp_path / "headless.fa"
    path.write_text("\nACGT\n>seq1\nACGT\n")
    assert _error(path) == (
        f"{path}: line 2 holds sequence before the first '>' header line (is this FASTA?)."
    )


def test_character_outside_iupac_names_record_line_and_column(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_text(">seq1\nACGT\n>seq2 the header may hold anything: 1 2 3\nACGT\nACGJT\n")
    assert _error(path) == (
        f"{path}: record 2, line 5 holds b'J' at column 4, which is not an IUPAC nucleotide code, '-' or '*'."
    )
    path.write_text(">seq1\nACGT \n")  # a trailing space is not a base either
    assert "record 1, line 2 holds b' ' at column 5" in _error(path)


def test_header_without_a_name_is_an_error(tmp_path):
    path = tmp_path / "anonymous.fa"
    path.write_text(">seq1\nACGT\n>  \nACGT\n")
    assert _error(path) == f"{path}: record 2, line 3 is a '>' header with no name."


def test_binary_garbage_is_refused(tmp_path):
    path = tmp_path / "garbage.fa"
    path.write_bytes(b"\x00\x01\x02BAM\x01" + bytes(range(256)))
    assert _error(path).startswith(f"{path}: line 1 ")


def test_truncated_gzip_genome_is_an_error(tmp_path, shared_data):
    real = (shared_data / KLEBSIELLA).read_bytes()
    cut = tmp_path / "cut.fna.gz"
    cut.write_bytes(real[: len(real) // 3])
    message = _error(cut)
    assert message.startswith(f"{cut}: is truncated inside record 1 (its gzip data end after line ")


def test_memory_holds_the_current_record_not_the_file(tmp_path, monkeypatch):
    # 16 records of 2 Mb (32 MB of sequence; the file itself is small, gzip of repeats)
    record = (b"ACGTTGCA" * 10 + b"\n") * 25_000
    path = tmp_path / "big.fa.gz"
    path.write_bytes(gzip.compress(b"".join(b">chr%d\n" % i + record for i in range(16)), compresslevel=1))
    monkeypatch.setattr(_stream, "BLOCK_BYTES", 1 << 16)
    tracemalloc.start()
    try:
        lengths = [len(seq) for _, seq in iter_fasta(path)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lengths == [2_000_000] * 16
    # the caller's record, the next one's pieces and their join (3 × 2 MB) plus blocks; not 32 MB
    assert peak < 8_000_000

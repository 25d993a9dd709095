"""Read input (:mod:`rapidrelease.reads.input`): the format recognised from the first bytes, pairs of
files and interleaved files paired and checked, and counts over a whole input.

Real files come from ../shared/data (the ``shared_data`` fixture skips without it); every malformed
input is written into ``tmp_path`` at test time, mostly by cutting or editing a real file. The
parsers have their own tests: test_fastq.py and test_alignments.py.
"""

from __future__ import annotations

import gzip
import lzma

import numpy as np
import pytest

from rapidrelease.errors import ReadsError
from rapidrelease.reads.input import iter_read_batches, read_stats

from support.reads import (
    CHR17_BAMS,
    HOSTILE_R1,
    HOSTILE_R2,
    KNOWN,
    KNOWN_NAMES,
    ONT_LAMBDA,
    fastq_bytes,
    gzip_lines,
    pysam_reads,
    reads_error,
    reads_of,
)


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path):
    path = tmp_path / "reads.txt"
    path.write_bytes(gzip.compress(fastq_bytes(KNOWN)))
    assert [n for n, _ in reads_of(list(iter_read_batches(path)))] == KNOWN_NAMES


def test_empty_file_gives_no_batches(tmp_path):
    empty, empty_gz = tmp_path / "empty.fastq", tmp_path / "empty.fastq.gz"
    empty.write_bytes(b"")
    empty_gz.write_bytes(gzip.compress(b""))
    assert list(iter_read_batches(empty)) == []
    assert list(iter_read_batches(empty_gz)) == []
    assert list(iter_read_batches(empty, empty_gz)) == []
    assert read_stats(empty).n_reads == 0


def test_concatenated_gzip_members_read_as_one_file(tmp_path):
    path = tmp_path / "members.fastq.gz"
    path.write_bytes(
        gzip.compress(fastq_bytes(KNOWN[:3])) + gzip.compress(fastq_bytes(KNOWN[3:])) + b"\0" * 512
    )
    assert [n for n, _ in reads_of(list(iter_read_batches(path)))] == KNOWN_NAMES


def test_bytes_after_the_gzip_data_that_are_no_gzip_member_are_an_error(tmp_path):
    # a copy tool's or a download's tail after the last member: neither another member nor zero padding
    path = tmp_path / "tail.fastq.gz"
    path.write_bytes(gzip.compress(fastq_bytes(KNOWN)) + b"<html>404</html>")
    assert reads_error(path) == (
        f"{path}: holds b'<html>40'… after the end of its gzip data, which is neither another gzip member "
        "nor padding; the file is damaged."
    )


def test_corrupt_gzip_data_is_an_error(tmp_path, shared_data):
    data = bytearray((shared_data / HOSTILE_R1).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
    path = tmp_path / "corrupt.fastq.gz"
    path.write_bytes(bytes(data))
    assert "its gzip data are corrupt after" in reads_error(path)


@pytest.mark.parametrize("compress", [False, True])
def test_binary_garbage_is_not_read_as_reads(tmp_path, compress):
    garbage = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    garbage = b"\x89PNG" + garbage  # a byte no read format starts with
    path = tmp_path / "garbage.fastq"
    path.write_bytes(gzip.compress(garbage) if compress else garbage)
    kind = "gzip-compressed data" if compress else "a file"
    assert (
        reads_error(path)
        == f"{path}: is not FASTQ, FASTA, SAM, BAM or CRAM ({kind} starting with {garbage[:12]!r})."
    )


def test_xz_compression_is_named(tmp_path):
    path = tmp_path / "reads.fastq.xz"
    path.write_bytes(lzma.compress(fastq_bytes(KNOWN)))
    assert "is compressed with xz, which is not read here" in reads_error(path)


def test_missing_file_is_a_reads_error(tmp_path):
    assert reads_error(tmp_path / "absent.fastq") == f"{tmp_path / 'absent.fastq'}: file not found."


def test_text_file_named_bam_is_not_read(tmp_path):
    fake = tmp_path / "sample.bam"
    fake.write_text("sample\tpath\nlot1\t/data/lot1.fcs\n")
    assert (
        reads_error(fake)
        == f"{fake}: is not FASTQ, FASTA, SAM, BAM or CRAM (a file starting with b'sample\\tpath\\n')."
    )


def test_hostile_pairs_read_as_50_pairs_of_150_bp(shared_data):
    r1, r2 = shared_data / HOSTILE_R1, shared_data / HOSTILE_R2
    batches = list(iter_read_batches(r1, r2))
    assert sum(b.n_reads for b in batches) == 50 and all(b.paired for b in batches)
    assert reads_of(batches, 1) == pysam_reads(r1)
    assert reads_of(batches, 2) == pysam_reads(r2)
    assert batches[0].names[0] == "ERR3239334.1"  # '/1' and the comment cut off
    stats = read_stats(r1, r2)
    assert (stats.n_reads, stats.n_mates, stats.n_bases, stats.min_length, stats.max_length) == (
        50,
        100,
        15_000,
        150,
        150,
    )


def test_long_reads_over_the_base_cap_stay_paired(tmp_path, shared_data):
    ont = pysam_reads(shared_data / ONT_LAMBDA)[:60]
    r1, r2 = tmp_path / "r1.fastq", tmp_path / "r2.fastq"
    r1.write_bytes(fastq_bytes([(f"{n}/1", s) for n, s in ont]))
    # mate 2: other lengths and longer headers, so the base cap cuts its batches elsewhere
    r2.write_bytes(fastq_bytes([(f"{n}/2 {'x' * 500}", s[: len(s) // 3]) for n, s in ont]))
    batches = list(iter_read_batches(r1, r2, batch_reads=1000, batch_bases=50_000))
    assert len(batches) > 3 and all(b.n_reads < 1000 for b in batches)
    assert all(b.n_reads == 1 or b.offsets[-1] + b.offsets2[-1] <= 50_000 for b in batches)
    assert reads_of(batches, 1) == ont
    assert reads_of(batches, 2) == [(n, s[: len(s) // 3]) for n, s in ont]


def test_paired_files_of_different_lengths_name_both_files(tmp_path, shared_data):
    r1 = shared_data / HOSTILE_R1
    r2 = tmp_path / "R2_short.fastq"
    r2.write_bytes(b"".join(gzip_lines(shared_data / HOSTILE_R2)[: 4 * 49]))
    for batch_reads in (20_000, 7):
        with pytest.raises(ReadsError) as caught:
            list(iter_read_batches(r1, r2, batch_reads=batch_reads))
        assert str(caught.value) == (
            f"{r1} and {r2}: {r2} has no record 50 but {r1} has; paired files must hold the same "
            "reads in the same order."
        )


def test_paired_files_whose_ids_disagree_name_the_pair(tmp_path, shared_data):
    lines = gzip_lines(shared_data / HOSTILE_R2)
    lines[4 * 9], lines[4 * 10] = lines[4 * 10], lines[4 * 9]  # headers of pairs 10 and 11 swapped
    r2 = tmp_path / "R2_swapped.fastq"
    r2.write_bytes(b"".join(lines))
    r1 = shared_data / HOSTILE_R1
    message = reads_error(r1, path2=r2)
    assert message == (
        f"{r1} and {r2}: pair 10 has read ids 'ERR3239334.10' and 'ERR3239334.11' in the two files; "
        "mates must have the same id (apart from /1 and /2)."
    )


def test_interleaved_fastq_reads_as_the_two_files(tmp_path, shared_data):
    l1, l2 = gzip_lines(shared_data / HOSTILE_R1), gzip_lines(shared_data / HOSTILE_R2)
    path = tmp_path / "interleaved.fastq"
    path.write_bytes(b"".join(b"".join(l1[i : i + 4] + l2[i : i + 4]) for i in range(0, len(l1), 4)))
    expected = list(iter_read_batches(shared_data / HOSTILE_R1, shared_data / HOSTILE_R2))
    for batch_reads in (3, 50):
        batches = list(iter_read_batches(path, batch_reads=batch_reads, interleaved=True))
        assert reads_of(batches, 1) == reads_of(expected, 1)
        assert reads_of(batches, 2) == reads_of(expected, 2)
        assert batches[-1].first_record + batches[-1].n_reads - 1 == 50
    odd = tmp_path / "odd.fastq"
    odd.write_bytes(path.read_bytes() + b"".join(l1[:4]))
    assert reads_error(odd, interleaved=True).startswith(f"{odd}: record 101 has no mate")


def test_bam_with_a_mate_file_is_refused(tmp_path, shared_data):
    bam = shared_data / CHR17_BAMS[1]
    message = reads_error(bam, path2=shared_data / HOSTILE_R2)
    assert message.startswith(f"{bam} and {shared_data / HOSTILE_R2}: {bam} is BAM")
